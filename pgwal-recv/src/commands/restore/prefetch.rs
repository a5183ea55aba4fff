//! `restore --prefetch N`: the segments after the one asked for, restored ahead of time by a
//! background process while PostgreSQL replays, as pgBackRest's asynchronous archive-get and
//! WAL-G's prefetch do.
//!
//! The spool is the directory [`SPOOL_DIR`] beside DEST (in `pg_wal`, so that a spooled
//! segment reaches DEST by a rename). Each restore that finds its segment there renames it to
//! DEST, removes spooled segments older than it, and starts a worker: a detached
//! `pgwal-recv restore --prefetch-worker` that restores the next N segments of the same
//! timeline into the spool, each decompressed and checked exactly as a restore does, under a
//! temporary name, renamed when whole. One worker at a time (a lock in the spool); a worker
//! stops at the first segment the archive lacks or that fails its check, which the restore
//! that asks for it then reports.
//!
//! Only for PostgreSQL's own recovery, which restores to `pg_wal/RECOVERYXLOG` and reads
//! the file from there. `pg_rewind --restore-target-wal` restores each segment under its
//! own name straight into the target's `pg_wal`, while it lists that directory and removes
//! what the source lacks: a spool changing there behind its back made it fail ("could not
//! remove file …", found by the test). So when DEST is named after the segment, prefetching
//! stands aside — no spool read, no worker — and the restore is a plain one.
//!
//! The spool holds at most N segments plus the one being written; what is left when
//! recovery ends can be removed with `recovery_end_command = 'rm -rf pg_wal/pgwal-recv-prefetch'`.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pgwire_repl::WalSegmentSize;
use rustix::fs::{flock, FlockOperation};

use super::check::LONG_HEADER;
use super::{find, system_id_beside, write_checked, Failure, Kind};
use crate::archive::{zfile, Archive};
use crate::cli::RestoreOptions;
use crate::output::os_error;

/// The spool's name, in DEST's directory.
pub const SPOOL_DIR: &str = "pgwal-recv-prefetch";
const LOCK: &str = ".lock";

/// The spool beside `dest`.
pub fn spool_of(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(SPOOL_DIR),
        _ => PathBuf::from(SPOOL_DIR),
    }
}

/// Whether `--prefetch` applies to this call: a segment restored for PostgreSQL's recovery
/// (DEST named otherwise than the segment; see the module docs).
pub fn applies(o: &RestoreOptions) -> bool {
    o.prefetch > 0
        && Kind::of(&o.walfile) == Some(Kind::Segment)
        && o.dest.file_name().is_some_and(|n| *n != *o.walfile)
}

/// If the spool holds `walfile`, moves it to `dest` (true). Spooled segments older than
/// `walfile` are removed either way: recovery has gone past them.
pub fn take(walfile: &str, dest: &Path) -> Result<bool, Failure> {
    let spool = spool_of(dest);
    let Ok(entries) = fs::read_dir(&spool) else {
        return Ok(false);
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        // Same segment size throughout: the log and segment parts order the names.
        if name.len() >= 24 && name != LOCK && name.get(8..24) < walfile.get(8..24) {
            let _ = fs::remove_file(e.path());
        }
    }
    match fs::rename(spool.join(walfile), dest) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Failure::Failed(format!(
            "could not rename file \"{}\" to \"{}\": {}",
            spool.join(walfile).display(),
            dest.display(),
            os_error(&e)
        ))),
    }
}

/// Starts a worker for the segments after `o.walfile`, detached: PostgreSQL waits only for
/// this process. Failing to start one only loses the head start.
pub fn start(o: &RestoreOptions) {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let _ = Command::new(exe)
        .arg("restore")
        .arg("-D")
        .arg(&o.directory)
        .arg(format!("--prefetch={}", o.prefetch))
        .arg("--prefetch-worker")
        .arg("--")
        .arg(&o.walfile)
        .arg(&o.dest)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
}

/// The worker: restores up to `o.prefetch` segments after `o.walfile` into the spool.
pub fn worker(o: &RestoreOptions) -> i32 {
    let spool = spool_of(&o.dest);
    if fs::DirBuilder::new().mode(0o700).create(&spool).is_err() && !spool.is_dir() {
        return 1;
    }
    let Ok(lock) = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(spool.join(LOCK))
    else {
        return 1;
    };
    if flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() {
        return 0; // another worker is at it
    }
    let Ok(archive) = Archive::open(&o.directory) else {
        return 1;
    };
    let Some(seg) = segment_size(&archive, &o.walfile) else {
        return 1;
    };
    let Some((tli, segno)) = seg.parse_file_name(&o.walfile) else {
        return 1;
    };
    let system_id = system_id_beside(&o.dest);
    for next in segno + 1..=segno + u64::from(o.prefetch) {
        let name = seg.file_name(tli, next);
        let dest = spool.join(&name);
        if dest.exists() {
            continue;
        }
        let Ok(found) = find(&archive, &name, Kind::Segment, false) else {
            break;
        };
        if write_checked(found, &name, Kind::Segment, system_id, &dest).is_err() {
            break;
        }
    }
    0
}

/// The segment size, from `walfile`'s first page header in the archive.
fn segment_size(archive: &Archive, walfile: &str) -> Option<WalSegmentSize> {
    let found = find(archive, walfile, Kind::Segment, false).ok()?;
    let mut r = zfile::reader(found.method, found.stored).ok()?;
    let mut head = [0u8; LONG_HEADER];
    r.read_exact(&mut head).ok()?;
    WalSegmentSize::new(u32::from_le_bytes([head[32], head[33], head[34], head[35]]))
}
