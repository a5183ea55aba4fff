//! The simple-query and startup state machines, driven by message sequences.

use bytes::{Buf, Bytes, BytesMut};

use super::{assert_protocol_err, complete, error_response, row, row_desc};
use crate::auth::{AuthMethod, ClientNonce};
use crate::error::{Error, Result};
use crate::protocol::backend::{Authentication, BackendMessage};
use crate::protocol::frontend::{self, FrontendMessage};
use crate::protocol::query::{QueryResult, QueryStep, SimpleQuery};
use crate::protocol::startup::{ServerInfo, Startup, StartupParams, StartupStep};
use crate::server_version::ServerVersion;

/// Feeds messages until the exchange is done; every message before the last must continue.
fn run_query(msgs: Vec<BackendMessage>) -> Result<QueryStep> {
    let mut q = SimpleQuery::new();
    let n = msgs.len();
    for (i, m) in msgs.into_iter().enumerate() {
        let step = q.handle(m)?;
        if i + 1 < n {
            assert!(matches!(step, QueryStep::Continue), "message {i}: {step:?}");
        } else {
            return Ok(step);
        }
    }
    unreachable!("no messages")
}

fn done(step: QueryStep) -> Result<Vec<QueryResult>> {
    match step {
        QueryStep::Done(r) => r,
        other => panic!("not done: {other:?}"),
    }
}

fn z() -> BackendMessage {
    BackendMessage::ReadyForQuery(b'I')
}

#[test]
fn two_result_sets() {
    let results = done(
        run_query(vec![
            row_desc(&["a"]),
            row(&[Some("1")]),
            complete("SELECT 1"),
            row_desc(&["b", "c"]),
            row(&[Some("2"), None]),
            row(&[None, Some("3")]),
            complete("SELECT 2"),
            z(),
        ])
        .unwrap(),
    )
    .unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].columns, ["a"]);
    assert_eq!(results[0].rows, [[Some(Bytes::from_static(b"1"))]]);
    assert_eq!(results[0].tag.as_deref(), Some("SELECT 1"));
    assert_eq!(results[1].columns, ["b", "c"]);
    assert_eq!(
        results[1].rows,
        [
            [Some(Bytes::from_static(b"2")), None],
            [None, Some(Bytes::from_static(b"3"))]
        ]
    );
    assert_eq!(results[1].tag.as_deref(), Some("SELECT 2"));
}

#[test]
fn command_without_rows_and_empty_query() {
    let results = done(run_query(vec![complete("DROP_REPLICATION_SLOT"), z()]).unwrap()).unwrap();
    assert_eq!(results.len(), 1);
    assert!(results[0].columns.is_empty() && results[0].rows.is_empty());
    assert_eq!(results[0].tag.as_deref(), Some("DROP_REPLICATION_SLOT"));
    let results = done(run_query(vec![BackendMessage::EmptyQueryResponse, z()]).unwrap()).unwrap();
    assert_eq!(results, [QueryResult::default()]);
    // A result set cut short by ReadyForQuery keeps its rows.
    let results = done(run_query(vec![row_desc(&["a"]), row(&[Some("x")]), z()]).unwrap()).unwrap();
    assert_eq!((results.len(), results[0].tag.clone()), (1, None));
    assert_eq!(results[0].rows.len(), 1);
}

#[test]
fn error_then_ready_for_query_is_the_servers_error() {
    let step = run_query(vec![
        row_desc(&["a"]),
        error_response("ERROR", "42601", "syntax error"),
        z(),
    ])
    .unwrap();
    let err = done(step).unwrap_err();
    assert_eq!(err.code(), Some("42601"));
    assert!(matches!(&err, Error::Db(e) if e.message == "syntax error"));
    // The first error is kept.
    let step = run_query(vec![
        error_response("ERROR", "42704", "first"),
        error_response("ERROR", "XX000", "second"),
        BackendMessage::ReadyForQuery(b'E'),
    ])
    .unwrap();
    assert_eq!(done(step).unwrap_err().code(), Some("42704"));
}

#[test]
fn copy_both_response_starts_streaming() {
    let step = run_query(vec![BackendMessage::CopyBothResponse]).unwrap();
    assert!(matches!(step, QueryStep::CopyBoth));
    // Not after an error.
    assert_protocol_err(run_query(vec![
        error_response("ERROR", "58P01", "gone"),
        BackendMessage::CopyBothResponse,
    ]));
}

#[test]
fn protocol_errors_during_a_query() {
    assert_protocol_err(run_query(vec![row(&[Some("1")])]));
    assert_protocol_err(run_query(vec![row_desc(&["a"]), row(&[Some("1"), None])]));
    assert_protocol_err(run_query(vec![row_desc(&["a"]), row_desc(&["b"])]));
    assert_protocol_err(run_query(vec![BackendMessage::CopyData(Bytes::new())]));
    assert_protocol_err(run_query(vec![BackendMessage::CopyDone]));
    assert_protocol_err(run_query(vec![BackendMessage::CopyOutResponse]));
    assert_protocol_err(run_query(vec![BackendMessage::Authentication(
        Authentication::Ok,
    )]));
}

