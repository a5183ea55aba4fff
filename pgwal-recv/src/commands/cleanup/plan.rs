//! Which files `cleanup` removes: a pure function of the listing, the histories and the cut.
//!
//! The cut is a segment number `C`. Recovery from a point in segment `C` (on any timeline,
//! to any timeline after it) reads segments `C` and later only, so every file named for a
//! segment below `C` is one it cannot need. A file goes when all of these hold:
//!
//! - it is a segment file (plain, `.gz`, `.lz4`, `.zst`, each also as `.partial`) or a
//!   `.backup` file, of timeline `T` and segment `s`, with `s < C`;
//! - `s` is below `T`'s branch segment: the segment holding the earliest switch point at which
//!   a timeline whose `.history` file the archive holds left `T` (its history's entry for
//!   `T`). From there on `T`'s files stay whatever the cut: the switch segment and the old
//!   timeline's WAL past the switch (in a pg_receivewal archive, only the old timeline's
//!   last `.partial`) are what a recovery along `T` rather than the newer timeline reads;
//! - for a segment file, `s` is not `T`'s newest segment in the archive: those files (and
//!   their `.partial`) are what the archiver writes into or resumes from.
//!
//! `.history` files always stay; every other name (the lock `.pgwal-recv.lock`, `.tmp`
//! files, names a segment size makes invalid, anything unknown) is never touched and not
//! counted. The timeline of the cut's name does not matter: the cut is a segment number.
//! Files are removed oldest first, so an interrupted cleanup leaves a contiguous archive.

use std::collections::BTreeMap;

use pgwire_repl::protocol::command::HistoryEntry;
use pgwire_repl::{TimelineId, WalSegmentSize};

use crate::archive::names::{parse_history_name, SegmentName};
use crate::archive::Listed;

/// What a file of the archive is, for cleanup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Segment(SegmentName),
    /// `TTTTTTTTXXXXXXXXYYYYYYYY.OOOOOOOO.backup`: a base backup's start segment (the name's
    /// 24 digits) and the offset in it.
    Backup {
        timeline: TimelineId,
        segno: u64,
    },
    History,
    /// Not an archive file: never touched.
    Other,
}

impl Kind {
    pub fn of(name: &str, seg: WalSegmentSize) -> Kind {
        if let Some(s) = SegmentName::parse(name, seg) {
            return Kind::Segment(s);
        }
        if parse_history_name(name).is_some() {
            return Kind::History;
        }
        if let Some((timeline, segno)) = parse_backup_name(name, seg) {
            return Kind::Backup { timeline, segno };
        }
        Kind::Other
    }
}

/// A `.backup` file's name: the segment the backup starts in, 8 hex digits of offset.
pub fn parse_backup_name(name: &str, seg: WalSegmentSize) -> Option<(TimelineId, u64)> {
    let rest = name.get(24..)?.strip_prefix('.')?.strip_suffix(".backup")?;
    if rest.len() != 8 || !rest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F')) {
        return None;
    }
    seg.parse_file_name(name.get(..24)?)
}

/// What to remove, oldest first, and how many archive files stay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removal {
    pub remove: Vec<Listed>,
    /// Segment, `.backup` and `.history` files that stay.
    pub kept: usize,
}

/// Each timeline's branch segment: where the first newer timeline (of those with a history)
/// left it.
fn branch_segments(
    histories: &BTreeMap<TimelineId, Vec<HistoryEntry>>,
    seg: WalSegmentSize,
) -> BTreeMap<TimelineId, u64> {
    let mut out: BTreeMap<TimelineId, u64> = BTreeMap::new();
    for e in histories.values().flatten() {
        let s = seg.segment_of(e.switchpoint);
        out.entry(e.timeline)
            .and_modify(|b| *b = (*b).min(s))
            .or_insert(s);
    }
    out
}

/// The files of `listed` that go with the cut at segment `cut` (see the [module docs](self)).
pub fn plan(
    listed: &[Listed],
    histories: &BTreeMap<TimelineId, Vec<HistoryEntry>>,
    seg: WalSegmentSize,
    cut: u64,
) -> Removal {
    let kinds: Vec<(&Listed, Kind)> = listed.iter().map(|f| (f, Kind::of(&f.name, seg))).collect();
    let mut newest: BTreeMap<TimelineId, u64> = BTreeMap::new();
    for (_, k) in &kinds {
        if let Kind::Segment(s) = k {
            let n = newest.entry(s.timeline).or_insert(s.segno);
            *n = (*n).max(s.segno);
        }
    }
    let branch = branch_segments(histories, seg);
    let below =
        |tli: TimelineId, segno: u64| segno < cut && branch.get(&tli).is_none_or(|&b| segno < b);
    let mut out = Removal::default();
    let mut remove: Vec<(u64, TimelineId, &Listed)> = Vec::new();
    for (f, k) in kinds {
        let (tli, segno, goes) = match k {
            Kind::Segment(s) => {
                let older = newest.get(&s.timeline).is_some_and(|&n| n > s.segno);
                (s.timeline, s.segno, older && below(s.timeline, s.segno))
            }
            Kind::Backup { timeline, segno } => (timeline, segno, below(timeline, segno)),
            Kind::History => (TimelineId(0), 0, false),
            Kind::Other => continue,
        };
        if goes {
            remove.push((segno, tli, f));
        } else {
            out.kept += 1;
        }
    }
    remove.sort_by(|a, b| (a.0, a.1, &a.2.name).cmp(&(b.0, b.1, &b.2.name)));
    out.remove = remove.into_iter().map(|(_, _, f)| f.clone()).collect();
    out
}

#[cfg(test)]
mod tests;
