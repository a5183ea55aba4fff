//! The scripted walsender sends what no real server would: truncated and malformed frames,
//! oversized and negative lengths, unexpected message types. Each is a clean error, never a
//! panic or an allocation the length asked for.
//!
//! On tokio's paused clock: the streams here have no timers, so the clock moves only when
//! client and server are both stuck, and the 5 s limits fire then and only then.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use pgwire_repl::protocol::replication::XLogData;
use pgwire_repl::{Error, Lsn, StreamEvent};

use crate::scripted::{quiet_stream, streaming_client};
use crate::walsender::serve;

/// Runs a stream that receives `bytes` right after COPY starts and returns recv's error.
async fn stream_error_after(bytes: Vec<u8>, close: bool) -> Error {
    let (config, server) = serve("15.4", move |mut p| async move {
        p.start_copy().await;
        p.raw(&bytes).await;
        if !close {
            p.recv().await;
        }
    })
    .await;
    let mut c = streaming_client(&config).await;
    let mut s = quiet_stream(&mut c).await;
    let err = loop {
        match tokio::time::timeout(Duration::from_secs(5), s.recv())
            .await
            .unwrap()
        {
            Ok(StreamEvent::XLogData(_) | StreamEvent::Keepalive(_)) => continue,
            Ok(ev) => panic!("unexpected {ev:?}"),
            Err(e) => break e,
        }
    };
    drop(s);
    drop(c);
    server.await.unwrap();
    err
}

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut b = vec![tag];
    b.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    b.extend_from_slice(body);
    b
}

