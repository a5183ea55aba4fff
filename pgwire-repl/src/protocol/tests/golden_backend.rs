//! Server messages decoded from bytes written by hand from
//! <https://www.postgresql.org/docs/current/protocol-message-formats.html>, and encoded back.

use bytes::Bytes;

use super::{backend, encode, wire};
use crate::error::DbError;
use crate::protocol::backend::{Authentication, BackendMessage};

/// Decodes `bytes` to `expected`, and checks that encoding gives bytes that decode back equal.
#[track_caller]
fn golden(bytes: &[u8], expected: BackendMessage) {
    let msg = backend(bytes).unwrap();
    assert_eq!(msg, expected);
    assert_eq!(backend(&encode(&msg)).unwrap(), expected);
}

/// As [`golden`], and the encoder writes exactly the hand-written bytes.
#[track_caller]
fn golden_exact(bytes: &[u8], expected: BackendMessage) {
    golden(bytes, expected.clone());
    assert_eq!(encode(&expected), bytes, "encoding of {expected:?}");
}

fn auth(a: Authentication) -> BackendMessage {
    BackendMessage::Authentication(a)
}

#[test]
fn authentication_fixed_requests() {
    golden_exact(b"R\0\0\0\x08\0\0\0\0", auth(Authentication::Ok));
    golden_exact(b"R\0\0\0\x08\0\0\0\x02", auth(Authentication::KerberosV5));
    golden_exact(
        b"R\0\0\0\x08\0\0\0\x03",
        auth(Authentication::CleartextPassword),
    );
    golden_exact(b"R\0\0\0\x08\0\0\0\x07", auth(Authentication::Gss));
    golden_exact(b"R\0\0\0\x08\0\0\0\x09", auth(Authentication::Sspi));
}

#[test]
fn authentication_md5_salt() {
    golden_exact(
        b"R\0\0\0\x0c\0\0\0\x05\x01\x02\xfe\xff",
        auth(Authentication::Md5Password {
            salt: [1, 2, 0xfe, 0xff],
        }),
    );
}

#[test]
fn authentication_sasl_mechanism_list() {
    // Int32(10), then each mechanism as a String, then a zero byte ending the list.
    let bytes = b"R\0\0\0\x2a\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0";
    golden_exact(
        bytes,
        auth(Authentication::Sasl(vec![
            "SCRAM-SHA-256-PLUS".into(),
            "SCRAM-SHA-256".into(),
        ])),
    );
    golden_exact(
        b"R\0\0\0\x09\0\0\0\x0a\0",
        auth(Authentication::Sasl(vec![])),
    );
}

#[test]
fn authentication_sasl_continue_final_and_gss_continue() {
    golden_exact(
        b"R\0\0\0\x19\0\0\0\x0br=x,s=eA==,i=4096",
        auth(Authentication::SaslContinue(Bytes::from_static(
            b"r=x,s=eA==,i=4096",
        ))),
    );
    golden_exact(
        b"R\0\0\0\x16\0\0\0\x0cv=c2lnbmF0dXJl",
        auth(Authentication::SaslFinal(Bytes::from_static(
            b"v=c2lnbmF0dXJl",
        ))),
    );
    golden_exact(
        b"R\0\0\0\x0b\0\0\0\x08tok",
        auth(Authentication::GssContinue(Bytes::from_static(b"tok"))),
    );
}

#[test]
fn parameter_status() {
    golden_exact(
        b"S\0\0\0\x18server_version\x0015.4\0",
        BackendMessage::ParameterStatus {
            name: "server_version".into(),
            value: "15.4".into(),
        },
    );
    golden_exact(
        &wire(b'S', &[b"application_name\0", b"\0"]),
        BackendMessage::ParameterStatus {
            name: "application_name".into(),
            value: String::new(),
        },
    );
}

