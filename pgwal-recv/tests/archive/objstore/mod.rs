//! The archive in an object store (`-D s3://BUCKET/PREFIX --spool DIR`), on a real Garage
//! cluster (testenv). [`reading`]: what lands in the bucket is the server's pg_wal byte for
//! byte, every compression; `restore` from the bucket feeds a point-in-time recovery, `verify`
//! finds what was damaged, `cleanup` prunes it; snapshots, resumption and promotions.
//! [`failures`]: a SIGKILLed archiver resumes with no gap and overwrites nothing; a store that
//! goes away pauses receiving at `--spool-max` with the slot holding what is not stored; one
//! of three nodes lost does not stop archiving; other bytes are never overwritten.
//!
//! The objects are read back with the `object_store` crate directly (not through the
//! archiver's own code), and decompressed with the gzip, lz4 and zstd crates.

mod failures;
mod reading;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use pgwire_repl::{Lsn, TimelineId};
use testenv::{Cluster, Garage};

use crate::common::*;

pub fn garage(nodes: usize) -> Option<Garage> {
    if Garage::binary().is_none() {
        testenv::skip(
            "no garage binary (cargo install garage --locked --no-default-features \
             --features bundled-libs,lmdb)",
        );
        return None;
    }
    Some(Garage::start(nodes).unwrap_or_else(|e| panic!("could not start Garage: {e}")))
}

/// The bucket, read and written directly (the oracle).
pub struct Bucket {
    store: AmazonS3,
    rt: tokio::runtime::Runtime,
}

impl Bucket {
    fn new(g: &Garage) -> Bucket {
        let store = AmazonS3Builder::new()
            .with_endpoint(g.endpoint())
            .with_allow_http(true)
            .with_region(g.region())
            .with_bucket_name(g.bucket())
            .with_access_key_id(g.access_key_id())
            .with_secret_access_key(g.secret_access_key())
            .build()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Bucket { store, rt }
    }

    /// Object names under `prefix/`, with their sizes.
    fn list(&self, prefix: &str) -> BTreeMap<String, u64> {
        let listed = self
            .rt
            .block_on(self.store.list_with_delimiter(Some(&ObjPath::from(prefix))))
            .unwrap();
        listed
            .objects
            .into_iter()
            .map(|o| (o.location.filename().unwrap().to_owned(), o.size))
            .collect()
    }

    fn get(&self, prefix: &str, name: &str) -> Vec<u8> {
        let path = ObjPath::from(format!("{prefix}/{name}"));
        self.rt
            .block_on(async { self.store.get(&path).await?.bytes().await })
            .unwrap_or_else(|e| panic!("object {prefix}/{name}: {e}"))
            .to_vec()
    }

    fn put(&self, prefix: &str, name: &str, data: Vec<u8>) {
        let path = ObjPath::from(format!("{prefix}/{name}"));
        self.rt
            .block_on(self.store.put(&path, PutPayload::from(Bytes::from(data))))
            .unwrap();
    }

    fn delete(&self, prefix: &str, name: &str) {
        let path = ObjPath::from(format!("{prefix}/{name}"));
        self.rt.block_on(self.store.delete(&path)).unwrap();
    }

    /// Every object under `prefix/` with its bytes.
    fn contents(&self, prefix: &str) -> BTreeMap<String, Vec<u8>> {
        self.list(prefix)
            .into_keys()
            .map(|n| {
                let data = self.get(prefix, &n);
                (n, data)
            })
            .collect()
    }
}

/// Decompresses an object by its name's suffix.
pub fn decompress(name: &str, data: &[u8]) -> Vec<u8> {
    let name = name.strip_suffix(".partial").unwrap_or(name);
    let mut out = Vec::new();
    if name.ends_with(".gz") {
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
    } else if name.ends_with(".lz4") {
        lz4::Decoder::new(data)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
    } else if name.ends_with(".zst") {
        out = zstd::decode_all(data).unwrap();
    } else {
        out = data.to_vec();
    }
    out
}

