//! The tokio layer: sockets and TLS, the client and the replication stream, connecting as
//! the resolved [`config`](crate::config) says. It makes no protocol decisions: it reads,
//! decodes, hands messages to the `protocol` state machines and writes what they ask for.

mod basebackup;
mod client;
mod connect;
mod connection;
mod outbox;
mod socket;
mod stream;
mod tls;

pub use crate::config::{
    Config, ConnectParams, Host, HostParams, RootCert, SslMode, SslNegotiation, TargetSessionAttrs,
    TlsParams,
};
pub use basebackup::BaseBackupStream;
pub use client::Client;
pub use socket::socket_path;
pub use stream::{ReplicationStream, StartReplication, StreamSender};
