//! The small steps around each message: the archive's write planner (XLogData → writes split
//! at segment boundaries), status-update encoding, and `Lsn` text both ways.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pgwire_repl::protocol::replication::{StandbyMessage, StandbyStatusUpdate};
use pgwire_repl::{Lsn, WalSegmentSize};

fn write_plan(c: &mut Criterion) {
    let mut g = c.benchmark_group("write_plan");
    let seg = WalSegmentSize::DEFAULT;
    // One message inside a segment, and one that crosses into the next.
    g.throughput(Throughput::Elements(1));
    for (name, start) in [
        ("within_segment", Lsn(0x16_B374_0000)),
        ("across_boundary", Lsn(0x16_B4FF_F000)),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0;
                for w in seg.writes(black_box(start), black_box(128 << 10)) {
                    n += w.range.len() + w.offset as usize + w.segno as usize;
                }
                n
            })
        });
    }
    // 1 GiB of WAL in 128 KiB messages from an unaligned start: 8192 plans, 64 segments.
    let messages = 8192u64;
    g.throughput(Throughput::Elements(messages));
    g.bench_function("1GiB_in_128KiB_messages", |b| {
        b.iter(|| {
            let mut completed = 0;
            let mut at = black_box(Lsn(0x16_B374_2000));
            for _ in 0..messages {
                for w in seg.writes(at, 128 << 10) {
                    completed += usize::from(w.ends_segment(seg));
                }
                at = Lsn(at.0 + (128 << 10));
            }
            completed
        })
    });
    g.finish();
}

fn status_update(c: &mut Criterion) {
    let mut g = c.benchmark_group("status_update");
    g.throughput(Throughput::Elements(1));
    let update = StandbyStatusUpdate {
        write: Lsn(0x16_B374_D848),
        flush: Lsn(0x16_B374_0000),
        apply: Lsn::INVALID,
        send_time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000),
        reply_requested: false,
    };
    let mut buf = BytesMut::with_capacity(64);
    g.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&update).encode(&mut buf);
            black_box(&buf);
        })
    });
    // The encode bench leaves its last update in `buf`: start over, or the body would hold two.
    buf.clear();
    update.encode(&mut buf);
    let body = bytes::Bytes::copy_from_slice(&buf[5..]);
    g.bench_function("decode", |b| {
        b.iter(|| StandbyMessage::decode(black_box(&body)).expect("valid update"))
    });
    g.finish();
}

fn lsn_text(c: &mut Criterion) {
    let mut g = c.benchmark_group("lsn");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse", |b| {
        b.iter(|| black_box("16/B374D848").parse::<Lsn>().expect("valid LSN"))
    });
    let mut s = String::with_capacity(32);
    g.bench_function("format", |b| {
        b.iter(|| {
            s.clear();
            write!(s, "{}", black_box(Lsn(0x16_B374_D848))).expect("writing to a String");
            black_box(&s);
        })
    });
    g.finish();
}

criterion_group!(benches, write_plan, status_update, lsn_text);
criterion_main!(benches);
