//! What an archive holds, read back through [`Archive`]: its segment size and its timelines'
//! histories. Every command that reads an archive (verify, cleanup) starts with these.

use std::collections::BTreeMap;
use std::io::Read;

use pgwire_repl::protocol::command::{parse_history, HistoryEntry};
use pgwire_repl::{TimelineId, WalSegmentSize};

use super::names::{looks_like_segment, method_of, parse_history_name};
use super::{Archive, Listed};
use crate::output::os_error;

/// The most of a history file that is read (a history has a line per timeline switch).
const HISTORY_CAP: u64 = 1 << 20;

/// Each timeline's history, as parsed or why it could not be.
pub type Histories = BTreeMap<TimelineId, Result<Vec<HistoryEntry>, String>>;

impl Archive {
    /// [`list`](Archive::list), failing with one line that names the archive: what every
    /// command that reads an archive starts with.
    pub async fn listing(&self) -> Result<Vec<Listed>, String> {
        self.list().await.map_err(|e| {
            format!(
                "could not read directory \"{}\": {}",
                self.location().display(),
                os_error(&e)
            )
        })
    }

    /// The segment size, from the long page header that starts every segment (its
    /// `xlp_seg_size`, at offset 32): the first readable segment-named file's, by name (the
    /// name's meaning depends on it). `None` when no segment can be read.
    pub async fn segment_size(&self, listed: &[Listed]) -> Option<WalSegmentSize> {
        let mut names: Vec<&Listed> = listed
            .iter()
            .filter(|f| looks_like_segment(&f.name))
            .collect();
        names.sort_by(|a, b| a.name.cmp(&b.name));
        for f in names {
            let Ok(mut r) = self.read_uncompressed(&f.name, method_of(&f.name)).await else {
                continue;
            };
            let mut head = [0u8; 40];
            if r.read_exact(&mut head).is_err() {
                continue;
            }
            let size = u32::from_le_bytes([head[32], head[33], head[34], head[35]]);
            if let Some(seg) = WalSegmentSize::new(size) {
                return Some(seg);
            }
        }
        None
    }

    /// Every history file among `listed`, read (at most 1 MiB of each) and parsed.
    pub async fn histories(&self, listed: &[Listed]) -> Histories {
        let mut out = BTreeMap::new();
        for (tli, name) in history_files(listed) {
            let mut text = Vec::new();
            let read = self.read(&name).await.and_then(|r| {
                r.take(HISTORY_CAP).read_to_end(&mut text)?;
                Ok(())
            });
            let parsed = match read {
                Ok(()) => parse_history(&text).map_err(|e| e.to_string()),
                Err(e) => Err(os_error(&e)),
            };
            out.insert(tli, parsed);
        }
        out
    }
}

/// `NNNNNNNN.history` names among `listed`, by timeline.
pub fn history_files(listed: &[Listed]) -> Vec<(TimelineId, String)> {
    let mut out: Vec<(TimelineId, String)> = listed
        .iter()
        .filter_map(|f| Some((parse_history_name(&f.name)?, f.name.clone())))
        .collect();
    out.sort();
    out
}
