//! SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677), the client side.
//!
//! The exchange:
//! 1. client-first (`<gs2 header>n=,r=<client nonce>`) in SASLInitialResponse; the GS2
//!    header is `n,,` without TLS (or with `channel_binding=disable`), `y,,` over TLS when
//!    the server offered no PLUS mechanism (so that a server that does support it detects a
//!    downgrade), `p=tls-server-end-point,,` for SCRAM-SHA-256-PLUS. The user name is left
//!    empty, as libpq leaves it: the server takes the startup message's;
//! 2. the server's AuthenticationSASLContinue carries server-first (`r=<nonce>,s=<salt>,i=<n>`);
//!    the server's nonce must extend ours. We answer client-final (with the channel binding
//!    data, `c=`) and our proof in SASLResponse;
//! 3. AuthenticationSASLFinal carries the server's signature (`v=…`), which must verify
//!    before AuthenticationOk is believed.
//!
//! Sans-IO: the client nonce is an argument ([`ClientNonce`]; the tokio layer draws it from
//! the operating system's random number generator), so a recorded exchange replays exactly
//! (RFC 7677's example is a unit test). The primitives are the RustCrypto `hmac` and `sha2`
//! crates'; the password goes through SASLprep (`stringprep`) when it can, and as its bytes
//! otherwise, as libpq does.
//!
//! See <https://www.postgresql.org/docs/current/sasl-authentication.html>.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub const MECHANISM: &str = "SCRAM-SHA-256";
pub const MECHANISM_PLUS: &str = "SCRAM-SHA-256-PLUS";

/// Iteration counts above this are refused: the count drives the PBKDF2 loop, so a hostile
/// server could otherwise keep the client hashing as long as it likes before proving
/// anything. PostgreSQL's default is 4096.
const MAX_ITERATIONS: u32 = 100_000;

type HmacSha256 = Hmac<Sha256>;

/// The client's nonce, RFC 5802's `c-nonce`: printable ASCII without `,`. It must be fresh
/// and unpredictable for every exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientNonce(String);

impl ClientNonce {
    /// Random bytes in a nonce made by [`ClientNonce::from_random`] (libpq's
    /// `SCRAM_RAW_NONCE_LEN`).
    pub const RANDOM_BYTES: usize = 18;

    /// The nonce for these random bytes: their base64, 24 characters, as libpq makes it.
    pub fn from_random(bytes: [u8; Self::RANDOM_BYTES]) -> ClientNonce {
        ClientNonce(BASE64.encode(bytes))
    }

