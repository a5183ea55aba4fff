//! The WAL decoder (`pgwire_repl::wal::WalDecoder`) over arbitrary bytes.
//!
//! Input: a control byte, then WAL. The decoder starts at the page of the first header's
//! `xlp_pageaddr` (so that a seed of real WAL starts where it belongs), with the segment
//! size of its long header if that is one, else 16 MiB; bit 4 of the control byte sets the
//! version beforehand (from the magic), the low bits choose a piece size.
//!
//! Checks: no panic; the input fed in pieces gives the same events and the same result as
//! fed whole; after success the position is the start plus the input's length; an error
//! is never later than the input's end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgwire_repl::wal::{Event, WalDecoder, WalError, WalVersion};
use pgwire_repl::{Lsn, WalSegmentSize};

fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

fn decoder(wal: &[u8], set_version: bool) -> (WalDecoder, Lsn) {
    let (start, seg) = if wal.len() >= 40 {
        let page = le64(&wal[8..16]) & !8191;
        let seg_size = u32::from_le_bytes([wal[32], wal[33], wal[34], wal[35]]);
        let seg = WalSegmentSize::new(seg_size).unwrap_or(WalSegmentSize::DEFAULT);
        (Lsn(page), seg)
    } else {
        (Lsn(16 << 20), WalSegmentSize::DEFAULT)
    };
    let mut d = WalDecoder::new(seg, start);
    if set_version && wal.len() >= 2 {
        if let Some(v) = WalVersion::from_magic(u16::from_le_bytes([wal[0], wal[1]])) {
            d.set_version(v);
        }
    }
    (d, start)
}

fn run(wal: &[u8], piece: usize, set_version: bool) -> (Vec<Event>, Result<(), WalError>, Lsn, Lsn) {
    let (mut d, start) = decoder(wal, set_version);
    let mut events = Vec::new();
    for chunk in wal.chunks(piece) {
        if let Err(e) = d.feed(chunk, &mut |e| events.push(e)) {
            return (events, Err(e), start, d.position());
        }
    }
    (events, Ok(()), start, d.position())
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, wal)) = data.split_first() else {
        return;
    };
    let set_version = ctl & 0x10 != 0;
    let piece = [1, 2, 7, 24, 40, 100, 4096, 8192][usize::from(ctl & 0x07)];
    let whole = run(wal, wal.len().max(1), set_version);
    let pieces = run(wal, piece, set_version);
    assert_eq!(whole.0, pieces.0, "events");
    assert_eq!(whole.1, pieces.1, "result");
    let (_, result, start, position) = whole;
    match result {
        // Up to the end of the LSN space, where the decoder stops with an error.
        Ok(()) => assert_eq!(Some(position.0), start.0.checked_add(wal.len() as u64)),
        Err(e) => {
            assert!(e.lsn.0 <= start.0.saturating_add(wal.len() as u64), "{e}");
            assert!(!e.to_string().is_empty());
        }
    }
});
