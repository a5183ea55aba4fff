//! What a broken or hostile peer can send: wrong sizes, lies about counts and lengths, frames
//! above the caps. Every one is a protocol error, found before memory is reserved.

use bytes::{Bytes, BytesMut};

use super::{assert_protocol_err, backend, frame, wire};
use crate::lsn::Lsn;
use crate::protocol::backend::BackendMessage;
use crate::protocol::codec::{
    decode_frame, max_body_len, Frame, MAX_COPY_DATA, MAX_DATA_ROW, MAX_OTHER,
};
use crate::protocol::frontend;
use crate::protocol::replication::{ReplicationMessage, StandbyMessage, XLogData};

fn replication(body: &[u8]) -> crate::Result<ReplicationMessage> {
    ReplicationMessage::decode(Bytes::copy_from_slice(body))
}

fn standby(body: &[u8]) -> crate::Result<StandbyMessage> {
    StandbyMessage::decode(&Bytes::copy_from_slice(body))
}

#[test]
fn fixed_size_messages_with_trailing_bytes() {
    assert_protocol_err(backend(b"Z\0\0\0\x06II"));
    assert_protocol_err(backend(b"Z\0\0\0\x04"));
    assert_protocol_err(backend(b"c\0\0\0\x05x"));
    assert_protocol_err(backend(b"I\0\0\0\x05x"));
    assert_protocol_err(backend(b"R\0\0\0\x09\0\0\0\0x"));
    assert_protocol_err(backend(b"R\0\0\0\x0d\0\0\0\x05\x01\x02\x03\x04\x05"));
    assert_protocol_err(backend(b"R\0\0\0\x0b\0\0\0\x05\x01\x02\x03"));
    assert_protocol_err(backend(b"W\0\0\0\x08\0\0\0x"));
    assert_protocol_err(backend(&wire(b'C', &[b"SELECT 1\0", b"x"])));
    assert_protocol_err(backend(&wire(b'S', &[b"a\0", b"b\0", b"c\0"])));
    assert_protocol_err(backend(&wire(b'E', &[b"Mx\0", b"\0", b"junk"])));
}

#[test]
fn unknown_or_invalid_values() {
    assert_protocol_err(backend(b"Z\0\0\0\x05X"));
    assert_protocol_err(backend(b"R\0\0\0\x08\0\0\0\x06"));
    assert_protocol_err(backend(b"Q\0\0\0\x04"));
    // A SASL mechanism list without its terminating empty name.
    assert_protocol_err(backend(&wire(
        b'R',
        &[&10i32.to_be_bytes(), b"SCRAM-SHA-256\0"],
    )));
    // Strings must be NUL-terminated UTF-8.
    assert_protocol_err(backend(&wire(b'S', &[b"a\0", b"\xff\xfe\0"])));
    assert_protocol_err(backend(&wire(b'C', &[b"SELECT 1"])));
    assert_protocol_err(backend(&wire(b'E', &[b"Mno terminator\0"])));
    // Cancel keys are 4 to 256 bytes.
    assert_protocol_err(backend(&wire(b'K', &[&1i32.to_be_bytes(), &[1, 2, 3]])));
    assert_protocol_err(backend(&wire(b'K', &[&1i32.to_be_bytes(), &[0; 257]])));
}

#[test]
fn replication_messages_of_the_wrong_size() {
    let keepalive = [b'k'; 18];
    replication(&keepalive).unwrap();
    assert_protocol_err(replication(&[b'k'; 19]));
    assert_protocol_err(replication(&[b'k'; 17]));
    let mut update = [0u8; 34];
    update[0] = b'r';
    standby(&update).unwrap();
    let mut long = update.to_vec();
    long.push(0);
    assert_protocol_err(standby(&long));
    assert_protocol_err(standby(&update[..33]));
    let mut feedback = [0u8; 25];
    feedback[0] = b'h';
    standby(&feedback).unwrap();
    let mut long = feedback.to_vec();
    long.push(0);
    assert_protocol_err(standby(&long));
    assert_protocol_err(standby(&feedback[..24]));
    // XLogData needs its 25-byte header; the payload may be empty.
    let mut x = [0u8; 25];
    x[0] = b'w';
    replication(&x).unwrap();
    assert_protocol_err(replication(&x[..24]));
    assert_protocol_err(replication(b""));
    assert_protocol_err(replication(b"r"));
    assert_protocol_err(standby(b"w"));
    assert_protocol_err(standby(b""));
}

