//! Client authentication steps, sans-IO: each server `Authentication` request in, the
//! answer written into a buffer. `postgres-protocol` does the cryptography.
//!
//! Supported: trust (nothing to do), cleartext password, MD5, SCRAM-SHA-256. Everything else
//! (Kerberos, GSSAPI, SSPI, a SASL offer without SCRAM-SHA-256) is an error naming it.

mod scram;

use bytes::BytesMut;

pub use scram::ScramClient;

use crate::error::{Error, Result};
use crate::protocol::backend::Authentication;
use crate::protocol::frontend;

/// The authentication method the server chose, for reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Trust,
    Cleartext,
    Md5,
    ScramSha256,
}

/// Answers the server's authentication requests for one connection attempt.
pub struct Authenticator {
    user: String,
    password: Option<Vec<u8>>,
    scram: Option<ScramClient>,
    method: AuthMethod,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("user", &self.user)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// Where authentication stands after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStep {
    /// An answer was written (or nothing was needed yet); wait for the next request.
    Continue,
    /// `AuthenticationOk`: the server accepted us.
    Done(AuthMethod),
}

impl Authenticator {
    pub fn new(user: &str, password: Option<&str>) -> Authenticator {
        Authenticator {
            user: user.to_owned(),
            password: password.map(|p| p.as_bytes().to_vec()),
            scram: None,
            method: AuthMethod::Trust,
        }
    }

    fn password(&self, method: &str) -> Result<&[u8]> {
        self.password.as_deref().ok_or_else(|| {
            Error::Auth(format!(
                "the server requested {method} authentication but no password was supplied"
            ))
        })
    }

    /// Handles one request; any answer is appended to `dst`.
    pub fn handle(&mut self, req: Authentication, dst: &mut BytesMut) -> Result<AuthStep> {
        match req {
            Authentication::Ok => {
                if let Some(scram) = &self.scram {
                    // A server that skips SASLFinal has not proved it knows the password.
                    if !scram.is_finished() {
                        return Err(Error::Auth(
                            "the server ended SCRAM authentication before proving it knows the password"
                                .into(),
                        ));
                    }
                }
                return Ok(AuthStep::Done(self.method));
            }
            Authentication::CleartextPassword => {
                let pw = self.password("password")?;
                frontend::password(pw, dst)?;
                self.method = AuthMethod::Cleartext;
            }
            Authentication::Md5Password { salt } => {
                let pw = self.password("MD5")?;
                let hash =
                    postgres_protocol::authentication::md5_hash(self.user.as_bytes(), pw, salt);
                frontend::password(hash.as_bytes(), dst)?;
                self.method = AuthMethod::Md5;
            }
            Authentication::Sasl(mechanisms) => {
                if self.scram.is_some() {
                    return Err(Error::protocol("a second SASL authentication request"));
                }
                if !mechanisms.iter().any(|m| m == scram::MECHANISM) {
                    return Err(Error::Auth(format!(
                        "the server requested unsupported SASL mechanisms: {}",
                        mechanisms.join(", ")
                    )));
                }
                let scram = ScramClient::new(self.password("SCRAM-SHA-256")?);
                frontend::sasl_initial_response(scram::MECHANISM, scram.client_first(), dst)?;
                self.scram = Some(scram);
                self.method = AuthMethod::ScramSha256;
            }
            Authentication::SaslContinue(data) => {
                let scram = self
                    .scram
                    .as_mut()
                    .ok_or_else(|| Error::protocol("SASLContinue without a SASL exchange"))?;
                let reply = scram.server_first(&data)?;
                frontend::sasl_response(reply, dst)?;
            }
            Authentication::SaslFinal(data) => {
                self.scram
                    .as_mut()
                    .ok_or_else(|| Error::protocol("SASLFinal without a SASL exchange"))?
                    .server_final(&data)?;
            }
            Authentication::KerberosV5 => return Err(unsupported("Kerberos V5")),
            Authentication::Gss | Authentication::GssContinue(_) => {
                return Err(unsupported("GSSAPI"))
            }
            Authentication::Sspi => return Err(unsupported("SSPI")),
        }
        Ok(AuthStep::Continue)
    }
}

fn unsupported(method: &str) -> Error {
    Error::Auth(format!(
        "the server requested {method} authentication, which is not supported"
    ))
}
