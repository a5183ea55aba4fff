//! proptest: every encoder's output decodes back to what was encoded, and no decoder panics on
//! arbitrary bytes.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::encode;
use crate::auth::{Authenticator, ClientNonce, ScramBinding, ScramClient};
use crate::error::DbError;
use crate::lsn::{Lsn, WalSegmentSize};
use crate::protocol::backend::{Authentication, BackendMessage, DataRow};
use crate::protocol::codec::{decode_frame, Frame};
use crate::protocol::command::parse_history;
use crate::protocol::frontend::{self, FrontendMessage};
use crate::protocol::replication::{
    HotStandbyFeedback, PrimaryKeepalive, ReplicationMessage, StandbyMessage, StandbyStatusUpdate,
    XLogData,
};
use crate::server_version::ServerVersion;
use crate::timestamp::{from_system_time, to_system_time};

/// Any wire timestamp; `SystemTime` holds the whole `i64` range of microseconds.
fn time() -> impl Strategy<Value = std::time::SystemTime> {
    any::<i64>().prop_map(to_system_time)
}

fn xlog_data() -> impl Strategy<Value = XLogData> {
    (
        any::<u64>(),
        any::<u64>(),
        time(),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(start, end, send_time, data)| XLogData {
            // Keep start + len inside the LSN space, as a valid server does.
            wal_start: Lsn(start.min(u64::MAX - data.len() as u64)),
            wal_end: Lsn(end),
            send_time,
            data: Bytes::from(data),
        })
}

fn replication_message() -> impl Strategy<Value = ReplicationMessage> {
    prop_oneof![
        xlog_data().prop_map(ReplicationMessage::XLogData),
        (any::<u64>(), time(), any::<bool>()).prop_map(|(e, t, r)| {
            ReplicationMessage::PrimaryKeepalive(PrimaryKeepalive {
                wal_end: Lsn(e),
                send_time: t,
                reply_requested: r,
            })
        }),
    ]
}

fn standby_message() -> impl Strategy<Value = StandbyMessage> {
    prop_oneof![
        (any::<[u64; 3]>(), time(), any::<bool>()).prop_map(|([w, f, a], t, r)| {
            StandbyMessage::StatusUpdate(StandbyStatusUpdate {
                write: Lsn(w),
                flush: Lsn(f),
                apply: Lsn(a),
                send_time: t,
                reply_requested: r,
            })
        }),
        (time(), any::<[u32; 4]>()).prop_map(|(t, [x, xe, c, ce])| {
            StandbyMessage::HotStandbyFeedback(HotStandbyFeedback {
                send_time: t,
                xmin: x,
                xmin_epoch: xe,
                catalog_xmin: c,
                catalog_xmin_epoch: ce,
            })
        }),
    ]
}

