//! Shared by the criterion benchmarks (`benches/`), the allocation test (`tests/`) and the
//! programs in `src/bin`: WAL streams as a walsender sends them, built with the library's
//! own encoders, and a socket simulated over a byte slice.
//!
//! - `benches/frame_decode.rs`: bytes in the read buffer → CopyData frames → XLogData,
//!   against `memcpy` of the same bytes;
//! - `benches/hot_path.rs`: the archive's write planner, status-update encoding, `Lsn` text;
//! - `tests/no_alloc_per_message.rs`: decoding allocates nothing per message;
//! - `src/bin/side_by_side.rs`: pgwal-recv and pg_receivewal on a real server;
//! - `src/bin/record_fuzz_corpus.rs`: the fuzz targets' seed corpus, from real traffic.

use std::time::{Duration, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};
use pgwire_repl::protocol::codec::ReadBuffer;
use pgwire_repl::{Lsn, PrimaryKeepalive, XLogData};

/// Where the generated WAL starts: not at a segment boundary, as a resumed stream would.
pub const WAL_START: Lsn = Lsn(0x16_B374_0000);

/// The bytes a walsender sends for `count` XLogData messages of `payload` bytes each, in
/// order from [`WAL_START`], with a keepalive after every `keepalive_every` messages (0:
/// none).
pub fn xlogdata_stream(payload: usize, count: usize, keepalive_every: usize) -> Vec<u8> {
    let data = Bytes::from((0..payload).map(|i| i as u8).collect::<Vec<u8>>());
    let send_time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000);
    let mut out = BytesMut::with_capacity(count * (payload + 30));
    let mut at = WAL_START;
    for n in 0..count {
        let end = Lsn(at.0 + payload as u64);
        XLogData {
            wal_start: at,
            wal_end: end,
            send_time,
            data: data.clone(),
        }
        .encode(&mut out);
        at = end;
        if keepalive_every != 0 && (n + 1) % keepalive_every == 0 {
            PrimaryKeepalive {
                wal_end: at,
                send_time,
                reply_requested: false,
            }
            .encode(&mut out);
        }
    }
    out.to_vec()
}

/// A socket over `src` that returns at most `chunk` bytes per read, as a TCP socket returns
/// what has arrived.
pub struct SliceSocket<'a> {
    src: &'a [u8],
    chunk: usize,
}

impl<'a> SliceSocket<'a> {
    pub fn new(src: &'a [u8], chunk: usize) -> SliceSocket<'a> {
        SliceSocket {
            src,
            chunk: chunk.max(1),
        }
    }

    /// One read into the buffer's read space; returns the bytes read, 0 at the end.
    pub fn read_into(&mut self, rb: &mut ReadBuffer) -> usize {
        let mut dst = rb.read_buf();
        let n = self.src.len().min(self.chunk).min(dst.remaining_mut());
        dst.put_slice(&self.src[..n]);
        self.src = &self.src[n..];
        n
    }
}
