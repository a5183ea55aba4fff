//! From the spool to the object store: when `-D` is an object store, WAL is received into a
//! local spool directory exactly as into a directory archive (`.partial`, preallocation, the
//! fsync rules, the lock), and this module uploads what is complete.
//!
//! - **What is queued.** A segment as it completes (told by the segment writer), a history
//!   file once written, the `.partial` a timeline ended with (once the server has switched),
//!   and with `--upload-partial` a snapshot of the open `.partial`. At
//!   start, every complete file already in the spool (left by a run that stopped or crashed).
//! - **Upload.** The file is read whole and PUT under its own name (one request: the object
//!   exists complete or not at all). When an object of that name exists already, identical
//!   bytes count as done (an upload that was confirmed but not yet removed from the spool
//!   when the process died); different bytes stop the archiver with an error that names the
//!   object. No conditional PUT is used: Garage, for one, ignores `If-None-Match`. The check
//!   is a HEAD before each PUT (and a GET when something is there), so two archivers writing
//!   one prefix at once are not caught between the two; the spool's lock is per spool.
//! - **Only then** is the spool's file removed. A `.partial` snapshot is overwritten each
//!   time; the segment's complete upload removes it from the store.
//! - **Failures** are retried with a back-off (1 s doubling to 30 s), as long as it takes;
//!   up to `--upload-jobs` uploads run at once on the archiver's runtime.
//! - **What the server is told** ([`UploadQueue::stored_before`]): nothing at or after the
//!   start of the oldest segment still waiting is in the store with every earlier one, so the
//!   flush position reported with a slot stops there, and the slot keeps that WAL on the
//!   server until it is off this machine.
//! - **Bounded**: [`UploadQueue::waiting`] complete segments are in the spool; the receiver
//!   pauses past `--spool-max` ([`crate::receive`]).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pgwire_repl::{Lsn, WalSegmentSize};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::archive::names::{parse_history_name, SegmentName};
use crate::archive::objstore::ObjStore;
use crate::observe::monitor::Monitor;
use crate::output::{info, os_error, warning};
use send::{object_name, upload, Outcome};

mod send;

/// What a timeline's last `.partial` is renamed to in the spool, after its name.
pub const CLOSED: &str = ".closed";

/// A failed upload is tried again after this, doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What a queued file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A complete segment whose WAL starts at this position.
    Segment(Lsn),
    History,
    /// A snapshot of the open segment (`NAME[.gz|.lz4|.zst].partial`), overwritten each time.
    Partial,
    /// The last segment of a timeline that ended, kept `.partial` for good: renamed in the
    /// spool to `NAME.partial.closed` (a name the writer never opens again, and which the
    /// next run finds), uploaded as `NAME.partial` (over any snapshot), then removed.
    Closed,
}

#[derive(Debug)]
struct Entry {
    /// The spool file's name, which is also the object's.
    name: String,
    kind: Kind,
    in_flight: bool,
    /// Not before this (the back-off after a failure).
    not_before: Option<Instant>,
    failures: u32,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Entry>,
    /// Why uploading stopped for good (an object exists with other bytes).
    failed: Option<String>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Something was queued.
    work: Notify,
    /// An upload ended, well or not.
    progress: Notify,
    spool: PathBuf,
    store: ObjStore,
    monitor: Monitor,
    verbose: bool,
    /// Remove `NAME.partial` objects once the segment is stored (`--upload-partial`).
    partials: bool,
    /// The queue's figures the receiver reads with every message, kept beside it so that
    /// reading them takes no lock: segments waiting, the oldest one's start (`u64::MAX`:
    /// none), whether uploading failed for good. Set by [`UploadQueue::publish`].
    waiting: AtomicUsize,
    oldest: AtomicU64,
    failed: AtomicBool,
}

/// The receiver's handle on the uploads; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct UploadQueue(Arc<Shared>);

/// How the uploader runs.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    pub jobs: usize,
    pub verbose: bool,
    /// `--upload-partial` is on.
    pub partials: bool,
    pub monitor: Monitor,
}

