//! The receive path without a network: bytes in the read buffer → CopyData frames →
//! XLogData, measured against `memcpy` of the same bytes in the same group, so the result
//! reads as a ratio (`Throughput::Bytes` for both).
//!
//! - `frame_decode`: a read buffer holding 1 MiB of CopyData(XLogData) frames, as a large
//!   socket read leaves it, decoded through the calls the stream makes
//!   (`ReadBuffer::next_frame`, `BackendMessage::decode`, `CopyBoth::handle`), for payloads
//!   of 8 KiB and 128 KiB (the walsender's largest). Decoding never touches the payload, so
//!   it must run several times faster than copying it (the target: 5× at 128 KiB).
//! - `read_loop`: 4 MiB of the same frames delivered by a simulated socket in 64 KiB reads,
//!   so the socket's copy into the buffer is included; against `memcpy` in the same chunks,
//!   the ratio is what buffer management and decoding add to the copy no receiver avoids.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use pgwire_repl::protocol::backend::BackendMessage;
use pgwire_repl::protocol::codec::{ReadBuffer, STREAMING_FRAME};
use pgwire_repl::protocol::streaming::CopyBoth;
use pgwire_repl::StreamEvent;
use pgwire_repl_benches::{xlogdata_stream, SliceSocket, WAL_START};

const PAYLOADS: [(usize, &str); 2] = [(8 << 10, "8KiB"), (128 << 10, "128KiB")];

/// Decodes every complete frame in `rb` as the stream does; returns the WAL bytes seen.
fn decode_all(rb: &mut ReadBuffer, state: &mut CopyBoth) -> u64 {
    let mut wal = 0;
    while let Some(frame) = rb.next_frame().expect("valid stream") {
        let msg = BackendMessage::decode(frame).expect("valid message");
        if let Some(StreamEvent::XLogData(x)) = state.handle(msg).expect("streaming").event {
            wal += x.data.len() as u64;
        }
    }
    wal
}

/// A read buffer already holding all of `stream`.
fn filled(stream: &[u8]) -> ReadBuffer {
    let mut rb = ReadBuffer::with_capacity(stream.len() + STREAMING_FRAME + (64 << 10));
    let mut socket = SliceSocket::new(stream, usize::MAX);
    while socket.read_into(&mut rb) > 0 {}
    assert_eq!(rb.len(), stream.len());
    rb
}

fn frame_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame_decode");
    for (payload, name) in PAYLOADS {
        let stream = xlogdata_stream(payload, (1 << 20) / payload, 0);
        g.throughput(Throughput::Bytes(stream.len() as u64));
        g.bench_function(format!("decode/{name}"), |b| {
            b.iter_batched(
                || (filled(&stream), CopyBoth::new(WAL_START)),
                |(mut rb, mut state)| {
                    black_box(decode_all(&mut rb, &mut state));
                    // Dropped after the measurement, with the buffer's memory.
                    (rb, state)
                },
                BatchSize::PerIteration,
            )
        });
        let mut dst = vec![0u8; stream.len()];
        g.bench_function(format!("memcpy/{name}"), |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&stream));
                black_box(&mut dst);
            })
        });
    }
    g.finish();
}

fn read_loop(c: &mut Criterion) {
    const CHUNK: usize = 64 << 10;
    let mut g = c.benchmark_group("read_loop");
    for (payload, name) in PAYLOADS {
        let stream = xlogdata_stream(payload, (4 << 20) / payload, 0);
        g.throughput(Throughput::Bytes(stream.len() as u64));
        let mut rb = ReadBuffer::new();
        let mut state = CopyBoth::new(WAL_START);
        g.bench_function(format!("socket/{name}"), |b| {
            b.iter(|| {
                let mut socket = SliceSocket::new(black_box(&stream), CHUNK);
                let mut wal = decode_all(&mut rb, &mut state);
                while socket.read_into(&mut rb) > 0 {
                    wal += decode_all(&mut rb, &mut state);
                }
                black_box(wal)
            })
        });
        let mut ring = vec![0u8; ReadBuffer::DEFAULT_CAPACITY];
        g.bench_function(format!("memcpy/{name}"), |b| {
            b.iter(|| {
                let mut at = 0;
                for chunk in black_box(&stream).chunks(CHUNK) {
                    if at + chunk.len() > ring.len() {
                        at = 0;
                    }
                    ring[at..at + chunk.len()].copy_from_slice(chunk);
                    at += chunk.len();
                }
                black_box(&mut ring);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, frame_decode, read_loop);
criterion_main!(benches);
