//! Streams WAL for a while and prints how much arrived.
//!
//! ```text
//! cargo run -p pgwire-repl --example stream -- "<conninfo>" [SECONDS] [--slot NAME] [--start X/Y] [--endpos X/Y]
//! ```
//! Starts at the server's current position (or `--start`), reports what it received as
//! written and flushed (so a slot advances), and stops after SECONDS (default 10) or once
//! `--endpos` is reached. Prints `bytes=<n> messages=<n> last_lsn=<X/Y>`.

use std::time::{Duration, Instant};

use pgwire_repl::error::Report;
use pgwire_repl::{Client, Config, Lsn, StartReplication, StreamEvent};

struct Args {
    conninfo: String,
    seconds: u64,
    slot: Option<String>,
    start: Option<Lsn>,
    endpos: Option<Lsn>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        conninfo: String::new(),
        seconds: 10,
        slot: None,
        start: None,
        endpos: None,
    };
    let mut positional = 0;
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--slot" => a.slot = Some(value("--slot")?),
            "--start" => a.start = Some(value("--start")?.parse().map_err(|e| format!("{e}"))?),
            "--endpos" => a.endpos = Some(value("--endpos")?.parse().map_err(|e| format!("{e}"))?),
            _ if positional == 0 => {
                a.conninfo = arg;
                positional += 1;
            }
            _ if positional == 1 => {
                a.seconds = arg
                    .parse()
                    .map_err(|_| format!("invalid SECONDS \"{arg}\""))?;
                positional += 1;
            }
            _ => return Err(format!("unexpected argument \"{arg}\"")),
        }
    }
    Ok(a)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("stream: error: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = run(args).await {
        eprintln!("stream: error: {}", Report(&e));
        std::process::exit(1);
    }
}

async fn run(args: Args) -> pgwire_repl::Result<()> {
    let config = Config::from_env_and(&args.conninfo)?;
    let mut client = Client::connect(&config).await?;
    let sys = client.identify_system().await?;
    let start = args.start.unwrap_or(sys.xlogpos);
    let mut opts = StartReplication::new(start).timeline(sys.timeline);
    opts.slot = args.slot.clone();
    let (bytes, messages, last, secs) = receive(&mut client, opts, &args).await?;
    println!(
        "bytes={bytes} messages={messages} last_lsn={last} seconds={secs:.2} mb_per_s={:.1}",
        bytes as f64 / secs.max(1e-9) / 1e6
    );
    client.close().await
}

async fn receive(
    client: &mut Client,
    opts: StartReplication,
    args: &Args,
) -> pgwire_repl::Result<(u64, u64, Lsn, f64)> {
    let mut stream = client.start_replication(opts).await?;
    let sender = stream.sender();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.seconds);
    let began = Instant::now();
    let (mut bytes, mut messages) = (0u64, 0u64);
    let end = loop {
        let ev = tokio::select! {
            ev = stream.recv() => ev?,
            _ = tokio::time::sleep_until(deadline) => break stream.stop().await?,
        };
        match ev {
            StreamEvent::XLogData(x) => {
                bytes += x.data.len() as u64;
                messages += 1;
                let end = x.data_end().unwrap_or(x.wal_start);
                sender.set_positions(end, end, Lsn::INVALID);
                if args.endpos.is_some_and(|e| end >= e) {
                    break stream.stop().await?;
                }
            }
            StreamEvent::Keepalive(_) => {}
            StreamEvent::End(end) => break end,
        }
    };
    let secs = began.elapsed().as_secs_f64();
    let last = match end {
        pgwire_repl::StreamEnd::Stopped { last_received }
        | pgwire_repl::StreamEnd::ServerEnded { last_received } => last_received,
        pgwire_repl::StreamEnd::EndOfTimeline { next_start, .. } => next_start,
    };
    Ok((bytes, messages, last, secs))
}
