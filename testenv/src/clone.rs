//! A base backup without `pg_basebackup`: the low-level backup API and a file copy.
//!
//! One psql session runs `pg_backup_start` (which checkpoints and turns on full-page
//! writes), testenv copies the data directory while the session waits, and the same
//! session runs `pg_backup_stop`, whose `labelfile` becomes the copy's `backup_label`.
//! The non-exclusive API needs both calls in one session, so psql reads its script from a
//! pipe that stays open during the copy; it signals the start by creating a file.
//! `pg_wal` is not copied (only its subdirectories and the timeline history files): the
//! standby streams the WAL from the checkpoint on through its slot, created before the
//! backup started. The copy leaves out what `pg_basebackup` leaves out.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::cluster::Cluster;
use crate::error::{Error, IoContext, Result};
use crate::os_user::OsUser;
use crate::process::describe;

/// How long the backup may take to start (a checkpoint).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Directories whose contents are not copied (they are recreated empty), as in
/// `pg_basebackup`.
const EMPTY_DIRS: &[&str] = &[
    "pg_wal",
    "pg_replslot",
    "pg_dynshmem",
    "pg_notify",
    "pg_serial",
    "pg_snapshots",
    "pg_stat_tmp",
    "pg_subtrans",
];

/// Top-level files not copied.
const SKIPPED_FILES: &[&str] = &[
    "postmaster.pid",
    "postmaster.opts",
    "backup_label",
    "tablespace_map",
    "standby.signal",
    "recovery.signal",
    "postgresql.auto.conf.tmp",
    "current_logfiles",
    "current_logfiles.tmp",
];

/// Copies running `primary`'s data directory into `target`'s (which must not exist) as a
/// base backup.
pub(crate) fn backup_copy(primary: &Cluster, target: &Cluster) -> Result<()> {
    let (start, stop) = if primary.version() >= 15 {
        (
            "SELECT pg_backup_start('testenv', true);",
            "SELECT labelfile FROM pg_backup_stop(false);",
        )
    } else {
        (
            "SELECT pg_start_backup('testenv', true, false);",
            "SELECT labelfile FROM pg_stop_backup(false, false);",
        )
    };
    let flag = target.temp_dir().join("backup-started");
    let _ = std::fs::remove_file(&flag);
    let mut cmd = primary.psql_command(&primary.socket_conninfo(primary.superuser()))?;
    cmd.args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let what = describe(&cmd);
    let mut psql = cmd.spawn().context(|| format!("cannot start {what}"))?;
    let Some(mut script) = psql.stdin.take() else {
        return Err(Error::new(format!("{what}: no stdin")));
    };
    let begin = format!(
        "\\o /dev/null\n{start}\n\\o\n\\! touch {}\n",
        shell_quote(&flag.to_string_lossy())
    );
    let copied = script
        .write_all(begin.as_bytes())
        .and_then(|()| script.flush())
        .context(|| format!("cannot write to {what}"))
        .and_then(|()| wait_for_flag(&mut psql, &flag, &what))
        .and_then(|()| copy_data_dir(&primary.data_dir(), &target.data_dir(), target.user));
    let _ = std::fs::remove_file(&flag);
    if let Err(e) = copied {
        // Closing the script ends the session, which aborts the backup.
        drop(script);
        let _ = psql.kill();
        let _ = psql.wait();
        return Err(e);
    }
    let sent = script.write_all(format!("{stop}\n").as_bytes());
    drop(script);
    let out = psql
        .wait_with_output()
        .context(|| format!("cannot wait for {what}"))?;
    if !out.status.success() || sent.is_err() {
        return Err(Error::new(format!(
            "{what} failed ({}) to stop the backup: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let label = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !label.starts_with("START WAL LOCATION") {
        return Err(Error::new(format!(
            "{what}: unexpected backup label {label:?}"
        )));
    }
    target.write_file("backup_label", &format!("{label}\n"))
}

/// Waits until psql has run the backup start (it creates `flag` next); fails if psql exits.
fn wait_for_flag(psql: &mut Child, flag: &Path, what: &str) -> Result<()> {
    let deadline = std::time::Instant::now() + START_TIMEOUT;
    loop {
        if flag.exists() {
            return Ok(());
        }
        if let Some(status) = psql
            .try_wait()
            .context(|| format!("cannot wait for {what}"))?
        {
            let mut err = String::new();
            if let Some(mut e) = psql.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return Err(Error::new(format!(
                "{what} failed ({status}) to start the backup: {}",
                err.trim()
            )));
        }
        if std::time::Instant::now() >= deadline {
            return Err(Error::new(format!(
                "timed out after {START_TIMEOUT:?}: waiting for the backup to start"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Copies a data directory as a base backup does, giving everything to `user`.
fn copy_data_dir(src: &Path, dst: &Path, user: &OsUser) -> Result<()> {
    copy_dir(src, dst, user, true)
}

/// Creates `dst` with the mode of `src`, owned by `user`.
fn make_dir_like(src: &Path, dst: &Path, user: &OsUser) -> Result<()> {
    let meta = std::fs::metadata(src).context(|| format!("cannot stat {}", src.display()))?;
    std::fs::DirBuilder::new()
        .mode(meta.permissions().mode() & 0o7777)
        .create(dst)
        .context(|| format!("cannot create {}", dst.display()))?;
    user.chown(dst)
}

fn copy_dir(src: &Path, dst: &Path, user: &OsUser, top: bool) -> Result<()> {
    make_dir_like(src, dst, user)?;
    let entries = std::fs::read_dir(src).context(|| format!("cannot list {}", src.display()))?;
    for entry in entries {
        let entry = entry.context(|| format!("cannot list {}", src.display()))?;
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        let (from, to) = (entry.path(), dst.join(&name));
        // Files come and go while the server runs; one gone since the listing is skipped.
        let kind = match entry.file_type() {
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).context(|| format!("cannot stat {}", from.display())),
        };
        if name_str.starts_with("pgsql_tmp") || name_str == "pg_internal.init" {
            continue;
        }
        if kind.is_symlink() {
            return Err(Error::new(format!(
                "{} is a symlink (a tablespace or a moved pg_wal): not supported",
                from.display()
            )));
        }
        if kind.is_dir() {
            if top && EMPTY_DIRS.contains(&&*name_str) {
                copy_skeleton(&from, &to, user, name_str == "pg_wal")?;
            } else {
                copy_dir(&from, &to, user, false)?;
            }
        } else if !(top && SKIPPED_FILES.contains(&&*name_str)) {
            copy_file(&from, &to, user)?;
        }
    }
    Ok(())
}

/// An empty copy of `src`; for `pg_wal`, with its subdirectories (`archive_status`,
/// `summaries`: empty too) and the timeline history files.
fn copy_skeleton(src: &Path, dst: &Path, user: &OsUser, pg_wal: bool) -> Result<()> {
    make_dir_like(src, dst, user)?;
    if !pg_wal {
        return Ok(());
    }
    let entries = std::fs::read_dir(src).context(|| format!("cannot list {}", src.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            copy_skeleton(&entry.path(), &dst.join(&name), user, false)?;
        } else if name.to_string_lossy().ends_with(".history") {
            copy_file(&entry.path(), &dst.join(&name), user)?;
        }
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path, user: &OsUser) -> Result<()> {
    match std::fs::copy(from, to) {
        Ok(_) => user.chown(to),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !to.exists() => Ok(()),
        Err(e) => Err(Error::with_source(
            format!("cannot copy {} to {}", from.display(), to.display()),
            e,
        )),
    }
}

/// A word for `sh`: single quotes, with `'` written as `'\''`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
