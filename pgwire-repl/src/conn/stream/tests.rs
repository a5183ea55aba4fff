//! Cancelling [`ReplicationStream::recv`] at each of its awaits loses nothing.
//!
//! The client talks to a scripted server over in-memory pipes: the server's direction is
//! roomy, the client's holds [`PIPE`] bytes, so every message the client sends is written
//! partly and then waits until the server reads. The test polls `recv` step by step and drops
//! it there (what `tokio::select!` does when a stop signal wins), then checks that what the
//! server receives is every owed message exactly once and in order, that the event taken
//! from the state machine is still delivered once, and that `stop` then completes at once
//! (before the fix it waited for a result set that never came).

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, SimplexStream, WriteHalf};

use super::{ReplicationStream, StartReplication};
use crate::conn::client::Client;
use crate::conn::connection::Connection;
use crate::lsn::{Lsn, TimelineId};
use crate::protocol::backend::BackendMessage;
use crate::protocol::feedback::FeedbackConfig;
use crate::protocol::frontend::{self, FrontendMessage};
use crate::protocol::replication::{PrimaryKeepalive, StandbyMessage};
use crate::protocol::streaming::{StreamEnd, StreamEvent};

/// What the client's direction holds: less than any message the client sends (CopyDone is
/// five bytes), so each send is a partial write and then a wait.
const PIPE: usize = 4;

/// The scripted server's ends of the pipes.
struct Server {
    rx: ReadHalf<SimplexStream>,
    tx: WriteHalf<SimplexStream>,
    rbuf: BytesMut,
}

impl Server {
    async fn send(&mut self, msgs: &[BackendMessage]) {
        let mut b = BytesMut::new();
        for m in msgs {
            m.encode(&mut b).unwrap();
        }
        self.tx.write_all(&b).await.unwrap();
    }

    async fn keepalive_asking_for_a_reply(&mut self) -> PrimaryKeepalive {
        let k = PrimaryKeepalive {
            wal_end: Lsn(0x100_0000),
            send_time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_067_200),
            reply_requested: true,
        };
        let mut b = BytesMut::new();
        k.encode(&mut b);
        self.tx.write_all(&b).await.unwrap();
        k
    }

    /// The next whole message from the client.
    async fn recv(&mut self) -> FrontendMessage {
        loop {
            if let Some(m) = frontend::decode(&mut self.rbuf).unwrap() {
                return m;
            }
            let n = self.rx.read_buf(&mut self.rbuf).await.unwrap();
            assert!(n > 0, "the client closed the connection");
        }
    }

    /// Takes in what the client has written so far, without waiting; returns how much.
    async fn read_now(&mut self) -> usize {
        let mut read = pin!(self.rx.read_buf(&mut self.rbuf));
        match poll_once(read.as_mut()).await {
            Poll::Ready(n) => n.unwrap(),
            Poll::Pending => 0,
        }
    }

    /// Reads the client's CopyDone (and nothing else) and ends the COPY as the walsender
    /// does after a client stop.
    async fn end_copy_after_client_stop(&mut self) {
        assert_eq!(self.recv().await, FrontendMessage::CopyDone);
        self.send(&[
            BackendMessage::CopyDone,
            BackendMessage::CommandComplete("COPY 0".into()),
            BackendMessage::ReadyForQuery(b'I'),
        ])
        .await;
    }
}

/// The status update a message carries; panics on anything else.
fn status_update(m: FrontendMessage) -> crate::protocol::replication::StandbyStatusUpdate {
    match m {
        FrontendMessage::CopyData(b) => match StandbyMessage::decode(&b).unwrap() {
            StandbyMessage::StatusUpdate(u) => u,
            other => panic!("expected a status update, got {other:?}"),
        },
        other => panic!("expected CopyData, got {other:?}"),
    }
}

/// A client over the pipes, and the server's side of them.
fn pair() -> (Client, Server) {
    let (client_rx, tx) = tokio::io::simplex(1 << 16);
    let (rx, client_tx) = tokio::io::simplex(PIPE);
    let conn = Connection::new(Box::new(tokio::io::join(client_rx, client_tx)));
    let server = Server {
        rx,
        tx,
        rbuf: BytesMut::new(),
    };
    (Client::new(conn), server)
}

/// A stream with nothing automatic but keepalive replies (no background sender, no receive
/// timeout: a lost message shows as a hang, which [`within`] turns into a failure).
async fn started<'a>(client: &'a mut Client, server: &mut Server) -> ReplicationStream<'a> {
    let opts = StartReplication::new(Lsn(0x100_0000)).feedback(FeedbackConfig {
        status_interval: None,
        receive_timeout: None,
        reply_to_keepalives: true,
    });
    let (stream, ()) = tokio::join!(client.start_replication(opts), async {
        match server.recv().await {
            FrontendMessage::Query(q) => assert!(q.starts_with("START_REPLICATION"), "{q}"),
            other => panic!("expected START_REPLICATION, got {other:?}"),
        }
        server.send(&[BackendMessage::CopyBothResponse]).await;
    });
    stream.unwrap()
}

/// Polls `f` once, after a yield (so the runtime's budget for I/O is fresh and a pipe that
/// has room does not pend for want of budget).
async fn poll_once<F: Future>(mut f: Pin<&mut F>) -> Poll<F::Output> {
    tokio::task::yield_now().await;
    std::future::poll_fn(|cx| Poll::Ready(f.as_mut().poll(cx))).await
}

/// Runs `f` to completion, failing the test if that takes more than a few seconds.
async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .expect("timed out: something owed was lost")
}

