//! Where `cleanup` cuts: the segment that `--keep-from` or `--keep-within` names.
//!
//! - a segment name: that segment (suffixes and the name's timeline do not matter);
//! - an LSN: its segment, named on the archive's newest timeline;
//! - a `.backup` file or a `backup_label`: the segment of its `START WAL LOCATION` (the
//!   file's own name for it, which must hold that LSN). A path is read from the file
//!   system; a bare name that no file in the current directory has, from the archive. At
//!   most 64 KiB are read: a label is a few hundred bytes;
//! - `--keep-within`: the oldest segment (by number) among those last modified within the
//!   window (a file whose time the backend does not know counts as recent). No segment
//!   modified within it means no cut: nothing is removed, rather than all but the newest
//!   segments of an archive whose archiver has stopped.

use std::io::Read;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use pgwire_repl::{Lsn, TimelineId, WalSegmentSize};

use crate::archive::names::{parse_history_name, SegmentName};
use crate::archive::{Archive, Listed};
use crate::cli::{Keep, KeepFrom};
use crate::output::os_error;

/// The most of a `.backup` file or `backup_label` that is read.
pub const LABEL_CAP: u64 = 64 << 10;

/// The cut: the first segment that stays (on every timeline), and the timeline its name is
/// given on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    pub timeline: TimelineId,
    pub segno: u64,
}

impl Cut {
    pub fn name(&self, seg: WalSegmentSize) -> String {
        seg.file_name(self.timeline, self.segno)
    }
}

/// The cut `keep` asks for in this archive, or `None` (see the [module docs](self)).
pub async fn resolve(
    archive: &Archive,
    listed: &[Listed],
    seg: WalSegmentSize,
    keep: &Keep,
    now: SystemTime,
) -> Result<Option<Cut>, String> {
    match keep {
        Keep::From(KeepFrom::Segment(name)) => match seg.parse_file_name(name) {
            Some((timeline, segno)) => Ok(Some(Cut { timeline, segno })),
            None => Err(format!(
                "\"{name}\" is not a segment name with this archive's segment size ({seg})"
            )),
        },
        Keep::From(KeepFrom::Lsn(lsn)) => Ok(Some(Cut {
            timeline: newest_timeline(listed, seg),
            segno: seg.segment_of(*lsn),
        })),
        Keep::From(KeepFrom::File(v)) => {
            let text = read_label(archive, v).await?;
            parse_backup_label(&text, seg)
                .map(Some)
                .map_err(|e| format!("file \"{v}\": {e}"))
        }
        Keep::Within(d) => Ok(oldest_within(listed, seg, now, *d)),
    }
}

/// The newest timeline the archive has a segment or a history file of (1 if none).
fn newest_timeline(listed: &[Listed], seg: WalSegmentSize) -> TimelineId {
    listed
        .iter()
        .filter_map(|f| {
            SegmentName::parse(&f.name, seg)
                .map(|s| s.timeline)
                .or_else(|| parse_history_name(&f.name))
        })
        .max()
        .unwrap_or(TimelineId(1))
}

/// The oldest segment among those modified within `d` before `now`.
pub fn oldest_within(
    listed: &[Listed],
    seg: WalSegmentSize,
    now: SystemTime,
    d: Duration,
) -> Option<Cut> {
    let since = now.checked_sub(d).unwrap_or(SystemTime::UNIX_EPOCH);
    listed
        .iter()
        .filter(|f| f.modified.is_none_or(|m| m >= since))
        .filter_map(|f| SegmentName::parse(&f.name, seg))
        .map(|s| (s.segno, s.timeline))
        .min()
        .map(|(segno, timeline)| Cut { timeline, segno })
}

