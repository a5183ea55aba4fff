//! The archiver (pgwal-recv with no subcommand, as pg_receivewal): connect, answer
//! --create-slot/--drop-slot, then receive WAL into the archive until stopped, reconnecting
//! every 5 seconds after a failure (unless `-n`).
//!
//! With an object store (`-D URL --spool DIR`), WAL is received into the spool, which the
//! uploader ([`crate::upload`]) empties into the store; one probe request first tells a
//! missing bucket or a refused key (exit 1) from a store that does not answer yet (a
//! warning), and at the end what is complete is uploaded before the program exits.

use std::time::Duration;

use pgwire_repl::{Client, CreateSlotOptions};

use crate::archive::{Archive, FileSettings};
use crate::cli::Options;
use crate::connect::{block_on, config, connect};
use crate::observe::monitor::Monitor;
use crate::output::{error, info, report, warning};
use crate::receive::{stream_log, Settings, Upload};
use crate::stream::StopSignal;
use crate::upload::{UploadQueue, UploadSettings};

/// At the end, uploads are waited for while the store confirms one at least this often.
const DRAIN_PATIENCE: Duration = Duration::from_secs(30);

/// Runs the archiver and returns the exit code.
pub fn main(opts: Options) -> i32 {
    block_on(archive(opts))
}

