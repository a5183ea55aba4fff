//! Timeline switches: following the promotion of the standby being archived from, and
//! resuming an archive of an old timeline against an already promoted server.

use std::time::Duration;

use pgwire_repl::{Lsn, TimelineId};
use testenv::Cluster;

use crate::common::*;

const TL1: TimelineId = TimelineId(1);
const TL2: TimelineId = TimelineId(2);

/// The switch point from timeline 1 in the promoted server's `00000002.history`, after
/// checking that the archive holds an identical copy.
fn history_switch_point(promoted: &Cluster, dir: &std::path::Path) -> Lsn {
    let name = TL2.history_file_name();
    let theirs = promoted.wal_file(&name).unwrap();
    let ours = std::fs::read(dir.join(&name))
        .unwrap_or_else(|e| panic!("{name} missing from the archive: {e}"));
    assert!(ours == theirs, "{name} differs from the server's");
    // "1\t0/3A0000A0\tno recovery target specified"
    let text = String::from_utf8(theirs).unwrap();
    let line = text.lines().find(|l| l.starts_with('1')).unwrap();
    line.split('\t').nth(1).unwrap().parse().unwrap()
}

/// The timeline-1 segment holding the switch point stays `.partial`, and its data up to
/// the switch point is the server's.
fn assert_old_timeline_partial(promoted: &Cluster, dir: &std::path::Path, switch: Lsn) {
    let seg = seg1mb();
    let name = seg.file_name(TL1, seg.segment_of(switch));
    assert!(!has_file(dir, &name), "{name} was completed on timeline 1");
    let ours = std::fs::read(dir.join(format!("{name}.partial")))
        .unwrap_or_else(|e| panic!("{name}.partial missing: {e}"));
    assert_eq!(ours.len(), MB as usize, "{name}.partial is not full size");
    // The promoted server keeps that segment under its own name (`.partial` only when
    // archive_mode is on).
    let upto = seg.offset_of(switch) as usize;
    let theirs = promoted
        .wal_file(&name)
        .or_else(|_| promoted.wal_file(&format!("{name}.partial")))
        .unwrap();
    assert!(
        ours[..upto] == theirs[..upto],
        "{name}.partial differs from the server's before the switch point {switch}"
    );
}

/// The archive around a switch from timeline 1 to 2 at `switch`: the old timeline's last
/// segment stays `.partial`, every complete segment from `first` to `last` is the promoted
/// server's, on timeline 1 before the switch segment and on 2 from it, and nothing else.
fn assert_archive_across_switch(
    promoted: &Cluster,
    dir: &std::path::Path,
    switch: Lsn,
    first: u64,
    last: u64,
) {
    let s = seg1mb().segment_of(switch);
    assert_old_timeline_partial(promoted, dir, switch);
    let n1 = assert_identical_to_server(promoted, dir, TL1, first, s - 1);
    let n2 = assert_identical_to_server(promoted, dir, TL2, s, last);
    assert_eq!(
        complete_segments(dir).len(),
        n1 + n2,
        "unexpected complete segments"
    );
}

/// The position one byte before `lsn`, as text.
fn before(lsn: Lsn) -> String {
    lsn.checked_sub(1).unwrap().to_string()
}

#[test]
fn follows_the_promotion_of_the_standby_it_streams_from() {
    let primary = cluster(&[]);
    let standby = primary.make_standby("sb").unwrap();
    let seg = seg1mb();
    let dir = TempDir::new("promote");
    let mut ar = Background::spawn(bin().args(["-D", &dir.arg(), "-v", "-d", &conninfo(&standby)]));
    let mut start = Lsn(0);
    ar.wait_until("streaming to start", Duration::from_secs(20), |e| {
        streaming_start(e).map(|l| start = l).is_some()
    });
    let first = seg.segment_of(start);

    primary.generate_wal(3 << 20).unwrap();
    primary.switch_wal().unwrap();
    let boundary = lsn(&primary, "SELECT pg_current_wal_lsn()");
    let name = seg.file_name(TL1, seg.segment_of(boundary) - 1);
    ar.wait_until(
        &format!("{name} to be archived"),
        Duration::from_secs(30),
        |_| has_file(dir.path(), &name),
    );
    // Leave the switch point in the middle of a segment.
    primary.generate_wal(200 << 10).unwrap();

    // The primary goes away; the standby takes over on timeline 2.
    primary.stop().unwrap();
    standby.promote().unwrap();
    standby.generate_wal(2 << 20).unwrap();
    standby.switch_wal().unwrap();
    let end = lsn(&standby, "SELECT pg_current_wal_lsn()");
    let last = seg.segment_of(end) - 1;
    let name = seg.file_name(TL2, last);
    ar.wait_until(
        &format!("{name} to be archived"),
        Duration::from_secs(30),
        |_| has_file(dir.path(), &name),
    );
    ar.signal("INT");
    let (code, err) = ar.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "stderr:\n{err}");
    assert!(err.contains("switched to timeline 2"), "{err}");
    // Followed on the same connection (end of timeline), not by reconnecting.
    assert!(!err.contains("disconnected"), "{err}");
    assert_eq!(err.matches("starting log streaming at").count(), 1, "{err}");

    let switch = history_switch_point(&standby, dir.path());
    let s = seg.segment_of(switch);
    assert!(s > first, "switch point {switch} in the first segment");
    assert_archive_across_switch(&standby, dir.path(), switch, first, last);

    // verify reads it whole: timeline 1's segments, its .partial at the switch, timeline 2
    // carrying on from timeline 1's segment before the switch, each page on its timeline.
    let out = run(
        bin().args(["verify", "-D", &dir.arg(), "--json"]),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}
{}",
        stderr(&out)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let tls: Vec<u64> = v["timelines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["timeline"].as_u64().unwrap())
        .collect();
    assert_eq!(tls, [1, 2], "{v}");
}

