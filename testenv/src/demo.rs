//! The demo: the project's main job on a throwaway lab, in one command.
//!
//! A [`Lab`] comes up (primary + hot standby), pgbench writes on the primary (or, without a
//! pgbench, a loop of inserts), and pgwal-recv archives from the **standby** through a slot
//! of its own into the archive directory, with its live progress line and lag (`-v`) and
//! its metrics endpoint, which the demo scrapes every second for the summary. After the
//! duration: the archiver is stopped (SIGINT, exit 0), the summary printed (segments, bytes,
//! rate, max lag), and the lab removed; the archive stays.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::lab::Lab;
use crate::{Cluster, PgBin};

/// What the demo needs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The lab's directory (made and removed by the demo).
    pub lab_dir: PathBuf,
    /// Where the archive goes; emptied first if it holds only archive files.
    pub archive: PathBuf,
    pub duration: Duration,
    /// The pgwal-recv program.
    pub pgwal_recv: PathBuf,
    pub bin: PgBin,
    /// Print the archiver's own output (progress line, segments) as it runs.
    pub show_archiver: bool,
}

/// What the demo measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DemoSummary {
    /// Complete segments in the archive.
    pub segments: usize,
    /// WAL bytes the archiver received.
    pub bytes: u64,
    pub seconds: f64,
    pub max_lag_bytes: u64,
    pub max_lag_seconds: f64,
    /// Transactions pgbench reported (0 with the insert loop).
    pub transactions: u64,
    /// The archiver's exit code.
    pub archiver_exit: Option<i32>,
}

impl std::fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "archived {} complete segments, {:.1} MB of WAL in {:.1} s: {:.2} MB/s",
            self.segments,
            self.bytes as f64 / 1e6,
            self.seconds,
            self.bytes as f64 / 1e6 / self.seconds.max(1e-9)
        )?;
        write!(
            f,
            "max lag behind the standby: {:.1} kB, {:.3} s",
            self.max_lag_bytes as f64 / 1e3,
            self.max_lag_seconds
        )?;
        if self.transactions > 0 {
            write!(
                f,
                "\npgbench committed {} transactions meanwhile",
                self.transactions
            )?;
        }
        Ok(())
    }
}

const SLOT: &str = "demo_archiver";

/// Runs the demo; the lab is removed whatever happens.
pub fn run(o: &DemoOptions) -> Result<DemoSummary> {
    prepare_archive(&o.archive)?;
    say(format!(
        "starting a primary and a hot standby (PostgreSQL {})",
        o.bin.full_version()
    ));
    let lab = Lab::up(&o.lab_dir, o.bin.clone())?;
    let result = with_lab(o, &lab);
    say("removing the lab");
    let down = lab.down();
    let summary = result?;
    down?;
    Ok(summary)
}

fn say(msg: impl std::fmt::Display) {
    eprintln!("demo: {msg}");
}

