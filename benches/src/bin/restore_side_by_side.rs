//! `pgwal-recv restore` beside `cp` and `zstd -d`, and whole recoveries through each, on the
//! same archive; prints markdown tables of medians and ratios:
//! - one segment at a time, as PostgreSQL calls restore_command, process start included:
//!   `restore` of every segment of an uncompressed archive against `cp` of the same files,
//!   and of a `-Z zstd` archive against `zstd -d` of the same files (rounds alternate);
//! - a point-in-time recovery of the whole archive (`--wal-mb` MB of WAL after a base
//!   backup) by a real server, whose restore_command is `cp`, `restore`, `restore
//!   --prefetch N` (uncompressed), then `restore` and `restore --prefetch N` (zstd).
//!
//! The server runs restore_command as testenv's OS user; the archives are written as that
//! user so that it can read them. Use `benches/restore_side_by_side.sh`, which builds the
//! release binaries first. Not a test: run it by hand on a quiet machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use pgwire_repl_benches::archiving::{archive, server};
use pgwire_repl_benches::timing::{median, num, or_exit, parse_args, read_stats, row, time_into};
use testenv::{CloneMethod, Cluster, RecoveryMode};

struct Args {
    pgwal_recv: PathBuf,
    rounds: usize,
    wal_mb: u64,
    prefetch: u32,
    /// `--only segments`: skip the recoveries.
    segments_only: bool,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        pgwal_recv: PathBuf::new(),
        rounds: 3,
        wal_mb: 1100,
        prefetch: 8,
        segments_only: false,
    };
    a.pgwal_recv = parse_args("benches/restore_side_by_side.sh", &mut |k, v| {
        match k {
            "--rounds" => a.rounds = num(k, v)? as usize,
            "--wal-mb" => a.wal_mb = num(k, v)?,
            "--prefetch" => a.prefetch = num(k, v)? as u32,
            "--only" if v == "segments" => a.segments_only = true,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(a)
}

/// Complete segments' names in `dir` (suffixes stripped), sorted.
fn segment_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.len() >= 24 && !n.ends_with(".partial") && !n.contains(".history"))
        .map(|n| n[..24].to_owned())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Seconds to run `make(name, dest)` once per segment, one process each, DEST removed
/// before each (as PostgreSQL does).
fn per_segment(names: &[String], dest: &Path, make: &dyn Fn(&str, &Path) -> Command) -> f64 {
    let began = Instant::now();
    for n in names {
        let _ = std::fs::remove_file(dest);
        let status = make(n, dest)
            .stdout(Stdio::null())
            .status()
            .expect("run a restore");
        assert!(status.success(), "restoring {n} failed");
    }
    began.elapsed().as_secs_f64()
}

/// Seconds for a copy of `backup` to recover to the end with `command`.
fn recovery(backup: &Cluster, command: &str) -> f64 {
    let mut copy = backup.copy_stopped().unwrap();
    let began = Instant::now();
    copy.start_recovery(RecoveryMode::Archive, command, &[])
        .unwrap_or_else(|e| panic!("recovery with {command}: {e}"));
    copy.wait_recovered().unwrap();
    began.elapsed().as_secs_f64()
}

fn main() {
    let a = or_exit("restore_side_by_side", args());
    let pg = server();
    for slot in ["plain", "zstd"] {
        pg.create_physical_slot(slot).unwrap();
    }
    let (backup, _) = pg.base_backup(CloneMethod::Auto).unwrap();
    eprintln!("generating {} MB of WAL...", a.wal_mb);
    for _ in 0..4 {
        pg.generate_wal((a.wal_mb << 20) / 4).unwrap();
        pg.sql("CHECKPOINT").unwrap();
    }
    pg.switch_wal().unwrap();
    let end = pg.sql("SELECT pg_current_wal_flush_lsn()").unwrap();
    let (plain, zst) = (
        pg.scratch_dir("plain").unwrap(),
        pg.scratch_dir("zstd").unwrap(),
    );
    archive(
        pg.os_user().command(&a.pgwal_recv),
        &pg,
        &plain,
        "plain",
        end.trim(),
        &[],
    );
    archive(
        pg.os_user().command(&a.pgwal_recv),
        &pg,
        &zst,
        "zstd",
        end.trim(),
        &["-Z", "zstd"],
    );
    let names = segment_names(&plain);
    let gb = names.len() as f64 * 16.0 * 1048576.0 / 1e9;
    let out = std::env::temp_dir().join(format!("restore-bench-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let dest = out.join("RECOVERYXLOG");

    let ours = |dir: &Path| {
        let (exe, dir) = (a.pgwal_recv.clone(), dir.to_path_buf());
        move |n: &str, d: &Path| {
            let mut c = Command::new(&exe);
            c.arg("restore").arg("-D").arg(&dir).arg(n).arg(d);
            c
        }
    };
    let ours_plain = ours(&plain);
    let ours_zst = ours(&zst);
    let cp = |n: &str, d: &Path| {
        let mut c = Command::new("cp");
        c.arg(plain.join(n)).arg(d);
        c
    };
    let unzstd = |n: &str, d: &Path| {
        let mut c = Command::new("zstd");
        c.args(["-d", "-q", "-f"])
            .arg(zst.join(format!("{n}.zst")))
            .arg("-o")
            .arg(d);
        c
    };
    // Warm the page cache and check that each succeeds.
    for f in [
        &ours_plain as &dyn Fn(&str, &Path) -> Command,
        &cp,
        &ours_zst,
        &unzstd,
    ] {
        per_segment(&names, &dest, f);
    }
    let (mut r_plain, mut c_plain, mut r_zst, mut d_zst) = (vec![], vec![], vec![], vec![]);
    for round in 0..a.rounds {
        eprintln!("per-segment round {}", round + 1);
        r_plain.push(per_segment(&names, &dest, &ours_plain));
        c_plain.push(per_segment(&names, &dest, &cp));
        r_zst.push(per_segment(&names, &dest, &ours_zst));
        d_zst.push(per_segment(&names, &dest, &unzstd));
    }
    // Peak memory of one restore of each kind.
    let stats = out.join("time");
    let rss = |dir: &Path| {
        let mut c = Command::new("/usr/bin/time");
        time_into(&mut c, &stats);
        let _ = std::fs::remove_file(&dest);
        let st = c
            .arg(&a.pgwal_recv)
            .arg("restore")
            .arg("-D")
            .arg(dir)
            .arg(&names[names.len() / 2])
            .arg(&dest)
            .status()
            .unwrap();
        assert!(st.success());
        read_stats(&stats).rss_kib / 1024.0
    };
    let (rss_plain, rss_zst) = (rss(&plain), rss(&zst));

    let exe = a.pgwal_recv.display().to_string();
    let commands = [
        ("`cp`", format!("cp {}/%f %p", plain.display())),
        (
            "`restore`",
            format!("{exe} restore -D {} %f %p", plain.display()),
        ),
        (
            "`restore --prefetch`",
            format!(
                "{exe} restore -D {} --prefetch {} %f %p",
                plain.display(),
                a.prefetch
            ),
        ),
        (
            "`restore`, zstd",
            format!("{exe} restore -D {} %f %p", zst.display()),
        ),
        (
            "`restore --prefetch`, zstd",
            format!(
                "{exe} restore -D {} --prefetch {} %f %p",
                zst.display(),
                a.prefetch
            ),
        ),
    ];
    let mut recoveries: Vec<Vec<f64>> = vec![vec![]; commands.len()];
    for round in 0..a.rounds * usize::from(!a.segments_only) {
        eprintln!("recovery round {}", round + 1);
        for (i, (_, command)) in commands.iter().enumerate() {
            recoveries[i].push(recovery(&backup, command));
        }
    }

    let n = names.len();
    let per = |v: &[f64]| median(v.to_vec()) / n as f64 * 1000.0;
    let mut table = vec![
        format!(
            "PostgreSQL {}; {n} segments of 16 MB ({gb:.2} GB); {} rounds, alternating; medians",
            pg.bin().full_version(),
            a.rounds
        ),
        String::new(),
        "| one segment per process | restore | other | ratio |".into(),
        "|---|---|---|---|".into(),
        row(
            "uncompressed, against `cp`",
            per(&r_plain),
            per(&c_plain),
            "ms",
            2,
        ),
        row("zstd, against `zstd -d`", per(&r_zst), per(&d_zst), "ms", 2),
        format!("| peak RSS of one restore | {rss_plain:.1} MiB (zstd: {rss_zst:.1} MiB) | | |"),
        String::new(),
        format!("| recovery of {gb:.2} GB by PostgreSQL, restore_command | wall | against `cp` |"),
        "|---|---|---|".into(),
    ];
    for ((label, _), runs) in commands
        .iter()
        .zip(&recoveries)
        .filter(|_| !a.segments_only)
    {
        let base = median(recoveries[0].clone());
        let m = median(runs.clone());
        table.push(format!("| {label} | {m:.2} s | {:.2}× |", m / base));
    }
    println!("{}", table.join("\n"));
    let _ = std::fs::remove_dir_all(&out);
}