#[test]
fn backend_key_data() {
    golden_exact(
        b"K\0\0\0\x0c\0\0\x30\x39\xde\xad\xbe\xef",
        BackendMessage::BackendKeyData {
            process_id: 12345,
            secret_key: Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef]),
        },
    );
    // Protocol 3.2 allows keys of up to 256 bytes.
    let key = [7u8; 32];
    golden_exact(
        &wire(b'K', &[&(-2i32).to_be_bytes(), &key]),
        BackendMessage::BackendKeyData {
            process_id: -2,
            secret_key: Bytes::copy_from_slice(&key),
        },
    );
}

#[test]
fn ready_for_query_each_status() {
    golden_exact(b"Z\0\0\0\x05I", BackendMessage::ReadyForQuery(b'I'));
    golden_exact(b"Z\0\0\0\x05T", BackendMessage::ReadyForQuery(b'T'));
    golden_exact(b"Z\0\0\0\x05E", BackendMessage::ReadyForQuery(b'E'));
}

#[test]
fn error_response_with_all_common_fields() {
    let bytes = wire(
        b'E',
        &[
            b"SERROR\0",
            b"VERROR\0",
            b"C58P01\0",
            b"Mrequested WAL segment 000000010000000000000001 has already been removed\0",
            b"Dsome detail\0",
            b"Hsome hint\0",
            b"\0",
        ],
    );
    let expected = DbError {
        severity: "ERROR".into(),
        code: "58P01".into(),
        message: "requested WAL segment 000000010000000000000001 has already been removed".into(),
        detail: Some("some detail".into()),
        hint: Some("some hint".into()),
        ..DbError::default()
    };
    golden_exact(&bytes, BackendMessage::ErrorResponse(expected.clone()));
    // The same fields in a NoticeResponse.
    let mut notice = bytes.clone();
    notice[0] = b'N';
    golden_exact(&notice, BackendMessage::NoticeResponse(expected));
}

#[test]
fn error_response_severity_and_unknown_fields() {
    // `V` (never localized) wins over a localized `S`, whatever the order.
    let m = backend(&wire(
        b'E',
        &[
            b"VFATAL\0",
            b"SSCHWERWIEGEND\0",
            b"C28P01\0",
            b"Mnope\0",
            b"\0",
        ],
    ))
    .unwrap();
    let BackendMessage::ErrorResponse(e) = m else {
        panic!("{m:?}")
    };
    assert_eq!((e.severity.as_str(), e.code.as_str()), ("FATAL", "28P01"));
    // Before 9.6 only `S` is sent. Unknown field types (`P`, `s`, `q`) are ignored.
    let m = backend(&wire(
        b'E',
        &[
            b"SPANIC\0",
            b"P12\0",
            b"spublic\0",
            b"qwhat\0",
            b"Mboom\0",
            b"\0",
        ],
    ))
    .unwrap();
    let BackendMessage::ErrorResponse(e) = m else {
        panic!("{m:?}")
    };
    assert_eq!((e.severity.as_str(), e.message.as_str()), ("PANIC", "boom"));
    // W, F, L, R are kept.
    let m = backend(&wire(
        b'E',
        &[
            b"Wctx\0",
            b"Fwalsender.c\0",
            b"L123\0",
            b"RStartReplication\0",
            b"\0",
        ],
    ))
    .unwrap();
    let BackendMessage::ErrorResponse(e) = m else {
        panic!("{m:?}")
    };
    assert_eq!(e.where_.as_deref(), Some("ctx"));
    assert_eq!(e.file.as_deref(), Some("walsender.c"));
    assert_eq!(e.line.as_deref(), Some("123"));
    assert_eq!(e.routine.as_deref(), Some("StartReplication"));
    assert_eq!(e.severity, "ERROR", "no severity field defaults to ERROR");
}