#[test]
fn resumes_an_old_timeline_archive_against_a_promoted_server() {
    let primary = cluster(&[]);
    let standby = primary.make_standby("sb").unwrap();
    let seg = seg1mb();
    let dir = TempDir::new("resume-tl");

    // Timeline 1 from the primary, ending in the middle of a segment.
    primary.generate_wal(2 << 20).unwrap();
    primary.switch_wal().unwrap();
    let end1: Lsn = primary.generate_wal(200 << 10).unwrap().parse().unwrap();
    // --endpos stops once data *beyond* it has arrived; the byte before the end does not
    // make the run wait for WAL nobody writes.
    let out = run(
        bin()
            .args(["-D", &dir.arg(), "-n", "-v", "-E", &before(end1)])
            .args(["-d", &conninfo(&primary)]),
        Duration::from_secs(60),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "first run: {err}");
    let first = seg.segment_of(streaming_start(&err).unwrap());
    let open = seg.segment_of(end1);
    assert!(has_file(
        dir.path(),
        &format!("{}.partial", seg.file_name(TL1, open))
    ));

    // The standby has all of it, then takes over.
    testenv::wait_for("the standby to replay", Duration::from_secs(20), || {
        lsn(&standby, "SELECT pg_last_wal_replay_lsn()") >= end1
    })
    .unwrap();
    primary.stop().unwrap();
    standby.promote().unwrap();
    standby.generate_wal(3 << 19).unwrap();
    standby.switch_wal().unwrap();
    let end2 = lsn(&standby, "SELECT pg_current_wal_lsn()");
    let last = seg.segment_of(end2) - 1;

    // A fresh run on the old directory, against the promoted server.
    let out = run(
        bin()
            .args(["-D", &dir.arg(), "-n", "-v", "-E", &before(end2)])
            .args(["-d", &conninfo(&standby)]),
        Duration::from_secs(60),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "second run: {err}");
    assert_eq!(
        streaming_start(&err),
        seg.segment_start(open),
        "did not resume at the .partial segment: {err}"
    );
    assert!(err.contains("switched to timeline 2"), "{err}");

    let switch = history_switch_point(&standby, dir.path());
    let s = seg.segment_of(switch);
    assert!(
        s >= open,
        "switch point {switch} before the first run's end {end1}"
    );
    assert_archive_across_switch(&standby, dir.path(), switch, first, last);
}

#[test]
fn endpos_on_a_historic_timeline_exits_0() {
    // WAL on timeline 1 well past the endpos, then a promotion: streaming timeline 1 from an
    // empty directory is then historic, and the server answers our stop at --endpos with
    // the next timeline. That must end the run with 0, not a retry loop.
    let primary = cluster(&[]);
    let standby = primary.make_standby("sb").unwrap();
    let start = lsn(&primary, "SELECT pg_current_wal_lsn()");
    primary.generate_wal(3 << 20).unwrap();
    let flushed = lsn(&primary, "SELECT pg_current_wal_flush_lsn()");
    testenv::wait_for("the standby to replay", Duration::from_secs(30), || {
        standby
            .sql(&format!("SELECT pg_last_wal_replay_lsn() >= '{flushed}'"))
            .map(|v| v == "t")
            .unwrap_or(false)
    })
    .unwrap();
    primary.stop().unwrap();
    standby.promote().unwrap();
    let endpos = Lsn(start.0 + (1 << 20) + 100);
    // A resume point on timeline 1: the segment holding `start`, as a partial.
    let dir = TempDir::new("historic-endpos");
    let seg = seg1mb();
    let name = seg.file_name(TL1, seg.segment_of(start));
    std::fs::write(
        dir.path().join(format!("{name}.partial")),
        vec![0u8; MB as usize],
    )
    .unwrap();
    let out = run(
        bin()
            .args(["-D", &dir.arg(), "-v", "-E", &endpos.to_string()])
            .args(["-d", &conninfo(&standby)]),
        Duration::from_secs(30),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("disconnected"), "{err}");
    assert!(err.contains("(timeline 1)"), "{err}");
}
