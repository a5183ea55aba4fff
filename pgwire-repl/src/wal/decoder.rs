//! The decoder: WAL bytes in, pages and records out, checked as `xlogreader.c` checks them.
//!
//! Bytes arrive in LSN order in pieces of any size. Each byte is looked at once, in one of
//! three places:
//!
//! 1. a page header (24 or 40 bytes at every 8192-byte boundary), gathered into a small
//!    array when a piece ends inside it, then validated (`XLogReaderValidatePageHeader`)
//!    and checked against the record in progress (`XLP_FIRST_IS_CONTRECORD`, `xlp_rem_len`);
//! 2. a record header (`XLogRecord`, 24 bytes, possibly split across pages), gathered the
//!    same way and validated (`ValidXLogRecordHeader`) before any length in it is trusted;
//! 3. the rest of the record: fed to the CRC-32C as it comes, and its first bytes — the
//!    block and data headers — to the [`BlockWalker`], which holds one field at a time.
//!
//! So a record is never assembled: memory does not depend on what the WAL declares.

use crate::lsn::{Lsn, TimelineId, WalSegmentSize};

use super::blocks::BlockWalker;
use super::error::{WalError, WalErrorKind};
use super::event::{EndInfo, EndReason, Event, OverwrittenInfo};
use super::page::{
    LongPageInfo, PageChecks, PageFlags, PageInfo, RawPageHeader, LONG_HEADER, SHORT_HEADER,
};
use super::record::{
    RawRecordHeader, RecordInfo, CRC_OFFSET, SIZE_OF_XLOG_RECORD, XLOG_SWITCH, XLR_INFO_MASK,
};
use super::rmgr::{rmgr_name, RM_XLOG_ID};
use super::version::WalVersion;

mod pages;

const PAGE: u64 = super::page::XLOG_BLCKSZ as u64;
/// `MAXIMUM_ALIGNOF`: records start at multiples of 8.
const MAXALIGN: u64 = 8;

/// What the next record's `xl_prev` must be.
#[derive(Debug, Clone, Copy)]
enum PrevLink {
    /// Not known: below the record's own start (`xlogreader`'s random-access check).
    Below,
    /// Exactly this.
    Exact(u64),
}

/// Where the decoder is in the record stream.
#[derive(Debug, Clone)]
enum Rec {
    /// Started at a page boundary: the first page may continue a record begun earlier.
    FirstPage,
    /// Skipping the rest of a record begun before the start (not checked, as
    /// `XLogFindNextRecord` skips it).
    SkipCont { left: u32 },
    /// A record starts at the next MAXALIGNed position.
    Boundary,
    /// Gathering a record header: `have` bytes in `hdr` so far.
    Header { have: u8 },
    /// In a record's body: `left` bytes still to come.
    Body { left: u32 },
}

/// The record in progress.
#[derive(Debug, Clone)]
struct Current {
    lsn: u64,
    hdr: [u8; SIZE_OF_XLOG_RECORD],
    /// Valid once 4 header bytes are in.
    tot_len: u32,
    /// Valid once the header is complete.
    raw: Option<RawRecordHeader>,
    crc: u32,
    walker: Option<BlockWalker>,
}

impl Current {
    /// Bytes of the record read so far.
    fn got(&self, rec: &Rec) -> u32 {
        match rec {
            Rec::Header { have } => u32::from(*have),
            Rec::Body { left } => self.tot_len - left,
            _ => 0,
        }
    }
}

/// Whether the decoder can take more bytes.
#[derive(Debug, Clone)]
enum Done {
    No,
    Ended(EndInfo),
    Failed(WalError),
}

