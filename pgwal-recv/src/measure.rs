//! `pgwal-recv measure`: stream WAL without writing it, and report how fast it flows and how
//! far behind the server the stream is — the protocol-level benchmark of a walsender, and
//! the ceiling for the archiver on the same WAL.
//!
//! It starts at the slot's restart_lsn (`-S`, PostgreSQL 15+) or at the start of the
//! server's current segment, reports what it received as written and nothing as flushed
//! (so a slot is never advanced and a run can be repeated), follows timeline switches, and
//! stops at `-E` (once WAL up to it has arrived), after `--duration`, on SIGINT/SIGTERM, or
//! when the server ends the stream. `bytes` is `end_lsn − start_lsn`, with `end_lsn` capped
//! at `-E`; lag percentiles are taken after every message.

use std::time::{Duration, Instant};

use pgwire_repl::{
    Client, FeedbackConfig, Lsn, StartReplication, StreamEnd, StreamEvent, TimelineId,
};

use crate::cli::MeasureOptions;
use crate::connect::{block_on, config, connect, watch_signals};
use crate::histogram::Histogram;
use crate::monitor::Monitor;
use crate::output::{bytes, error, info, report, PROGNAME};

/// Runs `measure` and returns the exit code.
pub fn main(o: MeasureOptions) -> i32 {
    block_on(measure(o))
}

/// What a run measured.
#[derive(Debug)]
struct Summary {
    start: Lsn,
    end: Lsn,
    timeline: TimelineId,
    seconds: f64,
    messages: u64,
    keepalives: u64,
    lag_bytes: Histogram,
    lag_micros: Histogram,
}

impl Summary {
    fn bytes(&self) -> u64 {
        self.end.0.saturating_sub(self.start.0)
    }

    fn mb_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.bytes() as f64 / self.seconds / 1e6
        } else {
            0.0
        }
    }

    fn human(&self) -> Vec<String> {
        let pct = |h: &Histogram, f: &dyn Fn(u64) -> String| {
            format!(
                "p50 {}, p99 {}, max {}",
                f(h.quantile(0.5)),
                f(h.quantile(0.99)),
                f(h.max())
            )
        };
        let secs = |us: u64| format!("{:.3} s", us as f64 / 1e6);
        vec![
            format!(
                "received {} to {} (timeline {}): {} in {:.3} s, {:.1} MB/s",
                self.start,
                self.end,
                self.timeline,
                bytes(self.bytes()),
                self.seconds,
                self.mb_per_s()
            ),
            format!(
                "{} XLogData messages, {} keepalives",
                self.messages, self.keepalives
            ),
            format!("lag in bytes: {}", pct(&self.lag_bytes, &bytes)),
            format!("lag in time: {}", pct(&self.lag_micros, &secs)),
        ]
    }

    fn json(&self) -> String {
        let pct = |h: &Histogram, f: &dyn Fn(u64) -> String| {
            format!(
                "{{\"p50\":{},\"p99\":{},\"max\":{}}}",
                f(h.quantile(0.5)),
                f(h.quantile(0.99)),
                f(h.max())
            )
        };
        format!(
            "{{\"start_lsn\":\"{}\",\"end_lsn\":\"{}\",\"timeline\":{},\"bytes\":{},\"seconds\":{:.6},\"mb_per_s\":{:.3},\"messages\":{},\"keepalives\":{},\"lag_bytes\":{},\"lag_seconds\":{}}}",
            self.start,
            self.end,
            self.timeline.0,
            self.bytes(),
            self.seconds,
            self.mb_per_s(),
            self.messages,
            self.keepalives,
            pct(&self.lag_bytes, &|v| v.to_string()),
            pct(&self.lag_micros, &|us| format!("{:.6}", us as f64 / 1e6)),
        )
    }
}

async fn measure(o: MeasureOptions) -> i32 {
    let mut stop = watch_signals();
    let monitor = Monitor::default();
    let mut cfg = match config(&o.conn) {
        Ok(c) => c,
        Err(e) => {
            error(report(&e));
            return 1;
        }
    };
    if let Some(addr) = o.metrics_listen {
        match crate::metrics::start(addr, monitor.clone()).await {
            Ok(bound) => info(format!("serving metrics at http://{bound}/metrics")),
            Err(e) => {
                error(e);
                return 1;
            }
        }
    }
    let mut client = match connect(&mut cfg, &o.conn, true).await {
        Ok(c) => c,
        Err(e) => {
            error(e);
            return 1;
        }
    };
    let (start, tli) = match start_position(&mut client, &o).await {
        Ok(s) => s,
        Err(e) => {
            error(e);
            return 1;
        }
    };
    if let Some(end) = o.endpos.filter(|e| *e <= start) {
        error(format!(
            "end position {end} is not after the start position {start}"
        ));
        return 1;
    }
    let mut summary = Summary {
        start,
        end: start,
        timeline: tli,
        seconds: 0.0,
        messages: 0,
        keepalives: 0,
        lag_bytes: Histogram::default(),
        lag_micros: Histogram::default(),
    };
    let result = run(&mut client, &o, &monitor, &mut stop, &mut summary).await;
    let _ = client.close().await;
    let lines = summary.human();
    if o.json {
        for l in lines {
            info(l);
        }
        println!("{}", summary.json());
    } else {
        for l in lines {
            println!("{PROGNAME}: {l}");
        }
    }
    match result {
        Ok(()) => 0,
        Err(e) => {
            error(e);
            1
        }
    }
}

