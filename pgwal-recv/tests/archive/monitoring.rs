//! Measuring: `measure` on a known stretch of WAL, the metrics endpoint while archiving,
//! the `--verbose` progress lines, and `status` from the server's side.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use pgwire_repl::Lsn;
use serde_json::Value;
use testenv::roles::REPL_TRUST;
use testenv::Cluster;

use crate::common::*;

fn slot_restart(pg: &Cluster, slot: &str) -> Lsn {
    lsn(
        pg,
        &format!("SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'"),
    )
}

fn lsn_field(v: &Value, key: &str) -> Lsn {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .parse()
        .unwrap()
}

#[test]
fn measure_reports_the_wal_from_the_slot_to_endpos_and_leaves_the_slot() {
    let pg = cluster(&[]);
    pg.create_physical_slot("m").unwrap();
    let restart = slot_restart(&pg, "m");
    let end: Lsn = pg.generate_wal(6 * u64::from(MB)).unwrap().parse().unwrap();
    let with_slot = pg.version() >= 15;
    let mut cmd = bin();
    cmd.args([
        "measure",
        "--json",
        "-E",
        &end.to_string(),
        "-d",
        &conninfo(&pg),
    ]);
    if with_slot {
        cmd.args(["-S", "m"]);
    }
    let out = run(&mut cmd, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    let v = last_json(&out);
    let start = lsn_field(&v, "start_lsn");
    if with_slot {
        assert_eq!(start, seg1mb().round_down(restart), "{v}");
    }
    assert_eq!(lsn_field(&v, "end_lsn"), end, "{v}");
    assert_eq!(v["bytes"].as_u64(), Some(end.0 - start.0), "{v}");
    assert!(v["seconds"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["mb_per_s"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["messages"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["keepalives"].as_u64().is_some(), "{v}");
    for k in ["lag_bytes", "lag_seconds"] {
        for p in ["p50", "p99", "max"] {
            assert!(v[k][p].as_f64().is_some_and(|x| x >= 0.0), "{k}.{p} in {v}");
        }
        assert!(v[k]["p50"].as_f64() <= v[k]["max"].as_f64(), "{v}");
    }
    // Nothing was reported flushed: the slot is where it was, and a second run measures
    // the same WAL.
    assert_eq!(slot_restart(&pg, "m"), restart);
    if with_slot {
        let again = last_json(&run(&mut cmd, Duration::from_secs(60)));
        assert_eq!(
            (&again["start_lsn"], &again["bytes"]),
            (&v["start_lsn"], &v["bytes"])
        );
        assert!(again.get("rmgrs").is_none(), "{again}");
        // --stats: the same WAL decoded, by resource manager. The rows were ~1 kB inserts:
        // Heap has most of the bytes; every figure adds up to at most what was streamed.
        cmd.arg("--stats");
        let out = run(&mut cmd, Duration::from_secs(60));
        assert!(out.status.success(), "{}", stderr(&out));
        let st = last_json(&out);
        let heap = &st["rmgrs"]["Heap"];
        assert!(heap["records"].as_u64().unwrap() > 1000, "{st}");
        assert!(heap["bytes_per_s"].as_f64().unwrap() > 0.0, "{st}");
        let total: u64 = st["rmgrs"]
            .as_object()
            .unwrap()
            .values()
            .map(|r| r["record_bytes"].as_u64().unwrap() + r["fpi_bytes"].as_u64().unwrap())
            .sum();
        assert!(total <= st["bytes"].as_u64().unwrap(), "{st}");
        assert!(total > st["bytes"].as_u64().unwrap() / 2, "{st}");
        assert!(stderr(&out).contains("Heap: "), "{}", stderr(&out));
    }
}

#[test]
fn measure_for_a_duration_prints_a_line_every_second_and_serves_metrics() {
    let pg = cluster(&[]);
    let port = free_port();
    let child = bin()
        .args(["measure", "--duration", "3", "-d", &conninfo(&pg)])
        .args(["--metrics-listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let m = wait_metrics(port, "measure connected", |m| {
        metric(m, "pgwal_recv_connected") == 1.0
    });
    assert_eq!(metric(&m, "pgwal_recv_flushed_lsn"), 0.0, "{m:?}");
    assert!(metric(&m, "pgwal_recv_server_wal_end_lsn") > 0.0, "{m:?}");
    let out = wait_output(child, Duration::from_secs(30));
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(" MB/s, lag "))
        .collect();
    assert!((2..=4).contains(&lines.len()), "{stdout}");
    assert!(stdout.contains("pgwal-recv: received "), "{stdout}");
    assert!(stdout.contains("lag in time: p50 "), "{stdout}");
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The metrics page, as name → value; `None` while nothing listens.
pub fn scrape(port: u16) -> Option<Vec<(String, f64)>> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Read to the end: the server keeps a connection open unless asked not to.
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
    assert!(
        body.contains("Content-Type: application/openmetrics-text"),
        "{body}"
    );
    Some(
        body.split("\r\n\r\n")
            .nth(1)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l.rsplit_once(' ').unwrap();
                (k.to_owned(), v.parse().unwrap())
            })
            .collect(),
    )
}

pub fn metric(m: &[(String, f64)], name: &str) -> f64 {
    m.iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("{name} missing in {m:?}"))
        .1
}

