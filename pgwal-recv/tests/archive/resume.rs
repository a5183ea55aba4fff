//! Killed mid-segment (SIGKILL) again and again while WAL keeps coming, the archiver resumes
//! each time without a gap: an uncompressed `.partial` is never short, a complete segment
//! never changes or disappears, and the final archive equals the server's pg_wal.

use std::fs::File;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use pgwire_repl::TimelineId;

use crate::common::*;

/// Sets the flag when dropped, so that the WAL generator stops also when the test panics.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Every `.partial` in `dir`, with its size.
fn partials(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn sigkill_mid_segment_repeatedly_then_resume_without_gap() {
    let pg = cluster(&[]);
    let start = archiver_and_holding_slots(&pg, "arch");
    let seg = seg1mb();
    let first = seg.segment_of(start);
    let dir = TempDir::new("resume");
    let logs = TempDir::new("resume-logs");
    let log_path = logs.path().join("stderr");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let ci = conninfo(&pg);

    let stop = AtomicBool::new(false);
    let generated = AtomicU64::new(0);
    std::thread::scope(|s| {
        let _stop_guard = StopOnDrop(&stop);
        let generator = s.spawn(|| {
            // At most ~60 MB, 2 MB at a time, until told to stop.
            while !stop.load(Ordering::Relaxed) && generated.load(Ordering::Relaxed) < 60 << 20 {
                pg.generate_wal(2 << 20).unwrap();
                generated.fetch_add(2 << 20, Ordering::Relaxed);
            }
        });

        let delays_ms = [150, 700, 300, 550, 250, 450];
        let mut complete_before: Vec<String> = Vec::new();
        let mut grew = 0;
        let mut mid_segment = 0;
        for (i, delay) in delays_ms.into_iter().enumerate() {
            // First half with the default fsyncs, second half with --no-sync.
            let no_sync = i >= delays_ms.len() / 2;
            let err = File::options()
                .create(true)
                .append(true)
                .open(&log_path)
                .unwrap();
            let mut cmd = bin();
            cmd.args(["-D", &dir.arg(), "-S", "arch", "-d", &ci]);
            if no_sync {
                cmd.arg("--no-sync");
            }
            let mut child = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::from(err))
                .spawn()
                .expect("spawn pgwal-recv");
            std::thread::sleep(Duration::from_millis(delay));
            assert!(
                child.try_wait().unwrap().is_none(),
                "run {i} exited by itself; stderr:\n{}",
                log()
            );
            child.kill().unwrap();
            child.wait().unwrap();

            let partial_now = partials(dir.path());
            if !partial_now.is_empty() {
                mid_segment += 1;
            }
            for (name, size) in partial_now {
                assert_eq!(
                    size,
                    u64::from(MB),
                    "after kill {i} ({delay} ms, no_sync={no_sync}): {name} is short"
                );
            }
            // Complete segments are final: none disappears, none changes.
            let complete = complete_segments(dir.path());
            eprintln!(
                "kill {i} after {delay} ms (no_sync={no_sync}): {} complete, partial: {:?}",
                complete.len(),
                partials(dir.path())
            );
            for name in &complete_before {
                assert!(
                    complete.contains(name),
                    "after kill {i}: complete segment {name} disappeared"
                );
            }
            if complete.len() > complete_before.len() {
                grew += 1;
            }
            complete_before = complete;
        }
        assert!(
            grew >= 2,
            "the archiver completed segments in only {grew} of {} runs; stderr:\n{}",
            delays_ms.len(),
            log()
        );
        assert!(
            mid_segment >= 2,
            "only {mid_segment} kills left a segment half-written"
        );
        stop.store(true, Ordering::Relaxed);
        generator.join().unwrap();
    });
    assert!(
        !log().contains("panicked"),
        "stderr of the killed runs:\n{}",
        log()
    );

    // The final run must span at least 16 segments, however slowly the generator ran
    // beside the kills on a busy machine.
    while seg.segment_of(lsn(&pg, "SELECT pg_current_wal_flush_lsn()")) - first < 16 {
        pg.generate_wal(2 << 20).unwrap();
    }
    pg.switch_wal().unwrap();
    let end = lsn(&pg, "SELECT pg_current_wal_flush_lsn()");
    let last = seg.segment_of(end) - 1;
    assert!(
        last - first >= 15,
        "only {} segments of WAL",
        last - first + 1
    );
    // An empty .partial (as an older pg_receivewal may leave) is a state the next run must
    // recover from, starting that segment over: made certain here.
    let newest = partials(dir.path()).pop();
    if let Some((name, _)) = &newest {
        File::create(dir.path().join(name)).unwrap();
    }
    let out = run(
        bin().args([
            "-D",
            &dir.arg(),
            "-S",
            "arch",
            "-E",
            &end.to_string(),
            "-d",
            &ci,
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "final run; stderr: {}",
        stderr(&out)
    );
    let n = assert_identical_to_server(&pg, dir.path(), TimelineId(1), first, last);
    assert_eq!(n as u64, last - first + 1);
    for (name, _) in partials(dir.path()) {
        let (_, segno) = seg
            .parse_file_name(&name[..24])
            .unwrap_or_else(|| panic!("unexpected file {name}"));
        assert!(
            segno > last,
            "{name} is still partial, though its segment is complete"
        );
    }
}

/// The archiver's own promise (src/walfile.rs): an uncompressed `.partial` is "never short,
/// whatever instant the process dies at". Many archivers each stream the same ~30 MB from
/// their own slot, at full speed, and are killed at varied instants; none may leave a
/// `.partial` of any size but a full segment.
#[test]
fn sigkill_never_leaves_an_empty_partial() {
    const RUNS: usize = 40;
    let pg = cluster(&["max_replication_slots = 48"]);
    pg.create_physical_slot("hold").unwrap();
    for i in 0..RUNS {
        pg.create_physical_slot(&format!("s{i}")).unwrap();
    }
    pg.generate_wal(30 << 20).unwrap();
    let ci = conninfo(&pg);
    let mut empty = Vec::new();
    for i in 0..RUNS {
        let dir = TempDir::new("kill-at-creation");
        let mut cmd = bin();
        cmd.args(["-D", &dir.arg(), "-S", &format!("s{i}"), "-d", &ci]);
        if i % 2 == 1 {
            cmd.arg("--no-sync");
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn pgwal-recv");
        // 60 to ~260 ms: somewhere in the catch-up, while segments are created quickly.
        std::thread::sleep(Duration::from_millis(60 + (i as u64 * 23) % 200));
        child.kill().unwrap();
        child.wait().unwrap();
        let complete = complete_segments(dir.path()).len();
        for (name, size) in partials(dir.path()) {
            assert!(
                size == 0 || size == u64::from(MB),
                "run {i}: {name} has {size} bytes"
            );
            if size == 0 {
                empty.push(format!(
                    "run {i} ({} after {complete} complete segments): {name}",
                    if i % 2 == 1 { "--no-sync" } else { "fsync" }
                ));
            }
        }
    }
    assert!(
        empty.is_empty(),
        "{} of {RUNS} kills left an empty .partial:\n{}",
        empty.len(),
        empty.join("\n")
    );
}
