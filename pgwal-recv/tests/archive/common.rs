//! Helpers: running the built binary, private directories, comparing the archive with the
//! server's own pg_wal.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use pgwire_repl::{Lsn, TimelineId, WalSegmentSize};
use testenv::{Cluster, Options};

pub const MB: u32 = 1 << 20;

/// The archiver binary, with no PG* variables from the caller's environment.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pgwal-recv"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PG") {
            c.env_remove(k);
        }
    }
    c.stdin(Stdio::null());
    c
}

/// Runs to completion with a time limit; kills and fails the test past it.
pub fn run(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pgwal-recv");
    wait_output(child, limit)
}

pub fn wait_output(mut child: Child, limit: Duration) -> Output {
    let began = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if began.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "timed out after {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The JSON object on the last line of stdout (`--json`); fails the test without one.
pub fn last_json(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("");
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last:?}\n{}", stderr(out)))
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A directory of its own for one test, removed on drop. tempfile makes it as `mkdir` does
/// (0777 less the umask), as the hand-made one was.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("pgwal-recv-test-{what}-"))
            .tempdir()
            .unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn arg(&self) -> String {
        self.path().display().to_string()
    }
}

/// A cluster with 1 MB segments and the given extra settings.
pub fn cluster(extra: &[&str]) -> Cluster {
    let mut o = Options::default();
    for l in extra {
        o = o.conf(*l);
    }
    Cluster::start(o).unwrap_or_else(|e| panic!("could not start PostgreSQL: {e}"))
}

/// Whether the archiver, given an empty directory, starts at its slot's `restart_lsn`: only
/// from PostgreSQL 15 (READ_REPLICATION_SLOT); before, it starts at the server's current
/// position, as pg_receivewal does. Tests that rely on it call this first and return when it
/// is false: on 13 and 14 they fail, or say SKIPPED where `PGWIRE_REPL_ALLOW_SKIP=1`.
#[track_caller]
pub fn starts_at_the_slot() -> bool {
    let version = testenv::PgBin::get().unwrap().version();
    if version < 15 {
        testenv::skip(format_args!(
            "on PostgreSQL {version}, from an empty directory the archiver starts at the \
             server's position: at the slot's restart_lsn only on 15+ (READ_REPLICATION_SLOT)"
        ));
    }
    version >= 15
}

/// The conninfo of the trust replication role.
pub fn conninfo(pg: &Cluster) -> String {
    pg.conninfo(testenv::roles::REPL_TRUST.name, None)
}

pub fn lsn(pg: &Cluster, sql: &str) -> Lsn {
    pg.sql(sql).unwrap().trim().parse().unwrap()
}

/// Creates slot `name` for the archiver and a slot `hold` that nobody advances, so every
/// segment stays in pg_wal for comparison; returns where `name` starts.
pub fn archiver_and_holding_slots(pg: &Cluster, name: &str) -> Lsn {
    pg.create_physical_slot(name).unwrap();
    pg.create_physical_slot("hold").unwrap();
    lsn(
        pg,
        &format!("SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = '{name}'"),
    )
}

pub fn seg1mb() -> WalSegmentSize {
    WalSegmentSize::new(MB).unwrap()
}

/// Complete segment files (24-hex names, no suffix) in `dir`, sorted.
pub fn complete_segments(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 24 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    v.sort();
    v
}

/// Asserts every complete segment of `tli` in `dir` equals the server's file, and that they
/// run without a gap from `first` to `last` (segment numbers). Returns how many.
pub fn assert_identical_to_server(
    pg: &Cluster,
    dir: &Path,
    tli: TimelineId,
    first: u64,
    last: u64,
) -> usize {
    let seg = seg1mb();
    let mut n = 0;
    for segno in first..=last {
        let name = seg.file_name(tli, segno);
        let ours = std::fs::read(dir.join(&name))
            .unwrap_or_else(|e| panic!("segment {name} missing from the archive: {e}"));
        let theirs = pg.wal_file(&name).unwrap();
        assert!(ours == theirs, "segment {name} differs from the server's");
        n += 1;
    }
    n
}

/// An archiver running in the background, its stderr going to a file that can be read while
/// it runs. Killed on drop (also when the test fails).
pub struct Background {
    child: Option<Child>,
    log: PathBuf,
    _logdir: TempDir,
}

impl Background {
    pub fn spawn(cmd: &mut Command) -> Background {
        let logdir = TempDir::new("stderr");
        let log = logdir.path().join("stderr");
        let file = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn pgwal-recv");
        Background {
            child: Some(child),
            log,
            _logdir: logdir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Sends `sig` (`"INT"`, `"TERM"`) with kill(1).
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -{sig} {} failed", self.pid());
    }

    /// Polls `cond` (given stderr so far) until it holds; fails the test, showing stderr,
    /// after `limit` or if the archiver exits meanwhile.
    pub fn wait_until(&mut self, what: &str, limit: Duration, mut cond: impl FnMut(&str) -> bool) {
        let began = Instant::now();
        loop {
            if cond(&self.stderr()) {
                return;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "pgwal-recv exited ({st}) while waiting for {what}; stderr:\n{}",
                    self.stderr()
                );
            }
            if began.elapsed() > limit {
                panic!(
                    "timed out after {limit:?} waiting for {what}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the archiver to exit; kills it and fails the test past `limit`.
    /// Returns the exit code (None if killed by a signal) and stderr.
    pub fn wait(mut self, limit: Duration) -> (Option<i32>, String) {
        let mut child = self.child.take().unwrap();
        let began = Instant::now();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return (st.code(), self.stderr());
            }
            if began.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "pgwal-recv still running {limit:?} later; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The position of the last `starting log streaming at X/Y` line of a `-v` stderr.
pub fn streaming_start(stderr: &str) -> Option<Lsn> {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("starting log streaming at "))?;
    let rest = line.split("starting log streaming at ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// Whether `dir` holds the file `name`.
pub fn has_file(dir: &Path, name: &str) -> bool {
    dir.join(name).is_file()
}

/// An archive of about 8 segments of WAL with full-page images in it (a checkpoint in the
/// middle of the writes), made by pgwal-recv with `extra` options; returns the first and
/// last complete segment numbers.
pub fn make_archive(pg: &Cluster, dir: &Path, slot: &str, extra: &[&str]) -> (u64, u64) {
    pg.create_physical_slot(slot).unwrap();
    let start = lsn(
        pg,
        &format!("SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'"),
    );
    pg.generate_wal(4 << 20).unwrap();
    pg.sql("CHECKPOINT").unwrap();
    pg.generate_wal(4 << 20).unwrap();
    pg.switch_wal().unwrap();
    let end = lsn(pg, "SELECT pg_current_wal_flush_lsn()");
    let seg = seg1mb();
    let first = seg.segment_of(start);
    if pg.version() < 15 {
        // Before 15 the archiver cannot start at the slot (no READ_REPLICATION_SLOT): give
        // it the first segment, after which it resumes.
        let name = seg.file_name(TimelineId(1), first);
        std::fs::write(dir.join(&name), pg.wal_file(&name).unwrap()).unwrap();
    }
    let out = run(
        bin()
            .args(["-D", &dir.display().to_string(), "-S", slot, "-n"])
            .args(["-E", &end.to_string(), "-d", &conninfo(pg)])
            .args(extra),
        Duration::from_secs(120),
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    (first, seg.segment_of(end) - 1)
}
