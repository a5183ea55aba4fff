//! A sans-IO WAL decoder: fed WAL bytes in LSN order — from segment files or straight from
//! the replication stream — it reports pages and records, and checks what PostgreSQL's
//! `xlogreader.c` (`src/backend/access/transam/xlogreader.c`) checks, for the WAL of
//! PostgreSQL 13 to 18. No I/O, no clock, no allocation while decoding.
//!
//! # What is checked, in `xlogreader`'s order
//! - Every page header (`XLogReaderValidatePageHeader`): the version's `XLOG_PAGE_MAGIC` (the
//!   first page fixes the version, later pages must carry the same), no `xlp_info` bits
//!   outside `XLP_ALL_FLAGS`, `XLP_LONG_HEADER` exactly on a segment's first page with the
//!   system identifier (the same throughout), the decoder's segment size and an 8192-byte
//!   `XLOG_BLCKSZ`, `xlp_pageaddr` equal to the page's LSN, `xlp_tli` never decreasing.
//!   `xlogreader` would accept a long header elsewhere; no server writes one, and this
//!   decoder refuses it.
//! - Continuations (`XLogDecodeNextRecord`): a record that crosses a page boundary needs
//!   `XLP_FIRST_IS_CONTRECORD` on the next page with `xlp_rem_len` the bytes still to come;
//!   a page where a new record is due must not have the flag. A page with
//!   `XLP_FIRST_IS_OVERWRITE_CONTRECORD` where a record was being continued ends that record
//!   unreported ([`Event::Overwritten`]) and decoding goes on from that page, as
//!   `xlogreader` restarts there.
//! - Record headers (`ValidXLogRecordHeader`): `xl_tot_len` at least `SizeOfXLogRecord` and
//!   at most what the version allows, a resource manager the version knows, `xl_prev` the
//!   previous record's start (for the first record, the one given to
//!   [`WalDecoder::expect_prev`], else anything below the record's own start).
//! - The CRC-32C of every record (`ValidXLogRecord`), computed over the pieces as they
//!   come.
//! - The block references and data headers (`DecodeXLogRecord`): ids, order, flags,
//!   image headers, and lengths that add up to `xl_tot_len` exactly.
//! - `XLOG_SWITCH`: the rest of the segment is skipped unread, as `xlogreader` skips it
//!   (nothing in the padding is checked: servers before 14 leave page headers there, later
//!   ones zeros).
//!
//! # The end of WAL
//! Where `xlogreader` stops at the end of WAL, the decoder reports [`Event::End`] instead of
//! an error: a page header of zeros, or a record header with `xl_tot_len` 0 where a record
//! is due (what a `.partial` segment or the zero-filled rest of the last page holds).
//! Whether an end is acceptable is the caller's call: in a `.partial` yes, in a complete
//! segment not followed by a switch no. Everything else that `xlogreader` refuses is a
//! [`WalError`] — including the recycled pages after the insert position of a segment in
//! `pg_wal` (their `xlp_pageaddr` is an old one), which a caller reading the server's
//! current segment must stop before.
//!
//! # Where each constant comes from
//! Each from that version's own source tree (`REL_13_STABLE` … `REL_18_STABLE`):
//! - `XLOG_PAGE_MAGIC`, `XLP_*` flags, `XLP_ALL_FLAGS`, the page header layouts:
//!   `src/include/access/xlog_internal.h` (see [`WalVersion`] and [`PageFlags`]);
//! - `XLogRecord`, `XLR_INFO_MASK`, `XLogRecordMaxSize`, `BKPBLOCK_*`, `BKPIMAGE_*`,
//!   `XLR_MAX_BLOCK_ID`, `XLR_BLOCK_ID_*`: `src/include/access/xlogrecord.h`;
//! - resource managers and their names: `src/include/access/rmgrlist.h` and
//!   `src/include/access/rmgr.h` (custom ids, 15+), named as `pg_waldump` names them
//!   (`src/bin/pg_waldump/rmgrdesc.c`) — see [`rmgr_name`];
//! - `XLOG_SWITCH`, `XLOG_OVERWRITE_CONTRECORD`: `src/include/catalog/pg_control.h`.
//!
//! WAL is in the byte order of the server that wrote it; this module reads little-endian
//! WAL.
//!
//! # Layout
//! - `decoder`: [`WalDecoder`], the state machine over pages and records.
//! - `event`: what it reports ([`Event`]).
//! - `page`: page headers ([`PageInfo`]) and their checks.
//! - `record`: record headers ([`RecordInfo`]).
//! - `blocks`: the block and data headers, walked one field at a time.
//! - `version`: [`WalVersion`] and what differs between versions.
//! - `rmgr`: resource manager ids and names.
//! - `error`: [`WalError`], in `xlogreader`'s words.
//! - `builder`: [`WalBuilder`], which writes valid WAL for tests, fuzz seeds and benchmarks.

mod blocks;
mod builder;
mod decoder;
mod error;
mod event;
mod page;
mod record;
mod rmgr;
mod version;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use builder::{BlockSpec, ImageSpec, RecordSpec, WalBuilder};
pub use decoder::WalDecoder;
pub use error::{WalError, WalErrorKind};
pub use event::{EndInfo, EndReason, Event, OverwrittenInfo};
pub use page::{LongPageInfo, PageFlags, PageInfo, XLOG_BLCKSZ};
pub use record::{RecordInfo, XLOG_OVERWRITE_CONTRECORD, XLOG_SWITCH, XLR_INFO_MASK};
pub use rmgr::{rmgr_name, RM_XLOG_ID};
pub use version::WalVersion;
