//! WAL: slots, positions, segment switches, generating WAL and reading segment files.

use std::path::PathBuf;

use crate::cluster::Cluster;
use crate::error::{Error, IoContext, Result};
use crate::roles::quote_literal;

/// Table [`Cluster::generate_wal`] inserts into.
pub const WAL_TABLE: &str = "testenv_wal";

impl Cluster {
    /// `pg_create_physical_replication_slot(name, true)`: the slot reserves WAL at once.
    /// Returns its `restart_lsn`.
    pub fn create_physical_slot(&self, name: &str) -> Result<String> {
        self.sql(&format!(
            "SELECT lsn FROM pg_create_physical_replication_slot({}, true)",
            quote_literal(name)
        ))
    }

    /// Whether a replication slot called `name` exists.
    pub fn slot_exists(&self, name: &str) -> Result<bool> {
        Ok(self.sql(&format!(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = {}",
            quote_literal(name)
        ))? != "0")
    }

    /// `pg_switch_wal()`: ends the current segment; returns the LSN it returned (the end of
    /// the switch record).
    pub fn switch_wal(&self) -> Result<String> {
        self.sql("SELECT pg_switch_wal()")
    }

    /// `pg_current_wal_lsn()` as text, like `0/3000148` (primaries only).
    pub fn current_lsn(&self) -> Result<String> {
        self.sql("SELECT pg_current_wal_lsn()")
    }

    /// The name of the segment holding the current insert position (primaries only).
    ///
    /// Right after [`switch_wal`](Self::switch_wal) this is still the old segment: the
    /// position is exactly on the boundary, which `pg_walfile_name()` counts as the end of
    /// the previous segment.
    pub fn current_wal_file(&self) -> Result<String> {
        self.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
    }

    /// Writes at least `bytes` of WAL by inserting ~1 kB rows into [`WAL_TABLE`]
    /// (small enough not to be TOAST-compressed), and returns the insert LSN afterwards.
    /// No checkpoint and no segment switch.
    pub fn generate_wal(&self, bytes: u64) -> Result<String> {
        let start = self.current_lsn()?;
        self.sql(&format!(
            "CREATE TABLE IF NOT EXISTS {WAL_TABLE} (id bigserial PRIMARY KEY, pad text)"
        ))?;
        loop {
            let written: u64 = self
                .sql(&format!(
                    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), {})::bigint",
                    quote_literal(&start)
                ))?
                .parse()
                .map_err(|_| Error::new("pg_wal_lsn_diff returned a non-number"))?;
            if written >= bytes {
                return self.current_lsn();
            }
            // Each row costs a little over 1 kB of WAL, so this undershoots slightly.
            let rows = (bytes - written) / 1100 + 1;
            self.sql(&format!(
                "INSERT INTO {WAL_TABLE} (pad) \
                 SELECT repeat(md5(g::text), 30) FROM generate_series(1, {rows}) g"
            ))?;
        }
    }

    /// Reads `pg_wal/<name>`, such as a segment file or a `.history` file.
    pub fn wal_file(&self, name: &str) -> Result<Vec<u8>> {
        let path: PathBuf = self.pg_wal_dir().join(name);
        std::fs::read(&path).context(|| format!("cannot read {}", path.display()))
    }
}
