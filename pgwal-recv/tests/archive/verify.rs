//! `pgwal-recv verify` on real archives: clean ones (every compression), its statistics
//! against pg_waldump's of the same version over the same segments, and archives damaged on
//! purpose, each damage named with its file.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use pgwire_repl::{Lsn, TimelineId};
use serde_json::Value;
use testenv::Cluster;

use crate::common::*;

/// Runs verify on `dir` with `args`; its output, and the JSON of its last stdout line.
fn verify(dir: &Path, args: &[&str]) -> (Output, Value) {
    let out = run(
        bin()
            .args(["verify", "-D", &dir.display().to_string(), "--json"])
            .args(args),
        Duration::from_secs(120),
    );
    let json = last_json(&out);
    (out, json)
}

fn problems(v: &Value) -> Vec<String> {
    v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{}: {}", p["file"].as_str().unwrap_or("-"), p["message"]))
        .collect()
}

pub(crate) fn assert_clean(dir: &Path, args: &[&str]) -> Value {
    let (out, v) = verify(dir, args);
    assert_eq!(v["ok"], true, "{:#?}\n{}", problems(&v), stderr(&out));
    assert_eq!(out.status.code(), Some(0));
    v
}

/// Complete segment names from `first` to `last` on timeline 1.
fn names(first: u64, last: u64) -> (String, String) {
    let seg = seg1mb();
    (
        seg.file_name(TimelineId(1), first),
        seg.file_name(TimelineId(1), last),
    )
}

#[test]
fn clean_archives_in_every_compression() {
    let pg = cluster(&[]);
    for (i, z) in ["none", "gzip", "lz4", "zstd"].iter().enumerate() {
        let dir = TempDir::new("verify-clean");
        let (first, last) = make_archive(&pg, dir.path(), &format!("v{i}"), &["-Z", z]);
        let v = assert_clean(dir.path(), &[]);
        // Every complete segment (and any .partial the archiver stopped in).
        assert!(v["segments"].as_u64().unwrap() > last - first, "{z}: {v}");
        assert!(v["records"].as_u64().unwrap() > 1000, "{z}: {v}");
        let tl = &v["timelines"][0];
        assert_eq!(tl["timeline"], 1);
        let first_lsn: Lsn = tl["first_lsn"].as_str().unwrap().parse().unwrap();
        assert!(seg1mb().segment_of(first_lsn) == first, "{v}");
    }
}

