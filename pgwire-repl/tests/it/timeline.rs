//! Timeline switches on a real server: a promoted standby ends the stream with the next
//! timeline, and a start exactly at the switch point gets the answer without COPY.

use std::time::Duration;

use pgwire_repl::{Lsn, StartReplication, StreamEnd, StreamEvent, TimelineId};

use crate::common::{connect, replies_only};

#[tokio::test]
async fn promotion_ends_the_timeline() {
    let primary = crate::common::cluster(&[]);
    let standby = primary.make_standby("standby").unwrap();
    primary.generate_wal(1 << 20).unwrap();

    let mut c = connect(&standby).await;
    let sys = c.identify_system().await.unwrap();
    assert_eq!(sys.timeline, TimelineId(1));
    let seg = c.wal_segment_size().await.unwrap();
    let start = seg.round_down(sys.xlogpos);

    let mut s = c
        .start_replication(
            StartReplication::new(start)
                .timeline(TimelineId(1))
                .feedback(replies_only(Duration::from_secs(30))),
        )
        .await
        .unwrap();
    // Promote while the stream runs (the primary stops first, as in a failure).
    let promote = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        primary.stop().unwrap();
        standby.promote().unwrap();
        (primary, standby)
    });
    let mut last = start;
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(60), s.recv())
            .await
            .expect("no end of timeline within 60 s")
            .unwrap()
        {
            StreamEvent::XLogData(x) => {
                assert_eq!(x.wal_start, last, "gap in the stream");
                last = x.data_end().unwrap();
            }
            StreamEvent::Keepalive(_) => {}
            StreamEvent::End(end) => break end,
        }
    };
    drop(s);
    let (_primary, standby) = promote.join().unwrap();
    let StreamEnd::EndOfTimeline {
        next_timeline,
        next_start,
    } = end
    else {
        panic!("expected the end of timeline 1, got {end:?}");
    };
    assert_eq!(next_timeline, TimelineId(2));
    // Everything up to the switch point was received, and nothing past it.
    assert_eq!(last, next_start);

    // The history file tells the same, and is the server's own file.
    let history = c.timeline_history(TimelineId(2)).await.unwrap();
    assert_eq!(history.file_name, "00000002.history");
    assert_eq!(
        &history.content[..],
        &standby.wal_file("00000002.history").unwrap()[..]
    );
    let entries = history.entries().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].timeline, TimelineId(1));
    assert_eq!(entries[0].switchpoint, next_start);

    // START_REPLICATION exactly at the switch point: the answer comes without COPY.
    {
        let mut s = c
            .start_replication(StartReplication::new(next_start).timeline(TimelineId(1)))
            .await
            .unwrap();
        assert_eq!(
            s.recv().await.unwrap(),
            StreamEvent::End(StreamEnd::EndOfTimeline {
                next_timeline: TimelineId(2),
                next_start
            })
        );
    }

    // And streaming goes on on timeline 2, on the same connection.
    standby
        .sql("CREATE TABLE after_promotion AS SELECT 1 AS x")
        .unwrap();
    let mut s = c
        .start_replication(
            StartReplication::new(seg.round_down(next_start))
                .timeline(TimelineId(2))
                .feedback(replies_only(Duration::from_secs(30))),
        )
        .await
        .unwrap();
    match tokio::time::timeout(Duration::from_secs(30), s.recv())
        .await
        .unwrap()
        .unwrap()
    {
        StreamEvent::XLogData(x) => assert_eq!(x.wal_start, seg.round_down(next_start)),
        other => panic!("expected WAL on timeline 2, got {other:?}"),
    }
    assert!(
        matches!(s.stop().await.unwrap(), StreamEnd::Stopped { last_received } if last_received > Lsn(0))
    );
    drop(s);
    c.close().await.unwrap();
}
