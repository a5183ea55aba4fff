//! A native PostgreSQL physical-replication client (no libpq).

pub mod error;
pub mod lsn;

#[cfg(feature = "tokio")]
pub mod conn;

pub use error::{DbError, Error, Result};
pub use lsn::{Lsn, TimelineId, WalSegmentSize};
