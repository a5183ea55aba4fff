//! Client authentication steps, sans-IO: each server `Authentication` request in, the
//! answer written into a buffer. The SCRAM client nonce is an argument, drawn by the caller
//! (the tokio layer takes it from the operating system's random number generator).
//! `postgres-protocol` hashes MD5 passwords; SCRAM is in `scram`.
//!
//! Supported: trust (nothing to do), cleartext password, MD5, SCRAM-SHA-256 and, over TLS,
//! SCRAM-SHA-256-PLUS with `tls-server-end-point` channel binding. Everything else
//! (Kerberos, GSSAPI, SSPI, a SASL offer without SCRAM-SHA-256) is an error naming it.
//!
//! The mechanism follows libpq: over TLS, with `channel_binding` other than `disable` and
//! SCRAM-SHA-256-PLUS offered, the PLUS variant; else SCRAM-SHA-256. With
//! `channel_binding=require`, a plaintext connection, an offer without PLUS or a non-SASL
//! request fails before any credential is sent, and an AuthenticationOk that did not come
//! at the end of a bound exchange is refused.

mod channel_binding;
mod scram;

use bytes::BytesMut;

pub use channel_binding::{tls_server_end_point, ChannelBindingMode, TlsBinding};
pub use scram::{ClientNonce, ScramBinding, ScramClient};

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
    /// SCRAM-SHA-256-PLUS: SCRAM bound to the TLS channel.
    ScramSha256Plus,
}

/// Answers the server's authentication requests for one connection attempt.
pub struct Authenticator {
    user: String,
    password: Option<Vec<u8>>,
    /// For the SCRAM exchange, if the server asks for one.
    nonce: ClientNonce,
    scram: Option<ScramClient>,
    method: AuthMethod,
    binding_mode: ChannelBindingMode,
    tls: TlsBinding,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("user", &self.user)
            .field("method", &self.method)
            .field("binding_mode", &self.binding_mode)
            .field("tls", &self.tls)
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
    /// For a connection without TLS and the default `channel_binding=prefer`. `nonce` is
    /// the client nonce of a SCRAM exchange, if the server asks for one: fresh and
    /// unpredictable for every connection attempt.
    pub fn new(user: &str, password: Option<&str>, nonce: ClientNonce) -> Authenticator {
        Authenticator {
            user: user.to_owned(),
            password: password.map(|p| p.as_bytes().to_vec()),
            nonce,
            scram: None,
            method: AuthMethod::Trust,
            binding_mode: ChannelBindingMode::default(),
            tls: TlsBinding::NoTls,
        }
    }

    /// Sets the `channel_binding` mode and what the transport offers to bind to.
    pub fn channel_binding(mut self, mode: ChannelBindingMode, tls: TlsBinding) -> Authenticator {
        self.binding_mode = mode;
        self.tls = tls;
        self
    }

    fn require_binding(&self) -> Result<()> {
        if self.binding_mode != ChannelBindingMode::Require {
            return Ok(());
        }
        Err(Error::Auth(if self.tls.is_tls() {
            "channel binding required but not supported by server's authentication request".into()
        } else {
            "channel binding required, but SSL not in use".into()
        }))
    }

    fn password(&self, method: &str) -> Result<&[u8]> {
        self.password
            .as_deref()
            .ok_or_else(|| Error::PasswordRequired {
                method: method.to_owned(),
            })
    }

