//! Replication lag and throughput, measured from the stream itself.
//!
//! A [`LagTracker`] is fed what the stream says ([`XLogData`] and [`PrimaryKeepalive`]) and
//! what the application did (the position it flushed); it answers with a [`LagSnapshot`]:
//!
//! - **the server's WAL end**: the highest position the server has told us it has. XLogData
//!   carries the server's flush position when the message was sent (and its own data end);
//!   a keepalive carries the position the walsender has sent so far. Positions only move
//!   forward, until [`LagTracker::begin`] starts a new connection.
//! - **lag in bytes**: WAL end − received, and WAL end − flushed.
//! - **lag in time**: the age of the oldest WAL the server has announced but we have not yet
//!   received (or flushed), where *age* counts from the moment this process first learned
//!   that the server had it — the arrival of the XLogData or keepalive whose WAL end first
//!   went past it — measured on this host's monotonic clock. It is 0 when everything
//!   announced is received (flushed). Because both ends of the interval are read from the
//!   same local clock, **clock skew between the hosts cannot affect it**; what it leaves out
//!   is the time before the announcement reached us (the server's send delay plus one-way
//!   network latency), and how old the WAL already was when the server announced it (during
//!   a catch-up from a slot, WAL that is days old counts from when we connected).
//! - **the clock offset**: this host's wall clock at arrival minus the server's send
//!   timestamp of the latest message: one-way latency plus the skew between the two clocks.
//!   It is reported separately and never mixed into the lag, so a skewed clock shows up as a
//!   large or negative offset, not as lag.
//! - **throughput**: WAL bytes received per second over a sliding window.
//!
//! Sans-IO: every call takes the current time; nothing here reads a clock or blocks. Memory
//! is bounded: announcements closer together than a resolution are coalesced, keeping the
//! older time (the lag is overstated by less than the resolution, never understated). The
//! resolution is [`LagTracker::RESOLUTION`] and doubles whenever more than
//! [`LagTracker::MAX_ANNOUNCEMENTS`] are pending (a long stall while the server keeps
//! writing), returning to the base once the backlog is received.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use crate::lsn::Lsn;
use crate::protocol::replication::{PrimaryKeepalive, XLogData};

/// Tracks lag and throughput of one replication stream. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct LagTracker {
    window: Duration,
    server_end: Lsn,
    received: Lsn,
    flushed: Option<Lsn>,
    /// `(position, first heard of)`: the server had WAL up to `position` at `first heard of`.
    /// Positions strictly increase; only positions past the flush (or receive) position are
    /// kept.
    announced: VecDeque<(Lsn, Instant)>,
    received_bytes: u64,
    /// `(time, received_bytes)`, one per window/RATE_SAMPLES at most.
    rate_samples: VecDeque<(Instant, u64)>,
    /// Announcements closer together than this are coalesced; coarser while many are
    /// pending.
    resolution: Duration,
    clock_offset: Option<i64>,
    last_message: Option<Instant>,
    last_data: Option<Instant>,
}

/// What a [`LagTracker`] knows at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LagSnapshot {
    /// The highest WAL position the server has announced.
    pub server_end: Lsn,
    /// The position after the last byte received.
    pub received: Lsn,
    /// The position the application reported flushed; `None` until it reports one.
    pub flushed: Option<Lsn>,
    /// `server_end − received` (0 when received is ahead).
    pub receive_lag_bytes: u64,
    /// Age of the oldest announced WAL not yet received; zero when none.
    pub receive_lag: Duration,
    /// `server_end − flushed`; `None` until a flush position is reported.
    pub flush_lag_bytes: Option<u64>,
    /// Age of the oldest announced WAL not yet flushed.
    pub flush_lag: Option<Duration>,
    /// WAL payload bytes received since the tracker was made.
    pub received_bytes: u64,
    /// Bytes per second over the sliding window.
    pub bytes_per_sec: f64,
    /// Local wall clock at arrival − the server's send time of the latest message, in
    /// microseconds: one-way latency plus clock skew. `None` before the first message.
    pub clock_offset_micros: Option<i64>,
    /// Time since the latest message from the server.
    pub idle: Option<Duration>,
}

impl LagTracker {
    /// The base resolution: announcements closer together than this are coalesced.
    pub const RESOLUTION: Duration = Duration::from_millis(1);
    /// Above this many pending announcements, the resolution doubles.
    pub const MAX_ANNOUNCEMENTS: usize = 4096;
    const RATE_SAMPLES: u32 = 20;

    /// A tracker whose throughput is averaged over `window` (at least 1 ms).
    pub fn new(window: Duration) -> LagTracker {
        LagTracker {
            window: window.max(Duration::from_millis(1)),
            server_end: Lsn::INVALID,
            received: Lsn::INVALID,
            flushed: None,
            announced: VecDeque::new(),
            received_bytes: 0,
            rate_samples: VecDeque::new(),
            resolution: Self::RESOLUTION,
            clock_offset: None,
            last_message: None,
            last_data: None,
        }
    }

    /// A new connection streams from `start`: what the previous server announced no longer
    /// counts. Byte totals and throughput carry on.
    pub fn begin(&mut self, start: Lsn) {
        self.server_end = start;
        self.received = start;
        if let Some(f) = self.flushed.as_mut() {
            *f = (*f).min(start);
        }
        self.announced.clear();
    }

