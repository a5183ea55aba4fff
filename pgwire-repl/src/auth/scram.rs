//! SCRAM-SHA-256 (RFC 5802, RFC 7677) without channel binding, over `postgres-protocol`.
//!
//! The exchange:
//! 1. client-first (`n,,n=,r=<client nonce>`) in SASLInitialResponse;
//! 2. the server's AuthenticationSASLContinue carries server-first (`r=<nonce>,s=<salt>,i=<n>`);
//!    we answer client-final with our proof in SASLResponse;
//! 3. AuthenticationSASLFinal carries the server's signature (`v=…`), which must verify
//!    before AuthenticationOk is believed.

use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

use crate::error::{Error, Result};

pub const MECHANISM: &str = "SCRAM-SHA-256";

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
    pub fn new(password: &[u8]) -> ScramClient {
        // Without TLS there is nothing to bind to; "n" tells the server we do not support it.
        ScramClient {
            inner: ScramSha256::new(password, ChannelBinding::unsupported()),
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
    fn foreign_nonce_is_rejected() {
        let mut c = ScramClient::new(b"pw");
        // The server's nonce must extend ours.
        assert!(c.server_first(b"r=notours,s=c2FsdA==,i=4096").is_err());
    }
}
