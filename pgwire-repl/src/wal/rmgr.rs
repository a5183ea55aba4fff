//! Resource managers: which `xl_rmid` values a version accepts, and their names as
//! `pg_waldump` prints them.
//!
//! The built-in list is `src/include/access/rmgrlist.h` (the `PG_RMGR` lines, name in the
//! second column), the same 22 entries in 13 to 18, ids 0 (`RM_XLOG_ID`) to 21
//! (`RM_LOGICALMSG_ID`). From 15 `src/include/access/rmgr.h` adds custom resource managers:
//!
//! ```c
//! #define RM_MIN_CUSTOM_ID    128
//! #define RM_MAX_CUSTOM_ID    UINT8_MAX
//! #define RmgrIdIsValid(rmid) (RmgrIdIsBuiltin((rmid)) || RmgrIdIsCustom((rmid)))
//! ```
//!
//! which `pg_waldump` names `custom%03d` (`src/bin/pg_waldump/rmgrdesc.c`) when it does not
//! know them — it never does, having no extension loaded. In 13 and 14 anything above
//! `RM_MAX_ID` (21) is invalid (`ValidXLogRecordHeader`: "invalid resource manager ID").

use super::version::WalVersion;

/// `RM_XLOG_ID`: the resource manager of `XLOG_SWITCH`, checkpoints and the like.
pub const RM_XLOG_ID: u8 = 0;

/// `rmgrlist.h`, in id order.
const BUILTIN: [&str; 22] = [
    "XLOG",
    "Transaction",
    "Storage",
    "CLOG",
    "Database",
    "Tablespace",
    "MultiXact",
    "RelMap",
    "Standby",
    "Heap2",
    "Heap",
    "Btree",
    "Hash",
    "Gin",
    "Gist",
    "Sequence",
    "SPGist",
    "BRIN",
    "CommitTs",
    "ReplicationOrigin",
    "Generic",
    "LogicalMessage",
];

const RM_MIN_CUSTOM_ID: u8 = 128;

/// `custom128` … `custom255`, as `pg_waldump`'s `snprintf("custom%03d")` writes them.
static CUSTOM: [[u8; 9]; 128] = custom_names();

const fn custom_names() -> [[u8; 9]; 128] {
    let mut out = [*b"custom000"; 128];
    let mut i = 0;
    while i < 128 {
        let id = i + RM_MIN_CUSTOM_ID as usize;
        out[i][6] = b'0' + (id / 100) as u8;
        out[i][7] = b'0' + (id / 10 % 10) as u8;
        out[i][8] = b'0' + (id % 10) as u8;
        i += 1;
    }
    out
}

/// The name of resource manager `rmid` as `pg_waldump` prints it, or `None` if `version`
/// does not accept the id.
///
/// ```
/// use pgwire_repl::wal::{rmgr_name, WalVersion};
///
/// let v15 = WalVersion::from_major(15).unwrap();
/// assert_eq!(rmgr_name(v15, 9), Some("Heap2"));
/// assert_eq!(rmgr_name(v15, 200), Some("custom200"));
/// assert_eq!(rmgr_name(v15, 22), None);
/// assert_eq!(rmgr_name(WalVersion::from_major(14).unwrap(), 200), None);
/// ```
pub fn rmgr_name(version: WalVersion, rmid: u8) -> Option<&'static str> {
    if let Some(name) = BUILTIN.get(usize::from(rmid)) {
        return Some(name);
    }
    if rmid >= RM_MIN_CUSTOM_ID && version.has_custom_rmgrs() {
        let bytes = &CUSTOM[usize::from(rmid - RM_MIN_CUSTOM_ID)];
        return std::str::from_utf8(bytes).ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_by_version() {
        let v13 = WalVersion::from_major(13).unwrap();
        let v18 = WalVersion::from_major(18).unwrap();
        assert_eq!(rmgr_name(v13, 0), Some("XLOG"));
        assert_eq!(rmgr_name(v13, 21), Some("LogicalMessage"));
        assert_eq!(rmgr_name(v13, 127), None);
        assert_eq!(rmgr_name(v13, 128), None);
        assert_eq!(rmgr_name(v18, 127), None);
        assert_eq!(rmgr_name(v18, 128), Some("custom128"));
        assert_eq!(rmgr_name(v18, 255), Some("custom255"));
    }
}