/// What a possibly unfinished compressed stream (a `.partial` snapshot) decodes to before it
/// stops.
pub fn decompress_prefix(name: &str, data: &[u8]) -> Vec<u8> {
    let mut r: Box<dyn Read + '_> = if name.contains(".zst") {
        Box::new(zstd::stream::read::Decoder::new(data).unwrap())
    } else if name.contains(".lz4") {
        Box::new(lz4::Decoder::new(data).unwrap())
    } else if name.contains(".gz") {
        Box::new(flate2::read::GzDecoder::new(data))
    } else {
        return data.to_vec();
    };
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = r.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// pgwal-recv with the store's credentials in its environment.
pub fn with_store(mut cmd: Command, g: &Garage) -> Command {
    for (k, v) in g.env() {
        cmd.env(k, v);
    }
    cmd
}

/// The archiver into `prefix` through `spool` and slot `slot`, with `extra` options.
pub fn archiver_cmd(pg: &Cluster, g: &Garage, prefix: &str, spool: &Path, slot: &str) -> Command {
    let mut cmd = with_store(bin(), g);
    cmd.args([
        "-D",
        &g.url(prefix),
        "--spool",
        &spool.display().to_string(),
    ])
    .args(["-S", slot, "-d", &conninfo(pg)]);
    cmd
}

/// Starts `cmd` (an archiver with `-v`) in the background and waits until it streams.
pub fn streaming(cmd: &mut Command) -> Background {
    let mut arch = Background::spawn(cmd);
    arch.wait_until("streaming", Duration::from_secs(30), |e| {
        e.contains("starting log streaming")
    });
    arch
}

/// Runs the archiver into `prefix` through `spool` and `slot` up to `end` (`-n -E`) with
/// `extra` options; fails the test unless it exits 0.
pub fn archive_to_end(
    pg: &Cluster,
    g: &Garage,
    (prefix, spool, slot): (&str, &Path, &str),
    end: Lsn,
    extra: &[&str],
) {
    let out = run(
        archiver_cmd(pg, g, prefix, spool, slot)
            .args(["-n", "-E", &end.to_string()])
            .args(extra),
        Duration::from_secs(120),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Asserts that segments `first..=last` of timeline 1 are in the bucket under `prefix`
/// (each once, with the suffix of `method`), equal to the server's pg_wal once decompressed.
pub fn assert_stored_identical(
    pg: &Cluster,
    bucket: &Bucket,
    prefix: &str,
    suffix: &str,
    first: u64,
    last: u64,
) {
    let seg = seg1mb();
    let listed = bucket.list(prefix);
    for segno in first..=last {
        let name = format!("{}{suffix}", seg.file_name(TimelineId(1), segno));
        assert!(
            listed.contains_key(&name),
            "segment {name} missing from {prefix}/; the bucket has {:?}",
            listed.keys().collect::<Vec<_>>()
        );
        let ours = decompress(&name, &bucket.get(prefix, &name));
        let theirs = pg.wal_file(&seg.file_name(TimelineId(1), segno)).unwrap();
        assert!(ours == theirs, "{prefix}/{name} differs from the server's");
    }
}

/// The segment numbers from the slot's start to the last complete one at `end`.
pub fn span(start: Lsn, end: Lsn) -> (u64, u64) {
    let seg = seg1mb();
    (seg.segment_of(start), seg.segment_of(end) - 1)
}

/// Slot `name` for an archiver, plus the `hold` slot that keeps pg_wal (created once).
pub fn archiver_and_holding_slots_named(pg: &Cluster, name: &str) -> Lsn {
    pg.create_physical_slot(name).unwrap();
    if pg
        .sql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'hold'")
        .unwrap()
        == "0"
    {
        pg.create_physical_slot("hold").unwrap();
    }
    lsn(
        pg,
        &format!("SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = '{name}'"),
    )
}

/// Sets the flag when dropped, so that a WAL generator stops also when the test panics.
pub struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