    /// A nonce given as text (a recorded exchange's, in tests): printable ASCII other than
    /// `,`, not empty.
    pub fn new(nonce: &str) -> Result<ClientNonce> {
        if nonce.is_empty() || !nonce.bytes().all(is_nonce_char) {
            return Err(Error::config(format!(
                "invalid SCRAM client nonce {nonce:?}: it must be printable ASCII other than ','"
            )));
        }
        Ok(ClientNonce(nonce.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// RFC 5802 `printable`: `%x21-2B / %x2D-7E`.
fn is_nonce_char(b: u8) -> bool {
    matches!(b, 0x21..=0x2b | 0x2d..=0x7e)
}

/// The channel binding of one exchange: the GS2 header's flag (RFC 5802 section 7) and
/// the data bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramBinding {
    /// `n,,`: no binding (no TLS, or `channel_binding=disable`).
    Unsupported,
    /// `y,,`: we could bind but the server offered no PLUS mechanism; a server that does
    /// support binding then sees that its offer was stripped.
    Unrequested,
    /// `p=tls-server-end-point,,`: SCRAM-SHA-256-PLUS, bound to this hash of the server's
    /// certificate (RFC 5929 section 4.1).
    TlsServerEndPoint(Vec<u8>),
}

impl ScramBinding {
    fn gs2_header(&self) -> &'static str {
        match self {
            ScramBinding::Unsupported => "n,,",
            ScramBinding::Unrequested => "y,,",
            ScramBinding::TlsServerEndPoint(_) => "p=tls-server-end-point,,",
        }
    }

    /// `c=`'s value: the GS2 header and the binding data, in base64.
    fn cbind_input(&self) -> String {
        let mut input = self.gs2_header().as_bytes().to_vec();
        if let ScramBinding::TlsServerEndPoint(data) = self {
            input.extend_from_slice(data);
        }
        BASE64.encode(input)
    }
}

enum State {
    /// client-first sent, waiting for server-first.
    First {
        password: Vec<u8>,
    },
    /// client-final sent, waiting for server-final.
    Final {
        server_key: [u8; 32],
        auth_message: String,
    },
    Finished,
    Failed,
}

/// One SCRAM-SHA-256 exchange. Each step checks the state, so an out-of-order or repeated
/// server message is an error.
pub struct ScramClient {
    binding: ScramBinding,
    nonce: ClientNonce,
    /// client-first-message-bare: `n=<user>,r=<nonce>`.
    first_bare: String,
    /// What to send now: client-first, then client-final.
    message: String,
    state: State,
}

impl ScramClient {
    /// An exchange as PostgreSQL's clients run it: the user name left empty (the server
    /// takes the startup message's).
    pub fn new(password: &[u8], binding: ScramBinding, nonce: ClientNonce) -> ScramClient {
        ScramClient::with_user("", password, binding, nonce)
    }

    /// An exchange that names `user` in client-first (`n=user`), as RFC 5802's examples
    /// do; PostgreSQL ignores the name. `,` and `=` in it are escaped as `=2C` and `=3D`.
    pub fn with_user(
        user: &str,
        password: &[u8],
        binding: ScramBinding,
        nonce: ClientNonce,
    ) -> ScramClient {
        let user = user.replace('=', "=3D").replace(',', "=2C");
        let first_bare = format!("n={user},r={}", nonce.as_str());
        ScramClient {
            message: format!("{}{first_bare}", binding.gs2_header()),
            first_bare,
            binding,
            nonce,
            state: State::First {
                password: normalize(password),
            },
        }
    }

    /// The client-first message.
    pub fn client_first(&self) -> &[u8] {
        self.message.as_bytes()
    }

    /// Takes server-first and returns client-final.
    pub fn server_first(&mut self, data: &[u8]) -> Result<&[u8]> {
        let password = match std::mem::replace(&mut self.state, State::Failed) {
            State::First { password } => password,
            other => {
                self.state = other;
                return Err(Error::protocol("unexpected SASLContinue message"));
            }
        };
        let first = ServerFirst::parse(data, &self.nonce)
            .map_err(|e| Error::Auth(format!("invalid SCRAM server-first message: {e}")))?;

        // RFC 5802 section 3:
        //   SaltedPassword  := Hi(Normalize(password), salt, i)
        //   ClientKey       := HMAC(SaltedPassword, "Client Key")
        //   StoredKey       := H(ClientKey)
        //   AuthMessage     := client-first-message-bare + "," + server-first-message + ","
        //                      + client-final-message-without-proof
        //   ClientSignature := HMAC(StoredKey, AuthMessage)
        //   ClientProof     := ClientKey XOR ClientSignature
        //   ServerKey       := HMAC(SaltedPassword, "Server Key")
        let salted = hi(&password, &first.salt, first.iterations);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let without_proof = format!("c={},r={}", self.binding.cbind_input(), first.nonce);
        let auth_message = format!("{},{},{without_proof}", self.first_bare, first.text);
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(k, s)| k ^ s)
            .collect();
        self.message = format!("{without_proof},p={}", BASE64.encode(proof));
        self.state = State::Final {
            server_key: hmac(&salted, b"Server Key"),
            auth_message,
        };
        Ok(self.message.as_bytes())
    }

    /// Takes server-final and verifies the server's signature,
    /// `HMAC(ServerKey, AuthMessage)`.
    pub fn server_final(&mut self, data: &[u8]) -> Result<()> {
        let (server_key, auth_message) = match std::mem::replace(&mut self.state, State::Failed) {
            State::Final {
                server_key,
                auth_message,
            } => (server_key, auth_message),
            other => {
                self.state = other;
                return Err(Error::protocol("unexpected SASLFinal message"));
            }
        };
        let verifier = server_final_verifier(data).map_err(|e| {
            Error::Auth(format!("the server's SCRAM signature did not verify: {e}"))
        })?;
        let mut mac = HmacSha256::new_from_slice(&server_key).expect("HMAC takes any key");
        mac.update(auth_message.as_bytes());
        // verify_slice compares in constant time.
        if mac.verify_slice(&verifier).is_err() {
            return Err(Error::Auth(
                "the server's SCRAM signature did not verify: it does not match".into(),
            ));
        }
        self.state = State::Finished;
        Ok(())
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }
}

/// server-first-message, `r=<nonce>,s=<salt>,i=<count>`, nothing before or after (no
/// mandatory extension, none that PostgreSQL sends).
struct ServerFirst<'a> {
    text: &'a str,
    nonce: &'a str,
    salt: Vec<u8>,
    iterations: u32,
}

