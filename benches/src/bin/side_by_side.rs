//! Runs pgwal-recv and pg_receivewal against the same testenv server, alternating, and
//! prints a markdown table of medians and ratios:
//! - catch-up: archive ≥ 1 GB held by a slot, from the slot's start to `--endpos`, with
//!   `--no-sync` and with the default fsync (wall time, CPU time, peak RSS);
//! - synchronous standby: pgbench TPS on the primary with each tool as the `--synchronous`
//!   standby;
//! - the ceiling: `pgwal-recv measure` on the same WAL (streams from the slot to the end
//!   position and writes nothing), in the `--no-sync` rounds, on PostgreSQL 15+ (it needs
//!   READ_REPLICATION_SLOT to start at the slot).
//!
//! The table starts with the date and the machine (kernel, CPU, cores, memory).
//!
//! Both tools run as the same unprivileged user under `/usr/bin/time`, into directories on the
//! same filesystem. Use `benches/side_by_side.sh`, which builds the release binaries first.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pgwire_repl_benches::timing::{
    machine, median, num, parse_args, read_stats, row, time_into, Run,
};
use testenv::{Cluster, Options};

struct Args {
    pgwal_recv: PathBuf,
    rounds: usize,
    wal_mb: u64,
    pgbench_secs: u64,
    /// `catch-up` or `sync` to run one part only.
    only: Option<String>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        pgwal_recv: PathBuf::new(),
        rounds: 3,
        wal_mb: 1100,
        pgbench_secs: 15,
        only: None,
    };
    a.pgwal_recv = parse_args("benches/side_by_side.sh", &mut |k, v| {
        match k {
            "--rounds" => a.rounds = num(k, v)? as usize,
            "--wal-mb" => a.wal_mb = num(k, v)?,
            "--pgbench-secs" => a.pgbench_secs = num(k, v)?,
            "--only" if v == "catch-up" || v == "sync" => a.only = Some(v.to_owned()),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(a)
}

#[derive(Clone, Copy, PartialEq)]
enum Tool {
    Ours,
    Theirs,
    /// `pgwal-recv measure`: the same stream, nothing written.
    Measure,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Ours => "pgwal-recv",
            Tool::Theirs => "pg_receivewal",
            Tool::Measure => "pgwal-recv measure",
        }
    }
}

fn program(pg: &Cluster, tool: Tool, a: &Args) -> PathBuf {
    match tool {
        Tool::Ours | Tool::Measure => a.pgwal_recv.clone(),
        Tool::Theirs => pg.bin().tool("pg_receivewal").expect("pg_receivewal"),
    }
}

/// The tool under `/usr/bin/time`, as the cluster's OS user.
fn timed(pg: &Cluster, tool: Tool, a: &Args, stats: &Path) -> Command {
    let mut c = pg.os_user().command(Path::new("/usr/bin/time"));
    time_into(&mut c, stats);
    c.arg(program(pg, tool, a));
    c
}

