//! Tests against the scripted walsender, for what a real server will not do on demand: the
//! no-COPY end-of-timeline answer, and observing exactly what the client sends while it waits
//! (malformed input is in `scripted_hostile`; the stream's own status updates, keepalive
//! replies and receive timeout in `scripted_feedback`).
//!
//! Client and server share the test's runtime, so the tests that sleep or wait with a time
//! limit run on tokio's paused clock (`start_paused`): time moves only when every task is
//! waiting, straight to the next timer, so a limit fires only when nothing else can happen
//! and a sleep ends only when the others wait. The tests of the stream's own timers
//! (periodic updates, the receive timeout) cannot: the stream reads `std::time::Instant`,
//! which a paused clock does not stop, so they run on real time, with lower bounds that hold
//! on any machine and margins of seconds against a stalled one.

use std::time::Duration;

use bytes::BytesMut;
use pgwire_repl::protocol::backend::{Authentication, BackendMessage};
use pgwire_repl::protocol::frontend::{self, FrontendMessage};
use pgwire_repl::{
    Client, Config, DbError, Error, FeedbackConfig, Lsn, StartReplication, StreamEnd, StreamEvent,
    TimelineId,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::walsender::{serve, Peer};

pub(crate) fn quiet() -> FeedbackConfig {
    FeedbackConfig {
        status_interval: None,
        receive_timeout: None,
        reply_to_keepalives: true,
    }
}

/// A stream from 0/1000000 that sends nothing unprompted.
pub(crate) async fn quiet_stream(c: &mut Client) -> pgwire_repl::ReplicationStream<'_> {
    c.start_replication(StartReplication::new(Lsn(0x100_0000)).feedback(quiet()))
        .await
        .unwrap()
}

pub(crate) async fn streaming_client(config: &Config) -> Client {
    let client = Client::connect(config).await.unwrap();
    assert_eq!(client.server_version().map(|v| v.num()), Some(150004));
    client
}

