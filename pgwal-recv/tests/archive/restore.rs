//! `pgwal-recv restore` on real archives: what comes out is the server's own segment, byte
//! for byte, from every compression; what is absent exits 1 and says nothing; whatever is
//! wrong exits 255 with one line and leaves DEST absent; `--partial`; `--prefetch`.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use pgwire_repl::TimelineId;

use crate::common::*;

/// Runs `restore -D dir args...`.
fn restore(dir: &Path, args: &[&str]) -> Output {
    run(
        bin()
            .args(["restore", "-D", &dir.display().to_string()])
            .args(args),
        Duration::from_secs(60),
    )
}

/// A restore that must fail as PostgreSQL must see it fail: 255, one line on stderr naming
/// `what`, DEST absent and no temporary file left beside it.
#[track_caller]
fn assert_refused(out: &Output, dest: &Path, what: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(255), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("pgwal-recv: error: "), "{err}");
    assert!(err.contains(what), "{what:?} not in: {err}");
    assert!(!dest.exists(), "{} was written", dest.display());
    let leftovers: Vec<_> = std::fs::read_dir(dest.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

/// Nothing on stdout or stderr: what PostgreSQL logs of a normal restore.
#[track_caller]
fn assert_silent(out: &Output) {
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        stderr(out)
    );
}

#[test]
fn segments_come_back_as_the_server_wrote_them_from_every_compression() {
    let pg = cluster(&[]);
    pg.create_physical_slot("hold").unwrap();
    for (i, z) in ["none", "gzip", "lz4", "zstd"].iter().enumerate() {
        let dir = TempDir::new("restore");
        let (first, last) = make_archive(&pg, dir.path(), &format!("r{i}"), &["-Z", z]);
        let out_dir = TempDir::new("restore-dest");
        let dest = out_dir.path().join("RECOVERYXLOG");
        let seg = seg1mb();
        for segno in first..=last {
            let name = seg.file_name(TimelineId(1), segno);
            let out = restore(dir.path(), &[&name, &dest.display().to_string()]);
            assert_eq!(out.status.code(), Some(0), "{z} {name}: {}", stderr(&out));
            assert_silent(&out);
            let ours = std::fs::read(&dest).unwrap();
            assert!(
                ours == pg.wal_file(&name).unwrap(),
                "{z}: {name} differs from pg_wal's"
            );
            std::fs::remove_file(&dest).unwrap();
        }
        // What PostgreSQL asks for past the end: exit 1, nothing printed, quickly.
        for absent in [
            seg.file_name(TimelineId(1), last + 5),
            "00000002.history".into(),
        ] {
            let began = Instant::now();
            let out = restore(dir.path(), &[&absent, &dest.display().to_string()]);
            assert_eq!(out.status.code(), Some(1), "{absent}: {}", stderr(&out));
            assert_silent(&out);
            assert!(!dest.exists());
            assert!(began.elapsed() < Duration::from_secs(5));
        }
        eprintln!("-Z {z}: segments {first}..={last} restored identical to pg_wal");
    }
}

#[test]
fn history_and_backup_files() {
    let dir = TempDir::new("restore-text");
    let out_dir = TempDir::new("restore-dest");
    let dest = out_dir.path().join("RECOVERYHISTORY");
    let history = "1\t0/3000000\tno recovery target specified\n";
    std::fs::write(dir.path().join("00000002.history"), history).unwrap();
    let out = restore(
        dir.path(),
        &["00000002.history", &dest.display().to_string()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), history);
    std::fs::remove_file(&dest).unwrap();

    let backup = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n\
                  STOP WAL LOCATION: 0/2000100 (file 000000010000000000000002)\n";
    let name = "000000010000000000000002.00000028.backup";
    std::fs::write(dir.path().join(name), backup).unwrap();
    let out = restore(dir.path(), &[name, &dest.display().to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), backup);
    std::fs::remove_file(&dest).unwrap();

    std::fs::write(dir.path().join("00000003.history"), "not a history\n").unwrap();
    let out = restore(
        dir.path(),
        &["00000003.history", &dest.display().to_string()],
    );
    assert_refused(&out, &dest, "00000003.history");
}

