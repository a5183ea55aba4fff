//! Connecting as libpq does: each host of the list in turn, each within `connect_timeout`,
//! with TLS as `sslmode` says, then startup and authentication, then the
//! `target_session_attrs` check.
//!
//! A host that cannot be reached, does not speak TLS when it must, fails the TLS handshake,
//! answers "cannot connect now" (SQLSTATE 57P03, e.g. shutting down) or is not the kind of
//! server asked for is skipped, and the next one is tried. Any other server error, or a
//! failure to authenticate, ends the attempt at once (libpq: "if a connection is
//! established successfully, but authentication fails, the remaining hosts in the list are
//! not tried").
//!
//! Per host, by `sslmode` (TCP only; a Unix socket is always plaintext):
//! - `disable`: plaintext;
//! - `allow`: plaintext; if the server rejects that attempt with an error, again over TLS;
//! - `prefer`: TLS if the server agrees to it (else plaintext on the same connection); if
//!   the handshake fails or the server rejects the TLS attempt, again in plaintext;
//! - `require`, `verify-ca`, `verify-full`: TLS or fail.

use bytes::BytesMut;

use super::client::Client;
use super::connection::Connection;
use super::socket::{self, describe, host_failure, BoxTransport};
use super::tls::{ssl_request, Negotiated, TlsConnector};
use crate::auth::{Authenticator, ClientNonce, TlsBinding};
use crate::config::{ConnectParams, Host, HostParams, SslMode, TargetSessionAttrs};
use crate::error::{Error, Report, Result};
use crate::protocol::command;
use crate::protocol::startup::{Startup, StartupParams, StartupStep};

/// SQLSTATE "cannot connect now": the server is starting, shutting down or not yet a hot
/// standby; libpq moves on to the next host.
const CANNOT_CONNECT_NOW: &str = "57P03";

/// Connects to the first host that works and is of the kind `target_session_attrs` asks for.
pub(crate) async fn connect(p: &ConnectParams, replication: bool) -> Result<Connection> {
    let mut tls = None;
    let passes: &[TargetSessionAttrs] = match p.target_session_attrs {
        // Every host is tried for a standby first, then for anything.
        TargetSessionAttrs::PreferStandby => {
            &[TargetSessionAttrs::Standby, TargetSessionAttrs::Any]
        }
        TargetSessionAttrs::Any => &[TargetSessionAttrs::Any],
        TargetSessionAttrs::ReadWrite => &[TargetSessionAttrs::ReadWrite],
        TargetSessionAttrs::ReadOnly => &[TargetSessionAttrs::ReadOnly],
        TargetSessionAttrs::Primary => &[TargetSessionAttrs::Primary],
        TargetSessionAttrs::Standby => &[TargetSessionAttrs::Standby],
    };
    let mut failures = Vec::new();
    for &target in passes {
        for h in &p.hosts {
            let attempt = attempt(p, h, replication, target, &mut tls);
            let result = match p.connect_timeout {
                Some(limit) => tokio::time::timeout(limit, attempt)
                    .await
                    .unwrap_or_else(|_| {
                        Err(Error::Timeout(format!(
                            "{} failed: no answer within {} s",
                            describe(h),
                            limit.as_secs()
                        )))
                    }),
                None => attempt.await,
            };
            match result {
                Ok(conn) => return Ok(conn),
                Err(e) if ends_the_list(&e) => return Err(e),
                Err(e) => failures.push((h, e)),
            }
        }
    }
    Err(combine(failures))
}

/// Errors after which libpq tries no further host: the server refused us (other than
/// "cannot connect now"), authentication failed on our side, or the configuration (TLS
/// files) is wrong for every host alike.
fn ends_the_list(e: &Error) -> bool {
    match e {
        Error::Db(db) => db.code != CANNOT_CONNECT_NOW,
        Error::Auth(_) | Error::PasswordRequired { .. } | Error::Config(_) => true,
        _ => false,
    }
}

/// A server error that makes libpq retry the same host with the other encryption
/// (`allow`: with TLS; `prefer`: without).
fn retry_other_encryption(e: &Error) -> bool {
    matches!(e, Error::Db(db) if db.code != CANNOT_CONNECT_NOW)
}

