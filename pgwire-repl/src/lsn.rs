//! WAL positions, timelines, segment math and segment file names.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A WAL location (log sequence number): a byte position in the WAL stream.
///
/// Text form is PostgreSQL's `%X/%X`: the high and low 32 bits in uppercase hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    /// `0/0`, which PostgreSQL uses for "invalid".
    pub const INVALID: Lsn = Lsn(0);

    /// The position `n` bytes further, or `None` on overflow.
    pub fn checked_add(self, n: u64) -> Option<Lsn> {
        self.0.checked_add(n).map(Lsn)
    }

    /// The position `n` bytes earlier, or `None` below zero.
    pub fn checked_sub(self, n: u64) -> Option<Lsn> {
        self.0.checked_sub(n).map(Lsn)
    }

    /// Bytes from `earlier` to `self`, or `None` if `earlier` is after `self`.
    pub fn distance_from(self, earlier: Lsn) -> Option<u64> {
        self.0.checked_sub(earlier.0)
    }

    pub fn is_valid(self) -> bool {
        self.0 != 0
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 as u32)
    }
}

impl FromStr for Lsn {
    type Err = Error;

    /// Parses `X/Y`, each half 1 to 8 hex digits (a u32), as PostgreSQL's `pg_lsn_in` does.
    fn from_str(s: &str) -> Result<Lsn> {
        let bad = || Error::config(format!("invalid WAL location: \"{s}\""));
        let (hi, lo) = s.split_once('/').ok_or_else(bad)?;
        let half = |h: &str| -> Result<u64> {
            if h.is_empty() || h.len() > 8 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            u32::from_str_radix(h, 16).map(u64::from).map_err(|_| bad())
        };
        Ok(Lsn(half(hi)? << 32 | half(lo)?))
    }
}

impl From<u64> for Lsn {
    fn from(v: u64) -> Lsn {
        Lsn(v)
    }
}

impl From<Lsn> for u64 {
    fn from(v: Lsn) -> u64 {
        v.0
    }
}

/// A timeline ID. Timeline 0 does not exist; the first timeline of a cluster is 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimelineId(pub u32);

impl fmt::Display for TimelineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl TimelineId {
    /// The history file name for this timeline, `%08X.history`.
    pub fn history_file_name(self) -> String {
        format!("{:08X}.history", self.0)
    }
}

/// The WAL segment size of a cluster: a power of two from 1 MiB to 1 GiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WalSegmentSize(u32);

impl WalSegmentSize {
    pub const MIN: u32 = 1 << 20;
    pub const MAX: u32 = 1 << 30;
    /// PostgreSQL's default, 16 MiB.
    pub const DEFAULT: WalSegmentSize = WalSegmentSize(16 << 20);

    /// Accepts `bytes` if it is a power of two between 1 MiB and 1 GiB.
    pub fn new(bytes: u32) -> Option<WalSegmentSize> {
        (bytes.is_power_of_two() && (Self::MIN..=Self::MAX).contains(&bytes))
            .then_some(WalSegmentSize(bytes))
    }

    /// Parses the text of `SHOW wal_segment_size`: an integer and a unit (`16MB`, `1GB`,
    /// `1024kB`) or plain bytes.
    pub fn parse_setting(s: &str) -> Result<WalSegmentSize> {
        let bad = |why: &str| Error::protocol(format!("invalid wal_segment_size \"{s}\": {why}"));
        let t = s.trim();
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad("no number"));
        }
        let n: u64 = t[..digits]
            .parse()
            .map_err(|_| bad("number out of range"))?;
        let mult: u64 = match t[digits..].trim() {
            "" | "B" => 1,
            "kB" => 1 << 10,
            "MB" => 1 << 20,
            "GB" => 1 << 30,
            _ => return Err(bad("unknown unit")),
        };
        let bytes = n
            .checked_mul(mult)
            .ok_or_else(|| bad("number out of range"))?;
        u32::try_from(bytes)
            .ok()
            .and_then(WalSegmentSize::new)
            .ok_or_else(|| bad("must be a power of two between 1 MB and 1 GB"))
    }

    pub fn bytes(self) -> u32 {
        self.0
    }

    /// Segments per 4 GiB "xlogid", the middle part of a file name.
    pub fn segments_per_xlogid(self) -> u64 {
        0x1_0000_0000 / u64::from(self.0)
    }

    /// The segment number holding `lsn`.
    pub fn segment_of(self, lsn: Lsn) -> u64 {
        lsn.0 / u64::from(self.0)
    }

    /// The byte offset of `lsn` within its segment.
    pub fn offset_of(self, lsn: Lsn) -> u32 {
        (lsn.0 % u64::from(self.0)) as u32
    }

    /// The first position of segment `segno`, or `None` past the end of the LSN space.
    pub fn segment_start(self, segno: u64) -> Option<Lsn> {
        segno.checked_mul(u64::from(self.0)).map(Lsn)
    }

    /// `lsn` rounded down to the start of its segment.
    pub fn round_down(self, lsn: Lsn) -> Lsn {
        Lsn(lsn.0 - lsn.0 % u64::from(self.0))
    }

    /// The 24-hex-digit file name of segment `segno` on timeline `tli`.
    pub fn file_name(self, tli: TimelineId, segno: u64) -> String {
        let per = self.segments_per_xlogid();
        format!("{:08X}{:08X}{:08X}", tli.0, segno / per, segno % per)
    }

    /// Parses a 24-character segment file name (uppercase hex, as the server writes them)
    /// into its timeline and segment number. Names this segment size cannot produce
    /// (a low part beyond the segments per xlogid) are rejected.
    pub fn parse_file_name(self, name: &str) -> Option<(TimelineId, u64)> {
        let b = name.as_bytes();
        if b.len() != 24 || !b.iter().all(|c| matches!(c, b'0'..=b'9' | b'A'..=b'F')) {
            return None;
        }
        let part = |i: usize| u32::from_str_radix(&name[i..i + 8], 16).ok().map(u64::from);
        let (tli, hi, lo) = (part(0)?, part(8)?, part(16)?);
        let per = self.segments_per_xlogid();
        if lo >= per {
            return None;
        }
        Some((TimelineId(tli as u32), hi * per + lo))
    }
}

