//! A native PostgreSQL physical-replication client over tokio, with no libpq.
//!
//! It connects (TCP or Unix socket; TLS by rustls with libpq's `sslmode`s and client
//! certificates; several hosts with `target_session_attrs`; trust, cleartext, MD5,
//! SCRAM-SHA-256 and SCRAM-SHA-256-PLUS with channel binding),
//! runs the replication commands (`IDENTIFY_SYSTEM`, `SHOW`, `TIMELINE_HISTORY`,
//! `CREATE_REPLICATION_SLOT`, `DROP_REPLICATION_SLOT`, `READ_REPLICATION_SLOT`), takes base
//! backups (`BASE_BACKUP` in both its forms, `UPLOAD_MANIFEST`) and streams
//! WAL with `START_REPLICATION`: XLogData and keepalives in, standby status updates and hot
//! standby feedback out — at any moment, also while another task waits for the next message.
//! Servers from PostgreSQL 13 to 18 are supported.
//!
//! # Layout
//! - [`lsn`]: `Lsn`, `TimelineId`, WAL segment math and segment file names.
//! - [`timestamp`]: PostgreSQL wire timestamps ↔ `SystemTime`.
//! - [`server_version`]: [`ServerVersion`], parsed from what the server reports, for the
//!   checks that depend on it.
//! - [`error`]: the one public [`Error`] type.
//! - [`lag`]: [`LagTracker`], lag in bytes and time and throughput, fed from the stream.
//! - [`protocol`]: the sans-IO core — [`protocol::codec`] (the frame split with length caps,
//!   the read buffer, the field reader, the write helpers), backend, frontend and
//!   replication messages, command texts and result parsing, and the state machines for
//!   startup, queries, COPY BOTH, feedback timing and `BASE_BACKUP`'s answer (both forms). No tokio, no sockets, no clock.
//! - [`auth`]: sans-IO authentication steps (cleartext, MD5, SCRAM-SHA-256 and -PLUS; the
//!   SCRAM client nonce is an argument).
//! - [`wal`]: the sans-IO WAL decoder — fed WAL bytes in LSN order (files or the stream), it
//!   reports pages and records with what `pg_waldump --stats` counts, and checks what
//!   PostgreSQL's `xlogreader.c` checks (page headers, continuations, record headers,
//!   CRC-32C, block headers) for the WAL of 13 to 18, telling the end of WAL from damage;
//!   [`wal::WalBuilder`] writes valid WAL for tests.
//! - [`config`]: libpq-style configuration — conninfo strings, URIs, `PG*` variables, the
//!   password file — parsed without I/O and resolved to [`config::ConnectParams`] with
//!   libpq's defaults (which read the environment and files, with the standard library).
//! - [`conn`] (feature `tokio`, on by default): sockets and TLS, the [`Client`] and the
//!   [`ReplicationStream`].
//!
//! `cargo build -p pgwire-repl --no-default-features` builds everything but [`conn`]: the
//! sans-IO core, the WAL decoder and the configuration.
//!
//! # Example
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # async fn example() -> pgwire_repl::Result<()> {
//! use pgwire_repl::{Client, Config, StartReplication, StreamEvent};
//!
//! let config = Config::from_env_and("host=/var/run/postgresql user=replicator")?;
//! let mut client = Client::connect(&config).await?;
//! let sys = client.identify_system().await?;
//! let mut stream = client
//!     .start_replication(StartReplication::new(sys.xlogpos).timeline(sys.timeline))
//!     .await?;
//! let sender = stream.sender();
//! loop {
//!     match stream.recv().await? {
//!         StreamEvent::XLogData(x) => {
//!             // Write x.data somewhere durable, then report it.
//!             let end = x.data_end().unwrap_or(x.wal_start);
//!             sender.set_positions(end, end, pgwire_repl::Lsn::INVALID);
//!         }
//!         StreamEvent::Keepalive(_) => {}
//!         StreamEvent::End(end) => {
//!             println!("stream ended: {end:?}");
//!             break;
//!         }
//!     }
//! }
//! # Ok(())
//! # }
//! ```

pub mod auth;
pub mod config;
pub mod error;
pub mod lag;
pub mod lsn;
pub mod protocol;
pub mod server_version;
pub mod timestamp;
pub mod wal;

#[cfg(feature = "tokio")]
pub mod conn;

pub use config::Config;
pub use error::{DbError, Error, Result};
pub use lag::{LagSnapshot, LagTracker};
pub use lsn::{Lsn, TimelineId, WalSegmentSize};
pub use protocol::basebackup::{
    BackupEvent, BaseBackupOptions, CheckpointMode, ManifestOption, Tablespace,
};
pub use protocol::command::{
    CreateSlotOptions, CreatedSlot, HistoryEntry, IdentifySystem, ReadSlot, TimelineHistory,
};
pub use protocol::feedback::{FeedbackConfig, Positions};
pub use protocol::replication::{HotStandbyFeedback, PrimaryKeepalive, XLogData};
pub use protocol::streaming::{StreamEnd, StreamEvent};
pub use server_version::ServerVersion;

#[cfg(feature = "tokio")]
pub use conn::{BaseBackupStream, Client, ReplicationStream, StartReplication, StreamSender};
