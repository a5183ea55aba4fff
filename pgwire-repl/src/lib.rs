//! A native PostgreSQL physical-replication client (no libpq).

pub mod auth;
pub mod error;
pub mod lsn;
pub mod protocol;
pub mod timestamp;

#[cfg(feature = "tokio")]
pub mod conn;

pub use error::{DbError, Error, Result};
pub use lsn::{Lsn, TimelineId, WalSegmentSize};
