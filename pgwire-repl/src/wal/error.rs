//! What the decoder found wrong, in `xlogreader.c`'s words.
//!
//! Messages are those of `src/backend/access/transam/xlogreader.c` without the segment file
//! name (the decoder never knows files: LSNs say where) and with LSNs as `%X/%08X`, as
//! PostgreSQL prints them from 19 on.

use std::fmt;

use crate::lsn::Lsn;

use super::version::WalVersion;

/// An inconsistency in the WAL fed to a [`WalDecoder`](super::WalDecoder): the first one
/// found, at `lsn` (the page's LSN for page header problems, the record's start for record
/// problems).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalError {
    pub lsn: Lsn,
    pub kind: WalErrorKind,
}

/// What was wrong. The variants' names follow the checks in `xlogreader.c`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WalErrorKind {
    // XLogReaderValidatePageHeader
    /// `xlp_magic` is not `XLOG_PAGE_MAGIC` of a known version, or not that of the version
    /// the first page fixed (`expected`).
    InvalidMagic {
        magic: u16,
        expected: Option<WalVersion>,
    },
    /// `xlp_info` has bits outside `XLP_ALL_FLAGS`.
    InvalidInfoBits { info: u16 },
    /// A segment's first page without `XLP_LONG_HEADER`.
    MissingLongHeader { info: u16 },
    /// `XLP_LONG_HEADER` on a page that does not start a segment.
    UnexpectedLongHeader { info: u16 },
    /// `xlp_sysid` differs from the system identifier of earlier pages (or the one given).
    SystemIdMismatch { found: u64, expected: u64 },
    /// `xlp_seg_size` is not the decoder's segment size.
    SegmentSizeMismatch { found: u32, expected: u32 },
    /// `xlp_xlog_blcksz` is not 8192.
    BlockSizeMismatch { found: u32 },
    /// `xlp_pageaddr` is not the page's own LSN.
    UnexpectedPageAddr { pageaddr: Lsn },
    /// `xlp_tli` is lower than the previous page's.
    TimelineOutOfSequence { tli: u32, after: u32 },

    // XLogDecodeNextRecord
    /// A record continues onto a page without `XLP_FIRST_IS_CONTRECORD` there.
    NoContrecordFlag { page: Lsn },
    /// `xlp_rem_len` disagrees with what is left of the record being continued.
    ContrecordLength {
        rem_len: u32,
        expected: u32,
        page: Lsn,
    },
    /// A new record was due at a page start, but the page says a record continues there.
    ContrecordRequested,
    /// The first record's start is inside a page header or not MAXALIGNed.
    InvalidRecordOffset { offset: u32 },
    /// Decoding from the middle of a page needs the version up front (no page header there
    /// to tell it).
    VersionUnknown,
    /// Past the end of the LSN space.
    LsnOverflow,

    // ValidXLogRecordHeader
    /// `xl_tot_len` below `SizeOfXLogRecord` (24); zero is the end of WAL, not this.
    RecordTooShort { tot_len: u32 },
    /// `xl_tot_len` above what the version allows.
    RecordTooLong { tot_len: u32 },
    /// `xl_rmid` unknown to the version.
    InvalidRmgr { rmid: u8 },
    /// `xl_prev` is not the previous record's start (or, for the first record with no
    /// expected value, not below the record's own start).
    IncorrectPrev { prev: Lsn },

    // ValidXLogRecord
    /// The record's CRC-32C does not match `xl_crc`.
    Checksum { stored: u32, computed: u32 },

    // DecodeXLogRecord
    /// A block id not above the previous one.
    OutOfOrderBlock { block_id: u8 },
    /// A block id that is neither 0 to `XLR_MAX_BLOCK_ID` nor a special one of the version.
    InvalidBlockId { block_id: u8 },
    /// `BKPBLOCK_HAS_DATA` with `data_length` 0.
    HasDataWithoutData,
    /// `data_length` > 0 without `BKPBLOCK_HAS_DATA`.
    DataWithoutHasData { data_len: u16 },
    /// `BKPIMAGE_HAS_HOLE` with an empty hole or a full-size image.
    HoleInvalid {
        hole_offset: u16,
        hole_length: u16,
        bimg_len: u16,
    },
    /// A hole without `BKPIMAGE_HAS_HOLE`.
    HoleWithoutFlag { hole_offset: u16, hole_length: u16 },
    /// A compressed image as long as a page.
    CompressedFullPage { bimg_len: u16 },
    /// An uncompressed image without hole that is not a whole page.
    ImageLength { bimg_len: u16 },
    /// `BKPBLOCK_SAME_REL` on the first block that names a relation.
    SameRelWithoutRel,
    /// The block and data headers do not add up to `xl_tot_len`.
    InvalidLength,
}

/// An LSN as `%X/%08X`.
struct L(Lsn);

impl fmt::Display for L {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:08X}", self.0 .0 >> 32, self.0 .0 as u32)
    }
}

