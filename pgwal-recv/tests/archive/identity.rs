//! The archive is byte-identical to the server's pg_wal, and to what PostgreSQL's own
//! pg_receivewal writes from the same server and slot position.

use std::time::Duration;

use pgwire_repl::TimelineId;

use crate::common::*;

#[test]
fn dozens_of_segments_identical_to_pg_wal_and_to_pg_receivewal() {
    let pg = cluster(&[]);
    // Two slots made together hold the same position: one for each tool.
    pg.create_physical_slot("ours").unwrap();
    pg.create_physical_slot("theirs").unwrap();
    let start = lsn(
        &pg,
        "SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'ours'",
    );
    pg.generate_wal(30 << 20).unwrap();
    pg.switch_wal().unwrap();
    let end = lsn(&pg, "SELECT pg_current_wal_flush_lsn()");
    let seg = seg1mb();
    let (first, last) = (seg.segment_of(start), seg.segment_of(end) - 1);
    assert!(last - first >= 24, "only {} segments", last - first + 1);

    // Before 15 no tool can read a slot's position (READ_REPLICATION_SLOT), so from an
    // empty directory both would start at the server's current position: give each the
    // first segment, after which they resume.
    let first_name = seg.file_name(TimelineId(1), first);
    let seed = |d: &std::path::Path| {
        if pg.version() < 15 {
            std::fs::write(d.join(&first_name), pg.wal_file(&first_name).unwrap()).unwrap();
        }
    };
    let dir = TempDir::new("identity");
    seed(dir.path());
    let out = run(
        bin()
            // With the default fsyncs (and the writeback they start), unlike the other run.
            .args(["-D", &dir.arg(), "-S", "ours", "-n"])
            .args(["-E", &end.to_string(), "-d", &conninfo(&pg)]),
        Duration::from_secs(120),
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let n = assert_identical_to_server(&pg, dir.path(), TimelineId(1), first, last);
    assert!(n >= 25);

    // PostgreSQL's own tool, from the twin slot, into a directory its OS user owns: an
    // installed one that works with this server, else one from PyPI (testenv fetches it).
    let tool = pg.bin().tool("pg_receivewal").unwrap();
    let version = std::process::Command::new(&tool)
        .arg("--version")
        .output()
        .unwrap();
    eprintln!(
        "comparing with {} on PostgreSQL {}: {}",
        tool.display(),
        pg.bin().full_version(),
        String::from_utf8_lossy(&version.stdout).trim()
    );
    let mut cmd = pg.tool_command("pg_receivewal").unwrap();
    let theirs = pg.scratch_dir("pg_receivewal").unwrap();
    seed(&theirs);
    let out = run(
        cmd.args([
            "-D",
            &theirs.display().to_string(),
            "-S",
            "theirs",
            "-n",
            "--no-sync",
        ])
        .args(["-E", &end.to_string(), "-d", &conninfo(&pg)]),
        Duration::from_secs(120),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "pg_receivewal: {}",
        stderr(&out)
    );
    let ours_files = complete_segments(dir.path());
    let theirs_files = complete_segments(&theirs);
    assert_eq!(
        ours_files, theirs_files,
        "different sets of complete segments"
    );
    for name in &ours_files {
        let a = std::fs::read(dir.path().join(name)).unwrap();
        let b = std::fs::read(theirs.join(name)).unwrap();
        assert!(a == b, "{name} differs from pg_receivewal's");
    }
}