    /// Handles one request; any answer is appended to `dst`.
    pub fn handle(&mut self, req: Authentication, dst: &mut BytesMut) -> Result<AuthStep> {
        match req {
            Authentication::Ok => {
                if self.binding_mode == ChannelBindingMode::Require
                    && self.method != AuthMethod::ScramSha256Plus
                {
                    return Err(Error::Auth(
                        "channel binding required, but server authenticated client without channel binding"
                            .into(),
                    ));
                }
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
                self.require_binding()?;
                let pw = self.password("password")?;
                frontend::password(pw, dst)?;
                self.method = AuthMethod::Cleartext;
            }
            Authentication::Md5Password { salt } => {
                self.require_binding()?;
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
                let offers = |m: &str| mechanisms.iter().any(|o| o == m);
                let plus = self.binding_mode != ChannelBindingMode::Disable
                    && offers(scram::MECHANISM_PLUS);
                let (mechanism, binding, method) = if let (true, TlsBinding::ServerEndPoint(data)) =
                    (plus, &self.tls)
                {
                    (
                        scram::MECHANISM_PLUS,
                        ScramBinding::TlsServerEndPoint(data.clone()),
                        AuthMethod::ScramSha256Plus,
                    )
                } else if let (true, TlsBinding::Unavailable(why)) = (plus, &self.tls) {
                    return Err(Error::Auth(format!(
                        "could not compute channel binding data: {why}"
                    )));
                } else if !offers(scram::MECHANISM) {
                    return Err(Error::Auth(format!(
                        "the server requested unsupported SASL mechanisms: {}",
                        mechanisms.join(", ")
                    )));
                } else if self.binding_mode == ChannelBindingMode::Require {
                    return Err(Error::Auth(if self.tls.is_tls() {
                        "channel binding is required, but server did not offer an authentication method that supports channel binding".into()
                    } else {
                        "channel binding required, but SSL not in use".into()
                    }));
                } else if self.tls.is_tls() && self.binding_mode != ChannelBindingMode::Disable {
                    // We could bind but the server did not offer to: "y" lets a server that
                    // does support it see that the offer was stripped.
                    (
                        scram::MECHANISM,
                        ScramBinding::Unrequested,
                        AuthMethod::ScramSha256,
                    )
                } else {
                    (
                        scram::MECHANISM,
                        ScramBinding::Unsupported,
                        AuthMethod::ScramSha256,
                    )
                };
                let password = self.password("SCRAM-SHA-256")?;
                let scram = ScramClient::new(password, binding, self.nonce.clone());
                frontend::sasl_initial_response(mechanism, scram.client_first(), dst)?;
                self.scram = Some(scram);
                self.method = method;
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
            Authentication::KerberosV5 => {
                self.require_binding()?;
                return Err(unsupported("Kerberos V5"));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sasl(mechs: &[&str]) -> Authentication {
        Authentication::Sasl(mechs.iter().map(|m| m.to_string()).collect())
    }

    fn nonce() -> ClientNonce {
        ClientNonce::from_random([7; ClientNonce::RANDOM_BYTES])
    }

    fn auth(mode: ChannelBindingMode, tls: TlsBinding) -> Authenticator {
        Authenticator::new("alice", Some("pw"), nonce()).channel_binding(mode, tls)
    }

    /// The mechanism and GS2 header of the SASLInitialResponse written.
    fn initial(dst: &BytesMut) -> (String, String) {
        // 'p', length, mechanism\0, data length, data.
        let body = &dst[5..];
        let nul = body.iter().position(|&b| b == 0).unwrap();
        let mech = String::from_utf8(body[..nul].to_vec()).unwrap();
        let data = String::from_utf8(body[nul + 5..].to_vec()).unwrap();
        let header = data.split("n=").next().unwrap().to_owned();
        (mech, header)
    }

    const BOTH: &[&str] = &["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"];
    const PLAIN: &[&str] = &["SCRAM-SHA-256"];

    #[test]
    fn mechanism_choice() {
        let tls = || TlsBinding::ServerEndPoint(vec![7; 32]);
        for (mode, tls, mechs, want) in [
            (
                ChannelBindingMode::Prefer,
                tls(),
                BOTH,
                ("SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,"),
            ),
            (
                ChannelBindingMode::Require,
                tls(),
                BOTH,
                ("SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,"),
            ),
            (
                ChannelBindingMode::Disable,
                tls(),
                BOTH,
                ("SCRAM-SHA-256", "n,,"),
            ),
            (
                ChannelBindingMode::Prefer,
                tls(),
                PLAIN,
                ("SCRAM-SHA-256", "y,,"),
            ),
            (
                ChannelBindingMode::Prefer,
                TlsBinding::NoTls,
                PLAIN,
                ("SCRAM-SHA-256", "n,,"),
            ),
            // PLUS offered without TLS (nothing to bind to): plain SCRAM.
            (
                ChannelBindingMode::Prefer,
                TlsBinding::NoTls,
                BOTH,
                ("SCRAM-SHA-256", "n,,"),
            ),
        ] {
            let mut a = auth(mode, tls);
            let mut dst = BytesMut::new();
            assert_eq!(a.handle(sasl(mechs), &mut dst).unwrap(), AuthStep::Continue);
            let (mech, header) = initial(&dst);
            assert_eq!((mech.as_str(), header.as_str()), want, "{mode} {mechs:?}");
        }
    }

    #[test]
    fn require_fails_before_sending_anything() {
        let tls = || TlsBinding::ServerEndPoint(vec![7; 32]);
        for (tls, req, want) in [
            (
                TlsBinding::NoTls,
                sasl(BOTH),
                "channel binding required, but SSL not in use",
            ),
            (
                TlsBinding::NoTls,
                Authentication::CleartextPassword,
                "channel binding required, but SSL not in use",
            ),
            (
                tls(),
                sasl(PLAIN),
                "server did not offer an authentication method that supports channel binding",
            ),
            (
                tls(),
                Authentication::CleartextPassword,
                "channel binding required but not supported by server's authentication request",
            ),
            (
                tls(),
                Authentication::Md5Password { salt: [1, 2, 3, 4] },
                "not supported by server's authentication request",
            ),
            (
                tls(),
                Authentication::Ok,
                "server authenticated client without channel binding",
            ),
            (
                TlsBinding::Unavailable("Ed25519".into()),
                sasl(BOTH),
                "could not compute channel binding data: Ed25519",
            ),
        ] {
            let mut a = auth(ChannelBindingMode::Require, tls);
            let mut dst = BytesMut::new();
            let e = a.handle(req, &mut dst).unwrap_err();
            assert!(matches!(e, Error::Auth(_)), "{e:?}");
            assert!(e.to_string().contains(want), "{e}");
            assert!(dst.is_empty(), "something was sent");
        }
        // Trust without require is fine.
        let mut a = auth(
            ChannelBindingMode::Prefer,
            TlsBinding::ServerEndPoint(vec![1]),
        );
        assert_eq!(
            a.handle(Authentication::Ok, &mut BytesMut::new()).unwrap(),
            AuthStep::Done(AuthMethod::Trust)
        );
    }

    #[test]
    fn a_missing_password_is_told_apart_from_other_failures() {
        for (req, method) in [
            (Authentication::CleartextPassword, "password"),
            (Authentication::Md5Password { salt: [1, 2, 3, 4] }, "MD5"),
            (sasl(PLAIN), "SCRAM-SHA-256"),
        ] {
            let mut a = Authenticator::new("alice", None, nonce());
            let mut dst = BytesMut::new();
            let e = a.handle(req, &mut dst).unwrap_err();
            assert!(e.needs_password(), "{e:?}");
            assert!(
                matches!(&e, Error::PasswordRequired { method: m } if m == method),
                "{e:?}"
            );
            // libpq's wording, as before the error had its own variant.
            assert_eq!(
                e.to_string(),
                format!("authentication failed: the server requested {method} authentication but no password was supplied")
            );
            assert!(dst.is_empty(), "something was sent");
        }
        // Other authentication failures, with or without a password, are not this one.
        let mut a = Authenticator::new("alice", None, nonce());
        let e = a
            .handle(Authentication::Sspi, &mut BytesMut::new())
            .unwrap_err();
        assert!(!e.needs_password(), "{e:?}");
        let mut a = auth(ChannelBindingMode::Require, TlsBinding::NoTls);
        let e = a
            .handle(Authentication::CleartextPassword, &mut BytesMut::new())
            .unwrap_err();
        assert!(!e.needs_password(), "{e:?}");
    }
}
