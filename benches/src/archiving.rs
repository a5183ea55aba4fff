//! The side-by-side programs' server, and the archives they read: its WAL, archived by
//! pgwal-recv.

use std::path::Path;
use std::process::{Command, Stdio};

use testenv::{Cluster, Options};

/// Runs `pgwal_recv` (a command naming the program, run as whichever user it says) to
/// archive `pg`'s WAL from slot `slot` up to `end` into `dir`, with `extra` options; panics
/// if it fails.
pub fn archive(
    mut pgwal_recv: Command,
    pg: &Cluster,
    dir: &Path,
    slot: &str,
    end: &str,
    extra: &[&str],
) {
    let status = pgwal_recv
        .arg("-D")
        .arg(dir)
        .args(["-S", slot, "-n", "--no-sync", "-E", end, "-d"])
        .arg(pg.conninfo(testenv::roles::REPL_TRUST.name, None))
        .args(extra)
        .stderr(Stdio::null())
        .status()
        .expect("run pgwal-recv");
    assert!(status.success(), "archiving failed");
}

/// The server the side-by-side programs measure on: 16 MB segments, as in production.
pub fn server() -> Cluster {
    Cluster::start(Options {
        wal_segsize_mb: 16,
        ..Options::default()
    })
    .expect("a PostgreSQL server")
}
