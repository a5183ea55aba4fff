//! Base backups by pgwal-recv's own `basebackup`, run in this process: the clone every
//! standby and every recovery test starts from, on every version, with no client programs.
//!
//! The command line is pgwal-recv's (parsed by its `cli`), so the clone is exactly what a
//! user's `pgwal-recv basebackup` makes. When the tests run as root, the data directory it
//! wrote is handed to the server's OS user afterwards.

use std::path::Path;

use crate::cluster::Cluster;
use crate::error::{Error, IoContext, Result};
use crate::os_user::OsUser;

/// `pgwal-recv basebackup -D <target's data directory> -c fast <extra>` from `primary`, by
/// `conninfo` or else over its Unix socket as the superuser; `--no-sync` when the clusters
/// run without fsync.
pub(crate) fn basebackup(
    primary: &Cluster,
    target: &Cluster,
    conninfo: Option<&str>,
    extra: &[&str],
) -> Result<()> {
    let dir = target.data_dir().to_string_lossy().into_owned();
    let conninfo = conninfo.map_or_else(
        || primary.socket_conninfo(primary.superuser()),
        str::to_owned,
    );
    let mut argv: Vec<String> = ["basebackup", "-D", &dir, "-c", "fast", "-d", &conninfo]
        .iter()
        .chain(extra)
        .map(|s| (*s).to_owned())
        .collect();
    if !primary.options().fsync {
        argv.push("--no-sync".into());
    }
    let opts = match pgwal_recv::cli::parse(&argv) {
        Ok(pgwal_recv::cli::Action::Basebackup(o)) => o,
        Ok(other) => return Err(Error::new(format!("unexpected command line: {other:?}"))),
        Err(e) => return Err(Error::new(e.lines().join("; "))),
    };
    // Its own thread: the backup makes a runtime, and the caller may be inside one.
    let done = std::thread::spawn(move || pgwal_recv::commands::basebackup::take(&opts))
        .join()
        .map_err(|_| Error::new("pgwal-recv basebackup panicked"))?;
    done.map_err(|e| Error::new(format!("pgwal-recv basebackup {}: {e}", extra.join(" "))))?;
    chown_tree(target.os_user(), &target.data_dir())
}

/// Gives `root` and everything under it (not following links) to `user`, when the tests
/// run as root (otherwise the files are already the server user's).
fn chown_tree(user: &OsUser, root: &Path) -> Result<()> {
    if !crate::is_root() {
        return Ok(());
    }
    user.chown(root)?;
    for entry in std::fs::read_dir(root).context(|| format!("cannot read {}", root.display()))? {
        let entry = entry.context(|| format!("cannot read {}", root.display()))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .context(|| format!("cannot stat {}", path.display()))?;
        if kind.is_dir() {
            chown_tree(user, &path)?;
        } else if !kind.is_symlink() {
            user.chown(&path)?;
        }
    }
    Ok(())
}
