//! The WAL decoder on a real server's WAL, compared with PostgreSQL's own readers.
//!
//! A workload with full-page writes (a checkpoint in the middle, then updates that touch
//! every page again; once more with `wal_compression` for compressed images), an index
//! build, a vacuum and a logical message; then `pg_switch_wal()`. Every segment in `pg_wal`
//! up to the switched one is decoded in 64 KiB pieces and counted per resource manager as
//! `pg_waldump --stats=rmgr` counts (records, record bytes, FPI bytes), then compared with:
//! - `pg_waldump --stats=rmgr` of the same segments, where a `pg_waldump` of the server's
//!   major is at hand (15 from Debian, 16 and 18 from PyPI);
//! - `pg_walinspect`'s `pg_get_wal_stats()` over the same LSNs (15+, where the build has
//!   the extension;
//!
//! and in every version with the server's word: the logical message's record ends where
//! `pg_logical_emit_message()` said. 13 and 14 have neither reader (`pg_waldump` reads
//! only its own major's WAL; `pg_walinspect` came with 15): there the test says so on
//! stderr and checks the decode alone.

use std::collections::BTreeMap;
use std::io::Read;

use pgwire_repl::wal::{Event, WalDecoder};
use pgwire_repl::{Lsn, WalSegmentSize};
use testenv::Cluster;

use crate::common::{cluster, lsn_of};

/// What `pg_waldump --stats` counts per resource manager.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Stats {
    count: u64,
    rec_len: u64,
    fpi_len: u64,
}

type PerRmgr = BTreeMap<String, Stats>;

#[test]
fn real_wal_decodes_as_pg_waldump_counts_it() {
    let pg = cluster(&["full_page_writes = on", "wal_compression = off"]);
    let seg = WalSegmentSize::new(pg.options().wal_segsize_mb << 20).unwrap();
    workload(&pg);
    let message_end = lsn_of(
        &pg,
        "SELECT pg_logical_emit_message(false, 'wal-decoder-test', 'hello')",
    );
    let last = pg
        .sql("SELECT pg_walfile_name(pg_switch_wal())")
        .unwrap()
        .trim()
        .to_owned();

    let files = segments(&pg, seg, &last);
    let (_, first_segno) = seg.parse_file_name(&files[0]).unwrap();
    let (_, last_segno) = seg.parse_file_name(&last).unwrap();
    let start = seg.segment_start(first_segno).unwrap();
    let end = seg.segment_start(last_segno + 1).unwrap();

    let (ours, message) = decode(&pg, seg, start, &files, message_end);
    let total = |s: &PerRmgr| s.values().fold(0, |n, s| n + s.count);
    assert!(
        total(&ours) > 3000,
        "{} records in {} segments: {ours:?}",
        total(&ours),
        files.len()
    );
    assert!(
        ours["Heap"].fpi_len > 0 && ours["XLOG"].count > 0,
        "{ours:?}"
    );
    assert_eq!(message, Some(message_end), "the logical message's record");

    let mut compared = Vec::new();
    match pg.tool_command("pg_waldump") {
        Ok(mut cmd) => {
            let out = cmd
                .arg("--stats=rmgr")
                .arg("--path")
                .arg(pg.pg_wal_dir())
                .arg(&files[0])
                .arg(&last)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "pg_waldump: {}\n{stdout}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(ours, parse_waldump(&stdout), "pg_waldump said:\n{stdout}");
            compared.push("pg_waldump");
        }
        Err(e) => eprintln!("no pg_waldump for PostgreSQL {}: {e}", pg.version()),
    }
    if let Some(theirs) = walinspect(&pg, start, end) {
        assert_eq!(ours, theirs, "pg_walinspect");
        compared.push("pg_walinspect");
    }
    if pg.version() >= 15 {
        assert!(
            !compared.is_empty(),
            "PostgreSQL {} has pg_walinspect: compared with nothing",
            pg.version()
        );
    }
    eprintln!(
        "PostgreSQL {}: {} records in {} segments, {} FPI bytes; compared with {}",
        pg.version(),
        total(&ours),
        files.len(),
        ours.values().map(|s| s.fpi_len).sum::<u64>(),
        if compared.is_empty() {
            "no other reader (none reads this version's WAL here): decoded only".to_owned()
        } else {
            compared.join(" and ")
        }
    );
}

