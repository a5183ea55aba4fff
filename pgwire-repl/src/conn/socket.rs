//! Opening the transport to one host: TCP (every address a host name resolves to, in turn)
//! or a Unix socket `<dir>/.s.PGSQL.<port>`. TLS goes over the TCP stream (`tls.rs`).

use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use crate::config::{Host, HostParams};
use crate::error::{Error, Result};

/// A byte stream to the server: TCP, Unix or TLS over TCP.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Transport for T {}

pub(crate) type BoxTransport = Box<dyn Transport>;

/// The socket file for a socket directory and port, as libpq names it.
pub fn socket_path(dir: &std::path::Path, port: u16) -> PathBuf {
    dir.join(format!(".s.PGSQL.{port}"))
}

/// Describes the target the way libpq's messages do.
pub(crate) fn describe(p: &HostParams) -> String {
    match &p.host {
        Host::Unix(dir) => format!(
            "connection to server on socket \"{}\"",
            socket_path(dir, p.port).display()
        ),
        Host::Tcp(h) => match &p.hostaddr {
            Some(a) => format!("connection to server at \"{h}\" ({a}), port {}", p.port),
            None => format!("connection to server at \"{h}\", port {}", p.port),
        },
    }
}

/// A failure of this host that is no I/O error of ours (the server declined TLS, or is not
/// the kind of server asked for): "connection to server at … failed: why".
pub(crate) fn host_failure(p: &HostParams, why: impl Into<String>) -> Error {
    Error::io(
        format!("{} failed", describe(p)),
        std::io::Error::other(why.into()),
    )
}

/// Connects to a Unix-socket host.
pub(crate) async fn connect_unix(p: &HostParams, dir: &std::path::Path) -> Result<BoxTransport> {
    let s = UnixStream::connect(socket_path(dir, p.port))
        .await
        .map_err(|e| Error::io(format!("{} failed", describe(p)), e))?;
    Ok(Box::new(s))
}

/// Connects to a TCP host: `hostaddr` if given, else every address `host` resolves to, in
/// turn.
pub(crate) async fn connect_tcp(p: &HostParams, host: &str) -> Result<TcpStream> {
    let fail = |e: std::io::Error| Error::io(format!("{} failed", describe(p)), e);
    let target = p.hostaddr.as_deref().unwrap_or(host);
    let addrs: Vec<_> = tokio::net::lookup_host((target, p.port))
        .await
        .map_err(|e| {
            Error::io(
                format!("could not translate host name \"{target}\" to address"),
                e,
            )
        })?
        .collect();
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                // Status updates are small and must not wait for Nagle.
                s.set_nodelay(true).map_err(fail)?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(fail(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "host name has no addresses")
    })))
}
