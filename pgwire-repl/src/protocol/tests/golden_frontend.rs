//! Client messages and the replication messages inside CopyData, checked byte for byte.
//!
//! See <https://www.postgresql.org/docs/current/protocol-message-formats.html> and
//! <https://www.postgresql.org/docs/current/protocol-replication.html>.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};

use super::{backend, frame};
use crate::error::Error;
use crate::lsn::Lsn;
use crate::protocol::backend::BackendMessage;
use crate::protocol::frontend::{self, FrontendMessage, PROTOCOL_VERSION};
use crate::protocol::replication::{
    HotStandbyFeedback, PrimaryKeepalive, ReplicationMessage, StandbyMessage, StandbyStatusUpdate,
    XLogData,
};
use crate::timestamp::{from_system_time, to_system_time};

/// 2024-01-01 00:00:00 UTC.
fn jan_2024() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_704_067_200)
}

/// 2024-01-01 00:00:00 UTC in PostgreSQL's wire form: µs since 2000-01-01, big-endian.
const JAN_2024_PG: [u8; 8] = [0x00, 0x02, 0xb0, 0xd5, 0xd4, 0xe9, 0x40, 0x00];

fn written(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut dst = BytesMut::new();
    f(&mut dst);
    dst.to_vec()
}

/// Reads back one tagged client message, which must use all of `bytes`.
fn read_back(bytes: &[u8]) -> FrontendMessage {
    let mut buf = BytesMut::from(bytes);
    let m = frontend::decode(&mut buf).unwrap().unwrap();
    assert!(buf.is_empty());
    m
}

#[test]
fn timestamps_count_microseconds_from_2000() {
    assert_eq!(
        from_system_time(jan_2024()),
        i64::from_be_bytes(JAN_2024_PG)
    );
    assert_eq!(to_system_time(i64::from_be_bytes(JAN_2024_PG)), jan_2024());
    assert_eq!(
        to_system_time(0),
        UNIX_EPOCH + Duration::from_secs(946_684_800)
    );
    // One second before the PostgreSQL epoch.
    assert_eq!(
        from_system_time(UNIX_EPOCH + Duration::from_secs(946_684_799)),
        -1_000_000
    );
}

#[test]
fn startup_message() {
    assert_eq!(PROTOCOL_VERSION, 196_608);
    let bytes =
        written(|d| frontend::startup(&[("user", "alice"), ("replication", "true")], d).unwrap());
    // Int32 length (no tag), Int32 196608, name/value strings, a final zero byte.
    let expected: &[u8] = b"\0\0\0\x25\0\x03\0\0user\0alice\0replication\0true\0\0";
    assert_eq!(bytes, expected);
    let mut buf = BytesMut::from(expected);
    assert_eq!(
        frontend::decode_startup(&mut buf).unwrap(),
        Some(FrontendMessage::Startup {
            version: 196_608,
            params: vec![
                ("user".into(), "alice".into()),
                ("replication".into(), "true".into())
            ],
        })
    );
    assert!(buf.is_empty());
    // A NUL inside a parameter cannot be sent.
    let mut dst = BytesMut::new();
    assert!(matches!(
        frontend::startup(&[("user", "a\0b")], &mut dst),
        Err(Error::Config(_))
    ));
}

#[test]
fn startup_packet_requests() {
    let read = |b: &[u8]| frontend::decode_startup(&mut BytesMut::from(b)).unwrap();
    assert_eq!(
        read(b"\0\0\0\x08\x04\xd2\x16\x2f"),
        Some(FrontendMessage::SslRequest)
    );
    assert_eq!(
        read(b"\0\0\0\x08\x04\xd2\x16\x30"),
        Some(FrontendMessage::GssEncRequest)
    );
    assert_eq!(
        read(b"\0\0\0\x10\x04\xd2\x16\x2e\0\0\x30\x39\xde\xad\xbe\xef"),
        Some(FrontendMessage::CancelRequest)
    );
    // Incomplete: wait for more.
    assert_eq!(read(b"\0\0\0\x08\x04\xd2"), None);
    assert_eq!(read(b"\0\0"), None);
}

