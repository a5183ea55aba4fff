//! `pgwal-recv cleanup`: removes from an archive what no recovery from a kept point on can
//! need, as `pg_archivecleanup` does for an archive_command's directory, but knowing the
//! archive's timelines, compression suffixes and `.partial` files.
//!
//! Where the cut is comes from [`cut`], which files go from [`plan`] (a pure function of the
//! listing, the histories and the cut: its docs say exactly what stays). Everything goes
//! through [`Archive`].
//!
//! Safe while the archiver writes: cleanup takes no lock (the archiver holds the archive's
//! lock for as long as it runs), never removes a timeline's newest segment (the only one
//! the archiver writes into or resumes from) nor anything at or after the cut, so nothing it
//! removes is a file the archiver has open or will create. A file gone between the listing
//! and its removal (a `.partial` renamed as it completes, another cleanup) is passed over.

pub mod cut;
pub mod plan;

use std::collections::BTreeMap;
use std::io;
use std::time::SystemTime;

use pgwire_repl::WalSegmentSize;
use serde_json::json;

use crate::archive::names::looks_like_segment;
use crate::archive::{Archive, Listed};
use crate::cli::CleanupOptions;
use crate::connect::block_on;
use crate::output::{bytes, error, info, os_error, warning};
use cut::Cut;

/// What was (or with `--dry-run` would be) removed.
#[derive(Debug, Default)]
struct Outcome {
    cut: Option<String>,
    removed: Vec<String>,
    bytes_removed: u64,
    kept: usize,
}

/// Runs `cleanup` and returns the exit code: 0 when done, 1 on an error.
pub fn main(o: CleanupOptions) -> i32 {
    block_on(async move {
        match cleanup(&o).await {
            Ok(out) => {
                summary(&o, &out);
                0
            }
            Err(e) => {
                error(e);
                1
            }
        }
    })
}

/// Prints a line: on stdout, or on stderr when stdout is for the JSON.
fn say(o: &CleanupOptions, line: String) {
    if o.json {
        info(line)
    } else {
        println!("{line}")
    }
}

async fn cleanup(o: &CleanupOptions) -> Result<Outcome, String> {
    let archive = Archive::open(&o.directory)?;
    let listed = archive.listing().await?;
    let Some(seg) = archive.segment_size(&listed).await else {
        if listed.iter().any(|f| looks_like_segment(&f.name)) {
            return Err(format!(
                "could not read the segment size: no segment in \"{}\" starts with a valid \
                 page header",
                o.directory.display()
            ));
        }
        say(
            o,
            "no segments in the archive: nothing to remove".to_owned(),
        );
        return Ok(Outcome::default());
    };
    let mut histories = BTreeMap::new();
    for (tli, h) in archive.histories(&listed).await {
        let h = h.map_err(|e| {
            format!(
                "could not read history file \"{}\": {e}",
                tli.history_file_name()
            )
        })?;
        histories.insert(tli, h);
    }
    let cut = cut::resolve(&archive, &listed, seg, &o.keep, SystemTime::now()).await?;
    let Some(cut) = cut else {
        warning("no segment was modified within the given time: nothing removed");
        return Ok(Outcome {
            kept: plan::plan(&listed, &histories, seg, 0).kept,
            ..Outcome::default()
        });
    };
    warn_past_the_end(&listed, seg, cut);
    let removal = plan::plan(&listed, &histories, seg, cut.segno);
    let mut out = Outcome {
        cut: Some(cut.name(seg)),
        kept: removal.kept,
        ..Outcome::default()
    };
    for f in &removal.remove {
        if o.dry_run {
            say(o, format!("would remove {}", f.name));
        } else if remove(&archive, f).await? {
            say(o, format!("removed {}", f.name));
        } else {
            continue;
        }
        out.removed.push(f.name.clone());
        out.bytes_removed += f.size;
    }
    if !o.dry_run && !out.removed.is_empty() {
        archive.sync().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Removes `f`; false when it is already gone.
async fn remove(archive: &Archive, f: &Listed) -> Result<bool, String> {
    let path = || archive.location().join(&f.name).display().to_string();
    match archive.exists(&f.name).await {
        Ok(true) => {}
        Ok(false) => return Ok(false),
        Err(e) => {
            return Err(format!(
                "could not stat file \"{}\": {}",
                path(),
                os_error(&e)
            ))
        }
    }
    match archive.remove(&f.name).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!(
            "could not remove file \"{}\": {}",
            path(),
            os_error(&e)
        )),
    }
}

/// A cut past every segment of the archive keeps only each timeline's newest: right for a
/// backup whose WAL the archiver has yet to receive, a mistake otherwise. Said, not refused.
fn warn_past_the_end(listed: &[Listed], seg: WalSegmentSize, cut: Cut) {
    let newest = listed
        .iter()
        .filter_map(|f| crate::archive::SegmentName::parse(&f.name, seg))
        .map(|s| s.segno)
        .max();
    if newest.is_some_and(|n| n < cut.segno) {
        warning(format!(
            "the cut {} is past the archive's newest segment: only each timeline's newest \
             segment stays",
            cut.name(seg)
        ));
    }
}

/// The summary line and, with `--json`, the JSON object.
fn summary(o: &CleanupOptions, out: &Outcome) {
    let n = out.removed.len();
    let files = if n == 1 { "file" } else { "files" };
    let (verb, keep) = if o.dry_run {
        ("would remove", "would keep")
    } else {
        ("removed", "kept")
    };
    let cut = match &out.cut {
        Some(c) => format!("cut at {c}"),
        None => "no cut".to_owned(),
    };
    say(
        o,
        format!(
            "{verb} {n} {files} ({}), {keep} {}; {cut}",
            bytes(out.bytes_removed),
            out.kept
        ),
    );
    if o.json {
        println!(
            "{}",
            json!({
                "dry_run": o.dry_run,
                "cut": out.cut,
                "removed": out.removed,
                "kept": out.kept,
                "bytes_removed": out.bytes_removed,
            })
        );
    }
}
