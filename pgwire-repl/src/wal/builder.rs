//! Writing WAL: pages and records as a server of a given version lays them out, with
//! valid CRCs — for tests, fuzz seeds and benchmarks, the way the scripted walsender is
//! built from the library's own message encoders.
//!
//! The layout is `XLogRecordAssemble`'s (`src/backend/access/transam/xloginsert.c`): the
//! `XLogRecord`, the block headers, `XLR_BLOCK_ID_ORIGIN`, `XLR_BLOCK_ID_TOPLEVEL_XID`, the
//! main data header; then each block's image and data; then the main data. Records are
//! placed as `CopyXLogRecordToWAL` places them: MAXALIGNed, cut at page boundaries where
//! the next page says `XLP_FIRST_IS_CONTRECORD` with the bytes still to come.

use crate::lsn::{Lsn, TimelineId, WalSegmentSize};

use super::page::{PageFlags, LONG_HEADER, SHORT_HEADER, XLOG_BLCKSZ};
use super::record::{CRC_OFFSET, SIZE_OF_XLOG_RECORD, XLOG_SWITCH};
use super::rmgr::RM_XLOG_ID;
use super::version::WalVersion;

const PAGE: u64 = XLOG_BLCKSZ as u64;

/// A record to write (what a caller of `XLogInsert` registers).
#[derive(Debug, Clone, Default)]
pub struct RecordSpec<'a> {
    pub rmid: u8,
    pub info: u8,
    pub xid: u32,
    pub blocks: &'a [BlockSpec<'a>],
    pub main_data: &'a [u8],
    /// `XLR_BLOCK_ID_ORIGIN`.
    pub origin: Option<u16>,
    /// `XLR_BLOCK_ID_TOPLEVEL_XID` (written for 14+ only).
    pub toplevel_xid: Option<u32>,
}

/// A block reference. `BKPBLOCK_SAME_REL` is set when `rel` is the previous block's.
#[derive(Debug, Clone, Default)]
pub struct BlockSpec<'a> {
    /// 0 to 32, increasing within a record.
    pub id: u8,
    /// The fork number (low 4 bits of `fork_flags`).
    pub fork: u8,
    /// `BKPBLOCK_WILL_INIT`.
    pub will_init: bool,
    /// `RelFileLocator`: tablespace, database, relation.
    pub rel: [u32; 3],
    pub blkno: u32,
    /// The block's data (`BKPBLOCK_HAS_DATA` when not empty).
    pub data: &'a [u8],
    /// A full-page image (`BKPBLOCK_HAS_IMAGE`).
    pub image: Option<ImageSpec<'a>>,
}

/// A full-page image as stored: the page without its hole, compressed or not.
#[derive(Debug, Clone, Default)]
pub struct ImageSpec<'a> {
    /// What is stored (`bimg_len` bytes): `BLCKSZ - hole_length` bytes uncompressed.
    pub bytes: &'a [u8],
    pub hole_offset: u16,
    /// `BKPIMAGE_HAS_HOLE` when not 0.
    pub hole_length: u16,
    /// Flags the image compressed (pglz in 13/14, `BKPIMAGE_COMPRESS_PGLZ` from 15).
    pub compressed: bool,
    /// `BKPIMAGE_APPLY`.
    pub apply: bool,
}

/// Writes WAL from a page boundary on, laid out as a server lays it out (see
/// `src/backend/access/transam/xloginsert.c`, `XLogRecordAssemble`).
///
/// ```
/// use pgwire_repl::wal::{Event, RecordSpec, WalBuilder, WalDecoder, WalVersion};
/// use pgwire_repl::{Lsn, WalSegmentSize};
///
/// let seg = WalSegmentSize::new(1 << 20).unwrap();
/// let mut wal = WalBuilder::new(WalVersion::from_major(16).unwrap(), seg, Lsn(1 << 20), 7);
/// let main = [1u8; 100];
/// let lsn = wal.record(&RecordSpec { rmid: 1, main_data: &main, ..Default::default() });
/// assert_eq!(lsn, Lsn((1 << 20) + 40));
///
/// let mut records = 0;
/// let mut decoder = WalDecoder::new(seg, Lsn(1 << 20));
/// decoder
///     .feed(wal.bytes(), &mut |e| records += matches!(e, Event::Record(_)) as u32)
///     .unwrap();
/// assert_eq!(records, 1);
/// ```
#[derive(Debug, Clone)]
pub struct WalBuilder {
    version: WalVersion,
    seg: WalSegmentSize,
    system_id: u64,
    tli: u32,
    start: u64,
    prev: u64,
    next_page_flags: u16,
    out: Vec<u8>,
}

