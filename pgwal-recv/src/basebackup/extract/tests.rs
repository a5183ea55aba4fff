use super::*;
use std::os::unix::fs::MetadataExt;

use crate::basebackup::tarstream::MAX_MEMBER_SIZE;

/// Chunk sizes that cut headers, data and padding at every kind of place.
const SPLITS: [usize; 6] = [1, 7, 511, 512, 513, usize::MAX];

fn pseudo_random(len: usize, mut x: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A ustar header as PostgreSQL's server writes one.
fn header(name: &str, kind: EntryType, size: u64, mode: u32) -> Header {
    let mut h = Header::new_ustar();
    h.set_path(name).unwrap();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    h
}

/// A header with `name` copied in raw (tar::Header::set_path refuses `..` and `/x`).
fn raw_header(name: &[u8], kind: EntryType, size: u64) -> Header {
    let mut h = header("placeholder", kind, size, 0o600);
    h.as_old_mut().name = [0; 100];
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_cksum();
    h
}

enum Member {
    File(&'static str, Vec<u8>, u32),
    Dir(&'static str, u32),
    Link(&'static str, &'static str),
}

fn archive(members: &[Member]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for m in members {
        match m {
            Member::File(name, data, mode) => {
                let h = header(name, EntryType::Regular, data.len() as u64, *mode);
                b.append(&h, data.as_slice()).unwrap();
            }
            Member::Dir(name, mode) => {
                b.append(&header(name, EntryType::Directory, 0, *mode), &[][..])
                    .unwrap();
            }
            Member::Link(name, target) => {
                let mut h = header(name, EntryType::Symlink, 0, 0o777);
                h.set_link_name(target).unwrap();
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// A small data directory: files at every size around a block, nested directories, and
/// tablespace links.
fn sample() -> Vec<Member> {
    vec![
        Member::File("PG_VERSION", b"16\n".to_vec(), 0o600),
        Member::Dir("base", 0o700),
        Member::Dir("base/1", 0o750),
        Member::File("base/1/empty", Vec::new(), 0o600),
        Member::File("base/1/511", pseudo_random(511, 1), 0o640),
        Member::File("base/1/512", pseudo_random(512, 2), 0o600),
        Member::File("base/1/513", pseudo_random(513, 3), 0o600),
        Member::File("base/1/16384", pseudo_random(200_003, 4), 0o600),
        Member::Dir("pg_wal", 0o700),
        Member::Dir("pg_wal/archive_status", 0o700),
        Member::Dir("pg_tblspc", 0o700),
        Member::Link("pg_tblspc/16385", "/old/ts1"),
        Member::Link("pg_tblspc/16386", "/elsewhere/ts2"),
        Member::File("global/pg_control", pseudo_random(8192, 5), 0o600),
    ]
}

fn options() -> ExtractOptions {
    ExtractOptions {
        tablespace_map: vec![(PathBuf::from("/old/ts1"), PathBuf::from("/new/ts1"))],
    }
}

fn extract(bytes: &[u8], split: usize, root: &Path) -> Result<ExtractStats, ExtractError> {
    let mut x = Extractor::new(root.to_owned(), options());
    for chunk in bytes.chunks(split.min(bytes.len().max(1))) {
        x.feed(chunk)?;
    }
    x.finish()
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn every_split_extracts_the_same_tree() {
    let members = sample();
    let mut bytes = archive(&members);
    // global/ has no directory member: the server always sends one, add it in front.
    let global = archive(&[Member::Dir("global", 0o700)]);
    bytes.splice(0..0, global[..512].iter().copied());
    for split in SPLITS {
        let dir = tempfile::tempdir().unwrap();
        let stats = extract(&bytes, split, dir.path()).unwrap_or_else(|e| panic!("{split}: {e}"));
        let mut expected = ExtractStats {
            directories: 1,
            ..ExtractStats::default()
        };
        for m in &members {
            match m {
                Member::File(name, data, m) => {
                    let path = dir.path().join(name);
                    assert_eq!(&fs::read(&path).unwrap(), data, "{split}: {name}");
                    assert_eq!(mode(&path), *m, "{split}: {name}");
                    expected.files += 1;
                    expected.bytes += data.len() as u64;
                }
                Member::Dir(name, m) => {
                    assert_eq!(mode(&dir.path().join(name)), *m, "{split}: {name}");
                    expected.directories += 1;
                }
                Member::Link(..) => expected.symlinks += 1,
            }
        }
        let tblspc = dir.path().join("pg_tblspc");
        assert_eq!(
            fs::read_link(tblspc.join("16385")).unwrap(),
            Path::new("/new/ts1"),
            "mapped"
        );
        assert_eq!(
            fs::read_link(tblspc.join("16386")).unwrap(),
            Path::new("/elsewhere/ts2"),
            "not mapped"
        );
        assert_eq!(stats, expected, "{split}");
    }
}

#[test]
fn leading_dot_slash_and_trailing_zeros_are_accepted() {
    let mut bytes = archive(&[
        Member::Dir("./base", 0o700),
        Member::File("./base/f", b"x".to_vec(), 0o600),
    ]);
    bytes.extend_from_slice(&[0; 10 * 512 + 3]);
    let dir = tempfile::tempdir().unwrap();
    let stats = extract(&bytes, 100, dir.path()).unwrap();
    assert_eq!(fs::read(dir.path().join("base/f")).unwrap(), b"x");
    assert_eq!((stats.files, stats.directories), (1, 1));
}

#[test]
fn an_existing_directory_or_directory_link_is_used() {
    // pg_basebackup --waldir: pg_wal is a link made before the archive arrives.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let waldir = dir.path().join("wal");
    fs::create_dir(&root).unwrap();
    fs::create_dir(&waldir).unwrap();
    std::os::unix::fs::symlink(&waldir, root.join("pg_wal")).unwrap();
    let bytes = archive(&[
        Member::Dir("pg_wal", 0o700),
        Member::File("pg_wal/000000010000000000000001", vec![7; 1000], 0o600),
    ]);
    extract(&bytes, 4096, &root).unwrap();
    assert_eq!(
        fs::read(waldir.join("000000010000000000000001")).unwrap(),
        vec![7; 1000]
    );
    // A file where a directory should be is not fine.
    fs::write(root.join("base"), b"").unwrap();
    let err = extract(&archive(&[Member::Dir("base", 0o700)]), 512, &root).unwrap_err();
    assert!(
        err.to_string().starts_with("could not create directory \""),
        "{err}"
    );
}

/// Extracts `bytes` in every split, each into a fresh directory, and returns the error,
/// which must be the same whatever the chunks.
fn fails(bytes: &[u8]) -> ExtractError {
    let whole = fails_whole(bytes);
    let mut last = None;
    for split in SPLITS {
        let dir = tempfile::tempdir().unwrap();
        let err = extract(bytes, split, dir.path()).expect_err("extraction succeeded");
        assert_eq!(err.to_string(), whole, "split {split}");
        last = Some(err);
    }
    last.unwrap()
}

fn fails_whole(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    extract(bytes, usize::MAX, dir.path())
        .unwrap_err()
        .to_string()
}

fn with_end(headers: &[Header]) -> Vec<u8> {
    let mut v: Vec<u8> = headers.iter().flat_map(|h| *h.as_bytes()).collect();
    v.extend_from_slice(&[0; 1024]);
    v
}

#[test]
fn unsafe_paths_are_refused() {
    for name in [&b"../x"[..], b"/abs", b"a/../../x", b"./../x"] {
        let err = fails(&with_end(&[raw_header(name, EntryType::Regular, 0)]));
        assert!(matches!(err, ExtractError::UnsafePath { .. }), "{err}");
        let shown = String::from_utf8_lossy(name);
        assert_eq!(
            err.to_string(),
            format!("tar member has unsafe path name: \"{shown}\"")
        );
    }
    let mut link = raw_header(b"l", EntryType::Symlink, 0);
    link.set_link_name_literal("../../etc").unwrap();
    link.set_cksum();
    let err = fails(&with_end(&[link]));
    assert!(
        matches!(err, ExtractError::UnsafeLinkTarget { .. }),
        "{err}"
    );
}

#[test]
fn nothing_is_written_through_a_link_the_archive_made() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    let root = dir.path().join("root");
    fs::create_dir(&outside).unwrap();
    fs::create_dir(&root).unwrap();
    let mut link = header("escape", EntryType::Symlink, 0, 0o777);
    link.set_link_name(&outside).unwrap();
    link.set_cksum();
    let bytes: Vec<u8> = link.as_bytes().to_vec();
    for name in ["escape/passwd", "escape"] {
        let mut attack = bytes.clone();
        attack.extend_from_slice(header(name, EntryType::Regular, 1, 0o600).as_bytes());
        attack.extend_from_slice(&[b'x'; 512]);
        attack.extend_from_slice(&[0; 1024]);
        let sub = root.join(name.replace('/', "_"));
        fs::create_dir(&sub).unwrap();
        let err = extract(&attack, 512, &sub).unwrap_err();
        assert!(matches!(err, ExtractError::ThroughSymlink { .. }), "{err}");
    }
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn other_member_types_are_refused_by_name() {
    for (kind, c) in [
        (EntryType::Link, '1'),
        (EntryType::XHeader, 'x'),
        (EntryType::XGlobalHeader, 'g'),
        (EntryType::GNULongName, 'L'),
        (EntryType::GNULongLink, 'K'),
        (EntryType::Char, '3'),
        (EntryType::Fifo, '6'),
    ] {
        let err = fails(&with_end(&[header("base/odd", kind, 0, 0o600)]));
        assert_eq!(
            err.to_string(),
            format!("tar member \"base/odd\" has unsupported type '{c}'")
        );
    }
}

#[test]
fn truncated_archives_are_errors() {
    let bytes = archive(&[
        Member::File("a", pseudo_random(1000, 9), 0o600),
        Member::File("b", b"b".to_vec(), 0o600),
    ]);
    // a: header at 0, data 512..1512, padding to 1536; b: header at 1536, data at 2048;
    // the marker at 2560..3584. Cut in a's header, data and padding, b's header, the marker.
    assert_eq!(bytes.len(), 3584);
    for (cut, expected) in [
        (100, "tar archive ends inside a member header"),
        (
            512 + 700,
            "tar archive ends inside member \"a\" (300 bytes missing)",
        ),
        (
            512 + 1010,
            "tar archive ends without its end-of-archive marker",
        ),
        (1536 + 1, "tar archive ends inside a member header"),
        (2560, "tar archive ends without its end-of-archive marker"),
        (3072, "tar archive ends without its end-of-archive marker"),
        (3072 + 488, "tar archive ends inside a member header"),
        (0, "tar archive ends without its end-of-archive marker"),
    ] {
        assert_eq!(fails_whole(&bytes[..cut]), expected, "cut at {cut}");
    }
}

#[test]
fn data_after_the_end_marker_is_an_error() {
    let mut bytes = archive(&[Member::File("a", b"a".to_vec(), 0o600)]);
    bytes.extend_from_slice(&[0; 700]);
    bytes.push(1);
    let err = fails(&bytes);
    assert!(
        matches!(err, ExtractError::Tar(TarError::DataAfterEnd)),
        "{err}"
    );
}

#[test]
fn a_lone_zero_block_is_an_error() {
    let mut bytes = vec![0; 512];
    bytes.extend_from_slice(&archive(&[Member::File("a", b"a".to_vec(), 0o600)]));
    let err = fails(&bytes);
    assert!(
        matches!(err, ExtractError::Tar(TarError::LoneZeroBlock { .. })),
        "{err}"
    );
}

#[test]
fn bad_headers_are_errors() {
    // A checksum off by one.
    let mut h = header("a", EntryType::Regular, 0, 0o600);
    h.as_mut_bytes()[0] = b'b';
    let err = fails(&with_end(&[h]));
    assert!(
        matches!(err, ExtractError::Tar(TarError::Checksum { .. })),
        "{err}"
    );
    // Base-256 sizes: past 64 bits, and 2^50 (within 64 bits, past the limit).
    let mut huge = header("a", EntryType::Regular, 0, 0o600);
    huge.as_mut_bytes()[124..136].copy_from_slice(&[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    huge.set_cksum();
    let err = fails(&with_end(&[huge]));
    assert!(
        matches!(err, ExtractError::Tar(TarError::TooLarge { .. })),
        "{err}"
    );
    let big = header("a", EntryType::Regular, 1 << 50, 0o600);
    assert_eq!(
        fails(&with_end(&[big])).to_string(),
        format!(
            "tar member \"a\" has a size of {} bytes, over the limit of {MAX_MEMBER_SIZE} bytes",
            1u64 << 50
        )
    );
    // Garbage in the size field.
    let mut garbage = header("a", EntryType::Regular, 0, 0o600);
    garbage.as_mut_bytes()[124..136].copy_from_slice(b"12x45678901\0");
    garbage.set_cksum();
    let err = fails(&with_end(&[garbage]));
    assert!(
        matches!(err, ExtractError::Tar(TarError::BadField { .. })),
        "{err}"
    );
    // A directory with data.
    let err = fails(&with_end(&[header("d", EntryType::Directory, 1, 0o700)]));
    assert!(matches!(err, ExtractError::DataOnNonFile { .. }), "{err}");
}

#[test]
fn feeding_after_an_error_fails() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = Extractor::new(dir.path().to_owned(), ExtractOptions::default());
    let bad = raw_header(b"/abs", EntryType::Regular, 0);
    assert!(x.feed(bad.as_bytes()).is_err());
    let err = x.feed(&[0; 1024]).unwrap_err();
    assert!(
        matches!(err, ExtractError::Tar(TarError::AfterError)),
        "{err}"
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let valid = archive(&sample());
    for seed in 1..200u64 {
        let sub = dir.path().join(seed.to_string());
        fs::create_dir(&sub).unwrap();
        // Noise, and the valid archive with a few bytes changed.
        let input = if seed % 2 == 0 {
            pseudo_random((seed * 97 % 3000) as usize, seed)
        } else {
            let mut v = valid.clone();
            for (i, b) in pseudo_random(8, seed).into_iter().enumerate() {
                let at = (seed as usize * 7919 + i * 104_729) % v.len();
                v[at] = b;
            }
            v
        };
        let _ = extract(&input, 1 + seed as usize % 600, &sub);
    }
}

#[test]
fn sync_tree_follows_only_pg_wal_and_tablespace_links() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let wal = dir.path().join("wal");
    let ts = dir.path().join("ts");
    for d in [&root, &wal, &ts] {
        fs::create_dir_all(d.join("sub")).unwrap();
        fs::write(d.join("sub/f"), b"x").unwrap();
    }
    std::os::unix::fs::symlink(&wal, root.join("pg_wal")).unwrap();
    fs::create_dir(root.join("pg_tblspc")).unwrap();
    std::os::unix::fs::symlink(&ts, root.join("pg_tblspc/16385")).unwrap();
    // Followed, these would fail: a dangling link and a link to a file.
    std::os::unix::fs::symlink("/nonexistent/x", root.join("dangling")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/y", root.join("pg_tblspc/16386")).unwrap();
    sync_tree(&root).unwrap();

    let err = sync_tree(&dir.path().join("missing")).unwrap_err();
    assert!(
        err.to_string().starts_with("could not fsync directory \"")
            && err.to_string().contains("missing"),
        "{err}"
    );
}

#[test]
fn safe_relative_paths() {
    let ok = |s: &[u8]| safe_relative(s).map(|p| p.to_string_lossy().into_owned());
    assert_eq!(ok(b"./base/1/2").as_deref(), Some("base/1/2"));
    assert_eq!(ok(b"base//1/./2/").as_deref(), Some("base/1/2"));
    assert_eq!(ok(b"./").as_deref(), Some(""));
    assert_eq!(ok(b"a/.."), None);
    assert_eq!(ok(b"//x"), None);
    assert_eq!(ok(b"a\0b"), None);
}
