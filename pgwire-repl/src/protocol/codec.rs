//! Message framing: a one-byte tag, then an `i32` length that counts itself, then the body.
//!
//! See <https://www.postgresql.org/docs/current/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS>.
//! Every length from the network is checked against a cap for its tag **before** any memory is
//! reserved, so a hostile peer claiming a 2 GiB message gets an error, not an allocation.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{Error, Result};

/// Largest CopyData body accepted. The walsender sends at most `MAX_SEND_SIZE` (16 WAL pages,
/// 1 MiB with the largest page size) of WAL per message; 16 MiB leaves room for forks.
pub const MAX_COPY_DATA: usize = 16 << 20;
/// Largest DataRow accepted (a timeline history file or a SHOW value).
pub const MAX_DATA_ROW: usize = 16 << 20;
/// Largest body of any other message (errors, row descriptions, authentication).
pub const MAX_OTHER: usize = 1 << 20;

/// One complete message as it came off the wire, body without tag and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub tag: u8,
    pub body: Bytes,
}

/// The largest body accepted for a message with this tag (backend or frontend).
pub fn max_body_len(tag: u8) -> usize {
    match tag {
        b'd' => MAX_COPY_DATA,
        b'D' => MAX_DATA_ROW,
        _ => MAX_OTHER,
    }
}

/// Splits one frame off the front of `buf`.
///
/// `Ok(None)` means more bytes are needed (and `buf` has room reserved for the whole frame);
/// it is never an error. A length below 4 or above the tag's cap is a protocol error.
pub fn decode_frame(buf: &mut BytesMut) -> Result<Option<Frame>> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let tag = buf[0];
    let len = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    // "The length count includes itself", so anything below 4 is impossible.
    if len < 4 {
        return Err(Error::protocol(format!(
            "message of type '{}' has invalid length {len}",
            tag.escape_ascii()
        )));
    }
    let body_len = len as usize - 4;
    if body_len > max_body_len(tag) {
        return Err(Error::protocol(format!(
            "message of type '{}' is {body_len} bytes, more than the {} allowed",
            tag.escape_ascii(),
            max_body_len(tag)
        )));
    }
    let total = 1 + len as usize;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let mut frame = buf.split_to(total);
    frame.advance(5);
    Ok(Some(Frame {
        tag,
        body: frame.freeze(),
    }))
}

/// Writes a message: `tag`, a length placeholder, the body `f` writes, then the real length.
pub fn write_message(dst: &mut BytesMut, tag: u8, f: impl FnOnce(&mut BytesMut)) {
    dst.put_u8(tag);
    write_body(dst, f);
}