/// A sans-IO WAL decoder for PostgreSQL 13 to 18: fed WAL bytes in LSN order, it reports
/// pages and records and checks what PostgreSQL's `xlogreader.c` checks.
///
/// Use:
/// 1. [`new`](Self::new) at a record boundary the caller knows — normally a segment start,
///    where the first page header fixes the version and a record continued from the
///    previous segment is skipped (as `pg_waldump` skips it); optionally
///    [`expect_prev`](Self::expect_prev), [`expect_system_id`](Self::expect_system_id), and
///    [`set_version`](Self::set_version) (needed to start inside a page);
/// 2. [`feed`](Self::feed) the bytes from there on, split anywhere; each call reports what
///    the bytes completed through the callback, in order;
/// 3. stop at the first error (the decoder is then done: every later call returns it again)
///    or at [`Event::End`] (later bytes are accepted and ignored, as `xlogreader` reads
///    nothing past the end of WAL).
///
/// Decoding never allocates and copies nothing but page and record headers (into fixed
/// arrays) and one block-header field at a time; the CRC is computed over the caller's
/// slices.
///
/// ```
/// use pgwire_repl::wal::{Event, WalDecoder};
/// use pgwire_repl::{Lsn, WalSegmentSize};
///
/// let seg = WalSegmentSize::new(16 << 20).unwrap();
/// let mut decoder = WalDecoder::new(seg, Lsn(0x3000000));
/// // A zero-filled segment, as a pre-allocated file: the end of WAL at once.
/// let mut events = Vec::new();
/// decoder.feed(&[0; 8192], &mut |e| events.push(e)).unwrap();
/// assert!(matches!(events[..], [Event::End(end)] if end.lsn == Lsn(0x3000000)));
/// ```
#[derive(Debug, Clone)]
pub struct WalDecoder {
    seg: WalSegmentSize,
    /// LSN of the next byte.
    pos: u64,
    /// Version, system identifier, timeline: what page headers are checked against.
    pages: PageChecks,
    prev: PrevLink,
    /// `EndRecPtr`: where the record after the last complete one starts.
    next_rec: u64,
    /// Gathering a page header: bytes in `phdr` so far (0 when not gathering).
    phdr: [u8; LONG_HEADER],
    phdr_have: u8,
    /// Skipping the padding after `XLOG_SWITCH` up to this LSN.
    skip_to: Option<u64>,
    rec: Rec,
    cur: Current,
    done: Done,
    /// Whether the start position was checked (on the first feed).
    checked_start: bool,
}

impl WalDecoder {
    /// A decoder for WAL of segment size `seg` from `start`: a record's start or a page
    /// start (then page headers are checked from there on).
    pub fn new(seg: WalSegmentSize, start: Lsn) -> WalDecoder {
        WalDecoder {
            seg,
            pos: start.0,
            pages: PageChecks {
                seg,
                version: None,
                system_id: None,
                last_tli: None,
            },
            prev: PrevLink::Below,
            next_rec: start.0,
            phdr: [0; LONG_HEADER],
            phdr_have: 0,
            skip_to: None,
            rec: if start.0.is_multiple_of(PAGE) {
                Rec::FirstPage
            } else {
                Rec::Boundary
            },
            cur: Current {
                lsn: 0,
                hdr: [0; SIZE_OF_XLOG_RECORD],
                tot_len: 0,
                raw: None,
                crc: 0,
                walker: None,
            },
            done: Done::No,
            checked_start: false,
        }
    }

    /// The first record's `xl_prev` must be `prev` (the last record of the previous
    /// segment, say). Without it, any `xl_prev` below the record's own start is accepted,
    /// as `xlogreader` does after a random-access start.
    pub fn expect_prev(&mut self, prev: Lsn) {
        self.prev = PrevLink::Exact(prev.0);
    }

    /// Long page headers must carry this system identifier (else the first one seen fixes
    /// it).
    pub fn expect_system_id(&mut self, system_id: u64) {
        self.pages.system_id = Some(system_id);
    }

    /// The WAL version, when known beforehand (from the server's version, for one): page
    /// headers must then carry its magic. Needed to start inside a page.
    pub fn set_version(&mut self, version: WalVersion) {
        self.pages.version = Some(version);
    }

    /// The LSN of the next byte expected.
    pub fn position(&self) -> Lsn {
        Lsn(self.pos)
    }

    /// The version, once a page header (or [`set_version`](Self::set_version)) said it.
    pub fn version(&self) -> Option<WalVersion> {
        self.pages.version
    }

