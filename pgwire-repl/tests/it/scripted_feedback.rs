//! Against the scripted walsender: what the stream sends by itself and when — status
//! updates while `recv` waits, periodic ones, keepalive replies, the receive timeout.

use std::time::Duration;

use pgwire_repl::protocol::frontend::FrontendMessage;
use pgwire_repl::protocol::replication::StandbyMessage;
use pgwire_repl::{Client, Error, FeedbackConfig, Lsn, StartReplication, StreamEvent};

use crate::scripted::{quiet, quiet_stream, streaming_client};
use crate::walsender::serve;

/// A stream from 0/1000000 with a receive timeout and nothing else automatic.
async fn stream_with_receive_timeout(
    c: &mut Client,
    timeout: Duration,
) -> pgwire_repl::ReplicationStream<'_> {
    let fb = FeedbackConfig {
        receive_timeout: Some(timeout),
        ..quiet()
    };
    c.start_replication(StartReplication::new(Lsn(0x100_0000)).feedback(fb))
        .await
        .unwrap()
}

/// Waits (5 s at most) for `recv` to fail with the receive timeout.
async fn expect_receive_timeout(s: &mut pgwire_repl::ReplicationStream<'_>) {
    let err = tokio::time::timeout(Duration::from_secs(5), s.recv())
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn status_goes_out_while_recv_is_pending() {
    let (config, server) = serve("15.4", |mut p| async move {
        p.start_copy().await;
        // Nothing is sent to the client; it must still be able to send.
        let StandbyMessage::StatusUpdate(u) = p.standby_message().await else {
            panic!("expected a status update")
        };
        assert_eq!((u.write, u.flush, u.apply), (Lsn(10), Lsn(9), Lsn(8)));
        assert!(u.reply_requested);
        let StandbyMessage::HotStandbyFeedback(h) = p.standby_message().await else {
            panic!("expected hot standby feedback")
        };
        assert_eq!((h.xmin, h.xmin_epoch, h.catalog_xmin), (1234, 1, 0));
        p.xlogdata(0x100_0000, b"x").await;
        p.recv().await;
    })
    .await;
    let mut c = streaming_client(&config).await;
    let mut s = quiet_stream(&mut c).await;
    let sender = s.sender();
    let side = tokio::spawn(async move {
        // On the paused clock this sleep ends only when every task waits: `recv` below has
        // started and is waiting for the socket.
        tokio::time::sleep(Duration::from_millis(100)).await;
        sender.set_positions(Lsn(10), Lsn(9), Lsn(8));
        sender.send_status(true).await.unwrap();
        sender
            .send_hot_standby_feedback(1234, 1, 0, 0)
            .await
            .unwrap();
    });
    // recv() is pending the whole time the other task sends.
    let ev = tokio::time::timeout(Duration::from_secs(5), s.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(ev, StreamEvent::XLogData(_)));
    side.await.unwrap();
    drop(s);
    drop(c);
    server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn periodic_status_without_being_asked() {
    let (config, server) = serve("15.4", |mut p| async move {
        p.start_copy().await;
        // A server with wal_sender_timeout = 0 never asks; updates must still come.
        for _ in 0..3 {
            let StandbyMessage::StatusUpdate(u) = p.standby_message().await else {
                panic!("expected a status update")
            };
            assert!(!u.reply_requested);
        }
        p.xlogdata(0x100_0000, b"x").await;
        p.recv().await;
    })
    .await;
    let mut c = streaming_client(&config).await;
    let fb = FeedbackConfig {
        status_interval: Some(Duration::from_millis(300)),
        receive_timeout: None,
        reply_to_keepalives: true,
    };
    let mut s = c
        .start_replication(StartReplication::new(Lsn(0x100_0000)).feedback(fb))
        .await
        .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(30), s.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(ev, StreamEvent::XLogData(_)), "{ev:?}");
    drop(s);
    drop(c);
    server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn keepalive_asking_for_a_reply_is_answered_at_once() {
    // No periodic updates and no receive timeout: the stream sends nothing of its own
    // accord, so every status update the server sees is a reply, and on the paused clock
    // "at once" means before any time passes.
    let (config, server) = serve("15.4", |mut p| async move {
        p.start_copy().await;
        let sent = tokio::time::Instant::now();
        p.keepalive(0x100_0000, false).await;
        p.keepalive(0x100_0000, true).await;
        let StandbyMessage::StatusUpdate(u) = p.standby_message().await else {
            panic!("expected a status update")
        };
        assert_eq!(
            sent.elapsed(),
            Duration::ZERO,
            "the reply waited for a timer"
        );
        assert_eq!((u.write, u.flush, u.apply), (Lsn(30), Lsn(20), Lsn(10)));
        assert!(!u.reply_requested);
        // One reply: the keepalive that did not ask got none. Next, the client hangs up.
        match p.recv().await {
            Some(FrontendMessage::Terminate) | None => {}
            Some(FrontendMessage::CopyData(b)) => {
                panic!("a second message: {:?}", StandbyMessage::decode(&b))
            }
            Some(other) => panic!("unexpected {other:?}"),
        }
    })
    .await;
    let mut c = streaming_client(&config).await;
    let mut s = quiet_stream(&mut c).await;
    s.sender().set_positions(Lsn(30), Lsn(20), Lsn(10));
    for asks in [false, true] {
        let ev = tokio::time::timeout(Duration::from_secs(5), s.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(ev, StreamEvent::Keepalive(k) if k.reply_requested == asks),
            "{ev:?}"
        );
    }
    // The reply was written before `recv` handed over the keepalive; hanging up cannot
    // lose it.
    drop(s);
    drop(c);
    server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn receive_timeout_pings_then_declares_the_connection_dead() {
    let (config, server) = serve("15.4", |mut p| async move {
        p.start_copy().await;
        let StandbyMessage::StatusUpdate(u) = p.standby_message().await else {
            panic!()
        };
        assert!(u.reply_requested, "the ping asks for a reply");
        // Stay silent (a half-open connection) until the client gives up.
        p.recv().await;
    })
    .await;
    let mut c = streaming_client(&config).await;
    // On the paused clock the silence lasts exactly the receive timeout.
    let began = tokio::time::Instant::now();
    let mut s = stream_with_receive_timeout(&mut c, Duration::from_millis(600)).await;
    expect_receive_timeout(&mut s).await;
    assert_eq!(began.elapsed(), Duration::from_millis(600));
    drop(s);
    // The connection is unusable after a timeout.
    assert!(c.identify_system().await.unwrap_err().is_closed());
    drop(c);
    server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn receive_timeout_counts_from_the_last_message() {
    // Keepalives every 250 ms for 2.5 s keep a 2 s receive timeout from firing (the one
    // timer kept across receives fires early and is re-armed); after the last one, silence,
    // and on the paused clock the timeout comes exactly 2 s after it.
    let (last_tx, last_rx) = tokio::sync::oneshot::channel();
    let (config, server) = serve("15.4", |mut p| async move {
        p.start_copy().await;
        for _ in 0..9 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            p.keepalive(0x100_0000, false).await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        // Taken before the client can have the last keepalive.
        last_tx.send(tokio::time::Instant::now()).unwrap();
        p.keepalive(0x100_0000, false).await;
        // Read (the client's pings) until the client hangs up.
        while p.recv().await.is_some() {}
    })
    .await;
    let mut c = streaming_client(&config).await;
    let mut s = stream_with_receive_timeout(&mut c, Duration::from_secs(2)).await;
    for _ in 0..10 {
        let ev = tokio::time::timeout(Duration::from_secs(5), s.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(ev, StreamEvent::Keepalive(_)), "{ev:?}");
    }
    expect_receive_timeout(&mut s).await;
    let waited = last_rx.await.unwrap().elapsed();
    assert_eq!(
        waited,
        Duration::from_secs(2),
        "timed out {waited:?} after the last message"
    );
    drop(s);
    drop(c);
    server.await.unwrap();
}
