//! File modes follow the server's data_directory_mode: 0600, or 0640 with group access.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use testenv::{Cluster, Options};

use crate::common::*;

fn modes_with(group_access: bool) -> Vec<(String, u32)> {
    let pg = Cluster::start(Options {
        group_access,
        ..Options::default()
    })
    .unwrap();
    pg.create_physical_slot("m").unwrap();
    pg.generate_wal(3 << 20).unwrap();
    let end = lsn(&pg, "SELECT pg_current_wal_insert_lsn()");
    let dir = TempDir::new("modes");
    let out = run(
        bin()
            .args(["-D", &dir.arg(), "-S", "m", "-n", "--no-sync", "-E"])
            .args([
                &pgwire_repl::Lsn(end.0 - 1).to_string(),
                "-d",
                &conninfo(&pg),
            ]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut v: Vec<(String, u32)> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().permissions().mode() & 0o777,
            )
        })
        .collect();
    v.sort();
    assert!(v.len() >= 3, "{v:?}");
    v
}

#[test]
fn files_follow_the_data_directory_mode() {
    if !starts_at_the_slot() {
        return;
    }
    for (name, mode) in modes_with(false) {
        assert_eq!(mode, 0o600, "{name}");
    }
    for (name, mode) in modes_with(true) {
        assert_eq!(mode, 0o640, "{name}");
    }
}
