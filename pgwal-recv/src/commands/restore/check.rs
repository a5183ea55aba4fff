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
