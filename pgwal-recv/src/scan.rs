//! Where to resume streaming: the newest usable segment in the archive directory
//! (pg_receivewal's `FindStreamingStart`, with zstd added).
//!
//! A file counts only if its name is a segment name (24 uppercase hex digits that this
//! segment size can produce) followed by `""`, `.gz`, `.lz4` or `.zst`, then optionally
//! `.partial`. A complete file must hold exactly one segment: an uncompressed one by its
//! size, a `.gz` one by its ISIZE trailer, an `.lz4` or `.zst` one by decompressing it. A
//! `.partial` gets no check. The winner is the highest segment number, then the higher
//! timeline, then a complete file over a partial one. Streaming resumes after a complete
//! winner, or at the start of a partial one.
//!
//! Differences from pg_receivewal, all on damaged archives: a compressed file that cannot be
//! decompressed (or a `.gz` too short to hold a trailer) is skipped with a warning instead of
//! ending the program; a file that vanishes during the scan is ignored; and `.lz4`/`.zst`
//! files are decompressed only while they could still win, newest first, rather than every
//! one of them on each start, so a bad one below the winner is not reported.

use std::cmp::Reverse;
use std::io;
use std::path::Path;

use pgwire_repl::{Lsn, TimelineId, WalSegmentSize};

use crate::compress::Method;
use crate::zfile::uncompressed_size_limited;

const PARTIAL: &str = ".partial";

/// The newest usable segment file, and where streaming resumes after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub timeline: TimelineId,
    /// A segment boundary: the segment after a complete file, the start of a partial one.
    pub start: Lsn,
    /// The winning file's name, suffixes included.
    pub file: String,
    pub partial: bool,
}