/// One error for a list of failed hosts: with one host, its error as it is; with several,
/// "could not connect to any of N servers", caused by one line per host, libpq's
/// "connection to server at … failed: …", joined by "; ".
fn combine(mut failures: Vec<(&HostParams, Error)>) -> Error {
    if failures.len() == 1 {
        if let Some((_, e)) = failures.pop() {
            return e;
        }
    }
    let kind = match failures.last() {
        Some((_, Error::Io { source, .. })) => source.kind(),
        Some((_, Error::Timeout(_))) => std::io::ErrorKind::TimedOut,
        _ => std::io::ErrorKind::Other,
    };
    let count = failures.len();
    let lines: Vec<String> = failures
        .iter()
        .map(|(h, e)| {
            let text = match e {
                Error::Timeout(_) => return format!("{} failed: timeout expired", describe(h)),
                e => Report(e).to_string(),
            };
            if text.starts_with("connection to server") {
                text
            } else {
                format!("{} failed: {text}", describe(h))
            }
        })
        .collect();
    Error::io(
        format!("could not connect to any of {count} servers"),
        std::io::Error::new(kind, lines.join("; ")),
    )
}

/// One host: connect, negotiate TLS as `sslmode` says, start up, check the session.
async fn attempt(
    p: &ConnectParams,
    h: &HostParams,
    replication: bool,
    target: TargetSessionAttrs,
    tls: &mut Option<TlsConnector>,
) -> Result<Connection> {
    let conn = match &h.host {
        Host::Unix(dir) => {
            let t = socket::connect_unix(h, dir).await?;
            startup(p, h, t, TlsBinding::NoTls, replication).await?
        }
        Host::Tcp(name) => match p.sslmode {
            SslMode::Disable => plaintext(p, h, name, replication).await?,
            SslMode::Allow => match plaintext(p, h, name, replication).await {
                Err(e) if retry_other_encryption(&e) => {
                    encrypted(p, h, name, replication, tls, false).await?
                }
                r => r?,
            },
            SslMode::Prefer => encrypted(p, h, name, replication, tls, true).await?,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                encrypted(p, h, name, replication, tls, false).await?
            }
        },
    };
    check_session(conn, h, replication, target).await
}

/// The TLS client, built on first use, once a server has agreed to TLS: its errors
/// (unreadable files) matter only then, as in libpq.
fn connector<'a>(p: &ConnectParams, tls: &'a mut Option<TlsConnector>) -> Result<&'a TlsConnector> {
    if tls.is_none() {
        *tls = Some(TlsConnector::new(p)?);
    }
    tls.as_ref()
        .ok_or_else(|| Error::config("the TLS configuration could not be built"))
}

async fn plaintext(
    p: &ConnectParams,
    h: &HostParams,
    name: &str,
    replication: bool,
) -> Result<Connection> {
    let tcp = socket::connect_tcp(h, name).await?;
    startup(p, h, Box::new(tcp), TlsBinding::NoTls, replication).await
}

/// TLS; with `fallback` (prefer) plaintext when the server declines, the handshake fails
/// or the server rejects the TLS attempt.
async fn encrypted(
    p: &ConnectParams,
    h: &HostParams,
    name: &str,
    replication: bool,
    tls: &mut Option<TlsConnector>,
    fallback: bool,
) -> Result<Connection> {
    let tcp = socket::connect_tcp(h, name).await?;
    let negotiated = match ssl_request(tcp, h, p.tls.negotiation).await? {
        Ok(tcp) => connector(p, tls)?.handshake(tcp, h, name).await?,
        Err(turned_down) => turned_down,
    };
    match negotiated {
        Negotiated::Tls(t, binding) => match startup(p, h, t, binding, replication).await {
            Err(e) if fallback && retry_other_encryption(&e) => {
                plaintext(p, h, name, replication).await
            }
            r => r,
        },
        Negotiated::Declined(tcp) if fallback => {
            startup(p, h, Box::new(tcp), TlsBinding::NoTls, replication).await
        }
        Negotiated::Refused | Negotiated::Failed(_) if fallback => {
            plaintext(p, h, name, replication).await
        }
        Negotiated::Declined(_) | Negotiated::Refused => Err(host_failure(
            h,
            "server does not support SSL, but SSL was required",
        )),
        Negotiated::Failed(e) => Err(e),
    }
}