    /// The system identifier, once a long page header (or
    /// [`expect_system_id`](Self::expect_system_id)) said it.
    pub fn system_id(&self) -> Option<u64> {
        self.pages.system_id
    }

    /// The end of WAL, once found.
    pub fn end(&self) -> Option<EndInfo> {
        match self.done {
            Done::Ended(e) => Some(e),
            _ => None,
        }
    }

    /// Feeds `bytes`, the WAL from [`position`](Self::position) on, reporting what they
    /// complete to `on`. Returns the first inconsistency; the decoder is then done.
    pub fn feed(&mut self, bytes: &[u8], on: &mut dyn FnMut(Event)) -> Result<(), WalError> {
        match &self.done {
            Done::Failed(e) => return Err(e.clone()),
            Done::Ended(_) => return self.advance(bytes.len()),
            Done::No => {}
        }
        if !self.checked_start {
            self.checked_start = true;
            self.check_start().map_err(|e| self.fail(e))?;
        }
        let mut input = bytes;
        while !input.is_empty() {
            let n = match self.step(input, on) {
                Ok(n) => n,
                Err(e) => return Err(self.fail(e)),
            };
            self.advance(n)?;
            input = &input[n..];
            if let Done::Ended(_) = self.done {
                return self.advance(input.len());
            }
        }
        Ok(())
    }

    fn fail(&mut self, e: WalError) -> WalError {
        self.done = Done::Failed(e.clone());
        e
    }

    fn err(&self, lsn: u64, kind: WalErrorKind) -> WalError {
        WalError {
            lsn: Lsn(lsn),
            kind,
        }
    }

    /// The LSN `n` bytes on: the end of the last page of the LSN space is 2^64, one past
    /// what an LSN can say.
    fn after(&self, n: usize) -> Result<u64, WalError> {
        self.pos
            .checked_add(n as u64)
            .ok_or_else(|| self.err(self.pos, WalErrorKind::LsnOverflow))
    }

    fn advance(&mut self, n: usize) -> Result<(), WalError> {
        match self.pos.checked_add(n as u64) {
            Some(p) => {
                self.pos = p;
                Ok(())
            }
            None => {
                let e = self.err(self.pos, WalErrorKind::LsnOverflow);
                Err(self.fail(e))
            }
        }
    }

    /// A start inside a page must be a possible record start, with the version known.
    fn check_start(&self) -> Result<(), WalError> {
        let offset = (self.pos % PAGE) as u32;
        if offset == 0 {
            return Ok(());
        }
        let header = if self.seg.offset_of(Lsn(self.pos)) < PAGE as u32 {
            LONG_HEADER
        } else {
            SHORT_HEADER
        };
        if (offset as usize) < header || u64::from(offset) % MAXALIGN != 0 {
            return Err(self.err(self.pos, WalErrorKind::InvalidRecordOffset { offset }));
        }
        if self.pages.version.is_none() {
            return Err(self.err(self.pos, WalErrorKind::VersionUnknown));
        }
        Ok(())
    }

    /// Takes what it can from the front of `input` (never past the current page or
    /// record); returns how much.
    fn step(&mut self, input: &[u8], on: &mut dyn FnMut(Event)) -> Result<usize, WalError> {
        if let Some(to) = self.skip_to {
            let n = (to - self.pos).min(input.len() as u64) as usize;
            if self.pos + n as u64 == to {
                self.skip_to = None;
            }
            return Ok(n);
        }
        let in_page = self.pos % PAGE;
        if in_page == 0 || self.phdr_have > 0 {
            return self.page_header(input, on);
        }
        // The rest of this page, at most.
        let room = (PAGE - in_page) as usize;
        let body = &input[..input.len().min(room)];
        self.records(body, on)
    }

    fn found_end(&mut self, found_at: u64, why: EndReason, on: &mut dyn FnMut(Event)) {
        let info = EndInfo {
            lsn: Lsn(self.next_rec),
            found_at: Lsn(found_at),
            why,
        };
        self.done = Done::Ended(info);
        on(Event::End(info));
    }

