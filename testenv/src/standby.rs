//! Standbys: a streaming hot standby of a cluster, and promotion.

use std::time::Duration;

use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::process::run;

/// How long a new standby may take to start streaming, and a promotion to finish.
const REPLICATION_TIMEOUT: Duration = Duration::from_secs(30);

impl Cluster {
    /// Makes a hot standby of this primary that streams through the physical slot `slot`
    /// (created by `pg_basebackup -C` unless it exists), in its own temporary directory
    /// and on its own port, and waits until its WAL receiver is streaming.
    ///
    /// The standby has the same [`Options`](crate::Options), roles and `pg_hba.conf`; its
    /// `primary_conninfo` (written by `pg_basebackup -R`) uses this primary's Unix socket.
    pub fn make_standby(&self, slot: &str) -> Result<Cluster> {
        let basebackup = self.bin.tool("pg_basebackup")?;
        let mut standby = Cluster::new_empty(self.opts.clone())?;
        let mut cmd = standby.command(&basebackup);
        cmd.arg("-D")
            .arg(standby.data_dir())
            .args(["-R", "-X", "stream", "-c", "fast", "-S", slot, "-d"])
            .arg(self.socket_conninfo(self.superuser()));
        if !self.slot_exists(slot)? {
            cmd.arg("-C");
        }
        if !self.opts.fsync {
            cmd.arg("--no-sync");
        }
        run(&mut cmd, None)?;
        standby.start_on_free_port()?;
        let streaming = crate::wait_for(
            "the standby's WAL receiver to be streaming",
            REPLICATION_TIMEOUT,
            || {
                standby
                    .sql("SELECT status FROM pg_stat_wal_receiver")
                    .is_ok_and(|s| s == "streaming")
            },
        );
        if let Err(e) = streaming {
            return Err(Error::new(format!(
                "{e}\nstandby log:\n{}",
                standby.log().trim_end()
            )));
        }
        Ok(standby)
    }

    /// Promotes this standby (`pg_ctl promote -w`) and waits until it accepts writes.
    pub fn promote(&self) -> Result<()> {
        let mut cmd = self.command(&self.bin.server("pg_ctl"));
        cmd.arg("promote")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-t", "60"]);
        run(&mut cmd, None)?;
        crate::wait_for(
            "the promoted server to leave recovery",
            REPLICATION_TIMEOUT,
            || self.is_in_recovery().is_ok_and(|r| !r),
        )
    }
}
