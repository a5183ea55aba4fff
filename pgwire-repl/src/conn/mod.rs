//! The tokio layer: configuration, sockets and TLS, the client and the replication stream. It makes
//! no protocol decisions: it reads, decodes, hands messages to the `protocol` state machines
//! and writes what they ask for.

mod client;
pub mod config;
mod connect;
mod connection;
mod conninfo;
mod outbox;
mod pgpass;
mod socket;
mod stream;
mod tls;
mod uri;

pub use client::Client;
pub use config::{
    Config, ConnectParams, Host, HostParams, RootCert, SslMode, SslNegotiation, TargetSessionAttrs,
    TlsParams,
};
pub use socket::socket_path;
pub use stream::{ReplicationStream, StartReplication, StreamSender};
