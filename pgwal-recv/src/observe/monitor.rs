//! What the archiver and `measure` know about their stream, shared with the metrics
//! endpoint and the progress line: a [`LagTracker`] plus counters.
//!
//! The receive loop updates it once per message; readers take a [`Snapshot`]. Everything
//! runs on one thread, so the lock is never contended.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use pgwire_repl::wal::RecordInfo;
use pgwire_repl::{LagSnapshot, LagTracker, Lsn, PrimaryKeepalive, TimelineId, XLogData};

use super::wal_stats::Stats;

/// Throughput is averaged over this window.
pub const RATE_WINDOW: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct Monitor(Arc<Mutex<State>>);

#[derive(Debug)]
struct State {
    tracker: LagTracker,
    timeline: u32,
    connected: bool,
    segments_completed: u64,
    reconnects: u64,
    messages: u64,
    keepalives: u64,
    /// Records by resource manager, when the WAL is decoded (`--verify`, `measure --stats`).
    rmgr: Stats,
    /// Their names, as pg_waldump prints them, once a record of each was seen.
    rmgr_names: Vec<(u8, &'static str)>,
    upload: Uploads,
}

/// Uploads to an object store (`-D URL`); all zero otherwise.
#[derive(Debug, Clone, Copy, Default)]
pub struct Uploads {
    /// The archive is an object store.
    pub active: bool,
    /// Complete segments in the spool, not yet confirmed by the store.
    pub waiting: u64,
    /// The start of the oldest of them (before it, everything received is stored).
    pub oldest_waiting: Option<Lsn>,
    /// Bytes uploaded (files already stored, identical, count nothing).
    pub bytes: u64,
    /// Files uploaded.
    pub files: u64,
    /// Failed attempts (each retried).
    pub retries: u64,
}

/// One moment's view.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    pub lag: LagSnapshot,
    pub timeline: u32,
    pub connected: bool,
    pub segments_completed: u64,
    pub reconnects: u64,
    /// XLogData messages.
    pub messages: u64,
    pub keepalives: u64,
    pub upload: Uploads,
}

impl Default for Monitor {
    fn default() -> Self {
        Monitor(Arc::new(Mutex::new(State {
            tracker: LagTracker::new(RATE_WINDOW),
            timeline: 0,
            connected: false,
            segments_completed: 0,
            reconnects: 0,
            messages: 0,
            keepalives: 0,
            rmgr: Stats::default(),
            rmgr_names: Vec::new(),
            upload: Uploads::default(),
        })))
    }
}

impl Monitor {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding it cannot leave the counters inconsistent: keep going.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Streaming starts (again) at `start` on `tli`.
    pub fn streaming(&self, start: Lsn, tli: TimelineId) {
        let mut s = self.state();
        s.tracker.begin(start);
        s.timeline = tli.0;
        s.connected = true;
    }

    pub fn disconnected(&self) {
        self.state().connected = false;
    }

    pub fn reconnecting(&self) {
        self.state().reconnects += 1;
    }

    pub fn segment_completed(&self) {
        self.state().segments_completed += 1;
    }

    pub fn xlogdata(&self, x: &XLogData) {
        let mut s = self.state();
        s.messages += 1;
        s.tracker.on_xlogdata(x, Instant::now(), SystemTime::now());
    }

    pub fn keepalive(&self, k: &PrimaryKeepalive) {
        let mut s = self.state();
        s.keepalives += 1;
        s.tracker.on_keepalive(k, Instant::now(), SystemTime::now());
    }

    /// Records decoded from the stream (a message's worth: one lock for all of them).
    pub fn records(&self, records: &[RecordInfo]) {
        if records.is_empty() {
            return;
        }
        let mut s = self.state();
        for r in records {
            if s.rmgr.get(r.rmid).records == 0 {
                s.rmgr_names.push((r.rmid, r.rmgr_name));
                s.rmgr_names.sort_unstable();
            }
            s.rmgr.add(r.rmid, r.tot_len, r.fpi_len);
        }
    }

    /// Records so far by resource manager: the figures and each one's name.
    pub fn wal_stats(&self) -> (Stats, Vec<(u8, &'static str)>) {
        let s = self.state();
        (s.rmgr.clone(), s.rmgr_names.clone())
    }

    /// `waiting` complete segments wait for upload, the oldest starting at `oldest`.
    pub fn uploads_waiting(&self, waiting: u64, oldest: Option<Lsn>) {
        let mut s = self.state();
        s.upload.active = true;
        s.upload.waiting = waiting;
        s.upload.oldest_waiting = oldest;
    }

    /// A file was uploaded: `bytes` sent.
    pub fn uploaded(&self, bytes: u64) {
        let mut s = self.state();
        s.upload.bytes += bytes;
        s.upload.files += 1;
    }

    pub fn upload_retry(&self) {
        self.state().upload.retries += 1;
    }

    pub fn flushed(&self, lsn: Lsn) {
        self.state().tracker.on_flushed(lsn);
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut s = self.state();
        let lag = s.tracker.snapshot(Instant::now());
        Snapshot {
            lag,
            timeline: s.timeline,
            connected: s.connected,
            segments_completed: s.segments_completed,
            reconnects: s.reconnects,
            messages: s.messages,
            keepalives: s.keepalives,
            upload: s.upload,
        }
    }
}
