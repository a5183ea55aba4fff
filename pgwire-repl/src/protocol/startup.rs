//! Connection startup, sans-IO: the startup message, authentication, then the server's
//! parameters until the first ReadyForQuery.
//!
//! 1. We send StartupMessage (protocol 3.0, `user`, `database`, `replication`, …).
//! 2. The server may answer NegotiateProtocolVersion (a newer server telling us what it does
//!    not know); we asked for nothing optional, so we go on with what it supports.
//! 3. Authentication requests until AuthenticationOk ([`Authenticator`]).
//! 4. ParameterStatus* and BackendKeyData, then ReadyForQuery: the session is ready.
//!    An ErrorResponse at any point ends the attempt with the server's error.

use std::collections::BTreeMap;

use bytes::BytesMut;

use super::backend::BackendMessage;
use super::frontend;
use super::query::message_name;
use crate::auth::{AuthMethod, AuthStep, Authenticator, ClientNonce};
use crate::error::{Error, Result};
use crate::server_version::ServerVersion;

/// What goes into the startup message.
#[derive(Debug, Clone, Default)]
pub struct StartupParams {
    pub user: String,
    pub database: Option<String>,
    pub application_name: Option<String>,
    pub options: Option<String>,
    /// `replication=true`: a physical replication (walsender) connection.
    pub replication: bool,
}

/// What we learned about the server during startup.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    /// Every ParameterStatus seen, latest value wins.
    pub parameters: BTreeMap<String, String>,
    /// The `server_version` the server reported; `None` if it reported none (or one that
    /// does not parse).
    pub version: Option<ServerVersion>,
    pub process_id: i32,
    pub auth_method: Option<AuthMethod>,
}

impl ServerInfo {
    /// Records a ParameterStatus (it may arrive at any time, not only during startup).
    pub fn set_parameter(&mut self, name: String, value: String) {
        if name == "server_version" {
            self.version = value.parse().ok();
        }
        self.parameters.insert(name, value);
    }

    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.get(name).map(String::as_str)
    }
}

/// Where startup stands.
#[derive(Debug)]
pub enum StartupStep {
    Continue,
    Ready(ServerInfo),
}

/// The startup exchange.
#[derive(Debug)]
pub struct Startup {
    auth: Authenticator,
    info: ServerInfo,
    authenticated: bool,
}

impl Startup {
    /// Writes the startup message into `dst` and returns the exchange (no TLS, default
    /// channel binding; `nonce` for SCRAM, see [`Authenticator::new`]).
    pub fn new(
        params: &StartupParams,
        password: Option<&str>,
        nonce: ClientNonce,
        dst: &mut BytesMut,
    ) -> Result<Startup> {
        let auth = Authenticator::new(&params.user, password, nonce);
        Startup::with_authenticator(params, auth, dst)
    }

    /// Like [`Startup::new`], authenticating with `auth` (which knows the password and
    /// the channel binding).
    pub fn with_authenticator(
        params: &StartupParams,
        auth: Authenticator,
        dst: &mut BytesMut,
    ) -> Result<Startup> {
        let mut kv: Vec<(&str, &str)> = vec![("user", &params.user)];
        if let Some(db) = &params.database {
            kv.push(("database", db));
        }
        if let Some(app) = &params.application_name {
            kv.push(("application_name", app));
        }
        if let Some(opts) = &params.options {
            kv.push(("options", opts));
        }
        if params.replication {
            kv.push(("replication", "true"));
        }
        // Physical replication needs nothing else; keep the server's text in UTF-8 so that
        // error messages decode.
        kv.push(("client_encoding", "UTF8"));
        frontend::startup(&kv, dst)?;
        Ok(Startup {
            auth,
            info: ServerInfo::default(),
            authenticated: false,
        })
    }

    /// Feeds one server message; answers are appended to `dst`.
    pub fn handle(&mut self, msg: BackendMessage, dst: &mut BytesMut) -> Result<StartupStep> {
        match msg {
            BackendMessage::ErrorResponse(e) => return Err(Error::Db(Box::new(e))),
            BackendMessage::Authentication(req) if !self.authenticated => {
                if let AuthStep::Done(method) = self.auth.handle(req, dst)? {
                    self.authenticated = true;
                    self.info.auth_method = Some(method);
                }
            }
            BackendMessage::NegotiateProtocolVersion { newest_minor, .. }
                if !self.authenticated =>
            {
                // We asked for 3.0, the oldest 3.x; a server can only offer that or refuse.
                if newest_minor < 0 {
                    return Err(Error::protocol(format!(
                        "server supports protocol 3.{newest_minor} only"
                    )));
                }
            }
            BackendMessage::ParameterStatus { name, value } => {
                self.info.set_parameter(name, value);
            }
            BackendMessage::NoticeResponse(_) => {}
            BackendMessage::BackendKeyData { process_id, .. } if self.authenticated => {
                self.info.process_id = process_id;
            }
            BackendMessage::ReadyForQuery(_) if self.authenticated => {
                return Ok(StartupStep::Ready(std::mem::take(&mut self.info)));
            }
            other => {
                return Err(Error::protocol(format!(
                    "unexpected {} during startup",
                    message_name(&other)
                )))
            }
        }
        Ok(StartupStep::Continue)
    }
}
