//! Recovery from a WAL archive: a base backup without its WAL, copies of it, and a server
//! started on one in archive recovery (or as a standby) with a `restore_command`.

use std::time::Duration;

use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::process::run;
use crate::roles::quote_literal;
use crate::standby::CloneMethod;

/// How long a recovery may take to finish (the test archives hold a few dozen segments).
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(120);

/// How a recovered server is to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryMode {
    /// `recovery.signal`: archive recovery, then the end of recovery (or the target's
    /// action).
    Archive,
    /// `standby.signal` without `primary_conninfo`: a standby fed by `restore_command` only.
    Standby,
}

impl Cluster {
    /// A base backup of this running server, not started, whose `pg_wal` is empty: every
    /// segment a recovery needs must come from a `restore_command`. `-X none -c fast`, by
    /// `pgwal-recv basebackup` unless `method` asks for `pg_basebackup`; the method used is
    /// returned.
    pub fn base_backup(&self, method: CloneMethod) -> Result<(Cluster, CloneMethod)> {
        let target = Cluster::new_empty(self.bin.clone(), self.opts.clone())?;
        if method == CloneMethod::BaseBackup {
            let mut cmd = target.command(&self.bin.tool("pg_basebackup")?);
            cmd.arg("-D")
                .arg(target.data_dir())
                .args(["-X", "none", "-c", "fast", "-d"])
                .arg(self.socket_conninfo(self.superuser()));
            if !self.opts.fsync {
                cmd.arg("--no-sync");
            }
            run(&mut cmd, None)?;
            return Ok((target, CloneMethod::BaseBackup));
        }
        crate::clone::basebackup(self, &target, None, &["-X", "none"])?;
        Ok((target, CloneMethod::PgwalRecv))
    }

    /// A new cluster of this one's build and options whose data directory does not exist
    /// yet: for a backup taken by the program under test (run it as
    /// [`os_user`](Self::os_user), so that the server can use what it writes), then
    /// [`start_as_is`](Self::start_as_is).
    pub fn empty_like(&self) -> Result<Cluster> {
        Cluster::new_empty(self.bin.clone(), self.opts.clone())
    }

    /// Starts this stopped cluster on a free port with the data directory as it is (a
    /// backup made with `-R` starts as a standby).
    pub fn start_as_is(&mut self) -> Result<()> {
        self.start_on_free_port()
    }

    /// Waits until this standby's WAL receiver is streaming; the error carries the log.
    pub fn wait_receiver_streaming(&self) -> Result<()> {
        self.wait_streaming()
    }

    /// A copy of this stopped cluster's data directory (a base backup, say) in a new
    /// cluster of its own, not started.
    pub fn copy_stopped(&self) -> Result<Cluster> {
        let target = Cluster::new_empty(self.bin.clone(), self.opts.clone())?;
        run(
            std::process::Command::new("cp")
                .arg("-a")
                .arg(self.data_dir())
                .arg(target.data_dir()),
            None,
        )?;
        Ok(target)
    }

    /// Starts this stopped cluster in recovery with `restore_command` and `settings`
    /// (`recovery_target_lsn = '0/3000000'`, ...), written to `postgresql.auto.conf`.
    /// Returns once `pg_ctl start` does: the server accepts connections (a hot standby, or
    /// recovery over). A server that stops during recovery is an error carrying its log.
    pub fn start_recovery(
        &mut self,
        mode: RecoveryMode,
        restore_command: &str,
        settings: &[String],
    ) -> Result<()> {
        let auto = self.data_dir().join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&auto).unwrap_or_default();
        text.push_str(&format!(
            "restore_command = {}\n",
            quote_literal(restore_command)
        ));
        for s in settings {
            text.push_str(s);
            text.push('\n');
        }
        self.write_file("postgresql.auto.conf", &text)?;
        let signal = match mode {
            RecoveryMode::Archive => "recovery.signal",
            RecoveryMode::Standby => "standby.signal",
        };
        self.write_file(signal, "")?;
        self.start_on_free_port()
    }

    /// Waits until recovery has ended and the server accepts writes; the error carries the
    /// server log.
    pub fn wait_recovered(&self) -> Result<()> {
        crate::wait_for("the recovery to end", RECOVERY_TIMEOUT, || {
            self.sql("SELECT pg_is_in_recovery()")
                .is_ok_and(|s| s == "f")
        })
        .map_err(|e| Error::new(format!("{e}\nserver log:\n{}", self.log().trim_end())))
    }

    /// Waits until the server has stopped by itself (a recovery that failed); the error
    /// carries the server log.
    pub fn wait_stopped(&self) -> Result<()> {
        crate::wait_for("the server to stop", RECOVERY_TIMEOUT, || {
            !self.is_running()
        })
        .map_err(|e| Error::new(format!("{e}\nserver log:\n{}", self.log().trim_end())))
    }
}
