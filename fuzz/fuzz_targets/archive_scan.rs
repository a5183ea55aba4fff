//! Where pgwal-recv resumes: `pgwal_recv::archive::scan::find_streaming_start` over a real directory
//! built from the input, with 1 MiB segments.
//!
//! Input: up to 12 files of 4 bytes each —
//! 1. timeline (bits 0–1: 1, 2, 3 or 0xFFFFFFFF) and name form (bits 2–4: 0–5 the server's
//!    name, 6 in lowercase, 7 with `.tmp` added);
//! 2. segment number (mod 8: 0, 1, 2, 3, 4095, 4096, and the last two of the LSN space);
//! 3. suffix (mod 8: none, `.gz`, `.lz4`, `.zst`, then each with `.partial`);
//! 4. size (mod 6: 0, 3, 20, one segment less one, one segment, one more) and, with bit 7,
//!    valid content: a `.gz` trailer saying one segment, or a whole segment in lz4 or zstd.
//!
//! Checks against a model of the rule (see `scan`'s module doc): the winner's timeline, start
//! and partiality; its file is one of the best candidates; every damaged plain or gzip file is
//! reported, and lz4/zstd files and the last segment are reported exactly when they rank
//! above the winner; no other warning.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pgwal_recv::archive::compress::{CompressSpec, Method};
use pgwal_recv::archive::scan::find_streaming_start;
use pgwal_recv::archive::zfile::Encoder;
use pgwal_recv::archive::Archive;
use pgwire_repl::{Lsn, TimelineId, WalSegmentSize};
use pgwire_repl_fuzz::segment_name;

const SEG: u32 = 1 << 20;
const SUFFIXES: [&str; 8] = [
    "",
    ".gz",
    ".lz4",
    ".zst",
    ".partial",
    ".gz.partial",
    ".lz4.partial",
    ".zst.partial",
];

struct Fixture {
    dir: PathBuf,
    lz4: Vec<u8>,
    zstd: Vec<u8>,
}

/// This process's directory, and one segment of zeros in lz4 and in zstd.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // Memory-backed when there is one: the target is bound by file creation.
        let shm = PathBuf::from("/dev/shm");
        let base = if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("pgwal-recv-fuzz-scan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let compress = |method| {
            let path = dir.join("compressed");
            let file = File::create(&path).expect("scratch file");
            let spec = CompressSpec {
                method,
                level: Some(1),
            };
            let mut enc = Encoder::new(spec, file).expect("encoder");
            enc.write_all(&vec![0; SEG as usize]).expect("compress");
            enc.finish().expect("finish");
            let bytes = std::fs::read(&path).expect("read back");
            std::fs::remove_file(&path).expect("remove");
            bytes
        };
        Fixture {
            lz4: compress(Method::Lz4),
            zstd: compress(Method::Zstd),
            dir,
        }
    })
}

struct Spec {
    size: u64,
    good: bool,
}

fn name_of(e: &[u8], seg: WalSegmentSize) -> String {
    let tli = [1, 2, 3, u32::MAX][usize::from(e[0] & 3)];
    let last = seg.segment_of(Lsn(u64::MAX));
    let segno = [0, 1, 2, 3, 4095, 4096, last - 1, last][usize::from(e[1] % 8)];
    let name = seg.file_name(TimelineId(tli), segno) + SUFFIXES[usize::from(e[2] % 8)];
    match (e[0] >> 2) & 7 {
        6 => name.to_lowercase(),
        7 => name + ".tmp",
        _ => name,
    }
}

fn write(f: &Fixture, name: &str, spec: &Spec) {
    let path = f.dir.join(name);
    let content = match segment_name(name, SEG).map(|n| (n.2, n.3)) {
        Some((".lz4", false)) if spec.good => Some(&f.lz4),
        Some((".zst", false)) if spec.good => Some(&f.zstd),
        _ => None,
    };
    if let Some(bytes) = content {
        std::fs::write(&path, bytes).expect("write");
        return;
    }
    // Zeros, sparse; a good .gz gets a trailer saying one segment.
    let file = File::create(&path).expect("create");
    file.set_len(spec.size).expect("set_len");
    if spec.good && spec.size >= 18 && name.ends_with(".gz") {
        use std::os::unix::fs::FileExt;
        file.write_all_at(&SEG.to_le_bytes(), spec.size - 4)
            .expect("trailer");
    }
}