impl<'a> ServerFirst<'a> {
    fn parse(data: &'a [u8], ours: &ClientNonce) -> std::result::Result<ServerFirst<'a>, String> {
        let text = std::str::from_utf8(data).map_err(|_| "not valid UTF-8".to_owned())?;
        let mut attrs = text.split(',');
        let mut attr = |name: &str| {
            attrs
                .next()
                .and_then(|a| a.strip_prefix(name)?.strip_prefix('='))
                .ok_or_else(|| format!("expected attribute \"{name}\""))
        };
        let nonce = attr("r")?;
        let salt = attr("s")?;
        let count = attr("i")?;
        if attrs.next().is_some() {
            return Err("unexpected data after the iteration count".into());
        }
        if !nonce.bytes().all(is_nonce_char) {
            return Err("the nonce holds a character that is not printable".into());
        }
        if !nonce.starts_with(ours.as_str()) {
            return Err("the server's nonce does not start with ours".into());
        }
        let salt = BASE64
            .decode(salt)
            .map_err(|_| "the salt is not base64".to_owned())?;
        let iterations = match count.parse::<u32>() {
            Ok(n) if count.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(format!("invalid iteration count \"{count}\"")),
        };
        if iterations == 0 || iterations > MAX_ITERATIONS {
            return Err(format!(
                "iteration count {iterations} is outside 1 to {MAX_ITERATIONS}"
            ));
        }
        Ok(ServerFirst {
            text,
            nonce,
            salt,
            iterations,
        })
    }
}

/// The signature in server-final-message, `v=<base64>`; `e=<error>` is the server's refusal.
fn server_final_verifier(data: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let text = std::str::from_utf8(data).map_err(|_| "not valid UTF-8".to_owned())?;
    if let Some(error) = text.strip_prefix("e=") {
        return Err(format!("the server reported \"{error}\""));
    }
    let v = text
        .strip_prefix("v=")
        .ok_or_else(|| "expected attribute \"v\"".to_owned())?;
    BASE64
        .decode(v)
        .map_err(|_| "the signature is not base64".to_owned())
}

/// SASLprep when the password is UTF-8 and SASLprep takes it, else the bytes as they are:
/// PostgreSQL passwords need be neither, and libpq falls back the same way.
fn normalize(password: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(password).map(stringprep::saslprep) {
        Ok(Ok(prepared)) => prepared.into_owned().into_bytes(),
        _ => password.to_vec(),
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// RFC 5802's `Hi`, PBKDF2 with HMAC-SHA-256 for one block:
/// `U1 := HMAC(str, salt + INT(1))`, `Uk := HMAC(str, Uk-1)`, `Hi := U1 XOR … XOR Ui`.
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let keyed = HmacSha256::new_from_slice(password).expect("HMAC takes any key");
    let mut mac = keyed.clone();
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = mac.finalize().into_bytes().into();
    let mut out = u;
    for _ in 1..iterations {
        let mut mac = keyed.clone();
        mac.update(&u);
        u = mac.finalize().into_bytes().into();
        out.iter_mut().zip(u).for_each(|(o, b)| *o ^= b);
    }
    out
}

#[cfg(test)]
mod tests;
