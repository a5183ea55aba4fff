//! BASE_BACKUP against a real server, in the form of its version (keyword options and one
//! COPY per archive before 15, one tagged COPY from 15): the archives are complete tar
//! files that hold every file of the server's own manifest, at the manifest's size.

use std::collections::HashMap;
use std::io::Read;

use pgwire_repl::{BackupEvent, BaseBackupOptions, CheckpointMode, TimelineId};

use crate::common::{cluster, connect, lsn_of};

/// Every regular file of a tar archive: path → size. Reading it whole also checks that
/// the archive is a well-formed tar that ends with its end blocks.
fn tar_files(archive: &[u8]) -> HashMap<String, u64> {
    assert!(
        archive.len() >= 1024 && archive.len().is_multiple_of(512),
        "tar length {}",
        archive.len()
    );
    assert!(
        archive[archive.len() - 1024..].iter().all(|&b| b == 0),
        "no tar end blocks"
    );
    let mut files = HashMap::new();
    let mut ar = tar::Archive::new(archive);
    for entry in ar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type().is_file() {
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            files.insert(path, data.len() as u64);
        }
    }
    files
}

#[tokio::test]
async fn base_backup_with_a_tablespace_matches_the_manifest() {
    let pg = cluster(&[]);
    let ts_dir = pg.scratch_dir("ts1").unwrap();
    pg.sql(&format!(
        "CREATE TABLESPACE ts1 LOCATION '{}'",
        ts_dir.display()
    ))
    .unwrap();
    pg.sql("CREATE TABLE t TABLESPACE ts1 AS SELECT g FROM generate_series(1, 10000) g")
        .unwrap();
    let ts_oid: u32 = pg
        .sql("SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let before = lsn_of(&pg, "SELECT pg_current_wal_lsn()");

    let mut c = connect(&pg).await;
    let opts = BaseBackupOptions {
        label: "it's a test".into(),
        progress: true,
        checkpoint: CheckpointMode::Fast,
        wal: true,
        manifest_checksums: Some("SHA256".into()),
        ..BaseBackupOptions::default()
    };
    let mut stream = c.base_backup(&opts).await.unwrap();
    let mut events = Vec::new();
    let mut archives: Vec<(String, Option<String>, Vec<u8>)> = Vec::new();
    let mut manifest = Vec::new();
    let mut in_manifest = false;
    while let Some(e) = stream.next().await.unwrap() {
        match e {
            BackupEvent::ArchiveStart { name, location } => {
                archives.push((name, location, Vec::new()))
            }
            BackupEvent::ArchiveData(d) => {
                assert!(!in_manifest, "archive data after the manifest began");
                archives
                    .last_mut()
                    .expect("data inside an archive")
                    .2
                    .extend_from_slice(&d)
            }
            BackupEvent::ManifestStart => in_manifest = true,
            BackupEvent::ManifestData(d) => manifest.extend_from_slice(&d),
            other => events.push(other),
        }
    }
    drop(stream);

    // Start, tablespaces (the data directory last), end; progress only from 15.
    let BackupEvent::Started { start, timeline } = events[0].clone() else {
        panic!("first event {:?}", events[0]);
    };
    assert!(start >= before, "{start} < {before}");
    assert_eq!(timeline, TimelineId(1));
    let BackupEvent::Tablespaces(list) = &events[1] else {
        panic!("second event {:?}", events[1]);
    };
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0].oid, Some(ts_oid));
    assert_eq!(list[0].location.as_deref(), Some(ts_dir.to_str().unwrap()));
    assert_eq!((list[1].oid, list[1].location.as_deref()), (None, None));
    assert!(
        list.iter().all(|t| t.size_kb.is_some()),
        "PROGRESS gives sizes"
    );
    let BackupEvent::Ended { end, timeline } = events.last().unwrap().clone() else {
        panic!("last event {:?}", events.last());
    };
    assert!(end > start && end <= lsn_of(&pg, "SELECT pg_current_wal_lsn()"));
    assert_eq!(timeline, TimelineId(1));
    let progress: Vec<u64> = events[2..events.len() - 1]
        .iter()
        .map(|e| match e {
            BackupEvent::Progress(n) => *n,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(progress.is_empty(), pg.version() < 15, "{progress:?}");
    assert!(progress.windows(2).all(|w| w[0] <= w[1]));

    // The archives, in the list's order, each a complete tar.
    let names: Vec<(&str, Option<&str>)> = archives
        .iter()
        .map(|(n, l, _)| (n.as_str(), l.as_deref()))
        .collect();
    let ts_name = format!("{ts_oid}.tar");
    assert_eq!(
        names,
        [
            (ts_name.as_str(), Some(ts_dir.to_str().unwrap())),
            ("base.tar", None)
        ]
    );
    let ts_files = tar_files(&archives[0].2);
    let base_files = tar_files(&archives[1].2);
    assert!(base_files.contains_key("backup_label"));
    assert!(base_files.contains_key("global/pg_control"));
    // WAL: the segments from the start to the end position.
    let wal = base_files
        .keys()
        .filter(|p| p.starts_with("pg_wal/0000"))
        .count();
    assert!(wal >= 1, "no WAL in the archive");

    // Every file of the manifest is in an archive at the manifest's size.
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert!(manifest["PostgreSQL-Backup-Manifest-Version"]
        .as_i64()
        .is_some());
    let files = manifest["Files"].as_array().unwrap();
    let ts_prefix = format!("pg_tblspc/{ts_oid}/");
    let mut in_ts = 0;
    for f in files {
        let path = f["Path"].as_str().unwrap();
        let size = f["Size"].as_u64().unwrap();
        assert_eq!(f["Checksum-Algorithm"], "SHA256");
        let got = match path.strip_prefix(&ts_prefix) {
            Some(rest) => {
                in_ts += 1;
                ts_files.get(rest)
            }
            None => base_files.get(path),
        };
        assert_eq!(got, Some(&size), "{path}");
    }
    assert!(in_ts > 0, "the tablespace's files are in the manifest");
    assert_eq!(files.len(), ts_files.len() + base_files.len() - wal);

    // The connection takes the next command.
    c.identify_system().await.unwrap();
}

#[tokio::test]
async fn a_server_error_is_returned_and_the_connection_stays_usable() {
    let pg = cluster(&[]);
    let mut c = connect(&pg).await;
    let opts = BaseBackupOptions {
        manifest_checksums: Some("NO_SUCH_ALGORITHM".into()),
        ..BaseBackupOptions::default()
    };
    let mut stream = c.base_backup(&opts).await.unwrap();
    let err = loop {
        match stream.next().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the backup succeeded"),
            Err(e) => break e,
        }
    };
    drop(stream);
    assert!(err.as_db().is_some(), "{err}");
    assert!(err.to_string().contains("NO_SUCH_ALGORITHM"), "{err}");
    c.identify_system().await.unwrap();

    // A stream dropped in the middle leaves the connection unusable, and says why.
    let mut stream = c.base_backup(&BaseBackupOptions::default()).await.unwrap();
    assert!(matches!(
        stream.next().await.unwrap(),
        Some(BackupEvent::Started { .. })
    ));
    drop(stream);
    let err = c.identify_system().await.unwrap_err();
    assert!(err.to_string().contains("abandoned"), "{err}");
}