#[tokio::test]
async fn identify_system_tolerates_a_fifth_column() {
    let (config, server) = serve("15.4", |mut p| async move {
        assert_eq!(p.expect_query().await, "IDENTIFY_SYSTEM");
        p.result(
            &["systemid", "timeline", "xlogpos", "dbname", "extra"],
            &[&[
                Some("7000000000000000001"),
                Some("3"),
                Some("1/2000000"),
                None,
                Some("x"),
            ]],
            "IDENTIFY_SYSTEM",
        )
        .await;
        p.recv().await;
    })
    .await;
    let mut c = streaming_client(&config).await;
    let sys = c.identify_system().await.unwrap();
    assert_eq!(sys.system_id, 7_000_000_000_000_000_001);
    assert_eq!(sys.timeline, TimelineId(3));
    assert_eq!(sys.xlogpos, Lsn(0x1_0200_0000));
    assert_eq!(sys.dbname, None);
    c.close().await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn read_replication_slot_is_not_sent_to_an_old_server() {
    let (config, server) = serve("14.9", |mut p| async move {
        // The only thing the client may send is Terminate.
        assert_eq!(p.recv().await, Some(FrontendMessage::Terminate));
    })
    .await;
    let mut c = Client::connect(&config).await.unwrap();
    let err = c.read_replication_slot("s").await.unwrap_err();
    assert!(err.to_string().contains("PostgreSQL 15"), "{err}");
    c.close().await.unwrap();
    server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn start_at_the_end_of_a_historic_timeline_without_copy() {
    let (config, server) = serve("15.4", |mut p| async move {
        let q = p.expect_query().await;
        assert_eq!(q, "START_REPLICATION PHYSICAL 0/5000000 TIMELINE 1");
        // The walsender's answer when the start is exactly the switch point.
        p.result(
            &["next_tli", "next_tli_startpos"],
            &[&[Some("2"), Some("0/5000000")]],
            "START_STREAMING",
        )
        .await;
        assert_eq!(p.expect_query().await, "IDENTIFY_SYSTEM");
        p.result(
            &["systemid", "timeline", "xlogpos", "dbname"],
            &[&[Some("1"), Some("2"), Some("0/5000100"), None]],
            "IDENTIFY_SYSTEM",
        )
        .await;
        assert_eq!(p.recv().await, Some(FrontendMessage::Terminate));
    })
    .await;
    let mut c = streaming_client(&config).await;
    let opts = StartReplication::new(Lsn(0x500_0000))
        .timeline(TimelineId(1))
        .feedback(quiet());
    let mut s = c.start_replication(opts).await.unwrap();
    let end = s.recv().await.unwrap();
    assert_eq!(
        end,
        StreamEvent::End(StreamEnd::EndOfTimeline {
            next_timeline: TimelineId(2),
            next_start: Lsn(0x500_0000)
        })
    );
    drop(s);
    // The connection takes the next command.
    let sys = c.identify_system().await.unwrap();
    assert_eq!(
        (sys.timeline, sys.xlogpos),
        (TimelineId(2), Lsn(0x500_0100))
    );
    c.close().await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn end_of_timeline_after_streaming() {
    let (config, server) = serve("15.4", |mut p| async move {
        p.start_copy().await;
        p.xlogdata(0x100_0000, b"abcdef").await;
        p.send(&[BackendMessage::CopyDone]).await;
        // The client must answer CopyDone before the result set comes.
        assert_eq!(
            p.recv_skipping_status().await,
            Some(FrontendMessage::CopyDone)
        );
        p.result(
            &["next_tli", "next_tli_startpos"],
            &[&[Some("2"), Some("0/1000006")]],
            "START_STREAMING",
        )
        .await;
        assert_eq!(p.recv().await, Some(FrontendMessage::Terminate));
    })
    .await;
    let mut c = streaming_client(&config).await;
    let mut s = quiet_stream(&mut c).await;
    match s.recv().await.unwrap() {
        StreamEvent::XLogData(x) => assert_eq!(&x.data[..], b"abcdef"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.recv().await.unwrap(),
        StreamEvent::End(StreamEnd::EndOfTimeline {
            next_timeline: TimelineId(2),
            next_start: Lsn(0x100_0006)
        })
    );
    assert!(s.recv().await.unwrap_err().is_closed());
    drop(s);
    c.close().await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn message_ready_now_counts_what_the_socket_holds() {
    // The second XLogData reaches the socket while the client is busy (its thread blocked,
    // so the runtime never looks at the socket): it is in neither the read buffer nor the
    // runtime's idea of what is readable, and message_ready_now must still take it in.
    // The scripted server runs on its own thread for that, and sends the second message
    // when the test says so, telling it once written.
    let (config_tx, config_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let (written_tx, written_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (config, task) = serve("15.4", |mut p| async move {
                p.start_copy().await;
                p.xlogdata(0x100_0000, b"abc").await;
                go_rx.await.unwrap();
                p.xlogdata(0x100_0003, b"def").await;
                written_tx.send(()).unwrap();
                while p.recv().await.is_some() {}
            })
            .await;
            config_tx.send(config).unwrap();
            task.await.unwrap();
        })
    });
    let config = config_rx.recv().unwrap();
    let mut c = streaming_client(&config).await;
    let mut s = quiet_stream(&mut c).await;
    let first = s.recv().await.unwrap();
    assert!(matches!(&first, StreamEvent::XLogData(x) if &x.data[..] == b"abc"));
    assert!(!s.has_buffered_message());
    assert!(!s.message_ready_now().await, "nothing has been sent yet");
    // Busy, not waiting: the runtime does not run while this thread waits for the server.
    go_tx.send(()).unwrap();
    written_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server wrote the second message");
    assert!(!s.has_buffered_message(), "not read yet");
    // Written is not yet in our socket's queue only if the kernel delivers it late: ask
    // again until it has (each call yields to the runtime once, then reads what is there).
    let began = std::time::Instant::now();
    while !s.message_ready_now().await {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the second message never showed up"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(s.has_buffered_message());
    // Buffered, so no wait: a zero time limit is enough.
    let second = tokio::time::timeout(Duration::ZERO, s.recv())
        .await
        .expect("buffered, so no wait")
        .unwrap();
    assert!(matches!(&second, StreamEvent::XLogData(x) if &x.data[..] == b"def"));
    drop(s);
    drop(c);
    server.join().unwrap();
}

#[tokio::test]
async fn server_error_mid_stream_is_a_database_error() {
    let (config, server) = serve("15.4", |mut p| async move {
        p.start_copy().await;
        p.xlogdata(0x100_0000, b"abc").await;
        p.send(&[BackendMessage::ErrorResponse(DbError {
            severity: "ERROR".into(),
            code: "58P01".into(),
            message: "requested WAL segment 000000010000000000000001 has already been removed"
                .into(),
            ..DbError::default()
        })])
        .await;
        p.recv().await;
    })
    .await;
    let mut c = streaming_client(&config).await;
    let mut s = quiet_stream(&mut c).await;
    assert!(matches!(s.recv().await.unwrap(), StreamEvent::XLogData(_)));
    let err = s.recv().await.unwrap_err();
    assert_eq!(err.code(), Some("58P01"));
    assert!(
        err.to_string().contains("has already been removed"),
        "{err}"
    );
    drop(s);
    drop(c);
    server.await.unwrap();
}

#[tokio::test]
async fn client_stop_drains_to_the_servers_copy_done() {
    let (config, server) = serve("15.4", |mut p| async move {
        p.start_copy().await;
        p.xlogdata(0x100_0000, b"0123456789").await;
        assert_eq!(
            p.recv_skipping_status().await,
            Some(FrontendMessage::CopyDone)
        );
        // Data in flight when the client stopped still arrives, then our CopyDone.
        p.xlogdata(0x100_000A, b"abc").await;
        p.send(&[
            BackendMessage::CopyDone,
            BackendMessage::CommandComplete("START_STREAMING".into()),
            BackendMessage::ReadyForQuery(b'I'),
        ])
        .await;
        assert_eq!(p.expect_query().await, "IDENTIFY_SYSTEM");
        p.result(
            &["systemid", "timeline", "xlogpos", "dbname"],
            &[&[Some("1"), Some("1"), Some("0/100000D"), None]],
            "IDENTIFY_SYSTEM",
        )
        .await;
        p.recv().await;
    })
    .await;
    let mut c = streaming_client(&config).await;
    let mut s = quiet_stream(&mut c).await;
    assert!(matches!(s.recv().await.unwrap(), StreamEvent::XLogData(_)));
    assert_eq!(s.last_received(), Lsn(0x100_000A));
    let end = s.stop().await.unwrap();
    assert_eq!(
        end,
        StreamEnd::Stopped {
            last_received: Lsn(0x100_000D)
        }
    );
    drop(s);
    // The client is usable again.
    assert_eq!(c.identify_system().await.unwrap().xlogpos, Lsn(0x100_000D));
    c.close().await.unwrap();
    server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn connect_timeout_bounds_a_server_that_never_answers() {
    // Accepts the connection, reads the startup message, and says nothing.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let _ = sock.read_to_end(&mut buf).await;
    });
    let config = Config::parse(&format!(
        "host=127.0.0.1 port={port} user=x connect_timeout=2"
    ))
    .unwrap();
    // The paused clock moves only once client and server both wait, straight to the
    // attempt's deadline: exactly connect_timeout later.
    let began = tokio::time::Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(10), Client::connect(&config))
        .await
        .expect("connect_timeout did not fire")
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert_eq!(began.elapsed(), Duration::from_secs(2));
    assert!(err.to_string().contains(&format!("port {port}")), "{err}");
    server.abort();
}

#[tokio::test]
async fn negotiate_protocol_version_is_accepted() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        sock.set_nodelay(true).unwrap();
        let mut p = Peer {
            sock,
            rbuf: BytesMut::new(),
        };
        loop {
            match frontend::decode_startup(&mut p.rbuf).unwrap() {
                // No TLS here: 'N', then the startup message.
                Some(FrontendMessage::SslRequest) => p.sock.write_all(b"N").await.unwrap(),
                Some(_) => break,
                None => assert!(p.sock.read_buf(&mut p.rbuf).await.unwrap() > 0),
            }
        }
        // A newer server telling us which minor version and options it does not know.
        p.send(&[
            BackendMessage::NegotiateProtocolVersion {
                newest_minor: 0,
                unrecognized: vec!["_pq_.something".into()],
            },
            BackendMessage::Authentication(Authentication::Ok),
            BackendMessage::ParameterStatus {
                name: "server_version".into(),
                value: "18.1".into(),
            },
            BackendMessage::ReadyForQuery(b'I'),
        ])
        .await;
        p.recv().await;
    });
    let config = Config::parse(&format!("host=127.0.0.1 port={port} user=x")).unwrap();
    let c = Client::connect(&config).await.unwrap();
    assert_eq!(c.server_version().map(|v| v.num()), Some(180001));
    c.close().await.unwrap();
    server.await.unwrap();
}
