//! Shared by the criterion benchmarks (`benches/`), the allocation test (`tests/`) and the
//! programs in `src/bin`: WAL streams as a walsender sends them, built with the library's
//! own encoders, and a socket simulated over a byte slice.
//!
//! - `benches/frame_decode.rs`: bytes in the read buffer → CopyData frames → XLogData,
//!   against `memcpy` of the same bytes;
//! - `benches/hot_path.rs`: the archive's write planner, status-update encoding, `Lsn` text;
//! - `tests/no_alloc_per_message.rs`: decoding allocates nothing per message;
//! - `src/bin/side_by_side.rs`: pgwal-recv and pg_receivewal on a real server;
//! - `src/bin/verify_side_by_side.rs`: `pgwal-recv verify` against pg_waldump and `zstd -d`;
//! - `src/bin/restore_side_by_side.rs`: `pgwal-recv restore` against `cp` and `zstd -d`,
//!   and recoveries through each;
//! - `src/bin/store_side_by_side.rs`: the archiver into a Garage object store beside a
//!   local directory;
//! - [`timing`]: what those programs share (their command line, `/usr/bin/time`'s figures,
//!   medians, table rows, the machine line);
//! - [`archiving`]: the side-by-side programs' server, and the archives the verify and restore
//!   programs read, made by pgwal-recv;
//! - `src/bin/record_fuzz_corpus.rs`: the fuzz targets' seed corpus, from real traffic;
//! - `benches/wal_decode.rs`: the WAL decoder over [`synthetic_wal`], against the CRC alone;
//! - `src/bin/wal_fuzz_seeds.rs`: the `wal_decoder` fuzz target's seeds, from
//!   [`synthetic_wal`].

pub mod archiving;
pub mod timing;

use std::time::{Duration, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};
use pgwire_repl::protocol::codec::ReadBuffer;
use pgwire_repl::wal::{BlockSpec, ImageSpec, RecordSpec, WalBuilder, WalVersion};
use pgwire_repl::{Lsn, PrimaryKeepalive, WalSegmentSize, XLogData};

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

/// `len` bytes of valid WAL of PostgreSQL `major` from `start` (a page boundary), in the mix
/// of a write-heavy workload just after a checkpoint: per 100 records, 80 heap inserts of
/// 100 to 250 bytes, 10 B-tree inserts, 5 commits, 4 full-page images (pages with holes of
/// 1 to 4 KiB) and one 30 KiB record. By bytes the images are about half, as after a
/// checkpoint. Built with the library's [`WalBuilder`], so every CRC is right.
pub fn synthetic_wal(major: u32, seg: WalSegmentSize, start: Lsn, len: usize) -> Vec<u8> {
    let version = WalVersion::from_major(major).expect("a supported major");
    let mut b = WalBuilder::new(version, seg, start, 7_400_000_000_000_000_001);
    let filler: Vec<u8> = (0..32 << 10).map(|i| (i * 7 % 251) as u8).collect();
    let rel = [1663, 16384, 16385];
    let mut n: u32 = 0;
    while b.position().0 - start.0 < len as u64 {
        n += 1;
        let xid = 1000 + n / 10;
        match n % 100 {
            0..=79 => {
                let size = 100 + (n as usize * 37) % 150;
                let block = [BlockSpec {
                    id: 0,
                    rel,
                    blkno: n / 40,
                    data: &filler[..size],
                    ..Default::default()
                }];
                b.record(&RecordSpec {
                    rmid: 10, // Heap, XLOG_HEAP_INSERT
                    xid,
                    blocks: &block,
                    main_data: &filler[..3],
                    ..Default::default()
                });
            }
            80..=89 => {
                let block = [BlockSpec {
                    id: 0,
                    rel: [1663, 16384, 16390],
                    blkno: n / 300,
                    data: &filler[..24],
                    ..Default::default()
                }];
                b.record(&RecordSpec {
                    rmid: 11, // Btree
                    xid,
                    blocks: &block,
                    main_data: &filler[..2],
                    ..Default::default()
                });
            }
            90..=94 => {
                b.record(&RecordSpec {
                    rmid: 1, // Transaction, commit
                    xid,
                    main_data: &filler[..16],
                    ..Default::default()
                });
            }
            95..=98 => {
                let hole = 1024 + (n as usize * 131) % 3072;
                let block = [BlockSpec {
                    id: 0,
                    rel,
                    blkno: n,
                    image: Some(ImageSpec {
                        bytes: &filler[..8192 - hole],
                        hole_offset: 200,
                        hole_length: hole as u16,
                        compressed: false,
                        apply: true,
                    }),
                    ..Default::default()
                }];
                b.record(&RecordSpec {
                    rmid: 9, // Heap2
                    xid,
                    blocks: &block,
                    main_data: &filler[..8],
                    ..Default::default()
                });
            }
            _ => {
                b.record(&RecordSpec {
                    rmid: 1,
                    xid,
                    main_data: &filler[..30 << 10],
                    ..Default::default()
                });
            }
        }
    }
    let mut wal = b.into_bytes();
    wal.truncate(len);
    wal
}
