//! `pgwal-recv basebackup`: a base backup over the replication protocol, as pg_basebackup
//! takes it: `BASE_BACKUP` through the library, each archive extracted as it arrives
//! (plain) or written out (tar), the manifest written last, WAL fetched in the backup or
//! streamed beside it (`wal`), `-R`'s settings injected, everything fsynced at the end.
//!
//! A backup that fails removes what it wrote (pg_basebackup's cleanup: a directory it
//! created goes, one that existed empty is emptied; `-n` keeps it). The manifest is
//! written as `backup_manifest.tmp` and renamed only after everything else is on disk, so
//! a directory without `backup_manifest` is never a complete backup.

mod dirs;
mod sink;
mod wal;

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::SystemTime;

use pgwire_repl::{
    BackupEvent, BaseBackupOptions, CheckpointMode, Lsn, ManifestOption, TimelineId,
};
use tokio::sync::watch;

use crate::archive::compress::Method;
use crate::basebackup::extract::{sync_tree, ExtractOptions, Extractor};
use crate::basebackup::inject::{conninfo_string, recovery_settings, RecoveryInjector};
use crate::cli::{BasebackupOptions, CompressAt, Format, WalMethod};
use crate::output::{error, info, os_error, report};

use dirs::{empty_or_create, mapped, Cleanup};
use sink::{client_compression, wal_tar_name, Archive, Pipeline, Sink, TarOut};

/// Runs the backup; 0 when it is complete and on disk, 1 otherwise.
pub fn main(o: BasebackupOptions) -> i32 {
    match backup(&o, |msg| {
        crate::output::clear_status();
        error(msg);
    }) {
        Ok(()) => 0,
        Err(()) => 1,
    }
}

/// The backup for a caller in this process (testenv clones its standbys so): the error's
/// text instead of a printed line. It makes its own runtime, so it must not be called from
/// inside one (use a thread).
pub fn take(o: &BasebackupOptions) -> Result<(), String> {
    let mut why = String::new();
    backup(o, |msg| why = msg.to_owned()).map_err(|()| why)
}

/// Runs the backup; on failure `report`s why, then removes what it wrote.
fn backup(o: &BasebackupOptions, report: impl FnOnce(&str)) -> Result<(), ()> {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            report(&format!("could not start the runtime: {e}"));
            return Err(());
        }
    };
    let mut cleanup = Cleanup::default();
    let result = rt.block_on(run(o, &mut cleanup));
    rt.shutdown_background();
    result.map_err(|msg| {
        report(&msg);
        cleanup.run(o.no_clean);
    })
}

/// The largest manifest `-i` reads whole (as pg_basebackup does): 1 GiB, far above a real
/// one (a few hundred bytes a file).
const MAX_MANIFEST: u64 = 1 << 30;

/// A whole file, refused when longer than `cap`.
fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = File::open(path).map_err(|e| os_error(&e))?;
    let mut data = Vec::new();
    f.take(cap + 1)
        .read_to_end(&mut data)
        .map_err(|e| os_error(&e))?;
    if data.len() as u64 > cap {
        return Err(format!("larger than {cap} bytes"));
    }
    Ok(data)
}

fn library_options(o: &BasebackupOptions) -> BaseBackupOptions {
    let compress = o.compress.method != Method::None && o.compress_at == CompressAt::Server;
    BaseBackupOptions {
        label: o.label.clone(),
        progress: o.progress,
        checkpoint: if o.fast_checkpoint {
            CheckpointMode::Fast
        } else {
            CheckpointMode::Spread
        },
        wal: o.wal_method == WalMethod::Fetch,
        wait: true,
        max_rate: o.max_rate,
        tablespace_map: o.format == Format::Tar,
        verify_checksums: !o.no_verify_checksums,
        manifest: if o.no_manifest {
            ManifestOption::No
        } else if o.manifest_force_encode {
            ManifestOption::ForceEncode
        } else {
            ManifestOption::Yes
        },
        manifest_checksums: o.manifest_checksums.clone(),
        target: None,
        compression: compress.then(|| o.compress.method.name().to_owned()),
        compression_detail: compress
            .then_some(o.compress.level)
            .flatten()
            .map(|l| format!("level={l}")),
        incremental: false,
    }
}

