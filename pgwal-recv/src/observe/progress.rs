//! The progress line of `--verbose` and `measure`: position, rate and lag, every second on a
//! terminal (one line rewritten in place), every 5 seconds in a log — and in a log only
//! while something moves, plus one line when it comes to rest.

use std::time::Duration;

use crate::observe::monitor::{Monitor, Snapshot};
use crate::output::{bytes, status, status_in_place};

/// The progress text of one snapshot.
pub fn line(s: &Snapshot) -> String {
    let l = &s.lag;
    let mut out = format!("{} (timeline {})", l.received, s.timeline);
    if let Some(f) = l.flushed.filter(|f| *f != l.received) {
        out.push_str(&format!(", flushed {f}"));
    }
    out.push_str(&format!(
        ", {:.1} MB/s, lag {} / {:.2} s",
        l.bytes_per_sec / 1e6,
        bytes(l.receive_lag_bytes),
        l.receive_lag.as_secs_f64()
    ));
    let u = &s.upload;
    if u.active {
        let stored = u.oldest_waiting.unwrap_or(l.received).min(l.received);
        out.push_str(&format!(
            ", upload: {} waiting ({} behind), {} sent",
            u.waiting,
            bytes(l.received.0 - stored.0),
            bytes(u.bytes)
        ));
        if u.retries > 0 {
            out.push_str(&format!(", {} retries", u.retries));
        }
    }
    if !s.connected {
        out.push_str(", disconnected");
    }
    out
}

/// Prints progress until the task is dropped or aborted.
pub async fn report(monitor: Monitor) {
    let every = if status_in_place() {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut last: Option<(pgwire_repl::Lsn, u64, bool, u64, u64)> = None;
    loop {
        tick.tick().await;
        let s = monitor.snapshot();
        let key = (
            s.lag.received,
            s.lag.receive_lag_bytes,
            s.connected,
            s.upload.waiting,
            s.upload.bytes,
        );
        if status_in_place() || last != Some(key) {
            status(line(&s));
        }
        last = Some(key);
    }
}