/// The file name a warning is about: the text between its first two quotes.
fn warned_file(w: &str) -> &str {
    w.split('"')
        .nth(1)
        .unwrap_or_else(|| panic!("warning names no file: {w}"))
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let seg = WalSegmentSize::new(SEG).expect("1 MiB segments");
    for entry in std::fs::read_dir(&f.dir).expect("list") {
        std::fs::remove_file(entry.expect("entry").path()).expect("clean");
    }

    let mut files: BTreeMap<String, Spec> = BTreeMap::new();
    for e in data.chunks_exact(4).take(12) {
        let sizes = [
            0,
            3,
            20,
            u64::from(SEG) - 1,
            u64::from(SEG),
            u64::from(SEG) + 1,
        ];
        let spec = Spec {
            size: sizes[usize::from(e[3] % 6)],
            good: e[3] & 0x80 != 0,
        };
        let name = name_of(e, seg);
        write(f, &name, &spec);
        files.insert(name, spec);
    }

    let mut warnings = Vec::new();
    let archive = Archive::dir(&f.dir);
    let found = pgwire_repl_fuzz::ready(find_streaming_start(&archive, seg, &mut |w| {
        warnings.push(w)
    }))
    .expect("the scan of a readable directory succeeds");

    // The model. Candidates, best first: (segment, timeline, complete).
    struct Candidate<'a> {
        name: &'a str,
        key: (u64, u32, bool),
        ext: &'static str,
        valid: bool,
    }
    let last = seg.segment_of(Lsn(u64::MAX));
    let mut cands: Vec<Candidate<'_>> = files
        .iter()
        .filter_map(|(name, spec)| {
            let (tli, segno, ext, partial) = segment_name(name, SEG)?;
            let valid = partial
                || match ext {
                    "" => spec.size == u64::from(SEG),
                    ".gz" => spec.good && spec.size >= 18,
                    _ => spec.good,
                };
            Some(Candidate {
                name,
                key: (segno, tli, !partial),
                ext,
                valid,
            })
        })
        .collect();
    cands.sort_by_key(|c| std::cmp::Reverse(c.key));
    // The winner's key: the best valid candidate that is not a complete last segment.
    let best = cands
        .iter()
        .find(|c| c.valid && !(c.key.2 && c.key.0 == last))
        .map(|c| c.key);

    match (&found, best) {
        (None, None) => {}
        (Some(got), Some((segno, tli, complete))) => {
            assert_eq!(got.timeline, TimelineId(tli));
            assert_eq!(got.partial, !complete);
            let start_seg = if complete { segno + 1 } else { segno };
            assert_eq!(Some(got.start), seg.segment_start(start_seg));
            assert!(
                cands
                    .iter()
                    .any(|c| c.name == got.file && c.valid && c.key == (segno, tli, complete)),
                "{} is not among the best candidates",
                got.file
            );
        }
        _ => panic!(
            "scan found {found:?}, the model {best:?}; files {:?}",
            files.keys()
        ),
    }

    let warned: Vec<&str> = warnings.iter().map(|w| warned_file(w)).collect();
    let unique: BTreeSet<&str> = warned.iter().copied().collect();
    assert_eq!(
        unique.len(),
        warned.len(),
        "a file reported twice: {warnings:?}"
    );
    for c in &cands {
        let complete = c.key.2;
        let above = best.is_none_or(|b| c.key > b);
        let must = complete
            && if matches!(c.ext, "" | ".gz") && !c.valid {
                true
            } else {
                above && (!c.valid || c.key.0 == last)
            };
        // lz4/zstd files tied with the winner may be checked before it or not.
        let may = must || (complete && best == Some(c.key));
        let is = unique.contains(c.name);
        assert!(!must || is, "{} not reported: {warnings:?}", c.name);
        assert!(may || !is, "{} reported: {warnings:?}", c.name);
    }
    for w in &unique {
        assert!(
            cands.iter().any(|c| c.name == *w),
            "warning about a non-candidate {w}"
        );
    }
});