#[test]
fn ssl_request_message() {
    let bytes = written(frontend::ssl_request);
    assert_eq!(bytes, b"\0\0\0\x08\x04\xd2\x16\x2f");
    assert_eq!(
        frontend::decode_startup(&mut BytesMut::from(&bytes[..])).unwrap(),
        Some(FrontendMessage::SslRequest)
    );
}

#[test]
fn query_message() {
    let bytes = written(|d| frontend::query("IDENTIFY_SYSTEM", d).unwrap());
    assert_eq!(bytes, b"Q\0\0\0\x14IDENTIFY_SYSTEM\0");
    assert_eq!(
        read_back(&bytes),
        FrontendMessage::Query("IDENTIFY_SYSTEM".into())
    );
    let mut dst = BytesMut::new();
    assert!(frontend::query("SHOW\0x", &mut dst).is_err());
}

#[test]
fn password_message() {
    let bytes = written(|d| frontend::password(b"secret", d).unwrap());
    assert_eq!(bytes, b"p\0\0\0\x0bsecret\0");
    assert_eq!(
        read_back(&bytes),
        FrontendMessage::Password(Bytes::from_static(b"secret\0"))
    );
}

#[test]
fn sasl_initial_response_and_response() {
    let bytes =
        written(|d| frontend::sasl_initial_response("SCRAM-SHA-256", b"n,,n=,r=abc", d).unwrap());
    // String mechanism, Int32 length of the data, the data (no terminator).
    let expected: &[u8] = b"p\0\0\0\x21SCRAM-SHA-256\0\0\0\0\x0bn,,n=,r=abc";
    assert_eq!(bytes, expected);
    assert_eq!(
        read_back(&bytes),
        FrontendMessage::Password(Bytes::copy_from_slice(&expected[5..]))
    );
    let bytes = written(|d| frontend::sasl_response(b"c=biws", d).unwrap());
    assert_eq!(bytes, b"p\0\0\0\x0ac=biws");
}

#[test]
fn copy_done_and_terminate() {
    let bytes = written(frontend::copy_done);
    assert_eq!(bytes, b"c\0\0\0\x04");
    assert_eq!(read_back(&bytes), FrontendMessage::CopyDone);
    let bytes = written(frontend::terminate);
    assert_eq!(bytes, b"X\0\0\0\x04");
    assert_eq!(read_back(&bytes), FrontendMessage::Terminate);
    assert_eq!(
        read_back(b"f\0\0\0\x09oops\0"),
        FrontendMessage::CopyFail("oops".into())
    );
}

#[test]
fn xlog_data() {
    let mut expected = b"d\0\0\0\x21w".to_vec();
    expected.extend_from_slice(&0x0300_0000u64.to_be_bytes()); // dataStart 0/3000000
    expected.extend_from_slice(&0x0300_0100u64.to_be_bytes()); // walEnd 0/3000100
    expected.extend_from_slice(&JAN_2024_PG); // sendTime
    expected.extend_from_slice(b"WAL!");
    let x = XLogData {
        wal_start: Lsn(0x0300_0000),
        wal_end: Lsn(0x0300_0100),
        send_time: jan_2024(),
        data: Bytes::from_static(b"WAL!"),
    };
    assert_eq!(XLogData::HEADER_LEN, 25);
    assert_eq!(written(|d| x.encode(d)), expected);
    let BackendMessage::CopyData(body) = backend(&expected).unwrap() else {
        panic!("not CopyData")
    };
    let decoded = ReplicationMessage::decode(body).unwrap();
    assert_eq!(decoded, ReplicationMessage::XLogData(x.clone()));
    assert_eq!(x.data_end(), Some(Lsn(0x0300_0004)));
    assert_eq!(written(|d| decoded.encode(d)), expected);
}

