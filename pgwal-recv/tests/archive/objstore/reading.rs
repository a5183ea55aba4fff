//! What the store holds, and the commands that read it.

use std::time::Duration;

use pgwire_repl::{Lsn, TimelineId};
use testenv::{CloneMethod, RecoveryMode};

use super::*;
use crate::common::*;
use crate::monitoring::free_port;

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
    let arch =
        streaming(archiver_cmd(&pg, &g, "pitr", spool.path(), "arch").args(["-Z", "zstd", "-v"]));
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

#[test]
fn upload_partial_puts_the_open_segment_where_restore_finds_it() {
    upload_partial(&[], "");
}

/// The same with zstd: a snapshot is a flushed stream without its end, which restore takes
/// as far as it decodes.
#[test]
fn upload_partial_with_zstd_is_restored_as_far_as_it_decodes() {
    upload_partial(&["-Z", "zstd"], ".zst");
}

fn upload_partial(extra: &[&str], suffix: &str) {
    let Some(g) = garage(1) else { return };
    let pg = cluster(&[]);
    if !starts_at_the_slot() {
        return;
    }
    let bucket = Bucket::new(&g);
    archiver_and_holding_slots(&pg, "arch");
    let spool = TempDir::new("partial-spool");
    let arch = streaming(
        archiver_cmd(&pg, &g, "part", spool.path(), "arch")
            .args(["--upload-partial", "1", "-v"])
            .args(extra),
    );
    pg.sql("CREATE TABLE p (x int); INSERT INTO p SELECT generate_series(1, 1000)")
        .unwrap();
    let at = lsn(&pg, "SELECT pg_current_wal_flush_lsn()");
    let seg = seg1mb();
    let name = seg.file_name(TimelineId(1), seg.segment_of(at));
    let partial = format!("{name}{suffix}.partial");
    let upto = seg.offset_of(at) as usize;
    // A snapshot holding the WAL up to `at` (the server's own file, up to there).
    testenv::wait_for(
        "a snapshot past the insert",
        Duration::from_secs(30),
        || {
            if !bucket.list("part").contains_key(&partial) {
                return false;
            }
            let ours = decompress_prefix(&partial, &bucket.get("part", &partial));
            let theirs = pg.wal_file(&name).unwrap();
            ours.len() >= upto && ours[..upto] == theirs[..upto]
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
    let restored = std::fs::read(&to).unwrap();
    assert_eq!(restored.len(), MB as usize);
    assert!(restored[..upto] == pg.wal_file(&name).unwrap()[..upto]);
    // Once the segment completes, its snapshot leaves the store.
    pg.switch_wal().unwrap();
    pg.sql("SELECT 1").unwrap();
    let complete = format!("{name}{suffix}");
    testenv::wait_for("the complete segment", Duration::from_secs(30), || {
        let l = bucket.list("part");
        l.contains_key(&complete) && !l.contains_key(&partial)
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
    archive_to_end(
        &pg,
        &g,
        ("clean", spool.path(), "arch"),
        end,
        &["-Z", "gzip"],
    );
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
    archive_to_end(&pg, &g, ("resume", spool.path(), "arch"), end, &[]);
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
    // lz4, and snapshots of the open segment: the timeline's last .partial is one of them
    // until the switch, then final.
    cmd.args(["-D", &g.url("tl"), "--spool", &spool.arg(), "-v"])
        .args(["-Z", "lz4", "--upload-partial", "1"])
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
    let name = format!("{}.lz4", seg.file_name(tl1, seg.segment_of(boundary) - 1));
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
    let name = format!("{}.lz4", seg.file_name(tl2, last));
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
    let partial = format!("{}.lz4.partial", seg.file_name(tl1, s));
    // A finished stream, not a snapshot.
    let ours = decompress(&partial, &bucket.get("tl", &partial));
    let theirs = standby
        .wal_file(&seg.file_name(tl1, s))
        .or_else(|_| standby.wal_file(&format!("{}.partial", seg.file_name(tl1, s))))
        .unwrap();
    let upto = seg.offset_of(switch) as usize;
    assert!(
        ours.len() >= upto && ours[..upto] == theirs[..upto],
        "{partial} ({} bytes) differs before {switch}:\n{err}",
        ours.len()
    );
    let left: Vec<_> = std::fs::read_dir(spool.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&seg.file_name(tl1, s)))
        .collect();
    assert!(left.is_empty(), "left in the spool: {left:?}");
    for (tli, range) in [(tl1, first..s), (tl2, s..last + 1)] {
        for segno in range {
            let n = format!("{}.lz4", seg.file_name(tli, segno));
            let ours = decompress(&n, &bucket.get("tl", &n));
            assert!(ours == standby.wal_file(&n[..24]).unwrap(), "{n}");
        }
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
