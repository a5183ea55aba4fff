//! What a segment must be before it is handed to PostgreSQL: fed the file's bytes in order,
//! [`SegmentCheck`] decodes them with the library's WAL decoder ([`pgwire_repl::wal`]) and
//! says whether they make the segment the file is named for.
//!
//! - The first page's long header gives the segment size; the name must be one that size
//!   can produce, and every page's address must be its own place in that segment (a
//!   segment stored under another segment's name is refused).
//! - Every page's timeline is at most the name's: a new timeline's first segment begins
//!   with its parent's pages, up to the switch point.
//! - Every record that starts in the segment has a sane header and a good CRC. A complete
//!   segment holds valid WAL to its end (or to an `XLOG_SWITCH`, after which the rest is
//!   skipped, as PostgreSQL skips it); a `.partial` may end anywhere.
//! - The system identifier matches the one given (the cluster being recovered).
//!
//! A record continued from the previous segment is checked only from where this segment
//! takes it up (its CRC needs the earlier bytes), as is one that runs on into the next.

use pgwire_repl::wal::{EndInfo, Event, WalDecoder};
use pgwire_repl::{Lsn, TimelineId, WalSegmentSize};

/// Bytes of the long page header that starts every segment.
pub const LONG_HEADER: usize = 40;

/// A segment file being checked as it is read.
#[derive(Debug)]
pub struct SegmentCheck {
    name: String,
    partial: bool,
    system_id: Option<u64>,
    /// Set once the first page header has been read.
    started: Option<Started>,
    /// Bytes fed so far.
    len: u64,
    /// Valid WAL ended here (a `.partial`'s end, or the first problem in one).
    ended: Option<Ended>,
}

#[derive(Debug)]
struct Started {
    seg: WalSegmentSize,
    timeline: TimelineId,
    decoder: WalDecoder,
}

/// Where a `.partial`'s valid WAL ends, and why.
#[derive(Debug, Clone)]
pub enum Ended {
    /// Zeros where the next page or record was due: the rest was never received.
    End(EndInfo),
    /// Something that does not decode, which in a `.partial` is how a record received in
    /// part looks: PostgreSQL's reader stops there too.
    Invalid(Lsn, String),
}

/// What the check found, once the file has been read whole.
#[derive(Debug, Clone)]
pub struct Checked {
    pub seg: WalSegmentSize,
    /// Bytes read (uncompressed).
    pub len: u64,
    /// For a `.partial`: where its valid WAL ends.
    pub ended: Option<Ended>,
}

impl SegmentCheck {
    /// A check of segment `name` (24 hex digits), read from a `.partial` file when `partial`,
    /// for the cluster with `system_id` when known.
    pub fn new(name: &str, partial: bool, system_id: Option<u64>) -> SegmentCheck {
        SegmentCheck {
            name: name.to_owned(),
            partial,
            system_id,
            started: None,
            len: 0,
            ended: None,
        }
    }

    /// The file's next bytes. The first call must hold at least the long page header
    /// ([`LONG_HEADER`] bytes) unless the file is shorter than that. An `Err` is the first
    /// problem found: the file must not be restored.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), String> {
        if self.started.is_none() {
            self.start(data)?;
        }
        self.len += data.len() as u64;
        let Some(s) = self.started.as_mut() else {
            return Ok(());
        };
        if self.len > u64::from(s.seg.bytes()) {
            return Err(format!(
                "holds more than a segment's {} bytes",
                s.seg.bytes()
            ));
        }
        if self.ended.is_some() {
            return Ok(());
        }
        let mut problem = None;
        let mut end = None;
        let timeline = s.timeline;
        let fed = s.decoder.feed(data, &mut |ev| match ev {
            Event::Page(p) if p.tli > timeline && problem.is_none() => {
                problem = Some((
                    p.lsn,
                    format!(
                        "page of timeline {}, later than the file name's timeline {}",
                        p.tli, timeline
                    ),
                ));
            }
            Event::End(e) => end = Some(e),
            _ => {}
        });
        let seg = s.seg;
        let fail = |lsn: Lsn, what: String| {
            Err(format!(
                "at offset {}, LSN {lsn}: {what}",
                seg.offset_of(lsn)
            ))
        };
        if let Some((lsn, what)) = problem {
            return fail(lsn, what);
        }
        match (fed, end) {
            (Err(e), _) if self.partial => {
                self.ended = Some(Ended::Invalid(e.lsn, e.to_string()));
                Ok(())
            }
            (Err(e), _) => Err(format!("at offset {}: {e}", seg.offset_of(e.lsn))),
            (Ok(()), Some(e)) if self.partial => {
                self.ended = Some(Ended::End(e));
                Ok(())
            }
            (Ok(()), Some(e)) => fail(
                e.found_at,
                format!("WAL ends at {} before the end of the segment", e.lsn),
            ),
            (Ok(()), None) => Ok(()),
        }
    }

    /// Reads the long page header: the segment size, the name's meaning, the system.
    fn start(&mut self, data: &[u8]) -> Result<(), String> {
        let Some(head) = data.get(..LONG_HEADER) else {
            return Err(format!(
                "has {} bytes, too few for a segment's first page header",
                data.len()
            ));
        };
        let u32_at =
            |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let magic = u16::from_le_bytes([head[0], head[1]]);
        if magic == 0 && head.iter().all(|b| *b == 0) {
            return Err("begins with zeros, not a page header".to_owned());
        }
        let seg_size = u32_at(32);
        let Some(seg) = WalSegmentSize::new(seg_size) else {
            return Err(format!(
                "first page header gives an invalid segment size {seg_size} (magic {magic:04X})"
            ));
        };
        let Some((timeline, segno)) = seg.parse_file_name(&self.name) else {
            return Err(format!(
                "\"{}\" is not a segment name with {} MB segments",
                self.name,
                seg_size >> 20
            ));
        };
        let sysid = u64::from_le_bytes(head[24..32].try_into().unwrap_or_default());
        if let Some(want) = self.system_id {
            if sysid != want {
                return Err(format!(
                    "from another database system: system identifier {sysid}, the cluster \
                     being recovered has {want}"
                ));
            }
        }
        let start = seg
            .segment_start(segno)
            .ok_or_else(|| format!("\"{}\" is past the end of the WAL", self.name))?;
        self.started = Some(Started {
            seg,
            timeline,
            decoder: WalDecoder::new(seg, start),
        });
        Ok(())
    }

    /// The file has been read whole: whether that makes the segment.
    pub fn finish(self) -> Result<Checked, String> {
        let Some(s) = self.started else {
            return Err(format!(
                "has {} bytes, too few for a segment's first page header",
                self.len
            ));
        };
        let want = u64::from(s.seg.bytes());
        if !self.partial && self.len != want {
            return Err(format!(
                "holds {} bytes, a segment has {want}: truncated",
                self.len
            ));
        }
        Ok(Checked {
            seg: s.seg,
            len: self.len,
            ended: self.ended,
        })
    }
}