#[test]
fn statistics_equal_pg_waldumps() {
    let pg = cluster(&["full_page_writes = on"]);
    let Ok(waldump) = pg.bin().tool("pg_waldump") else {
        testenv::skip(format!(
            "no pg_waldump for PostgreSQL {} to compare with",
            pg.version()
        ));
        return;
    };
    let dir = TempDir::new("verify-stats");
    let (first, last) = make_archive(&pg, dir.path(), "stats", &[]);
    let (a, b) = names(first, last);
    let theirs = std::process::Command::new(&waldump)
        .args(["--stats=rmgr", "-p", &dir.arg(), &a, &b])
        .output()
        .unwrap();
    assert!(theirs.status.success(), "{}", stderr(&theirs));
    let theirs = String::from_utf8_lossy(&theirs.stdout).into_owned();
    let ours = run(
        bin().args([
            "verify",
            "-D",
            &dir.arg(),
            "--stats",
            "--start",
            &a,
            "--end",
            &b,
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(ours.status.code(), Some(0), "{}", stderr(&ours));
    let ours = String::from_utf8_lossy(&ours.stdout).into_owned();
    // The table, from its header on: the same lines, names, figures and layout.
    let table = |s: &str| -> Vec<String> {
        s.lines()
            .skip_while(|l| !l.starts_with("Type "))
            .map(|l| l.trim_end().to_owned())
            .collect()
    };
    assert!(table(&theirs).len() > 20, "{theirs}");
    assert_eq!(
        table(&ours),
        table(&theirs),
        "ours:\n{ours}\npg_waldump {}:\n{theirs}",
        pg.version()
    );
    eprintln!(
        "PostgreSQL {}: verify --stats equals {} over {a}..{b}",
        pg.bin().full_version(),
        waldump.display()
    );
}

/// A clean archive to damage, and its complete segments' names.
fn damaged(pg: &Cluster, slot: &str) -> (TempDir, Vec<String>) {
    let dir = TempDir::new("verify-damage");
    make_archive(pg, dir.path(), slot, &[]);
    assert_clean(dir.path(), &[]);
    let segs = complete_segments(dir.path());
    assert!(segs.len() >= 6, "{segs:?}");
    (dir, segs)
}

fn assert_reported(dir: &Path, file: &str, what: &str) {
    let (out, v) = verify(dir, &[]);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["ok"], false);
    let found = problems(&v);
    eprintln!("{file}: {found:#?}");
    assert!(
        found
            .iter()
            .any(|p| p.starts_with(&format!("{file}:")) && p.contains(what)),
        "no problem with {file} saying {what:?}: {found:#?}"
    );
    // The human lines name the file too.
    assert!(stderr(&out).contains(file), "{}", stderr(&out));
}

#[test]
fn a_flipped_byte_in_a_record() {
    let pg = cluster(&[]);
    let (dir, segs) = damaged(&pg, "flip");
    let victim = dir.path().join(&segs[2]);
    let mut bytes = std::fs::read(&victim).unwrap();
    // Inside a record in the middle of the segment (not a page header, not padding).
    let at = (bytes.len() / 2) + 1000;
    bytes[at] ^= 0x40;
    std::fs::write(&victim, bytes).unwrap();
    assert_reported(dir.path(), &segs[2], "");
}

#[test]
fn a_missing_segment() {
    let pg = cluster(&[]);
    let (dir, segs) = damaged(&pg, "missing");
    std::fs::remove_file(dir.path().join(&segs[3])).unwrap();
    assert_reported(
        dir.path(),
        &segs[4],
        &format!("segment {} is missing", segs[3]),
    );
}

#[test]
fn a_truncated_segment() {
    let pg = cluster(&[]);
    let (dir, segs) = damaged(&pg, "cut");
    let victim = dir.path().join(&segs[2]);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&victim)
        .unwrap();
    f.set_len(300_000).unwrap();
    assert_reported(dir.path(), &segs[2], "has 300000 bytes");
}

#[test]
fn a_segment_from_another_cluster() {
    let pg = cluster(&[]);
    let (dir, segs) = damaged(&pg, "foreign");
    let other = cluster(&[]);
    other.generate_wal(1 << 20).unwrap();
    other.switch_wal().unwrap();
    // Any complete segment of the other cluster, under our segment's name.
    let theirs = other
        .sql("SELECT pg_walfile_name(pg_current_wal_lsn() - 1048576)")
        .unwrap();
    std::fs::write(
        dir.path().join(&segs[3]),
        other.wal_file(theirs.trim()).unwrap(),
    )
    .unwrap();
    assert_reported(dir.path(), &segs[3], "");
}

#[test]
fn a_segment_on_the_wrong_timeline() {
    let pg = cluster(&[]);
    let (dir, segs) = damaged(&pg, "tli");
    // Timeline 2 said to begin at segment 3's start; segments 3 and after renamed to it,
    // but their pages are still timeline 1's.
    let seg = seg1mb();
    let (_, segno) = seg.parse_file_name(&segs[3]).unwrap();
    let begins = seg.segment_start(segno).unwrap();
    std::fs::write(
        dir.path().join("00000002.history"),
        format!("1\t{begins}\tno recovery target specified\n"),
    )
    .unwrap();
    for name in &segs[3..] {
        let (_, s) = seg.parse_file_name(name).unwrap();
        std::fs::rename(
            dir.path().join(name),
            dir.path().join(seg.file_name(TimelineId(2), s)),
        )
        .unwrap();
    }
    assert_reported(
        dir.path(),
        &seg.file_name(TimelineId(2), segno),
        "page of timeline 1, where timeline 2 has its own WAL",
    );
}

#[test]
fn user_errors() {
    let out = run(bin().args(["verify"]), Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no archive specified"),
        "{}",
        stderr(&out)
    );
    let out = run(
        bin().args(["verify", "-D", "/nonexistent/archive"]),
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("could not read directory \"/nonexistent/archive\""),
        "{}",
        stderr(&out)
    );
}

/// A proxy between a client and `server_port` that forwards everything, but flips one byte
/// in the WAL of the `nth` XLogData message of 200 bytes or more (inside its payload, clear
/// of the message header): WAL damaged on the way, as a real server never sends it.
fn corrupting_proxy(server_port: u16, nth: usize) -> u16 {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let Ok(mut server) = TcpStream::connect(("127.0.0.1", server_port)) else {
                return;
            };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c2, &mut s2);
                let _ = s2.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let mut seen = 0;
                loop {
                    let mut head = [0u8; 5];
                    if server.read_exact(&mut head).is_err() {
                        return;
                    }
                    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
                    let mut body = vec![0u8; len.saturating_sub(4)];
                    if server.read_exact(&mut body).is_err() {
                        return;
                    }
                    // CopyData holding XLogData: 'w', then 24 bytes of header, then WAL.
                    if head[0] == b'd' && body.first() == Some(&b'w') && body.len() >= 200 {
                        seen += 1;
                        if seen == nth {
                            body[25 + 100] ^= 0x01;
                        }
                    }
                    if client.write_all(&head).is_err() || client.write_all(&body).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn the_archiver_with_verify_stops_at_a_record_damaged_on_the_way() {
    let pg = cluster(&[]);
    if !starts_at_the_slot() {
        return;
    }
    pg.create_physical_slot("live").unwrap();
    pg.generate_wal(6 << 20).unwrap();
    let end = pg.generate_wal(64 << 10).unwrap();
    let through_proxy = |proxy: u16| {
        format!(
            "host=127.0.0.1 port={proxy} user={} sslmode=disable",
            testenv::roles::REPL_TRUST.name
        )
    };
    // --verify: stops at the damage with its LSN and reason, exit 1, even without -n.
    let dir = TempDir::new("live-verify");
    let out = run(
        bin()
            .args(["-D", &dir.arg(), "-S", "live", "--verify", "-E", end.trim()])
            .args(["-d", &through_proxy(corrupting_proxy(pg.port(), 12))]),
        Duration::from_secs(60),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("WAL received from the server fails verification: ") && err.contains(" at 0/"),
        "{err}"
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".partial")),
        "the .partial went"
    );
    // Without it the same damage is archived as it came, and `verify` finds it later.
    let dir = TempDir::new("live-no-verify");
    let out = run(
        bin()
            .args(["-D", &dir.arg(), "-S", "live", "-E", end.trim(), "-n"])
            .args(["-d", &through_proxy(corrupting_proxy(pg.port(), 12))]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (out, v) = verify(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{v}");
}
