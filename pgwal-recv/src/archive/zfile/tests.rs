use super::*;
use std::process::Command;

const METHODS: [Method; 3] = [Method::Gzip, Method::Lz4, Method::Zstd];

/// WAL-like data: runs of pseudo-random bytes, zeros and repeats, so every compressor
/// does real work and none of it is trivial.
fn sample(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        let run = (next() % 4000) as usize + 1;
        match next() % 3 {
            0 => v.extend((0..run).map(|_| next() as u8)),
            1 => v.resize(v.len() + run, 0),
            _ => {
                let start = v.len().saturating_sub(run);
                let copy: Vec<u8> = v[start..].to_vec();
                v.extend(copy);
            }
        }
    }
    v.truncate(len);
    v
}

fn spec(method: Method) -> CompressSpec {
    CompressSpec {
        method,
        level: None,
    }
}

/// Writes `data` in uneven chunks, flushing now and then, and finishes the stream.
fn write_file(path: &Path, spec: CompressSpec, data: &[u8]) {
    let mut enc = Encoder::new(spec, File::create(path).unwrap()).unwrap();
    let mut off = 0;
    for i in 0usize.. {
        if off == data.len() {
            break;
        }
        let n = (1 + i * 7919 % 70_001).min(data.len() - off);
        enc.write_all(&data[off..off + n]).unwrap();
        off += n;
        // Now and then, as the receive loop does on a keepalive.
        if i % 13 == 12 {
            enc.flush().unwrap();
        }
    }
    assert_eq!(enc.uncompressed_len(), data.len() as u64);
    enc.finish().unwrap().sync_all().unwrap();
}

#[test]
fn round_trip_every_method() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(3 << 20);
    for m in METHODS {
        let path = dir.path().join(format!("seg{}", m.suffix()));
        write_file(&path, spec(m), &data);
        let back = decompress_file(&path, m).unwrap();
        assert!(back == data, "{m:?} round trip differs");
        assert_eq!(uncompressed_size(&path, m).unwrap(), data.len() as u64);
        let on_disk = std::fs::metadata(&path).unwrap().len();
        assert!(on_disk < data.len() as u64, "{m:?} did not compress");
    }
}

#[test]
fn levels_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(300_000);
    for (m, level) in [
        (Method::Gzip, 1),
        (Method::Gzip, 9),
        (Method::Lz4, 1),
        (Method::Lz4, 12),
        (Method::Zstd, 1),
        (Method::Zstd, 19),
    ] {
        let path = dir.path().join(format!("l{level}{}", m.suffix()));
        let s = CompressSpec {
            method: m,
            level: Some(level),
        };
        write_file(&path, s, &data);
        assert!(decompress_file(&path, m).unwrap() == data, "{m:?}:{level}");
    }
}

