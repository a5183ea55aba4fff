//! `pgwal-recv verify`: reads every record of an archive and says what is wrong.
//!
//! The archive's files are listed and planned ([`plan`]): which segment carries on from
//! which, across timelines, and what the names alone show (gaps, duplicates, misplaced
//! `.partial` files, missing history files). Then every segment is read once, uncompressed
//! as it is read, and fed to the library's WAL decoder ([`pgwire_repl::wal`]), which checks
//! each page and record as PostgreSQL's reader does; [`check`] adds what only the archive
//! knows: sizes, where WAL may end, the timeline each page must carry, one system
//! identifier. One thread reads and decompresses while the other decodes, through a few
//! reused 256 KiB buffers: memory stays bounded whatever the archive's size.

pub mod check;
pub mod plan;

use pgwire_repl::{Lsn, TimelineId, WalSegmentSize};
use serde_json::json;

use crate::archive::Archive;
use crate::cli::VerifyOptions;
use crate::connect::block_on;
use crate::output::{bytes, error, info};
use check::Outcome;
use plan::{Plan, Problem, Range};

/// Runs `verify` and returns the exit code: 0 when nothing is wrong, 1 otherwise.
pub fn main(o: VerifyOptions) -> i32 {
    block_on(async move {
        match verify(&o).await {
            Ok(outcome) => report(&o, &outcome),
            Err(e) => {
                error(e);
                1
            }
        }
    })
}

async fn verify(o: &VerifyOptions) -> Result<Outcome, String> {
    let archive = Archive::open(&o.directory)?;
    let listed = archive.listing().await?;
    let Some(seg) = archive.segment_size(&listed).await else {
        return Ok(Outcome::default());
    };
    let histories = archive.histories(&listed).await;
    let segno = |name: &Option<String>| {
        name.as_deref()
            .and_then(|n| seg.parse_file_name(n))
            .map(|(_, s)| s)
    };
    let range = Range {
        timeline: o.timeline,
        start: segno(&o.start),
        end: segno(&o.end),
    };
    let plan = Plan::new(&listed, histories, seg, range);
    Ok(check::run(&archive, &plan, seg).await)
}

/// Prints the problems, the summary and, when asked, the statistics and the JSON; the exit
/// code.
fn report(o: &VerifyOptions, out: &Outcome) -> i32 {
    let say = |line: String| {
        if o.json {
            info(line)
        } else {
            println!("{line}")
        }
    };
    for p in &out.problems {
        say(problem_line(p, out.seg));
    }
    for t in &out.timelines {
        say(format!(
            "timeline {}: {} segments, records from {} to {}",
            t.timeline, t.segments, t.first, t.last
        ));
    }
    say(format!(
        "{} segments ({}), {} records, {} problem{}",
        out.segments,
        bytes(out.bytes),
        out.records,
        out.problems.len(),
        if out.problems.len() == 1 { "" } else { "s" }
    ));
    if o.stats && !o.json {
        print!("{}", out.stats.table(&out.rmgr_names));
    }
    if o.json {
        let mut doc = json!({
            "ok": out.problems.is_empty(),
            "segments": out.segments,
            "bytes": out.bytes,
            "records": out.records,
            "timelines": out.timelines.iter().map(|t| json!({
                "timeline": t.timeline.0,
                "segments": t.segments,
                "first_lsn": t.first.to_string(),
                "last_lsn": t.last.to_string(),
            })).collect::<Vec<_>>(),
            "problems": out.problems.iter().map(|p| json!({
                "file": p.file,
                "lsn": p.lsn.map(|l| l.to_string()),
                "message": p.message,
            })).collect::<Vec<_>>(),
        });
        if o.stats {
            doc["rmgrs"] = out.stats.json(&out.rmgr_names);
        }
        println!("{doc}");
    }
    i32::from(!out.problems.is_empty())
}

/// `FILE: offset N, LSN X/Y: what` (the parts that apply).
fn problem_line(p: &Problem, seg: Option<WalSegmentSize>) -> String {
    let mut line = p.file.clone().unwrap_or_else(|| "archive".to_owned());
    if let (Some(lsn), Some(seg)) = (p.lsn, seg) {
        line.push_str(&format!(": offset {}, LSN {lsn}", seg.offset_of(lsn)));
    } else if let Some(lsn) = p.lsn {
        line.push_str(&format!(": LSN {lsn}"));
    }
    line.push_str(": ");
    line.push_str(&p.message);
    line
}

/// The first and last LSN read on a timeline, for the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineSummary {
    pub timeline: TimelineId,
    pub segments: u64,
    pub first: Lsn,
    pub last: Lsn,
}
