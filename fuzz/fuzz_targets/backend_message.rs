//! The backend side of the wire: a byte stream from the server cut into frames and decoded.
//!
//! Input: one byte choosing the socket's read size, then the bytes the server sends.
//! Checks: the stream cut into frames at once and through a `ReadBuffer` in reads of that
//! size gives the same frames and the same error; no decoder panics; every message that
//! decodes encodes back to a frame that decodes to the same message.
#![no_main]

use bytes::{BufMut, BytesMut};
use libfuzzer_sys::fuzz_target;
use pgwire_repl::protocol::backend::BackendMessage;
use pgwire_repl::protocol::codec::{decode_frame, Frame, ReadBuffer};

fuzz_target!(|data: &[u8]| {
    let Some((&k, stream)) = data.split_first() else {
        return;
    };

    let mut buf = BytesMut::from(stream);
    let mut frames: Vec<Frame> = Vec::new();
    let failed = loop {
        match decode_frame(&mut buf) {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };

    let read_size = 1 + usize::from(k) * 61;
    let mut rb = ReadBuffer::new();
    let mut src = stream;
    let mut n = 0;
    let failed_in_reads = loop {
        match rb.next_frame() {
            Ok(Some(f)) => {
                assert_eq!(
                    f, frames[n],
                    "frame {n} differs when read {read_size} bytes at a time"
                );
                n += 1;
                continue;
            }
            Ok(None) => {}
            Err(_) => break true,
        }
        if src.is_empty() {
            break false;
        }
        let mut dst = rb.read_buf();
        let take = src.len().min(read_size).min(dst.remaining_mut());
        assert!(take > 0, "no room to read into");
        dst.put_slice(&src[..take]);
        src = &src[take..];
    };
    assert_eq!(n, frames.len());
    assert_eq!(failed_in_reads, failed);

    for frame in frames {
        let Ok(msg) = BackendMessage::decode(frame) else {
            continue;
        };
        let mut out = BytesMut::new();
        msg.encode(&mut out)
            .expect("decoded strings hold no NUL byte");
        let again = decode_frame(&mut out)
            .expect("an encoded message frames")
            .expect("a whole frame");
        assert!(out.is_empty());
        assert_eq!(
            BackendMessage::decode(again).expect("an encoded message decodes"),
            msg
        );
    }
});
