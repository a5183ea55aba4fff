//! SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677), over `postgres-protocol`.
//!
//! The exchange:
//! 1. client-first (`<gs2 header>n=,r=<client nonce>`) in SASLInitialResponse; the GS2
//!    header is `n,,` without TLS (or with `channel_binding=disable`), `y,,` over TLS when
//!    the server offered no PLUS mechanism (so that a server that does support it detects a
//!    downgrade), `p=tls-server-end-point,,` for SCRAM-SHA-256-PLUS;
//! 2. the server's AuthenticationSASLContinue carries server-first (`r=<nonce>,s=<salt>,i=<n>`);
//!    we answer client-final (with the channel binding data, `c=`) and our proof in
//!    SASLResponse;
//! 3. AuthenticationSASLFinal carries the server's signature (`v=…`), which must verify
//!    before AuthenticationOk is believed.

use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

use crate::error::{Error, Result};

pub const MECHANISM: &str = "SCRAM-SHA-256";
pub const MECHANISM_PLUS: &str = "SCRAM-SHA-256-PLUS";

enum State {
    /// client-first sent, waiting for server-first.
    First,
    /// client-final sent, waiting for server-final.
    Final,
    Finished,
    Failed,
}

/// One SCRAM-SHA-256 exchange. Each step checks the state, so an out-of-order or repeated
/// server message is an error rather than a panic inside `postgres-protocol`.
pub struct ScramClient {
    inner: ScramSha256,
    state: State,
}

impl ScramClient {
    /// An exchange without channel binding (`n,,`): no TLS, or binding disabled.
    pub fn new(password: &[u8]) -> ScramClient {
        ScramClient::with_binding(password, ChannelBinding::unsupported())
    }

    /// An exchange with the given binding: `ChannelBinding::unrequested()` (`y,,`) or
    /// `ChannelBinding::tls_server_end_point(data)` for SCRAM-SHA-256-PLUS.
    pub fn with_binding(password: &[u8], binding: ChannelBinding) -> ScramClient {
        ScramClient {
            inner: ScramSha256::new(password, binding),
            state: State::First,
        }
    }

    /// The client-first message.
    pub fn client_first(&self) -> &[u8] {
        self.inner.message()
    }

    /// Takes server-first and returns client-final.
    pub fn server_first(&mut self, data: &[u8]) -> Result<&[u8]> {
        if !matches!(self.state, State::First) {
            return Err(Error::protocol("unexpected SASLContinue message"));
        }
        if let Err(e) = self.inner.update(data) {
            self.state = State::Failed;
            return Err(Error::Auth(format!(
                "invalid SCRAM server-first message: {e}"
            )));
        }
        self.state = State::Final;
        Ok(self.inner.message())
    }

    /// Takes server-final and verifies the server's signature.
    pub fn server_final(&mut self, data: &[u8]) -> Result<()> {
        if !matches!(self.state, State::Final) {
            return Err(Error::protocol("unexpected SASLFinal message"));
        }
        if let Err(e) = self.inner.finish(data) {
            self.state = State::Failed;
            return Err(Error::Auth(format!(
                "the server's SCRAM signature did not verify: {e}"
            )));
        }
        self.state = State::Finished;
        Ok(())
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_and_garbage_are_errors_not_panics() {
        let mut c = ScramClient::new(b"pw");
        assert!(c.client_first().starts_with(b"n,,n=,r="));
        assert!(c.server_final(b"v=abc").is_err());
        assert!(c.server_first(b"garbage").is_err());
        assert!(c.server_first(b"r=x,s=c2FsdA==,i=4096").is_err());
        assert!(c.server_final(b"v=abc").is_err());
        assert!(!c.is_finished());
    }

    #[test]
    fn gs2_headers() {
        let y = ScramClient::with_binding(b"pw", ChannelBinding::unrequested());
        assert!(y.client_first().starts_with(b"y,,n=,r="));
        let p = ScramClient::with_binding(b"pw", ChannelBinding::tls_server_end_point(vec![1; 32]));
        assert!(p
            .client_first()
            .starts_with(b"p=tls-server-end-point,,n=,r="));
    }

    #[test]
    fn foreign_nonce_is_rejected() {
        let mut c = ScramClient::new(b"pw");
        // The server's nonce must extend ours.
        assert!(c.server_first(b"r=notours,s=c2FsdA==,i=4096").is_err());
    }
}
