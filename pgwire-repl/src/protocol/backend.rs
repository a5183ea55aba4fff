//! Messages the server sends, decoded from [`Frame`]s and encodable (for scripted test
//! servers and round-trip tests).
//!
//! See <https://www.postgresql.org/docs/current/protocol-message-formats.html>.

use bytes::{BufMut, Bytes, BytesMut};

use super::codec::{put_cstr, write_message, Frame, Reader};
use crate::error::{DbError, Error, Result};

/// A decoded backend message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendMessage {
    /// `R`
    Authentication(Authentication),
    /// `S`: name, value.
    ParameterStatus { name: String, value: String },
    /// `K`: process id and cancel key (4 bytes in protocol 3.0, up to 256 in 3.2).
    BackendKeyData { process_id: i32, secret_key: Bytes },
    /// `Z`: transaction status `I`, `T` or `E`.
    ReadyForQuery(u8),
    /// `E`
    ErrorResponse(DbError),
    /// `N`
    NoticeResponse(DbError),
    /// `T`: column names, in order.
    RowDescription(Vec<String>),
    /// `D`
    DataRow(DataRow),
    /// `C`: the command tag.
    CommandComplete(String),
    /// `I`
    EmptyQueryResponse,
    /// `W`: START_REPLICATION entered COPY BOTH.
    CopyBothResponse,
    /// `H`
    CopyOutResponse,
    /// `G`
    CopyInResponse,
    /// `d`: the body, a zero-copy slice of the read buffer.
    CopyData(Bytes),
    /// `c`
    CopyDone,
    /// `v`: the newest minor protocol version the server supports, and the protocol options
    /// it did not recognize.
    NegotiateProtocolVersion {
        newest_minor: i32,
        unrecognized: Vec<String>,
    },
}

/// The `R` message's variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    Ok,
    KerberosV5,
    CleartextPassword,
    Md5Password {
        salt: [u8; 4],
    },
    Gss,
    GssContinue(Bytes),
    Sspi,
    /// The SASL mechanisms the server offers, in its order of preference.
    Sasl(Vec<String>),
    SaslContinue(Bytes),
    SaslFinal(Bytes),
}

/// A DataRow's columns, read lazily from the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRow {
    count: u16,
    body: Bytes,
}

impl DataRow {
    /// Builds a row (for scripted servers and tests).
    pub fn new<'a>(columns: impl IntoIterator<Item = Option<&'a [u8]>>) -> DataRow {
        let mut body = BytesMut::new();
        let mut count = 0u16;
        for col in columns {
            count += 1;
            match col {
                None => body.put_i32(-1),
                Some(v) => {
                    body.put_i32(v.len() as i32);
                    body.put_slice(v);
                }
            }
        }
        DataRow {
            count,
            body: body.freeze(),
        }
    }

    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The columns in order; `None` is SQL NULL. Values are zero-copy slices of the frame.
    pub fn columns(&self) -> DataRowColumns<'_> {
        DataRowColumns {
            reader: Reader::new(&self.body, "DataRow"),
            left: self.count,
        }
    }

    fn decode(body: &Bytes) -> Result<DataRow> {
        let mut r = Reader::new(body, "DataRow");
        let count = r.i16()?;
        let count = u16::try_from(count)
            .map_err(|_| Error::protocol(format!("DataRow has negative column count {count}")))?;
        let row = DataRow {
            count,
            body: r.rest(),
        };
        // Walk the columns once so a malformed row fails here, not in the middle of a use.
        let mut cols = row.columns();
        for col in cols.by_ref() {
            col?;
        }
        cols.reader.finish()?;
        Ok(row)
    }
}

/// Iterator over a [`DataRow`]'s columns.
pub struct DataRowColumns<'a> {
    reader: Reader<'a>,
    left: u16,
}

impl Iterator for DataRowColumns<'_> {
    type Item = Result<Option<Bytes>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let col = self.reader.i32().and_then(|len| match len {
            -1 => Ok(None),
            n if n < 0 => Err(Error::protocol(format!("DataRow column has length {n}"))),
            n => self.reader.bytes(n as usize).map(Some),
        });
        if col.is_err() {
            self.left = 0;
        }
        Some(col)
    }
}

