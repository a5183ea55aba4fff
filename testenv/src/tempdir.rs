//! Each cluster's private temporary directory, and the watchdog that removes it.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, IoContext, Result};
use crate::os_user::OsUser;

/// Creates `$TMPDIR/testenv-<pid>-<n>-<nanos>`, mode 0700, owned by the server's OS user.
pub(crate) fn create(user: &OsUser) -> Result<PathBuf> {
    let dir = create_private("testenv")?;
    user.chown(&dir)?;
    Ok(dir)
}

/// Creates `$TMPDIR/<prefix>-<pid>-<n>-<nanos>`, mode 0700, owned by this process's user.
pub(crate) fn create_private(prefix: &str) -> Result<PathBuf> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let base = std::env::temp_dir();
    for _ in 0..100 {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("{prefix}-{}-{n}-{nanos:x}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                    .context(|| format!("cannot chmod {}", dir.display()))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Error::with_source(
                    format!("cannot create a directory in {}", base.display()),
                    e,
                ))
            }
        }
    }
    Err(Error::new(format!(
        "cannot find a free directory name in {}",
        base.display()
    )))
}

/// What the watchdog runs: `$1` is our pid, `$2` the temp dir. Once we are gone but the
/// directory is not (we were killed, so `Drop` never ran), it stops the server the way
/// `pg_ctl stop -m immediate` does (SIGQUIT), then SIGKILL, and removes the directory.
const WATCHDOG: &str = r#"
while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 1; done
[ -d "$2" ] || exit 0
for sig in QUIT KILL; do
  for f in "$2"/*/postmaster.pid; do
    [ -f "$f" ] && kill -$sig "$(head -n 1 "$f")" 2>/dev/null
  done
  sleep 1
done
rm -rf "$2"
"#;

/// Starts the watchdog in its own process group, so a Ctrl-C on the test run does not
/// reach it (pg_ctl puts the postmaster in its own session, so Ctrl-C does not reach that
/// either).
pub(crate) fn spawn_watchdog(dir: &Path) -> Result<Child> {
    spawn_watchdog_script(WATCHDOG, dir)
}

/// Starts `script` as a watchdog like [`spawn_watchdog`]'s: `$1` is our pid, `$2` is `dir`.
pub(crate) fn spawn_watchdog_script(script: &str, dir: &Path) -> Result<Child> {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("testenv-watchdog")
        .arg(std::process::id().to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context(|| "cannot start the cleanup watchdog (sh)".to_string())
}