/// The startup exchange on an open transport.
async fn startup(
    p: &ConnectParams,
    h: &HostParams,
    transport: BoxTransport,
    binding: TlsBinding,
    replication: bool,
) -> Result<Connection> {
    let mut conn = Connection::new(transport);
    let params = StartupParams {
        user: p.user.clone(),
        database: Some(p.dbname.clone()),
        application_name: p.application_name.clone(),
        options: p.options.clone(),
        replication,
    };
    let auth = Authenticator::new(&p.user, h.password.as_deref(), scram_nonce()?)
        .channel_binding(p.channel_binding, binding);
    let mut out = BytesMut::new();
    let mut startup = Startup::with_authenticator(&params, auth, &mut out)?;
    loop {
        if !out.is_empty() {
            let bytes = out.split();
            conn.send(|b| {
                b.extend_from_slice(&bytes);
                Ok(())
            })
            .await?;
        }
        let msg = conn.read_message().await?;
        match startup.handle(msg, &mut out)? {
            StartupStep::Continue => {}
            StartupStep::Ready(info) => {
                conn.info = info;
                return Ok(conn);
            }
        }
    }
}

/// libpq's `target_session_attrs` check. PostgreSQL 14 and later report `in_hot_standby`
/// and `default_transaction_read_only` at startup, also on replication connections, so
/// nothing needs to be asked. Before 14: `SHOW transaction_read_only` (a replication
/// command too) for read-write and read-only; `SELECT pg_is_in_recovery()` for primary and
/// standby, except on a replication connection, which runs no SQL: there `SHOW
/// transaction_read_only`, which is on in a hot standby.
async fn check_session(
    conn: Connection,
    h: &HostParams,
    replication: bool,
    target: TargetSessionAttrs,
) -> Result<Connection> {
    if target == TargetSessionAttrs::Any {
        return Ok(conn);
    }
    let on = |name: &str| conn.info.parameter(name).map(|v| v == "on");
    let reported_read_only = match (on("default_transaction_read_only"), on("in_hot_standby")) {
        (Some(d), Some(s)) => Some(d || s),
        _ => None,
    };
    let reported_standby = on("in_hot_standby");
    let mut client = Client::new(conn);
    let failure = match target {
        TargetSessionAttrs::ReadWrite | TargetSessionAttrs::ReadOnly => {
            let read_only = match reported_read_only {
                Some(r) => r,
                None => client.show("transaction_read_only").await? == "on",
            };
            match (target, read_only) {
                (TargetSessionAttrs::ReadWrite, true) => Some("session is read-only"),
                (TargetSessionAttrs::ReadOnly, false) => Some("session is not read-only"),
                _ => None,
            }
        }
        _ => {
            let standby = match reported_standby {
                Some(s) => s,
                None if replication => client.show("transaction_read_only").await? == "on",
                None => {
                    let rows = client
                        .simple_query("SELECT pg_catalog.pg_is_in_recovery()")
                        .await?;
                    command::parse_show(&rows)? == "t"
                }
            };
            match (target, standby) {
                (TargetSessionAttrs::Standby, false) => Some("server is not in hot standby mode"),
                (TargetSessionAttrs::Primary, true) => Some("server is in hot standby mode"),
                _ => None,
            }
        }
    };
    match failure {
        None => Ok(client.conn),
        Some(why) => {
            // Best effort: the server would see the connection drop anyway.
            let _ = client.close().await;
            Err(host_failure(h, why))
        }
    }
}

/// A fresh SCRAM client nonce from the operating system's random number generator.
fn scram_nonce() -> Result<ClientNonce> {
    let mut bytes = [0; ClientNonce::RANDOM_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Auth(format!("could not generate a SCRAM nonce: {e}")))?;
    Ok(ClientNonce::from_random(bytes))
}
