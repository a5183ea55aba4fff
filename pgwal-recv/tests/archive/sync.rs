//! Flush reporting: `--synchronous` makes the archiver a synchronous standby that commits
//! wait for; without it (and without a slot) it reports no flush position and can never
//! become one.

use std::process::Stdio;
use std::time::Duration;

use pgwire_repl::{Lsn, TimelineId};
use testenv::Cluster;

use crate::common::*;

/// Runs `sql` as the superuser with psql, failing the test if it takes longer than `limit`
/// (a commit waiting for a synchronous standby that never confirms would hang).
fn sql_within(pg: &Cluster, sql: &str, limit: Duration) -> String {
    let mut cmd = pg
        .psql_command(&pg.socket_conninfo(pg.superuser()))
        .unwrap();
    cmd.args(["-c", sql]).stdin(Stdio::null());
    let out = run(&mut cmd, limit);
    assert!(out.status.success(), "psql: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn walsender(pg: &Cluster, app: &str, column: &str) -> String {
    pg.sql(&format!(
        "SELECT {column} FROM pg_stat_replication WHERE application_name = '{app}'"
    ))
    .unwrap()
}

#[test]
fn synchronous_archiver_is_a_sync_standby_and_commits_proceed() {
    let pg = cluster(&[]);
    let seg = seg1mb();
    let dir = TempDir::new("sync");
    let ci = format!("{} application_name=syncarch", conninfo(&pg));
    let mut ar =
        Background::spawn(bin().args(["--synchronous", "-D", &dir.arg(), "-v", "-d", &ci]));
    ar.wait_until("streaming to start", Duration::from_secs(20), |e| {
        streaming_start(e).is_some()
    });
    pg.sql("ALTER SYSTEM SET synchronous_standby_names = 'syncarch'; SELECT pg_reload_conf();")
        .unwrap();
    ar.wait_until(
        "pg_stat_replication to show syncarch as sync",
        Duration::from_secs(20),
        |_| walsender(&pg, "syncarch", "sync_state") == "sync",
    );

    sql_within(&pg, "CREATE TABLE t (x int)", Duration::from_secs(10));
    for i in 0..5 {
        // The LSN is taken before the commit record, which comes after it.
        let before: Lsn = sql_within(
            &pg,
            &format!("INSERT INTO t VALUES ({i}) RETURNING pg_current_wal_insert_lsn()"),
            Duration::from_secs(10),
        )
        .parse()
        .unwrap();
        // The commit returned, so the archiver confirmed a flush past its commit record.
        let flush: Lsn = walsender(&pg, "syncarch", "flush_lsn").parse().unwrap();
        assert!(
            flush > before,
            "flush_lsn {flush} <= {before} after commit {i}"
        );

        // What it confirmed as flushed is in its .partial file.
        let name = seg.file_name(TimelineId(1), seg.segment_of(flush));
        let upto = seg.offset_of(flush) as usize;
        let ours = std::fs::read(dir.path().join(format!("{name}.partial"))).unwrap();
        let theirs = pg.wal_file(&name).unwrap();
        assert!(
            ours[..upto] == theirs[..upto],
            "{name}.partial does not hold the WAL up to the flush position {flush}"
        );
    }
    assert_eq!(walsender(&pg, "syncarch", "sync_state"), "sync");
    assert_eq!(pg.sql("SELECT count(*) FROM t").unwrap(), "5");

    ar.signal("INT");
    let (code, err) = ar.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "stderr:\n{err}");
}

#[test]
fn without_synchronous_flush_is_reported_only_with_a_slot() {
    let pg = cluster(&[]);
    pg.create_physical_slot("slotted").unwrap();
    // Any walsender that reports a flush position may become the synchronous standby.
    pg.sql("ALTER SYSTEM SET synchronous_standby_names = '*'; SELECT pg_reload_conf();")
        .unwrap();
    let (d1, d2) = (TempDir::new("noslot"), TempDir::new("slot"));
    let base = conninfo(&pg);
    let mut plain = Background::spawn(bin().args([
        "-D",
        &d1.arg(),
        "-s",
        "1",
        "-d",
        &format!("{base} application_name=plain"),
    ]));
    let mut slotted = Background::spawn(bin().args([
        "-D",
        &d2.arg(),
        "-S",
        "slotted",
        "-s",
        "1",
        "-d",
        &format!("{base} application_name=slotted"),
    ]));
    // Both have sent status updates (write_lsn is set by the first one).
    for (ar, app) in [(&mut plain, "plain"), (&mut slotted, "slotted")] {
        ar.wait_until(
            &format!("a status update from {app}"),
            Duration::from_secs(20),
            |_| !walsender(&pg, app, "write_lsn").is_empty(),
        );
    }
    // The slotted archiver reports a flush position; the plain one sends two more status
    // updates (its reply_time moves on twice) without one. (No commits here: with `*` they
    // would wait for the slotted archiver's flush.)
    slotted.wait_until(
        "a flush position from slotted",
        Duration::from_secs(30),
        |_| walsender(&pg, "slotted", "flush_lsn IS NULL") == "f",
    );
    let mut replies = vec![walsender(&pg, "plain", "reply_time")];
    plain.wait_until(
        "two more status updates from plain",
        Duration::from_secs(30),
        |_| {
            let t = walsender(&pg, "plain", "reply_time");
            if replies.last() != Some(&t) {
                replies.push(t);
            }
            replies.len() >= 3
        },
    );

    assert_eq!(walsender(&pg, "plain", "flush_lsn IS NULL"), "t");
    assert_eq!(walsender(&pg, "plain", "sync_state"), "async");
    assert_eq!(walsender(&pg, "slotted", "flush_lsn IS NULL"), "f");
    assert_eq!(walsender(&pg, "slotted", "sync_state"), "sync");

    for ar in [plain, slotted] {
        ar.signal("INT");
        let (code, err) = ar.wait(Duration::from_secs(10));
        assert_eq!(code, Some(0), "stderr:\n{err}");
    }
}