    /// An XLogData arrived at `now` (monotonic) / `wall` (this host's clock).
    pub fn on_xlogdata(&mut self, x: &XLogData, now: Instant, wall: SystemTime) {
        let end = x.data_end().unwrap_or(x.wal_start);
        self.note_message(x.send_time, now, wall);
        self.announce(x.wal_end.max(end), now);
        self.received = self.received.max(end);
        // Sampled before the bytes count: the baseline is what had arrived before `now`.
        self.sample_rate(now);
        self.received_bytes += x.data.len() as u64;
        if !x.data.is_empty() {
            self.last_data = Some(now);
        }
        self.prune();
    }

    /// A keepalive arrived.
    pub fn on_keepalive(&mut self, k: &PrimaryKeepalive, now: Instant, wall: SystemTime) {
        self.note_message(k.send_time, now, wall);
        self.announce(k.wal_end, now);
    }

    /// The application made WAL up to `lsn` durable.
    pub fn on_flushed(&mut self, lsn: Lsn) {
        let f = self.flushed.get_or_insert(lsn);
        *f = (*f).max(lsn);
        self.prune();
    }

    /// The state at `now`.
    pub fn snapshot(&mut self, now: Instant) -> LagSnapshot {
        let age = |pos: Lsn| -> Duration {
            let i = self.announced.partition_point(|&(l, _)| l <= pos);
            self.announced
                .get(i)
                .map_or(Duration::ZERO, |&(_, t)| now.saturating_duration_since(t))
        };
        let lag = |pos: Lsn| self.server_end.0.saturating_sub(pos.0);
        LagSnapshot {
            server_end: self.server_end,
            received: self.received,
            flushed: self.flushed,
            receive_lag_bytes: lag(self.received),
            receive_lag: age(self.received),
            flush_lag_bytes: self.flushed.map(lag),
            flush_lag: self.flushed.map(age),
            received_bytes: self.received_bytes,
            bytes_per_sec: self.rate(now),
            clock_offset_micros: self.clock_offset,
            idle: self.last_message.map(|t| now.saturating_duration_since(t)),
        }
    }

    fn note_message(&mut self, send_time: SystemTime, now: Instant, wall: SystemTime) {
        self.last_message = Some(now);
        self.clock_offset = Some(match wall.duration_since(send_time) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
        });
    }

    fn announce(&mut self, end: Lsn, now: Instant) {
        if end <= self.server_end {
            return;
        }
        self.server_end = end;
        match self.announced.back_mut() {
            // Within the resolution: extend the newest entry, keeping its (older) time.
            Some((l, t)) if now.saturating_duration_since(*t) < self.resolution => *l = end,
            _ => self.announced.push_back((end, now)),
        }
        while self.announced.len() > Self::MAX_ANNOUNCEMENTS {
            self.coarsen();
        }
    }

    /// Doubles the resolution and regroups the announcements with it: each group keeps its
    /// oldest time and its newest position, which can only overstate the lag, by less than
    /// the resolution.
    fn coarsen(&mut self) {
        self.resolution *= 2;
        let old = std::mem::take(&mut self.announced);
        for (l, t) in old {
            match self.announced.back_mut() {
                Some((gl, gt)) if t.saturating_duration_since(*gt) < self.resolution => *gl = l,
                _ => self.announced.push_back((l, t)),
            }
        }
    }

    /// Drops announcements that are received and (if flushes are reported) flushed.
    fn prune(&mut self) {
        let done = self.flushed.map_or(self.received, |f| f.min(self.received));
        while self.announced.front().is_some_and(|&(l, _)| l <= done) {
            self.announced.pop_front();
        }
        if self.announced.len() < Self::MAX_ANNOUNCEMENTS / 8 {
            self.resolution = Self::RESOLUTION;
        }
    }

    fn sample_rate(&mut self, now: Instant) {
        let step = self.window / Self::RATE_SAMPLES;
        match self.rate_samples.back() {
            Some(&(t, _)) if now.saturating_duration_since(t) < step => {}
            _ => self.rate_samples.push_back((now, self.received_bytes)),
        }
        self.prune_rate(now);
    }

    /// Keeps the newest sample at or before the window's start as the baseline.
    fn prune_rate(&mut self, now: Instant) {
        let Some(start) = now.checked_sub(self.window) else {
            return;
        };
        while self.rate_samples.len() >= 2 && self.rate_samples[1].0 <= start {
            self.rate_samples.pop_front();
        }
    }

    fn rate(&mut self, now: Instant) -> f64 {
        self.prune_rate(now);
        // Nothing arrived within the window.
        match self.last_data {
            Some(t) if now.saturating_duration_since(t) < self.window => {}
            _ => return 0.0,
        }
        match self.rate_samples.front() {
            Some(&(t, bytes)) => {
                let secs = now.saturating_duration_since(t).as_secs_f64();
                if secs < 1e-3 {
                    0.0
                } else {
                    (self.received_bytes - bytes) as f64 / secs
                }
            }
            None => 0.0,
        }
    }
}

#[cfg(test)]
mod tests;