impl fmt::Display for WalSegmentSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1 << 30 {
            write!(f, "{}GB", self.0 >> 30)
        } else {
            write!(f, "{}MB", self.0 >> 20)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lsn_text() {
        assert_eq!("0/0".parse::<Lsn>().unwrap(), Lsn(0));
        assert_eq!("16/B374D848".parse::<Lsn>().unwrap(), Lsn(0x16_B374_D848));
        assert_eq!("ffffffff/ffffffff".parse::<Lsn>().unwrap(), Lsn(u64::MAX));
        assert_eq!(Lsn(0x16_B374_D848).to_string(), "16/B374D848");
        assert_eq!(Lsn(0x1_0000_0000).to_string(), "1/0");
        for bad in [
            "",
            "/",
            "0/",
            "/0",
            "0",
            "1/2/3",
            "100000000/0",
            "0/100000000",
            "g/0",
            " 0/0",
            "0/0 ",
            "+1/0",
            "-1/0",
            "0x1/0",
        ] {
            assert!(bad.parse::<Lsn>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn lsn_arith() {
        assert_eq!(Lsn(u64::MAX).checked_add(1), None);
        assert_eq!(Lsn(0).checked_sub(1), None);
        assert_eq!(Lsn(10).distance_from(Lsn(4)), Some(6));
        assert_eq!(Lsn(4).distance_from(Lsn(10)), None);
    }

    #[test]
    fn segment_sizes() {
        assert!(WalSegmentSize::new(1 << 19).is_none());
        assert!(WalSegmentSize::new((1 << 20) + 1).is_none());
        assert!(WalSegmentSize::new(1 << 31).is_none());
        for shift in 20..=30 {
            assert!(WalSegmentSize::new(1 << shift).is_some());
        }
        let p = WalSegmentSize::parse_setting;
        assert_eq!(p("16MB").unwrap().bytes(), 16 << 20);
        assert_eq!(p("1GB").unwrap().bytes(), 1 << 30);
        assert_eq!(p("1024kB").unwrap().bytes(), 1 << 20);
        assert_eq!(p("16777216").unwrap().bytes(), 16 << 20);
        for bad in [
            "",
            "MB",
            "3MB",
            "2GB",
            "512kB",
            "16 XB",
            "99999999999999999999MB",
        ] {
            assert!(p(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn file_names() {
        let seg = WalSegmentSize::DEFAULT;
        assert_eq!(seg.file_name(TimelineId(1), 0), "000000010000000000000000");
        assert_eq!(
            seg.file_name(TimelineId(1), 256),
            "000000010000000100000000"
        );
        assert_eq!(
            seg.file_name(TimelineId(0x1A), 0x1FF),
            "0000001A00000001000000FF"
        );
        assert_eq!(
            seg.parse_file_name("0000001A00000001000000FF"),
            Some((TimelineId(0x1A), 0x1FF))
        );
        // 16 MB segments have 256 per xlogid: a low part of 0x100 cannot exist.
        assert_eq!(seg.parse_file_name("000000010000000000000100"), None);
        assert_eq!(seg.parse_file_name("00000001000000000000000a"), None);
        assert_eq!(seg.parse_file_name("00000001000000000000000"), None);
        let one_mb = WalSegmentSize::new(1 << 20).unwrap();
        assert_eq!(
            one_mb.file_name(TimelineId(2), 4096 + 3),
            "000000020000000100000003"
        );
        let one_gb = WalSegmentSize::new(1 << 30).unwrap();
        assert_eq!(
            one_gb.file_name(TimelineId(2), 9),
            "000000020000000200000001"
        );
        assert_eq!(seg.segment_of(Lsn(0x1_0100_0000)), 257);
        assert_eq!(seg.offset_of(Lsn(0x1_0100_0010)), 0x10);
        assert_eq!(seg.round_down(Lsn(0x1_0100_0010)), Lsn(0x1_0100_0000));
        assert_eq!(TimelineId(0x2B).history_file_name(), "0000002B.history");
    }

    proptest! {
        #[test]
        fn lsn_text_round_trip(v: u64) {
            let s = Lsn(v).to_string();
            prop_assert_eq!(s.parse::<Lsn>().unwrap(), Lsn(v));
        }

        #[test]
        fn lsn_parse_never_panics(s in "\\PC{0,24}") {
            let _ = s.parse::<Lsn>();
        }

        #[test]
        fn segment_name_round_trip(shift in 20u32..=30, tli in 1u32.., lsn: u64) {
            let seg = WalSegmentSize::new(1 << shift).unwrap();
            let segno = seg.segment_of(Lsn(lsn));
            let name = seg.file_name(TimelineId(tli), segno);
            prop_assert_eq!(seg.parse_file_name(&name), Some((TimelineId(tli), segno)));
            prop_assert_eq!(seg.segment_start(segno).unwrap(), seg.round_down(Lsn(lsn)));
        }
    }
}
