//! Proven by PostgreSQL itself: servers recover from archives that pgwal-recv wrote, through
//! `pgwal-recv restore` as their restore_command. A base backup is taken without WAL (`-X
//! none`), the archiver writes the WAL (every compression), rows are committed in batches
//! whose LSNs, xids and times are noted, and copies of the backup recover to each kind of
//! target, to the end after the primary crashed (`--partial`, the archivers synchronous),
//! across a promotion, not past a damaged segment, and as a standby fed by the archive only.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use testenv::{CloneMethod, Cluster, RecoveryMode};

use crate::common::*;

/// rows per batch.
const ROWS: u32 = 100;

/// pgwal-recv run as the server's OS user, so that the server (running restore_command as
/// that user) can read what it writes.
fn os_bin(pg: &Cluster) -> Command {
    let mut c = pg
        .os_user()
        .command(Path::new(env!("CARGO_BIN_EXE_pgwal-recv")));
    c.stdin(std::process::Stdio::null());
    c
}

/// An archiver of `pg` into `dir` through slot `name` (created here), as application
/// `name`, with `extra` options; `-n`, so it ends when the server goes.
fn archiver(pg: &Cluster, dir: &Path, name: &str, extra: &[&str]) -> Background {
    pg.create_physical_slot(name).unwrap();
    Background::spawn(
        os_bin(pg)
            .args(["-D", &dir.display().to_string(), "-S", name, "-n"])
            .args(["-d", &format!("{} application_name={name}", conninfo(pg))])
            .args(extra),
    )
}

/// Waits until `names` all stream from `pg`.
fn wait_streaming(pg: &Cluster, names: &[&str]) {
    let list = names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(",");
    testenv::wait_for("the archivers to stream", Duration::from_secs(30), || {
        pg.sql(&format!(
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' \
             AND application_name IN ({list})"
        ))
        .is_ok_and(|n| n == names.len().to_string())
    })
    .unwrap();
}

/// Waits until each of `names` has flushed `pg`'s WAL up to its current position.
fn wait_flushed(pg: &Cluster, names: &[&str]) {
    let target = lsn(pg, "SELECT pg_current_wal_lsn()");
    for n in names {
        testenv::wait_for("the archiver to flush", Duration::from_secs(60), || {
            pg.sql(&format!(
                "SELECT flush_lsn >= '{target}' FROM pg_stat_replication \
                 WHERE application_name = '{n}'"
            ))
            .is_ok_and(|s| s == "t")
        })
        .unwrap();
    }
}

/// The restore_command for archive `dir`.
fn restore_command(dir: &Path, extra: &str) -> String {
    format!(
        "{} restore -D {} {extra} %f %p",
        env!("CARGO_BIN_EXE_pgwal-recv"),
        dir.display()
    )
}

/// A batch of rows committed in one transaction: what a recovery target can name.
#[derive(Debug, Clone)]
struct Batch {
    xid: String,
    /// The insert position after the commit.
    lsn: String,
    /// A time after the commit and before the next batch's.
    time: String,
}

/// Commits batch `b` (ROWS rows of `pitr`), then some WAL in other transactions (a
/// segment's worth: the next batch is in another segment).
fn commit_batch(pg: &Cluster, b: u32) -> Batch {
    let batch = commit_last_batch(pg, b);
    pg.generate_wal(1200 << 10).unwrap();
    batch
}

/// Commits batch `b` and nothing after it.
fn commit_last_batch(pg: &Cluster, b: u32) -> Batch {
    let xid = pg
        .sql(&format!(
            "BEGIN; INSERT INTO pitr SELECT {b}, g FROM generate_series(1, {ROWS}) g; \
             SELECT txid_current(); COMMIT;"
        ))
        .unwrap();
    let lsn = pg.sql("SELECT pg_current_wal_lsn()").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let time = pg.sql("SELECT clock_timestamp()").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    Batch { xid, lsn, time }
}

/// A copy of `backup` recovered with `settings`; `(rows, highest batch)` once it is out of
/// recovery.
fn recover(backup: &Cluster, command: &str, settings: &[String]) -> (Cluster, String) {
    let mut copy = backup.copy_stopped().unwrap();
    copy.start_recovery(RecoveryMode::Archive, command, settings)
        .unwrap_or_else(|e| panic!("recovery with {settings:?}: {e}"));
    copy.wait_recovered().unwrap();
    let got = copy
        .sql("SELECT count(*) || ' rows, batches to ' || coalesce(max(batch), 0) FROM pitr")
        .unwrap();
    (copy, got)
}

