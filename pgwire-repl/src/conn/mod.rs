//! The tokio layer: configuration, sockets, the client and the replication stream.

pub mod config;
mod pgpass;
