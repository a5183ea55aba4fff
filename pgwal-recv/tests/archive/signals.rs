//! Stopping: SIGINT and SIGTERM end the run cleanly (exit 0, the open segment left
//! `.partial` at full size); a lost connection is retried, or with `-n` is an error.

use std::time::Duration;

use pgwire_repl::{Lsn, TimelineId};

use crate::common::*;

const TL1: TimelineId = TimelineId(1);

/// Streams a few complete segments and part of the next, then sends `sig`.
fn stops_cleanly_on(sig: &str) {
    let pg = cluster(&[]);
    let seg = seg1mb();
    let dir = TempDir::new(&format!("sig{sig}"));
    let mut ar = Background::spawn(bin().args(["-D", &dir.arg(), "-v", "-d", &conninfo(&pg)]));
    let mut start = Lsn(0);
    ar.wait_until("streaming to start", Duration::from_secs(20), |e| {
        streaming_start(e).map(|l| start = l).is_some()
    });
    let first = seg.segment_of(start);

    pg.generate_wal(3 << 20).unwrap();
    pg.switch_wal().unwrap();
    let boundary = lsn(&pg, "SELECT pg_current_wal_lsn()");
    let last_full = seg.segment_of(boundary) - 1;
    assert!(last_full >= first + 2, "only {first}..={last_full}");
    let last_name = seg.file_name(TL1, last_full);
    ar.wait_until(
        &format!("{last_name} to be complete"),
        Duration::from_secs(30),
        |_| has_file(dir.path(), &last_name),
    );

    // Part of the next segment, which the archiver must hold when the signal comes.
    let mid: Lsn = pg.generate_wal(300 << 10).unwrap().parse().unwrap();
    let open = seg.segment_of(mid);
    assert_eq!(open, last_full + 1);
    let open_name = seg.file_name(TL1, open);
    let partial = dir.path().join(format!("{open_name}.partial"));
    let upto = seg.offset_of(mid) as usize;
    ar.wait_until(
        &format!("{open_name}.partial to hold {upto} bytes"),
        Duration::from_secs(30),
        |_| {
            let theirs = pg.wal_file(&open_name).unwrap();
            std::fs::read(&partial)
                .is_ok_and(|ours| ours.len() >= upto && ours[..upto] == theirs[..upto])
        },
    );

    ar.signal(sig);
    let (code, err) = ar.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "SIG{sig}: stderr:\n{err}");
    assert!(err.contains("received interrupt signal, exiting"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let ours = std::fs::read(&partial).expect("the open segment is no longer .partial");
    assert_eq!(
        ours.len(),
        MB as usize,
        "{open_name}.partial is not full size"
    );
    assert!(
        ours[..upto] == pg.wal_file(&open_name).unwrap()[..upto],
        "{open_name}.partial differs from the server's segment"
    );
    assert!(!has_file(dir.path(), &open_name), "{open_name} was renamed");
    let n = assert_identical_to_server(&pg, dir.path(), TL1, first, last_full);
    assert_eq!(
        complete_segments(dir.path()).len(),
        n,
        "unexpected complete segments"
    );
}

#[test]
fn sigint_exits_0_and_keeps_the_open_segment_partial() {
    stops_cleanly_on("INT");
}

#[test]
fn sigterm_exits_0_and_keeps_the_open_segment_partial() {
    stops_cleanly_on("TERM");
}

#[test]
fn server_restart_is_retried_and_streaming_continues() {
    let pg = cluster(&[]);
    let seg = seg1mb();
    let dir = TempDir::new("restart");
    let mut ar = Background::spawn(bin().args(["-D", &dir.arg(), "-v", "-d", &conninfo(&pg)]));
    let mut start = Lsn(0);
    ar.wait_until("streaming to start", Duration::from_secs(20), |e| {
        streaming_start(e).map(|l| start = l).is_some()
    });
    let first = seg.segment_of(start);

    pg.restart().unwrap();
    ar.wait_until("the retry message", Duration::from_secs(20), |e| {
        e.contains("disconnected; waiting 5 seconds to try again")
    });

    // WAL written only after the restart must still arrive.
    pg.generate_wal(2 << 20).unwrap();
    pg.switch_wal().unwrap();
    let boundary = lsn(&pg, "SELECT pg_current_wal_lsn()");
    let last_full = seg.segment_of(boundary) - 1;
    let last_name = seg.file_name(TL1, last_full);
    ar.wait_until(
        &format!("{last_name} to be complete after the restart"),
        Duration::from_secs(30),
        |_| has_file(dir.path(), &last_name),
    );
    ar.signal("INT");
    let (code, err) = ar.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "stderr:\n{err}");
    assert!(
        err.matches("starting log streaming at").count() >= 2,
        "no second start: {err}"
    );
    assert!(!err.contains("pgwal-recv: error: disconnected"), "{err}");
    assert_identical_to_server(&pg, dir.path(), TL1, first, last_full);
}

#[test]
fn server_restart_with_no_loop_exits_1() {
    let pg = cluster(&[]);
    let dir = TempDir::new("restart-n");
    let mut ar =
        Background::spawn(bin().args(["-D", &dir.arg(), "-n", "-v", "-d", &conninfo(&pg)]));
    ar.wait_until("streaming to start", Duration::from_secs(20), |e| {
        streaming_start(e).is_some()
    });
    pg.restart().unwrap();
    let (code, err) = ar.wait(Duration::from_secs(20));
    assert_eq!(code, Some(1), "stderr:\n{err}");
    assert_eq!(
        err.trim_end().lines().last(),
        Some("pgwal-recv: error: disconnected"),
        "{err}"
    );
    assert!(!err.contains("waiting 5 seconds"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // A clean shutdown of a caught-up walsender ends the COPY with a bare CommandComplete:
    // the end of the stream, reported in pg_receivewal's words, not a protocol violation.
    assert!(
        err.contains("pgwal-recv: error: replication stream was terminated before stop point"),
        "{err}"
    );
    assert!(!err.contains("protocol violation"), "{err}");
}

#[test]
fn sigint_while_waiting_to_reconnect_exits_0() {
    let pg = cluster(&[]);
    let dir = TempDir::new("sig-retry");
    let mut ar = Background::spawn(bin().args(["-D", &dir.arg(), "-v", "-d", &conninfo(&pg)]));
    ar.wait_until("streaming to start", Duration::from_secs(20), |e| {
        streaming_start(e).is_some()
    });
    pg.stop().unwrap();
    ar.wait_until("the retry message", Duration::from_secs(20), |e| {
        e.contains("disconnected; waiting 5 seconds to try again")
    });
    ar.signal("INT");
    // At most the rest of the 5 s wait and one refused connection.
    let (code, err) = ar.wait(Duration::from_secs(8));
    assert_eq!(code, Some(0), "stderr:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
}