/// The archive directory, emptied: it may hold only what an archiver writes.
fn prepare_archive(dir: &Path) -> Result<()> {
    if dir.exists() {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Error::with_source(format!("cannot read {}", dir.display()), e))?;
        for e in entries {
            let e =
                e.map_err(|e| Error::with_source(format!("cannot read {}", dir.display()), e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !is_archive_file(&name) {
                return Err(Error::new(format!(
                    "{} holds {name:?}, which is not an archive file: move it away or choose another --archive",
                    dir.display()
                )));
            }
        }
        std::fs::remove_dir_all(dir)
            .map_err(|e| Error::with_source(format!("cannot empty {}", dir.display()), e))?;
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::with_source(format!("cannot create {}", dir.display()), e))
}

/// A segment (with any suffix), a history file, or the archiver's lock.
fn is_archive_file(name: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if name == ".pgwal-recv.lock" {
        return true;
    }
    let (base, rest) = name.split_once('.').unwrap_or((name, ""));
    hex(base, 24) || (hex(base, 8) && matches!(rest, "history" | "history.tmp"))
}

fn with_lab(o: &DemoOptions, lab: &Lab) -> Result<DemoSummary> {
    let standby = lab.standby_conninfo();
    println!("primary: {}", lab.primary_conninfo());
    println!("standby: {standby}");
    let port = free_port()?;
    let created = Command::new(&o.pgwal_recv)
        .args([
            "--create-slot",
            "--if-not-exists",
            "-S",
            SLOT,
            "-d",
            &standby,
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::with_source(format!("cannot run {}", o.pgwal_recv.display()), e))?;
    if !created.status.success() {
        return Err(Error::new(format!(
            "pgwal-recv --create-slot failed: {}",
            String::from_utf8_lossy(&created.stderr).trim()
        )));
    }
    say(format!(
        "archiving from the standby into {} for {} s, under a write load on the primary",
        o.archive.display(),
        o.duration.as_secs()
    ));
    let mut archiver = Command::new(&o.pgwal_recv);
    archiver
        .args(["-D"])
        .arg(&o.archive)
        .args(["-S", SLOT, "-v", "--metrics-listen"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-d", &standby])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if !o.show_archiver {
        archiver.stderr(Stdio::null());
    }
    let archiver =
        Killed(archiver.spawn().map_err(|e| {
            Error::with_source(format!("cannot run {}", o.pgwal_recv.display()), e)
        })?);
    let began = Instant::now();
    let mut load = Load::start(lab.primary(), o.duration)?;
    let mut summary = DemoSummary::default();
    let mut last = None;
    while began.elapsed() < o.duration {
        std::thread::sleep(Duration::from_millis(500));
        load.step(lab.primary())?;
        if let Some(m) = scrape(port) {
            summary.max_lag_bytes = summary.max_lag_bytes.max(m.lag_bytes as u64);
            summary.max_lag_seconds = summary.max_lag_seconds.max(m.lag_seconds);
            last = Some(m);
        }
    }
    summary.transactions = load.finish()?;
    // Let the archiver catch up with the last of the load before stopping it.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(5) {
        match scrape(port) {
            Some(m) if m.lag_bytes == 0.0 => {
                last = Some(m);
                break;
            }
            Some(m) => last = Some(m),
            None => {}
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    summary.seconds = began.elapsed().as_secs_f64();
    summary.archiver_exit = archiver.interrupt()?;
    summary.bytes = last.map_or(0, |m| m.received_bytes as u64);
    summary.segments = count_segments(&o.archive)?;
    Ok(summary)
}

/// A child killed on drop, so an error on the way never leaves it running.
struct Killed(Child);

impl Killed {
    /// SIGINT, then its exit code (killed after 20 s).
    fn interrupt(mut self) -> Result<Option<i32>> {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let began = Instant::now();
        loop {
            if let Some(st) = self
                .0
                .try_wait()
                .map_err(|e| Error::with_source("wait", e))?
            {
                return Ok(st.code());
            }
            if began.elapsed() > Duration::from_secs(20) {
                return Err(Error::new("pgwal-recv did not stop within 20 s of SIGINT"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The write load: pgbench when there is one (any version works against any server), else
/// a loop of inserts through psql.
enum Load {
    Pgbench(Killed),
    Inserts,
}

impl Load {
    fn start(primary: &Cluster, duration: Duration) -> Result<Load> {
        let Ok(mut init) = primary.tool_command("pgbench") else {
            say("no pgbench here: the load is a loop of inserts");
            primary.sql("CREATE TABLE demo_load (id bigserial PRIMARY KEY, pad text)")?;
            return Ok(Load::Inserts);
        };
        let conn = pgbench_conn(primary);
        let out = init
            .args(["-i", "-q", "-s", "2"])
            .args(&conn)
            .output()
            .map_err(|e| Error::with_source("cannot run pgbench -i", e))?;
        if !out.status.success() {
            return Err(Error::new(format!(
                "pgbench -i failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let child = primary
            .tool_command("pgbench")?
            .args(["-n", "-c", "2", "-j", "2", "-T"])
            .arg(duration.as_secs().max(1).to_string())
            .args(&conn)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::with_source("cannot run pgbench", e))?;
        Ok(Load::Pgbench(Killed(child)))
    }

    /// One step of the insert loop (pgbench runs by itself).
    fn step(&mut self, primary: &Cluster) -> Result<()> {
        if let Load::Inserts = self {
            primary.sql(
                "INSERT INTO demo_load (pad) \
                 SELECT repeat(md5(g::text), 20) FROM generate_series(1, 2000) g",
            )?;
        }
        Ok(())
    }

    /// Waits for pgbench and returns its transaction count.
    fn finish(self) -> Result<u64> {
        let Load::Pgbench(mut child) = self else {
            return Ok(0);
        };
        let mut out = String::new();
        if let Some(mut s) = child.0.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        let _ = child.0.wait();
        Ok(out
            .lines()
            .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
            .and_then(|v| v.split('/').next())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0))
    }
}

fn pgbench_conn(primary: &Cluster) -> Vec<String> {
    vec![
        "-h".into(),
        primary.socket_dir().display().to_string(),
        "-p".into(),
        primary.port().to_string(),
        "-U".into(),
        primary.superuser().to_string(),
        "postgres".into(),
    ]
}

fn free_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::with_source("cannot pick a port for the metrics", e))
}

/// The few series the summary needs.
#[derive(Debug, Clone, Copy)]
struct Metrics {
    received_bytes: f64,
    lag_bytes: f64,
    lag_seconds: f64,
}

/// One scrape of pgwal-recv's metrics; `None` while it does not answer.
fn scrape(port: u16) -> Option<Metrics> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    // Read to the end: pgwal-recv keeps a connection open unless asked not to.
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let get = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
    };
    Some(Metrics {
        received_bytes: get("pgwal_recv_received_bytes_total")?,
        lag_bytes: get("pgwal_recv_lag_bytes")?,
        lag_seconds: get("pgwal_recv_lag_seconds")?,
    })
}

fn count_segments(dir: &Path) -> Result<usize> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::with_source(format!("cannot read {}", dir.display()), e))?;
    Ok(entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.len() == 24 && n.bytes().all(|b| b.is_ascii_hexdigit())
        })
        .count())
}

#[cfg(test)]
mod tests {
    #[test]
    fn archive_files() {
        for ok in [
            "000000010000000000000003",
            "000000010000000000000003.partial",
            "000000010000000000000003.gz",
            "000000020000000000000003.zst.partial",
            "00000002.history",
            ".pgwal-recv.lock",
        ] {
            assert!(super::is_archive_file(ok), "{ok}");
        }
        for bad in [
            "notes.txt",
            "00000001000000000000000",
            "0000000100000000000000zz",
            "",
        ] {
            assert!(!super::is_archive_file(bad), "{bad}");
        }
    }
}
