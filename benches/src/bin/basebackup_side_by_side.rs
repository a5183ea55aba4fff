//! `pgwal-recv basebackup` beside `pg_basebackup` on the same server: plain and tar format,
//! `-X stream`, `-c fast`, alternating in each round; prints a markdown table of medians of
//! wall time, CPU time (user + system, WAL receiver included) and peak RSS, with ratios.
//!
//! The cluster holds `--size-mb` MB of table data (default 1100); both programs run as
//! testenv's OS user with `--no-sync` (the disk's fsync time is the same for both and
//! this shared machine's disk is noisy). Use `benches/basebackup_side_by_side.sh`, which
//! builds the release binary first. Not a test: run it by hand on a quiet machine.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use pgwire_repl_benches::archiving::server;
use pgwire_repl_benches::timing::{
    median, num, or_exit, parse_args, read_stats, row, time_into, Run,
};
use testenv::Cluster;

struct Args {
    pgwal_recv: PathBuf,
    rounds: usize,
    size_mb: u64,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        pgwal_recv: PathBuf::new(),
        rounds: 3,
        size_mb: 1100,
    };
    a.pgwal_recv = parse_args("benches/basebackup_side_by_side.sh", &mut |k, v| {
        match k {
            "--rounds" => a.rounds = num(k, v)? as usize,
            "--size-mb" => a.size_mb = num(k, v)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(a)
}

/// One backup into `dir` (removed first and after) by `program` (`basebackup` is put in
/// front of the options for ours), timed.
fn backup(pg: &Cluster, program: &Path, ours: bool, format: &str, dir: &Path, stats: &Path) -> Run {
    let _ = std::fs::remove_dir_all(dir);
    let mut cmd = pg.os_user().command(Path::new("/usr/bin/time"));
    time_into(&mut cmd, stats);
    cmd.arg(program);
    if ours {
        cmd.arg("basebackup");
    }
    let status = cmd
        .arg("-D")
        .arg(dir)
        .args([
            "-F",
            format,
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
            "-d",
        ])
        .arg(pg.socket_conninfo(pg.superuser()))
        .current_dir(pg.temp_dir())
        .stdout(Stdio::null())
        .status()
        .expect("run a base backup");
    assert!(status.success(), "{} -F {format} failed", program.display());
    let _ = std::fs::remove_dir_all(dir);
    read_stats(stats)
}

fn main() {
    let a = or_exit("basebackup_side_by_side", args());
    let pg = server();
    let theirs = pg.bin().tool("pg_basebackup").expect("pg_basebackup");
    eprintln!("loading {} MB of table data...", a.size_mb);
    // Rows of about 1 kB, in 100 MB statements.
    let rows_per_mb = 1000;
    for _ in 0..a.size_mb.div_ceil(100) {
        pg.sql(&format!(
            "CREATE TABLE IF NOT EXISTS big (id bigint, pad text);
             INSERT INTO big SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, {}) g",
            100 * rows_per_mb
        ))
        .unwrap();
    }
    pg.sql("CHECKPOINT").unwrap();
    let size = pg
        .sql("SELECT pg_database_size(current_database()) / 1048576")
        .unwrap();
    let stats = pg.temp_dir().join("time");
    let dir = pg.temp_dir().join("bb");
    // Warm the page cache, and check that both work.
    for format in ["p", "t"] {
        backup(&pg, &a.pgwal_recv, true, format, &dir, &stats);
        backup(&pg, &theirs, false, format, &dir, &stats);
    }
    let mut results: Vec<(&str, Vec<Run>, Vec<Run>)> =
        vec![("plain", vec![], vec![]), ("tar", vec![], vec![])];
    for round in 0..a.rounds {
        eprintln!("round {}", round + 1);
        for (i, format) in ["p", "t"].into_iter().enumerate() {
            results[i]
                .1
                .push(backup(&pg, &a.pgwal_recv, true, format, &dir, &stats));
            results[i]
                .2
                .push(backup(&pg, &theirs, false, format, &dir, &stats));
        }
    }
    let med = |v: &[Run], f: fn(&Run) -> f64| median(v.iter().map(f).collect());
    let mut table = vec![
        format!(
            "PostgreSQL {}; database of {} MB; `-X stream -c fast --no-sync`; {} rounds, \
             alternating; medians",
            pg.bin().full_version(),
            size.trim(),
            a.rounds
        ),
        String::new(),
        "| | pgwal-recv basebackup | pg_basebackup | ratio |".into(),
        "|---|---|---|---|".into(),
    ];
    for (label, ours, theirs) in &results {
        table.push(row(
            &format!("{label}: wall"),
            med(ours, |r| r.wall),
            med(theirs, |r| r.wall),
            "s",
            2,
        ));
        table.push(row(
            &format!("{label}: CPU"),
            med(ours, |r| r.cpu),
            med(theirs, |r| r.cpu),
            "s",
            2,
        ));
        table.push(row(
            &format!("{label}: peak RSS"),
            med(ours, |r| r.rss_kib) / 1024.0,
            med(theirs, |r| r.rss_kib) / 1024.0,
            "MiB",
            1,
        ));
    }
    println!("{}", table.join("\n"));
}