impl fmt::Display for WalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use WalErrorKind as K;
        let at = L(self.lsn);
        match &self.kind {
            K::InvalidMagic { magic, expected } => {
                write!(f, "invalid magic number {magic:04X} at LSN {at}")?;
                match expected {
                    Some(v) => write!(f, " (expected {:04X}, {v})", v.magic()),
                    None => write!(f, " (not PostgreSQL 13 to 18)"),
                }
            }
            K::InvalidInfoBits { info } => write!(f, "invalid info bits {info:04X} at LSN {at}"),
            K::MissingLongHeader { info } => write!(
                f,
                "invalid info bits {info:04X} at LSN {at}: a segment's first page needs a long header"
            ),
            K::UnexpectedLongHeader { info } => write!(
                f,
                "invalid info bits {info:04X} at LSN {at}: a long header is only for a segment's first page"
            ),
            K::SystemIdMismatch { found, expected } => write!(
                f,
                "WAL file is from different database system: WAL file database system identifier is {found}, expected {expected} (at LSN {at})"
            ),
            K::SegmentSizeMismatch { found, expected } => write!(
                f,
                "WAL file is from different database system: incorrect segment size in page header ({found}, expected {expected}) at LSN {at}"
            ),
            K::BlockSizeMismatch { found } => write!(
                f,
                "WAL file is from different database system: incorrect XLOG_BLCKSZ in page header ({found}, expected 8192) at LSN {at}"
            ),
            K::UnexpectedPageAddr { pageaddr } => {
                write!(f, "unexpected pageaddr {} at LSN {at}", L(*pageaddr))
            }
            K::TimelineOutOfSequence { tli, after } => write!(
                f,
                "out-of-sequence timeline ID {tli} (after {after}) at LSN {at}"
            ),
            K::NoContrecordFlag { page } => write!(
                f,
                "there is no contrecord flag at {at} (page {})",
                L(*page)
            ),
            K::ContrecordLength {
                rem_len,
                expected,
                page,
            } => write!(
                f,
                "invalid contrecord length {rem_len} (expected {expected}) at {at} (page {})",
                L(*page)
            ),
            K::ContrecordRequested => write!(f, "contrecord is requested by {at}"),
            K::InvalidRecordOffset { offset } => write!(
                f,
                "invalid record offset at {at}: offset {offset} in its page is not a record start"
            ),
            K::VersionUnknown => write!(
                f,
                "cannot decode from {at}: the WAL version is unknown (start at a page boundary or set it)"
            ),
            K::LsnOverflow => write!(f, "WAL position overflow at {at}"),
            K::RecordTooShort { tot_len } => write!(
                f,
                "invalid record length at {at}: expected at least 24, got {tot_len}"
            ),
            K::RecordTooLong { tot_len } => write!(f, "record length {tot_len} at {at} too long"),
            K::InvalidRmgr { rmid } => write!(f, "invalid resource manager ID {rmid} at {at}"),
            K::IncorrectPrev { prev } => write!(
                f,
                "record with incorrect prev-link {} at {at}",
                L(*prev)
            ),
            K::Checksum { stored, computed } => write!(
                f,
                "incorrect resource manager data checksum in record at {at} (stored {stored:08X}, computed {computed:08X})"
            ),
            K::OutOfOrderBlock { block_id } => {
                write!(f, "out-of-order block_id {block_id} at {at}")
            }
            K::InvalidBlockId { block_id } => write!(f, "invalid block_id {block_id} at {at}"),
            K::HasDataWithoutData => {
                write!(f, "BKPBLOCK_HAS_DATA set, but no data included at {at}")
            }
            K::DataWithoutHasData { data_len } => write!(
                f,
                "BKPBLOCK_HAS_DATA not set, but data length is {data_len} at {at}"
            ),
            K::HoleInvalid {
                hole_offset,
                hole_length,
                bimg_len,
            } => write!(
                f,
                "BKPIMAGE_HAS_HOLE set, but hole offset {hole_offset} length {hole_length} block image length {bimg_len} at {at}"
            ),
            K::HoleWithoutFlag {
                hole_offset,
                hole_length,
            } => write!(
                f,
                "BKPIMAGE_HAS_HOLE not set, but hole offset {hole_offset} length {hole_length} at {at}"
            ),
            K::CompressedFullPage { bimg_len } => write!(
                f,
                "BKPIMAGE_COMPRESSED set, but block image length {bimg_len} at {at}"
            ),
            K::ImageLength { bimg_len } => write!(
                f,
                "neither BKPIMAGE_HAS_HOLE nor BKPIMAGE_COMPRESSED set, but block image length is {bimg_len} at {at}"
            ),
            K::SameRelWithoutRel => {
                write!(f, "BKPBLOCK_SAME_REL set but no previous rel at {at}")
            }
            K::InvalidLength => write!(f, "record with invalid length at {at}"),
        }
    }
}

impl std::error::Error for WalError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording() {
        let e = |lsn: u64, kind| WalError {
            lsn: Lsn(lsn),
            kind,
        };
        assert_eq!(
            e(
                0x1_0000_2000,
                WalErrorKind::UnexpectedPageAddr {
                    pageaddr: Lsn(0x2000)
                }
            )
            .to_string(),
            "unexpected pageaddr 0/00002000 at LSN 1/00002000"
        );
        assert_eq!(
            e(0x3000028, WalErrorKind::IncorrectPrev { prev: Lsn(5) }).to_string(),
            "record with incorrect prev-link 0/00000005 at 0/03000028"
        );
        assert_eq!(
            e(0x18, WalErrorKind::InvalidRmgr { rmid: 99 }).to_string(),
            "invalid resource manager ID 99 at 0/00000018"
        );
    }
}