fn params() -> StartupParams {
    StartupParams {
        user: "alice".into(),
        replication: true,
        ..StartupParams::default()
    }
}

/// Starts a session and checks the startup message it wrote.
fn start(password: Option<&str>) -> Startup {
    let mut dst = BytesMut::new();
    let nonce = ClientNonce::from_random([7; ClientNonce::RANDOM_BYTES]);
    let s = Startup::new(&params(), password, nonce, &mut dst).unwrap();
    let msg = frontend::decode_startup(&mut dst).unwrap().unwrap();
    assert!(dst.is_empty());
    let kv = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(
        msg,
        FrontendMessage::Startup {
            version: 196_608,
            params: vec![
                kv("user", "alice"),
                kv("replication", "true"),
                kv("client_encoding", "UTF8")
            ],
        }
    );
    s
}

fn auth(a: Authentication) -> BackendMessage {
    BackendMessage::Authentication(a)
}

/// Feeds `msgs`; returns what was written and the final step.
fn drive(s: &mut Startup, msgs: Vec<BackendMessage>) -> (Vec<u8>, Result<StartupStep>) {
    let mut dst = BytesMut::new();
    let mut last = Ok(StartupStep::Continue);
    for m in msgs {
        last = s.handle(m, &mut dst);
        if !matches!(last, Ok(StartupStep::Continue)) {
            break;
        }
    }
    (dst.to_vec(), last)
}

fn after_auth() -> Vec<BackendMessage> {
    vec![
        auth(Authentication::Ok),
        BackendMessage::ParameterStatus {
            name: "server_version".into(),
            value: "15.4".into(),
        },
        BackendMessage::ParameterStatus {
            name: "integer_datetimes".into(),
            value: "on".into(),
        },
        BackendMessage::BackendKeyData {
            process_id: 4242,
            secret_key: Bytes::from_static(b"\x01\x02\x03\x04"),
        },
        z(),
    ]
}

fn ready(step: Result<StartupStep>) -> ServerInfo {
    match step {
        Ok(StartupStep::Ready(info)) => info,
        other => panic!("not ready: {other:?}"),
    }
}

#[test]
fn startup_trust() {
    let mut s = start(None);
    let (written, step) = drive(&mut s, after_auth());
    assert!(written.is_empty());
    let info = ready(step);
    assert_eq!(info.version.map(ServerVersion::num), Some(150004));
    assert_eq!(info.process_id, 4242);
    assert_eq!(info.auth_method, Some(AuthMethod::Trust));
    assert_eq!(info.parameter("integer_datetimes"), Some("on"));
    assert_eq!(info.parameter("server_version"), Some("15.4"));
}

#[test]
fn startup_cleartext() {
    let mut s = start(Some("secret"));
    let mut msgs = vec![auth(Authentication::CleartextPassword)];
    msgs.extend(after_auth());
    let (written, step) = drive(&mut s, msgs);
    assert_eq!(written, b"p\0\0\0\x0bsecret\0");
    assert_eq!(ready(step).auth_method, Some(AuthMethod::Cleartext));
    // No password: an authentication error, nothing written.
    let (written, step) = drive(
        &mut start(None),
        vec![auth(Authentication::CleartextPassword)],
    );
    assert!(written.is_empty());
    assert!(
        matches!(step, Err(Error::PasswordRequired { .. })),
        "{step:?}"
    );
}

#[test]
fn startup_md5() {
    let mut s = start(Some("secret"));
    let mut msgs = vec![auth(Authentication::Md5Password { salt: [1, 2, 3, 4] })];
    msgs.extend(after_auth());
    let (written, step) = drive(&mut s, msgs);
    // "md5" + md5(md5("secret" + "alice") as hex + salt), computed independently.
    let mut expected = b"p\0\0\0\x28".to_vec();
    expected.extend_from_slice(b"md598a0412b9c31436fc53776e863350083\0");
    assert_eq!(written, expected);
    assert_eq!(ready(step).auth_method, Some(AuthMethod::Md5));
}

#[test]
fn startup_refuses_unsupported_methods() {
    let err = |req| {
        let (_, step) = drive(&mut start(Some("pw")), vec![auth(req)]);
        match step {
            Err(Error::Auth(m)) => m,
            other => panic!("{other:?}"),
        }
    };
    let m = err(Authentication::Sasl(vec!["SCRAM-SHA-256-PLUS".into()]));
    assert!(m.contains("SCRAM-SHA-256-PLUS"), "{m}");
    assert!(err(Authentication::Gss).contains("GSSAPI"));
    assert!(err(Authentication::GssContinue(Bytes::new())).contains("GSSAPI"));
    assert!(err(Authentication::Sspi).contains("SSPI"));
    assert!(err(Authentication::KerberosV5).contains("Kerberos"));
}

