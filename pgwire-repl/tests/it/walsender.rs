//! A tiny scripted walsender, built from the library's own encoders: the server side of the
//! `scripted` tests.

use bytes::{Bytes, BytesMut};
use pgwire_repl::protocol::backend::{Authentication, BackendMessage, DataRow};
use pgwire_repl::protocol::frontend::{self, FrontendMessage};
use pgwire_repl::protocol::replication::{PrimaryKeepalive, StandbyMessage, XLogData};
use pgwire_repl::{Config, Lsn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The server side of one scripted connection.
pub struct Peer {
    pub sock: TcpStream,
    pub rbuf: BytesMut,
}

impl Peer {
    /// Sends raw bytes.
    pub async fn raw(&mut self, b: &[u8]) {
        self.sock.write_all(b).await.unwrap();
    }

    pub async fn send(&mut self, msgs: &[BackendMessage]) {
        let mut b = BytesMut::new();
        for m in msgs {
            m.encode(&mut b).unwrap();
        }
        self.raw(&b).await;
    }

    /// The next message from the client, or `None` when it closed the connection.
    pub async fn recv(&mut self) -> Option<FrontendMessage> {
        loop {
            if let Some(m) = frontend::decode(&mut self.rbuf).unwrap() {
                return Some(m);
            }
            if self.sock.read_buf(&mut self.rbuf).await.unwrap() == 0 {
                return None;
            }
        }
    }

    pub async fn expect_query(&mut self) -> String {
        match self.recv().await {
            Some(FrontendMessage::Query(q)) => q,
            other => panic!("expected a query, got {other:?}"),
        }
    }

    /// Answers a query with one result set.
    pub async fn result(&mut self, columns: &[&str], rows: &[&[Option<&str>]], tag: &str) {
        let mut msgs = vec![BackendMessage::RowDescription(
            columns.iter().map(|c| c.to_string()).collect(),
        )];
        for r in rows {
            msgs.push(BackendMessage::DataRow(DataRow::new(
                r.iter().map(|c| c.map(str::as_bytes)),
            )));
        }
        msgs.push(BackendMessage::CommandComplete(tag.into()));
        msgs.push(BackendMessage::ReadyForQuery(b'I'));
        self.send(&msgs).await;
    }

    /// Accepts `START_REPLICATION` and enters COPY BOTH.
    pub async fn start_copy(&mut self) -> String {
        let q = self.expect_query().await;
        assert!(q.starts_with("START_REPLICATION"), "{q}");
        self.send(&[BackendMessage::CopyBothResponse]).await;
        q
    }

    pub async fn xlogdata(&mut self, start: u64, data: &[u8]) {
        let mut b = BytesMut::new();
        XLogData {
            wal_start: Lsn(start),
            wal_end: Lsn(start + data.len() as u64),
            send_time: std::time::SystemTime::now(),
            data: Bytes::copy_from_slice(data),
        }
        .encode(&mut b);
        self.raw(&b).await;
    }

    pub async fn keepalive(&mut self, wal_end: u64, reply: bool) {
        let mut b = BytesMut::new();
        PrimaryKeepalive {
            wal_end: Lsn(wal_end),
            send_time: std::time::SystemTime::now(),
            reply_requested: reply,
        }
        .encode(&mut b);
        self.raw(&b).await;
    }

    /// The next standby message, skipping nothing.
    pub async fn standby_message(&mut self) -> StandbyMessage {
        match self.recv().await {
            Some(FrontendMessage::CopyData(b)) => StandbyMessage::decode(&b).unwrap(),
            other => panic!("expected CopyData, got {other:?}"),
        }
    }

    /// The next message that is not a standby status update.
    pub async fn recv_skipping_status(&mut self) -> Option<FrontendMessage> {
        loop {
            match self.recv().await {
                Some(FrontendMessage::CopyData(b))
                    if matches!(
                        StandbyMessage::decode(&b),
                        Ok(StandbyMessage::StatusUpdate(_))
                    ) => {}
                other => return other,
            }
        }
    }
}

/// Starts a scripted server that runs `script` on the first connection, after a trust
/// startup reporting `server_version`. Returns the conninfo to reach it.
pub async fn serve<F, Fut>(server_version: &str, script: F) -> (Config, tokio::task::JoinHandle<()>)
where
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let version = server_version.to_owned();
    let task = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        // As a walsender does (and the client): without it, Nagle's algorithm holds a small
        // write back until the client's delayed ACK of the one before, 40 ms later, and on
        // a paused clock the tests' time limits would fire meanwhile.
        sock.set_nodelay(true).unwrap();
        let mut peer = Peer {
            sock,
            rbuf: BytesMut::new(),
        };
        let startup = loop {
            match frontend::decode_startup(&mut peer.rbuf).unwrap() {
                // Like a server without TLS: 'N', then the startup message follows.
                Some(FrontendMessage::SslRequest) => peer.sock.write_all(b"N").await.unwrap(),
                Some(m) => break m,
                None => assert!(peer.sock.read_buf(&mut peer.rbuf).await.unwrap() > 0),
            }
        };
        let FrontendMessage::Startup { params, .. } = startup else {
            panic!("expected a startup message, got {startup:?}");
        };
        assert!(
            params.contains(&("replication".into(), "true".into())),
            "{params:?}"
        );
        peer.send(&[
            BackendMessage::Authentication(Authentication::Ok),
            BackendMessage::ParameterStatus {
                name: "server_version".into(),
                value: version,
            },
            BackendMessage::BackendKeyData {
                process_id: 42,
                secret_key: Bytes::from_static(&[1, 2, 3, 4]),
            },
            BackendMessage::ReadyForQuery(b'I'),
        ])
        .await;
        script(peer).await;
    });
    let config = Config::parse(&format!("host=127.0.0.1 port={port} user=scripted")).unwrap();
    (config, task)
}
