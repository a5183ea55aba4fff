//! WAL positions, timelines, segment math and segment file names.

use std::fmt;
use std::ops::Range;
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

    /// Plans the writes of `len` bytes of WAL starting at `start` (an XLogData's
    /// `wal_start` and `data.len()`): one [`SegmentWrite`] per segment touched, in order,
    /// each with its segment number, the offset in that segment and its range of the payload.
    ///
    /// ```
    /// use pgwire_repl::{Lsn, WalSegmentSize};
    ///
    /// let seg = WalSegmentSize::new(1 << 20).unwrap();
    /// // 16 bytes that cross from segment 0 into segment 1.
    /// let pieces: Vec<_> = seg.writes(Lsn((1 << 20) - 6), 16).collect();
    /// assert_eq!((pieces[0].segno, pieces[0].offset, pieces[0].range.clone()), (0, (1 << 20) - 6, 0..6));
    /// assert!(pieces[0].ends_segment(seg));
    /// assert_eq!((pieces[1].segno, pieces[1].offset, pieces[1].range.clone()), (1, 0, 6..16));
    /// ```
    ///
    /// A range that would run past the end of the LSN space stops there (the decoder rejects
    /// such XLogData before it gets here).
    pub fn writes(self, start: Lsn, len: usize) -> SegmentWrites {
        SegmentWrites {
            seg: self,
            at: start.0,
            done: 0,
            len,
        }
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

/// One piece of a write split at segment boundaries: `data[range]` goes to segment `segno`
/// at byte `offset`. See [`WalSegmentSize::writes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentWrite {
    pub segno: u64,
    /// Where the piece starts within its segment file.
    pub offset: u32,
    /// The piece's bytes within the payload.
    pub range: Range<usize>,
}

impl SegmentWrite {
    /// True if the piece ends exactly at the end of its segment (the file is then complete).
    pub fn ends_segment(&self, seg: WalSegmentSize) -> bool {
        u64::from(self.offset) + self.range.len() as u64 == u64::from(seg.bytes())
    }
}

/// Iterator over the pieces of a WAL write, one per segment touched; built by
/// [`WalSegmentSize::writes`]. Pure arithmetic: no allocation, no I/O.
#[derive(Debug, Clone)]
pub struct SegmentWrites {
    seg: WalSegmentSize,
    at: u64,
    done: usize,
    len: usize,
}

impl Iterator for SegmentWrites {
    type Item = SegmentWrite;

    fn next(&mut self) -> Option<SegmentWrite> {
        if self.done >= self.len {
            return None;
        }
        let size = u64::from(self.seg.0);
        let offset = self.at % size;
        let room = size - offset;
        let left = self.len - self.done;
        let n = usize::try_from(room).map_or(left, |room| room.min(left));
        let piece = SegmentWrite {
            segno: self.at / size,
            offset: offset as u32,
            range: self.done..self.done + n,
        };
        self.done += n;
        match self.at.checked_add(n as u64) {
            Some(next) => self.at = next,
            // The piece ends at the very end of the LSN space: nothing can follow it.
            None => self.len = self.done,
        }
        Some(piece)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done >= self.len {
            return (0, Some(0));
        }
        let size = u64::from(self.seg.0);
        let span = (self.at % size).saturating_add((self.len - self.done) as u64);
        let n = usize::try_from(span.div_ceil(size)).unwrap_or(usize::MAX);
        (usize::from(n > 0), Some(n))
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

    fn pieces(seg: WalSegmentSize, start: u64, len: usize) -> Vec<(u64, u32, Range<usize>)> {
        seg.writes(Lsn(start), len)
            .map(|w| (w.segno, w.offset, w.range))
            .collect()
    }

    #[test]
    fn write_plan_splits_at_segment_boundaries() {
        const MB: u64 = 1 << 20;
        let seg = WalSegmentSize::new(1 << 20).unwrap();
        assert_eq!(pieces(seg, 5 * MB + 10, 0), []);
        assert_eq!(pieces(seg, 5 * MB + 10, 100), [(5, 10, 0..100)]);
        // Exactly to the end of a segment: one piece, which completes it.
        let w: Vec<_> = seg.writes(Lsn(6 * MB - 100), 100).collect();
        assert_eq!(
            w,
            [SegmentWrite {
                segno: 5,
                offset: (MB - 100) as u32,
                range: 0..100
            }]
        );
        assert!(w[0].ends_segment(seg));
        assert!(!seg.writes(Lsn(0), 100).next().unwrap().ends_segment(seg));
        // Across one boundary, and across a whole segment.
        assert_eq!(
            pieces(seg, 6 * MB - 4, 10),
            [(5, (MB - 4) as u32, 0..4), (6, 0, 4..10)]
        );
        let len = (2 * MB + 8) as usize;
        assert_eq!(
            pieces(seg, 3 * MB - 4, len),
            [
                (2, (MB - 4) as u32, 0..4),
                (3, 0, 4..4 + MB as usize),
                (4, 0, 4 + MB as usize..4 + 2 * MB as usize),
                (5, 0, 4 + 2 * MB as usize..len),
            ]
        );
        assert_eq!(seg.writes(Lsn(3 * MB - 4), len).size_hint(), (1, Some(4)));
        // Segment numbers go on across xlogid boundaries (4096 segments of 1 MB each).
        assert_eq!(
            pieces(seg, 0x1_0000_0000 - 2, 4),
            [(4095, (MB - 2) as u32, 0..2), (4096, 0, 2..4)]
        );
        // The end of the LSN space: the last piece ends there and nothing follows.
        assert_eq!(
            pieces(seg, u64::MAX - 3, 4),
            [(seg.segment_of(Lsn(u64::MAX)), (MB - 4) as u32, 0..4)]
        );
        assert_eq!(
            pieces(seg, u64::MAX - 3, 10),
            [(seg.segment_of(Lsn(u64::MAX)), (MB - 4) as u32, 0..4)]
        );
    }

    proptest! {
        #[test]
        fn write_plan_covers_the_payload(shift in 20u32..=30, start in 0u64..1 << 40, len in 0usize..1 << 32) {
            let seg = WalSegmentSize::new(1 << shift).unwrap();
            let mut at = start;
            let mut next = 0;
            let mut count = 0;
            let (lo, hi) = seg.writes(Lsn(start), len).size_hint();
            for w in seg.writes(Lsn(start), len) {
                prop_assert_eq!(w.range.start, next);
                prop_assert!(!w.range.is_empty());
                prop_assert_eq!(w.segno, seg.segment_of(Lsn(at)));
                prop_assert_eq!(w.offset, seg.offset_of(Lsn(at)));
                prop_assert!(u64::from(w.offset) + w.range.len() as u64 <= u64::from(seg.bytes()));
                // Every piece but the last fills its segment to the end.
                if w.range.end != len {
                    prop_assert!(w.ends_segment(seg));
                }
                at += w.range.len() as u64;
                next = w.range.end;
                count += 1;
            }
            prop_assert_eq!(next, len);
            prop_assert!(lo <= count && Some(count) == hi);
        }

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
