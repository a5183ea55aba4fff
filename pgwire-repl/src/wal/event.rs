//! What the decoder reports: pages, records, abandoned records, and the end of WAL.

use crate::lsn::Lsn;

use super::page::PageInfo;
use super::record::RecordInfo;

/// What the decoder reports, in LSN order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A page header that passed every check (before the records on the page).
    Page(PageInfo),
    /// A record that passed every check (header, CRC, block headers), once its last byte
    /// has been fed.
    Record(RecordInfo),
    /// A record left unfinished where the next page has `XLP_FIRST_IS_OVERWRITE_CONTRECORD`:
    /// the server abandoned it after a crash and wrote an `XLOG_OVERWRITE_CONTRECORD` record
    /// in its place. It is skipped, as `xlogreader` skips it.
    Overwritten(OverwrittenInfo),
    /// The end of valid WAL: nothing after `lsn` is decoded.
    End(EndInfo),
}

/// A record abandoned by the server (see [`Event::Overwritten`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverwrittenInfo {
    /// Where the abandoned record starts.
    pub lsn: Lsn,
    /// The page with `XLP_FIRST_IS_OVERWRITE_CONTRECORD`.
    pub page: Lsn,
}

/// Where valid WAL ends (see [`Event::End`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndInfo {
    /// The end of the last complete record, rounded up to 8 (where the next one would
    /// start: `xlogreader`'s `EndRecPtr`); the start if no record was complete. A record in
    /// progress when the end was found is not complete.
    pub lsn: Lsn,
    /// Where the end was seen: the zeroed page or record header.
    pub found_at: Lsn,
    pub why: EndReason,
}

/// What ended the WAL, as `xlogreader` would stop there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// A page header of zeros (magic 0): a page never written, as in the zero-filled rest of
    /// a `.partial` segment or a file the server pre-allocated.
    ZeroPage,
    /// A record header whose `xl_tot_len` is 0 where a record was due: the rest of the last
    /// page written is zeros.
    ZeroRecord,
}