/// The slot's restart_lsn (15+), else the server's current position; a segment start.
async fn start_position(
    client: &mut Client,
    o: &MeasureOptions,
) -> Result<(Lsn, TimelineId), String> {
    let sys = client.identify_system().await.map_err(|e| {
        format!(
            "could not send replication command \"IDENTIFY_SYSTEM\": {}",
            report(&e)
        )
    })?;
    let seg = client.wal_segment_size().await.map_err(|e| report(&e))?;
    let mut at = (sys.xlogpos, sys.timeline);
    if let Some(slot) = o.slot.as_deref() {
        if client.server_version() >= 150000 {
            let read = client.read_replication_slot(slot).await.map_err(|e| {
                format!(
                    "could not send replication command \"READ_REPLICATION_SLOT {slot}\": {}",
                    report(&e)
                )
            })?;
            match (
                read.slot_type.as_deref(),
                read.restart_lsn,
                read.restart_tli,
            ) {
                (None, _, _) => return Err(format!("replication slot \"{slot}\" does not exist")),
                (Some("physical"), Some(lsn), Some(t)) => at = (lsn, t),
                (Some("physical"), _, _) => {
                    info(format!(
                        "replication slot \"{slot}\" has no restart_lsn: starting at the current position"
                    ));
                }
                (Some(other), _, _) => {
                    return Err(format!(
                        "expected a physical replication slot, got type \"{other}\" instead"
                    ))
                }
            }
        } else {
            info(format!(
                "server {} has no READ_REPLICATION_SLOT: starting at the current position",
                pgwire_repl::protocol::command::version_text(client.server_version())
            ));
        }
    }
    Ok((seg.round_down(at.0), at.1))
}

/// Why the stream loop is ending.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stopping {
    No,
    /// Endpos reached, duration over, or a signal: the time it happened.
    AtTime(Instant),
}

async fn run(
    client: &mut Client,
    o: &MeasureOptions,
    monitor: &Monitor,
    stop: &mut crate::receive::StopSignal,
    sum: &mut Summary,
) -> Result<(), String> {
    let began = Instant::now();
    let deadline = o
        .duration
        .map(|d| tokio::time::Instant::from_std(began + d));
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::from_std(began + Duration::from_secs(1)),
        Duration::from_secs(1),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pos = sum.start;
    let mut tli = sum.timeline;
    let mut stopping = Stopping::No;
    let feedback = FeedbackConfig {
        status_interval: o.status_interval,
        receive_timeout: Some(Duration::from_secs(60)),
        reply_to_keepalives: true,
    };
    let result = 'timelines: loop {
        let mut opts = StartReplication::new(pos).timeline(tli).feedback(feedback);
        opts.slot = o.slot.clone();
        monitor.streaming(pos, tli);
        sum.timeline = tli;
        let mut stream = match client.start_replication(opts).await {
            Ok(s) => s,
            Err(e) => {
                break Err(format!(
                    "could not send replication command \"START_REPLICATION\": {}",
                    report(&e)
                ))
            }
        };
        let sender = stream.sender();
        loop {
            let ev = tokio::select! {
                biased;
                _ = stop.wait(), if stopping == Stopping::No => None,
                _ = sleep_until(deadline), if stopping == Stopping::No => None,
                _ = tick.tick() => {
                    let line = crate::progress::line(&monitor.snapshot());
                    if o.json { info(line) } else { println!("{PROGNAME}: {line}") }
                    continue;
                }
                ev = stream.recv() => Some(ev),
            };
            let ev = match ev {
                None => {
                    stopping = Stopping::AtTime(Instant::now());
                    if let Err(e) = stream.request_stop().await {
                        break 'timelines Err(report(&e));
                    }
                    continue;
                }
                Some(Ok(ev)) => ev,
                Some(Err(e)) => {
                    break 'timelines Err(format!(
                        "unexpected termination of replication stream: {}",
                        report(&e)
                    ))
                }
            };
            match ev {
                StreamEvent::XLogData(x) => {
                    if stopping != Stopping::No {
                        continue;
                    }
                    monitor.xlogdata(&x);
                    sum.messages += 1;
                    let end = x.data_end().unwrap_or(x.wal_start);
                    sum.end = sum.end.max(end);
                    sender.set_positions(sum.end, Lsn::INVALID, Lsn::INVALID);
                    record_lag(monitor, sum);
                    if o.endpos.is_some_and(|e| end >= e) {
                        stopping = Stopping::AtTime(Instant::now());
                        if let Err(e) = stream.request_stop().await {
                            break 'timelines Err(report(&e));
                        }
                    }
                }
                StreamEvent::Keepalive(k) => {
                    if stopping == Stopping::No {
                        monitor.keepalive(&k);
                        sum.keepalives += 1;
                        record_lag(monitor, sum);
                    }
                }
                StreamEvent::End(StreamEnd::EndOfTimeline {
                    next_timeline,
                    next_start,
                }) if stopping == Stopping::No => {
                    drop(stream);
                    tli = next_timeline;
                    pos = next_start;
                    info(format!("switched to timeline {tli} at {next_start}"));
                    continue 'timelines;
                }
                StreamEvent::End(StreamEnd::ServerEnded { .. }) if stopping == Stopping::No => {
                    break 'timelines Err(
                        "replication stream was terminated before stop point".to_owned()
                    );
                }
                StreamEvent::End(_) => break 'timelines Ok(()),
            }
        }
    };
    monitor.disconnected();
    let ended = match stopping {
        Stopping::AtTime(t) => t,
        Stopping::No => Instant::now(),
    };
    sum.seconds = ended.duration_since(began).as_secs_f64();
    if let Some(e) = o.endpos {
        sum.end = sum.end.min(e);
    }
    result
}

fn record_lag(monitor: &Monitor, sum: &mut Summary) {
    let s = monitor.snapshot();
    sum.lag_bytes.record(s.lag.receive_lag_bytes);
    sum.lag_micros
        .record(u64::try_from(s.lag.receive_lag.as_micros()).unwrap_or(u64::MAX));
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