impl WalBuilder {
    /// WAL of `version` from `start` (rounded down to a page boundary), on timeline 1.
    pub fn new(version: WalVersion, seg: WalSegmentSize, start: Lsn, system_id: u64) -> Self {
        let start = start.0 - start.0 % PAGE;
        WalBuilder {
            version,
            seg,
            system_id,
            tli: 1,
            start,
            prev: 0,
            next_page_flags: 0,
            out: Vec::new(),
        }
    }

    /// Pages from here on carry timeline `tli`.
    pub fn timeline(&mut self, tli: TimelineId) {
        self.tli = tli.0;
    }

    /// The next record's `xl_prev` (else the last record's start; 0 at first).
    pub fn set_prev(&mut self, prev: Lsn) {
        self.prev = prev.0;
    }

    /// The LSN of the next byte.
    pub fn position(&self) -> Lsn {
        Lsn(self.start + self.out.len() as u64)
    }

    /// The start of the last record written.
    pub fn last_record(&self) -> Lsn {
        Lsn(self.prev)
    }

    /// Everything written, from the start.
    pub fn bytes(&self) -> &[u8] {
        &self.out
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.out
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.out
    }

    /// Appends a record; returns its start.
    pub fn record(&mut self, r: &RecordSpec<'_>) -> Lsn {
        let body = self.body(r);
        self.raw_record(r.rmid, r.info, r.xid, &body)
    }

    /// Appends a record whose bytes after `XLogRecord` are `body`, as given (with a valid
    /// CRC): for records the decoder must refuse. Returns its start.
    pub fn raw_record(&mut self, rmid: u8, info: u8, xid: u32, body: &[u8]) -> Lsn {
        let bytes = self.assemble(rmid, info, xid, body);
        self.place(&bytes, bytes.len())
    }

    /// Appends a record but only up to the end of the page it reaches (it must not fit),
    /// and marks the next page `XLP_FIRST_IS_OVERWRITE_CONTRECORD`, as a server that
    /// crashed while writing it and then went on after it. The next record's `xl_prev` is
    /// the last complete record's. Returns the abandoned record's start.
    pub fn abandoned_record(&mut self, r: &RecordSpec<'_>) -> Lsn {
        let prev = self.prev;
        let body = self.body(r);
        let bytes = self.assemble(r.rmid, r.info, r.xid, &body);
        self.align();
        let room = (PAGE - self.pos() % PAGE) as usize;
        let keep = if self.pos().is_multiple_of(PAGE) {
            room - self.header_len(self.pos())
        } else {
            room
        };
        let lsn = self.place(&bytes[..keep.min(bytes.len())], bytes.len());
        self.prev = prev;
        self.next_page_flags |= PageFlags::FIRST_IS_OVERWRITE_CONTRECORD;
        lsn
    }

    /// Appends `XLOG_SWITCH` and zeros to the end of the segment; returns its start.
    pub fn switch(&mut self) -> Lsn {
        let lsn = self.raw_record(RM_XLOG_ID, XLOG_SWITCH, 0, &[]);
        let rest = (self.seg.bytes() as u64 - self.pos() % self.seg.bytes() as u64)
            % self.seg.bytes() as u64;
        self.zeros(rest as usize);
        lsn
    }

    /// Appends `n` zero bytes, page headers not included: the end of WAL.
    pub fn zeros(&mut self, n: usize) {
        self.out.resize(self.out.len() + n, 0);
    }

    fn pos(&self) -> u64 {
        self.start + self.out.len() as u64
    }

    fn header_len(&self, page: u64) -> usize {
        if self.seg.offset_of(Lsn(page)) == 0 {
            LONG_HEADER
        } else {
            SHORT_HEADER
        }
    }

