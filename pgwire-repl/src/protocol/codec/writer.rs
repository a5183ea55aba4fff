//! The write helpers: a message with its length back-patched, a bare length-prefixed body,
//! a C string.

use bytes::{BufMut, BytesMut};

use crate::error::{Error, Result};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_message_backpatches_length() {
        let mut dst = BytesMut::new();
        write_message(&mut dst, b'Q', |d| put_cstr(d, "SHOW x").unwrap());
        assert_eq!(&dst[..], b"Q\0\0\0\x0bSHOW x\0");
        assert!(put_cstr(&mut dst, "a\0b").is_err());
    }
}
