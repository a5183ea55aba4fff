//! A full disk: the archiver reports it naming the file, leaves no short `.partial`, keeps
//! retrying, and finishes by itself once space returns.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pgwire_repl::TimelineId;

use crate::common::*;

/// A tmpfs mounted on a directory, unmounted on drop (also when the test panics).
struct Tmpfs<'a>(&'a Path);

impl<'a> Tmpfs<'a> {
    fn mount(dir: &'a Path, size: &str) -> Result<Tmpfs<'a>, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Tmpfs(dir))
    }

    fn resize(&self, size: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.0)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "remount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tmpfs<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).status();
    }
}

/// Asserts that no `.partial` in `dir` is short, and that every complete segment equals the
/// server's. Returns the complete segments.
fn check_archive(pg: &testenv::Cluster, dir: &Path, when: &str) -> Vec<String> {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".partial") {
            let size = e.metadata().unwrap().len();
            assert_eq!(size, u64::from(MB), "{when}: {name} has {size} bytes");
        }
    }
    let complete = complete_segments(dir);
    for name in &complete {
        let ours = std::fs::read(dir.join(name)).unwrap();
        assert!(
            ours == pg.wal_file(name).unwrap(),
            "{when}: {name} differs from the server's"
        );
    }
    complete
}

#[test]
fn disk_full_then_space_returns() {
    if !starts_at_the_slot() {
        return;
    }
    let dir = TempDir::new("diskfull");
    let fs = match Tmpfs::mount(dir.path(), "5m") {
        Ok(fs) => fs,
        Err(e) => {
            testenv::skip(format_args!("cannot mount a tmpfs: {e}"));
            return;
        }
    };
    let pg = cluster(&[]);
    let start = archiver_and_holding_slots(&pg, "arch");
    pg.generate_wal(12 << 20).unwrap();
    pg.switch_wal().unwrap();
    let end = lsn(&pg, "SELECT pg_current_wal_flush_lsn()");
    let seg = seg1mb();
    let (first, last) = (seg.segment_of(start), seg.segment_of(end) - 1);
    assert!(last - first >= 11, "only {} segments", last - first + 1);

    let mut child = bin()
        .args(["-D", &dir.arg(), "-S", "arch", "-E", &end.to_string()])
        .args(["-d", &conninfo(&pg)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pgwal-recv");
    let (tx, rx) = mpsc::channel::<String>();
    let pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let next_line = |limit: Duration, seen: &mut String| -> Option<String> {
        let line = rx.recv_timeout(limit).ok()?;
        seen.push_str(&line);
        seen.push('\n');
        Some(line)
    };

    // The disk fills up: one error naming the file, then a retry in 5 seconds.
    let began = Instant::now();
    let full_line = loop {
        let left = Duration::from_secs(30).saturating_sub(began.elapsed());
        match next_line(left, &mut seen) {
            Some(l) if l.contains("No space left on device") => break l,
            Some(_) => {}
            None => {
                let _ = child.kill();
                panic!("no \"No space left on device\" within 30 s; stderr:\n{seen}");
            }
        }
    };
    // Checked at once: the next attempt is 5 seconds away.
    let complete = check_archive(&pg, dir.path(), "disk full");
    assert!(
        complete.len() >= 3,
        "only {} segments fit in 5 MB",
        complete.len()
    );
    let quoted = full_line
        .split('"')
        .nth(1)
        .unwrap_or_else(|| panic!("the error names no file: {full_line}"));
    let named = Path::new(quoted);
    let file_name = named.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(named.parent(), Some(dir.path()), "{full_line}");
    let (_, segno) = seg
        .parse_file_name(&file_name[..24.min(file_name.len())])
        .unwrap_or_else(|| panic!("not a segment file: {full_line}"));
    assert_eq!(
        segno,
        first + complete.len() as u64,
        "the file after the complete ones: {full_line}"
    );
    assert!(full_line.starts_with("pgwal-recv: error: "), "{full_line}");
    assert!(!full_line.contains("os error"), "{full_line}");
    let retry = next_line(Duration::from_secs(3), &mut seen);
    assert_eq!(
        retry.as_deref(),
        Some("pgwal-recv: disconnected; waiting 5 seconds to try again"),
        "stderr:\n{seen}"
    );
    assert!(child.try_wait().unwrap().is_none(), "stderr:\n{seen}");

    // Space returns: the next attempt carries on to the end position and exits 0.
    fs.resize("64m");
    let began = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if began.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            while next_line(Duration::from_millis(100), &mut seen).is_some() {}
            panic!("not finished 30 s after space returned; stderr:\n{seen}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    reader.join().unwrap();
    while next_line(Duration::ZERO, &mut seen).is_some() {}
    eprintln!("archiver's stderr:\n{seen}");
    assert_eq!(status.code(), Some(0), "stderr:\n{seen}");
    assert!(!seen.contains("panicked"), "{seen}");
    check_archive(&pg, dir.path(), "after space returned");
    assert_identical_to_server(&pg, dir.path(), TimelineId(1), first, last);
    drop(fs);
}