fn rows(batches: u32) -> String {
    format!("{} rows, batches to {batches}", batches * ROWS)
}

/// The segment a backup's WAL starts in, from its backup_label.
fn backup_start_segment(backup: &Cluster) -> String {
    let label = std::fs::read_to_string(backup.data_dir().join("backup_label")).unwrap();
    let line = label.lines().next().unwrap();
    let file = line.split("(file ").nth(1).unwrap();
    file.trim_end_matches(')').to_owned()
}

const METHODS: [&str; 4] = ["none", "gzip", "lz4", "zstd"];

#[test]
fn targets_and_the_end_after_a_crash_from_every_compression() {
    let pg = primary();
    let names: Vec<String> = METHODS.iter().map(|z| format!("arch_{z}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let dirs: Vec<PathBuf> = METHODS
        .iter()
        .map(|z| pg.scratch_dir(&format!("archive-{z}")).unwrap())
        .collect();
    let mut archivers: Vec<Background> = METHODS
        .iter()
        .zip(&dirs)
        .zip(&names)
        .map(|((z, dir), name)| archiver(&pg, dir, name, &["-Z", z, "--synchronous"]))
        .collect();
    wait_streaming(&pg, &names);
    // Every commit waits until all four archivers have flushed it.
    pg.sql(&format!(
        "ALTER SYSTEM SET synchronous_standby_names = 'ANY 4 ({})'; SELECT pg_reload_conf();",
        names.join(", ")
    ))
    .unwrap();
    // Some WAL before the backup, for cleanup to remove.
    pg.generate_wal(2 << 20).unwrap();
    pg.switch_wal().unwrap();
    let (backup, method) = pg.base_backup(CloneMethod::Auto).unwrap();
    let mut batches: Vec<Batch> = (1..=5).map(|b| commit_batch(&pg, b)).collect();
    // The last batch is in the segment the archivers were writing when the primary
    // crashed: only in their .partial files.
    batches.push(commit_last_batch(&pg, 6));
    eprintln!(
        "PostgreSQL {}: base backup by {method:?}, batches {batches:#?}",
        pg.bin().full_version()
    );
    // The primary crashes: the last segment is a .partial in every archive.
    pg.kill().unwrap();
    for a in archivers.drain(..) {
        let (code, err) = a.wait(Duration::from_secs(30));
        assert!(code.is_some(), "{err}");
    }

    let promote = "recovery_target_action = 'promote'".to_owned();
    let targets = [
        (format!("recovery_target_lsn = '{}'", batches[1].lsn), 2),
        (format!("recovery_target_xid = '{}'", batches[2].xid), 3),
        (format!("recovery_target_time = '{}'", batches[3].time), 4),
        ("recovery_target = 'immediate'".to_owned(), 0),
    ];
    for ((target, want), (dir, z)) in targets.iter().zip(dirs.iter().zip(METHODS)) {
        let began = Instant::now();
        let (_copy, got) = recover(
            &backup,
            &restore_command(dir, ""),
            &[target.clone(), promote.clone()],
        );
        assert_eq!(got, rows(*want), "{target} from the -Z {z} archive");
        eprintln!("{target} (-Z {z}): {got}, in {:?}", began.elapsed());
    }
    for (dir, z) in dirs.iter().zip(METHODS) {
        let (copy, got) = recover(&backup, &restore_command(dir, "--partial"), &[]);
        assert_eq!(got, rows(6), "to the end with --partial, -Z {z}");
        assert!(copy.log().contains(".partial"), "{}", copy.log());
        // Without --partial the last transactions are not there.
        let (_copy, got) = recover(&backup, &restore_command(dir, ""), &[]);
        assert_eq!(
            got,
            rows(5),
            "-Z {z}: without --partial, the complete segments"
        );
        eprintln!(
            "to the end (-Z {z}): {} with --partial, {got} without",
            rows(6)
        );
    }

    // cleanup --keep-from the backup's label: what it removes, no recovery from this
    // backup needed.
    let dir = &dirs[3];
    let label = backup.data_dir().join("backup_label");
    let before = std::fs::read_dir(dir).unwrap().count();
    let out = run(
        os_bin(&pg)
            .args(["cleanup", "-D", &dir.display().to_string(), "--keep-from"])
            .arg(&label),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let after = std::fs::read_dir(dir).unwrap().count();
    assert!(after < before, "cleanup removed nothing: {}", stderr(&out));
    let (_copy, got) = recover(&backup, &restore_command(dir, "--partial"), &[]);
    assert_eq!(got, rows(6), "after cleanup --keep-from backup_label");
    eprintln!("after cleanup ({} files removed): {got}", before - after);

    // A damaged segment between the backup and the end: recovery stops with an error, and
    // the server does not promote.
    let dir = &dirs[0];
    let seg = seg1mb();
    let start = backup_start_segment(&backup);
    let (tli, segno) = seg.parse_file_name(&start).unwrap();
    let victim = seg.file_name(tli, segno + 3);
    let path = dir.join(&victim);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2 + 777;
    bytes[at] ^= 0x10;
    std::fs::write(&path, bytes).unwrap();
    let mut copy = backup.copy_stopped().unwrap();
    let started = copy.start_recovery(
        RecoveryMode::Archive,
        &restore_command(dir, "--partial"),
        &[],
    );
    if started.is_ok() {
        copy.wait_stopped().unwrap();
    }
    let log = copy.log();
    assert!(
        log.contains(&format!("pgwal-recv: error: file \"{victim}\"")),
        "{log}"
    );
    assert!(!log.contains("archive recovery complete"), "{log}");
    assert!(!copy.data_dir().join("pg_wal/00000002.history").exists());
    for l in log
        .lines()
        .filter(|l| l.contains("pgwal-recv: error") || l.contains("FATAL"))
    {
        eprintln!("{l}");
    }
    eprintln!("damaged {victim}: recovery stopped, not promoted");
}

/// A primary with the batches' table.
fn primary() -> Cluster {
    let pg = cluster(&[]);
    pg.sql("CREATE TABLE pitr (batch int, x int)").unwrap();
    pg
}

/// An archiver of `pg` with `-Z z` into a new directory, streaming.
fn streaming_archiver(pg: &Cluster, z: &str) -> (PathBuf, Background) {
    let dir = pg.scratch_dir("archive").unwrap();
    let arch = archiver(pg, &dir, "arch", &["-Z", z]);
    wait_streaming(pg, &["arch"]);
    (dir, arch)
}

/// Waits until `standby` has replayed all that `primary` has written so far.
fn wait_replayed(primary: &Cluster, standby: &Cluster) {
    let end = lsn(primary, "SELECT pg_current_wal_lsn()");
    testenv::wait_for("the standby to replay", Duration::from_secs(30), || {
        standby
            .sql(&format!("SELECT pg_last_wal_replay_lsn() >= '{end}'"))
            .is_ok_and(|s| s == "t")
    })
    .unwrap();
}

#[test]
fn recovery_follows_a_promotion() {
    let pg = primary();
    let standby = pg.make_standby("standby").unwrap();
    // The archiver streams from the standby, and so follows it onto timeline 2.
    let (dir, arch) = streaming_archiver(&standby, "zstd");
    let (backup, _) = pg.base_backup(CloneMethod::Auto).unwrap();
    commit_batch(&pg, 1);
    pg.switch_wal().unwrap();
    wait_replayed(&pg, &standby);
    pg.stop().unwrap();
    standby.promote().unwrap();
    commit_batch(&standby, 2);
    standby.switch_wal().unwrap();
    wait_flushed(&standby, &["arch"]);
    assert!(dir.join("00000002.history").exists());
    drop(arch);
    let (copy, got) = recover(
        &backup,
        &restore_command(&dir, "--partial"),
        &["recovery_target_timeline = 'latest'".to_owned()],
    );
    assert_eq!(got, rows(2));
    let tli = copy
        .sql("SELECT timeline_id FROM pg_control_checkpoint()")
        .unwrap();
    eprintln!("across the promotion: {got}, now on timeline {tli}");
}

#[test]
fn a_hot_standby_fed_only_by_restore_command_keeps_up() {
    let pg = primary();
    let (dir, _arch) = streaming_archiver(&pg, "lz4");
    let (backup, _) = pg.base_backup(CloneMethod::Auto).unwrap();
    let mut standby = backup.copy_stopped().unwrap();
    standby
        .start_recovery(
            RecoveryMode::Standby,
            &restore_command(&dir, ""),
            &["wal_retrieve_retry_interval = '200ms'".to_owned()],
        )
        .unwrap();
    for b in 1..=3 {
        commit_batch(&pg, b);
        pg.switch_wal().unwrap();
        let began = Instant::now();
        testenv::wait_for("the standby to catch up", Duration::from_secs(60), || {
            standby
                .sql("SELECT count(*) FROM pitr")
                .is_ok_and(|n| n == (b * ROWS).to_string())
        })
        .unwrap_or_else(|e| panic!("{e}\nstandby log:\n{}", standby.log()));
        eprintln!(
            "batch {b}: on the standby {:?} after the switch",
            began.elapsed()
        );
    }
    assert_eq!(standby.sql("SELECT pg_is_in_recovery()").unwrap(), "t");
}

/// `pg_rewind --restore-target-wal` calls restore_command with DEST in the target's own
/// `pg_wal` (not `RECOVERYXLOG`): with `--prefetch`, the old primary's WAL that its pg_wal no
/// longer holds comes from the archive, and the rewound server follows the new primary.
#[test]
fn pg_rewind_restores_the_old_primarys_wal_with_prefetch() {
    let mut pg = cluster(&["wal_log_hints = on"]);
    let Ok(rewind) = pg.bin().tool("pg_rewind") else {
        testenv::skip(format!("no pg_rewind for PostgreSQL {}", pg.version()));
        return;
    };
    pg.sql("CREATE TABLE pitr (batch int, x int)").unwrap();
    let (dir, arch) = streaming_archiver(&pg, "zstd");
    let standby = pg.make_standby("standby").unwrap();
    commit_batch(&pg, 1);
    wait_replayed(&pg, &standby);
    standby.promote().unwrap();
    // The old primary goes on alone for a few segments (archived), then stops.
    for b in 2..=4 {
        commit_batch(&pg, b);
    }
    pg.switch_wal().unwrap();
    wait_flushed(&pg, &["arch"]);
    drop(arch);
    pg.stop().unwrap();
    // Its pg_wal keeps only the newest segments: what pg_rewind reads before them must
    // come from the archive.
    let mut segs: Vec<PathBuf> = std::fs::read_dir(pg.pg_wal_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().len() == 24)
        .collect();
    segs.sort();
    for p in &segs[..segs.len() - 2] {
        std::fs::remove_file(p).unwrap();
    }
    // The new primary's control file must name its new timeline before pg_rewind reads it.
    standby.sql("CHECKPOINT").unwrap();
    let used = pg.scratch_dir("restored").unwrap().join("names");
    let command = format!(
        "{} && echo %f >> {}",
        restore_command(&dir, "--prefetch 4"),
        used.display()
    );
    let auto = pg.data_dir().join("postgresql.auto.conf");
    let mut conf = std::fs::read_to_string(&auto).unwrap();
    conf.push_str(&format!(
        "restore_command = {}\n",
        testenv::quote_literal(&command)
    ));
    std::fs::write(&auto, conf).unwrap();
    let out = pg
        .os_user()
        .command(&rewind)
        .arg("-D")
        .arg(pg.data_dir())
        .arg(format!(
            "--source-server={}",
            standby.socket_conninfo(standby.superuser())
        ))
        .arg("--restore-target-wal")
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "pg_rewind: {said}");
    let restored = std::fs::read_to_string(&used).unwrap_or_default();
    assert!(!restored.is_empty(), "restore_command never ran: {said}");
    eprintln!(
        "pg_rewind {}: restored {} through restore --prefetch",
        pg.bin().full_version(),
        restored.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    // The rewound server follows the new primary: batch 1, not the old primary's 2 to 4.
    commit_batch(&standby, 5);
    pg.start_recovery(
        RecoveryMode::Standby,
        &restore_command(&dir, ""),
        &[
            format!(
                "primary_conninfo = {}",
                testenv::quote_literal(&standby.socket_conninfo(standby.superuser()))
            ),
            // pg_rewind copied the source's settings: its slot is not the new primary's.
            "primary_slot_name = ''".to_owned(),
        ],
    )
    .unwrap();
    testenv::wait_for(
        "the rewound server to follow",
        Duration::from_secs(60),
        || {
            pg.sql("SELECT string_agg(DISTINCT batch::text, ',' ORDER BY batch::text) FROM pitr")
                .is_ok_and(|s| s == "1,5")
        },
    )
    .unwrap_or_else(|e| {
        let log = pg.log();
        panic!("{e}\n{}", &log[log.len().saturating_sub(3000)..])
    });
}
