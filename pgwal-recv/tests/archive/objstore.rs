//! The archive in an object store (`-D s3://BUCKET/PREFIX --spool DIR`), on a real Garage
//! cluster (testenv): what lands in the bucket is the server's pg_wal byte for byte, every
//! compression; `restore` from the bucket feeds a point-in-time recovery and `verify` of the
//! bucket finds what was damaged; a SIGKILLed archiver resumes with no gap and overwrites
//! nothing; a store that goes away pauses receiving at `--spool-max` with the slot holding
//! what is not stored; one of three nodes lost does not stop archiving.
//!
//! The objects are read back with the `object_store` crate directly (not through the
//! archiver's own code), and decompressed with the gzip, lz4 and zstd crates.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use pgwire_repl::{Lsn, TimelineId};
use testenv::{CloneMethod, Cluster, Garage, RecoveryMode};

use crate::common::*;
use crate::monitoring::{free_port, metric, scrape};

/// A Garage of `nodes` nodes, or `None` (after [`testenv::skip`]) without the binary.
fn garage(nodes: usize) -> Option<Garage> {
    if Garage::binary().is_none() {
        testenv::skip(
            "no garage binary (cargo install garage --locked --no-default-features \
             --features bundled-libs,lmdb)",
        );
        return None;
    }
    Some(Garage::start(nodes).unwrap_or_else(|e| panic!("could not start Garage: {e}")))
}

/// The bucket, read and written directly (the oracle).
struct Bucket {
    store: AmazonS3,
    rt: tokio::runtime::Runtime,
}

impl Bucket {
    fn new(g: &Garage) -> Bucket {
        let store = AmazonS3Builder::new()
            .with_endpoint(g.endpoint())
            .with_allow_http(true)
            .with_region(g.region())
            .with_bucket_name(g.bucket())
            .with_access_key_id(g.access_key_id())
            .with_secret_access_key(g.secret_access_key())
            .build()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Bucket { store, rt }
    }

    /// Object names under `prefix/`, with their sizes.
    fn list(&self, prefix: &str) -> BTreeMap<String, u64> {
        let listed = self
            .rt
            .block_on(self.store.list_with_delimiter(Some(&ObjPath::from(prefix))))
            .unwrap();
        listed
            .objects
            .into_iter()
            .map(|o| (o.location.filename().unwrap().to_owned(), o.size))
            .collect()
    }

    fn get(&self, prefix: &str, name: &str) -> Vec<u8> {
        let path = ObjPath::from(format!("{prefix}/{name}"));
        self.rt
            .block_on(async { self.store.get(&path).await?.bytes().await })
            .unwrap_or_else(|e| panic!("object {prefix}/{name}: {e}"))
            .to_vec()
    }

    fn put(&self, prefix: &str, name: &str, data: Vec<u8>) {
        let path = ObjPath::from(format!("{prefix}/{name}"));
        self.rt
            .block_on(self.store.put(&path, PutPayload::from(Bytes::from(data))))
            .unwrap();
    }

    fn delete(&self, prefix: &str, name: &str) {
        let path = ObjPath::from(format!("{prefix}/{name}"));
        self.rt.block_on(self.store.delete(&path)).unwrap();
    }

    /// Every object under `prefix/` with its bytes.
    fn contents(&self, prefix: &str) -> BTreeMap<String, Vec<u8>> {
        self.list(prefix)
            .into_keys()
            .map(|n| {
                let data = self.get(prefix, &n);
                (n, data)
            })
            .collect()
    }
}

/// Decompresses an object by its name's suffix.
fn decompress(name: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if name.ends_with(".gz") {
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
    } else if name.ends_with(".lz4") {
        lz4::Decoder::new(data)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
    } else if name.ends_with(".zst") {
        out = zstd::decode_all(data).unwrap();
    } else {
        out = data.to_vec();
    }
    out
}