#[cfg(test)]
mod tests {
    use pgwire_repl::wal::{RecordSpec, WalBuilder, WalVersion};

    use super::*;

    const SYSID: u64 = 7_000_000_000_000_000_001;

    fn seg() -> WalSegmentSize {
        WalSegmentSize::new(1 << 20).unwrap()
    }

    /// Segment 3 of timeline 1: records up to `fill` bytes, zeros after (a `.partial`'s
    /// shape), or a whole segment of records ending in a switch when `fill` is `None`.
    fn segment(fill: Option<usize>) -> Vec<u8> {
        let start = Lsn(3 << 20);
        let mut b = WalBuilder::new(WalVersion::from_major(16).unwrap(), seg(), start, SYSID);
        let main = [0x5A; 300];
        let r = RecordSpec {
            rmid: 1,
            main_data: &main,
            ..Default::default()
        };
        let limit = fill.unwrap_or((1 << 20) - 4096);
        while b.bytes().len() < limit {
            b.record(&r);
        }
        if fill.is_none() {
            b.switch();
        }
        let mut bytes = b.into_bytes();
        bytes.resize(1 << 20, 0);
        bytes
    }

    fn check(
        name: &str,
        partial: bool,
        sysid: Option<u64>,
        bytes: &[u8],
        piece: usize,
    ) -> Result<Checked, String> {
        let mut c = SegmentCheck::new(name, partial, sysid);
        for chunk in bytes.chunks(piece) {
            c.feed(chunk)?;
        }
        c.finish()
    }

    const NAME: &str = "000000010000000000000003";

    #[test]
    fn a_whole_segment_passes_in_any_pieces() {
        let bytes = segment(None);
        for piece in [40, 8192, 100_000, 1 << 20] {
            let c = check(NAME, false, Some(SYSID), &bytes, piece).unwrap();
            assert_eq!(c.len, 1 << 20);
            assert!(c.ended.is_none());
        }
        // A later timeline's file may begin with its parent's pages.
        check("000000020000000000000003", false, None, &bytes, 1 << 20).unwrap();
    }

    #[test]
    fn what_is_refused() {
        let good = segment(None);
        let refused = |name: &str, sysid: Option<u64>, bytes: &[u8], what: &str| {
            let e = check(name, false, sysid, bytes, 65536).unwrap_err();
            assert!(e.contains(what), "{what:?} not in {e:?}");
        };
        let mut flipped = good.clone();
        flipped[500_000] ^= 1;
        refused(
            NAME,
            None,
            &flipped,
            "incorrect resource manager data checksum",
        );
        refused(
            "000000010000000000000004",
            None,
            &good,
            "unexpected pageaddr",
        );
        refused(NAME, Some(SYSID + 1), &good, "another database system");
        refused(NAME, None, &good[..good.len() - 8192], "truncated");
        refused(NAME, None, &good[..20], "too few");
        refused(NAME, None, &[0; 1 << 20], "zeros");
        let mut big = good.clone();
        big.extend_from_slice(&[0; 8192]);
        refused(NAME, None, &big, "more than a segment");
        // WAL ending early in a file that claims to be complete.
        refused(
            NAME,
            None,
            &segment(Some(200_000)),
            "before the end of the segment",
        );
        // A page of a timeline after the name's.
        let mut later = good.clone();
        later[4..8].copy_from_slice(&2u32.to_le_bytes());
        refused(NAME, None, &later, "later than the file name's timeline 1");
    }

    #[test]
    fn partials_may_end_anywhere() {
        let bytes = segment(Some(200_000));
        let c = check(NAME, true, Some(SYSID), &bytes, 65536).unwrap();
        assert!(matches!(c.ended, Some(Ended::End(_))), "{c:?}");
        // Compressed partials hold no zeros: they just stop.
        let c = check(NAME, true, None, &bytes[..150_000], 65536).unwrap();
        assert_eq!(c.len, 150_000);
        // A record cut short and zeros after it: where the archiver stopped writing.
        let mut torn = bytes.clone();
        torn[199_000..].fill(0);
        check(NAME, true, None, &torn, 65536).unwrap();
    }
}