#[test]
fn row_description_of_identify_system() {
    // name, table oid, column number, type oid, type size, type modifier, format code
    let field = |name: &str, typ: i32, size: i16| -> Vec<u8> {
        let mut f = name.as_bytes().to_vec();
        f.push(0);
        f.extend_from_slice(&0i32.to_be_bytes());
        f.extend_from_slice(&0i16.to_be_bytes());
        f.extend_from_slice(&typ.to_be_bytes());
        f.extend_from_slice(&size.to_be_bytes());
        f.extend_from_slice(&(-1i32).to_be_bytes());
        f.extend_from_slice(&0i16.to_be_bytes());
        f
    };
    let bytes = wire(
        b'T',
        &[
            &4i16.to_be_bytes(),
            &field("systemid", 25, -1),
            &field("timeline", 23, 4),
            &field("xlogpos", 25, -1),
            &field("dbname", 25, -1),
        ],
    );
    golden(
        &bytes,
        super::row_desc(&["systemid", "timeline", "xlogpos", "dbname"]),
    );
    // The encoder describes every column as text (oid 25, size -1).
    let text_only = wire(
        b'T',
        &[&1i16.to_be_bytes(), &field("next_tli_startpos", 25, -1)],
    );
    golden_exact(&text_only, super::row_desc(&["next_tli_startpos"]));
    golden_exact(b"T\0\0\0\x06\0\0", super::row_desc(&[]));
}

#[test]
fn data_row_with_null() {
    let bytes = b"D\0\0\0\x13\0\x03\0\0\0\x011\xff\xff\xff\xff\0\0\0\0";
    let msg = backend(bytes).unwrap();
    let BackendMessage::DataRow(r) = &msg else {
        panic!("{msg:?}")
    };
    assert_eq!(r.len(), 3);
    let cols: Vec<Option<Bytes>> = r.columns().collect::<Result<_, _>>().unwrap();
    assert_eq!(
        cols,
        vec![Some(Bytes::from_static(b"1")), None, Some(Bytes::new())]
    );
    assert_eq!(msg, super::row(&[Some("1"), None, Some("")]));
    golden_exact(bytes, msg);
    golden_exact(b"D\0\0\0\x06\0\0", super::row(&[]));
}

#[test]
fn command_complete_and_empty_query() {
    golden_exact(b"C\0\0\0\x0dSELECT 1\0", super::complete("SELECT 1"));
    golden_exact(
        b"C\0\0\0\x14START_STREAMING\0",
        super::complete("START_STREAMING"),
    );
    golden_exact(b"I\0\0\0\x04", BackendMessage::EmptyQueryResponse);
}

#[test]
fn copy_responses() {
    // What the walsender sends: overall format 0, zero columns.
    golden_exact(b"W\0\0\0\x07\0\0\0", BackendMessage::CopyBothResponse);
    golden_exact(b"H\0\0\0\x07\0\0\0", BackendMessage::CopyOutResponse);
    golden_exact(b"G\0\0\0\x07\0\0\0", BackendMessage::CopyInResponse);
    // Binary with two per-column format codes is also well formed.
    golden(
        b"W\0\0\0\x0b\x01\0\x02\0\x01\0\x01",
        BackendMessage::CopyBothResponse,
    );
}

#[test]
fn copy_data_and_done() {
    golden_exact(
        b"d\0\0\0\x07abc",
        BackendMessage::CopyData(Bytes::from_static(b"abc")),
    );
    golden_exact(b"d\0\0\0\x04", BackendMessage::CopyData(Bytes::new()));
    golden_exact(b"c\0\0\0\x04", BackendMessage::CopyDone);
}

#[test]
fn negotiate_protocol_version() {
    golden_exact(
        b"v\0\0\0\x15\0\0\0\0\0\0\0\x01_pq_.foo\0",
        BackendMessage::NegotiateProtocolVersion {
            newest_minor: 0,
            unrecognized: vec!["_pq_.foo".into()],
        },
    );
    golden_exact(
        b"v\0\0\0\x0c\0\0\0\x02\0\0\0\0",
        BackendMessage::NegotiateProtocolVersion {
            newest_minor: 2,
            unrecognized: vec![],
        },
    );
}
