//! The client side of a base backup's archives, as pg_basebackup handles them.
//!
//! The server sends each tablespace as a tar stream (`BASE_BACKUP`); the pieces here take
//! those bytes as they arrive, in any chunks, and never hold an archive in memory or stage
//! it on disk:
//!
//! - [`extract`]: the plain format (`-Fp`): [`Extractor`](extract::Extractor) writes the
//!   members out as a directory tree, with `-T` tablespace mapping;
//!   [`sync_tree`](extract::sync_tree) fsyncs the result at the end;
//! - [`inject`]: `-R`: [`RecoveryInjector`](inject::RecoveryInjector) rewrites the base
//!   archive on its way to `base.tar` or to the extractor, appending the recovery settings
//!   to `postgresql.auto.conf` and adding `standby.signal`;
//! - `tarstream`: the tar framing both share (headers, data, end-of-archive marker).

pub mod extract;
pub mod inject;
mod tarstream;

pub use tarstream::TarError;
