//! What `verify` reads, in which order, and what the names alone say is wrong.
//!
//! Every segment file is read once. Each has a predecessor, the file that holds the segment
//! before it on its timeline's history, as recovery would pick it: for segment `s` of
//! timeline `T`, the newest timeline of `T`'s history whose first segment is at or before
//! `s - 1` (PostgreSQL's `XLogFileReadAnyTLI` order). A file is decoded carrying on from its
//! predecessor's end, so a record's `xl_prev` is checked across files and across a timeline
//! switch, and records that span two files are checked whole. Two files can share a
//! predecessor: at a switch, the old timeline's last segment (a `.partial`, as pg_receivewal
//! leaves it) and the new timeline's first one.

use std::collections::{BTreeMap, BTreeSet};

use pgwire_repl::protocol::command::HistoryEntry;
use pgwire_repl::{Lsn, TimelineId, WalSegmentSize};

use crate::archive::names::SegmentName;
use crate::archive::{Histories, Listed};

/// Something wrong, where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file it concerns, when one does.
    pub file: Option<String>,
    pub lsn: Option<Lsn>,
    pub message: String,
}

impl Problem {
    pub fn in_file(file: &str, lsn: Option<Lsn>, message: impl Into<String>) -> Problem {
        Problem {
            file: Some(file.to_owned()),
            lsn,
            message: message.into(),
        }
    }
}

/// One segment file to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub file: Listed,
    pub name: SegmentName,
    /// Index in [`Plan::files`] of the file whose end this one carries on from.
    pub pred: Option<usize>,
    /// Whether other files carry on from this one's end.
    pub has_succ: bool,
}

/// The files in reading order (by segment, then timeline: a predecessor always comes first),
/// the timelines' histories, and the problems the names show.
#[derive(Debug, Default)]
pub struct Plan {
    pub files: Vec<Planned>,
    /// Each timeline's ancestors: (timeline, where it ended), oldest first.
    pub histories: BTreeMap<TimelineId, Vec<HistoryEntry>>,
    pub problems: Vec<Problem>,
}

/// Which files to take: `--timeline` and the `--start`/`--end` segments.
#[derive(Debug, Clone, Copy, Default)]
pub struct Range {
    pub timeline: Option<TimelineId>,
    pub start: Option<u64>,
    pub end: Option<u64>,
}

impl Plan {
    /// The plan for the archive's files `listed` (history files already read into
    /// `histories`, as parsed or failed).
    pub fn new(listed: &[Listed], histories: Histories, seg: WalSegmentSize, range: Range) -> Plan {
        let mut plan = Plan::default();
        for (tli, h) in histories {
            match h {
                Ok(entries) => {
                    plan.histories.insert(tli, entries);
                }
                Err(e) => plan.problems.push(Problem::in_file(
                    &tli.history_file_name(),
                    None,
                    format!("cannot be read: {e}"),
                )),
            }
        }
        let mut segs: Vec<(Listed, SegmentName)> = listed
            .iter()
            .filter_map(|f| Some((f.clone(), SegmentName::parse(&f.name, seg)?)))
            .filter(|(_, n)| range.start.is_none_or(|s| n.segno >= s))
            .filter(|(_, n)| range.end.is_none_or(|e| n.segno <= e))
            .collect();
        if let Some(t) = range.timeline {
            // The timeline and the ancestors its history names.
            let lineage: BTreeSet<TimelineId> = plan
                .histories
                .get(&t)
                .into_iter()
                .flatten()
                .map(|e| e.timeline)
                .chain([t])
                .collect();
            segs.retain(|(_, n)| lineage.contains(&n.timeline));
        }
        segs.sort_by(|a, b| {
            (a.1.segno, a.1.timeline, a.1.partial, a.0.name.as_str()).cmp(&(
                b.1.segno,
                b.1.timeline,
                b.1.partial,
                b.0.name.as_str(),
            ))
        });
        plan.check_names(&segs, seg);
        // One file per (timeline, segment): the complete one if there are both.
        segs.dedup_by(|later, earlier| {
            (later.1.timeline, later.1.segno) == (earlier.1.timeline, earlier.1.segno)
        });
        let index: BTreeMap<(TimelineId, u64), usize> = segs
            .iter()
            .enumerate()
            .map(|(i, (_, n))| ((n.timeline, n.segno), i))
            .collect();
        let first = segs.first().map(|(_, n)| n.segno);
        let mut files: Vec<Planned> = Vec::with_capacity(segs.len());
        for (file, name) in segs {
            let mut pred = None;
            if name.segno > 0 {
                let want = plan.timeline_for_segment(name.timeline, name.segno - 1, seg);
                pred = index.get(&(want, name.segno - 1)).copied();
                if pred.is_none() && first.is_some_and(|f| f < name.segno) {
                    plan.missing_before(&index, &file.name, name, seg);
                }
            }
            if let Some(p) = pred {
                files[p].has_succ = true;
            }
            files.push(Planned {
                file,
                name,
                pred,
                has_succ: false,
            });
        }
        for (tli, _) in index.keys().filter(|(t, _)| t.0 > 1) {
            if !plan.histories.contains_key(tli)
                && !plan
                    .problems
                    .iter()
                    .any(|p| p.file.as_deref() == Some(&tli.history_file_name()))
            {
                plan.problems.push(Problem {
                    file: Some(tli.history_file_name()),
                    lsn: None,
                    message: format!("missing: timeline {tli} has segments but no history file"),
                });
            }
        }
        plan.problems.dedup();
        plan.files = files;
        plan
    }

