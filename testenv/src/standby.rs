//! Standbys: a streaming hot standby of a cluster, and promotion.

use std::time::Duration;

use crate::cluster::Cluster;
use crate::error::{Error, IoContext, Result};
use crate::process::run;
use crate::roles::quote_literal;

/// How long a new standby may take to start streaming, and a promotion to finish.
const REPLICATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How a standby's data directory is made from its primary's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CloneMethod {
    /// [`PgwalRecv`](Self::PgwalRecv): every version, no client programs needed.
    #[default]
    Auto,
    /// PostgreSQL's `pg_basebackup` (of the server's major or a newer one; an error when
    /// none is to be had): the oracle our own is compared with.
    BaseBackup,
    /// `pgwal-recv basebackup`, run in this process.
    PgwalRecv,
}

impl Cluster {
    /// Makes a hot standby of this primary that streams through the physical slot `slot`
    /// (created unless it exists), in its own temporary directory and on its own port, and
    /// waits until its WAL receiver is streaming.
    ///
    /// The standby has the same [`Options`](crate::Options), roles and `pg_hba.conf`; its
    /// `primary_conninfo` uses this primary's Unix socket. The data directory comes from
    /// `pgwal-recv basebackup` ([`CloneMethod`]).
    pub fn make_standby(&self, slot: &str) -> Result<Cluster> {
        self.make_standby_with(slot, CloneMethod::Auto)
    }

    /// [`make_standby`](Self::make_standby) with a chosen way of copying the data directory.
    pub fn make_standby_with(&self, slot: &str, method: CloneMethod) -> Result<Cluster> {
        let mut standby = Cluster::new_empty(self.bin.clone(), self.opts.clone())?;
        self.clone_to(&standby, slot, method)?;
        standby.follow(&self.socket_conninfo(self.superuser()), slot)?;
        standby.start_on_free_port()?;
        standby.wait_streaming()?;
        Ok(standby)
    }

    /// Fills `target`'s (absent) data directory with a copy of this running primary's,
    /// for a standby streaming through `slot`, which is created here unless it exists.
    /// Returns the method used (never `Auto`).
    pub(crate) fn clone_to(
        &self,
        target: &Cluster,
        slot: &str,
        method: CloneMethod,
    ) -> Result<CloneMethod> {
        self.clone_to_via(target, slot, method, None)
    }

    /// [`clone_to`](Self::clone_to) with `pgwal-recv basebackup` connecting by `conninfo`
    /// (the lab's replicator over TCP, whose `pg_hba.conf` lets the superuser in only by
    /// `peer`, which this process, as root, is not) instead of the superuser's socket.
    pub(crate) fn clone_to_via(
        &self,
        target: &Cluster,
        slot: &str,
        method: CloneMethod,
        conninfo: Option<&str>,
    ) -> Result<CloneMethod> {
        if !self.slot_exists(slot)? {
            self.create_physical_slot(slot)?;
        }
        if method == CloneMethod::BaseBackup {
            let mut cmd = target.command(&self.bin.tool("pg_basebackup")?);
            cmd.arg("-D")
                .arg(target.data_dir())
                .args(["-X", "stream", "-c", "fast", "-S", slot, "-d"])
                .arg(self.socket_conninfo(self.superuser()));
            if !self.opts.fsync {
                cmd.arg("--no-sync");
            }
            run(&mut cmd, None)?;
            return Ok(CloneMethod::BaseBackup);
        }
        crate::clone::basebackup(self, target, conninfo, &["-X", "stream", "-S", slot])?;
        Ok(CloneMethod::PgwalRecv)
    }

    /// Makes this (stopped) cluster a standby that streams from `primary_conninfo` through
    /// `slot`: `standby.signal`, and both settings in `postgresql.auto.conf` in place of any
    /// that came with the copy.
    pub(crate) fn follow(&self, primary_conninfo: &str, slot: &str) -> Result<()> {
        let auto = self.data_dir().join("postgresql.auto.conf");
        let old = match std::fs::read_to_string(&auto) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(Error::with_source(
                    format!("cannot read {}", auto.display()),
                    e,
                ))
            }
        };
        let mut text: String = old
            .lines()
            .filter(|l| {
                let key = l.trim_start();
                !key.starts_with("primary_conninfo") && !key.starts_with("primary_slot_name")
            })
            .map(|l| format!("{l}\n"))
            .collect();
        text.push_str(&format!(
            "primary_conninfo = {}\nprimary_slot_name = {}\n",
            quote_literal(primary_conninfo),
            quote_literal(slot)
        ));
        self.write_file("postgresql.auto.conf", &text)?;
        self.write_file("standby.signal", "")
    }

    /// Waits until the WAL receiver is streaming; the error carries the server log.
    pub(crate) fn wait_streaming(&self) -> Result<()> {
        let streaming = crate::wait_for(
            "the standby's WAL receiver to be streaming",
            REPLICATION_TIMEOUT,
            || {
                self.sql("SELECT status FROM pg_stat_wal_receiver")
                    .is_ok_and(|s| s == "streaming")
            },
        );
        streaming.map_err(|e| Error::new(format!("{e}\nstandby log:\n{}", self.log().trim_end())))
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

    /// Removes the data directory (of a stopped cluster), for a fresh copy.
    pub(crate) fn remove_data_dir(&self) -> Result<()> {
        let data = self.data_dir();
        match std::fs::remove_dir_all(&data) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).context(|| format!("cannot remove {}", data.display()))
            }
            _ => Ok(()),
        }
    }
}