impl BackendMessage {
    /// Decodes one frame. Fixed-size messages must have exactly their size, and no message
    /// may carry trailing bytes.
    pub fn decode(frame: Frame) -> Result<BackendMessage> {
        let body = &frame.body;
        let msg = match frame.tag {
            b'R' => BackendMessage::Authentication(decode_auth(body)?),
            b'S' => {
                let mut r = Reader::new(body, "ParameterStatus");
                let name = r.cstr()?.to_owned();
                let value = r.cstr()?.to_owned();
                r.finish()?;
                BackendMessage::ParameterStatus { name, value }
            }
            b'K' => {
                let mut r = Reader::new(body, "BackendKeyData");
                let process_id = r.i32()?;
                let secret_key = r.rest();
                if !(4..=256).contains(&secret_key.len()) {
                    return Err(Error::protocol(format!(
                        "BackendKeyData has a {}-byte key",
                        secret_key.len()
                    )));
                }
                BackendMessage::BackendKeyData {
                    process_id,
                    secret_key,
                }
            }
            b'Z' => {
                let mut r = Reader::new(body, "ReadyForQuery");
                let status = r.u8()?;
                r.finish()?;
                if !matches!(status, b'I' | b'T' | b'E') {
                    return Err(Error::protocol(format!(
                        "ReadyForQuery has unknown status '{}'",
                        status.escape_ascii()
                    )));
                }
                BackendMessage::ReadyForQuery(status)
            }
            b'E' => BackendMessage::ErrorResponse(decode_fields(body, "ErrorResponse")?),
            b'N' => BackendMessage::NoticeResponse(decode_fields(body, "NoticeResponse")?),
            b'T' => {
                let mut r = Reader::new(body, "RowDescription");
                let n = r.i16()?;
                let n = u16::try_from(n).map_err(|_| {
                    Error::protocol(format!("RowDescription has negative field count {n}"))
                })?;
                // Each field is at least 19 bytes: check before reserving for the names.
                if usize::from(n) * 19 > r.remaining() {
                    return Err(Error::protocol(format!(
                        "RowDescription claims {n} fields in {} bytes",
                        r.remaining()
                    )));
                }
                let mut names = Vec::with_capacity(usize::from(n));
                for _ in 0..n {
                    names.push(r.cstr()?.to_owned());
                    // table oid, column number, type oid, type size, type modifier, format
                    r.bytes(4 + 2 + 4 + 2 + 4 + 2)?;
                }
                r.finish()?;
                BackendMessage::RowDescription(names)
            }
            b'D' => BackendMessage::DataRow(DataRow::decode(body)?),
            b'C' => {
                let mut r = Reader::new(body, "CommandComplete");
                let tag = r.cstr()?.to_owned();
                r.finish()?;
                BackendMessage::CommandComplete(tag)
            }
            b'I' => empty(
                body,
                "EmptyQueryResponse",
                BackendMessage::EmptyQueryResponse,
            )?,
            b'W' => copy_response(body, "CopyBothResponse", BackendMessage::CopyBothResponse)?,
            b'H' => copy_response(body, "CopyOutResponse", BackendMessage::CopyOutResponse)?,
            b'G' => copy_response(body, "CopyInResponse", BackendMessage::CopyInResponse)?,
            b'd' => BackendMessage::CopyData(frame.body),
            b'c' => empty(body, "CopyDone", BackendMessage::CopyDone)?,
            b'v' => {
                let mut r = Reader::new(body, "NegotiateProtocolVersion");
                let newest_minor = r.i32()?;
                let n = r.i32()?;
                if n < 0 || n as usize > r.remaining() {
                    return Err(Error::protocol(format!(
                        "NegotiateProtocolVersion lists {n} options in {} bytes",
                        r.remaining()
                    )));
                }
                let unrecognized = (0..n)
                    .map(|_| r.cstr().map(str::to_owned))
                    .collect::<Result<_>>()?;
                r.finish()?;
                BackendMessage::NegotiateProtocolVersion {
                    newest_minor,
                    unrecognized,
                }
            }
            t => {
                return Err(Error::protocol(format!(
                    "unexpected message type '{}'",
                    t.escape_ascii()
                )))
            }
        };
        Ok(msg)
    }