/// An archive (in a new directory named after `what`) of at least five segments of `pg`'s
/// WAL, through slot `slot`; its first and last segment numbers.
fn five_segments(
    pg: &testenv::Cluster,
    what: &str,
    slot: &str,
    extra: &[&str],
) -> (TempDir, u64, u64) {
    let dir = TempDir::new(what);
    let (first, last) = make_archive(pg, dir.path(), slot, extra);
    assert!(last >= first + 4);
    (dir, first, last)
}

/// A new directory for DEST, and DEST in it (`RECOVERYXLOG`) as a path and as an argument.
fn dest_in_new_dir() -> (TempDir, PathBuf, String) {
    let out_dir = TempDir::new("restore-dest");
    let dest = out_dir.path().join("RECOVERYXLOG");
    let d = dest.display().to_string();
    (out_dir, dest, d)
}

/// Segment `segno`'s name on timeline 1 (1 MB segments).
fn name(segno: u64) -> String {
    seg1mb().file_name(TimelineId(1), segno)
}

#[test]
fn damaged_or_wrong_files_are_never_handed_over() {
    let pg = cluster(&[]);
    let (dir, first, last) = five_segments(&pg, "restore-damage", "damage", &[]);
    let (out_dir, dest, d) = dest_in_new_dir();

    // A flipped bit inside a record in the middle of a segment: its CRC.
    let flipped = name(first + 1);
    let mut bytes = std::fs::read(dir.path().join(&flipped)).unwrap();
    let at = bytes.len() / 2 + 1000;
    bytes[at] ^= 0x40;
    std::fs::write(dir.path().join(&flipped), &bytes).unwrap();
    assert_refused(&restore(dir.path(), &[&flipped, &d]), &dest, &flipped);

    // A segment stored under another segment's name: its page addresses.
    let (a, b) = (name(first + 2), name(first + 3));
    std::fs::copy(dir.path().join(&a), dir.path().join(&b)).unwrap();
    assert_refused(
        &restore(dir.path(), &[&b, &d]),
        &dest,
        "unexpected pageaddr",
    );

    // Truncated, uncompressed and compressed.
    let short = name(first + 2);
    let full = std::fs::read(dir.path().join(&short)).unwrap();
    std::fs::write(dir.path().join(&short), &full[..full.len() - 8192]).unwrap();
    assert_refused(&restore(dir.path(), &[&short, &d]), &dest, "truncated");
    let zst = name(last);
    let plain = std::fs::read(dir.path().join(&zst)).unwrap();
    let packed = zstd::encode_all(&plain[..], 3).unwrap();
    std::fs::remove_file(dir.path().join(&zst)).unwrap();
    std::fs::write(
        dir.path().join(format!("{zst}.zst")),
        &packed[..packed.len() / 2],
    )
    .unwrap();
    assert_refused(&restore(dir.path(), &[&zst, &d]), &dest, "decompress");

    // From another cluster: DEST in a data directory whose pg_control says otherwise.
    let other = TempDir::new("restore-other-cluster");
    std::fs::create_dir_all(other.path().join("global")).unwrap();
    std::fs::create_dir_all(other.path().join("pg_wal")).unwrap();
    let mut control = std::fs::read(pg.data_dir().join("global/pg_control")).unwrap();
    control[0] ^= 1;
    std::fs::write(other.path().join("global/pg_control"), &control).unwrap();
    let other_dest = other.path().join("pg_wal/RECOVERYXLOG");
    let good = name(first);
    let out = restore(dir.path(), &[&good, &other_dest.display().to_string()]);
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("another database system"),
        "{}",
        stderr(&out)
    );
    assert!(!other_dest.exists());
    // ... and with this cluster's own pg_control, the same file is fine.
    std::fs::write(
        other.path().join("global/pg_control"),
        std::fs::read(pg.data_dir().join("global/pg_control")).unwrap(),
    )
    .unwrap();
    let out = restore(dir.path(), &[&good, &other_dest.display().to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // An archive that is not there, a name PostgreSQL never asks for, a bad command line:
    // not "not found", which would end recovery early.
    let missing = dir.path().join("nonexistent");
    assert_refused(
        &restore(&missing, &[&good, &d]),
        &dest,
        "could not access archive",
    );
    assert_refused(
        &restore(dir.path(), &["../etc/passwd", &d]),
        &dest,
        "invalid file name",
    );
    assert_refused(
        &restore(dir.path(), &["pg_control", &d]),
        &dest,
        "not the name",
    );
    assert_refused(&restore(dir.path(), &[&good]), &dest, "required");
    // DEST's directory missing: an I/O error, not "not found".
    let nowhere = out_dir.path().join("no/such/dir/RECOVERYXLOG");
    let out = restore(dir.path(), &[&good, &nowhere.display().to_string()]);
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
}

/// An archive whose newest segment is a `.partial` (the archiver stopped mid-segment), with
/// `-Z z`; the partial's segment name and how many bytes of it the server had written.
fn partial_archive(pg: &testenv::Cluster, z: &str, slot: &str) -> (TempDir, String) {
    let dir = TempDir::new("restore-partial");
    make_archive(pg, dir.path(), slot, &["-Z", z]);
    pg.generate_wal(300 << 10).unwrap();
    let end = lsn(pg, "SELECT pg_current_wal_flush_lsn()");
    let out = run(
        bin().args(["-D", &dir.arg(), "-S", slot, "-n"]).args([
            "-E",
            &end.to_string(),
            "-d",
            &conninfo(pg),
            "-Z",
            z,
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let seg = seg1mb();
    let name = seg.file_name(TimelineId(1), seg.segment_of(end));
    (dir, name)
}

#[test]
fn partial_segments_with_partial() {
    let pg = cluster(&[]);
    pg.create_physical_slot("hold").unwrap();
    for (i, z) in ["none", "zstd", "gzip"].iter().enumerate() {
        let (dir, name) = partial_archive(&pg, z, &format!("p{i}"));
        let out_dir = TempDir::new("restore-dest");
        let dest: PathBuf = out_dir.path().join("RECOVERYXLOG");
        let d = dest.display().to_string();
        // Without --partial it is not there.
        let out = restore(dir.path(), &[&name, &d]);
        assert_eq!(out.status.code(), Some(1), "{z}: {}", stderr(&out));
        let out = restore(dir.path(), &["--partial", &name, &d]);
        assert_eq!(out.status.code(), Some(0), "{z}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("padded with zeros"),
            "{}",
            stderr(&out)
        );
        let ours = std::fs::read(&dest).unwrap();
        assert_eq!(ours.len(), seg1mb().bytes() as usize);
        // The server's segment, as far as the archiver received it; zeros after.
        let theirs = pg.wal_file(&name).unwrap();
        let received = ours.iter().rposition(|b| *b != 0).unwrap() + 1;
        assert!(received > 8192, "{z}: only {received} bytes");
        assert!(
            ours[..received] == theirs[..received],
            "{z}: differs from pg_wal's"
        );
        eprintln!("-Z {z}: {name}.partial restored, {received} bytes of WAL then zeros");
    }
}

#[test]
fn prefetch_restores_ahead_and_hands_over_by_rename() {
    let pg = cluster(&[]);
    pg.create_physical_slot("hold").unwrap();
    let (dir, first, _) = five_segments(&pg, "restore-prefetch", "pf", &["-Z", "zstd"]);
    let (out_dir, dest, d) = dest_in_new_dir();
    let spool = out_dir.path().join("pgwal-recv-prefetch");
    let out = restore(dir.path(), &["--prefetch=3", &name(first), &d]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let began = Instant::now();
    let want: Vec<String> = (first + 1..=first + 3).map(name).collect();
    while !want.iter().all(|n| spool.join(n).exists()) {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "spool never filled"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!spool.join(name(first + 4)).exists(), "more than 3 ahead");
    // The next restore takes its segment from the spool: identical, and gone from there.
    let out = restore(dir.path(), &["--prefetch=3", &name(first + 1), &d]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!spool.join(name(first + 1)).exists());
    assert!(std::fs::read(&dest).unwrap() == pg.wal_file(&name(first + 1)).unwrap());
    // Skipping ahead drops what recovery has passed.
    let out = restore(dir.path(), &["--prefetch=3", &name(first + 3), &d]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(std::fs::read(&dest).unwrap() == pg.wal_file(&name(first + 3)).unwrap());
    assert!(
        !spool.join(name(first + 2)).exists(),
        "a passed segment stayed in the spool"
    );
}
