//! `pgwal-recv cleanup` on real archives: what goes and what stays, `verify` clean over what
//! remains, `--dry-run` touching nothing, a cut given by the server's own backup label, and a
//! cleanup beside a running archiver.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use pgwire_repl::{Lsn, TimelineId};
use serde_json::Value;
use testenv::Cluster;

use crate::common::*;
use crate::verify::assert_clean;

/// Every file in `dir` with its size.
fn files(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, e.metadata().unwrap().len())
        })
        .collect();
    v.sort();
    v
}

/// The files of `dir` named for a segment (any suffix, .partial, .backup) below `cut`, by
/// the name's own digits: what cleanup must remove from a one-timeline archive.
fn below(dir: &Path, cut: u64) -> Vec<(String, u64)> {
    files(dir)
        .into_iter()
        .filter(|(n, _)| {
            n.get(..24)
                .and_then(|d| seg1mb().parse_file_name(d))
                .is_some_and(|(_, s)| s < cut)
        })
        .collect()
}

/// Runs cleanup on `dir` with `args` and `--json`: its output and its JSON.
fn cleanup(dir: &Path, args: &[&str]) -> (Output, Value) {
    let out = run(
        bin()
            .args(["cleanup", "-D", &dir.display().to_string(), "--json"])
            .args(args),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json = last_json(&out);
    (out, json)
}

fn names(v: &Value) -> Vec<String> {
    v["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

/// Checks a cleanup's report against the files that were to go, `gone`.
fn assert_reported(v: &Value, out: &Output, gone: &[(String, u64)], dry_run: bool) {
    let want: Vec<String> = gone.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names(v), want, "{v}");
    assert_eq!(v["dry_run"], dry_run);
    assert_eq!(
        v["bytes_removed"].as_u64(),
        Some(gone.iter().map(|(_, s)| s).sum())
    );
    let verb = if dry_run { "would remove" } else { "removed" };
    let err = stderr(out);
    for n in &want {
        assert!(err.contains(&format!("pgwal-recv: {verb} {n}\n")), "{err}");
    }
}

#[test]
fn keep_from_a_middle_segment() {
    let pg = cluster(&[]);
    let dir = TempDir::new("cleanup-middle");
    let (first, last) = make_archive(&pg, dir.path(), "middle", &["-Z", "lz4"]);
    assert!(last - first >= 6, "{first}..{last}");
    // Files that are no WAL, and an old base backup's .backup file, among the segments.
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    std::fs::write(dir.path().join("x.tmp"), "").unwrap();
    let old_backup = format!(
        "{}.00000028.backup",
        seg1mb().file_name(TimelineId(1), first + 1)
    );
    std::fs::write(
        dir.path().join(&old_backup),
        "START WAL LOCATION: 0/0 (file 000000010000000000000000)\n",
    )
    .unwrap();
    let before = files(dir.path());
    let cut = first + (last - first) / 2;
    let cut_name = seg1mb().file_name(TimelineId(1), cut);
    let gone = below(dir.path(), cut);
    assert!(gone.len() >= 3 && gone.iter().any(|(n, _)| *n == old_backup));

    // --dry-run: the same list, nothing removed.
    let (out, v) = cleanup(
        dir.path(),
        &["--keep-from", &format!("{cut_name}.lz4"), "-n"],
    );
    assert_reported(&v, &out, &gone, true);
    assert_eq!(v["cut"], cut_name);
    assert_eq!(files(dir.path()), before);

    let (out, v) = cleanup(dir.path(), &["--keep-from", &cut_name]);
    assert_reported(&v, &out, &gone, false);
    let after = files(dir.path());
    let expect: Vec<(String, u64)> = before
        .iter()
        .filter(|f| !gone.contains(f))
        .cloned()
        .collect();
    assert_eq!(after, expect);
    assert_eq!(v["kept"].as_u64(), Some((expect.len() - 3) as u64), "{v}");
    assert!(has_file(dir.path(), ".pgwal-recv.lock"));

    // What remains is a whole archive from the cut on.
    let verified = assert_clean(dir.path(), &[]);
    let first_lsn: Lsn = verified["timelines"][0]["first_lsn"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(seg1mb().segment_of(first_lsn), cut, "{verified}");

    // Again: nothing left to remove.
    let (_, v) = cleanup(dir.path(), &["--keep-from", &cut_name]);
    assert_eq!(names(&v), Vec::<String>::new());
    assert_eq!(files(dir.path()), after);
}

/// A base backup's label as the server writes it (its `pg_backup_stop` labelfile), and the
/// server's own name for the segment of its start.
fn backup_label(pg: &Cluster) -> (String, String) {
    let (start, stop) = if pg.version() >= 15 {
        ("pg_backup_start('cleanup', true)", "pg_backup_stop(false)")
    } else {
        (
            "pg_start_backup('cleanup', true, false)",
            "pg_stop_backup(false, false)",
        )
    };
    let out = pg
        .sql(&format!(
            "SELECT pg_walfile_name({start});\nSELECT labelfile FROM {stop};"
        ))
        .unwrap();
    let (walfile, label) = out.split_once('\n').unwrap();
    assert!(label.starts_with("START WAL LOCATION: "), "{out}");
    (label.to_owned() + "\n", walfile.trim().to_owned())
}

#[test]
fn keep_from_a_backup_label() {
    let pg = cluster(&[]);
    let dir = TempDir::new("cleanup-label");
    let (first, _) = make_archive(&pg, dir.path(), "label", &["-Z", "zstd"]);
    let (label, start_file) = backup_label(&pg);
    // More WAL after the backup's start, archived by the archiver resuming.
    pg.generate_wal(3 << 20).unwrap();
    pg.switch_wal().unwrap();
    let end = lsn(&pg, "SELECT pg_current_wal_flush_lsn()");
    let out = run(
        bin()
            .args(["-D", &dir.arg(), "-S", "label", "-n", "-Z", "zstd"])
            .args(["-E", &end.to_string(), "-d", &conninfo(&pg)]),
        Duration::from_secs(120),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        has_file(dir.path(), &format!("{start_file}.zst")),
        "{:?}",
        files(dir.path())
    );

    let labels = TempDir::new("cleanup-label-file");
    let path = labels.path().join("backup_label");
    std::fs::write(&path, &label).unwrap();
    let (_, cut) = seg1mb().parse_file_name(&start_file).unwrap();
    assert!(cut > first + 3, "{start_file}");
    let gone = below(dir.path(), cut);
    let (out, v) = cleanup(dir.path(), &["--keep-from", &path.display().to_string()]);
    assert_reported(&v, &out, &gone, false);
    assert_eq!(v["cut"], start_file.as_str());
    assert!(below(dir.path(), cut).is_empty());
    assert!(has_file(dir.path(), &format!("{start_file}.zst")));
    assert_clean(dir.path(), &[]);

    // The same label as a .backup file in the archive, by its bare name: nothing more goes.
    let name = format!("{start_file}.00000028.backup");
    std::fs::write(dir.path().join(&name), &label).unwrap();
    let (_, v) = cleanup(dir.path(), &["--keep-from", &name]);
    assert_eq!((names(&v), &v["cut"]), (vec![], &Value::from(start_file)));
}

#[test]
fn beside_a_running_archiver() {
    let pg = cluster(&[]);
    if !starts_at_the_slot() {
        return;
    }
    let dir = TempDir::new("cleanup-live");
    pg.create_physical_slot("live").unwrap();
    pg.generate_wal(5 << 20).unwrap();
    let mut archiver =
        Background::spawn(bin().args(["-D", &dir.arg(), "-S", "live", "-v", "-d", &conninfo(&pg)]));
    archiver.wait_until("5 segments archived", Duration::from_secs(60), |_| {
        complete_segments(dir.path()).len() >= 5
    });
    // A cut past everything: all but the newest segment goes, while WAL keeps coming.
    pg.generate_wal(2 << 20).unwrap();
    let (out, v) = cleanup(dir.path(), &["--keep-from", "FF/0"]);
    assert!(
        stderr(&out).contains("past the archive's newest segment"),
        "{}",
        stderr(&out)
    );
    assert!(!names(&v).is_empty(), "{v}");
    // The archiver goes on streaming into the archive from where it was.
    let end = pg.generate_wal(2 << 20).unwrap();
    let end: Lsn = end.trim().parse().unwrap();
    archiver.wait_until(
        "the archiver to pass the new WAL",
        Duration::from_secs(60),
        |_| {
            files(dir.path()).iter().any(|(n, _)| {
                seg1mb()
                    .parse_file_name(n.get(..24).unwrap_or_default())
                    .is_some_and(|(_, s)| s >= seg1mb().segment_of(end))
            })
        },
    );
    archiver.signal("INT");
    let (code, err) = archiver.wait(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("error"), "{err}");
    assert_clean(dir.path(), &[]);
}

#[test]
fn keep_within_a_time() {
    let pg = cluster(&[]);
    let dir = TempDir::new("cleanup-within");
    let (first, last) = make_archive(&pg, dir.path(), "within", &[]);
    // The first three segments written three days ago, by their modification time.
    let old: Vec<String> = (first..first + 3)
        .map(|s| seg1mb().file_name(TimelineId(1), s))
        .collect();
    for n in &old {
        let st = std::process::Command::new("touch")
            .args(["-m", "-d", "3 days ago"])
            .arg(dir.path().join(n))
            .status()
            .unwrap();
        assert!(st.success());
    }
    let before = files(dir.path());
    // A window that holds every segment: nothing goes.
    let (_, v) = cleanup(dir.path(), &["--keep-within", "4d"]);
    assert_eq!(names(&v), Vec::<String>::new(), "{v}");
    assert_eq!(v["cut"], seg1mb().file_name(TimelineId(1), first));
    // One that holds all but the three: they go, and the cut is the next segment.
    let gone = below(dir.path(), first + 3);
    let (out, v) = cleanup(dir.path(), &["--keep-within", "36h"]);
    assert_reported(&v, &out, &gone, false);
    assert_eq!(names(&v), old);
    assert_eq!(v["cut"], seg1mb().file_name(TimelineId(1), first + 3));
    assert_eq!(files(dir.path()).len(), before.len() - 3);
    assert!(last > first + 3);
    assert_clean(dir.path(), &[]);
}