impl UploadQueue {
    /// Queues every complete file left in `spool` and starts uploading, on the current
    /// runtime, until the runtime ends.
    pub fn start(
        spool: &Path,
        store: ObjStore,
        seg: WalSegmentSize,
        s: UploadSettings,
    ) -> Result<UploadQueue, String> {
        let mut left = Vec::new();
        let entries = std::fs::read_dir(spool).map_err(|e| {
            format!(
                "could not open directory \"{}\": {}",
                spool.display(),
                os_error(&e)
            )
        })?;
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if let Some(n) = SegmentName::parse(&name, seg).filter(|n| !n.partial) {
                left.push((Kind::Segment(Lsn(n.segno * u64::from(seg.bytes()))), name));
            } else if parse_history_name(&name).is_some() {
                left.push((Kind::History, name));
            } else if name
                .strip_suffix(CLOSED)
                .and_then(|n| SegmentName::parse(n, seg))
                .is_some_and(|n| n.partial)
            {
                left.push((Kind::Closed, name));
            }
        }
        left.sort_by_key(|(k, _)| match k {
            Kind::Segment(lsn) => *lsn,
            _ => Lsn(0),
        });
        let q = UploadQueue(Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Notify::new(),
            progress: Notify::new(),
            spool: spool.to_owned(),
            store,
            monitor: s.monitor.clone(),
            verbose: s.verbose,
            partials: s.partials,
            waiting: AtomicUsize::new(0),
            oldest: AtomicU64::new(u64::MAX),
            failed: AtomicBool::new(false),
        }));
        if !left.is_empty() && s.verbose {
            info(format!(
                "{} files left in the spool are queued for upload",
                left.len()
            ));
        }
        for (kind, name) in left {
            q.push(name, kind);
        }
        tokio::spawn(run(q.clone(), s.jobs.max(1)));
        Ok(q)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, name: String, kind: Kind) {
        {
            let mut st = self.state();
            if st
                .queue
                .iter()
                .any(|e| e.name == name && e.kind == kind && !e.in_flight)
            {
                return;
            }
            st.queue.push_back(Entry {
                name,
                kind,
                in_flight: false,
                not_before: None,
                failures: 0,
            });
        }
        self.publish();
        self.0.work.notify_one();
    }

    /// Segment file `name` (its final name in the spool), whose WAL starts at `start`, is
    /// complete.
    pub fn segment(&self, name: String, start: Lsn) {
        self.push(name, Kind::Segment(start));
    }

    /// History file `name` is in the spool.
    pub fn history(&self, name: String) {
        self.push(name, Kind::History);
    }

    /// Upload a snapshot of the open segment's `.partial`, `name`.
    pub fn partial(&self, name: String) {
        self.push(name, Kind::Partial);
    }

    /// The last `.partial` of a timeline that ended is in the spool as `name` (which ends
    /// in [`CLOSED`]).
    pub fn closed(&self, name: String) {
        self.push(name, Kind::Closed);
    }

    /// Complete segments in the spool, not yet confirmed by the store.
    pub fn waiting(&self) -> usize {
        self.0.waiting.load(Ordering::Acquire)
    }

    /// The start of the oldest segment not yet confirmed by the store: before it, every
    /// segment this archiver received is stored. `None` when none waits.
    pub fn stored_before(&self) -> Option<Lsn> {
        match self.0.oldest.load(Ordering::Acquire) {
            u64::MAX => None,
            lsn => Some(Lsn(lsn)),
        }
    }

    /// Why uploading stopped for good, if it did.
    pub fn failed(&self) -> Option<String> {
        if !self.0.failed.load(Ordering::Acquire) {
            return None;
        }
        self.state().failed.clone()
    }

    /// Resolves when an upload ends, or after `timeout`.
    pub async fn progressed(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.0.progress.notified()).await;
    }

    /// Waits until every complete file is uploaded, or uploading fails for good, or nothing
    /// has been confirmed for `patience`; says what is left.
    pub async fn drain(&self, patience: Duration) {
        let mut last = (self.waiting_files(), Instant::now());
        let mut said = false;
        loop {
            let left = self.waiting_files();
            if left == 0 || self.failed().is_some() {
                return;
            }
            if left != last.0 {
                last = (left, Instant::now());
            } else if last.1.elapsed() >= patience {
                warning(format!(
                    "{left} files stay in the spool \"{}\" for the next run to upload",
                    self.0.spool.display()
                ));
                return;
            }
            if !said && self.0.verbose {
                info(format!("waiting for {left} uploads to finish"));
                said = true;
            }
            self.progressed(Duration::from_secs(1)).await;
        }
    }

    /// Complete files (segments and histories) not yet uploaded.
    fn waiting_files(&self) -> usize {
        self.state()
            .queue
            .iter()
            .filter(|e| e.kind != Kind::Partial)
            .count()
    }

    /// Makes the queue's figures visible: to the receiver (which reads them with every
    /// message) and to the monitor. Called after every change of the queue.
    fn publish(&self) {
        let st = self.state();
        let (waiting, oldest) = (count_waiting(&st), oldest_waiting(&st));
        self.0.waiting.store(waiting, Ordering::Release);
        self.0
            .oldest
            .store(oldest.map_or(u64::MAX, |l| l.0), Ordering::Release);
        self.0.failed.store(st.failed.is_some(), Ordering::Release);
        self.0.monitor.uploads_waiting(waiting as u64, oldest);
    }
}

fn count_waiting(st: &State) -> usize {
    st.queue
        .iter()
        .filter(|e| matches!(e.kind, Kind::Segment(_)))
        .count()
}