#[tokio::test(start_paused = true)]
async fn truncated_frame_then_close() {
    let mut whole = BytesMut::new();
    XLogData {
        wal_start: Lsn(0x100_0000),
        wal_end: Lsn(0x100_0000),
        send_time: std::time::SystemTime::now(),
        data: Bytes::from_static(&[7; 1000]),
    }
    .encode(&mut whole);
    let err = stream_error_after(whole[..500].to_vec(), true).await;
    assert!(err.is_closed(), "{err:?}");
    assert!(err.to_string().contains("middle of a message"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn oversized_length_is_refused_without_allocating() {
    let mut b = vec![b'd'];
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    b.extend_from_slice(b"w");
    let err = stream_error_after(b, false).await;
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    assert!(err.to_string().contains("more than the"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn negative_length_is_refused() {
    let mut b = vec![b'd'];
    b.extend_from_slice(&(-5i32).to_be_bytes());
    let err = stream_error_after(b, false).await;
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn malformed_replication_messages() {
    // A keepalive one byte short, one byte long; an XLogData header cut short; an unknown
    // replication message type; an unknown backend message type; a stray DataRow.
    let mut short_keepalive = vec![b'k'];
    short_keepalive.extend_from_slice(&[0; 16]);
    let mut long_keepalive = vec![b'k'];
    long_keepalive.extend_from_slice(&[0; 18]);
    let mut short_xlog = vec![b'w'];
    short_xlog.extend_from_slice(&[0; 20]);
    let cases = [
        (frame(b'd', &short_keepalive), "expected 18"),
        (frame(b'd', &long_keepalive), "expected 18"),
        (frame(b'd', &short_xlog), "too short"),
        (frame(b'd', b"q123"), "unexpected replication message type"),
        (frame(b'Y', b""), "unexpected message type"),
        (frame(b'D', &[0, 0]), "unexpected DataRow"),
        (frame(b'd', b""), "too short"),
    ];
    for (bytes, want) in cases {
        let err = stream_error_after(bytes, false).await;
        assert!(matches!(err, Error::Protocol(_)), "{want}: {err:?}");
        assert!(err.to_string().contains(want), "{want}: {err}");
    }
}

#[tokio::test(start_paused = true)]
async fn xlogdata_past_the_end_of_the_lsn_space() {
    let mut body = vec![b'w'];
    body.extend_from_slice(&(u64::MAX - 1).to_be_bytes());
    body.extend_from_slice(&0u64.to_be_bytes());
    body.extend_from_slice(&0i64.to_be_bytes());
    body.extend_from_slice(b"abcd");
    let err = stream_error_after(frame(b'd', &body), false).await;
    assert!(err.to_string().contains("past the end of WAL"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn unexpected_message_during_a_command() {
    let (config, server) = serve("15.4", |mut p| async move {
        p.expect_query().await;
        let mut b = BytesMut::new();
        b.put_slice(&frame(b'd', b"w"));
        p.raw(&b).await;
        p.recv().await;
    })
    .await;
    let mut c = streaming_client(&config).await;
    let err = c.identify_system().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("unexpected CopyData during a query"),
        "{err}"
    );
    assert!(c.identify_system().await.unwrap_err().is_closed());
    drop(c);
    server.await.unwrap();
}

/// BASE_BACKUP's answer from a scripted server: the 14 form (the keyword command, the tar
/// end added to each archive) and a 15 answer that breaks off in a malformed progress
/// message (a protocol error, and the connection is not used again).
#[tokio::test(start_paused = true)]
async fn base_backup_answers_from_a_scripted_server() {
    use pgwire_repl::protocol::backend::BackendMessage as B;
    use pgwire_repl::protocol::backend::DataRow;
    use pgwire_repl::{BackupEvent, BaseBackupOptions, Client};

    fn header() -> Vec<B> {
        vec![
            B::RowDescription(vec!["recptr".into(), "tli".into()]),
            B::DataRow(DataRow::new([Some(&b"0/2000028"[..]), Some(&b"1"[..])])),
            B::CommandComplete("SELECT".into()),
            B::RowDescription(vec!["spcoid".into(), "spclocation".into(), "size".into()]),
            B::DataRow(DataRow::new([None, None, Some(&b"10"[..])])),
            B::CommandComplete("SELECT".into()),
            B::CopyOutResponse,
        ]
    }

    let (config, server) = serve("14.9", |mut p| async move {
        let q = p.expect_query().await;
        assert_eq!(
            q,
            "BASE_BACKUP LABEL 'pg_basebackup base backup' MANIFEST 'yes'"
        );
        let mut msgs = header();
        msgs.extend([
            B::CopyData(Bytes::from_static(&[1; 512])),
            B::CopyDone,
            B::RowDescription(vec!["recptr".into(), "tli".into()]),
            B::DataRow(DataRow::new([Some(&b"0/2000100"[..]), Some(&b"1"[..])])),
            B::CommandComplete("SELECT".into()),
            B::CommandComplete("BASE_BACKUP".into()),
            B::ReadyForQuery(b'I'),
        ]);
        p.send(&msgs).await;
        p.recv().await;
    })
    .await;
    let mut c = Client::connect(&config).await.unwrap();
    let mut s = c.base_backup(&BaseBackupOptions::default()).await.unwrap();
    let mut archive = Vec::new();
    let mut ended = false;
    while let Some(e) = s.next().await.unwrap() {
        match e {
            BackupEvent::ArchiveData(d) => archive.extend_from_slice(&d),
            BackupEvent::Ended { end, .. } => ended = end == Lsn(0x200_0100),
            _ => {}
        }
    }
    drop(s);
    assert!(ended);
    assert_eq!(
        archive.len(),
        512 + 1024,
        "the tar end blocks are added before 15"
    );
    assert!(archive[512..].iter().all(|&b| b == 0));
    drop(c);
    server.await.unwrap();

    let (config, server) = serve("15.4", |mut p| async move {
        let q = p.expect_query().await;
        assert!(q.starts_with("BASE_BACKUP ( LABEL"), "{q}");
        let mut msgs = header();
        msgs.push(B::CopyData(Bytes::from_static(b"nbase.tar\0\0")));
        msgs.push(B::CopyData(Bytes::from_static(b"p\0\0\0")));
        p.send(&msgs).await;
        p.recv().await;
    })
    .await;
    let mut c = streaming_client(&config).await;
    let mut s = c.base_backup(&BaseBackupOptions::default()).await.unwrap();
    let err = loop {
        match s.next().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the backup ended"),
            Err(e) => break e,
        }
    };
    drop(s);
    assert!(matches!(err, Error::Protocol(_)), "{err}");
    assert!(err.to_string().contains("progress"), "{err}");
    let again = c.identify_system().await.unwrap_err();
    assert!(
        again
            .to_string()
            .contains("protocol error during a base backup"),
        "{again}"
    );
    drop(c);
    server.await.unwrap();
}