/// Writes a length-prefixed body without a tag (the startup message has none).
pub fn write_body(dst: &mut BytesMut, f: impl FnOnce(&mut BytesMut)) {
    let at = dst.len();
    dst.put_i32(0);
    f(dst);
    let len = (dst.len() - at) as i32;
    dst[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Writes a NUL-terminated string; a string holding NUL cannot be sent and is an error.
pub fn put_cstr(dst: &mut BytesMut, s: &str) -> Result<()> {
    if s.as_bytes().contains(&0) {
        return Err(Error::config(format!(
            "string contains a NUL byte: {:?}",
            s.escape_debug().to_string()
        )));
    }
    dst.put_slice(s.as_bytes());
    dst.put_u8(0);
    Ok(())
}

/// A bounds-checked cursor over a message body. Every read checks what remains and returns a
/// protocol error naming the message; nothing here can panic on short input.
pub struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a Bytes, what: &'static str) -> Reader<'a> {
        Reader { buf, pos: 0, what }
    }

    fn short(&self, need: usize) -> Error {
        Error::protocol(format!(
            "{} message too short: needed {need} more bytes at offset {}, {} left",
            self.what,
            self.pos,
            self.remaining()
        ))
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        let b = self
            .buf
            .get(self.pos..self.pos + N)
            .ok_or_else(|| self.short(N))?;
        self.pos += N;
        let mut out = [0; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take::<1>()?[0])
    }

    pub fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(self.take()?))
    }

    pub fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.take()?))
    }

    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.take()?))
    }

    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.take()?))
    }

    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.take()?))
    }

    /// `n` bytes as a zero-copy slice of the frame.
    pub fn bytes(&mut self, n: usize) -> Result<Bytes> {
        if n > self.remaining() {
            return Err(self.short(n));
        }
        let b = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(b)
    }

    /// Everything left, as a zero-copy slice.
    pub fn rest(&mut self) -> Bytes {
        let b = self.buf.slice(self.pos..);
        self.pos = self.buf.len();
        b
    }

    /// A NUL-terminated string, which must be UTF-8.
    pub fn cstr(&mut self) -> Result<&'a str> {
        let buf: &'a Bytes = self.buf;
        let rest = &buf[self.pos..];
        let nul = rest.iter().position(|&b| b == 0).ok_or_else(|| {
            Error::protocol(format!(
                "{} message: string at offset {} is not NUL-terminated",
                self.what, self.pos
            ))
        })?;
        let s = std::str::from_utf8(&rest[..nul]).map_err(|_| {
            Error::protocol(format!(
                "{} message: string at offset {} is not valid UTF-8",
                self.what, self.pos
            ))
        })?;
        self.pos += nul + 1;
        Ok(s)
    }

    /// Fails unless the whole body was consumed.
    pub fn finish(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(Error::protocol(format!(
                "{} message has {} unexpected trailing bytes",
                self.what,
                self.remaining()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_frames_and_waits_for_more() {
        let mut buf = BytesMut::from(&b"Z\0\0\0\x05IC\0\0"[..]);
        let f = decode_frame(&mut buf).unwrap().unwrap();
        assert_eq!((f.tag, &f.body[..]), (b'Z', &b"I"[..]));
        assert_eq!(decode_frame(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"\0\x0dSELECT 1\0");
        let f = decode_frame(&mut buf).unwrap().unwrap();
        assert_eq!((f.tag, &f.body[..]), (b'C', &b"SELECT 1\0"[..]));
        assert!(buf.is_empty());
    }

    #[test]
    fn rejects_bad_lengths_before_reserving() {
        for len in [0i32, 3, -1, i32::MIN] {
            let mut buf = BytesMut::from(&[b'Z'][..]);
            buf.extend_from_slice(&len.to_be_bytes());
            assert!(decode_frame(&mut buf).is_err(), "length {len}");
        }
        let mut buf = BytesMut::from(&[b'E'][..]);
        buf.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_frame(&mut buf).is_err());
        assert!(buf.capacity() < 1024, "reserved {}", buf.capacity());
        let mut buf = BytesMut::from(&[b'd'][..]);
        buf.extend_from_slice(&((MAX_COPY_DATA + 5) as i32).to_be_bytes());
        assert!(decode_frame(&mut buf).is_err());
        // Exactly at the cap is allowed and reserves room for the frame.
        let mut buf = BytesMut::from(&[b'd'][..]);
        buf.extend_from_slice(&((MAX_COPY_DATA + 4) as i32).to_be_bytes());
        assert_eq!(decode_frame(&mut buf).unwrap(), None);
        assert!(buf.capacity() >= MAX_COPY_DATA + 5);
    }

    #[test]
    fn reader_checks_bounds() {
        let b = Bytes::from_static(b"\x01\x02ab\0c");
        let mut r = Reader::new(&b, "test");
        assert_eq!(r.i16().unwrap(), 0x0102);
        assert_eq!(r.cstr().unwrap(), "ab");
        assert!(r.cstr().is_err());
        assert!(r.i32().is_err());
        assert!(r.finish().is_err());
        assert_eq!(&r.bytes(1).unwrap()[..], b"c");
        assert!(r.bytes(1).is_err());
        r.finish().unwrap();
    }

    #[test]
    fn write_message_backpatches_length() {
        let mut dst = BytesMut::new();
        write_message(&mut dst, b'Q', |d| put_cstr(d, "SHOW x").unwrap());
        assert_eq!(&dst[..], b"Q\0\0\0\x0bSHOW x\0");
        assert!(put_cstr(&mut dst, "a\0b").is_err());
    }
}