/// Inserts, a checkpoint, updates with full-page images (plain, then compressed), an
/// index, a vacuum.
fn workload(pg: &Cluster) {
    pg.generate_wal(1_500_000).unwrap();
    let table = testenv::WAL_TABLE;
    pg.sql("CHECKPOINT").unwrap();
    pg.sql(&format!(
        "UPDATE {table} SET pad = pad || 'x' WHERE id % 7 = 0"
    ))
    .unwrap();
    pg.sql(&format!("CREATE INDEX ON {table} (id, left(pad, 10))"))
        .unwrap();
    pg.sql("CHECKPOINT").unwrap();
    pg.sql(&format!(
        "SET wal_compression = on; UPDATE {table} SET pad = pad || 'y' WHERE id % 5 = 0"
    ))
    .unwrap();
    pg.sql(&format!("VACUUM {table}")).unwrap();
}

/// The segment files in `pg_wal` from the oldest to `last`, which must be consecutive.
fn segments(pg: &Cluster, seg: WalSegmentSize, last: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(pg.pg_wal_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| seg.parse_file_name(n).is_some() && n.as_str() <= last)
        .collect();
    names.sort();
    let segnos: Vec<u64> = names
        .iter()
        .map(|n| seg.parse_file_name(n).unwrap().1)
        .collect();
    assert!(
        segnos.windows(2).all(|w| w[1] == w[0] + 1)
            && names.last().map(String::as_str) == Some(last),
        "{names:?}"
    );
    names
}

/// Decodes `files` from `start`, in 64 KiB pieces; counts per resource manager, and finds
/// the end of the logical message record that ends at `message_end`.
fn decode(
    pg: &Cluster,
    seg: WalSegmentSize,
    start: Lsn,
    files: &[String],
    message_end: Lsn,
) -> (PerRmgr, Option<Lsn>) {
    let mut decoder = WalDecoder::new(seg, start);
    let mut stats = PerRmgr::new();
    let mut message = None;
    let mut buf = vec![0u8; 64 << 10];
    for name in files {
        let mut file = std::fs::File::open(pg.pg_wal_dir().join(name)).unwrap();
        loop {
            let n = file.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            decoder
                .feed(&buf[..n], &mut |e| match e {
                    Event::Record(r) => {
                        let s = stats.entry(r.rmgr_name.to_owned()).or_default();
                        s.count += 1;
                        s.rec_len += u64::from(r.rec_len());
                        s.fpi_len += u64::from(r.fpi_len);
                        if r.rmgr_name == "LogicalMessage" && r.end == message_end {
                            message = Some(r.end);
                        }
                    }
                    Event::Page(p) => assert_eq!(p.tli.0, 1, "{p:?}"),
                    Event::End(end) => panic!("end of WAL in {name}: {end:?}"),
                    _ => {}
                })
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    assert_eq!(decoder.version().map(|v| v.major()), Some(pg.version()));
    (stats, message)
}

/// The per-resource-manager rows of `pg_waldump --stats=rmgr`:
/// `Heap  N (%)  record size (%)  FPI size (%)  combined size (%)`.
fn parse_waldump(out: &str) -> PerRmgr {
    let mut stats = PerRmgr::new();
    for line in out.lines() {
        let mut words = line.split_whitespace();
        let Some(name) = words.next() else { continue };
        let numbers: Vec<u64> = words.filter_map(|w| w.parse().ok()).collect();
        if name == "Total" || numbers.len() != 4 || numbers[0] == 0 {
            continue;
        }
        stats.insert(
            name.to_owned(),
            Stats {
                count: numbers[0],
                rec_len: numbers[1],
                fpi_len: numbers[2],
            },
        );
    }
    stats
}

/// `pg_get_wal_stats(start, end)` (15+), if the build has `pg_walinspect`.
fn walinspect(pg: &Cluster, start: Lsn, end: Lsn) -> Option<PerRmgr> {
    if pg.version() < 15 {
        return None;
    }
    let available = pg
        .sql("SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_walinspect'")
        .unwrap();
    if available.trim() != "1" {
        eprintln!(
            "no pg_walinspect in this build of PostgreSQL {}",
            pg.version()
        );
        return None;
    }
    let out = pg
        .sql(&format!(
            "CREATE EXTENSION IF NOT EXISTS pg_walinspect; \
             SELECT \"resource_manager/record_type\", count, record_size, fpi_size \
             FROM pg_get_wal_stats('{start}', '{end}') WHERE count > 0"
        ))
        .unwrap();
    let mut stats = PerRmgr::new();
    for line in out.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f.len(), 4, "{line}");
        stats.insert(
            f[0].to_owned(),
            Stats {
                count: f[1].parse().unwrap(),
                rec_len: f[2].parse().unwrap(),
                fpi_len: f[3].parse().unwrap(),
            },
        );
    }
    Some(stats)
}