/// A backup label's bytes: from the path `v`, else (a bare name) from the archive.
async fn read_label(archive: &Archive, v: &str) -> Result<Vec<u8>, String> {
    let capped = |r: &mut dyn Read| -> std::io::Result<Vec<u8>> {
        let mut text = Vec::new();
        r.take(LABEL_CAP + 1).read_to_end(&mut text)?;
        Ok(text)
    };
    let text = match std::fs::File::open(Path::new(v)) {
        Ok(mut f) => capped(&mut f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !v.contains('/') => {
            match archive.read(v).await {
                Ok(mut r) => capped(&mut r),
                // Neither here nor there: say it as of the path given.
                Err(_) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    let text = text.map_err(|e| format!("could not read file \"{v}\": {}", os_error(&e)))?;
    if text.len() as u64 > LABEL_CAP {
        return Err(format!(
            "file \"{v}\" is larger than 64 kB: not a backup label or .backup file"
        ));
    }
    Ok(text)
}

/// The cut a `.backup` file or `backup_label` gives: its line
/// `START WAL LOCATION: 0/3000028 (file 000000010000000000000003)`.
pub fn parse_backup_label(text: &[u8], seg: WalSegmentSize) -> Result<Cut, String> {
    let text = String::from_utf8_lossy(text);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("START WAL LOCATION:"))
        .ok_or("no START WAL LOCATION line: not a backup label or .backup file")?;
    let invalid = || format!("invalid START WAL LOCATION line \"{}\"", line.trim());
    let (lsn, file) = line.trim().split_once(" (file ").ok_or_else(invalid)?;
    let file = file.strip_suffix(')').ok_or_else(invalid)?;
    let lsn = Lsn::from_str(lsn.trim()).map_err(|_| invalid())?;
    let (timeline, segno) = seg.parse_file_name(file.trim()).ok_or_else(invalid)?;
    if seg.segment_of(lsn) != segno {
        return Err(format!(
            "START WAL LOCATION {lsn} is not in file {file} with this archive's segment size \
             ({seg})"
        ));
    }
    Ok(Cut { timeline, segno })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg() -> WalSegmentSize {
        WalSegmentSize::new(1 << 20).unwrap()
    }

    #[test]
    fn backup_labels() {
        let seg16 = WalSegmentSize::new(16 << 20).unwrap();
        let label = b"START WAL LOCATION: 0/3000028 (file 000000010000000000000003)\n\
            CHECKPOINT LOCATION: 0/3000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\n\
            START TIME: 2024-05-01 10:00:00 UTC\nLABEL: x\nSTART TIMELINE: 1\n";
        assert_eq!(
            parse_backup_label(label, seg16),
            Ok(Cut {
                timeline: TimelineId(1),
                segno: 3
            })
        );
        // With 1 MB segments 0/3000028 is in segment 0x30, not in the file the label names.
        assert!(parse_backup_label(label, seg()).is_err());
        let backup_file = b"START WAL LOCATION: 1/200028 (file 000000020000000100000002)\r\n\
            STOP WAL LOCATION: 1/200100 (file 000000020000000100000002)\r\n";
        assert_eq!(
            parse_backup_label(backup_file, seg()),
            Ok(Cut {
                timeline: TimelineId(2),
                segno: 4096 + 2
            })
        );
        for bad in [
            &b""[..],
            b"\xff\xfe garbage",
            b"START WAL LOCATION: 0/3000028\n",
            b"START WAL LOCATION: 0/3000028 (file 00000001000000000000003)\n",
            b"START WAL LOCATION: 0/zz (file 000000010000000000000003)\n",
            b"START WAL LOCATION: 0/3000028 (file 000000010000000000000003\n",
            // The LSN is not in the file named.
            b"START WAL LOCATION: 0/4000028 (file 000000010000000000000003)\n",
        ] {
            assert!(parse_backup_label(bad, seg16).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn oldest_segment_modified_within_the_window() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let f = |name: String, age: u64| Listed {
            name,
            size: 1,
            modified: Some(now - Duration::from_secs(age)),
        };
        let name = |tli, segno| seg().file_name(TimelineId(tli), segno);
        let listed = vec![
            f(name(1, 1), 5000),
            f(name(1, 2), 4000),
            f(name(1, 3), 3000),
            f(format!("{}.partial", name(1, 4)), 10),
            f(name(2, 3), 2000),
            f("00000002.history".to_owned(), 10),
            f(".pgwal-recv.lock".to_owned(), 1),
        ];
        let within = |secs| oldest_within(&listed, seg(), now, Duration::from_secs(secs));
        assert_eq!(
            within(3500),
            Some(Cut {
                timeline: TimelineId(1),
                segno: 3
            })
        );
        assert_eq!(within(2500).map(|c| c.segno), Some(3));
        assert_eq!(within(2500).map(|c| c.timeline), Some(TimelineId(2)));
        assert_eq!(within(100).map(|c| c.segno), Some(4));
        assert_eq!(within(5).map(|c| c.segno), None);
        assert_eq!(within(u64::MAX).map(|c| c.segno), Some(1));
        assert_eq!(newest_timeline(&listed, seg()), TimelineId(2));
    }
}
