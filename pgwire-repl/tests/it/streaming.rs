//! Streaming from a real server: the bytes, the keepalives, a clean stop.

use std::time::Duration;

use pgwire_repl::{
    CreateSlotOptions, Error, FeedbackConfig, Lsn, StartReplication, StreamEnd, StreamEvent,
    TimelineId, WalSegmentSize,
};

use crate::common::{cluster, connect, lsn_of, replies_only};

/// Assembles streamed WAL into whole segments.
struct Segments {
    seg: WalSegmentSize,
    segno: u64,
    buf: Vec<u8>,
    done: Vec<(u64, Vec<u8>)>,
}

impl Segments {
    fn new(seg: WalSegmentSize, start: Lsn) -> Segments {
        assert_eq!(seg.offset_of(start), 0);
        Segments {
            seg,
            segno: seg.segment_of(start),
            buf: Vec::with_capacity(seg.bytes() as usize),
            done: Vec::new(),
        }
    }

    fn push(&mut self, at: Lsn, mut data: &[u8]) {
        let expect = self.seg.segment_start(self.segno).unwrap().0 + self.buf.len() as u64;
        assert_eq!(at.0, expect, "gap or overlap in the stream");
        while !data.is_empty() {
            let room = self.seg.bytes() as usize - self.buf.len();
            let n = room.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == self.seg.bytes() as usize {
                self.done.push((self.segno, std::mem::take(&mut self.buf)));
                self.segno += 1;
            }
        }
    }
}

#[tokio::test]
async fn streamed_bytes_equal_the_servers_segments() {
    let pg = cluster(&[]);
    let mut c = connect(&pg).await;
    let seg = c.wal_segment_size().await.unwrap();
    c.create_replication_slot(
        "bytes",
        CreateSlotOptions {
            temporary: false,
            reserve_wal: true,
        },
    )
    .await
    .unwrap();
    let start = seg.round_down(lsn_of(
        &pg,
        "SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'bytes'",
    ));
    pg.generate_wal(5 << 20).unwrap();
    pg.sql("SELECT pg_switch_wal()").unwrap();
    let end = lsn_of(&pg, "SELECT pg_current_wal_flush_lsn()");
    let want_segments = seg.segment_of(end) - seg.segment_of(start);
    assert!(want_segments >= 5, "only {want_segments} segments of WAL");

    let mut segs = Segments::new(seg, start);
    {
        let opts = StartReplication::new(start)
            .slot("bytes")
            .timeline(TimelineId(1))
            .feedback(replies_only(Duration::from_secs(30)));
        let mut s = c.start_replication(opts).await.unwrap();
        while (segs.done.len() as u64) < want_segments {
            match tokio::time::timeout(Duration::from_secs(30), s.recv())
                .await
                .unwrap()
                .unwrap()
            {
                StreamEvent::XLogData(x) => segs.push(x.wal_start, &x.data),
                StreamEvent::Keepalive(_) => {}
                StreamEvent::End(e) => panic!("stream ended: {e:?}"),
            }
        }
        let end = s.stop().await.unwrap();
        assert!(
            matches!(end, StreamEnd::Stopped { last_received } if last_received >= Lsn(start.0 + want_segments * u64::from(seg.bytes())))
        );
    }
    for (segno, bytes) in &segs.done {
        let name = seg.file_name(TimelineId(1), *segno);
        let server = pg.wal_file(&name).unwrap();
        assert!(
            server == *bytes,
            "segment {name} differs from the server's pg_wal file"
        );
    }
    // The client takes commands again after the stop.
    c.identify_system().await.unwrap();
    c.drop_replication_slot("bytes", false).await.unwrap();
    c.close().await.unwrap();
}

/// Streams an idle server for `secs` and returns the keepalives that asked for a reply, or
/// the error that ended the stream.
async fn idle_stream(pg: &testenv::Cluster, fb: FeedbackConfig, secs: u64) -> Result<usize, Error> {
    let mut c = connect(pg).await;
    let sys = c.identify_system().await.unwrap();
    let mut s = c
        .start_replication(StartReplication::new(sys.xlogpos).feedback(fb))
        .await
        .unwrap();
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut asked = 0;
    loop {
        tokio::select! {
            ev = s.recv() => match ev? {
                StreamEvent::Keepalive(k) if k.reply_requested => asked += 1,
                StreamEvent::End(e) => panic!("stream ended: {e:?}"),
                _ => {}
            },
            _ = tokio::time::sleep_until(until) => break,
        }
    }
    s.stop().await?;
    Ok(asked)
}

#[tokio::test]
async fn idle_stream_survives_a_short_wal_sender_timeout() {
    let pg = cluster(&["wal_sender_timeout = '2s'"]);
    // Only replies to the server's keepalives keep this stream alive: no periodic updates.
    let asked = idle_stream(&pg, replies_only(Duration::from_secs(30)), 10)
        .await
        .unwrap();
    assert!(
        asked >= 3,
        "the server asked for a reply only {asked} times in 10 s"
    );

    // The control: without the replies the server gives up on us within the 10 s.
    let fb = FeedbackConfig {
        status_interval: None,
        receive_timeout: Some(Duration::from_secs(30)),
        reply_to_keepalives: false,
    };
    let err = idle_stream(&pg, fb, 10).await.unwrap_err();
    assert!(err.is_closed(), "{err:?}");
    assert!(pg
        .log()
        .contains("terminating walsender process due to replication timeout"));
}

#[tokio::test]
async fn periodic_status_updates_keep_a_silent_server_alive() {
    // wal_sender_timeout = 0: the server never asks; updates every second go out anyway,
    // and the server records them as the standby's positions.
    let pg = cluster(&["wal_sender_timeout = 0"]);
    let mut c = connect(&pg).await;
    let sys = c.identify_system().await.unwrap();
    let fb = FeedbackConfig {
        status_interval: Some(Duration::from_millis(500)),
        receive_timeout: None,
        reply_to_keepalives: true,
    };
    let mut s = c
        .start_replication(
            StartReplication::new(sys.xlogpos)
                .feedback(fb)
                .timeline(sys.timeline),
        )
        .await
        .unwrap();
    s.sender().set_positions(sys.xlogpos, sys.xlogpos, Lsn(0));
    let probe = async {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let flush = pg
                .sql("SELECT coalesce(flush_lsn::text, '') FROM pg_stat_replication")
                .unwrap();
            if flush == sys.xlogpos.to_string() {
                return true;
            }
        }
        false
    };
    let seen = tokio::select! {
        seen = probe => seen,
        ev = s.recv() => panic!("unexpected {ev:?}"),
    };
    assert!(
        seen,
        "pg_stat_replication never showed the reported flush position"
    );
    s.stop().await.unwrap();
    drop(s);
    c.close().await.unwrap();
}