/// `primary_conninfo` for `-R`: the connection's settings that libpq's `PQconninfo`
/// reports and pg_basebackup keeps (no `dbname`, `replication` or
/// `fallback_application_name`).
fn primary_conninfo(config: &pgwire_repl::Config) -> Result<String, String> {
    let p = config.resolve(true).map_err(|e| report(&e))?;
    let host = p.hosts.first().ok_or("no host to connect to")?;
    let mut pairs: Vec<(&str, String)> = vec![("user", p.user.clone())];
    if let Some(pw) = &config.password {
        pairs.push(("password", pw.clone()));
    }
    pairs.push(("host", host.host.to_string()));
    pairs.push(("port", host.port.to_string()));
    if let Some(m) = config.sslmode {
        pairs.push(("sslmode", m.as_str().to_owned()));
    }
    for (k, v) in [
        ("sslrootcert", &config.sslrootcert),
        ("sslcert", &config.sslcert),
        ("sslkey", &config.sslkey),
        ("application_name", &config.application_name),
    ] {
        if let Some(v) = v {
            pairs.push((k, v.clone()));
        }
    }
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Ok(conninfo_string(&refs))
}

async fn run(o: &BasebackupOptions, cleanup: &mut Cleanup) -> Result<(), String> {
    let mut config = crate::connect::config(&o.conn).map_err(|e| report(&e))?;
    let mut client = crate::connect::connect(&mut config, &o.conn, true).await?;
    let version = client.server_version();
    if !version.is_some_and(|v| v.at_least(13)) {
        return Err(format!(
            "incompatible server version {}: PostgreSQL 13 or later is required",
            version.map_or_else(|| "(unknown)".to_owned(), |v| v.to_string())
        ));
    }
    if o.compress_at == CompressAt::Server
        && o.compress.method != Method::None
        && !version.is_some_and(|v| v.at_least(15))
    {
        return Err("server-side compression requires PostgreSQL 15 or later".into());
    }
    let seg = if o.wal_method == WalMethod::Stream {
        Some(client.wal_segment_size().await.map_err(|e| report(&e))?)
    } else {
        None
    };
    let settings = if o.write_recovery_conf {
        Some(recovery_settings(
            &primary_conninfo(&config)?,
            o.slot.as_deref(),
        ))
    } else {
        None
    };

    empty_or_create(&o.directory, cleanup)?;
    if o.format == Format::Plain && o.wal_method == WalMethod::Stream {
        let pg_wal = o.directory.join("pg_wal");
        match &o.waldir {
            Some(waldir) => {
                empty_or_create(waldir, cleanup)?;
                std::os::unix::fs::symlink(waldir, &pg_wal).map_err(|e| {
                    format!(
                        "could not create symbolic link \"{}\": {}",
                        pg_wal.display(),
                        os_error(&e)
                    )
                })?;
            }
            None => {
                use std::os::unix::fs::DirBuilderExt;
                fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&pg_wal)
                    .map_err(|e| {
                        format!(
                            "could not create directory \"{}\": {}",
                            pg_wal.display(),
                            os_error(&e)
                        )
                    })?;
            }
        }
    }

    let mut opts = library_options(o);
    if let Some(path) = &o.incremental {
        let manifest = read_capped(path, MAX_MANIFEST)
            .map_err(|e| format!("could not read file \"{}\": {e}", path.display()))?;
        if o.verbose {
            info("uploading the previous backup's manifest");
        }
        client
            .upload_manifest(&manifest)
            .await
            .map_err(|e| format!("could not upload manifest: {}", report(&e)))?;
        opts.incremental = true;
    }
    if o.verbose {
        info("initiating base backup, waiting for checkpoint to complete");
    }
    let mut backup = client
        .base_backup(&opts)
        .await
        .map_err(|e| format!("could not initiate base backup: {}", report(&e)))?;

    let (end_tx, end_rx) = watch::channel(None::<Lsn>);
    let mut end: Option<(Lsn, TimelineId)> = None;
    let mut current: Option<Archive> = None;
    let mut written_files: Vec<File> = Vec::new();
    let mut manifest: Option<BufWriter<File>> = None;
    let manifest_tmp = o.directory.join("backup_manifest.tmp");
    let mut total_kb: u64 = 0;
    let mut done: u64 = 0;
    let mut server_done: u64 = 0;
    let mut archives_seen = 0usize;
    let mut archives_total = 0usize;
    let server_compressed = opts.compression.is_some();
    let mut last_progress = std::time::Instant::now();

    loop {
        let event = backup
            .next()
            .await
            .map_err(|e| format!("could not get the base backup: {}", report(&e)))?;
        let Some(event) = event else { break };
        match event {
            BackupEvent::Started { start, timeline } => {
                if o.verbose {
                    info("checkpoint completed");
                    info(format!(
                        "write-ahead log start point: {start} on timeline {}",
                        timeline.0
                    ));
                }
                if let Some(seg) = seg {
                    if o.verbose {
                        info("starting background WAL receiver");
                    }
                    let w = wal::WalStream {
                        start,
                        timeline,
                        seg,
                        slot: match (&o.slot, o.no_slot) {
                            (Some(name), _) => wal::WalSlot::Named {
                                name: name.clone(),
                                create: o.create_slot,
                            },
                            (None, true) => wal::WalSlot::None,
                            (None, false) => wal::WalSlot::Temporary,
                        },
                        target: match o.format {
                            Format::Plain => wal::WalTarget::Dir(o.directory.join("pg_wal")),
                            Format::Tar => wal::WalTarget::Tar(
                                o.directory.join(wal_tar_name(o)),
                                client_compression(o),
                            ),
                        },
                        verbose: o.verbose,
                    };
                    let spawned = wal::spawn(config.clone(), o.conn.clone(), w, end_rx.clone())?;
                    cleanup.wal_receiver = Some(spawned);
                }
            }
            BackupEvent::Tablespaces(list) => {
                archives_total = list.len();
                total_kb = list.iter().filter_map(|t| t.size_kb).sum();
                if o.format == Format::Plain {
                    for t in &list {
                        if let Some(loc) = &t.location {
                            empty_or_create(&mapped(o, loc), cleanup)?;
                        }
                    }
                }
            }
            BackupEvent::ArchiveStart { name, location } => {
                if let Some(a) = current.take() {
                    written_files.extend(a.finish()?);
                }
                archives_seen += 1;
                let is_base = location.is_none();
                let sink = match o.format {
                    Format::Plain => {
                        let root = match &location {
                            Some(loc) => mapped(o, loc),
                            None => o.directory.clone(),
                        };
                        Sink::Extract(Box::new(Extractor::new(
                            root,
                            ExtractOptions {
                                tablespace_map: o.tablespace_mapping.clone(),
                            },
                        )))
                    }
                    Format::Tar => {
                        let spec = client_compression(o);
                        let path = o.directory.join(format!("{name}{}", spec.method.suffix()));
                        Sink::Tar(TarOut::create(&path, spec).map_err(|e| {
                            format!(
                                "could not create file \"{}\": {}",
                                path.display(),
                                os_error(&e)
                            )
                        })?)
                    }
                };
                // The plain format of a compressed backup is decompressed first; a
                // compressed tar is written as it comes, so -R cannot reach into it.
                let decompress = if server_compressed && o.format == Format::Plain {
                    o.compress.method
                } else {
                    Method::None
                };
                let inject = match (&settings, is_base) {
                    (Some(_), true) if server_compressed && o.format == Format::Tar => {
                        return Err(
                            "cannot write recovery settings into a tar file compressed by the \
                             server: use client-side compression with -R"
                                .into(),
                        )
                    }
                    (Some(s), true) => Some(RecoveryInjector::new(s, SystemTime::now())),
                    _ => None,
                };
                let pipe = Pipeline { name, sink, inject };
                current = Some(Archive::new(pipe, decompress)?);
            }
            BackupEvent::ArchiveData(data) => {
                let a = current
                    .as_mut()
                    .ok_or("the server sent data outside an archive")?;
                a.feed(&data)?;
                done += data.len() as u64;
            }
            BackupEvent::ManifestStart => {
                if let Some(a) = current.take() {
                    written_files.extend(a.finish()?);
                }
                let f = File::create(&manifest_tmp).map_err(|e| {
                    format!(
                        "could not create file \"{}\": {}",
                        manifest_tmp.display(),
                        os_error(&e)
                    )
                })?;
                manifest = Some(BufWriter::new(f));
            }
            BackupEvent::ManifestData(data) => {
                manifest
                    .as_mut()
                    .ok_or("the server sent manifest data before the manifest")?
                    .write_all(&data)
                    .map_err(|e| {
                        format!("could not write the backup manifest: {}", os_error(&e))
                    })?;
            }
            BackupEvent::Progress(n) => server_done = n,
            BackupEvent::Ended { end: e, timeline } => {
                if o.verbose {
                    crate::output::clear_status();
                    info(format!("write-ahead log end point: {e}"));
                }
                end = Some((e, timeline));
                let _ = end_tx.send(Some(e));
            }
        }
        if o.progress && last_progress.elapsed().as_millis() >= 1000 {
            last_progress = std::time::Instant::now();
            let kb = if server_compressed { server_done } else { done } / 1024;
            show_progress(
                kb,
                total_kb,
                archives_seen.saturating_sub(1),
                archives_total,
            );
        }
    }
    drop(backup);
    if let Some(a) = current.take() {
        written_files.extend(a.finish()?);
    }
    if o.progress {
        let kb = if server_compressed { server_done } else { done } / 1024;
        show_progress(kb, total_kb.max(kb), archives_total, archives_total);
        crate::output::clear_status();
        eprintln!();
    }
    let Some((end_lsn, _)) = end else {
        return Err("the server did not send the backup's end position".into());
    };
    drop(end_tx);
    if let Some(handle) = cleanup.wal_receiver.take() {
        if o.verbose {
            info("waiting for background process to finish streaming ...");
        }
        handle
            .join()
            .map_err(|_| "the WAL receiver panicked".to_owned())??;
    }
    let _ = end_lsn;
    let manifest_file = match manifest {
        Some(w) => Some(w.into_inner().map_err(|e| {
            format!(
                "could not write the backup manifest: {}",
                os_error(e.error())
            )
        })?),
        None => None,
    };
    if !o.no_sync {
        if o.verbose {
            info("syncing data to disk ...");
        }
        let sync_err = |e: std::io::Error| format!("could not fsync: {}", os_error(&e));
        match o.format {
            Format::Plain => sync_tree(&o.directory).map_err(sync_err)?,
            Format::Tar => {
                for f in &written_files {
                    f.sync_all().map_err(sync_err)?;
                }
                if o.wal_method == WalMethod::Stream {
                    File::open(o.directory.join(wal_tar_name(o)))
                        .and_then(|f| f.sync_all())
                        .map_err(sync_err)?;
                }
            }
        }
        if let Some(f) = &manifest_file {
            f.sync_all().map_err(sync_err)?;
        }
        // Tablespaces outside the data directory (plain format: sync_tree follows the
        // links in pg_tblspc).
    }
    if manifest_file.is_some() {
        if o.verbose {
            info("renaming backup_manifest.tmp to backup_manifest");
        }
        let dest = o.directory.join("backup_manifest");
        fs::rename(&manifest_tmp, &dest).map_err(|e| {
            format!(
                "could not rename file \"{}\" to \"{}\": {}",
                manifest_tmp.display(),
                dest.display(),
                os_error(&e)
            )
        })?;
        if !o.no_sync {
            File::open(&o.directory)
                .and_then(|d| d.sync_all())
                .map_err(|e| format!("could not fsync: {}", os_error(&e)))?;
        }
    }
    let _ = client.close().await;
    if o.verbose {
        info("base backup completed");
    }
    Ok(())
}

fn show_progress(done_kb: u64, total_kb: u64, archives_done: usize, archives: usize) {
    let total = total_kb.max(done_kb);
    let pct = done_kb
        .saturating_mul(100)
        .checked_div(total)
        .unwrap_or(100);
    crate::output::status(format!(
        "{done_kb}/{total} kB ({pct}%), {archives_done}/{archives} tablespace{}",
        if archives == 1 { "" } else { "s" }
    ));
}
