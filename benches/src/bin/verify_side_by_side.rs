//! `pgwal-recv verify` beside PostgreSQL's pg_waldump and `zstd -d`, on the same archive,
//! alternating, page cache warm; prints a markdown table of medians and ratios:
//! - an uncompressed archive of `--wal-mb` MB (16 MB segments, full-page images in it):
//!   `verify` against `pg_waldump --quiet` over the same segments (pg_waldump of the server's
//!   major: Debian's 15, or the PyPI builds testenv fetches for 16 and 18);
//! - the same WAL archived with `-Z zstd`: `verify` against `zstd -d` of the same files to
//!   /dev/null (decompression alone, the floor for anything that reads a zstd archive).
//!
//! Both run as this process's user under `/usr/bin/time` (wall, CPU, peak RSS). Use
//! `benches/verify_side_by_side.sh`, which builds the release binaries first.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pgwire_repl_benches::archiving::{archive, server};
use pgwire_repl_benches::timing::{
    median, num, or_exit, parse_args, read_stats, row, time_into, Run,
};

struct Args {
    pgwal_recv: PathBuf,
    rounds: usize,
    wal_mb: u64,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        pgwal_recv: PathBuf::new(),
        rounds: 5,
        wal_mb: 1100,
    };
    a.pgwal_recv = parse_args("benches/verify_side_by_side.sh", &mut |k, v| {
        match k {
            "--rounds" => a.rounds = num(k, v)? as usize,
            "--wal-mb" => a.wal_mb = num(k, v)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(a)
}

/// Runs `program args` under `/usr/bin/time`, stdout to /dev/null; wants success.
fn timed(program: &Path, args: &[String]) -> Run {
    let stats = std::env::temp_dir().join(format!("verify-bench-time-{}", std::process::id()));
    let mut cmd = Command::new("/usr/bin/time");
    time_into(&mut cmd, &stats);
    let status = cmd
        .arg(program)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("run /usr/bin/time");
    assert!(status.success(), "{} {args:?} failed", program.display());
    read_stats(&stats)
}

/// Complete segment files of `dir`, sorted.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.len() >= 24 && !n.ends_with(".partial"))
        })
        .collect();
    v.sort();
    v
}

fn main() {
    let a = or_exit("verify_side_by_side", args());
    let pg = server();
    let waldump = pg
        .bin()
        .tool("pg_waldump")
        .expect("a pg_waldump of the server's major");
    let zstd = PathBuf::from("/usr/bin/zstd");
    for slot in ["plain", "zstd"] {
        pg.create_physical_slot(slot).unwrap();
    }
    eprintln!("generating {} MB of WAL...", a.wal_mb);
    for _ in 0..4 {
        pg.generate_wal((a.wal_mb << 20) / 4).unwrap();
        pg.sql("CHECKPOINT").unwrap();
    }
    pg.switch_wal().unwrap();
    let end = pg.sql("SELECT pg_current_wal_flush_lsn()").unwrap();
    let end = end.trim();
    let work = std::env::temp_dir().join(format!("verify-bench-{}", std::process::id()));
    let (plain, zst) = (work.join("plain"), work.join("zstd"));
    for (dir, slot, extra) in [
        (&plain, "plain", &[][..]),
        (&zst, "zstd", &["-Z", "zstd"][..]),
    ] {
        std::fs::create_dir_all(dir).unwrap();
        archive(Command::new(&a.pgwal_recv), &pg, dir, slot, end, extra);
    }
    let segs = segments(&plain);
    let name = |p: &PathBuf| p.file_name().unwrap().to_string_lossy().into_owned();
    let (first, last) = (name(&segs[0]), name(&segs[segs.len() - 1]));
    let gb = segs.len() as f64 * 16.0 * 1048576.0 / 1e9;
    let ours_plain = || {
        vec![
            "verify".into(),
            "-D".into(),
            plain.display().to_string(),
            "--start".into(),
            first.clone(),
            "--end".into(),
            last.clone(),
        ]
    };
    let theirs_plain = || {
        vec![
            "--quiet".into(),
            "-p".into(),
            plain.display().to_string(),
            first.clone(),
            last.clone(),
        ]
    };
    let zst_files: Vec<String> = segments(&zst)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let ours_zst = || {
        vec![
            "verify".into(),
            "-D".into(),
            zst.display().to_string(),
            "--start".into(),
            first.clone(),
            "--end".into(),
            last.clone(),
        ]
    };
    let mut unzst = vec!["-d".to_owned(), "-q".to_owned(), "-c".to_owned()];
    unzst.extend(zst_files);
    // Warm the page cache and check that every tool succeeds.
    timed(&a.pgwal_recv, &ours_plain());
    timed(&waldump, &theirs_plain());
    timed(&a.pgwal_recv, &ours_zst());
    timed(&zstd, &unzst);
    let (mut v_plain, mut w_plain, mut v_zst, mut d_zst) = (vec![], vec![], vec![], vec![]);
    for round in 0..a.rounds {
        eprintln!("round {}", round + 1);
        v_plain.push(timed(&a.pgwal_recv, &ours_plain()));
        w_plain.push(timed(&waldump, &theirs_plain()));
        v_zst.push(timed(&a.pgwal_recv, &ours_zst()));
        d_zst.push(timed(&zstd, &unzst));
    }
    let med = |runs: &[Run], f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
    let wall = |r: &Run| r.wall;
    let cpu = |r: &Run| r.cpu;
    let rss = |r: &Run| r.rss_kib / 1024.0;
    let table = [
        format!(
            "PostgreSQL {}; {} segments ({gb:.2} GB) {first} to {last}; {} rounds, alternating; medians",
            pg.bin().full_version(),
            segs.len(),
            a.rounds
        ),
        String::new(),
        "| measure | verify | other | ratio |".into(),
        "|---|---|---|---|".into(),
        row(
            "uncompressed, against `pg_waldump --quiet`: wall",
            med(&v_plain, wall),
            med(&w_plain, wall),
            "s",
            2,
        ),
        format!(
            "| same: throughput | {:.2} GB/s | {:.2} GB/s | {:.2}× |",
            gb / med(&v_plain, wall),
            gb / med(&w_plain, wall),
            med(&w_plain, wall) / med(&v_plain, wall)
        ),
        row("same: CPU", med(&v_plain, cpu), med(&w_plain, cpu), "s", 2),
        row("same: peak RSS", med(&v_plain, rss), med(&w_plain, rss), "MiB", 1),
        row(
            "zstd, against `zstd -d` to /dev/null: wall",
            med(&v_zst, wall),
            med(&d_zst, wall),
            "s",
            2,
        ),
        row("same: CPU", med(&v_zst, cpu), med(&d_zst, cpu), "s", 2),
        row("same: peak RSS", med(&v_zst, rss), med(&d_zst, rss), "MiB", 1),
    ];
    println!("{}", table.join("\n"));
    let _ = std::fs::remove_dir_all(&work);
}
