//! Integration tests: one binary. `scripted` runs against a fake walsender; the rest against
//! real PostgreSQL servers started by testenv.

mod auth;
mod basebackup;
mod commands;
mod common;
mod multihost;
mod pki;
mod scripted;
mod scripted_feedback;
mod scripted_hostile;
mod streaming;
mod timeline;
mod tls;
mod tls_openssl;
mod wal_decoder;
mod walsender;
