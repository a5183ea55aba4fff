//! The WAL decoder (`pgwire_repl::wal::WalDecoder`) over one 16 MiB segment of synthetic
//! WAL ([`synthetic_wal`]: heap and B-tree inserts, commits, full-page images, a large
//! record now and then), fed in 64 KiB pieces (a socket read, a file read) and in 1 MiB
//! pieces, against the CRC-32C alone over the same bytes in the same pieces: every record
//! byte goes through the CRC, so that is the floor, and the ratio is what checking pages,
//! headers and block references adds. The target: well above 1 GB/s.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pgwire_repl::wal::{Event, WalDecoder};
use pgwire_repl::{Lsn, WalSegmentSize};
use pgwire_repl_benches::synthetic_wal;

fn wal_decode(c: &mut Criterion) {
    let seg = WalSegmentSize::DEFAULT;
    let start = Lsn(u64::from(seg.bytes()) * 5);
    let wal = synthetic_wal(16, seg, start, seg.bytes() as usize);
    let mut g = c.benchmark_group("wal_decode");
    g.throughput(Throughput::Bytes(wal.len() as u64));
    for (piece, name) in [(64 << 10, "64KiB"), (1 << 20, "1MiB")] {
        g.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| {
                let mut d = WalDecoder::new(seg, start);
                let mut records = 0u64;
                for chunk in black_box(&wal).chunks(piece) {
                    d.feed(chunk, &mut |e| {
                        records += matches!(e, Event::Record(_)) as u64
                    })
                    .expect("valid WAL");
                }
                black_box(records)
            })
        });
        g.bench_function(format!("crc32c/{name}"), |b| {
            b.iter(|| {
                let mut crc = 0;
                for chunk in black_box(&wal).chunks(piece) {
                    crc = crc32c::crc32c_append(crc, chunk);
                }
                black_box(crc)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, wal_decode);
criterion_main!(benches);