#[test]
fn xlog_data_past_the_end_of_wal() {
    let body = |start: u64, data: &[u8]| {
        let mut b = vec![b'w'];
        b.extend_from_slice(&start.to_be_bytes());
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(data);
        b
    };
    let m = replication(&body(u64::MAX - 4, b"abcd")).unwrap();
    let ReplicationMessage::XLogData(x) = m else {
        panic!("{m:?}")
    };
    assert_eq!(x.data_end(), Some(Lsn(u64::MAX)));
    let msg = assert_protocol_err(replication(&body(u64::MAX - 3, b"abcd")));
    assert!(msg.contains("past the end"), "{msg}");
    assert_protocol_err(replication(&body(u64::MAX, b"a")));
}

#[test]
fn data_row_lies() {
    // Column length beyond the frame.
    let over = wire(b'D', &[&1i16.to_be_bytes(), &100i32.to_be_bytes(), b"abc"]);
    assert_protocol_err(backend(&over));
    // Negative column count, negative column length other than -1.
    assert_protocol_err(backend(&wire(b'D', &[&(-1i16).to_be_bytes()])));
    let neg = wire(b'D', &[&1i16.to_be_bytes(), &(-2i32).to_be_bytes()]);
    assert_protocol_err(backend(&neg));
    // Two columns promised, one present; one promised, two present.
    let short = wire(b'D', &[&2i16.to_be_bytes(), &(-1i32).to_be_bytes()]);
    assert_protocol_err(backend(&short));
    let trailing = wire(
        b'D',
        &[
            &1i16.to_be_bytes(),
            &(-1i32).to_be_bytes(),
            &(-1i32).to_be_bytes(),
        ],
    );
    assert_protocol_err(backend(&trailing));
    // A count with no bytes at all.
    assert_protocol_err(backend(b"D\0\0\0\x04"));
    // i32::MAX as a column length must not be taken at its word.
    let huge = wire(b'D', &[&1i16.to_be_bytes(), &i32::MAX.to_be_bytes()]);
    assert_protocol_err(backend(&huge));
}

#[test]
fn row_description_claiming_more_fields_than_bytes() {
    let bytes = wire(b'T', &[&30_000i16.to_be_bytes(), b"a\0\0\0\0\0\0\0"]);
    let msg = assert_protocol_err(backend(&bytes));
    assert!(msg.contains("30000"), "{msg}");
    assert_protocol_err(backend(&wire(b'T', &[&i16::MAX.to_be_bytes()])));
    assert_protocol_err(backend(&wire(b'T', &[&(-1i16).to_be_bytes()])));
    // One field, one byte short.
    let mut field = b"x\0".to_vec();
    field.extend_from_slice(&[0; 17]);
    assert_protocol_err(backend(&wire(b'T', &[&1i16.to_be_bytes(), &field])));
}

#[test]
fn negative_and_oversized_counts_elsewhere() {
    let nego = |n: i32| wire(b'v', &[&0i32.to_be_bytes(), &n.to_be_bytes(), b"x\0"]);
    assert!(backend(&nego(1)).is_ok());
    assert_protocol_err(backend(&nego(-1)));
    assert_protocol_err(backend(&nego(2)));
    assert_protocol_err(backend(&nego(i32::MAX)));
    assert_protocol_err(backend(&wire(b'W', &[b"\0", &(-1i16).to_be_bytes()])));
    assert_protocol_err(backend(&wire(b'W', &[b"\0", &5i16.to_be_bytes()])));
    assert_protocol_err(backend(&wire(b'H', &[b"\0", &i16::MAX.to_be_bytes()])));
}

#[test]
fn every_length_above_its_cap_is_rejected_before_reserving() {
    assert_eq!(max_body_len(b'd'), MAX_COPY_DATA);
    assert_eq!(max_body_len(b'D'), MAX_DATA_ROW);
    for tag in 0..=u8::MAX {
        let cap = max_body_len(tag);
        if !matches!(tag, b'd' | b'D') {
            assert_eq!(cap, MAX_OTHER, "tag {tag}");
        }
        for len in [cap as i64 + 5, i32::MAX as i64] {
            let mut buf = BytesMut::with_capacity(16);
            buf.extend_from_slice(&[tag]);
            buf.extend_from_slice(&(len as i32).to_be_bytes());
            assert_protocol_err(decode_frame(&mut buf));
            assert!(
                buf.capacity() < 1024,
                "tag {tag} reserved {}",
                buf.capacity()
            );
        }
        for len in [-1i32, 0, 3, i32::MIN] {
            let mut buf = BytesMut::from(&[tag][..]);
            buf.extend_from_slice(&len.to_be_bytes());
            assert_protocol_err(decode_frame(&mut buf));
        }
    }
    // Exactly at the cap is fine: more bytes are awaited.
    for tag in [b'd', b'D', b'E'] {
        let mut buf = BytesMut::from(&[tag][..]);
        buf.extend_from_slice(&((max_body_len(tag) + 4) as i32).to_be_bytes());
        assert_eq!(decode_frame(&mut buf).unwrap(), None);
    }
}

