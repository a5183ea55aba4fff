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

use pgwire_repl::{Lsn, TimelineId, WalSegmentSize};

use super::compress::Method;
use super::names::SegmentName;
use super::zfile::{decode_reader, gzip_isize};
use super::{Archive, Listed};

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

struct Candidate {
    file: Listed,
    name: SegmentName,
}

/// What the size check of a complete file decided.
enum Check {
    Valid,
    /// Skipped, with this warning.
    Skip(String),
    /// Gone since the archive was listed: ignored.
    Vanished,
}

/// Whether a complete file passes its check; a failing one is reported through `warn`.
async fn passes(
    archive: &Archive,
    c: &Candidate,
    seg: WalSegmentSize,
    warn: &mut dyn FnMut(String),
) -> io::Result<bool> {
    Ok(match check_complete(archive, c, seg).await? {
        Check::Valid => true,
        Check::Skip(w) => {
            warn(w);
            false
        }
        Check::Vanished => false,
    })
}

/// The uncompressed size of a complete file: an uncompressed one's length, a `.gz` one's
/// ISIZE trailer (as pg_receivewal reads it), an `.lz4` or `.zst` one decompressed and
/// counted, stopping a little past `limit` (as pg_receivewal's lz4 count does: enough to
/// know the file is wrong).
async fn uncompressed_size(archive: &Archive, c: &Candidate, limit: u64) -> io::Result<u64> {
    match c.name.method {
        Method::None => Ok(c.file.size),
        Method::Gzip => {
            let (len, tail) = archive.read_tail(&c.file.name, 4).await?;
            gzip_isize(len, &tail)
        }
        m => decode_reader(archive.read(&c.file.name).await?, m, &mut io::sink(), limit),
    }
}

/// Checks that a complete file holds exactly one segment. Errors are those of the store
/// (the scan gives up); damage is a `Skip`.
async fn check_complete(
    archive: &Archive,
    c: &Candidate,
    seg: WalSegmentSize,
) -> io::Result<Check> {
    let want = u64::from(seg.bytes());
    let name = &c.file.name;
    Ok(match uncompressed_size(archive, c, want).await {
        Ok(n) if n == want => Check::Valid,
        Ok(n) if c.name.method == Method::None => Check::Skip(format!(
            "segment file \"{name}\" has incorrect size {n}, skipping"
        )),
        Ok(n) => Check::Skip(format!(
            "compressed segment file \"{name}\" has incorrect uncompressed size {n}, skipping"
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Check::Vanished,
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Check::Skip(format!(
            "compressed segment file \"{name}\" could not be decompressed: {e}, skipping"
        )),
        Err(e) => return Err(e),
    })
}

/// Scans `archive` for the newest usable segment file (see the module doc). `warn` receives
/// the text of each warning, such as `segment file "X" has incorrect size 123, skipping`.
/// Errors are the store's: the archive cannot be listed, or a file cannot be read.
pub async fn find_streaming_start(
    archive: &Archive,
    seg: WalSegmentSize,
    warn: &mut dyn FnMut(String),
) -> io::Result<Option<Found>> {
    let mut files: Vec<Candidate> = archive
        .list()
        .await?
        .into_iter()
        .filter_map(|file| {
            let name = SegmentName::parse(&file.name, seg)?;
            Some(Candidate { file, name })
        })
        .collect();
    // Listing order is arbitrary; warnings come out in name order.
    files.sort_unstable_by(|a, b| a.file.name.cmp(&b.file.name));

    // The cheap checks (a size, a 4-byte trailer) run on every complete file, as in
    // pg_receivewal, so each bad one is reported.
    let mut valid = Vec::with_capacity(files.len());
    for c in files {
        if !c.name.partial
            && matches!(c.name.method, Method::None | Method::Gzip)
            && !passes(archive, &c, seg, warn).await?
        {
            continue;
        }
        valid.push(c);
    }

    // Newest first: segment, then timeline, then complete before partial. Decompressing is
    // costly, so lz4 and zstd files are checked only in this order, until one wins.
    valid.sort_unstable_by_key(|c| Reverse((c.name.segno, c.name.timeline, !c.name.partial)));
    for c in valid {
        if !c.name.partial
            && matches!(c.name.method, Method::Lz4 | Method::Zstd)
            && !passes(archive, &c, seg, warn).await?
        {
            continue;
        }
        let start = if c.name.partial {
            seg.segment_start(c.name.segno)
        } else {
            seg.segment_start(c.name.segno + 1)
        };
        // Only a complete file of the very last segment of the LSN space gets here; there
        // is nothing after it to stream.
        let Some(start) = start else {
            warn(format!(
                "segment file \"{}\" is the last segment of the WAL address space, skipping",
                c.file.name
            ));
            continue;
        };
        return Ok(Some(Found {
            timeline: c.name.timeline,
            start,
            file: c.file.name,
            partial: c.name.partial,
        }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::compress::CompressSpec;
    use crate::archive::names::is_segment_file_name;
    use crate::archive::zfile::Encoder;
    use std::fs::File;

    const MB: u32 = 1 << 20;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn seg1() -> WalSegmentSize {
        WalSegmentSize::new(MB).unwrap()
    }

    /// A directory under the system temp dir, removed on drop.
    struct TempDir(tempfile::TempDir);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            TempDir(
                tempfile::Builder::new()
                    .prefix(&format!("pgwal-recv-scan-{tag}-"))
                    .tempdir()
                    .unwrap(),
            )
        }

        /// A file of `len` zero bytes (sparse: cheap at any size).
        fn plain(&self, name: &str, len: u64) {
            File::create(self.0.path().join(name))
                .unwrap()
                .set_len(len)
                .unwrap();
        }

        /// A compressed file whose content is `len` bytes, finished cleanly.
        fn compressed(&self, name: &str, method: Method, len: usize) {
            let file = File::create(self.0.path().join(name)).unwrap();
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
            let found = block_on(find_streaming_start(
                &Archive::dir(self.0.path()),
                seg1(),
                &mut |w| warnings.push(w),
            ))
            .unwrap();
            (found, warnings)
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
        std::fs::create_dir(d.0.path().join("archive_status")).unwrap();
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
            let path = d.0.path().join(&bad);
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
        std::fs::write(d.0.path().join(&bad), b"garbage").unwrap();
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
        let r = block_on(find_streaming_start(
            &Archive::dir(&d.0.path().join("nope")),
            seg1(),
            &mut |_| {},
        ));
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
