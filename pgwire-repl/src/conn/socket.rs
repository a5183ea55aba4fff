//! Opening the transport: TCP (every address a host name resolves to, in turn) or a Unix
//! socket `<dir>/.s.PGSQL.<port>`.

use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use super::config::{ConnectParams, Host};
use crate::error::{Error, Result};

/// A byte stream to the server: TCP or Unix today, TLS later.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Transport for T {}

pub(crate) type BoxTransport = Box<dyn Transport>;

/// The socket file for a socket directory and port, as libpq names it.
pub fn socket_path(dir: &std::path::Path, port: u16) -> PathBuf {
    dir.join(format!(".s.PGSQL.{port}"))
}

/// Describes the target the way libpq's messages do.
pub(crate) fn describe(p: &ConnectParams) -> String {
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

pub(crate) async fn connect(p: &ConnectParams) -> Result<BoxTransport> {
    let fail = |e: std::io::Error| Error::io(format!("{} failed", describe(p)), e);
    match &p.host {
        Host::Unix(dir) => {
            let s = UnixStream::connect(socket_path(dir, p.port))
                .await
                .map_err(fail)?;
            Ok(Box::new(s))
        }
        Host::Tcp(host) => {
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
                        return Ok(Box::new(s));
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(fail(last.unwrap_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "host name has no addresses")
            })))
        }
    }
}
