//! WAL page headers: `XLogPageHeaderData` and `XLogLongPageHeaderData`
//! (`src/include/access/xlog_internal.h`), checked as `XLogReaderValidatePageHeader` in
//! `src/backend/access/transam/xlogreader.c` checks them.
//!
//! ```text
//! XLogPageHeaderData (SizeOfXLogShortPHD = MAXALIGN(20) = 24 bytes)
//!   0  uint16     xlp_magic      XLOG_PAGE_MAGIC of the version
//!   2  uint16     xlp_info       XLP_* flags
//!   4  TimeLineID xlp_tli        timeline of the first record on the page
//!   8  XLogRecPtr xlp_pageaddr   the page's own LSN
//!  16  uint32     xlp_rem_len    bytes of a continued record still to come
//!  20  (padding)
//! XLogLongPageHeaderData (SizeOfXLogLongPHD = MAXALIGN(36) = 40 bytes), a segment's first page
//!  24  uint64     xlp_sysid         system identifier from pg_control
//!  32  uint32     xlp_seg_size      "just as a cross-check"
//!  36  uint32     xlp_xlog_blcksz   "just as a cross-check"
//! ```
//!
//! Every field is in the server's byte order; this module reads little-endian WAL (x86-64,
//! ARM64 and every other platform PostgreSQL is commonly built for).

use crate::lsn::{Lsn, TimelineId, WalSegmentSize};

use super::error::WalErrorKind;
use super::version::WalVersion;

/// `XLOG_BLCKSZ`: WAL page size. Servers built with another one are refused by the long
/// header check.
pub const XLOG_BLCKSZ: u32 = 8192;
/// `SizeOfXLogShortPHD`.
pub(crate) const SHORT_HEADER: usize = 24;
/// `SizeOfXLogLongPHD`.
pub(crate) const LONG_HEADER: usize = 40;

/// The `xlp_info` flags of a page (`XLP_*` in `xlog_internal.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PageFlags(pub u16);

impl PageFlags {
    /// `XLP_FIRST_IS_CONTRECORD`: "When record crosses page boundary, set this flag in new
    /// page's header".
    pub const FIRST_IS_CONTRECORD: u16 = 0x0001;
    /// `XLP_LONG_HEADER`: "This flag indicates a "long" page header".
    pub const LONG_HEADER: u16 = 0x0002;
    /// `XLP_BKP_REMOVABLE`: "backup blocks starting in this page are optional".
    pub const BKP_REMOVABLE: u16 = 0x0004;
    /// `XLP_FIRST_IS_OVERWRITE_CONTRECORD`: "Replaces a missing contrecord; see
    /// CreateOverwriteContrecordRecord".
    pub const FIRST_IS_OVERWRITE_CONTRECORD: u16 = 0x0008;

    pub fn contains(self, flag: u16) -> bool {
        self.0 & flag == flag
    }

    pub fn is_contrecord(self) -> bool {
        self.contains(Self::FIRST_IS_CONTRECORD)
    }

    pub fn is_long(self) -> bool {
        self.contains(Self::LONG_HEADER)
    }

    pub fn is_overwrite_contrecord(self) -> bool {
        self.contains(Self::FIRST_IS_OVERWRITE_CONTRECORD)
    }
}

/// A page header that passed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageInfo {
    /// The page's LSN (a multiple of 8192).
    pub lsn: Lsn,
    /// `xlp_tli`: the timeline of the first record on the page. A caller reading a segment
    /// file can compare it with the file name's timeline.
    pub tli: TimelineId,
    pub flags: PageFlags,
    /// `xlp_rem_len`: bytes of a record continued from earlier pages still to come.
    pub rem_len: u32,
    /// The long header's fields, on a segment's first page.
    pub long: Option<LongPageInfo>,
}

/// The fields of `XLogLongPageHeaderData` beyond the short header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongPageInfo {
    /// `xlp_sysid`: the cluster's system identifier.
    pub system_id: u64,
    /// `xlp_seg_size`.
    pub seg_size: u32,
    /// `xlp_xlog_blcksz`.
    pub blcksz: u32,
}

