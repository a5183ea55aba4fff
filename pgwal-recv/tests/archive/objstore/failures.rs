//! Crashes, outages, a lost node, a name taken by other bytes.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pgwire_repl::TimelineId;

use super::*;
use crate::common::*;
use crate::monitoring::{free_port, metric, scrape};

#[test]
fn an_object_with_other_bytes_is_never_overwritten() {
    let Some(g) = garage(1) else { return };
    let pg = cluster(&[]);
    if !starts_at_the_slot() {
        return;
    }
    let bucket = Bucket::new(&g);
    let start = archiver_and_holding_slots(&pg, "arch");
    pg.create_physical_slot("archz").unwrap();
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
    archive_to_end(&pg, &g, ("wal", spool.path(), "arch"), end, &[]);
    let (a, b) = span(start, end);
    assert_stored_identical(&pg, &bucket, "wal", "", a, b);

    // Compressed, the same WAL need not be the same bytes (another level, other flushes):
    // an object that decompresses to the segment counts as stored, and stays as it is.
    let other = zstd::encode_all(&pg.wal_file(&first).unwrap()[..], 19).unwrap();
    let zfirst = format!("{first}.zst");
    bucket.put("walz", &zfirst, other.clone());
    let spool = TempDir::new("conflict-z");
    archive_to_end(
        &pg,
        &g,
        ("walz", spool.path(), "archz"),
        end,
        &["-Z", "zstd"],
    );
    assert!(
        bucket.get("walz", &zfirst) == other,
        "{zfirst} was overwritten"
    );
    assert_stored_identical(&pg, &bucket, "walz", ".zst", a, b);
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
        // Killed at random moments (from the clock; printed, to replay a failure).
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let delays: Vec<u64> = (0..3u32)
            .map(|i| 300 + u64::from(seed.rotate_left(i * 11) % 2200))
            .collect();
        eprintln!("SIGKILL after {delays:?} ms");
        for delay_ms in delays {
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
    let mut arch = streaming(
        archiver_cmd(&pg, &g, "outage", spool.path(), "arch")
            .args(["--spool-max", "3", "-s", "1", "-v"])
            .args(["--metrics-listen", &format!("127.0.0.1:{port}")]),
    );
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
    let arch =
        streaming(archiver_cmd(&pg, &g, "nodes", spool.path(), "arch").args(["-Z", "gzip", "-v"]));
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
fn a_missing_bucket_or_a_refused_key_ends_the_archiver_at_once() {
    let Some(g) = garage(1) else { return };
    let pg = cluster(&[]);
    let spool = TempDir::new("probe-spool");
    let run_with = |url: &str, key: Option<&str>| {
        let mut cmd = with_store(bin(), &g);
        if let Some(k) = key {
            cmd.env("AWS_SECRET_ACCESS_KEY", k);
        }
        cmd.args([
            "-D",
            url,
            "--spool",
            &spool.arg(),
            "-n",
            "-d",
            &conninfo(&pg),
        ]);
        run(&mut cmd, Duration::from_secs(60))
    };
    let out = run_with("s3://no-such-bucket/wal", None);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("pgwal-recv: error: could not use archive \"s3://no-such-bucket/wal\": "),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let out = run_with(&g.url("wal"), Some("not-the-secret"));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("could not use archive"), "{err}");
    assert!(!err.contains(g.secret_access_key()), "{err}");
}