/// pgwal-recv with the store's credentials in its environment.
fn with_store(mut cmd: Command, g: &Garage) -> Command {
    for (k, v) in g.env() {
        cmd.env(k, v);
    }
    cmd
}

/// The archiver into `prefix` through `spool` and slot `slot`, with `extra` options.
fn archiver_cmd(pg: &Cluster, g: &Garage, prefix: &str, spool: &Path, slot: &str) -> Command {
    let mut cmd = with_store(bin(), g);
    cmd.args([
        "-D",
        &g.url(prefix),
        "--spool",
        &spool.display().to_string(),
    ])
    .args(["-S", slot, "-d", &conninfo(pg)]);
    cmd
}

/// Asserts that segments `first..=last` of timeline 1 are in the bucket under `prefix`
/// (each once, with the suffix of `method`), equal to the server's pg_wal once decompressed.
fn assert_stored_identical(
    pg: &Cluster,
    bucket: &Bucket,
    prefix: &str,
    suffix: &str,
    first: u64,
    last: u64,
) {
    let seg = seg1mb();
    let listed = bucket.list(prefix);
    for segno in first..=last {
        let name = format!("{}{suffix}", seg.file_name(TimelineId(1), segno));
        assert!(
            listed.contains_key(&name),
            "segment {name} missing from {prefix}/; the bucket has {:?}",
            listed.keys().collect::<Vec<_>>()
        );
        let ours = decompress(&name, &bucket.get(prefix, &name));
        let theirs = pg.wal_file(&seg.file_name(TimelineId(1), segno)).unwrap();
        assert!(ours == theirs, "{prefix}/{name} differs from the server's");
    }
}

/// The segment numbers from the slot's start to the last complete one at `end`.
fn span(start: Lsn, end: Lsn) -> (u64, u64) {
    let seg = seg1mb();
    (seg.segment_of(start), seg.segment_of(end) - 1)
}

