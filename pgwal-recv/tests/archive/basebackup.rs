//! `pgwal-recv basebackup` against real servers, checked by PostgreSQL's own tools:
//! pg_verifybackup on the backups (plain, and tar once unpacked), and a backup made with
//! `-R` started as a hot standby that streams from the primary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use testenv::Cluster;

use crate::common::{cluster, conninfo, run, stderr};

const LIMIT: Duration = Duration::from_secs(180);

/// The binary as the server's OS user, so that the server can use what it writes.
fn bin_as(pg: &Cluster) -> Command {
    let mut c = pg
        .os_user()
        .command(Path::new(env!("CARGO_BIN_EXE_pgwal-recv")));
    c.current_dir(pg.temp_dir());
    c
}

/// Rows inserted on the primary in a loop until dropped: the backup is taken while the
/// server writes.
struct Writer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(pg: &Cluster) -> Writer {
        pg.sql("CREATE TABLE IF NOT EXISTS w (id serial, pad text)")
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let conn = pg.socket_conninfo(pg.superuser());
        let psql = pg.bin().tool("psql").ok();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let Some(psql) = psql else { return };
            while !flag.load(Ordering::Relaxed) {
                let _ = Command::new(&psql)
                    .args(["-X", "-q", "-d", &conn, "-c"])
                    .arg(
                        "INSERT INTO w (pad) SELECT repeat('x', 200) FROM generate_series(1, 2000)",
                    )
                    .output();
            }
        });
        Writer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn verifybackup(pg: &Cluster, dir: &Path, extra: &[&str]) {
    let mut cmd = pg.tool_command("pg_verifybackup").expect("pg_verifybackup");
    cmd.args(extra).arg(dir);
    let out = run(&mut cmd, LIMIT);
    assert!(
        out.status.success(),
        "pg_verifybackup failed on {}:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
}

fn has_verifybackup(pg: &Cluster) -> bool {
    if pg.tool_command("pg_verifybackup").is_ok() {
        return true;
    }
    testenv::skip(format!(
        "no pg_verifybackup for PostgreSQL {}",
        pg.version()
    ));
    false
}

fn tablespace(pg: &Cluster) -> PathBuf {
    let dir = pg.scratch_dir("ts_old").unwrap();
    pg.sql(&format!(
        "CREATE TABLESPACE ts LOCATION '{}'",
        dir.display()
    ))
    .unwrap();
    pg.sql("CREATE TABLE in_ts TABLESPACE ts AS SELECT g FROM generate_series(1, 5000) g")
        .unwrap();
    dir
}

/// Plain format with `-X stream` and `-X fetch` while the primary writes, and compressed by
/// the server (15+), a tablespace relocated with `-T`: pg_verifybackup checks every file against the manifest and parses
/// the WAL from the start to the end position.
#[test]
fn plain_backups_pass_pg_verifybackup() {
    // -X fetch needs the server to keep the backup's WAL until its end (as for
    // pg_basebackup), while rows are written into 1 MB segments.
    let pg = cluster(&["wal_keep_size = '1GB'"]);
    if !has_verifybackup(&pg) {
        return;
    }
    let ts_old = tablespace(&pg);
    let _writer = Writer::start(&pg);
    let mut cases = vec![("stream", None), ("fetch", None)];
    if pg.version() >= 15 {
        // Compressed by the server, decompressed and extracted as it arrives.
        cases.push(("stream", Some("server-gzip")));
    }
    for (method, compress) in cases {
        let name = format!("{method}-{}", compress.unwrap_or("none"));
        let dir = pg.temp_dir().join(format!("bb-{name}"));
        let ts_new = pg.temp_dir().join(format!("ts-{name}"));
        let mut cmd = bin_as(&pg);
        cmd.args(["basebackup", "-D"])
            .arg(&dir)
            .args(["-X", method, "-c", "fast", "-v", "-T"])
            .arg(format!("{}={}", ts_old.display(), ts_new.display()))
            .args(["--manifest-checksums", "SHA256", "-d", &conninfo(&pg)]);
        if let Some(spec) = compress {
            cmd.args(["-Z", spec]);
        }
        let out = run(&mut cmd, LIMIT);
        assert!(out.status.success(), "basebackup {name}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("write-ahead log end point"), "{err}");
        assert!(dir.join("backup_manifest").exists());
        assert!(!dir.join("backup_manifest.tmp").exists());
        // The tablespace went where -T said, and the link points there.
        let oid = pg
            .sql("SELECT oid FROM pg_tablespace WHERE spcname = 'ts'")
            .unwrap();
        let link = std::fs::read_link(dir.join("pg_tblspc").join(oid.trim())).unwrap();
        assert_eq!(link, ts_new);
        assert!(std::fs::read_dir(&ts_new).unwrap().next().is_some());
        verifybackup(&pg, &dir, &[]);
    }
}

/// Tar format with `-X stream` and client-side zstd, and with server-side gzip (15+; the
/// npm builds of some versions have no zstd); on 18 pg_verifybackup also reads the tar
/// files themselves. Unpacked with tar (base.tar, the tablespace's OID.tar, pg_wal.tar),
/// each passes pg_verifybackup.
#[test]
fn tar_backups_unpacked_pass_pg_verifybackup() {
    let pg = cluster(&[]);
    if !has_verifybackup(&pg) {
        return;
    }
    let ts_old = tablespace(&pg);
    let oid = pg
        .sql("SELECT oid FROM pg_tablespace WHERE spcname = 'ts'")
        .unwrap()
        .trim()
        .to_owned();
    let mut cases = vec![("zstd", "zstd", ".zst")];
    if pg.version() >= 15 {
        cases.push(("server-gzip", "gzip", ".gz"));
    }
    for (spec, tool, suffix) in cases {
        let dir = pg.temp_dir().join(format!("tar-{tool}"));
        let out = run(
            bin_as(&pg)
                .args(["basebackup", "-D"])
                .arg(&dir)
                .args(["-F", "t", "-X", "stream", "-c", "fast", "-Z", spec])
                .args(["-d", &conninfo(&pg)]),
            LIMIT,
        );
        assert!(
            out.status.success(),
            "basebackup -Ft -Z {spec}: {}",
            stderr(&out)
        );
        let base = dir.join(format!("base.tar{suffix}"));
        let ts = dir.join(format!("{oid}.tar{suffix}"));
        // pg_wal.tar is compressed by the client's method, as pg_basebackup does.
        let wal_tar = dir.join(if spec.starts_with("server-") {
            "pg_wal.tar".to_owned()
        } else {
            format!("pg_wal.tar{suffix}")
        });
        assert!(base.exists() && ts.exists() && wal_tar.exists());
        // Unpack as a user would: the data directory, pg_wal, the tablespace where the
        // symlink in pg_tblspc points (the original location, emptied first).
        let unpacked = pg.temp_dir().join(format!("unpacked-{tool}"));
        std::fs::create_dir_all(unpacked.join("pg_wal")).unwrap();
        let untar = |archive: &Path, into: &Path| {
            let mut c = Command::new("tar");
            c.arg(format!("--use-compress-program={tool} -d"))
                .arg("-xf")
                .arg(archive)
                .arg("-C")
                .arg(into);
            let out = run(&mut c, LIMIT);
            assert!(
                out.status.success(),
                "tar -xf {}: {}",
                archive.display(),
                stderr(&out)
            );
        };
        untar(&base, &unpacked);
        let mut c = Command::new("tar");
        if !spec.starts_with("server-") {
            c.arg(format!("--use-compress-program={tool} -d"));
        }
        let out = run(
            c.arg("-xf")
                .arg(&wal_tar)
                .arg("-C")
                .arg(unpacked.join("pg_wal")),
            LIMIT,
        );
        assert!(out.status.success(), "{}", stderr(&out));
        // The tablespace map file names the tablespace's location (tar format sends
        // TABLESPACE_MAP, as pg_basebackup does).
        let map = std::fs::read_to_string(unpacked.join("tablespace_map")).unwrap();
        assert!(map.contains(&oid), "{map}");
        let ts_dir = pg.temp_dir().join(format!("ts-{tool}"));
        std::fs::create_dir_all(&ts_dir).unwrap();
        untar(&ts, &ts_dir);
        std::fs::copy(
            dir.join("backup_manifest"),
            unpacked.join("backup_manifest"),
        )
        .unwrap();
        // The manifest lists the tablespace's files under pg_tblspc/OID: give it that view.
        std::fs::create_dir_all(unpacked.join("pg_tblspc")).unwrap();
        std::os::unix::fs::symlink(&ts_dir, unpacked.join("pg_tblspc").join(&oid)).unwrap();
        verifybackup(&pg, &unpacked, &[]);
        // pg_verifybackup 18 reads tar backups as they are (files against the manifest;
        // the WAL it cannot read from a tar was parsed above). PyPI's build has zlib but
        // no zstd.
        if pg.version() >= 18 && suffix == ".gz" {
            verifybackup(&pg, &dir, &["-n"]);
        }
    }
    let _ = ts_old;
}

/// A backup made with `-R` (and `-X stream`, `-C -S`, compressed by the server on 15+)
/// starts as a hot standby of the primary and streams from it through the slot; rows written after the backup arrive.
#[test]
fn a_backup_with_r_starts_as_a_streaming_standby() {
    let pg = cluster(&[]);
    let _writer = Writer::start(&pg);
    let mut standby = pg.empty_like().unwrap();
    let mut cmd = bin_as(&pg);
    cmd.args(["basebackup", "-D"])
        .arg(standby.data_dir())
        .args(["-R", "-C", "-S", "bb_slot", "-c", "fast", "-P", "-d"])
        .arg(pg.socket_conninfo(pg.superuser()));
    if pg.version() >= 15 {
        // The settings go into the archive after the server's compression is undone.
        cmd.args(["-Z", "server-gzip"]);
    }
    let out = run(&mut cmd, LIMIT);
    assert!(out.status.success(), "basebackup -R: {}", stderr(&out));
    let auto = std::fs::read_to_string(standby.data_dir().join("postgresql.auto.conf")).unwrap();
    assert!(auto.contains("primary_conninfo = '"), "{auto}");
    assert!(auto.contains("primary_slot_name = 'bb_slot'"), "{auto}");
    assert!(standby.data_dir().join("standby.signal").exists());
    drop(_writer);
    standby.start_as_is().unwrap();
    standby.wait_receiver_streaming().unwrap();
    assert_eq!(standby.sql("SELECT pg_is_in_recovery()").unwrap(), "t");
    pg.sql("CREATE TABLE after_backup AS SELECT 42 AS answer")
        .unwrap();
    testenv::wait_for("the row to reach the standby", LIMIT, || {
        standby
            .sql("SELECT answer FROM after_backup")
            .is_ok_and(|s| s == "42")
    })
    .unwrap();
    let slot = pg
        .sql("SELECT active FROM pg_replication_slots WHERE slot_name = 'bb_slot'")
        .unwrap();
    assert_eq!(slot, "t");
}

/// What pg_basebackup refuses, refused with its wording; a directory that is not empty is
/// left alone; a failed backup leaves nothing that looks complete.
#[test]
fn bad_input_and_failures_leave_no_backup() {
    let pg = cluster(&[]);
    let nonempty = pg.temp_dir().join("nonempty");
    std::fs::create_dir_all(&nonempty).unwrap();
    std::fs::write(nonempty.join("keep"), "x").unwrap();
    let out = run(
        crate::common::bin()
            .args(["basebackup", "-D"])
            .arg(&nonempty)
            .args(["-d", &conninfo(&pg)]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("exists but is not empty"),
        "{}",
        stderr(&out)
    );
    assert!(nonempty.join("keep").exists());

    // The server refuses (an unknown manifest checksum): the directory made goes.
    let dir = pg.temp_dir().join("refused");
    let out = run(
        crate::common::bin()
            .args(["basebackup", "-D"])
            .arg(&dir)
            .args(["--manifest-checksums", "NOPE", "-d", &conninfo(&pg)]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("NOPE"), "{err}");
    assert!(err.contains("removing data directory"), "{err}");
    assert!(!dir.exists());

    // A failure after the WAL receiver started (the tablespace's own directory, not
    // relocated, is not empty): it is waited for, then the directory goes.
    let ts = tablespace(&pg);
    let dir = pg.temp_dir().join("ts-not-relocated");
    let out = run(
        bin_as(&pg).args(["basebackup", "-D"]).arg(&dir).args([
            "-X",
            "stream",
            "-c",
            "fast",
            "-d",
            &conninfo(&pg),
        ]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "directory \"{}\" exists but is not empty",
            ts.display()
        )),
        "{err}"
    );
    assert!(!dir.exists(), "{err}");
}

/// `-i OLDMANIFEST` (17+): an incremental backup on top of a full one, both ours; joined by
/// pg_combinebackup, the result passes pg_verifybackup. Before 17 it is refused.
#[test]
fn incremental_backups_combine_and_verify() {
    let v17 = testenv::PgBin::get().unwrap().version() >= 17;
    let pg = cluster(if v17 { &["summarize_wal = on"] } else { &[] });
    let full = pg.temp_dir().join("full");
    let incr = pg.temp_dir().join("incr");
    let take = |dir: &Path, extra: &[&str]| {
        run(
            bin_as(&pg)
                .args(["basebackup", "-D"])
                .arg(dir)
                .args(["-c", "fast"])
                .args(extra)
                .args(["-d", &conninfo(&pg)]),
            LIMIT,
        )
    };
    if !v17 {
        let out = take(&incr, &["-i", "/nonexistent/backup_manifest"]);
        assert_eq!(out.status.code(), Some(1));
        // The file is read first, as pg_basebackup does.
        assert!(
            stderr(&out).contains("could not read file"),
            "{}",
            stderr(&out)
        );
        let manifest = pg.temp_dir().join("some_manifest");
        std::fs::write(&manifest, "{}").unwrap();
        let out = take(&incr, &["-i", manifest.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("PostgreSQL 17"), "{}", stderr(&out));
        assert!(!incr.exists());
        return;
    }
    pg.sql("CREATE TABLE t AS SELECT g FROM generate_series(1, 20000) g")
        .unwrap();
    let out = take(&full, &[]);
    assert!(out.status.success(), "full: {}", stderr(&out));
    pg.sql("INSERT INTO t SELECT g FROM generate_series(1, 500) g")
        .unwrap();
    let manifest = full.join("backup_manifest");
    let out = take(&incr, &["-i", manifest.to_str().unwrap()]);
    assert!(out.status.success(), "incremental: {}", stderr(&out));
    let has_incremental = walk(&incr).iter().any(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("INCREMENTAL."))
    });
    assert!(
        has_incremental,
        "no INCREMENTAL. files in the incremental backup"
    );
    let combine = match pg.tool_command("pg_combinebackup") {
        Ok(c) => c,
        Err(e) => {
            testenv::skip(format!("pg_combinebackup: {e}"));
            return;
        }
    };
    let combined = pg.temp_dir().join("combined");
    let mut combine = combine;
    combine.arg(&full).arg(&incr).arg("-o").arg(&combined);
    let out = run(&mut combine, LIMIT);
    assert!(out.status.success(), "pg_combinebackup: {}", stderr(&out));
    verifybackup(&pg, &combined, &[]);
}

/// Every path under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

/// A backup killed midway (SIGKILL: no cleanup runs) leaves a directory without
/// `backup_manifest`, which pg_verifybackup and a person can tell from a complete backup.
#[test]
fn a_killed_backup_does_not_look_complete() {
    let pg = cluster(&[]);
    pg.sql(
        "CREATE TABLE filler AS SELECT g, repeat('x', 500) AS pad FROM generate_series(1, 20000) g",
    )
    .unwrap();
    let dir = pg.temp_dir().join("killed");
    // 32 kB/s: the backup is still running when it is killed.
    let mut child = bin_as(&pg)
        .args(["basebackup", "-D"])
        .arg(&dir)
        .args(["-r", "32k", "-c", "fast", "-d", &conninfo(&pg)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    testenv::wait_for("the backup to write files", LIMIT, || {
        dir.join("PG_VERSION").exists()
    })
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(dir.exists());
    assert!(!dir.join("backup_manifest").exists());
}
