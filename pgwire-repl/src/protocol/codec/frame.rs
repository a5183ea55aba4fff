//! Frame split: a one-byte tag, then an `i32` length that counts itself, then the body.
//!
//! See <https://www.postgresql.org/docs/current/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS>.
//! Every length from the network is checked against a cap for its tag **before** any memory is
//! reserved, so a hostile peer claiming a 2 GiB message gets an error, not an allocation.

use bytes::{Buf, Bytes, BytesMut};

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
}
