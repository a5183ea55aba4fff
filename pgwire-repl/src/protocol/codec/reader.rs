//! The field reader: a bounds-checked cursor over a message body, so that no decoder calls a
//! panicking `get_*` on what the server sent.

use bytes::Bytes;

use crate::error::{Error, Result};

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
}