#[test]
fn primary_keepalive() {
    let mut expected = b"d\0\0\0\x16k".to_vec();
    expected.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0x28]); // walEnd 1/28
    expected.extend_from_slice(&JAN_2024_PG);
    expected.push(1);
    let k = PrimaryKeepalive {
        wal_end: Lsn(0x1_0000_0028),
        send_time: jan_2024(),
        reply_requested: true,
    };
    assert_eq!(PrimaryKeepalive::LEN, 18);
    assert_eq!(expected.len(), 5 + 18);
    assert_eq!(written(|d| k.encode(d)), expected);
    let f = frame(&expected);
    assert_eq!(
        ReplicationMessage::decode(f.body).unwrap(),
        ReplicationMessage::PrimaryKeepalive(k)
    );
    // Any non-zero byte requests a reply; zero does not.
    let mut body = expected[5..].to_vec();
    body[17] = 0;
    let ReplicationMessage::PrimaryKeepalive(k0) =
        ReplicationMessage::decode(Bytes::from(body)).unwrap()
    else {
        panic!("not a keepalive")
    };
    assert!(!k0.reply_requested);
}

#[test]
fn standby_status_update() {
    let mut expected = b"d\0\0\0\x26r".to_vec();
    expected.extend_from_slice(&0x0500_0010u64.to_be_bytes()); // write
    expected.extend_from_slice(&0x0500_0000u64.to_be_bytes()); // flush
    expected.extend_from_slice(&0u64.to_be_bytes()); // apply
    expected.extend_from_slice(&JAN_2024_PG);
    expected.push(0);
    let s = StandbyStatusUpdate {
        write: Lsn(0x0500_0010),
        flush: Lsn(0x0500_0000),
        apply: Lsn::INVALID,
        send_time: jan_2024(),
        reply_requested: false,
    };
    assert_eq!(StandbyStatusUpdate::LEN, 34);
    assert_eq!(expected.len(), 5 + 34);
    assert_eq!(written(|d| s.encode(d)), expected);
    let FrontendMessage::CopyData(body) = read_back(&expected) else {
        panic!("not CopyData")
    };
    assert_eq!(
        StandbyMessage::decode(&body).unwrap(),
        StandbyMessage::StatusUpdate(s)
    );
    assert_eq!(
        written(|d| StandbyMessage::StatusUpdate(s).encode(d)),
        expected
    );
}

#[test]
fn hot_standby_feedback() {
    let mut expected = b"d\0\0\0\x1dh".to_vec();
    expected.extend_from_slice(&JAN_2024_PG);
    expected.extend_from_slice(&[0, 0, 0x02, 0xe4]); // xmin 740
    expected.extend_from_slice(&[0, 0, 0, 1]); // epoch 1
    expected.extend_from_slice(&[0xff, 0xff, 0xff, 0xfe]); // catalog xmin
    expected.extend_from_slice(&[0, 0, 0, 0]);
    let h = HotStandbyFeedback {
        send_time: jan_2024(),
        xmin: 740,
        xmin_epoch: 1,
        catalog_xmin: 0xffff_fffe,
        catalog_xmin_epoch: 0,
    };
    assert_eq!(HotStandbyFeedback::LEN, 25);
    assert_eq!(expected.len(), 5 + 25);
    assert_eq!(written(|d| h.encode(d)), expected);
    let FrontendMessage::CopyData(body) = read_back(&expected) else {
        panic!("not CopyData")
    };
    assert_eq!(
        StandbyMessage::decode(&body).unwrap(),
        StandbyMessage::HotStandbyFeedback(h)
    );
}

#[test]
fn timestamps_before_2000_are_negative_on_the_wire() {
    let k = PrimaryKeepalive {
        wal_end: Lsn(0),
        send_time: UNIX_EPOCH + Duration::from_secs(946_684_799),
        reply_requested: false,
    };
    let bytes = written(|d| k.encode(d));
    assert_eq!(&bytes[14..22], &(-1_000_000i64).to_be_bytes());
    assert_eq!(
        ReplicationMessage::decode(frame(&bytes).body).unwrap(),
        ReplicationMessage::PrimaryKeepalive(k)
    );
}