/// Incremental backups (17+): the manifest of a full backup uploaded with UPLOAD_MANIFEST,
/// then BASE_BACKUP (INCREMENTAL) on the same connection sends `INCREMENTAL.` files for the
/// relations that changed. Before 17 both are refused without a round trip.
#[tokio::test]
async fn incremental_backups_on_17_and_later() {
    let v17 = testenv::PgBin::get().unwrap().version() >= 17;
    let pg = cluster(if v17 { &["summarize_wal = on"] } else { &[] });
    let mut c = connect(&pg).await;
    if pg.version() < 17 {
        let err = c.upload_manifest(b"{}").await.unwrap_err();
        assert!(err.to_string().contains("PostgreSQL 17"), "{err}");
        let opts = BaseBackupOptions {
            incremental: true,
            ..BaseBackupOptions::default()
        };
        let err = c.base_backup(&opts).await.unwrap_err();
        assert!(err.to_string().contains("PostgreSQL 17"), "{err}");
        c.identify_system().await.unwrap();
        return;
    }
    pg.sql("CREATE TABLE t AS SELECT g FROM generate_series(1, 10000) g")
        .unwrap();
    let full = BaseBackupOptions {
        checkpoint: CheckpointMode::Fast,
        ..BaseBackupOptions::default()
    };
    let (_, manifest) = collect(&mut c, &full).await;
    pg.sql("INSERT INTO t SELECT g FROM generate_series(1, 100) g")
        .unwrap();
    c.upload_manifest(&manifest).await.unwrap();
    let incremental = BaseBackupOptions {
        incremental: true,
        ..full
    };
    let (base, _) = collect(&mut c, &incremental).await;
    let files = tar_files(&base);
    assert!(
        files.keys().any(|p| p.contains("/INCREMENTAL.")),
        "no incremental files among {} files",
        files.len()
    );
}

/// The main archive and the manifest of one backup.
async fn collect(c: &mut pgwire_repl::Client, opts: &BaseBackupOptions) -> (Vec<u8>, Vec<u8>) {
    let mut stream = c.base_backup(opts).await.unwrap();
    let (mut base, mut manifest, mut in_manifest) = (Vec::new(), Vec::new(), false);
    while let Some(e) = stream.next().await.unwrap() {
        match e {
            BackupEvent::ArchiveData(d) => base.extend_from_slice(&d),
            BackupEvent::ManifestStart => in_manifest = true,
            BackupEvent::ManifestData(d) if in_manifest => manifest.extend_from_slice(&d),
            _ => {}
        }
    }
    (base, manifest)
}
