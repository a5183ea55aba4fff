//! How a cluster is created and configured.

/// Settings for [`Cluster::start`](crate::Cluster::start).
///
/// Build it with struct update syntax:
///
/// ```
/// let opts = testenv::Options {
///     extra_conf: vec!["wal_sender_timeout = '2s'".into()],
///     ..Default::default()
/// };
/// assert_eq!(opts.wal_segsize_mb, 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// WAL segment size in MB (`initdb --wal-segsize`, a power of two from 1 to 1024).
    /// Default 1, so that segment switches and archiving tests stay cheap.
    pub wal_segsize_mb: u32,
    /// `fsync`: default off for speed; turn it on for tests about durability.
    pub fsync: bool,
    /// `initdb -g`: let the group read the data directory (mode 0750).
    pub group_access: bool,
    /// `wal_keep_size` in MB. Default 32 (32 one-MB segments), so that a client without a
    /// slot does not lose WAL to a checkpoint in the middle of a test.
    pub wal_keep_size_mb: u32,
    /// Lines appended to the generated configuration, after the defaults, so they win;
    /// for example `wal_sender_timeout = '2s'`.
    pub extra_conf: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            wal_segsize_mb: 1,
            fsync: false,
            group_access: false,
            wal_keep_size_mb: 32,
            extra_conf: Vec::new(),
        }
    }
}

impl Options {
    /// Adds one configuration line (builder style).
    pub fn conf(mut self, line: impl Into<String>) -> Self {
        self.extra_conf.push(line.into());
        self
    }
}