fn catch_up(pg: &Cluster, a: &Args, sync: bool) -> Vec<(Tool, Run)> {
    // One slot per run, all made before the WAL is written: every run starts at the same
    // position and reads the same bytes.
    let with_measure = !sync && pg.version() >= 15;
    let mut order = Vec::new();
    for r in 0..a.rounds {
        let mut round = vec![Tool::Ours, Tool::Theirs];
        if with_measure {
            round.push(Tool::Measure);
        }
        if r % 2 == 1 {
            round.reverse();
        }
        order.extend(round);
    }
    for i in 0..order.len() {
        pg.create_physical_slot(&format!("bench_{i}")).unwrap();
    }
    pg.create_physical_slot("bench_warm").unwrap();
    eprintln!("generating {} MB of WAL...", a.wal_mb);
    pg.generate_wal(a.wal_mb << 20).unwrap();
    pg.switch_wal().unwrap();
    let end = pg.sql("SELECT pg_current_wal_flush_lsn()").unwrap();
    let conninfo = pg.conninfo(testenv::roles::REPL_TRUST.name, None);
    // The WAL in the page cache for every run alike.
    for f in std::fs::read_dir(pg.pg_wal_dir()).unwrap() {
        let _ = std::fs::read(f.unwrap().path());
    }
    // An untimed first pass: whichever run reads the new WAL first is several times slower
    // (measured: ~11 s against ~2 s for the same 1.1 GB), and it must not be a timed one.
    settle();
    let warm = pg.scratch_dir("archive_warm").unwrap();
    let status = pg
        .os_user()
        .command(&program(pg, Tool::Theirs, a))
        .args([
            "-D",
            &warm.display().to_string(),
            "-S",
            "bench_warm",
            "-n",
            "--no-sync",
        ])
        .args(["-E", &end, "-d", &conninfo])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "warm-up run failed");
    std::fs::remove_dir_all(&warm).unwrap();
    pg.sql("SELECT pg_drop_replication_slot('bench_warm')")
        .unwrap();
    let mut out = Vec::new();
    for (i, tool) in order.iter().enumerate() {
        // Nothing dirty left by the WAL load or the previous run: otherwise the kernel
        // throttles whichever writer comes next, and the first run looks 5× slower.
        settle();
        let dir = pg.scratch_dir(&format!("archive_{i}")).unwrap();
        let stats = pg.scratch_dir("stats").unwrap().join(format!("run_{i}"));
        let mut cmd = timed(pg, *tool, a, &stats);
        if *tool == Tool::Measure {
            cmd.args(["measure", "-S", &format!("bench_{i}")]);
        } else {
            cmd.args([
                "-D",
                &dir.display().to_string(),
                "-S",
                &format!("bench_{i}"),
                "-n",
            ]);
            if !sync {
                cmd.arg("--no-sync");
            }
        }
        cmd.args(["-E", &end, "-d", &conninfo]);
        let status = cmd.stdout(Stdio::null()).status().unwrap();
        assert!(status.success(), "{} failed", tool.name());
        let run = read_stats(&stats);
        eprintln!(
            "  {:<14} {:>7.2} s wall {:>6.2} s cpu {:>7.1} MiB",
            tool.name(),
            run.wall,
            run.cpu,
            run.rss_kib / 1024.0
        );
        out.push((*tool, run));
        // Deleted at once: kept, the archives fill the page cache and every later run pays
        // for reclaiming it (seen: 3× the system time).
        std::fs::remove_dir_all(&dir).unwrap();
        pg.sql(&format!("SELECT pg_drop_replication_slot('bench_{i}')"))
            .unwrap();
    }
    out
}

/// Writes back all dirty pages, so a run does not pay for the one before it.
fn settle() {
    let _ = Command::new("sync").status();
    std::thread::sleep(Duration::from_secs(2));
}

