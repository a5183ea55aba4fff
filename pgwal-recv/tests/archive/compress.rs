//! `-Z gzip|lz4|zstd`: complete files carry the suffix, are valid streams for the system
//! tools and decompress to the server's pg_wal bytes; a cleanly stopped compressed `.partial`
//! is a valid stream too; and an archive changing method mid-way resumes at a `.partial`.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use pgwire_repl::{Lsn, TimelineId};
use testenv::Cluster;

use crate::common::*;

#[derive(Clone, Copy)]
struct Codec {
    /// The `-Z` method, also the name of the system tool.
    method: &'static str,
    suffix: &'static str,
}

const GZIP: Codec = Codec {
    method: "gzip",
    suffix: ".gz",
};
const LZ4: Codec = Codec {
    method: "lz4",
    suffix: ".lz4",
};
const ZSTD: Codec = Codec {
    method: "zstd",
    suffix: ".zst",
};

impl Codec {
    /// Whether the system tool is installed. Without it the test fails (`.ci/run` installs
    /// all three), or leaves out the stream checks where `PGWIRE_REPL_ALLOW_SKIP=1`.
    fn tool_available(self) -> bool {
        let ok = Command::new(self.method)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            testenv::skip(format_args!(
                "the `{}` tool is not installed for the {} stream checks",
                self.method, self.method
            ));
        }
        ok
    }

    /// Runs the tool with `args` on the file as stdin (so that the name does not matter).
    fn tool(self, args: &[&str], file: &Path) -> Vec<u8> {
        let out = Command::new(self.method)
            .args(args)
            .stdin(Stdio::from(File::open(file).unwrap()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "`{} {}` on {}: {}",
            self.method,
            args.join(" "),
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Asserts `file` is a valid stream (`<tool> -t`) and returns what it decompresses to.
    fn check_and_decompress(self, file: &Path) -> Vec<u8> {
        self.tool(&["-t"], file);
        self.tool(&["-dc"], file)
    }
}

/// The files in `dir`, lock file and other dot files aside.
fn files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect()
}

fn seg_name(segno: u64) -> String {
    seg1mb().file_name(TimelineId(1), segno)
}

fn seg_start(segno: u64) -> Lsn {
    seg1mb().segment_start(segno).unwrap()
}

/// Archives with `-Z method -E endpos` (plus `extra`) from slot `slot`; returns stderr.
fn archive(
    pg: &Cluster,
    dir: &TempDir,
    slot: &str,
    z: &str,
    endpos: Lsn,
    extra: &[&str],
) -> String {
    let out = run(
        bin()
            .args(["-D", &dir.arg(), "-S", slot, "-n", "--no-sync", "-Z", z])
            .args(["-E", &endpos.to_string()])
            .args(extra)
            .args(["-d", &conninfo(pg)]),
        Duration::from_secs(60),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "-Z {z}; stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Asserts complete segment `segno` (compressed with `codec`, or plain) equals the server's.
fn assert_complete(pg: &Cluster, dir: &Path, segno: u64, codec: Option<Codec>, tools: bool) {
    let name = seg_name(segno);
    let theirs = pg.wal_file(&name).unwrap();
    match codec {
        None => {
            let ours =
                std::fs::read(dir.join(&name)).unwrap_or_else(|e| panic!("{name} missing: {e}"));
            assert!(ours == theirs, "{name} differs from the server's");
        }
        Some(c) => {
            let path = dir.join(format!("{name}{}", c.suffix));
            assert!(path.exists(), "{} missing", path.display());
            if tools {
                let ours = c.check_and_decompress(&path);
                assert_eq!(
                    ours.len(),
                    MB as usize,
                    "{} decompressed size",
                    path.display()
                );
                assert!(
                    ours == theirs,
                    "{} differs from the server's",
                    path.display()
                );
            }
        }
    }
}

/// Asserts the compressed `.partial` of `segno` is a valid stream of at least `min` bytes
/// (less than a segment) that is a prefix of the server's segment.
fn assert_partial(pg: &Cluster, dir: &Path, segno: u64, c: Codec, min: u32, tools: bool) {
    let name = seg_name(segno);
    let path = dir.join(format!("{name}{}.partial", c.suffix));
    assert!(path.exists(), "{} missing", path.display());
    if !tools {
        return;
    }
    let ours = c.check_and_decompress(&path);
    assert!(
        ours.len() >= min as usize && ours.len() < MB as usize,
        "{} holds {} bytes",
        path.display(),
        ours.len()
    );
    let theirs = pg.wal_file(&name).unwrap();
    assert!(
        ours[..] == theirs[..ours.len()],
        "{} is not a prefix of the server's segment",
        path.display()
    );
}

/// A cluster with ~`mb` MB of WAL held by `slots` (made before the WAL, at one position) and
/// by a spare slot, so that pg_wal keeps every segment for comparison. Returns the slots'
/// first segment.
fn cluster_with_wal(slots: &[&str], mb: u64) -> (Cluster, u64) {
    let pg = cluster(&[]);
    pg.create_physical_slot("hold").unwrap();
    for s in slots {
        pg.create_physical_slot(s).unwrap();
    }
    let start = lsn(&pg, "SELECT min(restart_lsn) FROM pg_replication_slots");
    pg.generate_wal(mb << 20).unwrap();
    (pg, seg1mb().segment_of(start))
}

#[test]
fn each_method_writes_valid_streams_equal_to_pg_wal() {
    if !starts_at_the_slot() {
        return;
    }
    let codecs = [GZIP, LZ4, ZSTD];
    let (pg, base) = cluster_with_wal(&["gzip", "lz4", "zstd"], 6);
    // Segments base..s complete; s stops half-way.
    let s = base + 5;
    let endpos = Lsn(seg_start(s).0 + u64::from(MB / 2));
    let flush = lsn(&pg, "SELECT pg_current_wal_flush_lsn()");
    assert!(
        flush.0 > endpos.0 + u64::from(MB / 4),
        "not enough WAL: flush {flush}, endpos {endpos}"
    );
    for c in codecs {
        let dir = TempDir::new(c.method);
        archive(&pg, &dir, c.method, c.method, endpos, &[]);
        let mut want: BTreeSet<String> = (base..s)
            .map(|n| format!("{}{}", seg_name(n), c.suffix))
            .collect();
        want.insert(format!("{}{}.partial", seg_name(s), c.suffix));
        assert_eq!(files(dir.path()), want, "-Z {}", c.method);
        let tools = c.tool_available();
        for n in base..s {
            assert_complete(&pg, dir.path(), n, Some(c), tools);
        }
        assert_partial(&pg, dir.path(), s, c, MB / 2, tools);
    }
}

#[test]
fn method_changes_resume_at_the_partial_segment() {
    if !starts_at_the_slot() {
        return;
    }
    let (pg, base) = cluster_with_wal(&["chain"], 8);
    let s = base + 2;
    let flush = lsn(&pg, "SELECT pg_current_wal_flush_lsn()");
    assert!(
        flush.0 > seg_start(s + 4).0 + u64::from(MB / 4),
        "not enough WAL: flush {flush}"
    );
    let tools = [GZIP, LZ4].map(Codec::tool_available);
    let dir = TempDir::new("chain");
    let d = dir.path();

    // gzip up to the middle of s.
    archive(
        &pg,
        &dir,
        "chain",
        "gzip",
        Lsn(seg_start(s).0 + u64::from(MB / 2)),
        &[],
    );
    let mut want: BTreeSet<String> = (base..s).map(|n| format!("{}.gz", seg_name(n))).collect();
    want.insert(format!("{}.gz.partial", seg_name(s)));
    assert_eq!(files(d), want, "after -Z gzip");
    assert_partial(&pg, d, s, GZIP, MB / 2, tools[0]);

    // lz4 up to the middle of s+2: restarts s (its .gz.partial is not complete).
    let err = archive(
        &pg,
        &dir,
        "chain",
        "lz4",
        Lsn(seg_start(s + 2).0 + u64::from(MB / 2)),
        &["-v"],
    );
    assert!(
        err.contains(&format!(
            "starting log streaming at {} (timeline 1)",
            seg_start(s)
        )),
        "lz4 run did not resume at the start of the partial segment; stderr: {err}"
    );
    for n in [s, s + 1] {
        want.insert(format!("{}.lz4", seg_name(n)));
    }
    want.insert(format!("{}.lz4.partial", seg_name(s + 2)));
    assert_eq!(files(d), want, "after -Z lz4");
    assert_partial(&pg, d, s + 2, LZ4, MB / 2, tools[1]);

    // Uncompressed to the end of s+3: restarts s+2.
    let err = archive(&pg, &dir, "chain", "none", seg_start(s + 4), &["-v"]);
    assert!(
        err.contains(&format!(
            "starting log streaming at {} (timeline 1)",
            seg_start(s + 2)
        )),
        "uncompressed run did not resume at the start of the partial segment; stderr: {err}"
    );
    let now = files(d);
    for n in [s + 2, s + 3] {
        assert!(
            now.contains(&seg_name(n)),
            "{} missing: {now:?}",
            seg_name(n)
        );
    }
    // Nothing else but possibly the next segment's start.
    let extra: Vec<&String> = now
        .difference(&want)
        .filter(|n| **n != seg_name(s + 2) && **n != seg_name(s + 3))
        .collect();
    assert!(
        extra.is_empty() || extra == [&format!("{}.partial", seg_name(s + 4))],
        "unexpected files: {extra:?}"
    );

    // The whole chain, segment by segment.
    for n in base..s {
        assert_complete(&pg, d, n, Some(GZIP), tools[0]);
    }
    for n in [s, s + 1] {
        assert_complete(&pg, d, n, Some(LZ4), tools[1]);
    }
    for n in [s + 2, s + 3] {
        assert_complete(&pg, d, n, None, true);
    }
}