#[test]
fn refuses_none_and_bad_levels() {
    let dir = tempfile::tempdir().unwrap();
    let f = || File::create(dir.path().join("x")).unwrap();
    assert!(Encoder::new(spec(Method::None), f()).is_err());
    for (m, level) in [(Method::Gzip, 10), (Method::Lz4, 13), (Method::Zstd, 23)] {
        let s = CompressSpec {
            method: m,
            level: Some(level),
        };
        let e = Encoder::new(s, f()).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}

/// Reads a stream until its end or its first error: what a reader of a file still being
/// written gets.
fn readable_prefix(r: &mut dyn Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn flush_makes_everything_so_far_readable() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(1 << 20);
    for m in METHODS {
        let path = dir.path().join(format!("f{}", m.suffix()));
        let mut enc = Encoder::new(spec(m), File::create(&path).unwrap()).unwrap();
        for cut in [1usize, 100_000, 654_321, 1 << 20] {
            let done = enc.uncompressed_len() as usize;
            enc.write_all(&data[done..cut]).unwrap();
            enc.flush().unwrap();
            let bytes = std::fs::read(&path).unwrap();
            let got = match m {
                Method::Gzip => readable_prefix(&mut flate2::read::GzDecoder::new(&bytes[..])),
                Method::Lz4 => readable_prefix(&mut lz4::Decoder::new(&bytes[..]).unwrap()),
                _ => readable_prefix(&mut zstd::stream::read::Decoder::new(&bytes[..]).unwrap()),
            };
            assert!(
                got == data[..cut],
                "{m:?} after flush at {cut}: {} bytes",
                got.len()
            );
        }
        // Unfinished: no trailer yet, so the file is not a complete stream.
        assert!(
            decompress_file(&path, m).is_err(),
            "{m:?} unfinished accepted"
        );
        enc.finish().unwrap();
        assert!(decompress_file(&path, m).unwrap() == data);
    }
}

#[test]
fn frame_headers_match_postgresql_preferences() {
    let dir = tempfile::tempdir().unwrap();
    let lz = dir.path().join("h.lz4");
    write_file(&lz, spec(Method::Lz4), b"abc");
    let b = std::fs::read(&lz).unwrap();
    // Magic; FLG 0x40: version 01, linked blocks, no block checksum, no content size,
    // no content checksum; BD 0x40: 64 KiB blocks. LZ4F's defaults, as pg_receivewal has.
    assert_eq!(b[..6], [0x04, 0x22, 0x4D, 0x18, 0x40, 0x40]);
    let zs = dir.path().join("h.zst");
    write_file(&zs, spec(Method::Zstd), b"abc");
    let b = std::fs::read(&zs).unwrap();
    assert_eq!(b[..4], [0x28, 0xB5, 0x2F, 0xFD]);
    assert_ne!(b[4] & 0x04, 0, "zstd content checksum flag");
}

#[test]
fn empty_stream_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    for m in METHODS {
        let path = dir.path().join(format!("e{}", m.suffix()));
        Encoder::new(spec(m), File::create(&path).unwrap())
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(decompress_file(&path, m).unwrap(), b"");
        assert_eq!(uncompressed_size(&path, m).unwrap(), 0);
    }
}

/// Runs `tool -t file` if the tool is installed; `None` when it is not.
fn system_test(tool: &str, path: &Path) -> Option<bool> {
    match Command::new(tool).arg("-t").arg("-q").arg(path).output() {
        Ok(out) => Some(out.status.success()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => panic!("running {tool}: {e}"),
    }
}

#[test]
fn system_tools_accept_finished_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(3 << 20);
    for (m, tool) in [
        (Method::Gzip, "gzip"),
        (Method::Lz4, "lz4"),
        (Method::Zstd, "zstd"),
    ] {
        let path = dir
            .path()
            .join(format!("000000010000000000000001{}", m.suffix()));
        write_file(&path, spec(m), &data);
        match system_test(tool, &path) {
            None => testenv::skip(format!("`{tool}` is not installed: no `{tool} -t` check")),
            Some(ok) => assert!(ok, "`{tool} -t` rejected our {m:?} file"),
        }
        // And an unfinished one is rejected by the same tool: the check can fail.
        let cut = dir.path().join(format!("cut{}", m.suffix()));
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
        if let Some(ok) = system_test(tool, &cut) {
            assert!(!ok, "`{tool} -t` accepted a truncated file");
        }
    }
}

#[test]
fn corrupt_or_truncated_is_invalid_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(200_000);
    for m in METHODS {
        let good = dir.path().join(format!("good{}", m.suffix()));
        write_file(&good, spec(m), &data);
        let bytes = std::fs::read(&good).unwrap();
        let bad = dir.path().join(format!("bad{}", m.suffix()));
        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x55;
        flipped[mid + 1] ^= 0xAA;
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("truncated", bytes[..bytes.len() - 5].to_vec()),
            ("half", bytes[..bytes.len() / 2].to_vec()),
            (
                "garbage",
                b"this is not compressed at all, not even a little".to_vec(),
            ),
            (
                "trailing garbage",
                [&bytes[..], b"JUNKJUNKJUNKJUNKJUNK"].concat(),
            ),
            ("header only", bytes[..12].to_vec()),
        ];
        if m != Method::Lz4 {
            // An lz4 frame with PostgreSQL's preferences has no checksum: damage inside a
            // block can decode to other bytes without any error.
            cases.push(("flipped", flipped));
        }
        if m != Method::Zstd {
            // zstd's tool takes an empty file as an empty stream; gzip's and lz4's do not.
            cases.push(("empty", Vec::new()));
        }
        for (what, content) in cases {
            std::fs::write(&bad, &content).unwrap();
            let e = decompress_file(&bad, m).err();
            let e = e.unwrap_or_else(|| panic!("{m:?} {what}: decoded"));
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{m:?} {what}: {e}");
            if m != Method::Gzip {
                let e = uncompressed_size(&bad, m).err();
                let e = e.unwrap_or_else(|| panic!("{m:?} {what}: sized"));
                assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{m:?} {what}: {e}");
            }
        }
    }
}