#[test]
fn stored_segments_are_identical_to_pg_wal_for_every_compression() {
    let Some(g) = garage(1) else { return };
    let pg = cluster(&[]);
    if !starts_at_the_slot() {
        return;
    }
    let bucket = Bucket::new(&g);
    let methods = [
        ("plain", "none", ""),
        ("gz", "gzip", ".gz"),
        ("lz4", "lz4", ".lz4"),
        ("zst", "zstd", ".zst"),
    ];
    let mut start = Lsn(0);
    for (name, _, _) in methods {
        start = archiver_and_holding_slots_named(&pg, name);
    }
    // Dozens of segments, with full-page images in them.
    pg.generate_wal(12 << 20).unwrap();
    pg.sql("CHECKPOINT").unwrap();
    pg.generate_wal(12 << 20).unwrap();
    pg.switch_wal().unwrap();
    let end = lsn(&pg, "SELECT pg_current_wal_flush_lsn()");
    let (first, last) = span(start, end);
    assert!(last - first >= 24, "only {} segments", last - first + 1);
    let spools: Vec<TempDir> = methods.iter().map(|(n, _, _)| TempDir::new(n)).collect();
    let children: Vec<_> = methods
        .iter()
        .zip(&spools)
        .map(|((name, method, _), spool)| {
            let mut cmd = archiver_cmd(&pg, &g, name, spool.path(), name);
            cmd.args(["-Z", method, "-n", "-E", &end.to_string()]);
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (child, (name, _, suffix)) in children.into_iter().zip(methods) {
        let out = wait_output(child, Duration::from_secs(180));
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert_stored_identical(&pg, &bucket, name, suffix, first, last);
    }
    // Everything uploaded has left the spools (the last, incomplete segment stays).
    for spool in &spools {
        let left = complete_segments(spool.path());
        assert!(left.is_empty(), "left in the spool: {left:?}");
    }
}

/// Slot `name` for an archiver, plus the `hold` slot that keeps pg_wal (created once).
fn archiver_and_holding_slots_named(pg: &Cluster, name: &str) -> Lsn {
    pg.create_physical_slot(name).unwrap();
    if pg
        .sql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'hold'")
        .unwrap()
        == "0"
    {
        pg.create_physical_slot("hold").unwrap();
    }
    lsn(
        pg,
        &format!("SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = '{name}'"),
    )
}

#[test]
fn an_object_with_other_bytes_is_never_overwritten() {
    let Some(g) = garage(1) else { return };
    let pg = cluster(&[]);
    if !starts_at_the_slot() {
        return;
    }
    let bucket = Bucket::new(&g);
    let start = archiver_and_holding_slots(&pg, "arch");
    pg.generate_wal(3 << 20).unwrap();
    pg.switch_wal().unwrap();
    let end = lsn(&pg, "SELECT pg_current_wal_flush_lsn()");
    let first = seg1mb().file_name(TimelineId(1), seg1mb().segment_of(start));
    bucket.put("wal", &first, b"not this segment".to_vec());
    let spool = TempDir::new("conflict");
    let out = run(
        archiver_cmd(&pg, &g, "wal", spool.path(), "arch").args(["-n", "-E", &end.to_string()]),
        Duration::from_secs(120),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "wal/{first}\" already exists with different content"
        )),
        "{err}"
    );
    assert_eq!(bucket.get("wal", &first), b"not this segment");
    // The segment stays in the spool for whoever sorts this out.
    assert!(has_file(spool.path(), &first), "{err}");

    // The same bytes already there count as stored (an upload confirmed, then killed
    // before the spool's copy was removed).
    bucket.put("wal", &first, pg.wal_file(&first).unwrap());
    let out = run(
        archiver_cmd(&pg, &g, "wal", spool.path(), "arch").args(["-n", "-E", &end.to_string()]),
        Duration::from_secs(120),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (a, b) = span(start, end);
    assert_stored_identical(&pg, &bucket, "wal", "", a, b);
}

#[test]
fn restore_and_verify_read_the_store_and_a_server_recovers_from_it() {
    let Some(g) = garage(1) else { return };
    let pg = cluster(&[]);
    if !starts_at_the_slot() {
        return;
    }
    let bucket = Bucket::new(&g);
    let (backup, _) = pg.base_backup(CloneMethod::Auto).unwrap();
    let start = archiver_and_holding_slots(&pg, "arch");
    let spool = TempDir::new("pitr-spool");
    let mut arch = Background::spawn(
        archiver_cmd(&pg, &g, "pitr", spool.path(), "arch").args(["-Z", "zstd", "-v"]),
    );
    arch.wait_until("streaming", Duration::from_secs(30), |e| {
        e.contains("starting log streaming")
    });
    pg.sql("CREATE TABLE pitr (batch int)").unwrap();
    pg.sql("INSERT INTO pitr SELECT 1 FROM generate_series(1, 100)")
        .unwrap();
    pg.generate_wal(2 << 20).unwrap();
    let target = lsn(&pg, "SELECT pg_current_wal_insert_lsn()");
    pg.sql("INSERT INTO pitr SELECT 2 FROM generate_series(1, 100)")
        .unwrap();
    pg.generate_wal(2 << 20).unwrap();
    pg.switch_wal().unwrap();
    let end = lsn(&pg, "SELECT pg_current_wal_flush_lsn()");
    let (first, last) = span(start, end);
    let seg = seg1mb();
    let last_name = format!("{}.zst", seg.file_name(TimelineId(1), last));
    testenv::wait_for("the uploads", Duration::from_secs(60), || {
        bucket.list("pitr").contains_key(&last_name)
    })
    .unwrap();
    arch.signal("INT");
    let (code, err) = arch.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{err}");

    // restore: every segment, identical; an absent one is exit status 1.
    let dest = TempDir::new("pitr-dest");
    for segno in first..=last {
        let name = seg.file_name(TimelineId(1), segno);
        let to = dest.path().join(&name);
        let out = run(
            with_store(bin(), &g)
                .args(["restore", "-D", &g.url("pitr"), &name])
                .arg(&to),
            Duration::from_secs(60),
        );
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert!(std::fs::read(&to).unwrap() == pg.wal_file(&name).unwrap());
    }
    let absent = seg.file_name(TimelineId(1), last + 50);
    let out = run(
        with_store(bin(), &g)
            .args(["restore", "-D", &g.url("pitr"), &absent])
            .arg(dest.path().join("x")),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // A store that does not answer is not "absent": 255 (recovery stops), in one line.
    let name = seg.file_name(TimelineId(1), first);
    let out = run(
        with_store(bin(), &g)
            .env(
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", free_port()),
            )
            .args(["restore", "-D", &g.url("pitr"), &name])
            .arg(dest.path().join("y")),
        Duration::from_secs(60),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!dest.path().join("y").exists());

    // A server recovers from the bucket to the target: batch 1, not batch 2.
    let env: String = g
        .env()
        .into_iter()
        .map(|(k, v)| format!("{k}={v} "))
        .collect();
    let command = format!(
        "env {env}{} restore -D {} %f %p",
        env!("CARGO_BIN_EXE_pgwal-recv"),
        g.url("pitr")
    );
    let mut copy = backup;
    copy.start_recovery(
        RecoveryMode::Archive,
        &command,
        &[
            format!("recovery_target_lsn = '{target}'"),
            "recovery_target_action = 'promote'".into(),
        ],
    )
    .unwrap();
    copy.wait_recovered().unwrap();
    assert_eq!(
        copy.sql("SELECT string_agg(DISTINCT batch::text, ',') FROM pitr")
            .unwrap(),
        "1"
    );

    // verify: clean, then a flipped byte and a deleted segment are found.
    let verify = || {
        run(
            with_store(bin(), &g).args(["verify", "-D", &g.url("pitr")]),
            Duration::from_secs(120),
        )
    };
    let out = verify();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let damaged = format!("{}.zst", seg.file_name(TimelineId(1), first + 2));
    let mut data = zstd::decode_all(&bucket.get("pitr", &damaged)[..]).unwrap();
    data[70_000] ^= 0x40;
    bucket.put("pitr", &damaged, zstd::encode_all(&data[..], 1).unwrap());
    let deleted = format!("{}.zst", seg.file_name(TimelineId(1), first + 4));
    bucket.delete("pitr", &deleted);
    let out = verify();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(&damaged[..24]), "{text}");
    assert!(text.contains(&deleted[..24]), "{text}");
}

/// Sets the flag when dropped, so that a WAL generator stops also when the test panics.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn sigkill_three_times_then_resume_without_gap_or_overwrite() {
    let Some(g) = garage(1) else { return };
    let pg = cluster(&[]);
    if !starts_at_the_slot() {
        return;
    }
    let bucket = Bucket::new(&g);
    let start = archiver_and_holding_slots(&pg, "arch");
    let spool = TempDir::new("kill-spool");
    let stop = AtomicBool::new(false);
    // Every object ever seen, with its bytes: none may change afterwards (but the
    // `.partial` snapshots, which are overwritten by design).
    let mut seen: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut check_unchanged = |now: BTreeMap<String, Vec<u8>>| {
        for (name, data) in now {
            if name.ends_with(".partial") {
                continue;
            }
            if let Some(before) = seen.get(&name) {
                assert!(
                    *before == data,
                    "object {name} was overwritten with other bytes"
                );
            }
            seen.insert(name, data);
        }
    };
    std::thread::scope(|s| {
        let _guard = StopOnDrop(&stop);
        s.spawn(|| {
            let mut made = 0;
            while !stop.load(Ordering::Relaxed) && made < 40 << 20 {
                pg.generate_wal(1 << 20).unwrap();
                made += 1 << 20;
            }
        });
        // Killed at different moments: early, mid-upload, later.
        for delay_ms in [700, 1900, 1300] {
            let arch =
                Background::spawn(archiver_cmd(&pg, &g, "kill", spool.path(), "arch").args([
                    "-Z",
                    "lz4",
                    "--upload-partial",
                    "1",
                    "--spool-max",
                    "2",
                ]));
            std::thread::sleep(Duration::from_millis(delay_ms));
            let kill = Command::new("kill")
                .args(["-KILL", &arch.pid().to_string()])
                .status()
                .unwrap();
            assert!(kill.success());
            let (code, _) = arch.wait(Duration::from_secs(10));
            assert_eq!(code, None, "killed by a signal");
            check_unchanged(bucket.contents("kill"));
        }
        stop.store(true, Ordering::Relaxed);
    });
    pg.switch_wal().unwrap();
    let end = lsn(&pg, "SELECT pg_current_wal_flush_lsn()");
    let out = run(
        archiver_cmd(&pg, &g, "kill", spool.path(), "arch").args([
            "-Z",
            "lz4",
            "-n",
            "-E",
            &end.to_string(),
        ]),
        Duration::from_secs(180),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    check_unchanged(bucket.contents("kill"));
    let (first, last) = span(start, end);
    assert_stored_identical(&pg, &bucket, "kill", ".lz4", first, last);
}

#[test]
fn store_outage_pauses_receiving_and_the_slot_holds_what_is_not_stored() {
    let Some(mut g) = garage(1) else { return };
    let pg = cluster(&[]);
    if !starts_at_the_slot() {
        return;
    }
    let bucket = Bucket::new(&g);
    let start = archiver_and_holding_slots(&pg, "arch");
    let spool = TempDir::new("outage-spool");
    let port = free_port();
    let mut arch = Background::spawn(
        archiver_cmd(&pg, &g, "outage", spool.path(), "arch")
            .args(["--spool-max", "3", "-s", "1", "-v"])
            .args(["--metrics-listen", &format!("127.0.0.1:{port}")]),
    );
    arch.wait_until("streaming", Duration::from_secs(30), |e| {
        e.contains("starting log streaming")
    });
    pg.generate_wal(3 << 20).unwrap();
    let seg = seg1mb();
    let before = seg.segment_of(lsn(&pg, "SELECT pg_current_wal_insert_lsn()")) - 1;
    let name = seg.file_name(TimelineId(1), before);
    testenv::wait_for("the first uploads", Duration::from_secs(60), || {
        bucket.list("outage").contains_key(&name)
    })
    .unwrap();

    g.stop_all().unwrap();
    pg.generate_wal(8 << 20).unwrap();
    arch.wait_until("the pause", Duration::from_secs(60), |e| {
        e.contains("receiving pauses")
    });
    // Bounded: at most --spool-max complete segments wait.
    std::thread::sleep(Duration::from_secs(3));
    let waiting = complete_segments(spool.path());
    assert!(
        waiting.len() <= 3 && !waiting.is_empty(),
        "waiting in the spool: {waiting:?}"
    );
    // The slot is not told of anything the store does not hold.
    let oldest = seg.parse_file_name(&waiting[0]).unwrap().1;
    let flushed = lsn(
        &pg,
        "SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'arch'",
    );
    assert!(
        flushed <= seg.segment_start(oldest).unwrap(),
        "slot at {flushed}, but segment {} is not stored",
        waiting[0]
    );
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        complete_segments(spool.path()).len() <= 3,
        "the spool grew past --spool-max"
    );
    // The metrics say so: segments waiting, retries, what is not in the store.
    let m = scrape(port).expect("metrics");
    let waiting_now = complete_segments(spool.path()).len() as f64;
    assert_eq!(
        metric(&m, "pgwal_recv_upload_waiting_segments"),
        waiting_now,
        "{m:?}"
    );
    assert!(
        metric(&m, "pgwal_recv_upload_retries_total") >= 1.0,
        "{m:?}"
    );
    assert!(
        metric(&m, "pgwal_recv_upload_lag_bytes") >= waiting_now * f64::from(MB),
        "{m:?}"
    );

    g.start_all().unwrap();
    pg.switch_wal().unwrap();
    let end = lsn(&pg, "SELECT pg_current_wal_flush_lsn()");
    let (first, last) = span(start, end);
    let last_name = seg.file_name(TimelineId(1), last);
    testenv::wait_for("the catch-up", Duration::from_secs(120), || {
        bucket.list("outage").contains_key(&last_name)
    })
    .unwrap();
    // The last upload is counted once its spool file is gone, just after the store has it.
    testenv::wait_for("the upload count", Duration::from_secs(10), || {
        scrape(port).is_some_and(|m| {
            metric(&m, "pgwal_recv_uploaded_files_total") >= (last - first + 1) as f64
                && metric(&m, "pgwal_recv_upload_waiting_segments") == 0.0
        })
    })
    .unwrap();
    let err = arch.stderr();
    assert!(err.contains("uploads caught up"), "{err}");
    assert!(err.contains("trying again"), "{err}");
    arch.signal("INT");
    let (code, err) = arch.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{err}");
    assert_stored_identical(&pg, &bucket, "outage", "", first, last);
}

