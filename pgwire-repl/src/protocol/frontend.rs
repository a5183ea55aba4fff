//! Messages the client sends. Encoding uses `postgres-protocol`'s frontend writers; the
//! decoder exists for scripted test servers, which must read what a client wrote.

use bytes::{Buf, Bytes, BytesMut};
use postgres_protocol::message::frontend;

use super::codec::{decode_frame, Reader, MAX_OTHER};
use crate::error::{Error, Result};

/// Protocol 3.0, the version we ask for (3.2 exists from PostgreSQL 18; we need nothing in it).
pub const PROTOCOL_VERSION: i32 = 3 << 16;
const SSL_REQUEST_CODE: i32 = 80_877_103;
const GSSENC_REQUEST_CODE: i32 = 80_877_104;
const CANCEL_REQUEST_CODE: i32 = 80_877_102;

fn nul_error(what: &str) -> Error {
    Error::config(format!("{what} contains a NUL byte"))
}

/// The startup message: protocol version and `name=value` parameters.
pub fn startup(params: &[(&str, &str)], dst: &mut BytesMut) -> Result<()> {
    frontend::startup_message(params.iter().copied(), dst)
        .map_err(|_| nul_error("a startup parameter"))
}

/// SSLRequest: length 8 and the code 80877103, untagged, sent before the startup message.
/// The server answers one unframed byte: `S` (go on with a TLS handshake) or `N` (no TLS).
pub fn ssl_request(dst: &mut BytesMut) {
    dst.extend_from_slice(&8i32.to_be_bytes());
    dst.extend_from_slice(&SSL_REQUEST_CODE.to_be_bytes());
}

/// `p` PasswordMessage carrying a cleartext or MD5-hashed password.
pub fn password(password: &[u8], dst: &mut BytesMut) -> Result<()> {
    frontend::password_message(password, dst).map_err(|_| nul_error("the password"))
}

/// `p` SASLInitialResponse.
pub fn sasl_initial_response(mechanism: &str, data: &[u8], dst: &mut BytesMut) -> Result<()> {
    frontend::sasl_initial_response(mechanism, data, dst)
        .map_err(|_| nul_error("the SASL mechanism"))
}

/// `p` SASLResponse.
pub fn sasl_response(data: &[u8], dst: &mut BytesMut) -> Result<()> {
    frontend::sasl_response(data, dst).map_err(|_| nul_error("the SASL response"))
}

/// `Q` simple query; replication commands are sent this way.
pub fn query(sql: &str, dst: &mut BytesMut) -> Result<()> {
    frontend::query(sql, dst).map_err(|_| nul_error("the command"))
}

/// `d` CopyData (COPY IN: the manifest that `UPLOAD_MANIFEST` takes).
pub fn copy_data(data: &[u8], dst: &mut BytesMut) {
    super::codec::write_message(dst, b'd', |d| d.extend_from_slice(data));
}

/// `c` CopyDone.
pub fn copy_done(dst: &mut BytesMut) {
    frontend::copy_done(dst);
}

/// `X` Terminate.
pub fn terminate(dst: &mut BytesMut) {
    frontend::terminate(dst);
}

/// A decoded client message (what a scripted server sees).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrontendMessage {
    /// The untagged first message.
    Startup {
        version: i32,
        params: Vec<(String, String)>,
    },
    SslRequest,
    GssEncRequest,
    CancelRequest,
    /// `p`: a password, SASL initial response or SASL response (the server knows which).
    Password(Bytes),
    Query(String),
    CopyData(Bytes),
    CopyDone,
    CopyFail(String),
    Terminate,
}

/// Decodes the untagged first message (startup, SSL/GSS request or cancel).
pub fn decode_startup(buf: &mut BytesMut) -> Result<Option<FrontendMessage>> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len < 8 || len as usize > MAX_OTHER {
        return Err(Error::protocol(format!(
            "startup packet has invalid length {len}"
        )));
    }
    if buf.len() < len as usize {
        return Ok(None);
    }
    let mut frame = buf.split_to(len as usize);
    frame.advance(4);
    let body = frame.freeze();
    let mut r = Reader::new(&body, "startup");
    let version = r.i32()?;
    let msg = match version {
        SSL_REQUEST_CODE => FrontendMessage::SslRequest,
        GSSENC_REQUEST_CODE => FrontendMessage::GssEncRequest,
        CANCEL_REQUEST_CODE => {
            r.rest();
            FrontendMessage::CancelRequest
        }
        _ => {
            let mut params = Vec::new();
            loop {
                let name = r.cstr()?;
                if name.is_empty() {
                    break;
                }
                params.push((name.to_owned(), r.cstr()?.to_owned()));
            }
            FrontendMessage::Startup { version, params }
        }
    };
    r.finish()?;
    Ok(Some(msg))
}

/// Decodes one tagged client message.
pub fn decode(buf: &mut BytesMut) -> Result<Option<FrontendMessage>> {
    let Some(frame) = decode_frame(buf)? else {
        return Ok(None);
    };
    let mut r = Reader::new(&frame.body, "frontend");
    let msg = match frame.tag {
        b'p' => FrontendMessage::Password(r.rest()),
        b'Q' => FrontendMessage::Query(r.cstr()?.to_owned()),
        b'd' => FrontendMessage::CopyData(r.rest()),
        b'c' => FrontendMessage::CopyDone,
        b'f' => FrontendMessage::CopyFail(r.cstr()?.to_owned()),
        b'X' => FrontendMessage::Terminate,
        t => {
            return Err(Error::protocol(format!(
                "unexpected frontend message type '{}'",
                t.escape_ascii()
            )))
        }
    };
    r.finish()?;
    Ok(Some(msg))
}
