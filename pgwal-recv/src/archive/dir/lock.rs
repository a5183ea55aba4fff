//! One archiver per directory: an advisory lock on `<dir>/.pgwal-recv.lock` holding the pid.
//! The lock goes with the process, so a crash never leaves the directory locked. The file
//! name matches no segment pattern, so the start-position scan ignores it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

use rustix::fs::{flock, FlockOperation};

pub const LOCK_FILE: &str = ".pgwal-recv.lock";

/// Held for the life of the process.
pub struct ArchiveLock {
    _file: File,
}

/// Takes the lock or says who holds it.
pub fn lock_directory(dir: &Path) -> Result<ArchiveLock, String> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| {
            format!(
                "could not open lock file \"{}\": {}",
                path.display(),
                crate::output::os_error(&e)
            )
        })?;
    if let Err(e) = flock(&file, FlockOperation::NonBlockingLockExclusive) {
        if e == rustix::io::Errno::WOULDBLOCK {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(format!(
                "directory \"{}\" is in use by another pgwal-recv (pid {})",
                dir.display(),
                pid.trim()
            ));
        }
        return Err(format!(
            "could not lock file \"{}\": {}",
            path.display(),
            crate::output::os_error(&e.into())
        ));
    }
    let pid = std::process::id();
    let write = file
        .set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| writeln!(file, "{pid}"));
    if let Err(e) = write {
        return Err(format!(
            "could not write lock file \"{}\": {}",
            path.display(),
            crate::output::os_error(&e)
        ));
    }
    Ok(ArchiveLock { _file: file })
}
