//! The seed's own checks, over the native lab, through the `testenv` program as a user runs
//! it and psql with the conninfos it prints. `PG_VERSION` picks the server as for every
//! other suite.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use testenv::lab::Lab;
use testenv::{wait_for, PgBin};

/// An empty directory for a lab, reachable by the servers' OS user (tempfile makes it as
/// `mkdir` does, 0777 less the umask, under `/tmp`). Whatever lab is left in it is taken
/// down (servers stopped) on drop, also when the test fails, and the directory removed.
struct LabDir(tempfile::TempDir);

impl LabDir {
    fn new(what: &str) -> LabDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("testenv-lab-{what}-"))
            .tempdir()
            .unwrap();
        LabDir(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn arg(&self) -> &str {
        self.path().to_str().unwrap()
    }
}

impl Drop for LabDir {
    fn drop(&mut self) {
        if self.path().join("lab.conf").exists() {
            let _ = testenv(&["down", "--dir", self.arg()]);
        }
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

/// psql with `conninfo` as given, no PG* variables, no ~/.psqlrc; unaligned, with the
/// header line (so a test can find columns by name) and no footer.
fn psql_table(conninfo: &str, sql: &str) -> Result<Table, String> {
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
            "-q",
            "-P",
            "footer=off",
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
        Ok(Table::parse(&String::from_utf8_lossy(&out.stdout)))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// psql's unaligned output: the header, then the rows.
#[derive(Debug)]
struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn parse(text: &str) -> Table {
        let mut lines = text.lines().filter(|l| !l.is_empty());
        let split = |l: &str| l.split('|').map(str::to_string).collect::<Vec<_>>();
        let columns = lines.next().map(split).unwrap_or_default();
        Table {
            columns,
            rows: lines.map(split).collect(),
        }
    }

    /// Column `name` of every row.
    fn column(&self, name: &str) -> Vec<&str> {
        let i = self
            .columns
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no column {name} in {self:?}"));
        self.rows.iter().map(|r| r[i].as_str()).collect()
    }

    /// The one value of a one-row, one-column result.
    fn value(&self) -> &str {
        assert!(
            self.columns.len() == 1 && self.rows.len() == 1,
            "not one value: {self:?}"
        );
        &self.rows[0][0]
    }
}

/// The one value `sql` returns, as psql prints it.
fn psql(conninfo: &str, sql: &str) -> Result<String, String> {
    psql_table(conninfo, sql).map(|t| t.value().to_string())
}

fn port_of(conninfo: &str) -> &str {
    conninfo
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("port="))
        .unwrap()
}

fn is_lsn(s: &str) -> bool {
    s.split_once('/').is_some_and(|(hi, lo)| {
        [hi, lo]
            .iter()
            .all(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
    })
}

/// The conninfos `up` (or `rejoin`) printed: primary, standby, primary-admin, standby-admin.
fn conninfos(out: &str) -> [String; 4] {
    let lines: Vec<&str> = out.lines().collect();
    let keys = [
        "primary: ",
        "standby: ",
        "primary-admin: ",
        "standby-admin: ",
    ];
    let tail = &lines[lines.len().saturating_sub(4)..];
    assert_eq!(tail.len(), 4, "four conninfo lines wanted:\n{out}");
    std::array::from_fn(|i| {
        tail[i]
            .strip_prefix(keys[i])
            .unwrap_or_else(|| panic!("{:?} wanted: {out}", keys[i]))
            .to_string()
    })
}

// The seed guide's statements, verbatim: "Testing Replication", "Monitoring" (with its
// monitor.sh) and "Failover Scenarios".
const TEST1_INSERT: &str =
    "INSERT INTO users (username, email) VALUES ('test_user', 'test@example.com');";
const TEST1_SELECT: &str = "SELECT * FROM users;";
const TEST2_INSERT: &str =
    "INSERT INTO users (username, email) VALUES ('fail', 'fail@example.com');";
const TEST3_PRIMARY: &str = "SELECT pg_current_wal_lsn();";
const TEST3_STANDBY: &str = "SELECT pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn();";
const MON_REPLICATION: &str = "SELECT * FROM pg_stat_replication;";
const MON_IN_RECOVERY: &str = "SELECT pg_is_in_recovery();";
const MON_LAG: &str =
    "SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) AS lag_bytes;";
const MON_REPLAY_TS: &str = "SELECT pg_last_xact_replay_timestamp();";
const MONITOR_SH_PRIMARY: &str = "SELECT client_addr, state, sent_lsn, write_lsn, replay_lsn, sync_state FROM pg_stat_replication;";
const MONITOR_SH_STANDBY: &str = "SELECT pg_is_in_recovery() AS in_recovery, pg_last_wal_receive_lsn() AS receive_lsn, pg_last_wal_replay_lsn() AS replay_lsn;";
const FAILOVER_PROMOTE: &str = "SELECT pg_promote();";
const FAILOVER_INSERT: &str =
    "INSERT INTO users (username, email) VALUES ('after_failover', 'failover@example.com');";

#[test]
fn seed_guide_statements_on_the_native_lab() {
    let lab = LabDir::new("seed");
    let out = testenv_ok(&["up", "--dir", lab.arg()]);
    assert_eq!(
        out.lines().count(),
        4,
        "up must print exactly four lines:\n{out}"
    );
    let [primary, standby, primary_admin, standby_admin] = conninfos(&out);
    for c in [&primary, &standby] {
        assert!(c.starts_with("host=127.0.0.1 port="), "{c}");
        assert!(c.contains(" user=replicator password="), "{c}");
    }
    for (admin, node) in [(&primary_admin, &primary), (&standby_admin, &standby)] {
        assert!(admin.contains(" user=postgres password="), "{admin}");
        assert_eq!(port_of(admin), port_of(node));
    }
    assert_ne!(port_of(&primary), port_of(&standby));
    // The library API sees the same lab.
    let api = Lab::open(Path::new(lab.arg())).unwrap();
    assert_eq!(
        (api.primary_conninfo(), api.standby_conninfo()),
        (primary.clone(), standby.clone())
    );
    assert_eq!(api.admin_conninfo(api.primary()).unwrap(), primary_admin);
    eprintln!(
        "lab: PostgreSQL {} from {}; standby cloned by {}",
        api.bin().full_version(),
        api.bin().bindir().display(),
        api.bin().tool("pg_basebackup").map_or_else(
            |e| format!("testenv's backup copy ({e})"),
            |p| p.display().to_string()
        )
    );

    // The seed's data, in database postgres; the replicator may replicate.
    let users = psql_table(&primary_admin, TEST1_SELECT).unwrap();
    assert_eq!(
        users.columns,
        ["id", "username", "email", "created_at"],
        "{users:?}"
    );
    assert_eq!(users.column("username"), ["alice", "bob"]);
    assert_eq!(
        users.column("email"),
        ["alice@example.com", "bob@example.com"]
    );
    let ident = psql_table(&format!("{primary} replication=true"), "IDENTIFY_SYSTEM").unwrap();
    assert_eq!(ident.column("timeline"), ["1"], "{ident:?}");

    // Test 1: a row written on the primary appears on the standby.
    psql_table(&primary_admin, TEST1_INSERT).unwrap();
    let on_primary = psql_table(&primary_admin, TEST1_SELECT).unwrap();
    assert_eq!(on_primary.column("username"), ["alice", "bob", "test_user"]);
    wait_for("test_user on the standby", Duration::from_secs(20), || {
        psql_table(&standby_admin, TEST1_SELECT)
            .is_ok_and(|t| t.column("username") == ["alice", "bob", "test_user"])
    })
    .unwrap();

    // Test 2: a write on the standby fails.
    let err = psql_table(&standby_admin, TEST2_INSERT).unwrap_err();
    assert!(
        err.contains("ERROR:  cannot execute INSERT in a read-only transaction"),
        "{err}"
    );

    // Test 3: the LSN functions answer.
    assert!(is_lsn(&psql(&primary_admin, TEST3_PRIMARY).unwrap()));
    let positions = psql_table(&standby_admin, TEST3_STANDBY).unwrap();
    assert!(
        positions.rows.len() == 1 && positions.rows[0].iter().all(|p| is_lsn(p)),
        "{positions:?}"
    );

    // Monitoring: the primary sees the standby streaming, as the superuser and as the
    // replicator (a member of pg_monitor); the standby is in recovery.
    for who in [&primary_admin, &primary] {
        wait_for("pg_stat_replication", Duration::from_secs(20), || {
            psql_table(who, MON_REPLICATION).is_ok_and(|t| {
                t.column("application_name") == ["node2"]
                    && t.column("state") == ["streaming"]
                    && t.column("sync_state") == ["async"]
                    && is_lsn(t.column("replay_lsn")[0])
            })
        })
        .unwrap_or_else(|e| panic!("{e}: {:?}", psql_table(who, MON_REPLICATION)));
    }
    let mon = psql_table(&primary_admin, MONITOR_SH_PRIMARY).unwrap();
    assert_eq!(mon.column("client_addr"), ["127.0.0.1"], "{mon:?}");
    assert_eq!(mon.column("state"), ["streaming"], "{mon:?}");
    assert!(["sent_lsn", "write_lsn", "replay_lsn"]
        .iter()
        .all(|c| is_lsn(mon.column(c)[0])));
    assert_eq!(psql(&standby_admin, MON_IN_RECOVERY).unwrap(), "t");
    let lag: i64 = psql(&standby_admin, MON_LAG).unwrap().parse().unwrap();
    assert!(lag >= 0, "{lag}");
    let ts = psql(&standby_admin, MON_REPLAY_TS).unwrap();
    assert!(ts.starts_with("20"), "no replay timestamp: {ts:?}");
    let mon = psql_table(&standby_admin, MONITOR_SH_STANDBY).unwrap();
    assert_eq!(mon.column("in_recovery"), ["t"], "{mon:?}");
    assert!(is_lsn(mon.column("receive_lsn")[0]) && is_lsn(mon.column("replay_lsn")[0]));
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

    // Failover as the guide does it: the primary stops (docker-compose stop), the standby
    // is promoted by SQL, takes writes, and the lab knows who is primary now.
    api.primary().stop().unwrap();
    assert!(
        psql(&primary_admin, "SELECT 1").is_err(),
        "the primary still answers"
    );
    assert_eq!(psql(&standby_admin, FAILOVER_PROMOTE).unwrap(), "t");
    assert_eq!(psql(&standby_admin, MON_IN_RECOVERY).unwrap(), "f");
    psql_table(&standby_admin, FAILOVER_INSERT).unwrap();
    let after = psql_table(&standby_admin, TEST1_SELECT).unwrap();
    assert_eq!(
        after.column("username"),
        ["alice", "bob", "test_user", "after_failover"]
    );
    let s = testenv_ok(&["status", "--dir", lab.arg()]);
    assert!(s.contains("node1: stopped"), "{s}");
    assert!(s.contains("node2: primary, port"), "{s}");
    assert!(s.contains("timeline 2"), "{s}");
    // No standby is left to promote.
    let again = testenv(&["promote", "--dir", lab.arg()]);
    assert_eq!(again.status.code(), Some(1));

    // Rejoin: the old primary streams from the new one, on its old address.
    let out = testenv_ok(&["rejoin", "--dir", lab.arg()]);
    let [p, s_, pa, sa] = conninfos(&out);
    assert_eq!((p, s_), (standby.clone(), primary.clone()), "{out}");
    assert_eq!((pa, sa), (standby_admin.clone(), primary_admin.clone()));
    assert_eq!(psql(&primary_admin, MON_IN_RECOVERY).unwrap(), "t");
    psql_table(
        &standby,
        "INSERT INTO users (username, email) VALUES ('frank', 'frank@example.com')",
    )
    .unwrap();
    wait_for(
        "the new primary's rows on the old one",
        Duration::from_secs(20),
        || {
            psql_table(&primary, TEST1_SELECT).is_ok_and(|t| {
                t.column("username") == ["alice", "bob", "test_user", "after_failover", "frank"]
            })
        },
    )
    .unwrap();
    let err = psql_table(&primary, "DELETE FROM users").unwrap_err();
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

    // And back with `testenv promote`: node2 stops, node1 is promoted and takes writes.
    let out = testenv_ok(&["promote", "--dir", lab.arg()]);
    assert!(out.contains("promoted node1"), "{out}");
    assert!(out.contains(&format!("primary: {primary}")), "{out}");
    assert!(psql(&standby, "SELECT 1").is_err(), "node2 still answers");
    psql_table(
        &primary,
        "INSERT INTO users (username, email) VALUES ('grace', 'grace@example.com')",
    )
    .unwrap();
    let s = testenv_ok(&["status", "--dir", lab.arg()]);
    assert!(
        s.contains("node2: stopped") && s.contains("timeline 3"),
        "{s}"
    );

    // Down stops everything and deletes it.
    testenv_ok(&["down", "--dir", lab.arg()]);
    assert!(!lab.path().exists());
    assert!(psql(&primary, "SELECT 1").is_err());
    assert!(psql(&standby, "SELECT 1").is_err());
}

/// User errors: one line on stderr, exit 1, never a panic.
#[test]
fn cli_errors_are_one_line_and_exit_1() {
    let lab = LabDir::new("errors");
    std::fs::write(lab.path().join("something"), "").unwrap();
    let missing = lab.path().join("missing");
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