#[test]
fn read_errors_are_not_reported_as_corruption() {
    // A directory opens but cannot be read (EISDIR): the file's own error, not InvalidData.
    let dir = tempfile::tempdir().unwrap();
    for m in [Method::Lz4, Method::Zstd] {
        let e = uncompressed_size(dir.path(), m).unwrap_err();
        assert_ne!(e.kind(), io::ErrorKind::InvalidData, "{m:?}: {e}");
        assert_eq!(e.raw_os_error(), Some(21), "{m:?}: {e}");
    }
}

#[test]
fn gzip_size_is_the_isize_trailer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.gz");
    write_file(&path, spec(Method::Gzip), &sample(100_000));
    // Only the trailer is read, as pg_receivewal does: a damaged body is not noticed...
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xFF;
    bytes[n - 4..].copy_from_slice(&16_777_216u32.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(uncompressed_size(&path, Method::Gzip).unwrap(), 16 << 20);
    // ...but a file too short to be gzip at all is an error, not a panic or a guess.
    for len in [0, 3, 17] {
        std::fs::write(&path, &bytes[..len]).unwrap();
        let e = uncompressed_size(&path, Method::Gzip).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
    assert_eq!(
        uncompressed_size(&dir.path().join("missing.gz"), Method::Gzip)
            .unwrap_err()
            .kind(),
        io::ErrorKind::NotFound
    );
}

#[test]
fn limited_size_stops_early() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(2 << 20);
    for m in [Method::Lz4, Method::Zstd] {
        let path = dir.path().join(format!("x{}", m.suffix()));
        write_file(&path, spec(m), &data);
        let n = uncompressed_size_limited(&path, m, 100_000).unwrap();
        assert!(n > 100_000 && n < data.len() as u64, "{m:?}: {n}");
        let all = uncompressed_size_limited(&path, m, data.len() as u64).unwrap();
        assert_eq!(all, data.len() as u64);
    }
}

#[test]
fn concatenated_streams_count_whole() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample(70_000);
    let b = sample(50_000);
    for m in METHODS {
        let pa = dir.path().join(format!("a{}", m.suffix()));
        let pb = dir.path().join(format!("b{}", m.suffix()));
        write_file(&pa, spec(m), &a);
        write_file(&pb, spec(m), &b);
        let both = [std::fs::read(&pa).unwrap(), std::fs::read(&pb).unwrap()].concat();
        std::fs::write(&pa, both).unwrap();
        assert!(
            decompress_file(&pa, m).unwrap() == [&a[..], &b[..]].concat(),
            "{m:?}"
        );
    }
}

#[test]
fn reader_streams_what_was_written_and_refuses_a_cut_stream() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(3 << 20);
    for m in METHODS {
        let path = dir.path().join(format!("r{}", m.suffix()));
        write_file(&path, spec(m), &data);
        let mut back = Vec::new();
        reader(m, File::open(&path).unwrap())
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == data, "{m:?}");
        // Cut in the middle: an InvalidData error, never a short read taken for the end.
        let bytes = std::fs::read(&path).unwrap();
        let cut = &bytes[..bytes.len() / 2];
        let mut out = Vec::new();
        let e = reader(m, std::io::Cursor::new(cut.to_vec()))
            .and_then(|mut r| r.read_to_end(&mut out))
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{m:?}: {e}");
    }
    // Uncompressed: the bytes as they are.
    let mut back = Vec::new();
    reader(Method::None, std::io::Cursor::new(b"abc".to_vec()))
        .unwrap()
        .read_to_end(&mut back)
        .unwrap();
    assert_eq!(back, b"abc");
}