    /// The bytes after `XLogRecord`.
    fn body(&self, r: &RecordSpec<'_>) -> Vec<u8> {
        let bits = self.version.bkpimage();
        let mut h = Vec::new();
        let mut last_rel: Option<[u32; 3]> = None;
        for b in r.blocks {
            let mut flags = b.fork & 0x0F;
            if b.image.is_some() {
                flags |= 0x10; // BKPBLOCK_HAS_IMAGE
            }
            if !b.data.is_empty() {
                flags |= 0x20; // BKPBLOCK_HAS_DATA
            }
            if b.will_init {
                flags |= 0x40; // BKPBLOCK_WILL_INIT
            }
            let same_rel = last_rel == Some(b.rel);
            if same_rel {
                flags |= 0x80; // BKPBLOCK_SAME_REL
            }
            h.push(b.id);
            h.push(flags);
            h.extend((b.data.len() as u16).to_le_bytes());
            if let Some(img) = &b.image {
                let mut info = 0;
                if img.hole_length > 0 {
                    info |= bits.has_hole;
                }
                if img.apply {
                    info |= bits.apply;
                }
                if img.compressed {
                    // IS_COMPRESSED (13/14) or COMPRESS_PGLZ (15+): the lowest set bit.
                    info |= bits.compressed & bits.compressed.wrapping_neg();
                }
                h.extend((img.bytes.len() as u16).to_le_bytes());
                h.extend(img.hole_offset.to_le_bytes());
                h.push(info);
                if img.compressed && img.hole_length > 0 {
                    h.extend(img.hole_length.to_le_bytes());
                }
            }
            if !same_rel {
                for oid in b.rel {
                    h.extend(oid.to_le_bytes());
                }
            }
            h.extend(b.blkno.to_le_bytes());
            last_rel = Some(b.rel);
        }
        if let Some(origin) = r.origin {
            h.push(253);
            h.extend(origin.to_le_bytes());
        }
        if let Some(xid) = r.toplevel_xid.filter(|_| self.version.has_toplevel_xid()) {
            h.push(252);
            h.extend(xid.to_le_bytes());
        }
        let main = r.main_data.len();
        if main > 255 {
            h.push(254);
            h.extend((main as u32).to_le_bytes());
        } else if main > 0 {
            h.push(255);
            h.push(main as u8);
        }
        for b in r.blocks {
            if let Some(img) = &b.image {
                h.extend_from_slice(img.bytes);
            }
            h.extend_from_slice(b.data);
        }
        h.extend_from_slice(r.main_data);
        h
    }

    /// `XLogRecord` + `body`, with the CRC.
    fn assemble(&self, rmid: u8, info: u8, xid: u32, body: &[u8]) -> Vec<u8> {
        let mut rec = Vec::with_capacity(SIZE_OF_XLOG_RECORD + body.len());
        rec.extend(((SIZE_OF_XLOG_RECORD + body.len()) as u32).to_le_bytes());
        rec.extend(xid.to_le_bytes());
        rec.extend(self.prev.to_le_bytes());
        rec.push(info);
        rec.push(rmid);
        rec.extend([0, 0]);
        let crc = crc32c::crc32c_append(crc32c::crc32c(body), &rec[..CRC_OFFSET]);
        rec.extend(crc.to_le_bytes());
        rec.extend_from_slice(body);
        rec
    }

    fn align(&mut self) {
        let pad = (8 - self.pos() % 8) % 8;
        self.zeros(pad as usize);
    }

    /// Writes the first bytes (`bytes`) of a record of `total` bytes at the next MAXALIGNed
    /// position, with page headers where pages start.
    fn place(&mut self, bytes: &[u8], total: usize) -> Lsn {
        self.align();
        let mut lsn = None;
        let mut done = 0;
        while done < bytes.len() || lsn.is_none() {
            if self.pos().is_multiple_of(PAGE) {
                self.page_header(if done > 0 { (total - done) as u32 } else { 0 });
            }
            lsn.get_or_insert(self.pos());
            let room = (PAGE - self.pos() % PAGE) as usize;
            let n = room.min(bytes.len() - done);
            self.out.extend_from_slice(&bytes[done..done + n]);
            done += n;
        }
        let lsn = lsn.unwrap_or(self.pos());
        self.prev = lsn;
        Lsn(lsn)
    }

    fn page_header(&mut self, rem_len: u32) {
        let page = self.pos();
        let long = self.header_len(page) == LONG_HEADER;
        let mut info = std::mem::take(&mut self.next_page_flags);
        if rem_len > 0 {
            info |= PageFlags::FIRST_IS_CONTRECORD;
        }
        if long {
            info |= PageFlags::LONG_HEADER;
        }
        self.out.extend(self.version.magic().to_le_bytes());
        self.out.extend(info.to_le_bytes());
        self.out.extend(self.tli.to_le_bytes());
        self.out.extend(page.to_le_bytes());
        self.out.extend(rem_len.to_le_bytes());
        self.out.extend([0; 4]);
        if long {
            self.out.extend(self.system_id.to_le_bytes());
            self.out.extend(self.seg.bytes().to_le_bytes());
            self.out.extend(XLOG_BLCKSZ.to_le_bytes());
        }
    }
}
