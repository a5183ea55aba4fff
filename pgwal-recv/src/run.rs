//! The program: connect, answer --create-slot/--drop-slot, then receive WAL until stopped,
//! reconnecting every 5 seconds after a failure (unless `-n`).

use std::time::Duration;

use pgwire_repl::{Client, Config, CreateSlotOptions, Error};

use crate::cli::Options;
use crate::lock::lock_directory;
use crate::output::{error, info, report};
use crate::receive::{stream_log, Outcome, Settings, StopSignal};
use crate::walfile::FileSettings;

/// Runs the archiver and returns the exit code.
pub fn main(opts: Options) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error(format!("could not start the runtime: {e}"));
            return 1;
        }
    };
    rt.block_on(archive(opts))
}

/// The connection options: `-d` first, then `-h`, `-p`, `-U` over it, then the environment;
/// `application_name` defaults to the program name.
fn config(o: &Options) -> Result<Config, Error> {
    let mut c = Config::parse(o.dbname.as_deref().unwrap_or(""))?;
    if let Some(h) = &o.host {
        c.set("host", h)?;
    }
    if let Some(p) = &o.port {
        c.set("port", p)?;
    }
    if let Some(u) = &o.username {
        c.set("user", u)?;
    }
    c.fallback_application_name = Some(crate::output::PROGNAME.to_owned());
    c.apply_env(|k| std::env::var(k).ok())?;
    Ok(c)
}

/// Connects; asks for a password on the terminal when the server wants one we lack (unless
/// `-w`), as libpq programs do.
async fn connect(config: &mut Config, o: &Options) -> Result<Client, String> {
    if o.password_prompt && config.password.is_none() {
        config.password = crate::prompt::password("Password: ");
    }
    match Client::connect(config).await {
        Err(Error::Auth(msg)) if msg.contains("no password was supplied") && !o.no_password => {
            match crate::prompt::password("Password: ") {
                Some(pw) => {
                    config.password = Some(pw);
                    Client::connect(config).await.map_err(|e| report(&e))
                }
                None => Err(report(&Error::Auth(msg))),
            }
        }
        other => other.map_err(|e| report(&e)),
    }
}

fn watch_signals() -> StopSignal {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            crate::output::warning("could not install signal handlers");
            // Keep the sender: a dropped one would read as a stop request.
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        let _ = tx.send(true);
    });
    StopSignal::new(rx)
}

async fn archive(o: Options) -> i32 {
    let mut stop = watch_signals();
    let slot_only = o.create_slot || o.drop_slot;
    let _lock = match (&o.directory, slot_only) {
        (Some(dir), false) => match lock_directory(dir) {
            Ok(l) => Some(l),
            Err(e) => {
                error(e);
                return 1;
            }
        },
        _ => None,
    };
    let mut cfg = match config(&o) {
        Ok(c) => c,
        Err(e) => {
            error(report(&e));
            return 1;
        }
    };
    // The first connection is not retried: a typo should fail at once.
    let mut client = match connect(&mut cfg, &o).await {
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
    let Some(dir) = o.directory.as_deref() else {
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
    let settings = Settings {
        dir,
        slot: o.slot.as_deref(),
        endpos: o.endpos,
        status_interval: o.status_interval,
        synchronous: o.synchronous,
        verbose: o.verbose,
        files: FileSettings {
            compress: o.compress,
            sync: !o.no_sync,
            mode,
            zero_fill: o.synchronous,
            segment_size: seg.bytes(),
        },
        seg,
        system_id: sys.system_id,
    };
    let mut conn = Some(client);
    loop {
        if let Some(client) = conn.as_mut() {
            match stream_log(client, &settings, &mut stop).await {
                Ok(Outcome::Stopped) => return 0,
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
        conn = match connect(&mut cfg, &o).await {
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