#[test]
fn frontend_decoders_check_lengths() {
    let startup = |len: i32| {
        let mut buf = BytesMut::from(&len.to_be_bytes()[..]);
        frontend::decode_startup(&mut buf)
    };
    for len in [-1, 0, 7, MAX_OTHER as i32 + 1, i32::MAX] {
        assert_protocol_err(startup(len));
    }
    // Params without the final empty name, and a name without a value.
    let mut buf = BytesMut::from(&b"\0\0\0\x0d\0\x03\0\0user\0"[..]);
    assert_protocol_err(frontend::decode_startup(&mut buf));
    // SSLRequest with trailing bytes.
    let mut buf = BytesMut::from(&b"\0\0\0\x09\x04\xd2\x16\x2fx"[..]);
    assert_protocol_err(frontend::decode_startup(&mut buf));
    let mut buf = BytesMut::from(&b"c\0\0\0\x05x"[..]);
    assert_protocol_err(frontend::decode(&mut buf));
    let mut buf = BytesMut::from(&b"Z\0\0\0\x04"[..]);
    assert_protocol_err(frontend::decode(&mut buf));
    let mut buf = BytesMut::from(&b"d\x7f\xff\xff\xff"[..]);
    assert_protocol_err(frontend::decode(&mut buf));
}

#[test]
fn a_frame_arriving_byte_by_byte_is_awaited_not_an_error() {
    let bytes = wire(b'E', &[b"SFATAL\0", b"C28P01\0", b"Mno\0", b"\0"]);
    let mut buf = BytesMut::new();
    for (i, b) in bytes.iter().enumerate() {
        assert_eq!(decode_frame(&mut buf).unwrap(), None, "after {i} bytes");
        buf.extend_from_slice(&[*b]);
    }
    let f = decode_frame(&mut buf).unwrap().unwrap();
    assert_eq!(f.tag, b'E');
    assert!(buf.is_empty());
}

#[test]
fn xlog_data_payload_is_a_slice_of_the_read_buffer() {
    let x = XLogData {
        wal_start: Lsn(0x0300_0000),
        wal_end: Lsn(0x0300_1000),
        send_time: std::time::UNIX_EPOCH,
        data: Bytes::from(vec![0xa5; 4096]),
    };
    let mut buf = BytesMut::new();
    buf.extend_from_slice(b"Z\0\0\0\x05I");
    x.encode(&mut buf);
    buf.extend_from_slice(b"c\0\0\0\x04");
    let range = buf.as_ptr_range();

    let first = decode_frame(&mut buf).unwrap().unwrap();
    assert_eq!(first.tag, b'Z');
    let f = decode_frame(&mut buf).unwrap().unwrap();
    let body_range = f.body.as_ptr_range();
    assert!(range.start <= body_range.start && body_range.end <= range.end);
    let BackendMessage::CopyData(body) = BackendMessage::decode(f).unwrap() else {
        panic!("not CopyData")
    };
    assert_eq!(body.as_ptr_range(), body_range, "CopyData body was copied");
    let ReplicationMessage::XLogData(got) = ReplicationMessage::decode(body).unwrap() else {
        panic!("not XLogData")
    };
    assert_eq!(got, x);
    let data = got.data.as_ptr_range();
    assert!(
        body_range.start <= data.start && data.end <= body_range.end,
        "XLogData payload was copied"
    );
    assert_eq!(
        data.start as usize - body_range.start as usize,
        XLogData::HEADER_LEN
    );
    // The rest of the buffer is still there.
    assert_eq!(decode_frame(&mut buf).unwrap().unwrap().tag, b'c');
}

#[test]
fn decode_of_a_hand_built_frame_with_any_tag_does_not_trust_lengths() {
    // A Frame can be built without decode_frame; decode still checks every count.
    for tag in [b'T', b'D', b'v', b'W', b'R', b'E', b'K'] {
        let f = Frame {
            tag,
            body: Bytes::from_static(b"\x7f\xff\x7f\xff\xff\xff"),
        };
        assert_protocol_err(BackendMessage::decode(f));
    }
    let _ = frame(b"I\0\0\0\x04");
}