/// Parses an archive file name: `<segment><.gz|.lz4|.zst|><.partial|>`, where `<segment>`
/// is a name `seg` can produce. Returns the timeline, segment number, compression method and
/// whether it is partial; `None` for every other file (`.history`, `.tmp`, lowercase, ...).
pub fn is_segment_file_name(
    name: &str,
    seg: WalSegmentSize,
) -> Option<(TimelineId, u64, Method, bool)> {
    let (tli, segno) = seg.parse_file_name(name.get(..24)?)?;
    let rest = &name[24..];
    let (rest, partial) = match rest.strip_suffix(PARTIAL) {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let method = match rest {
        "" => Method::None,
        ".gz" => Method::Gzip,
        ".lz4" => Method::Lz4,
        ".zst" => Method::Zstd,
        _ => return None,
    };
    Some((tli, segno, method, partial))
}

struct Candidate {
    name: String,
    tli: TimelineId,
    segno: u64,
    method: Method,
    partial: bool,
}

/// What the size check of a complete file decided.
enum Check {
    Valid,
    /// Skipped, with this warning.
    Skip(String),
    /// Gone since the directory was listed: ignored.
    Vanished,
}

/// Whether a complete file passes its check; a failing one is reported through `warn`.
fn passes(
    dir: &Path,
    c: &Candidate,
    seg: WalSegmentSize,
    warn: &mut dyn FnMut(String),
) -> io::Result<bool> {
    Ok(match check_complete(dir, c, seg)? {
        Check::Valid => true,
        Check::Skip(w) => {
            warn(w);
            false
        }
        Check::Vanished => false,
    })
}

/// Checks that a complete file holds exactly one segment. Errors are those of the file
/// system (the scan gives up); damage is a `Skip`.
fn check_complete(dir: &Path, c: &Candidate, seg: WalSegmentSize) -> io::Result<Check> {
    let path = dir.join(&c.name);
    let want = u64::from(seg.bytes());
    // An uncompressed file's size is its length; lz4 and zstd counts stop a little past
    // `want`, as pg_receivewal's lz4 count does: enough to know the file is wrong.
    Ok(match uncompressed_size_limited(&path, c.method, want) {
        Ok(n) if n == want => Check::Valid,
        Ok(n) if c.method == Method::None => Check::Skip(format!(
            "segment file \"{}\" has incorrect size {n}, skipping",
            c.name
        )),
        Ok(n) => Check::Skip(format!(
            "compressed segment file \"{}\" has incorrect uncompressed size {n}, skipping",
            c.name
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Check::Vanished,
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Check::Skip(format!(
            "compressed segment file \"{}\" could not be decompressed: {e}, skipping",
            c.name
        )),
        Err(e) => return Err(e),
    })
}

/// Scans `dir` for the newest usable segment file (see the module doc). `warn` receives the
/// text of each warning, such as `segment file "X" has incorrect size 123, skipping`.
/// Errors are the file system's: the directory cannot be read, or a file cannot be opened.
pub fn find_streaming_start(
    dir: &Path,
    seg: WalSegmentSize,
    warn: &mut dyn FnMut(String),
) -> io::Result<Option<Found>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        // A name that is not UTF-8 is not a segment name.
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if let Some((tli, segno, method, partial)) = is_segment_file_name(&name, seg) {
            files.push(Candidate {
                name,
                tli,
                segno,
                method,
                partial,
            });
        }
    }
    // readdir order is arbitrary; warnings come out in name order.
    files.sort_unstable_by(|a, b| a.name.cmp(&b.name));

    // The cheap checks (a stat, a 4-byte trailer) run on every complete file, as in
    // pg_receivewal, so each bad one is reported.
    let mut valid = Vec::with_capacity(files.len());
    for c in files {
        if !c.partial
            && matches!(c.method, Method::None | Method::Gzip)
            && !passes(dir, &c, seg, warn)?
        {
            continue;
        }
        valid.push(c);
    }

    // Newest first: segment, then timeline, then complete before partial. Decompressing is
    // costly, so lz4 and zstd files are checked only in this order, until one wins.
    valid.sort_unstable_by_key(|c| Reverse((c.segno, c.tli, !c.partial)));
    for c in valid {
        if !c.partial
            && matches!(c.method, Method::Lz4 | Method::Zstd)
            && !passes(dir, &c, seg, warn)?
        {
            continue;
        }
        let start = if c.partial {
            seg.segment_start(c.segno)
        } else {
            seg.segment_start(c.segno + 1)
        };
        // Only a complete file of the very last segment of the LSN space gets here; there
        // is nothing after it to stream.
        let Some(start) = start else {
            warn(format!(
                "segment file \"{}\" is the last segment of the WAL address space, skipping",
                c.name
            ));
            continue;
        };
        return Ok(Some(Found {
            timeline: c.tli,
            start,
            file: c.name,
            partial: c.partial,
        }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::CompressSpec;
    use crate::zfile::Encoder;
    use std::fs::File;
    use std::path::PathBuf;

    const MB: u32 = 1 << 20;

    fn seg1() -> WalSegmentSize {
        WalSegmentSize::new(MB).unwrap()
    }

    /// A directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "pgwal-recv-scan-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }

        /// A file of `len` zero bytes (sparse: cheap at any size).
        fn plain(&self, name: &str, len: u64) {
            File::create(self.0.join(name))
                .unwrap()
                .set_len(len)
                .unwrap();
        }

        /// A compressed file whose content is `len` bytes, finished cleanly.
        fn compressed(&self, name: &str, method: Method, len: usize) {
            let file = File::create(self.0.join(name)).unwrap();
            let spec = CompressSpec {
                method,
                level: Some(1),
            };
            let mut enc = Encoder::new(spec, file).unwrap();
            let chunk = vec![0x5Au8; 64 * 1024];
            let mut left = len;
            while left > 0 {
                let n = left.min(chunk.len());
                enc.write_all(&chunk[..n]).unwrap();
                left -= n;
            }
            enc.finish().unwrap();
        }

        fn scan(&self) -> (Option<Found>, Vec<String>) {
            let mut warnings = Vec::new();
            let found = find_streaming_start(&self.0, seg1(), &mut |w| warnings.push(w)).unwrap();
            (found, warnings)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn name(tli: u32, segno: u64) -> String {
        seg1().file_name(TimelineId(tli), segno)
    }

    fn found(tli: u32, start_segno: u64, file: &str, partial: bool) -> Option<Found> {
        Some(Found {
            timeline: TimelineId(tli),
            start: seg1().segment_start(start_segno).unwrap(),
            file: file.to_owned(),
            partial,
        })
    }

    #[test]
    fn segment_file_names() {
        let s = seg1();
        let base = "000000020000000100000003";
        let segno = 4096 + 3;
        for (suffix, method, partial) in [
            ("", Method::None, false),
            (".gz", Method::Gzip, false),
            (".lz4", Method::Lz4, false),
            (".zst", Method::Zstd, false),
            (".partial", Method::None, true),
            (".gz.partial", Method::Gzip, true),
            (".lz4.partial", Method::Lz4, true),
            (".zst.partial", Method::Zstd, true),
        ] {
            assert_eq!(
                is_segment_file_name(&format!("{base}{suffix}"), s),
                Some((TimelineId(2), segno, method, partial)),
                "{suffix:?}"
            );
        }
        for bad in [
            "00000002.history",
            "000000020000000100000003.tmp",
            "000000020000000100000003.history",
            "000000020000000100000003.partial.partial",
            "000000020000000100000003.partial.gz",
            "000000020000000100000003.bz2",
            "000000020000000100000003.zstd",
            "000000020000000100000003.GZ",
            "000000020000000100000003.gz.",
            "00000002000000010000000a",
            "00000002000000010000000a.gz",
            "0000000200000001000000031",
            "00000002000000010000003",
            "00000002000000010000000G",
            "000000020000000100001000", // 1 MB segments: 4096 per xlogid, so 0x1000 is no segment
            "000000020000000100000003\u{e9}",
            "\u{e9}00000020000000100000003",
            "0000000200000001000000\u{e9}",
            ".pgwal-recv.lock",
            "",
        ] {
            assert_eq!(is_segment_file_name(bad, s), None, "{bad:?}");
        }
    }

    #[test]
    fn empty_dir_and_ignored_files() {
        let d = TempDir::new("empty");
        assert_eq!(d.scan(), (None, vec![]));
        // None of these counts, whatever its size or content.
        d.plain("00000001.history", 10);
        d.plain(&format!("{}.tmp", name(1, 9)), u64::from(MB));
        d.plain("0000000a0000000000000009", u64::from(MB));
        d.plain("00000001000000000000000a", u64::from(MB));
        d.plain(".pgwal-recv.lock", 0);
        d.plain(&format!("{}.bz2", name(1, 9)), u64::from(MB));
        std::fs::create_dir(d.0.join("archive_status")).unwrap();
        assert_eq!(d.scan(), (None, vec![]));
    }

    #[test]
    fn complete_uncompressed_resumes_at_next_segment() {
        let d = TempDir::new("plain");
        d.plain(&name(1, 5), u64::from(MB));
        d.plain(&name(1, 6), u64::from(MB));
        assert_eq!(d.scan(), (found(1, 7, &name(1, 6), false), vec![]));
    }

    #[test]
    fn wrong_size_is_skipped_and_the_previous_wins() {
        let d = TempDir::new("size");
        d.plain(&name(1, 5), u64::from(MB));
        d.plain(&name(1, 6), 123);
        let (f, w) = d.scan();
        assert_eq!(f, found(1, 6, &name(1, 5), false));
        assert_eq!(
            w,
            [format!(
                "segment file \"{}\" has incorrect size 123, skipping",
                name(1, 6)
            )]
        );
        // Too long is as wrong as too short.
        d.plain(&name(1, 6), u64::from(MB) + 1);
        assert_eq!(
            d.scan().1[0],
            format!(
                "segment file \"{}\" has incorrect size 1048577, skipping",
                name(1, 6)
            )
        );
    }

    #[test]
    fn every_bad_plain_or_gzip_file_is_reported() {
        let d = TempDir::new("all");
        d.plain(&name(1, 2), 0);
        d.plain(&name(1, 3), 7);
        d.plain(&name(1, 9), u64::from(MB));
        let (f, w) = d.scan();
        assert_eq!(f, found(1, 10, &name(1, 9), false));
        assert_eq!(
            w,
            [
                format!(
                    "segment file \"{}\" has incorrect size 0, skipping",
                    name(1, 2)
                ),
                format!(
                    "segment file \"{}\" has incorrect size 7, skipping",
                    name(1, 3)
                ),
            ]
        );
    }

    #[test]
    fn partial_beats_lower_complete_and_resumes_at_its_start() {
        let d = TempDir::new("partial");
        d.plain(&name(1, 5), u64::from(MB));
        // Partials get no size check at all.
        d.plain(&format!("{}.partial", name(1, 6)), 17);
        assert_eq!(
            d.scan(),
            (
                found(1, 6, &format!("{}.partial", name(1, 6)), true),
                vec![]
            )
        );
    }

    #[test]
    fn ties_higher_timeline_then_complete_over_partial() {
        let d = TempDir::new("ties");
        d.plain(&name(1, 8), u64::from(MB));
        d.plain(&format!("{}.partial", name(2, 8)), u64::from(MB));
        // Same segment: the higher timeline wins even as a partial.
        assert_eq!(
            d.scan().0,
            found(2, 8, &format!("{}.partial", name(2, 8)), true)
        );
        // Same segment and timeline: complete beats partial.
        d.plain(&name(2, 8), u64::from(MB));
        assert_eq!(d.scan().0, found(2, 9, &name(2, 8), false));
        // A higher segment wins over a higher timeline.
        d.plain(&name(1, 9), u64::from(MB));
        d.plain(&name(3, 7), u64::from(MB));
        assert_eq!(d.scan().0, found(1, 10, &name(1, 9), false));
        // Complete beats partial also when the partial's method differs.
        d.plain(&format!("{}.gz.partial", name(1, 9)), 5);
        assert_eq!(d.scan().0, found(1, 10, &name(1, 9), false));
    }

    #[test]
    fn segment_numbers_cross_xlogid_boundaries() {
        let d = TempDir::new("xlogid");
        // 1 MB segments: 000000010000000000000FFF is followed by 000000010000000100000000.
        d.plain(&name(1, 4095), u64::from(MB));
        d.plain(&format!("{}.partial", name(1, 4096)), 0);
        let (f, _) = d.scan();
        assert_eq!(f.as_ref().unwrap().file, "000000010000000100000000.partial");
        assert_eq!(f.unwrap().start, Lsn(0x1_0000_0000));
    }

    #[test]
    fn gzip_isize_decides() {
        let d = TempDir::new("gz");
        d.compressed(&format!("{}.gz", name(1, 3)), Method::Gzip, MB as usize);
        d.compressed(&format!("{}.gz", name(1, 4)), Method::Gzip, 1000);
        let (f, w) = d.scan();
        assert_eq!(f, found(1, 4, &format!("{}.gz", name(1, 3)), false));
        assert_eq!(
            w,
            [format!(
                "compressed segment file \"{}.gz\" has incorrect uncompressed size 1000, skipping",
                name(1, 4)
            )]
        );
    }

    #[test]
    fn lz4_and_zstd_are_decompressed_and_counted() {
        for (m, ext) in [(Method::Lz4, "lz4"), (Method::Zstd, "zst")] {
            let d = TempDir::new(ext);
            d.compressed(&format!("{}.{ext}", name(1, 3)), m, MB as usize);
            assert_eq!(
                d.scan(),
                (found(1, 4, &format!("{}.{ext}", name(1, 3)), false), vec![])
            );
            d.compressed(&format!("{}.{ext}", name(1, 4)), m, MB as usize - 1);
            let (f, w) = d.scan();
            assert_eq!(
                f,
                found(1, 4, &format!("{}.{ext}", name(1, 3)), false),
                "{m:?}"
            );
            assert_eq!(
                w,
                [format!(
                    "compressed segment file \"{}.{ext}\" has incorrect uncompressed size 1048575, skipping",
                    name(1, 4)
                )]
            );
            // Too much content is wrong too (the count stops past the segment size).
            d.compressed(&format!("{}.{ext}", name(1, 4)), m, 3 * MB as usize);
            let (f, w) = d.scan();
            assert_eq!(
                f,
                found(1, 4, &format!("{}.{ext}", name(1, 3)), false),
                "{m:?}"
            );
            assert!(w[0].contains("has incorrect uncompressed size"), "{w:?}");
            // A cleanly finished compressed partial counts, with no check.
            d.compressed(&format!("{}.{ext}.partial", name(1, 5)), m, 100);
            let (f, _) = d.scan();
            assert_eq!(
                f,
                found(1, 5, &format!("{}.{ext}.partial", name(1, 5)), true)
            );
        }
    }

    #[test]
    fn corrupt_compressed_files_are_skipped_with_a_warning() {
        for (m, ext) in [
            (Method::Gzip, "gz"),
            (Method::Lz4, "lz4"),
            (Method::Zstd, "zst"),
        ] {
            let d = TempDir::new("corrupt");
            d.compressed(&format!("{}.{ext}", name(1, 3)), m, MB as usize);
            let bad = format!("{}.{ext}", name(1, 4));
            d.compressed(&bad, m, MB as usize);
            // Cut short: gzip's tail is then no longer its ISIZE, lz4 and zstd lose their end.
            let path = d.0.join(&bad);
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(&path, &bytes[..bytes.len() - 6]).unwrap();
            let (f, w) = d.scan();
            assert_eq!(
                f,
                found(1, 4, &format!("{}.{ext}", name(1, 3)), false),
                "{m:?}"
            );
            assert_eq!(w.len(), 1, "{w:?}");
            assert!(
                w[0].starts_with(&format!("compressed segment file \"{bad}\" ")),
                "{w:?}"
            );
            assert!(w[0].ends_with(", skipping"), "{w:?}");
            // Garbage and an empty file: skipped too, never an error or a panic.
            for content in [&b"garbage"[..], b""] {
                std::fs::write(&path, content).unwrap();
                let (f, w) = d.scan();
                assert_eq!(
                    f,
                    found(1, 4, &format!("{}.{ext}", name(1, 3)), false),
                    "{m:?}"
                );
                assert_eq!(w.len(), 1, "{m:?} {content:?}: {w:?}");
            }
        }
        let d = TempDir::new("corrupt-msg");
        let bad = format!("{}.zst", name(1, 1));
        std::fs::write(d.0.join(&bad), b"garbage").unwrap();
        let (f, w) = d.scan();
        assert_eq!(f, None);
        assert!(
            w[0].starts_with(&format!(
                "compressed segment file \"{bad}\" could not be decompressed: "
            )),
            "{w:?}"
        );
    }

    #[test]
    fn decompression_stops_at_the_winner() {
        let d = TempDir::new("lazy");
        // A damaged .zst below a good one is never opened, so never reported.
        d.plain(&format!("{}.zst", name(1, 2)), 10);
        d.compressed(&format!("{}.zst", name(1, 3)), Method::Zstd, MB as usize);
        assert_eq!(
            d.scan(),
            (found(1, 4, &format!("{}.zst", name(1, 3)), false), vec![])
        );
    }

    #[test]
    fn last_segment_of_the_lsn_space() {
        let d = TempDir::new("end");
        let last = seg1().segment_of(Lsn(u64::MAX));
        d.plain(&name(1, last - 1), u64::from(MB));
        d.plain(&name(1, last), u64::from(MB));
        let (f, w) = d.scan();
        assert_eq!(f, found(1, last, &name(1, last - 1), false));
        assert_eq!(w.len(), 1);
        // A partial of it is fine: streaming resumes at its start.
        d.plain(&format!("{}.partial", name(2, last)), 0);
        assert_eq!(
            d.scan().0,
            found(2, last, &format!("{}.partial", name(2, last)), true)
        );
    }

    #[test]
    fn unreadable_directory_is_an_error() {
        let d = TempDir::new("missing");
        let r = find_streaming_start(&d.0.join("nope"), seg1(), &mut |_| {});
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