    /// Record bytes within one page (`body` never crosses the page's end).
    fn records(&mut self, body: &[u8], on: &mut dyn FnMut(Event)) -> Result<usize, WalError> {
        match self.rec {
            Rec::FirstPage => {
                // Only reachable when starting inside a page: the first bytes are a record.
                self.rec = Rec::Boundary;
                Ok(0)
            }
            Rec::SkipCont { left } => {
                let n = (left as usize).min(body.len());
                let left = left - n as u32;
                self.rec = if left == 0 {
                    // Records start MAXALIGNed after the continuation.
                    Rec::Boundary
                } else {
                    Rec::SkipCont { left }
                };
                Ok(n)
            }
            Rec::Boundary => {
                let pad = ((MAXALIGN - self.pos % MAXALIGN) % MAXALIGN) as usize;
                if pad > 0 {
                    // Alignment padding, never past the page's end (pages are MAXALIGNed).
                    return Ok(pad.min(body.len()));
                }
                self.cur.lsn = self.pos;
                self.cur.raw = None;
                self.cur.walker = None;
                self.rec = Rec::Header { have: 0 };
                match whole_record_len(body) {
                    Some(len) => self.whole_record(&body[..len], on),
                    None => Ok(0),
                }
            }
            Rec::Header { have } => self.record_header(have, body, on),
            Rec::Body { left } => {
                let n = (left as usize).min(body.len());
                let piece = &body[..n];
                self.cur.crc = crc32c::crc32c_append(self.cur.crc, piece);
                if let Some(w) = self.cur.walker.as_mut().filter(|w| !w.is_done()) {
                    w.feed(piece);
                }
                let left = left - n as u32;
                self.rec = Rec::Body { left };
                if left == 0 {
                    self.record_done(self.after(n)?, on)?;
                }
                Ok(n)
            }
        }
    }

    /// A record that lies whole in `rec` (within one page, with data after its header: see
    /// [`whole_record_len`]), taken in one step rather than one per part: the same checks,
    /// in the same order, as the header and body steps make. Most records are small, and
    /// this is most of them.
    fn whole_record(&mut self, rec: &[u8], on: &mut dyn FnMut(Event)) -> Result<usize, WalError> {
        let first = self.record_header(0, rec, on)?;
        let rest = self.record_header(first as u8, &rec[first..], on)?;
        let Rec::Body { left } = self.rec else {
            // Not reached: whole_record_len wants data after the header.
            return Ok(first + rest);
        };
        let body = &rec[first + rest..];
        debug_assert_eq!(body.len(), left as usize);
        self.cur.crc = crc32c::crc32c_append(self.cur.crc, body);
        if let Some(w) = self.cur.walker.as_mut() {
            w.feed(body);
        }
        self.rec = Rec::Body { left: 0 };
        self.record_done(self.after(rec.len())?, on)?;
        Ok(rec.len())
    }

