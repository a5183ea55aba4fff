//! The main job on a built-in lab: a throwaway PostgreSQL server (testenv) with a write load,
//! streamed through a physical slot for a while, with live progress and a summary.
//!
//! ```text
//! cargo run -p pgwire-repl --example demo [-- --duration SECS]
//! ```
//! Needs PostgreSQL server binaries (found as testenv finds them); no Docker, no setup.
//! The server and its files are gone when the demo ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgwire_repl::error::Report;
use pgwire_repl::{
    Client, Config, CreateSlotOptions, Lsn, StartReplication, StreamEvent, TimelineId,
};
use testenv::roles::REPL_SCRAM;
use testenv::{Cluster, Options};

fn duration_arg() -> Result<u64, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(10),
        [flag, n] if flag == "--duration" => {
            n.parse().map_err(|_| format!("invalid --duration \"{n}\""))
        }
        _ => Err("usage: demo [--duration SECS]".into()),
    }
}

fn main() {
    let secs = match duration_arg() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("demo: error: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("demo: starting a PostgreSQL server (testenv)...");
    let pg = match Cluster::start(Options {
        wal_segsize_mb: 16,
        ..Options::default()
    }) {
        Ok(pg) => Arc::new(pg),
        Err(e) => {
            eprintln!("demo: error: could not start PostgreSQL: {e}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "demo: PostgreSQL {} on port {}; write load running; streaming for {secs} s",
        pg.version(),
        pg.port()
    );
    // The write load: ~1 kB rows in 4 MB batches until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (pg, stop) = (pg.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = pg.generate_wal(4 << 20) {
                    eprintln!("demo: write load stopped: {e}");
                    return;
                }
            }
        })
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let conninfo = pg.conninfo(REPL_SCRAM.name, REPL_SCRAM.password);
    let res = rt.block_on(run(&conninfo, secs));
    stop.store(true, Ordering::Relaxed);
    let _ = load.join();
    if let Err(e) = res {
        eprintln!("demo: error: {}", Report(&e));
        std::process::exit(1);
    }
}

async fn run(conninfo: &str, secs: u64) -> pgwire_repl::Result<()> {
    let mut client = Client::connect(&Config::parse(conninfo)?).await?;
    let sys = client.identify_system().await?;
    let seg = client.wal_segment_size().await?;
    client
        .create_replication_slot(
            "demo",
            CreateSlotOptions {
                temporary: true,
                reserve_wal: true,
            },
        )
        .await?;
    // The slot reserved WAL from about here (a physical slot's consistent point is 0/0).
    let start = seg.round_down(sys.xlogpos);
    println!(
        "system {} timeline {} segment size {seg}; streaming from {start} through slot \"demo\"",
        sys.system_id, sys.timeline
    );
    let opts = StartReplication::new(start)
        .slot("demo")
        .timeline(sys.timeline);
    let mut stream = client.start_replication(opts).await?;
    let sender = stream.sender();
    let began = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let (mut bytes, mut messages, mut last_bytes) = (0u64, 0u64, 0u64);
    let (mut received, mut server_end, mut max_lag) = (start, start, 0u64);
    loop {
        tokio::select! {
            ev = stream.recv() => match ev? {
                StreamEvent::XLogData(x) => {
                    bytes += x.data.len() as u64;
                    messages += 1;
                    received = x.data_end().unwrap_or(x.wal_start);
                    server_end = server_end.max(x.wal_end);
                    sender.set_positions(received, received, Lsn::INVALID);
                }
                StreamEvent::Keepalive(k) => server_end = server_end.max(k.wal_end),
                StreamEvent::End(end) => {
                    println!("stream ended: {end:?}");
                    break;
                }
            },
            _ = tick.tick() => {
                let lag = server_end.distance_from(received).unwrap_or(0);
                max_lag = max_lag.max(lag);
                println!(
                    "{:>4.0} s  at {received}  {:>7.1} MB/s  lag {lag} bytes",
                    began.elapsed().as_secs_f64(),
                    (bytes - last_bytes) as f64 / 1e6
                );
                last_bytes = bytes;
            }
            _ = tokio::time::sleep_until(deadline) => {
                stream.stop().await?;
                break;
            }
        }
    }
    drop(stream);
    let secs = began.elapsed().as_secs_f64();
    let segments = seg.segment_of(received) - seg.segment_of(start);
    println!(
        "summary: {bytes} bytes in {messages} messages, {segments} segments crossed \
         (timeline {}), {:.1} MB/s, max lag {max_lag} bytes, last position {received}",
        TimelineId(sys.timeline.0),
        bytes as f64 / secs / 1e6
    );
    client.close().await
}