fn pgbench_tps(pg: &Cluster, a: &Args, tool: Tool) -> (f64, Run) {
    settle();
    let dir = pg.scratch_dir("sync_archive").unwrap();
    let stats = pg.scratch_dir("stats").unwrap().join("sync");
    let conninfo = format!(
        "{} application_name=bench_sync",
        pg.conninfo(testenv::roles::REPL_TRUST.name, None)
    );
    let mut child = timed(pg, tool, a, &stats)
        .args([
            "-D",
            &dir.display().to_string(),
            "--synchronous",
            "-d",
            &conninfo,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    testenv::wait_for(
        "the tool to be the sync standby",
        Duration::from_secs(30),
        || {
            pg.sql(
                "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'bench_sync'",
            )
            .map(|s| s == "sync")
            .unwrap_or(false)
        },
    )
    .unwrap();
    let out = pg
        .tool_command("pgbench")
        .unwrap()
        .args([
            "-n",
            "-N",
            "-c",
            "4",
            "-j",
            "2",
            "-T",
            &a.pgbench_secs.to_string(),
        ])
        .args([
            "-h",
            &pg.socket_dir().display().to_string(),
            "-p",
            &pg.port().to_string(),
        ])
        .args(["-U", pg.superuser(), "postgres"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let tps = text
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no tps in pgbench output: {text}"));
    // SIGINT reaches the tool through /usr/bin/time, which waits for it.
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = Command::new("pkill")
        .args(["-INT", "-f", "application_name=bench_sync"])
        .status();
    let began = Instant::now();
    while child.try_wait().unwrap().is_none() && began.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let run = read_stats(&stats);
    std::fs::remove_dir_all(&dir).unwrap();
    (tps, run)
}

fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("side_by_side: {e}");
            std::process::exit(2);
        }
    };
    let pg = Cluster::start(Options {
        wal_segsize_mb: 16,
        fsync: true,
        // One slot per timed run and one for the warm-up.
        extra_conf: vec![format!("max_replication_slots = {}", 3 * a.rounds + 4)],
        ..Options::default()
    })
    .expect("a PostgreSQL server");
    let version = pg.version();
    let mut table = vec![
        machine(),
        String::new(),
        format!(
            "PostgreSQL {version}; {} rounds, alternating; medians; ratio = pgwal-recv / pg_receivewal",
            a.rounds
        ),
        String::new(),
        "| measure | pgwal-recv | pg_receivewal | ratio |".into(),
        "|---|---|---|---|".into(),
    ];
    let catch_up_modes: &[bool] = if a.only.as_deref() == Some("sync") {
        &[]
    } else {
        &[false, true]
    };
    for &sync in catch_up_modes {
        let what = if sync { "default fsync" } else { "--no-sync" };
        eprintln!("catch-up, {what}:");
        let runs = catch_up(&pg, &a, sync);
        let pick = |t: Tool, f: fn(&Run) -> f64| {
            median(
                runs.iter()
                    .filter(|(x, _)| *x == t)
                    .map(|(_, r)| f(r))
                    .collect(),
            )
        };
        let w = (pick(Tool::Ours, |r| r.wall), pick(Tool::Theirs, |r| r.wall));
        let c = (pick(Tool::Ours, |r| r.cpu), pick(Tool::Theirs, |r| r.cpu));
        let m = (
            pick(Tool::Ours, |r| r.rss_kib),
            pick(Tool::Theirs, |r| r.rss_kib),
        );
        let mb = a.wal_mb;
        table.push(row(
            &format!("catch-up {mb} MB, {what}: wall"),
            w.0,
            w.1,
            "s",
            2,
        ));
        table.push(row(
            &format!("catch-up {mb} MB, {what}: CPU (user+sys)"),
            c.0,
            c.1,
            "s",
            2,
        ));
        table.push(row(
            &format!("catch-up {mb} MB, {what}: peak RSS"),
            m.0 / 1024.0,
            m.1 / 1024.0,
            "MiB",
            1,
        ));
        if runs.iter().any(|(t, _)| *t == Tool::Measure) {
            let mw = pick(Tool::Measure, |r| r.wall);
            let rate = |secs: f64| mb as f64 * 1.048_576 / secs;
            table.push(format!(
                "| catch-up {mb} MB: `pgwal-recv measure` (no writes), wall | {mw:.2} s | — | ceiling |"
            ));
            table.push(format!(
                "| archiver --no-sync rate ÷ measure rate | {:.0} MB/s | {:.0} MB/s (measure) | {:.2}× |",
                rate(w.0),
                rate(mw),
                mw / w.0
            ));
        }
    }
    if a.only.as_deref() == Some("catch-up") {
        println!("{}", table.join("\n"));
        return;
    }
    eprintln!("synchronous standby, pgbench:");
    let init = pg
        .tool_command("pgbench")
        .unwrap()
        .args([
            "-i",
            "-q",
            "-s",
            "10",
            "-h",
            &pg.socket_dir().display().to_string(),
        ])
        .args([
            "-p",
            &pg.port().to_string(),
            "-U",
            pg.superuser(),
            "postgres",
        ])
        .output()
        .unwrap();
    assert!(init.status.success(), "pgbench -i failed");
    // Only now: with it set, every commit waits for the standby, pgbench -i's too.
    pg.sql("ALTER SYSTEM SET synchronous_standby_names = 'bench_sync'; SELECT pg_reload_conf()")
        .unwrap();
    let mut tps = (Vec::new(), Vec::new());
    let mut rss = (Vec::new(), Vec::new());
    // The tool's CPU per transaction: on a small machine it competes with the primary.
    let mut cpu = (Vec::new(), Vec::new());
    for r in 0..a.rounds {
        let order = if r % 2 == 0 {
            [Tool::Ours, Tool::Theirs]
        } else {
            [Tool::Theirs, Tool::Ours]
        };
        for tool in order {
            let (t, run) = pgbench_tps(&pg, &a, tool);
            let us_per_tx = run.cpu * 1e6 / (t * a.pgbench_secs as f64);
            eprintln!(
                "  {:<14} {t:>8.1} tps {:>6.2} s cpu {us_per_tx:>5.1} µs/tx",
                tool.name(),
                run.cpu
            );
            match tool {
                Tool::Ours => {
                    tps.0.push(t);
                    rss.0.push(run.rss_kib);
                    cpu.0.push(us_per_tx);
                }
                Tool::Theirs => {
                    tps.1.push(t);
                    rss.1.push(run.rss_kib);
                    cpu.1.push(us_per_tx);
                }
                Tool::Measure => {}
            }
        }
    }
    table.push(row(
        "pgbench TPS with the tool as --synchronous standby",
        median(tps.0),
        median(tps.1),
        "tps",
        1,
    ));
    table.push(row(
        "  the tool's CPU per transaction during that",
        median(cpu.0),
        median(cpu.1),
        "µs",
        1,
    ));
    table.push(row(
        "  peak RSS during that",
        median(rss.0) / 1024.0,
        median(rss.1) / 1024.0,
        "MiB",
        1,
    ));
    println!("{}", table.join("\n"));
}