async fn archive(o: Options) -> i32 {
    let mut stop = StopSignal::watch();
    let monitor = Monitor::default();
    let slot_only = o.create_slot || o.drop_slot;
    // With an object store, WAL is received into the spool and uploaded from there.
    let store = match (&o.directory, &o.spool, slot_only) {
        (Some(url), Some(_), false) => match Archive::open(url) {
            Ok(a) => Some(a),
            Err(e) => {
                error(e);
                return 1;
            }
        },
        _ => None,
    };
    let archive = match (&store, &o.spool) {
        (Some(_), Some(spool)) => Some(Archive::dir(spool)),
        _ => o.directory.as_deref().map(Archive::dir),
    };
    let _lock = match (&archive, slot_only) {
        (Some(archive), false) => match archive.lock() {
            Ok(l) => Some(l),
            Err(e) => {
                error(e);
                return 1;
            }
        },
        _ => None,
    };
    let conn_opts = o.conn();
    let mut cfg = match config(&conn_opts) {
        Ok(c) => c,
        Err(e) => {
            error(report(&e));
            return 1;
        }
    };
    // The first connection is not retried: a typo should fail at once.
    let mut client = match connect(&mut cfg, &conn_opts, true).await {
        Ok(c) => c,
        Err(e) => {
            error(e);
            return 1;
        }
    };
    let sys = match client.identify_system().await {
        Ok(s) => s,
        Err(e) => {
            error(format!(
                "could not send replication command \"IDENTIFY_SYSTEM\": {}",
                report(&e)
            ));
            return 1;
        }
    };
    if sys.dbname.is_some() {
        error(format!(
            "replication connection using slot \"{}\" is unexpectedly database specific",
            o.slot.as_deref().unwrap_or("")
        ));
        return 1;
    }
    if slot_only {
        return slot_command(&mut client, &o).await;
    }
    let Some(archive) = archive.as_ref() else {
        error("no target directory specified");
        return 1;
    };
    let mode = match client.show("data_directory_mode").await.as_deref() {
        Ok("0750") => 0o640,
        Ok(_) => 0o600,
        Err(e) => {
            error(format!(
                "could not send replication command \"SHOW data_directory_mode\": {}",
                report(e)
            ));
            return 1;
        }
    };
    let seg = match client.wal_segment_size().await {
        Ok(s) => s,
        Err(e) => {
            error(report(&e));
            return 1;
        }
    };
    let mut settings = Settings {
        archive,
        slot: o.slot.as_deref(),
        endpos: o.endpos,
        status_interval: o.status_interval,
        synchronous: o.synchronous,
        verbose: o.verbose,
        verify: o.verify,
        files: FileSettings {
            compress: o.compress,
            sync: !o.no_sync,
            mode,
            zero_fill: o.synchronous,
            segment_size: seg.bytes(),
        },
        seg,
        system_id: sys.system_id,
        monitor: monitor.clone(),
        upload: None,
    };
    if let (Some(store), Some(spool)) = (&store, &o.spool) {
        let Some(objstore) = store.objstore() else {
            error("internal error: the archive URL names no object store");
            return 1;
        };
        // A bucket that is not there or a key it refuses ends it now; a store that does not
        // answer yet does not (uploads wait for it, the slot holding the WAL).
        match objstore.probe().await {
            Ok(()) => {}
            Err(Ok(e)) => {
                error(format!(
                    "could not use archive \"{}\": {e}",
                    store.location().display()
                ));
                return 1;
            }
            Err(Err(e)) => warning(format!(
                "archive \"{}\" does not answer: {e}; uploads wait for it",
                store.location().display()
            )),
        }
        let settings_up = UploadSettings {
            jobs: o.upload_jobs,
            verbose: o.verbose,
            partials: o.upload_partial.is_some(),
            monitor: monitor.clone(),
        };
        let queue = match UploadQueue::start(spool, objstore.clone(), seg, settings_up) {
            Ok(q) => q,
            Err(e) => {
                error(e);
                return 1;
            }
        };
        settings.upload = Some(Upload {
            store,
            queue,
            spool_max: o.spool_max,
            partial_every: o.upload_partial,
            stop: stop.clone(),
        });
    }
    if let Some(addr) = o.metrics_listen {
        match crate::observe::metrics::start(addr, monitor.clone()).await {
            Ok(bound) if o.verbose => info(format!("serving metrics at http://{bound}/metrics")),
            Ok(_) => {}
            Err(e) => {
                error(e);
                return 1;
            }
        }
    }
    // Aborted when this function returns, so it never outlives the archive.
    let progress = o.verbose.then(|| {
        AbortOnDrop(tokio::spawn(crate::observe::progress::report(
            monitor.clone(),
        )))
    });
    let code = receive_loop(&o, conn_opts, cfg, client, &settings, &mut stop).await;
    if let Some(u) = &settings.upload {
        // What is complete goes to the store before the program ends, as long as the store
        // takes it; what is left, the next run uploads.
        u.queue.drain(DRAIN_PATIENCE).await;
        if let Some(why) = u.queue.failed() {
            if code == 0 {
                error(why);
                return 1;
            }
        }
    }
    drop(progress);
    crate::output::clear_status();
    code
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Streams, and after a failure reconnects every 5 seconds (unless `-n`).
async fn receive_loop(
    o: &Options,
    conn_opts: crate::cli::ConnOptions,
    mut cfg: pgwire_repl::Config,
    client: Client,
    settings: &Settings<'_>,
    stop: &mut StopSignal,
) -> i32 {
    let monitor = &settings.monitor;
    let mut conn = Some(client);
    loop {
        if let Some(client) = conn.as_mut() {
            match stream_log(client, settings, stop).await {
                Ok(()) => return 0,
                Err(e) => {
                    error(&e.message);
                    if e.fatal {
                        return 1;
                    }
                }
            }
        }
        // Closed now, not after the back-off: its walsender would keep the slot active.
        drop(conn.take());
        if stop.requested() {
            return 0;
        }
        if o.no_loop {
            error("disconnected");
            return 1;
        }
        info("disconnected; waiting 5 seconds to try again");
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = stop.wait() => return 0,
        }
        monitor.reconnecting();
        conn = match connect(&mut cfg, &conn_opts, true).await {
            Ok(c) => Some(c),
            Err(e) => {
                error(e);
                None
            }
        };
    }
}

/// `--create-slot` / `--drop-slot`, then exit.
async fn slot_command(client: &mut Client, o: &Options) -> i32 {
    let Some(slot) = o.slot.as_deref() else {
        error("--create-slot needs a slot to be specified using --slot");
        return 1;
    };
    if o.drop_slot {
        if o.verbose {
            info(format!("dropping replication slot \"{slot}\""));
        }
        return match client.drop_replication_slot(slot, false).await {
            Ok(()) => 0,
            Err(e) => {
                error(format!(
                    "could not send replication command \"DROP_REPLICATION_SLOT \"{slot}\"\": {}",
                    report(&e)
                ));
                1
            }
        };
    }
    if o.verbose {
        info(format!("creating replication slot \"{slot}\""));
    }
    match client
        .create_replication_slot(slot, CreateSlotOptions::default())
        .await
    {
        Ok(_) => 0,
        Err(e) if o.if_not_exists && e.code() == Some("42710") => {
            if o.verbose {
                info(format!("replication slot \"{slot}\" already exists"));
            }
            0
        }
        Err(e) => {
            error(format!(
                "could not send replication command \"CREATE_REPLICATION_SLOT \"{slot}\" PHYSICAL\": {}",
                report(&e)
            ));
            1
        }
    }
}