fn oldest_waiting(st: &State) -> Option<Lsn> {
    st.queue
        .iter()
        .filter_map(|e| match e.kind {
            Kind::Segment(lsn) => Some(lsn),
            _ => None,
        })
        .min()
}

/// The segment a file belongs to (its first 24 characters), for keeping a segment's
/// `.partial` snapshot and its complete upload apart.
fn segment_of(name: &str) -> &str {
    name.get(..24).unwrap_or(name)
}

/// The upload loop: starts what may start, in order (histories and older segments first),
/// and handles what ends.
async fn run(q: UploadQueue, jobs: usize) {
    let mut running: JoinSet<Outcome> = JoinSet::new();
    // Which file each task sends.
    let mut tasks: HashMap<tokio::task::Id, String> = HashMap::new();
    loop {
        let mut wake_at: Option<Instant> = None;
        {
            let mut st = q.state();
            if st.failed.is_some() {
                return;
            }
            let now = Instant::now();
            let mut in_flight = st.queue.iter().filter(|e| e.in_flight).count();
            // Segments whose snapshot or complete file is being sent: one at a time each.
            let mut busy: Vec<String> = st
                .queue
                .iter()
                .filter(|e| e.in_flight)
                .map(|e| segment_of(&e.name).to_owned())
                .collect();
            let mut order: Vec<usize> = (0..st.queue.len()).collect();
            order.sort_by_key(|&i| match st.queue[i].kind {
                Kind::History => (0, Lsn(0)),
                Kind::Closed => (1, Lsn(0)),
                Kind::Segment(lsn) => (2, lsn),
                Kind::Partial => (3, Lsn(0)),
            });
            for i in order {
                if in_flight >= jobs {
                    break;
                }
                let e = &mut st.queue[i];
                if e.in_flight || busy.iter().any(|b| b == segment_of(&e.name)) {
                    continue;
                }
                if let Some(t) = e.not_before.filter(|t| *t > now) {
                    wake_at = Some(wake_at.map_or(t, |w| w.min(t)));
                    continue;
                }
                e.in_flight = true;
                in_flight += 1;
                busy.push(segment_of(&e.name).to_owned());
                let (name, kind) = (e.name.clone(), e.kind);
                let shared = q.0.clone();
                let task = running.spawn({
                    let name = name.clone();
                    async move { upload(&shared, &name, kind).await }
                });
                tasks.insert(task.id(), name);
            }
        }
        let sleep = async {
            match wake_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = q.0.work.notified() => {}
            _ = sleep => {}
            Some(joined) = running.join_next_with_id() => {
                let (id, outcome) = match joined {
                    Ok((id, outcome)) => (id, outcome),
                    // A panicking upload is a bug: stop uploading, and the archiver with it,
                    // rather than leave its file marked as being sent for ever.
                    Err(e) => (
                        e.id(),
                        Outcome::Conflict(format!("internal error: an upload failed: {e}")),
                    ),
                };
                let Some(name) = tasks.remove(&id) else { continue };
                finish(&q, &name, outcome);
                q.publish();
                q.0.progress.notify_waiters();
            }
        }
    }
}

/// Records how the upload of `name` ended.
fn finish(q: &UploadQueue, name: &str, outcome: Outcome) {
    let mut st = q.state();
    let Some(i) = st.queue.iter().position(|e| e.in_flight && e.name == name) else {
        return;
    };
    match outcome {
        Outcome::Done { bytes } => {
            let e = st.queue.remove(i);
            q.0.monitor.uploaded(bytes);
            if let Some(e) = e.filter(|e| q.0.verbose && e.kind != Kind::Partial) {
                info(format!(
                    "uploaded \"{}\"",
                    q.0.store.url().join(object_name(name, e.kind)).display()
                ));
            }
        }
        Outcome::Gone => {
            st.queue.remove(i);
        }
        // A newer snapshot of the open segment comes at the next tick: no retry, no warning.
        Outcome::Retry(_) if st.queue[i].kind == Kind::Partial => {
            st.queue.remove(i);
            q.0.monitor.upload_retry();
        }
        Outcome::Retry(why) => {
            let e = &mut st.queue[i];
            e.in_flight = false;
            e.failures += 1;
            let wait = FIRST_BACKOFF
                .saturating_mul(1 << e.failures.min(6).saturating_sub(1))
                .min(MAX_BACKOFF);
            e.not_before = Some(Instant::now() + wait);
            q.0.monitor.upload_retry();
            // The first failure and then every so often: not a line a second while the
            // store is away.
            if e.failures.is_power_of_two() {
                warning(format!(
                    "could not upload file \"{}\": {why}; trying again in {} s",
                    q.0.store.url().join(object_name(name, e.kind)).display(),
                    wait.as_secs()
                ));
            }
        }
        Outcome::Conflict(why) => {
            st.queue[i].in_flight = false;
            st.failed = Some(why);
        }
    }
}