#[test]
fn startup_server_error() {
    let (_, step) = drive(
        &mut start(Some("wrong")),
        vec![
            auth(Authentication::CleartextPassword),
            error_response("FATAL", "28P01", "password authentication failed"),
        ],
    );
    let e = step.unwrap_err();
    assert_eq!(e.code(), Some("28P01"));
    assert_eq!(e.as_db().unwrap().severity, "FATAL");
}

#[test]
fn startup_out_of_order() {
    // BackendKeyData and ReadyForQuery before AuthenticationOk; a second AuthenticationOk.
    let key = BackendMessage::BackendKeyData {
        process_id: 1,
        secret_key: Bytes::from_static(b"abcd"),
    };
    assert_protocol_err(drive(&mut start(None), vec![key]).1);
    assert_protocol_err(drive(&mut start(None), vec![z()]).1);
    let twice = vec![auth(Authentication::Ok), auth(Authentication::Ok)];
    assert_protocol_err(drive(&mut start(None), twice).1);
    assert_protocol_err(drive(&mut start(None), vec![BackendMessage::CopyDone]).1);
    // NegotiateProtocolVersion and notices before authentication are fine.
    let mut msgs = vec![
        BackendMessage::NegotiateProtocolVersion {
            newest_minor: 0,
            unrecognized: vec![],
        },
        BackendMessage::NoticeResponse(Default::default()),
    ];
    msgs.extend(after_auth());
    assert_eq!(
        ready(drive(&mut start(None), msgs).1).version,
        Some(ServerVersion::from_num(150004))
    );
}

/// Splits a SASLInitialResponse body into mechanism and data.
fn sasl_initial(written: &[u8]) -> (String, Vec<u8>) {
    let mut buf = BytesMut::from(written);
    let Some(FrontendMessage::Password(mut body)) = frontend::decode(&mut buf).unwrap() else {
        panic!("not a password message")
    };
    let nul = body.iter().position(|&b| b == 0).unwrap();
    let mech = String::from_utf8(body.split_to(nul).to_vec()).unwrap();
    body.advance(1);
    let len = body.get_i32() as usize;
    assert_eq!(len, body.len());
    (mech, body.to_vec())
}

#[test]
fn startup_scram_exchange_up_to_the_server_signature() {
    let mut s = start(Some("pw"));
    let offer = auth(Authentication::Sasl(vec![
        "SCRAM-SHA-256-PLUS".into(),
        "SCRAM-SHA-256".into(),
    ]));
    let (written, step) = drive(&mut s, vec![offer]);
    assert!(matches!(step, Ok(StartupStep::Continue)));
    let (mech, first) = sasl_initial(&written);
    assert_eq!(mech, "SCRAM-SHA-256");
    let first = String::from_utf8(first).unwrap();
    let nonce = first
        .strip_prefix("n,,n=,r=")
        .expect("gs2 header, no binding");
    assert!(!nonce.is_empty());

    let server_first = format!("r={nonce}SRV,s=c2FsdHNhbHQ=,i=4096");
    let (written, step) = drive(
        &mut s,
        vec![auth(Authentication::SaslContinue(Bytes::from(
            server_first,
        )))],
    );
    assert!(matches!(step, Ok(StartupStep::Continue)));
    let mut buf = BytesMut::from(&written[..]);
    let Some(FrontendMessage::Password(fin)) = frontend::decode(&mut buf).unwrap() else {
        panic!("not a SASLResponse")
    };
    let fin = std::str::from_utf8(&fin).unwrap();
    assert!(fin.starts_with(&format!("c=biws,r={nonce}SRV,p=")), "{fin}");

    // AuthenticationOk before the server proved itself is refused.
    let (_, step) = drive(&mut s, vec![auth(Authentication::Ok)]);
    assert!(matches!(step, Err(Error::Auth(_))), "{step:?}");
    // A wrong signature is refused too.
    let bad = Bytes::from_static(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    let (_, step) = drive(&mut s, vec![auth(Authentication::SaslFinal(bad))]);
    assert!(matches!(step, Err(Error::Auth(_))), "{step:?}");
}

#[test]
fn startup_sasl_out_of_order() {
    let cont = auth(Authentication::SaslContinue(Bytes::from_static(b"r=x")));
    assert_protocol_err(drive(&mut start(Some("pw")), vec![cont]).1);
    let fin = auth(Authentication::SaslFinal(Bytes::from_static(b"v=x")));
    assert_protocol_err(drive(&mut start(Some("pw")), vec![fin]).1);
    let offer = || auth(Authentication::Sasl(vec!["SCRAM-SHA-256".into()]));
    assert_protocol_err(drive(&mut start(Some("pw")), vec![offer(), offer()]).1);
    let (_, step) = drive(&mut start(None), vec![offer()]);
    assert!(
        matches!(step, Err(Error::PasswordRequired { .. })),
        "{step:?}"
    );
}