/// Stops the stream as a client does; the server ends its COPY; the stream ends `Stopped`.
async fn stop(mut s: ReplicationStream<'_>, server: &mut Server) {
    let (end, ()) =
        within(async { tokio::join!(s.stop(), server.end_copy_after_client_stop()) }).await;
    assert!(matches!(end.unwrap(), StreamEnd::Stopped { .. }));
}

/// Closes the client, which the server sees as Terminate: the connection was still in step.
async fn close(client: Client, server: &mut Server) {
    let (closed, m) = within(async { tokio::join!(client.close(), server.recv()) }).await;
    closed.unwrap();
    assert_eq!(m, FrontendMessage::Terminate);
}

/// Polls a fresh `recv` once, expects it to wait, and drops it.
async fn cancel_recv(s: &mut ReplicationStream<'_>) {
    let recv = pin!(s.recv());
    assert!(poll_once(recv).await.is_pending(), "recv did not wait");
}

/// The end of a historic timeline: the CopyDone owed in answer is written partly when `recv`
/// is cancelled at the write; the next `recv` is cancelled while writing the rest (the pipe
/// is full), the one after that while waiting for the result set (the rest written). None of
/// it may be lost or repeated, and `stop` then completes.
#[tokio::test]
async fn copy_done_owed_at_the_end_of_a_timeline_survives_cancelled_recvs() {
    let (mut client, mut server) = pair();
    let mut s = started(&mut client, &mut server).await;
    server.send(&[BackendMessage::CopyDone]).await;
    cancel_recv(&mut s).await;
    cancel_recv(&mut s).await;
    assert_eq!(server.read_now().await, PIPE, "the first bytes of CopyDone");
    cancel_recv(&mut s).await;
    let (end, ()) = within(async {
        tokio::join!(s.stop(), async {
            assert_eq!(server.recv().await, FrontendMessage::CopyDone);
            server
                .send(&[
                    BackendMessage::RowDescription(vec![
                        "next_tli".into(),
                        "next_tli_startpos".into(),
                    ]),
                    BackendMessage::DataRow(crate::protocol::backend::DataRow::new([
                        Some(&b"2"[..]),
                        Some(&b"0/1000000"[..]),
                    ])),
                    BackendMessage::CommandComplete("START_STREAMING".into()),
                    BackendMessage::ReadyForQuery(b'I'),
                ])
                .await;
        })
    })
    .await;
    assert_eq!(
        end.unwrap(),
        StreamEnd::EndOfTimeline {
            next_timeline: TimelineId(2),
            next_start: Lsn(0x100_0000)
        }
    );
    drop(s);
    let (closed, m) = within(async { tokio::join!(client.close(), server.recv()) }).await;
    closed.unwrap();
    // Nothing between the CopyDone and Terminate: no second CopyDone, no stray bytes.
    assert_eq!(m, FrontendMessage::Terminate);
}

/// A keepalive asking for a reply: `recv` is cancelled while writing the reply. The keepalive
/// is still delivered, once, by the next `recv`, and the reply reaches the server whole, once.
#[tokio::test]
async fn keepalive_and_its_reply_survive_a_recv_cancelled_at_the_write() {
    let (mut client, mut server) = pair();
    let mut s = started(&mut client, &mut server).await;
    let k = server.keepalive_asking_for_a_reply().await;
    cancel_recv(&mut s).await;
    let (ev, reply) = within(async { tokio::join!(s.recv(), server.recv()) }).await;
    assert_eq!(ev.unwrap(), StreamEvent::Keepalive(k));
    assert!(!status_update(reply).reply_requested);
    stop(s, &mut server).await;
    close(client, &mut server).await;
}

/// `recv` is cancelled while it waits for the socket, which a sender's status update holds
/// (half written). The sender's update goes out whole, then the keepalive reply, each once;
/// the keepalive is delivered once.
#[tokio::test]
async fn keepalive_and_its_reply_survive_a_recv_cancelled_while_a_sender_writes() {
    let (mut client, mut server) = pair();
    let mut s = started(&mut client, &mut server).await;
    let sender = s.sender();
    sender.set_positions(Lsn(10), Lsn(9), Lsn(8));
    let mut send = pin!(sender.send_status(true));
    assert!(poll_once(send.as_mut()).await.is_pending());
    let k = server.keepalive_asking_for_a_reply().await;
    cancel_recv(&mut s).await;
    let (sent, ev, (first, second)) = within(async {
        tokio::join!(send, s.recv(), async {
            (server.recv().await, server.recv().await)
        })
    })
    .await;
    sent.unwrap();
    assert_eq!(ev.unwrap(), StreamEvent::Keepalive(k));
    let first = status_update(first);
    assert!(first.reply_requested, "the sender's update comes first");
    assert_eq!(
        (first.write, first.flush, first.apply),
        (Lsn(10), Lsn(9), Lsn(8))
    );
    assert!(!status_update(second).reply_requested, "then the reply");
    stop(s, &mut server).await;
    close(client, &mut server).await;
}

/// A sender sends what a cancelled `recv` owes before saying the stream is closed to it.
#[tokio::test]
async fn a_sender_sends_the_copy_done_a_cancelled_recv_owes() {
    let (mut client, mut server) = pair();
    let mut s = started(&mut client, &mut server).await;
    server.send(&[BackendMessage::CopyDone]).await;
    cancel_recv(&mut s).await;
    let sender = s.sender();
    let (sent, m) = within(async { tokio::join!(sender.send_status(false), server.recv()) }).await;
    assert!(sent.unwrap_err().is_closed());
    assert_eq!(m, FrontendMessage::CopyDone);
}