/// Scrapes until `cond` holds (nothing listening counts as not yet).
fn wait_metrics(
    port: u16,
    what: &str,
    cond: impl Fn(&[(String, f64)]) -> bool,
) -> Vec<(String, f64)> {
    let began = Instant::now();
    loop {
        let m = scrape(port);
        if let Some(m) = m.filter(|m| cond(m)) {
            return m;
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn metrics_follow_the_archiver_and_lag_returns_to_zero_at_rest() {
    let pg = cluster(&[]);
    pg.create_physical_slot("metrics").unwrap();
    let dir = TempDir::new("metrics");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut ar = Background::spawn(bin().args([
        "-D",
        &dir.arg(),
        "-S",
        "metrics",
        "-v",
        "--verify",
        "--metrics-listen",
        &listen,
        "-d",
        &conninfo(&pg),
    ]));
    ar.wait_until("streaming to start", Duration::from_secs(20), |e| {
        streaming_start(e).is_some()
    });
    let first = wait_metrics(port, "connected", |m| {
        metric(m, "pgwal_recv_connected") == 1.0
    });
    for name in [
        "pgwal_recv_received_bytes_total",
        "pgwal_recv_received_lsn",
        "pgwal_recv_flushed_lsn",
        "pgwal_recv_server_wal_end_lsn",
        "pgwal_recv_lag_bytes",
        "pgwal_recv_lag_seconds",
        "pgwal_recv_segments_completed_total",
        "pgwal_recv_reconnects_total",
        "pgwal_recv_timeline",
    ] {
        metric(&first, name);
    }
    assert_eq!(metric(&first, "pgwal_recv_timeline"), 1.0);
    let end: Lsn = pg.generate_wal(3 * u64::from(MB)).unwrap().parse().unwrap();
    pg.switch_wal().unwrap();
    let m = wait_metrics(port, "WAL received and at rest", |m| {
        metric(m, "pgwal_recv_received_lsn") >= end.0 as f64
            && metric(m, "pgwal_recv_lag_bytes") == 0.0
            && metric(m, "pgwal_recv_lag_seconds") == 0.0
    });
    let grew = metric(&m, "pgwal_recv_received_bytes_total")
        - metric(&first, "pgwal_recv_received_bytes_total");
    assert!(grew >= 3.0 * f64::from(MB), "{m:?}");
    assert!(
        metric(&m, "pgwal_recv_segments_completed_total") >= 3.0,
        "{m:?}"
    );
    assert!(
        metric(&m, "pgwal_recv_server_wal_end_lsn") >= end.0 as f64,
        "{m:?}"
    );
    assert!(metric(&m, "pgwal_recv_flushed_lsn") > metric(&first, "pgwal_recv_flushed_lsn"));
    assert_eq!(metric(&m, "pgwal_recv_reconnects_total"), 0.0);
    // --verify decodes the WAL: records by resource manager, as labels.
    assert!(
        metric(&m, "pgwal_recv_wal_records_total{rmgr=\"Heap\"}") > 1000.0,
        "{m:?}"
    );
    assert!(metric(&m, "pgwal_recv_wal_record_bytes_total{rmgr=\"Heap\"}") > 1e6);
    // --verbose: plain progress lines in a log (stderr is a file here).
    ar.wait_until("a progress line", Duration::from_secs(15), |e| {
        e.lines().any(|l| l.contains(" MB/s, lag "))
    });
    // A restart of the server: disconnected, then a reconnect is counted.
    pg.restart().unwrap();
    wait_metrics(port, "a reconnect", |m| {
        metric(m, "pgwal_recv_reconnects_total") >= 1.0 && metric(m, "pgwal_recv_connected") == 1.0
    });
    ar.signal("INT");
    let (code, _) = ar.wait(Duration::from_secs(20));
    assert_eq!(code, Some(0));
}

#[test]
fn status_lists_the_archiver_its_slot_and_a_standby() {
    let pg = cluster(&[]);
    pg.create_physical_slot("arch").unwrap();
    let dir = TempDir::new("status");
    let ci = format!("{} application_name=statusarch", conninfo(&pg));
    let mut ar = Background::spawn(bin().args(["-D", &dir.arg(), "-S", "arch", "-v", "-d", &ci]));
    ar.wait_until("streaming to start", Duration::from_secs(20), |e| {
        streaming_start(e).is_some()
    });
    let su = pg.conninfo(pg.superuser(), None);
    let json = |ci: &str| {
        let out = run(
            bin().args(["status", "--json", "-d", ci]),
            Duration::from_secs(30),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        last_json(&out)
    };
    let mut v = json(&su);
    let began = Instant::now();
    while v["replication"].as_array().is_none_or(|a| a.is_empty())
        && began.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(200));
        v = json(&su);
    }
    assert_eq!(v["server"]["in_recovery"], Value::Bool(false), "{v}");
    let repl = v["replication"].as_array().unwrap();
    let me = repl
        .iter()
        .find(|r| r["application_name"] == "statusarch")
        .unwrap_or_else(|| panic!("archiver missing: {v}"));
    assert_eq!(me["state"], "streaming", "{v}");
    assert!(me["flush_lag_bytes"].is_i64(), "{v}");
    let slot = v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slot_name"] == "arch")
        .unwrap_or_else(|| panic!("slot missing: {v}"));
    assert_eq!(slot["active"], Value::Bool(true), "{v}");
    assert!(
        slot["retained_bytes"].as_i64().is_some_and(|b| b >= 0),
        "{v}"
    );

    let out = run(bin().args(["status", "-d", &su]), Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("server: primary, PostgreSQL "), "{text}");
    assert!(
        text.contains("statusarch") && text.contains("  arch "),
        "{text}"
    );
    assert!(!text.contains("cannot read these columns"), "{text}");

    // A role without pg_read_all_stats sees only dashes: the output says why, and a member
    // of pg_monitor sees the columns.
    let plain = pg.conninfo(REPL_TRUST.name, None);
    let out = run(
        bin().args(["status", "-d", &plain]),
        Duration::from_secs(30),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "(role \"{0}\" cannot read these columns: it needs the privileges of \
             pg_read_all_stats, e.g. GRANT pg_monitor TO {0})",
            REPL_TRUST.name
        )),
        "{text}"
    );
    assert_eq!(
        json(&plain)["server"]["reads_all_stats"],
        Value::Bool(false)
    );
    pg.sql(&format!("GRANT pg_monitor TO {}", REPL_TRUST.name))
        .unwrap();
    let v = json(&plain);
    assert_eq!(v["server"]["reads_all_stats"], Value::Bool(true), "{v}");
    let me = v["replication"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["application_name"] == "statusarch"))
        .unwrap_or_else(|| panic!("archiver missing: {v}"));
    assert_eq!(me["state"], "streaming", "{v}");

    // A standby (pg_basebackup, or testenv's backup copy where there is none): its
    // recovery state.
    let sb = pg.make_standby("sb").unwrap();
    let sb_ci = sb.conninfo(sb.superuser(), None);
    let v = json(&sb_ci);
    assert_eq!(v["server"]["in_recovery"], Value::Bool(true), "{v}");
    assert!(v["server"]["replay_lsn"].is_string(), "{v}");
    let out = run(
        bin().args(["status", "-d", &sb_ci]),
        Duration::from_secs(30),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("server: standby (in recovery)"), "{text}");
    drop(ar);
}

/// On a terminal (`script` gives it a pseudo-terminal), `-v` rewrites one progress line.
#[test]
fn verbose_progress_rewrites_one_line_on_a_terminal() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        testenv::skip("no script(1) to give the archiver a terminal");
        return;
    }
    let pg = cluster(&[]);
    let dir = TempDir::new("tty");
    let inner = format!(
        "timeout -s INT 4 {} -D {} -v -d \"{}\"",
        env!("CARGO_BIN_EXE_pgwal-recv"),
        dir.arg(),
        conninfo(&pg)
    );
    let out = run(
        std::process::Command::new("script").args(["-qec", &inner, "/dev/null"]),
        Duration::from_secs(30),
    );
    let tty = String::from_utf8_lossy(&out.stdout);
    let rewrites = tty.matches("\r\x1b[Kpgwal-recv: ").count();
    assert!(rewrites >= 2, "{tty:?}");
    assert!(tty.contains(" MB/s, lag "), "{tty:?}");
}
