//! WAL record headers: `XLogRecord` (`src/include/access/xlogrecord.h`), and what the
//! decoder reports of each record.
//!
//! ```text
//! XLogRecord (SizeOfXLogRecord = 24 bytes), at a MAXALIGNed (8-byte) LSN
//!   0  uint32        xl_tot_len   total length of the record, this header included
//!   4  TransactionId xl_xid       transaction id
//!   8  XLogRecPtr    xl_prev      start of the previous record
//!  16  uint8         xl_info      flag bits: low 4 for xlog.c, high 4 for the rmgr
//!  17  RmgrId        xl_rmid      resource manager
//!  18  (2 bytes padding, zero)
//!  20  pg_crc32c     xl_crc       CRC-32C of the record
//! ```
//!
//! The header may be split across a page boundary; `xl_tot_len`, first and 8-byte aligned,
//! is always on the record's first page. `xl_crc` covers the bytes after the header and
//! then the header up to `xl_crc` (`ValidXLogRecord`):
//!
//! ```c
//! COMP_CRC32C(crc, ((char *) record) + SizeOfXLogRecord, record->xl_tot_len - SizeOfXLogRecord);
//! /* include the record header last */
//! COMP_CRC32C(crc, (char *) record, offsetof(XLogRecord, xl_crc));
//! ```

use crate::lsn::Lsn;

/// `SizeOfXLogRecord`.
pub(crate) const SIZE_OF_XLOG_RECORD: usize = 24;
/// `offsetof(XLogRecord, xl_crc)`.
pub(crate) const CRC_OFFSET: usize = 20;
/// `XLR_INFO_MASK`: the low bits of `xl_info`, reserved for `xlog.c`.
pub const XLR_INFO_MASK: u8 = 0x0F;
/// `XLOG_SWITCH` (`src/include/catalog/pg_control.h`), the same 0x40 in 13 to 18.
pub const XLOG_SWITCH: u8 = 0x40;
/// `XLOG_OVERWRITE_CONTRECORD` (`pg_control.h`), 0xD0 in 13 (13.5+) to 18.
pub const XLOG_OVERWRITE_CONTRECORD: u8 = 0xD0;

/// The fields of an `XLogRecord`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRecordHeader {
    pub tot_len: u32,
    pub xid: u32,
    pub prev: u64,
    pub info: u8,
    pub rmid: u8,
    pub crc: u32,
}

impl RawRecordHeader {
    pub fn decode(b: &[u8; SIZE_OF_XLOG_RECORD]) -> RawRecordHeader {
        RawRecordHeader {
            tot_len: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            xid: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            prev: u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]),
            info: b[16],
            rmid: b[17],
            crc: u32::from_le_bytes([b[20], b[21], b[22], b[23]]),
        }
    }
}

/// A record that passed every check, with what `pg_waldump --stats` counts of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordInfo {
    /// Where the record starts.
    pub lsn: Lsn,
    /// Where the next record may start, as `xlogreader`'s `EndRecPtr`: the record's end
    /// rounded up to 8 bytes (MAXALIGN) — and for `XLOG_SWITCH` the next segment's start
    /// ("Pretend it extends to end of segment").
    pub end: Lsn,
    /// `xl_prev`.
    pub prev: Lsn,
    /// `xl_xid` (0 for none).
    pub xid: u32,
    /// `xl_rmid`.
    pub rmid: u8,
    /// `xl_info`.
    pub info: u8,
    /// `xl_tot_len`: the record's bytes, header included, page headers not.
    pub tot_len: u32,
    /// The sum of `bimg_len` over the record's full-page images (`XLogRecGetLen`'s
    /// `fpi_len`).
    pub fpi_len: u32,
    /// The resource manager's name as `pg_waldump` prints it ("Heap2", "custom128").
    pub rmgr_name: &'static str,
    /// `XLOG_SWITCH`: the rest of the segment is padding.
    pub is_switch: bool,
}

impl RecordInfo {
    /// `xl_tot_len - fpi_len`, `pg_waldump --stats`'s "Record size".
    pub fn rec_len(&self) -> u32 {
        self.tot_len.saturating_sub(self.fpi_len)
    }
}