#[test]
fn one_of_three_nodes_lost_does_not_stop_archiving() {
    let Some(mut g) = garage(3) else { return };
    let pg = cluster(&[]);
    if !starts_at_the_slot() {
        return;
    }
    let bucket = Bucket::new(&g);
    let start = archiver_and_holding_slots(&pg, "arch");
    let spool = TempDir::new("node-spool");
    let mut arch = Background::spawn(
        archiver_cmd(&pg, &g, "nodes", spool.path(), "arch").args(["-Z", "gzip", "-v"]),
    );
    arch.wait_until("streaming", Duration::from_secs(30), |e| {
        e.contains("starting log streaming")
    });
    pg.generate_wal(4 << 20).unwrap();
    g.kill_node(2).unwrap();
    pg.generate_wal(6 << 20).unwrap();
    pg.switch_wal().unwrap();
    let seg = seg1mb();
    let mid = lsn(&pg, "SELECT pg_current_wal_flush_lsn()");
    let mid_name = format!(
        "{}.gz",
        seg.file_name(TimelineId(1), seg.segment_of(mid) - 1)
    );
    let began = Instant::now();
    testenv::wait_for("uploads with a node down", Duration::from_secs(90), || {
        bucket.list("nodes").contains_key(&mid_name)
    })
    .unwrap();
    eprintln!("stored with a node down in {:?}", began.elapsed());
    g.start_node(2).unwrap();
    pg.generate_wal(3 << 20).unwrap();
    pg.switch_wal().unwrap();
    let end = lsn(&pg, "SELECT pg_current_wal_flush_lsn()");
    let (first, last) = span(start, end);
    let last_name = format!("{}.gz", seg.file_name(TimelineId(1), last));
    testenv::wait_for("the rest", Duration::from_secs(90), || {
        bucket.list("nodes").contains_key(&last_name)
    })
    .unwrap();
    arch.signal("INT");
    let (code, err) = arch.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{err}");
    assert_stored_identical(&pg, &bucket, "nodes", ".gz", first, last);
}