    /// Encodes the message as a server would send it.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        let mut res = Ok(());
        let mut s = |d: &mut BytesMut, v: &str| {
            if let Err(e) = put_cstr(d, v) {
                res = Err(e);
            }
        };
        match self {
            BackendMessage::Authentication(a) => {
                write_message(dst, b'R', |d| encode_auth(a, d, &mut s))
            }
            BackendMessage::ParameterStatus { name, value } => write_message(dst, b'S', |d| {
                s(d, name);
                s(d, value);
            }),
            BackendMessage::BackendKeyData {
                process_id,
                secret_key,
            } => write_message(dst, b'K', |d| {
                d.put_i32(*process_id);
                d.put_slice(secret_key);
            }),
            BackendMessage::ReadyForQuery(st) => write_message(dst, b'Z', |d| d.put_u8(*st)),
            BackendMessage::ErrorResponse(e) => {
                write_message(dst, b'E', |d| encode_fields(e, d, &mut s))
            }
            BackendMessage::NoticeResponse(e) => {
                write_message(dst, b'N', |d| encode_fields(e, d, &mut s))
            }
            BackendMessage::RowDescription(names) => write_message(dst, b'T', |d| {
                d.put_i16(names.len() as i16);
                for n in names {
                    s(d, n);
                    // table 0, column 0, type text (25), size -1, modifier -1, format text
                    d.put_i32(0);
                    d.put_i16(0);
                    d.put_i32(25);
                    d.put_i16(-1);
                    d.put_i32(-1);
                    d.put_i16(0);
                }
            }),
            BackendMessage::DataRow(row) => write_message(dst, b'D', |d| {
                d.put_u16(row.count);
                d.put_slice(&row.body);
            }),
            BackendMessage::CommandComplete(tag) => write_message(dst, b'C', |d| s(d, tag)),
            BackendMessage::EmptyQueryResponse => write_message(dst, b'I', |_| {}),
            BackendMessage::CopyBothResponse => write_message(dst, b'W', copy_response_body),
            BackendMessage::CopyOutResponse => write_message(dst, b'H', copy_response_body),
            BackendMessage::CopyInResponse => write_message(dst, b'G', copy_response_body),
            BackendMessage::CopyData(data) => write_message(dst, b'd', |d| d.put_slice(data)),
            BackendMessage::CopyDone => write_message(dst, b'c', |_| {}),
            BackendMessage::NegotiateProtocolVersion {
                newest_minor,
                unrecognized,
            } => write_message(dst, b'v', |d| {
                d.put_i32(*newest_minor);
                d.put_i32(unrecognized.len() as i32);
                for o in unrecognized {
                    s(d, o);
                }
            }),
        }
        res
    }
}

fn empty(body: &Bytes, what: &'static str, msg: BackendMessage) -> Result<BackendMessage> {
    Reader::new(body, what).finish()?;
    Ok(msg)
}

/// Copy responses: overall format (0 = text, 1 = binary), then a format per column. The
/// replication protocol always uses binary with zero columns, but we only check the layout.
fn copy_response(body: &Bytes, what: &'static str, msg: BackendMessage) -> Result<BackendMessage> {
    let mut r = Reader::new(body, what);
    r.u8()?;
    let n = r.i16()?;
    if n < 0 {
        return Err(Error::protocol(format!(
            "{what} has negative column count {n}"
        )));
    }
    for _ in 0..n {
        r.i16()?;
    }
    r.finish()?;
    Ok(msg)
}

fn copy_response_body(d: &mut BytesMut) {
    d.put_u8(0);
    d.put_i16(0);
}

