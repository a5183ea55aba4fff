//! The WAL format versions this decoder reads, PostgreSQL 13 to 18, and what differs
//! between them.
//!
//! Every major version changes `XLOG_PAGE_MAGIC` (`src/include/access/xlog_internal.h`:
//! "can be used as WAL version indicator"), so the first page header names the version.
//! The rest of the format that the decoder checks changed three times in that span:
//!
//! | from | what | source |
//! |------|------|--------|
//! | 14 | `XLR_BLOCK_ID_TOPLEVEL_XID` (252) may precede the block headers | `src/include/access/xlogrecord.h` |
//! | 15 | `bimg_info` bits renumbered: `BKPIMAGE_APPLY` 0x04 → 0x02, `BKPIMAGE_IS_COMPRESSED` 0x02 → `BKPIMAGE_COMPRESS_PGLZ` 0x04, `_LZ4` 0x08, `_ZSTD` 0x10 | `src/include/access/xlogrecord.h` |
//! | 15 | custom resource managers, ids 128 to 255 (`RmgrIdIsValid`) | `src/include/access/rmgr.h` |
//! | 16 | `XLogRecordMaxSize` (1020 MiB) bounds a record; before, only the reader's allocation did (`MaxAllocSize`, 1 GiB − 1, for the record rounded up to whole pages) | `src/include/access/xlogrecord.h`, `src/backend/access/transam/xlogreader.c` (`allocate_recordbuf`) |
//!
//! `XLP_FIRST_IS_OVERWRITE_CONTRECORD` (0x0008, `XLP_ALL_FLAGS` 0x000F) is in every version
//! here: it came with 14 and was back-patched to 13.5 (13.0 to 13.4 never set the bit, so
//! accepting it costs nothing).

use std::fmt;

use crate::server_version::ServerVersion;

/// A WAL format: the PostgreSQL major version that wrote it, 13 to 18.
///
/// ```
/// use pgwire_repl::wal::WalVersion;
///
/// let v = WalVersion::from_magic(0xD113).unwrap();
/// assert_eq!((v.major(), v.magic(), v.to_string()), (16, 0xD113, "PostgreSQL 16".to_owned()));
/// assert_eq!(WalVersion::from_major(16), Some(v));
/// assert_eq!(WalVersion::from_magic(0xD101), None); // 12
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalVersion {
    major: u8,
}

/// `XLOG_PAGE_MAGIC` of each major version, from that version's
/// `src/include/access/xlog_internal.h` (`REL_13_STABLE` … `REL_18_STABLE`).
const MAGICS: [(u8, u16); 6] = [
    (13, 0xD106),
    (14, 0xD10D),
    (15, 0xD110),
    (16, 0xD113),
    (17, 0xD116),
    (18, 0xD118),
];

impl WalVersion {
    /// The oldest and newest versions read.
    pub const OLDEST: WalVersion = WalVersion { major: 13 };
    pub const NEWEST: WalVersion = WalVersion { major: 18 };

    /// The version whose `XLOG_PAGE_MAGIC` is `magic`, if it is one of 13 to 18.
    pub fn from_magic(magic: u16) -> Option<WalVersion> {
        MAGICS
            .iter()
            .find(|(_, m)| *m == magic)
            .map(|&(major, _)| WalVersion { major })
    }

    /// The version of major release `major` (13 to 18).
    pub fn from_major(major: u32) -> Option<WalVersion> {
        MAGICS
            .iter()
            .find(|(m, _)| u32::from(*m) == major)
            .map(|&(major, _)| WalVersion { major })
    }

    /// The WAL format a server of this version writes.
    pub fn of_server(v: ServerVersion) -> Option<WalVersion> {
        WalVersion::from_major(v.major())
    }

    pub fn major(self) -> u32 {
        u32::from(self.major)
    }

    /// This version's `XLOG_PAGE_MAGIC`.
    pub fn magic(self) -> u16 {
        MAGICS
            .iter()
            .find(|(m, _)| *m == self.major)
            .map_or(0, |&(_, magic)| magic)
    }

    /// `XLP_ALL_FLAGS`: the `xlp_info` bits a page header may carry.
    pub(crate) fn xlp_all_flags(self) -> u16 {
        0x000F
    }

    /// Whether `XLR_BLOCK_ID_TOPLEVEL_XID` exists (14+).
    pub(crate) fn has_toplevel_xid(self) -> bool {
        self.major >= 14
    }

    /// Whether resource manager ids 128 to 255 are allowed (15+, `RmgrIdIsCustom`).
    pub(crate) fn has_custom_rmgrs(self) -> bool {
        self.major >= 15
    }

    /// The `bimg_info` bits of this version.
    pub(crate) fn bkpimage(self) -> BkpImageBits {
        if self.major >= 15 {
            BkpImageBits {
                has_hole: 0x01,
                apply: 0x02,
                // BKPIMAGE_COMPRESS_PGLZ | BKPIMAGE_COMPRESS_LZ4 | BKPIMAGE_COMPRESS_ZSTD
                compressed: 0x04 | 0x08 | 0x10,
            }
        } else {
            BkpImageBits {
                has_hole: 0x01,
                // BKPIMAGE_IS_COMPRESSED
                compressed: 0x02,
                apply: 0x04,
            }
        }
    }

    /// Whether a record of `tot_len` bytes is too long for this version: longer than
    /// `XLogRecordMaxSize` (16+), or (13 to 15) more than the reader can allocate
    /// (`allocate_recordbuf`: the length rounded up to whole pages must stay within
    /// `MaxAllocSize`).
    pub(crate) fn record_too_long(self, tot_len: u32) -> bool {
        const XLOG_RECORD_MAX_SIZE: u32 = 1020 * 1024 * 1024;
        const MAX_ALLOC_SIZE: u64 = 0x3fff_ffff;
        if self.major >= 16 {
            tot_len > XLOG_RECORD_MAX_SIZE
        } else {
            // newSize = reclength + XLOG_BLCKSZ - (reclength % XLOG_BLCKSZ)
            let rounded = u64::from(tot_len) + 8192 - u64::from(tot_len % 8192);
            rounded > MAX_ALLOC_SIZE
        }
    }
}

impl fmt::Display for WalVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgreSQL {}", self.major)
    }
}

/// The `bimg_info` bits that differ between versions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BkpImageBits {
    pub has_hole: u8,
    pub apply: u8,
    /// Any of these set means the image is compressed (`BKPIMAGE_COMPRESSED()`).
    pub compressed: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_major_round_trips() {
        for major in 13..=18 {
            let v = WalVersion::from_major(major).unwrap();
            assert_eq!(WalVersion::from_magic(v.magic()), Some(v));
            assert_eq!(v.major(), major);
        }
        assert_eq!(WalVersion::from_major(12), None);
        assert_eq!(WalVersion::from_major(19), None);
        assert_eq!(
            WalVersion::of_server(ServerVersion::from_num(150004)),
            WalVersion::from_major(15)
        );
    }

    #[test]
    fn record_length_caps() {
        let v15 = WalVersion::from_major(15).unwrap();
        let v16 = WalVersion::from_major(16).unwrap();
        assert!(!v16.record_too_long(1020 << 20));
        assert!(v16.record_too_long((1020 << 20) + 1));
        // 1 GiB - 1 rounded up to pages: the largest length that fits is the last one whose
        // rounding stays below 0x3fffffff.
        assert!(!v15.record_too_long(0x3fff_dfff));
        assert!(v15.record_too_long(0x3fff_e000));
        assert!(v15.record_too_long(u32::MAX));
    }
}