/// A string that can go on the wire (no NUL).
fn cstr() -> impl Strategy<Value = String> {
    "[^\0]{0,20}"
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn authentication() -> impl Strategy<Value = Authentication> {
    prop_oneof![
        Just(Authentication::Ok),
        Just(Authentication::KerberosV5),
        Just(Authentication::CleartextPassword),
        any::<[u8; 4]>().prop_map(|salt| Authentication::Md5Password { salt }),
        Just(Authentication::Gss),
        bytes(40).prop_map(Authentication::GssContinue),
        Just(Authentication::Sspi),
        proptest::collection::vec("[^\0]{1,20}", 0..4).prop_map(Authentication::Sasl),
        bytes(80).prop_map(Authentication::SaslContinue),
        bytes(80).prop_map(Authentication::SaslFinal),
    ]
}

fn db_error() -> impl Strategy<Value = DbError> {
    let opt = || proptest::option::of(cstr());
    (
        ("[^\0]{1,10}", cstr(), cstr()),
        (opt(), opt(), opt(), opt(), opt(), opt()),
    )
        .prop_map(
            |((severity, code, message), (detail, hint, where_, file, line, routine))| DbError {
                severity,
                code,
                message,
                detail,
                hint,
                where_,
                file,
                line,
                routine,
            },
        )
}

fn backend_message() -> impl Strategy<Value = BackendMessage> {
    let columns = proptest::collection::vec(
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
        0..6,
    );
    prop_oneof![
        authentication().prop_map(BackendMessage::Authentication),
        (cstr(), cstr()).prop_map(|(name, value)| BackendMessage::ParameterStatus { name, value }),
        (
            any::<i32>(),
            proptest::collection::vec(any::<u8>(), 4..=256)
        )
            .prop_map(|(p, k)| {
                BackendMessage::BackendKeyData {
                    process_id: p,
                    secret_key: Bytes::from(k),
                }
            }),
        prop::sample::select(&b"ITE"[..]).prop_map(BackendMessage::ReadyForQuery),
        db_error().prop_map(BackendMessage::ErrorResponse),
        db_error().prop_map(BackendMessage::NoticeResponse),
        proptest::collection::vec(cstr(), 0..6).prop_map(BackendMessage::RowDescription),
        columns.prop_map(|cols| BackendMessage::DataRow(DataRow::new(
            cols.iter().map(|c| c.as_deref())
        ))),
        cstr().prop_map(BackendMessage::CommandComplete),
        Just(BackendMessage::EmptyQueryResponse),
        Just(BackendMessage::CopyBothResponse),
        Just(BackendMessage::CopyOutResponse),
        Just(BackendMessage::CopyInResponse),
        bytes(100).prop_map(BackendMessage::CopyData),
        Just(BackendMessage::CopyDone),
        (any::<i32>(), proptest::collection::vec(cstr(), 0..4)).prop_map(|(n, u)| {
            BackendMessage::NegotiateProtocolVersion {
                newest_minor: n,
                unrecognized: u,
            }
        }),
    ]
}

/// A body that often starts like a real message, so decoders get past the first byte.
fn body_for(tags: &'static [u8]) -> impl Strategy<Value = Bytes> {
    (
        prop::sample::select(tags),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(t, rest)| {
            let mut b = vec![t];
            b.extend(rest);
            Bytes::from(b)
        })
}

/// Splits every frame off `bytes`; stops at "need more" or an error.
fn nonce() -> ClientNonce {
    ClientNonce::from_random([7; ClientNonce::RANDOM_BYTES])
}

fn drain_frames(bytes: &[u8]) {
    let mut buf = BytesMut::from(bytes);
    while let Ok(Some(f)) = decode_frame(&mut buf) {
        let _ = BackendMessage::decode(f);
    }
}

proptest! {
    #[test]
    fn replication_messages_round_trip(m in replication_message()) {
        let mut buf = BytesMut::new();
        m.encode(&mut buf);
        let f = decode_frame(&mut buf).unwrap().unwrap();
        prop_assert!(buf.is_empty());
        prop_assert_eq!(f.tag, b'd');
        let BackendMessage::CopyData(body) = BackendMessage::decode(f).unwrap() else {
            panic!("not CopyData");
        };
        prop_assert_eq!(ReplicationMessage::decode(body).unwrap(), m);
    }

    #[test]
    fn standby_messages_round_trip(m in standby_message()) {
        let mut buf = BytesMut::new();
        m.encode(&mut buf);
        let Some(FrontendMessage::CopyData(body)) = frontend::decode(&mut buf).unwrap() else {
            panic!("not CopyData");
        };
        prop_assert!(buf.is_empty());
        prop_assert_eq!(StandbyMessage::decode(&body).unwrap(), m);
    }

    #[test]
    fn timestamps_round_trip(micros: i64) {
        prop_assert_eq!(from_system_time(to_system_time(micros)), micros);
    }

    #[test]
    fn backend_messages_round_trip(m in backend_message()) {
        let bytes = encode(&m);
        let mut buf = BytesMut::from(&bytes[..]);
        let f = decode_frame(&mut buf).unwrap().unwrap();
        prop_assert!(buf.is_empty());
        prop_assert_eq!(BackendMessage::decode(f).unwrap(), m);
    }

    #[test]
    fn a_stream_of_messages_split_anywhere_decodes_the_same(
        msgs in proptest::collection::vec(backend_message(), 1..5),
        cut in any::<prop::sample::Index>(),
    ) {
        let all: Vec<u8> = msgs.iter().flat_map(encode).collect();
        let cut = cut.index(all.len() + 1);
        let mut buf = BytesMut::from(&all[..cut]);
        let mut got = Vec::new();
        while let Some(f) = decode_frame(&mut buf).unwrap() {
            got.push(BackendMessage::decode(f).unwrap());
        }
        buf.extend_from_slice(&all[cut..]);
        while let Some(f) = decode_frame(&mut buf).unwrap() {
            got.push(BackendMessage::decode(f).unwrap());
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        drain_frames(&bytes);
    }

    #[test]
    fn backend_decode_never_panics(tag: u8, body in bytes(200)) {
        let _ = BackendMessage::decode(Frame { tag, body });
    }

    #[test]
    fn backend_decode_of_known_tags_never_panics(
        tag in prop::sample::select(&b"RSKZENTDCIWHGdcv"[..]),
        body in bytes(200),
    ) {
        let _ = BackendMessage::decode(Frame { tag, body });
    }

    #[test]
    fn replication_decoders_never_panic(
        server in body_for(b"wk"),
        client in body_for(b"rh"),
        any_body in bytes(80),
    ) {
        let _ = ReplicationMessage::decode(server);
        let _ = ReplicationMessage::decode(any_body.clone());
        let _ = StandbyMessage::decode(&client);
        let _ = StandbyMessage::decode(&any_body);
    }

    #[test]
    fn frontend_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = frontend::decode(&mut buf) {}
        let mut buf = BytesMut::from(&bytes[..]);
        let _ = frontend::decode_startup(&mut buf);
        // A plausible length in front of arbitrary bytes reaches the body parser.
        let mut framed = ((bytes.len() + 4) as i32).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        let _ = frontend::decode_startup(&mut BytesMut::from(&framed[..]));
    }

    #[test]
    fn text_parsers_never_panic(s in "\\PC{0,40}", raw in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = s.parse::<ServerVersion>();
        let _ = WalSegmentSize::parse_setting(&s);
        let _ = parse_history(s.as_bytes());
        let _ = parse_history(&raw);
    }

    #[test]
    fn history_like_text_never_panics(
        lines in proptest::collection::vec(("[ \t#]{0,2}[0-9+-]{0,11}", "[ \t]{0,2}", "[0-9A-Fa-f/ ]{0,20}", "\\PC{0,10}"), 0..6),
    ) {
        let text: String = lines
            .iter()
            .map(|(a, b, c, d)| format!("{a}{b}{c}\t{d}\n"))
            .collect();
        if let Ok(entries) = parse_history(text.as_bytes()) {
            for w in entries.windows(2) {
                prop_assert!(w[0].timeline < w[1].timeline);
            }
        }
    }

    #[test]
    fn server_version_of_numbers(major in 10u32..100, minor in 0u32..100) {
        let v = format!("{major}.{minor}").parse::<ServerVersion>().ok();
        prop_assert_eq!(v.map(ServerVersion::num), Some(major * 10_000 + minor));
    }

    #[test]
    fn scram_never_panics_on_arbitrary_server_messages(
        first in bytes(120),
        last in bytes(120),
    ) {
        let mut c = ScramClient::new(b"pw", ScramBinding::Unsupported, nonce());
        let _ = c.server_first(&first);
        let _ = c.server_final(&last);
        prop_assert!(!c.is_finished());
    }

    #[test]
    fn scram_with_our_nonce_then_arbitrary_final(
        suffix in "[\\x21-\\x2B\\x2D-\\x7E]{1,16}",
        salt in "([A-Za-z0-9+/]{4}){1,6}",
        iterations in 1u32..64,
        last in bytes(120),
        last_text in "v=[A-Za-z0-9+/=]{0,60}|e=[a-z-]{0,20}",
    ) {
        // A server-first that extends our nonce, so the client gets to its final step.
        let started = || {
            let mut c = ScramClient::new(b"pw", ScramBinding::Unsupported, nonce());
            let nonce = std::str::from_utf8(c.client_first()).unwrap()["n,,n=,r=".len()..].to_owned();
            let first = format!("r={nonce}{suffix},s={salt},i={iterations}");
            let fin = c.server_first(first.as_bytes()).unwrap().to_vec();
            let expected_prefix = format!("c=biws,r={nonce}{suffix},p=");
            assert!(fin.starts_with(expected_prefix.as_bytes()));
            c
        };
        let mut c = started();
        prop_assert!(c.server_final(&last).is_err());
        prop_assert!(!c.is_finished());
        let mut c = started();
        prop_assert!(c.server_final(last_text.as_bytes()).is_err());
        prop_assert!(!c.is_finished());
        // Once failed, stays failed.
        prop_assert!(c.server_final(last_text.as_bytes()).is_err());
    }

    #[test]
    fn authenticator_never_panics(
        password in proptest::option::of("[^\0]{0,12}"),
        reqs in proptest::collection::vec(authentication(), 0..6),
    ) {
        let mut a = Authenticator::new("alice", password.as_deref(), nonce());
        let mut dst = BytesMut::new();
        for r in reqs {
            if a.handle(r, &mut dst).is_err() {
                break;
            }
        }
        // Whatever was written is a sequence of well-formed client messages.
        while let Some(m) = frontend::decode(&mut dst).unwrap() {
            prop_assert!(matches!(m, FrontendMessage::Password(_)));
        }
        prop_assert!(dst.is_empty());
    }

    #[test]
    fn authenticator_keeps_going_after_errors(
        reqs in proptest::collection::vec(
            prop_oneof![
                authentication(),
                Just(Authentication::Sasl(vec!["SCRAM-SHA-256".into()])),
            ],
            0..8,
        ),
    ) {
        // A server that keeps sending requests after one was refused, and never proves it
        // knows the password (its SASL messages are arbitrary bytes): each request is still
        // answered or refused cleanly, with an authentication or protocol error, only
        // password messages go out, and once SCRAM has begun no AuthenticationOk is taken.
        use crate::auth::AuthStep;
        use crate::error::Error;
        let mut a = Authenticator::new("alice", Some("pw"), nonce());
        let mut dst = BytesMut::new();
        let mut scram_begun = false;
        for r in reqs {
            let sasl = matches!(r, Authentication::Sasl(_));
            match a.handle(r, &mut dst) {
                Ok(AuthStep::Continue) => scram_begun |= sasl,
                Ok(AuthStep::Done(m)) => prop_assert!(!scram_begun, "accepted as {m:?}"),
                Err(e) => {
                    prop_assert!(matches!(e, Error::Auth(_) | Error::Protocol(_)), "{e:?}")
                }
            }
        }
        while let Some(m) = frontend::decode(&mut dst).unwrap() {
            prop_assert!(matches!(m, FrontendMessage::Password(_)));
        }
        prop_assert!(dst.is_empty());
    }
}
