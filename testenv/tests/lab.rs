//! The seed's own checks, over the native lab, through the `testenv` program as a user runs
//! it and psql with the conninfos it prints. `PG_VERSION` picks the server as for every
//! other suite.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use testenv::lab::Lab;
use testenv::{wait_for, PgBin};

/// A lab directory under the temporary directory; whatever is left in it is taken down
/// (servers stopped) and removed on drop, also when the test fails.
struct LabDir(PathBuf);

impl LabDir {
    fn new(what: &str) -> LabDir {
        let dir = std::env::temp_dir().join(format!("testenv-lab-{}-{what}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        LabDir(dir)
    }

    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for LabDir {
    fn drop(&mut self) {
        if self.0.join("lab.conf").exists() {
            let _ = testenv(&["down", "--dir", self.arg()]);
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the `testenv` program.
fn testenv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_testenv"))
        .args(args)
        .output()
        .expect("run testenv")
}

/// Runs it and wants exit 0; returns stdout.
fn testenv_ok(args: &[&str]) -> String {
    let out = testenv(args);
    assert!(
        out.status.success(),
        "testenv {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// psql with `conninfo` as given, no PG* variables, no ~/.psqlrc.
fn psql(conninfo: &str, sql: &str) -> Result<String, String> {
    let psql = PgBin::get().unwrap().tool("psql").unwrap();
    let mut cmd = Command::new(psql);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PG") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .args([
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            conninfo,
            "-c",
            sql,
        ])
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .expect("run psql");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

fn port_of(conninfo: &str) -> &str {
    conninfo
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("port="))
        .unwrap()
}

#[test]
fn seed_checks_on_the_native_lab() {
    let lab = LabDir::new("seed");
    let out = testenv_ok(&["up", "--dir", lab.arg()]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "up must print exactly two lines:\n{out}");
    let primary = lines[0]
        .strip_prefix("primary: ")
        .expect(lines[0])
        .to_string();
    let standby = lines[1]
        .strip_prefix("standby: ")
        .expect(lines[1])
        .to_string();
    for c in [&primary, &standby] {
        assert!(c.starts_with("host=127.0.0.1 port="), "{c}");
        assert!(c.contains(" user=replicator password="), "{c}");
    }
    assert_ne!(port_of(&primary), port_of(&standby));
    // The library API sees the same lab.
    let api = Lab::open(Path::new(lab.arg())).unwrap();
    assert_eq!(
        (api.primary_conninfo(), api.standby_conninfo()),
        (primary.clone(), standby.clone())
    );
    eprintln!(
        "lab: PostgreSQL {} from {}",
        api.bin().full_version(),
        api.bin().bindir().display()
    );

    // The seed's data, and the replicator may replicate.
    assert_eq!(psql(&primary, "SELECT count(*) FROM users").unwrap(), "3");
    let ident = psql(&format!("{primary} replication=true"), "IDENTIFY_SYSTEM").unwrap();
    assert_eq!(ident.split('|').nth(1), Some("1"), "{ident}");

    // A row written on the primary appears on the standby.
    psql(
        &primary,
        "INSERT INTO users (name, email) VALUES ('Dave', 'dave@example.com')",
    )
    .unwrap();
    let dave = "SELECT name FROM users WHERE email = 'dave@example.com'";
    wait_for("the row on the standby", Duration::from_secs(20), || {
        psql(&standby, dave).is_ok_and(|n| n == "Dave")
    })
    .unwrap();

    // A write on the standby fails.
    let err = psql(
        &standby,
        "INSERT INTO users (name, email) VALUES ('Eve', 'eve@example.com')",
    )
    .unwrap_err();
    assert!(
        err.contains("cannot execute INSERT in a read-only transaction"),
        "{err}"
    );

    // Receive and replay positions are readable, on the standby and in `status`.
    let row = psql(
        &standby,
        "SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()",
    )
    .unwrap();
    let fields: Vec<&str> = row.split('|').collect();
    assert_eq!(fields.len(), 3, "{row}");
    assert_eq!(fields[0], "t");
    assert!(fields[1].contains('/') && fields[2].contains('/'), "{row}");
    wait_for(
        "status to show the standby's replies",
        Duration::from_secs(20),
        || {
            let s = testenv_ok(&["status", "--dir", lab.arg()]);
            s.contains("node1: primary")
                && s.contains("pg_stat_replication: node2 from 127.0.0.1, streaming")
                && s.contains(" bytes\n")
                && s.contains("node2: standby")
                && s.contains(&format!(
                    "WAL receiver: streaming from port {}",
                    port_of(&primary)
                ))
        },
    )
    .unwrap_or_else(|e| panic!("{e}:\n{}", testenv_ok(&["status", "--dir", lab.arg()])));

    // Promote: the primary stops, the old standby takes writes.
    let out = testenv_ok(&["promote", "--dir", lab.arg()]);
    assert!(out.contains("promoted node2"), "{out}");
    assert!(out.contains(&format!("primary: {standby}")), "{out}");
    assert!(
        psql(&primary, "SELECT 1").is_err(),
        "the old primary still answers"
    );
    psql(
        &standby,
        "INSERT INTO users (name, email) VALUES ('Eve', 'eve@example.com')",
    )
    .unwrap();
    let s = testenv_ok(&["status", "--dir", lab.arg()]);
    assert!(s.contains("node1: stopped"), "{s}");
    assert!(s.contains("node2: primary, port"), "{s}");
    assert!(s.contains("timeline 2"), "{s}");
    // Promoting again has no standby to promote.
    let again = testenv(&["promote", "--dir", lab.arg()]);
    assert_eq!(again.status.code(), Some(1));

    // Rejoin: the old primary streams from the new one, on its old address.
    let out = testenv_ok(&["rejoin", "--dir", lab.arg()]);
    assert!(out.contains(&format!("standby: {primary}")), "{out}");
    assert_eq!(psql(&primary, "SELECT pg_is_in_recovery()").unwrap(), "t");
    psql(
        &standby,
        "INSERT INTO users (name, email) VALUES ('Frank', 'frank@example.com')",
    )
    .unwrap();
    wait_for(
        "the new primary's rows on the old one",
        Duration::from_secs(20),
        || {
            psql(
                &primary,
                "SELECT string_agg(name, ',' ORDER BY id) FROM users",
            )
            .is_ok_and(|s| s == "Alice,Bob,Carol,Dave,Eve,Frank")
        },
    )
    .unwrap();
    let err = psql(&primary, "DELETE FROM users").unwrap_err();
    assert!(err.contains("read-only transaction"), "{err}");
    wait_for("status after the rejoin", Duration::from_secs(20), || {
        let s = testenv_ok(&["status", "--dir", lab.arg()]);
        s.contains("primary node2")
            && s.contains("node1: standby")
            && s.contains(&format!(
                "WAL receiver: streaming from port {}, timeline 2",
                port_of(&standby)
            ))
            && s.contains("pg_stat_replication: node1 from 127.0.0.1, streaming")
    })
    .unwrap_or_else(|e| panic!("{e}:\n{}", testenv_ok(&["status", "--dir", lab.arg()])));

    // Down stops everything and deletes it.
    testenv_ok(&["down", "--dir", lab.arg()]);
    assert!(!lab.0.exists());
    assert!(psql(&primary, "SELECT 1").is_err());
    assert!(psql(&standby, "SELECT 1").is_err());
}

/// User errors: one line on stderr, exit 1, never a panic.
#[test]
fn cli_errors_are_one_line_and_exit_1() {
    let lab = LabDir::new("errors");
    std::fs::create_dir_all(&lab.0).unwrap();
    std::fs::write(lab.0.join("something"), "").unwrap();
    let missing = lab.0.join("missing");
    let missing = missing.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["status", "--dir", missing], "no lab in"),
        (&["down", "--dir", missing], "no lab in"),
        (&["promote", "--dir", missing], "no lab in"),
        (&["up", "--dir", lab.arg()], "is not empty"),
        (&["up", "--dir", missing, "--pg", "12"], "not supported"),
        (
            &["up", "--dir", missing, "--pg", "latest"],
            "not a PostgreSQL version",
        ),
        (&["up", "--dir"], "--dir needs a value"),
        (&["up", "--dir", missing, "extra"], "unexpected argument"),
        (&["status", "--verbose"], "unknown option"),
        (&["launch"], "unknown command"),
        (&[], "no command given"),
    ];
    for (args, wanted) in cases {
        let out = testenv(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("testenv: ") && last.contains(wanted),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        if !args.is_empty() {
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        }
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert!(!Path::new(missing).exists(), "a failed up left {missing}");
    let help = testenv_ok(&["--help"]);
    for c in ["up", "status", "promote", "rejoin", "down"] {
        assert!(help.contains(&format!("\n  {c} ")), "{help}");
    }
}