    /// Gathers a record header; checks `xl_tot_len` as soon as it is in and the rest
    /// once the header is whole.
    fn record_header(
        &mut self,
        have: u8,
        body: &[u8],
        on: &mut dyn FnMut(Event),
    ) -> Result<usize, WalError> {
        let have = usize::from(have);
        // Up to xl_tot_len first, to see the end of WAL before waiting for more.
        let need = if have < 4 { 4 } else { SIZE_OF_XLOG_RECORD };
        let take = (need - have).min(body.len());
        self.cur.hdr[have..have + take].copy_from_slice(&body[..take]);
        let have = have + take;
        self.rec = Rec::Header { have: have as u8 };
        if have < need {
            return Ok(take);
        }
        let lsn = self.cur.lsn;
        let version = self
            .pages
            .version
            .ok_or_else(|| self.err(lsn, WalErrorKind::VersionUnknown))?;
        if need == 4 {
            let h = &self.cur.hdr;
            let tot_len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
            if tot_len == 0 {
                self.found_end(lsn, EndReason::ZeroRecord, on);
                return Ok(take);
            }
            if tot_len < SIZE_OF_XLOG_RECORD as u32 {
                return Err(self.err(lsn, WalErrorKind::RecordTooShort { tot_len }));
            }
            if version.record_too_long(tot_len) {
                return Err(self.err(lsn, WalErrorKind::RecordTooLong { tot_len }));
            }
            self.cur.tot_len = tot_len;
            return Ok(take);
        }
        let raw = RawRecordHeader::decode(&self.cur.hdr);
        // ValidXLogRecordHeader
        if rmgr_name(version, raw.rmid).is_none() {
            return Err(self.err(lsn, WalErrorKind::InvalidRmgr { rmid: raw.rmid }));
        }
        let prev_ok = match self.prev {
            // "We can't exactly verify the prev-link, but surely it should be less than
            // the record's own address."
            PrevLink::Below => raw.prev < lsn,
            // "Record's prev-link should exactly match our previous location."
            PrevLink::Exact(p) => raw.prev == p,
        };
        if !prev_ok {
            return Err(self.err(
                lsn,
                WalErrorKind::IncorrectPrev {
                    prev: Lsn(raw.prev),
                },
            ));
        }
        self.cur.raw = Some(raw);
        self.cur.crc = 0;
        self.cur.walker = Some(BlockWalker::new(version, raw.tot_len));
        let left = raw.tot_len - SIZE_OF_XLOG_RECORD as u32;
        self.rec = Rec::Body { left };
        if left == 0 {
            self.record_done(self.after(take)?, on)?;
        }
        Ok(take)
    }

    /// The record's last byte is in, ending at `end`: CRC (`ValidXLogRecord`), then the
    /// block headers (`DecodeXLogRecord`), in `xlogreader`'s order.
    fn record_done(&mut self, end: u64, on: &mut dyn FnMut(Event)) -> Result<(), WalError> {
        let lsn = self.cur.lsn;
        let (Some(raw), Some(walker), Some(version)) =
            (self.cur.raw, self.cur.walker.as_mut(), self.pages.version)
        else {
            return Err(self.err(lsn, WalErrorKind::InvalidLength));
        };
        // "include the record header last"
        let computed = crc32c::crc32c_append(self.cur.crc, &self.cur.hdr[..CRC_OFFSET]);
        if computed != raw.crc {
            return Err(self.err(
                lsn,
                WalErrorKind::Checksum {
                    stored: raw.crc,
                    computed,
                },
            ));
        }
        walker.feed(&[]);
        let fpi_len = walker.finish().map_err(|kind| self.err(lsn, kind))?;
        let is_switch = raw.rmid == RM_XLOG_ID && raw.info & !XLR_INFO_MASK == XLOG_SWITCH;
        let overflow = || self.err(lsn, WalErrorKind::LsnOverflow);
        let mut next = end
            .checked_next_multiple_of(MAXALIGN)
            .ok_or_else(overflow)?;
        if is_switch {
            // "Pretend it extends to end of segment"
            next = next
                .checked_next_multiple_of(u64::from(self.seg.bytes()))
                .ok_or_else(overflow)?;
            if next > end {
                self.skip_to = Some(next);
            }
        }
        self.prev = PrevLink::Exact(lsn);
        self.next_rec = next;
        self.rec = Rec::Boundary;
        on(Event::Record(RecordInfo {
            lsn: Lsn(lsn),
            end: Lsn(next),
            prev: Lsn(raw.prev),
            xid: raw.xid,
            rmid: raw.rmid,
            info: raw.info,
            tot_len: raw.tot_len,
            fpi_len,
            rmgr_name: rmgr_name(version, raw.rmid).unwrap_or("?"),
            is_switch,
        }));
        Ok(())
    }
}

/// The length of the record starting at `body`'s first byte when all of it is in `body` and
/// it has data after its header (`xl_tot_len` above the header's size); `None` otherwise,
/// and for lengths the header step must judge (0, too short).
fn whole_record_len(body: &[u8]) -> Option<usize> {
    let tot = u32::from_le_bytes(body.get(..4)?.try_into().ok()?) as usize;
    (tot > SIZE_OF_XLOG_RECORD && tot <= body.len()).then_some(tot)
}