/// The raw fields of a page header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawPageHeader {
    pub magic: u16,
    pub info: u16,
    pub tli: u32,
    pub pageaddr: u64,
    pub rem_len: u32,
}

impl RawPageHeader {
    /// Reads the short header from its 24 bytes.
    pub fn decode(b: &[u8; SHORT_HEADER]) -> RawPageHeader {
        RawPageHeader {
            magic: u16::from_le_bytes([b[0], b[1]]),
            info: u16::from_le_bytes([b[2], b[3]]),
            tli: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            pageaddr: u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]),
            rem_len: u32::from_le_bytes([b[16], b[17], b[18], b[19]]),
        }
    }
}

impl LongPageInfo {
    /// Reads the long header's extra fields from bytes 24 to 40 of the header.
    pub(crate) fn decode(b: &[u8; LONG_HEADER - SHORT_HEADER]) -> LongPageInfo {
        LongPageInfo {
            system_id: u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            seg_size: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            blcksz: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
        }
    }
}

/// What `XLogReaderValidatePageHeader` checks a page header against: what earlier pages (or
/// the caller) fixed.
#[derive(Debug, Clone)]
pub(crate) struct PageChecks {
    pub seg: WalSegmentSize,
    pub version: Option<WalVersion>,
    pub system_id: Option<u64>,
    /// The previous page's timeline.
    pub last_tli: Option<u32>,
}

impl PageChecks {
    /// Magic and info bits; the long header where (and only where) a segment starts. The
    /// first magic seen fixes the version.
    pub fn short(&mut self, raw: &RawPageHeader, segment_start: bool) -> Result<(), WalErrorKind> {
        let version = match (self.version, WalVersion::from_magic(raw.magic)) {
            (Some(v), _) if v.magic() == raw.magic => v,
            (None, Some(v)) => {
                self.version = Some(v);
                v
            }
            (expected, _) => {
                return Err(WalErrorKind::InvalidMagic {
                    magic: raw.magic,
                    expected,
                })
            }
        };
        let info = raw.info;
        // "if ((hdr->xlp_info & ~XLP_ALL_FLAGS) != 0)"
        if info & !version.xlp_all_flags() != 0 {
            return Err(WalErrorKind::InvalidInfoBits { info });
        }
        let has_long = info & PageFlags::LONG_HEADER != 0;
        // "hmm, first page of file doesn't have a long header?"
        if segment_start && !has_long {
            return Err(WalErrorKind::MissingLongHeader { info });
        }
        if !segment_start && has_long {
            return Err(WalErrorKind::UnexpectedLongHeader { info });
        }
        Ok(())
    }

    /// The long header's fields: the same system, this segment size, this page size.
    pub fn long(&mut self, info: &LongPageInfo) -> Result<(), WalErrorKind> {
        match self.system_id {
            Some(expected) if expected != info.system_id => {
                return Err(WalErrorKind::SystemIdMismatch {
                    found: info.system_id,
                    expected,
                })
            }
            _ => self.system_id = Some(info.system_id),
        }
        if info.seg_size != self.seg.bytes() {
            return Err(WalErrorKind::SegmentSizeMismatch {
                found: info.seg_size,
                expected: self.seg.bytes(),
            });
        }
        if info.blcksz != XLOG_BLCKSZ {
            return Err(WalErrorKind::BlockSizeMismatch { found: info.blcksz });
        }
        Ok(())
    }

    /// "Check that the address on the page agrees with what we expected", and "we should
    /// never see TLI go backwards across successive pages of a consistent WAL sequence".
    pub fn address(&mut self, page: u64, raw: &RawPageHeader) -> Result<(), WalErrorKind> {
        if raw.pageaddr != page {
            return Err(WalErrorKind::UnexpectedPageAddr {
                pageaddr: Lsn(raw.pageaddr),
            });
        }
        if let Some(after) = self.last_tli.filter(|&after| raw.tli < after) {
            return Err(WalErrorKind::TimelineOutOfSequence {
                tli: raw.tli,
                after,
            });
        }
        self.last_tli = Some(raw.tli);
        Ok(())
    }
}
