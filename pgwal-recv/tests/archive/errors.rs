//! Errors users hit: one clear line and exit 1.

use std::time::Duration;

use testenv::roles::{NOREPL, REPL_SCRAM};

use crate::common::*;

fn fails(args: &[&str]) -> String {
    let out = run(bin().args(args), Duration::from_secs(30));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("RUST_BACKTRACE"), "{err}");
    err
}

#[test]
fn connection_and_server_errors() {
    let pg = cluster(&[]);
    let dir = TempDir::new("errors");
    let d = dir.arg();

    let wrong = pg.conninfo(REPL_SCRAM.name, Some("not-the-password"));
    let err = fails(&["-D", &d, "-n", "-d", &wrong]);
    assert!(
        err.contains("password authentication failed for user \"repl_scram\""),
        "{err}"
    );
    assert!(!err.contains("not-the-password"), "password leaked: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let err = fails(&["-D", &d, "-n", "-d", &pg.conninfo(NOREPL.name, None)]);
    assert!(err.contains("pgwal-recv: error: "), "{err}");
    // "must be superuser or replication role to start walsender"; from 16 on "permission
    // denied to start WAL sender" with "Only roles with the REPLICATION attribute ...".
    assert!(err.to_lowercase().contains("replication"), "{err}");

    // A missing slot: READ_REPLICATION_SLOT says so (15+), START_REPLICATION otherwise.
    let err = fails(&["-D", &d, "-n", "-S", "no_such_slot", "-d", &conninfo(&pg)]);
    assert!(
        err.contains("replication slot \"no_such_slot\" does not exist"),
        "{err}"
    );
    assert!(
        err.trim_end().ends_with("pgwal-recv: error: disconnected"),
        "{err}"
    );

    // Nothing is listening: the first connection is not retried.
    let port = pg.port();
    pg.stop().unwrap();
    let err = fails(&[
        "-D",
        &d,
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        "x",
    ]);
    assert!(err.contains("Connection refused"), "{err}");
    assert!(!err.contains("os error"), "{err}");

    // A second archiver on the same directory is refused, naming the first.
    pg.start_again().unwrap();
    let mut first = bin()
        .args(["-D", &d, "-d", &conninfo(&pg)])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It holds the lock once its pid is in the lock file (written after the lock is taken).
    let lock_file = dir.path().join(".pgwal-recv.lock");
    let pid = first.id().to_string();
    testenv::wait_for("the first archiver's lock", Duration::from_secs(30), || {
        std::fs::read_to_string(&lock_file).is_ok_and(|s| s.trim() == pid)
    })
    .unwrap();
    let err = fails(&["-D", &d, "-d", &conninfo(&pg)]);
    assert!(
        err.contains(&format!(
            "is in use by another pgwal-recv (pid {})",
            first.id()
        )),
        "{err}"
    );
    first.kill().unwrap();
    first.wait().unwrap();
}

#[test]
fn create_and_drop_slot() {
    let pg = cluster(&[]);
    let ci = conninfo(&pg);
    let ok = |args: &[&str]| {
        let out = run(bin().args(args), Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    ok(&["--create-slot", "-S", "made", "-d", &ci]);
    assert!(pg.slot_exists("made").unwrap());
    let err = fails(&["--create-slot", "-S", "made", "-d", &ci]);
    assert!(err.contains("already exists"), "{err}");
    ok(&["--create-slot", "--if-not-exists", "-S", "made", "-d", &ci]);
    ok(&["--drop-slot", "-S", "made", "-d", &ci]);
    assert!(!pg.slot_exists("made").unwrap());
    let err = fails(&["--drop-slot", "-S", "made", "-d", &ci]);
    assert!(err.contains("does not exist"), "{err}");
}
