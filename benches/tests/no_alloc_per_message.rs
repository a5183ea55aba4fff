//! Receiving WAL allocates nothing per message: a socket's bytes go through the read buffer,
//! the frame decoder, the backend and replication decoders and the COPY BOTH state machine
//! as the stream drives them, and the number of heap allocations for 10 000 messages is that
//! for 10. Status updates are encoded into a reused buffer without allocating either.
//!
//! Its own test binary: the counting allocator is the global allocator of the whole binary.
//! It counts per thread, so tests running in parallel do not disturb each other.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use pgwire_repl::protocol::backend::BackendMessage;
use pgwire_repl::protocol::codec::ReadBuffer;
use pgwire_repl::protocol::replication::StandbyStatusUpdate;
use pgwire_repl::protocol::streaming::CopyBoth;
use pgwire_repl::{Lsn, StreamEvent};
use pgwire_repl_benches::{xlogdata_stream, SliceSocket, WAL_START};

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

fn count() {
    // try_with: allocations during thread teardown are not counted, and never panic.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is passed to the system allocator unchanged; counting touches only a
// const-initialized thread-local Cell, which neither allocates nor unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap allocations made on this thread while `f` runs, and its result.
fn allocations<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (ALLOCATIONS.with(Cell::get) - before, out)
}

/// Receives `stream` as the replication stream does, through 64 KiB socket reads, and
/// returns (XLogData messages, keepalives, WAL bytes). The payloads are dropped as soon as
/// they are "written", as an archiver does.
fn receive(stream: &[u8]) -> (u64, u64, u64) {
    let mut rb = ReadBuffer::new();
    let mut state = CopyBoth::new(WAL_START);
    let mut socket = SliceSocket::new(stream, 64 << 10);
    let (mut xlogdata, mut keepalives, mut wal) = (0, 0, 0);
    loop {
        while let Some(frame) = rb.next_frame().expect("valid frame") {
            let msg = BackendMessage::decode(frame).expect("valid message");
            match state.handle(msg).expect("streaming").event {
                Some(StreamEvent::XLogData(x)) => {
                    xlogdata += 1;
                    wal += black_box(&x.data).len() as u64;
                }
                Some(StreamEvent::Keepalive(_)) => keepalives += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        if socket.read_into(&mut rb) == 0 {
            assert!(rb.is_empty(), "stream ended inside a frame");
            return (xlogdata, keepalives, wal);
        }
    }
}

/// Allocations while receiving `count` messages of `payload` bytes (the stream is built
/// before counting starts).
fn allocations_receiving(
    payload: usize,
    keepalive_every: usize,
    count: usize,
) -> (u64, (u64, u64, u64)) {
    let stream = xlogdata_stream(payload, count, keepalive_every);
    allocations(|| receive(&stream))
}

#[test]
fn the_counter_counts() {
    let (n, v) = allocations(|| black_box(Vec::<u8>::with_capacity(100)));
    assert_eq!(n, 1);
    drop(v);
    let (n, _) = allocations(|| {
        (0..1000)
            .map(|i| black_box(vec![i as u8; 10]))
            .collect::<Vec<_>>()
    });
    assert!(n > 1000, "{n}");
}

#[test]
fn receiving_xlogdata_allocates_nothing_per_message() {
    // Small messages (live streaming), a mix with keepalives, and full ones (catching up;
    // 1000 of those are already 128 MiB).
    for (payload, keepalive_every, many) in
        [(100, 0, 10_000), (8 << 10, 7, 10_000), (128 << 10, 0, 1000)]
    {
        let (a_few, got) = allocations_receiving(payload, keepalive_every, 10);
        assert_eq!(got.0, 10);
        let (a_many, got) = allocations_receiving(payload, keepalive_every, many);
        assert_eq!(got.0, many as u64);
        assert_eq!(got.2, many as u64 * payload as u64);
        if let Some(keepalives) = many.checked_div(keepalive_every) {
            assert_eq!(got.1, keepalives as u64);
        }
        // The read buffer and its shared header, whatever the number of messages.
        assert!(
            a_many <= a_few + 2,
            "{payload}-byte messages: {a_few} allocations for 10 messages, {a_many} for {many}"
        );
    }
}

#[test]
fn encoding_status_updates_allocates_nothing() {
    let mut buf = BytesMut::with_capacity(64);
    let mut update = StandbyStatusUpdate {
        write: Lsn(0),
        flush: Lsn(0),
        apply: Lsn::INVALID,
        send_time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000),
        reply_requested: false,
    };
    let (n, _) = allocations(|| {
        for i in 0..10_000u64 {
            update.write = Lsn(i << 13);
            update.flush = update.write;
            buf.clear();
            update.encode(&mut buf);
            black_box(&buf);
        }
    });
    assert_eq!(n, 0);
}