#[test]
fn upload_partial_puts_the_open_segment_where_restore_finds_it() {
    let Some(g) = garage(1) else { return };
    let pg = cluster(&[]);
    if !starts_at_the_slot() {
        return;
    }
    let bucket = Bucket::new(&g);
    archiver_and_holding_slots(&pg, "arch");
    let spool = TempDir::new("partial-spool");
    let mut arch = Background::spawn(archiver_cmd(&pg, &g, "part", spool.path(), "arch").args([
        "--upload-partial",
        "1",
        "-v",
    ]));
    arch.wait_until("streaming", Duration::from_secs(30), |e| {
        e.contains("starting log streaming")
    });
    pg.sql("CREATE TABLE p (x int); INSERT INTO p SELECT generate_series(1, 1000)")
        .unwrap();
    let at = lsn(&pg, "SELECT pg_current_wal_flush_lsn()");
    let seg = seg1mb();
    let name = seg.file_name(TimelineId(1), seg.segment_of(at));
    let partial = format!("{name}.partial");
    testenv::wait_for("the .partial snapshot", Duration::from_secs(30), || {
        bucket.list("part").contains_key(&partial)
    })
    .unwrap();
    // The snapshot holds the WAL up to `at` (the server's own file, up to there).
    testenv::wait_for(
        "a snapshot past the insert",
        Duration::from_secs(30),
        || {
            let ours = bucket.get("part", &partial);
            let theirs = pg.wal_file(&name).unwrap();
            let upto = seg.offset_of(at) as usize;
            ours.len() == theirs.len() && ours[..upto] == theirs[..upto]
        },
    )
    .unwrap();
    let dest = TempDir::new("partial-dest");
    let to = dest.path().join(&name);
    let out = run(
        with_store(bin(), &g)
            .args(["restore", "--partial", "-D", &g.url("part"), &name])
            .arg(&to),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Once the segment completes, its snapshot leaves the store.
    pg.switch_wal().unwrap();
    pg.sql("SELECT 1").unwrap();
    testenv::wait_for("the complete segment", Duration::from_secs(30), || {
        let l = bucket.list("part");
        l.contains_key(&name) && !l.contains_key(&partial)
    })
    .unwrap();
    drop(arch);
}

#[test]
fn cleanup_prunes_the_store() {
    let Some(g) = garage(1) else { return };
    let pg = cluster(&[]);
    if !starts_at_the_slot() {
        return;
    }
    let bucket = Bucket::new(&g);
    let start = archiver_and_holding_slots(&pg, "arch");
    pg.generate_wal(6 << 20).unwrap();
    pg.switch_wal().unwrap();
    let end = lsn(&pg, "SELECT pg_current_wal_flush_lsn()");
    let spool = TempDir::new("cleanup-spool");
    let out = run(
        archiver_cmd(&pg, &g, "clean", spool.path(), "arch").args([
            "-Z",
            "gzip",
            "-n",
            "-E",
            &end.to_string(),
        ]),
        Duration::from_secs(120),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (first, last) = span(start, end);
    let seg = seg1mb();
    let keep = seg.file_name(TimelineId(1), first + 3);
    let out = run(
        with_store(bin(), &g).args(["cleanup", "-D", &g.url("clean"), "--keep-from", &keep]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listed = bucket.list("clean");
    for segno in first..=last {
        let name = format!("{}.gz", seg.file_name(TimelineId(1), segno));
        assert_eq!(
            listed.contains_key(&name),
            segno >= first + 3,
            "{name}: {listed:?}"
        );
    }
}

#[test]
fn with_an_empty_spool_streaming_resumes_after_the_store_s_newest_segment() {
    let Some(g) = garage(1) else { return };
    let pg = cluster(&[]);
    if !starts_at_the_slot() {
        return;
    }
    let bucket = Bucket::new(&g);
    let start = archiver_and_holding_slots(&pg, "arch");
    pg.generate_wal(3 << 20).unwrap();
    pg.switch_wal().unwrap();
    let end = lsn(&pg, "SELECT pg_current_wal_flush_lsn()");
    let spool = TempDir::new("resume-spool");
    let out = run(
        archiver_cmd(&pg, &g, "resume", spool.path(), "arch").args(["-n", "-E", &end.to_string()]),
        Duration::from_secs(120),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The server moves on; a new spool, and no slot: only the store says where to resume.
    pg.generate_wal(3 << 20).unwrap();
    pg.switch_wal().unwrap();
    let end2 = lsn(&pg, "SELECT pg_current_wal_flush_lsn()");
    let fresh = TempDir::new("resume-spool2");
    let mut cmd = with_store(bin(), &g);
    cmd.args(["-D", &g.url("resume"), "--spool", &fresh.arg(), "-v", "-n"])
        .args(["-E", &end2.to_string(), "-d", &conninfo(&pg)]);
    let out = run(&mut cmd, Duration::from_secs(120));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(streaming_start(&err), Some(end), "{err}");
    let (first, _) = span(start, end);
    let (_, last) = span(start, end2);
    assert_stored_identical(&pg, &bucket, "resume", "", first, last);
}

#[test]
fn follows_a_promotion_history_and_the_old_timeline_s_partial_go_to_the_store() {
    let Some(g) = garage(1) else { return };
    let primary = cluster(&[]);
    let standby = primary.make_standby("sb").unwrap();
    let bucket = Bucket::new(&g);
    let seg = seg1mb();
    let (tl1, tl2) = (TimelineId(1), TimelineId(2));
    let spool = TempDir::new("promote-spool");
    let mut cmd = with_store(bin(), &g);
    cmd.args(["-D", &g.url("tl"), "--spool", &spool.arg(), "-v"])
        .args(["-d", &conninfo(&standby)]);
    let mut ar = Background::spawn(&mut cmd);
    let mut start = Lsn(0);
    ar.wait_until("streaming to start", Duration::from_secs(20), |e| {
        streaming_start(e).map(|l| start = l).is_some()
    });
    let first = seg.segment_of(start);
    primary.generate_wal(3 << 20).unwrap();
    primary.switch_wal().unwrap();
    let boundary = lsn(&primary, "SELECT pg_current_wal_lsn()");
    let name = seg.file_name(tl1, seg.segment_of(boundary) - 1);
    testenv::wait_for(
        "a timeline 1 segment in the store",
        Duration::from_secs(30),
        || bucket.list("tl").contains_key(&name),
    )
    .unwrap();
    // The switch point in the middle of a segment.
    primary.generate_wal(200 << 10).unwrap();
    primary.stop().unwrap();
    standby.promote().unwrap();
    standby.generate_wal(2 << 20).unwrap();
    standby.switch_wal().unwrap();
    let end = lsn(&standby, "SELECT pg_current_wal_lsn()");
    let last = seg.segment_of(end) - 1;
    let name = seg.file_name(tl2, last);
    testenv::wait_for(
        "the last timeline 2 segment",
        Duration::from_secs(30),
        || bucket.list("tl").contains_key(&name),
    )
    .unwrap();
    ar.signal("INT");
    let (code, err) = ar.wait(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("switched to timeline 2"), "{err}");

    let history = tl2.history_file_name();
    let theirs = standby.wal_file(&history).unwrap();
    assert!(bucket.get("tl", &history) == theirs, "{history} differs");
    let text = String::from_utf8(theirs).unwrap();
    let line = text.lines().find(|l| l.starts_with('1')).unwrap();
    let switch: Lsn = line.split('\t').nth(1).unwrap().parse().unwrap();
    let s = seg.segment_of(switch);
    // Timeline 1's last segment is in the store as .partial, the server's bytes up to the
    // switch, and gone from the spool.
    let partial = format!("{}.partial", seg.file_name(tl1, s));
    let ours = bucket.get("tl", &partial);
    let theirs = standby
        .wal_file(&seg.file_name(tl1, s))
        .or_else(|_| standby.wal_file(&partial))
        .unwrap();
    let upto = seg.offset_of(switch) as usize;
    assert!(
        ours[..upto] == theirs[..upto],
        "{partial} differs before {switch}"
    );
    assert!(
        !has_file(spool.path(), &partial),
        "{partial} left in the spool"
    );
    for segno in first..s {
        let n = seg.file_name(tl1, segno);
        assert!(bucket.get("tl", &n) == standby.wal_file(&n).unwrap(), "{n}");
    }
    for segno in s..=last {
        let n = seg.file_name(tl2, segno);
        assert!(bucket.get("tl", &n) == standby.wal_file(&n).unwrap(), "{n}");
    }
    // verify reads it across the switch.
    let out = run(
        with_store(bin(), &g).args(["verify", "-D", &g.url("tl")]),
        Duration::from_secs(60),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
}