fn decode_auth(body: &Bytes) -> Result<Authentication> {
    let mut r = Reader::new(body, "Authentication");
    let auth = match r.i32()? {
        0 => Authentication::Ok,
        2 => Authentication::KerberosV5,
        3 => Authentication::CleartextPassword,
        5 => {
            let salt = r.bytes(4)?;
            Authentication::Md5Password {
                salt: [salt[0], salt[1], salt[2], salt[3]],
            }
        }
        7 => Authentication::Gss,
        8 => Authentication::GssContinue(r.rest()),
        9 => Authentication::Sspi,
        10 => {
            // A list of mechanism names, terminated by an empty name.
            let mut mechs = Vec::new();
            loop {
                let m = r.cstr()?;
                if m.is_empty() {
                    break;
                }
                mechs.push(m.to_owned());
            }
            Authentication::Sasl(mechs)
        }
        11 => Authentication::SaslContinue(r.rest()),
        12 => Authentication::SaslFinal(r.rest()),
        n => {
            return Err(Error::protocol(format!(
                "unknown authentication request code {n}"
            )))
        }
    };
    r.finish()?;
    Ok(auth)
}

fn encode_auth(a: &Authentication, d: &mut BytesMut, s: &mut impl FnMut(&mut BytesMut, &str)) {
    match a {
        Authentication::Ok => d.put_i32(0),
        Authentication::KerberosV5 => d.put_i32(2),
        Authentication::CleartextPassword => d.put_i32(3),
        Authentication::Md5Password { salt } => {
            d.put_i32(5);
            d.put_slice(salt);
        }
        Authentication::Gss => d.put_i32(7),
        Authentication::GssContinue(b) => {
            d.put_i32(8);
            d.put_slice(b);
        }
        Authentication::Sspi => d.put_i32(9),
        Authentication::Sasl(mechs) => {
            d.put_i32(10);
            for m in mechs {
                s(d, m);
            }
            d.put_u8(0);
        }
        Authentication::SaslContinue(b) => {
            d.put_i32(11);
            d.put_slice(b);
        }
        Authentication::SaslFinal(b) => {
            d.put_i32(12);
            d.put_slice(b);
        }
    }
}

/// ErrorResponse/NoticeResponse fields: a type byte and a string each, ended by a zero byte.
fn decode_fields(body: &Bytes, what: &'static str) -> Result<DbError> {
    let mut r = Reader::new(body, what);
    let mut e = DbError::default();
    let mut localized_severity = None;
    loop {
        let t = r.u8()?;
        if t == 0 {
            break;
        }
        let v = r.cstr()?.to_owned();
        match t {
            b'S' => localized_severity = Some(v),
            b'V' => e.severity = v,
            b'C' => e.code = v,
            b'M' => e.message = v,
            b'D' => e.detail = Some(v),
            b'H' => e.hint = Some(v),
            b'W' => e.where_ = Some(v),
            b'F' => e.file = Some(v),
            b'L' => e.line = Some(v),
            b'R' => e.routine = Some(v),
            // "Frontends should silently ignore fields of unrecognized type."
            _ => {}
        }
    }
    r.finish()?;
    if e.severity.is_empty() {
        e.severity = localized_severity.unwrap_or_else(|| "ERROR".to_owned());
    }
    Ok(e)
}

fn encode_fields(e: &DbError, d: &mut BytesMut, s: &mut impl FnMut(&mut BytesMut, &str)) {
    let mut field = |d: &mut BytesMut, t: u8, v: &str| {
        d.put_u8(t);
        s(d, v);
    };
    field(d, b'S', &e.severity);
    field(d, b'V', &e.severity);
    field(d, b'C', &e.code);
    field(d, b'M', &e.message);
    for (t, v) in [
        (b'D', &e.detail),
        (b'H', &e.hint),
        (b'W', &e.where_),
        (b'F', &e.file),
        (b'L', &e.line),
        (b'R', &e.routine),
    ] {
        if let Some(v) = v {
            field(d, t, v);
        }
    }
    d.put_u8(0);
}