    /// Where timeline `tli` begins: the switch point its history ends with (0 for the first
    /// timeline, or one without a history).
    pub fn begins(&self, tli: TimelineId) -> Lsn {
        self.histories
            .get(&tli)
            .and_then(|h| h.last())
            .map_or(Lsn(0), |e| e.switchpoint)
    }

    /// The timeline recovery on `tli` reads segment `segno` from: the newest of `tli`'s
    /// lineage whose first segment is at or before it.
    pub fn timeline_for_segment(
        &self,
        tli: TimelineId,
        segno: u64,
        seg: WalSegmentSize,
    ) -> TimelineId {
        let Some(history) = self.histories.get(&tli) else {
            return tli;
        };
        // Newest first: tli itself begins where the last entry ended; each ancestor where
        // the entry before it ended.
        let mut begin = history.last().map_or(Lsn(0), |e| e.switchpoint);
        if seg.segment_of(begin) <= segno {
            return tli;
        }
        for (i, e) in history.iter().enumerate().rev() {
            begin = if i == 0 {
                Lsn(0)
            } else {
                history[i - 1].switchpoint
            };
            if seg.segment_of(begin) <= segno {
                return e.timeline;
            }
        }
        history.first().map_or(tli, |e| e.timeline)
    }

    /// The timeline whose WAL the page at `lsn` of a file of timeline `tli` must carry:
    /// the newest of the lineage that had begun by then.
    pub fn timeline_at(&self, tli: TimelineId, lsn: Lsn) -> TimelineId {
        let Some(history) = self.histories.get(&tli) else {
            return tli;
        };
        history
            .iter()
            .find(|e| lsn < e.switchpoint)
            .map_or(tli, |e| e.timeline)
    }

    /// Problems of names alone: the same segment twice, a `.partial` that is not its
    /// timeline's last file.
    fn check_names(&mut self, segs: &[(Listed, SegmentName)], seg: WalSegmentSize) {
        let mut last: BTreeMap<TimelineId, u64> = BTreeMap::new();
        for (_, n) in segs {
            let l = last.entry(n.timeline).or_default();
            *l = (*l).max(n.segno);
        }
        for w in segs.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            if (a.1.timeline, a.1.segno) == (b.1.timeline, b.1.segno) {
                self.problems.push(Problem::in_file(
                    &b.0.name,
                    seg.segment_start(b.1.segno),
                    format!("the same segment as {}", a.0.name),
                ));
            }
        }
        for (f, n) in segs {
            if n.partial && last.get(&n.timeline).is_some_and(|&l| l > n.segno) {
                self.problems.push(Problem::in_file(
                    &f.name,
                    seg.segment_start(n.segno),
                    format!(
                        "a .partial segment before the end of timeline {}",
                        n.timeline
                    ),
                ));
            }
        }
    }

    /// Reports the segments missing before `name`: back to the nearest one present.
    fn missing_before(
        &mut self,
        index: &BTreeMap<(TimelineId, u64), usize>,
        file: &str,
        name: SegmentName,
        seg: WalSegmentSize,
    ) {
        let mut first_missing = name.segno - 1;
        // Back while no file of any timeline holds the segment below, and the archive
        // holds something further down.
        while first_missing > 0 {
            let below = first_missing - 1;
            if index.keys().any(|(_, s)| *s == below) || index.keys().all(|(_, s)| *s > below) {
                break;
            }
            first_missing -= 1;
        }
        let last_missing = name.segno - 1;
        let at = |s: u64| seg.file_name(self.timeline_for_segment(name.timeline, s, seg), s);
        let what = if first_missing == last_missing {
            format!("segment {} is missing before it", at(last_missing))
        } else {
            format!(
                "segments {} to {} are missing before it",
                at(first_missing),
                at(last_missing)
            )
        };
        self.problems.push(Problem::in_file(
            file,
            seg.segment_start(first_missing),
            what,
        ));
    }
}

#[cfg(test)]
mod tests;
