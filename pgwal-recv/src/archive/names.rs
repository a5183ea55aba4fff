//! The archive's file names: what pg_receivewal writes, plus zstd.
//!
//! - a segment: its server name (24 uppercase hex digits: timeline, then segment number),
//!   then the compression suffix (`""`, `.gz`, `.lz4`, `.zst`), then `.partial` while it is
//!   incomplete: `000000010000000000000003.zst.partial`;
//! - a timeline history file: `00000002.history`;
//! - anything else (`.tmp` files of an unfinished write, the lock, a user's notes) is not
//!   part of the archive: listed, never read as WAL.

use pgwire_repl::{TimelineId, WalSegmentSize};

use super::compress::Method;

/// The suffix of a segment that is not complete yet.
pub const PARTIAL: &str = ".partial";

/// A segment file's name, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentName {
    pub timeline: TimelineId,
    pub segno: u64,
    pub method: Method,
    pub partial: bool,
}

impl SegmentName {
    /// Parses `<segment><.gz|.lz4|.zst|><.partial|>`, where `<segment>` is a name `seg` can
    /// produce; `None` for every other file (`.history`, `.tmp`, lowercase, ...).
    pub fn parse(name: &str, seg: WalSegmentSize) -> Option<SegmentName> {
        let (timeline, segno) = seg.parse_file_name(name.get(..24)?)?;
        let rest = &name[24..];
        let (rest, partial) = match rest.strip_suffix(PARTIAL) {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let method = match rest {
            "" => Method::None,
            ".gz" => Method::Gzip,
            ".lz4" => Method::Lz4,
            ".zst" => Method::Zstd,
            _ => return None,
        };
        Some(SegmentName {
            timeline,
            segno,
            method,
            partial,
        })
    }

    /// The file name: the server's segment name with the suffixes.
    pub fn file_name(&self, seg: WalSegmentSize) -> String {
        format!(
            "{}{}{}",
            seg.file_name(self.timeline, self.segno),
            self.method.suffix(),
            if self.partial { PARTIAL } else { "" }
        )
    }
}

/// The compression a file's name says it has (`.gz`, `.lz4`, `.zst`, before any
/// `.partial`), whatever the rest of the name.
pub fn method_of(name: &str) -> Method {
    let name = name.strip_suffix(PARTIAL).unwrap_or(name);
    if name.ends_with(".gz") {
        Method::Gzip
    } else if name.ends_with(".lz4") {
        Method::Lz4
    } else if name.ends_with(".zst") {
        Method::Zstd
    } else {
        Method::None
    }
}

/// Whether `name` looks like a segment file's: 24 hex digits (of either case), then only
/// segment suffixes. For when the segment size, which gives the name its full meaning, is
/// not known yet; [`SegmentName::parse`] decides.
pub fn looks_like_segment(name: &str) -> bool {
    let (Some(hex), Some(rest)) = (name.get(..24), name.get(24..)) else {
        return false;
    };
    let rest = rest.strip_suffix(PARTIAL).unwrap_or(rest);
    hex.bytes().all(|b| b.is_ascii_hexdigit()) && matches!(rest, "" | ".gz" | ".lz4" | ".zst")
}

/// The older form of [`SegmentName::parse`], as a tuple: timeline, segment number,
/// compression method, partial.
pub fn is_segment_file_name(
    name: &str,
    seg: WalSegmentSize,
) -> Option<(TimelineId, u64, Method, bool)> {
    SegmentName::parse(name, seg).map(|s| (s.timeline, s.segno, s.method, s.partial))
}

/// `NNNNNNNN.history`: the timeline whose history file this is.
pub fn parse_history_name(name: &str) -> Option<TimelineId> {
    let hex = name.strip_suffix(".history")?;
    if hex.len() != 8 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F')) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok().map(TimelineId)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg1() -> WalSegmentSize {
        WalSegmentSize::new(1 << 20).unwrap()
    }

    #[test]
    fn names_round_trip() {
        let s = SegmentName {
            timeline: TimelineId(2),
            segno: 4096 + 3,
            method: Method::Zstd,
            partial: true,
        };
        let name = s.file_name(seg1());
        assert_eq!(name, "000000020000000100000003.zst.partial");
        assert_eq!(SegmentName::parse(&name, seg1()), Some(s));
    }

    #[test]
    fn segment_like_names() {
        for yes in [
            "000000010000000000000003",
            "000000010000000000000003.partial",
            "000000010000000000000003.zst.partial",
            "00000001000000000000000A.lz4",
            "00000001000000000000000a.gz",
        ] {
            assert!(looks_like_segment(yes), "{yes}");
        }
        for no in [
            "000000010000000000000003.00000028.backup",
            "00000002.history",
            "000000010000000000000003.tmp",
            "000000010000000000000003.partial.gz",
            "0000000100000000000003",
            "00000001000000000000000G",
            ".pgwal-recv.lock",
            "",
        ] {
            assert!(!looks_like_segment(no), "{no}");
        }
    }

    #[test]
    fn history_names() {
        assert_eq!(parse_history_name("0000000A.history"), Some(TimelineId(10)));
        for bad in [
            "0000000a.history",
            "000000A.history",
            "0000000A.history.tmp",
            "x",
        ] {
            assert_eq!(parse_history_name(bad), None, "{bad}");
        }
    }
}
