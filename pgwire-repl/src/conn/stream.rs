//! The replication stream: XLogData and keepalives in; status updates and hot standby
//! feedback out at any moment.
//!
//! The read side belongs to [`ReplicationStream::recv`]. The write side, an outbox (see
//! `outbox.rs`), is shared with [`StreamSender`] handles and a small background task, so a
//! status update never waits for a pending read: the task sends periodic updates and the
//! receive-timeout ping by itself (the timing decisions are [`Feedback`]'s), `recv` answers
//! keepalives that ask for a reply, and the application can send whenever it likes through a
//! sender.
//!
//! Cancel safety: `recv` is raced against stop signals, so it may be dropped at any await.
//! What handling a message obliges us to send (CopyDone at the end of a timeline, a keepalive
//! reply) is queued in the same step as the handling, and the event is kept until returned;
//! the next `recv`, [`request_stop`](ReplicationStream::request_stop) or any sender writes
//! what is owed first.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Sleep};

use super::client::Client;
use super::outbox::Outbox;
use crate::error::{Error, Result};
use crate::lsn::{Lsn, TimelineId};
use crate::protocol::backend::BackendMessage;
use crate::protocol::command::{start_replication_command, TimelineSwitch};
use crate::protocol::feedback::{Feedback, FeedbackConfig, Positions};
use crate::protocol::replication::{HotStandbyFeedback, StandbyStatusUpdate};
use crate::protocol::streaming::{CopyBoth, StreamEnd, StreamEvent};

/// What `START_REPLICATION` is asked for.
#[derive(Debug, Clone, Default)]
pub struct StartReplication {
    /// Stream through this physical slot.
    pub slot: Option<String>,
    /// Where to start; WAL is sent from here.
    pub start: Lsn,
    /// The timeline to stream; the server's current one when `None`.
    pub timeline: Option<TimelineId>,
    /// Status updates, keepalive replies and the receive timeout.
    pub feedback: FeedbackConfig,
}

impl StartReplication {
    pub fn new(start: Lsn) -> StartReplication {
        StartReplication {
            start,
            ..StartReplication::default()
        }
    }

    pub fn slot(mut self, slot: impl Into<String>) -> Self {
        self.slot = Some(slot.into());
        self
    }

    pub fn timeline(mut self, tli: TimelineId) -> Self {
        self.timeline = Some(tli);
        self
    }

    pub fn feedback(mut self, feedback: FeedbackConfig) -> Self {
        self.feedback = feedback;
        self
    }
}

struct Shared {
    outbox: Arc<Outbox>,
    feedback: Mutex<Feedback>,
}

impl Shared {
    fn feedback(&self) -> std::sync::MutexGuard<'_, Feedback> {
        // The lock is only held for plain field updates; a poisoned lock still has sane data.
        self.feedback.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends a CopyData message while our side of COPY is still open.
    async fn send_copy(&self, encode: impl FnOnce(&mut bytes::BytesMut)) -> Result<()> {
        let queued = self.outbox.push_copy_data(encode);
        // What is owed goes out even when this message cannot (a CopyDone queued by a
        // cancelled `recv` has closed our side).
        self.outbox.flush().await?;
        queued
    }

    async fn send_status(&self, update: StandbyStatusUpdate) -> Result<()> {
        self.send_copy(|b| update.encode(b)).await
    }
}

/// A cloneable handle that sends on the stream while another task waits in
/// [`ReplicationStream::recv`].
#[derive(Clone)]
pub struct StreamSender {
    shared: Arc<Shared>,
}

impl StreamSender {
    /// Records the positions to report from now on (automatic updates use them too).
    pub fn set_positions(&self, write: Lsn, flush: Lsn, apply: Lsn) {
        self.shared.feedback().set_positions(Positions {
            write,
            flush,
            apply,
        });
    }

    /// The positions last recorded.
    pub fn positions(&self) -> Positions {
        self.shared.feedback().positions()
    }

    /// Sends a standby status update with the recorded positions now.
    pub async fn send_status(&self, reply_requested: bool) -> Result<()> {
        let update = self
            .shared
            .feedback()
            .status(now(), SystemTime::now(), reply_requested);
        self.shared.send_status(update).await
    }

    /// Sends hot standby feedback now (`send_time` is filled in).
    pub async fn send_hot_standby_feedback(
        &self,
        xmin: u32,
        xmin_epoch: u32,
        catalog_xmin: u32,
        catalog_xmin_epoch: u32,
    ) -> Result<()> {
        let m = HotStandbyFeedback {
            send_time: SystemTime::now(),
            xmin,
            xmin_epoch,
            catalog_xmin,
            catalog_xmin_epoch,
        };
        self.shared.send_copy(|b| m.encode(b)).await
    }
}

/// A running `START_REPLICATION`. Read it with [`recv`](Self::recv) until
/// [`StreamEvent::End`]; then the client takes commands again.
///
/// Dropping the stream before its end leaves the client unusable (the server is still
/// streaming); use [`stop`](Self::stop) to end it cleanly.
pub struct ReplicationStream<'a> {
    client: &'a mut Client,
    state: CopyBoth,
    shared: Arc<Shared>,
    ticker: Option<JoinHandle<()>>,
    /// An event taken from the state machine by a `recv` that was cancelled before returning
    /// it; the next `recv` returns it.
    pending: Option<StreamEvent>,
    /// This stream queued a message (CopyDone, a keepalive reply) that may not be written
    /// yet: the next `recv` or `request_stop` writes it before anything else.
    owes: bool,
    /// The receive-timeout timer, kept from one `recv` to the next: the deadline moves on
    /// with every message, so rather than arming a timer per message (a timer-wheel insert
    /// and removal each), this one may fire early and is then re-armed for the real deadline.
    timeout: Option<Pin<Box<Sleep>>>,
}

impl<'a> ReplicationStream<'a> {
    pub(crate) async fn start(
        client: &'a mut Client,
        opts: StartReplication,
    ) -> Result<ReplicationStream<'a>> {
        let cmd = start_replication_command(opts.slot.as_deref(), opts.start, opts.timeline);
        let state = match client.query_or_copy(&cmd).await? {
            None => CopyBoth::new(opts.start),
            Some(results) => {
                // No COPY: the start is the very end of a historic timeline, and the answer
                // is the next timeline.
                let res = results
                    .iter()
                    .find(|r| !r.columns.is_empty())
                    .ok_or_else(|| {
                        Error::protocol(
                            "START_REPLICATION returned neither COPY nor a next timeline",
                        )
                    })?;
                CopyBoth::already_ended(opts.start, TimelineSwitch::parse(res)?)
            }
        };
        let shared = Arc::new(Shared {
            outbox: client.conn.outbox.clone(),
            feedback: Mutex::new(Feedback::new(opts.feedback, now())),
        });
        let mut ticker = None;
        if !state.is_ended() {
            shared.outbox.open_copy();
            let fb = &opts.feedback;
            if fb.status_interval.is_some() || fb.receive_timeout.is_some() {
                ticker = Some(tokio::spawn(tick(Arc::downgrade(&shared))));
            }
        }
        Ok(ReplicationStream {
            client,
            state,
            shared,
            ticker,
            pending: None,
            owes: false,
            timeout: None,
        })
    }

    /// A handle for sending status updates and feedback from anywhere.
    pub fn sender(&self) -> StreamSender {
        StreamSender {
            shared: self.shared.clone(),
        }
    }

    /// The end of the last WAL received on this stream (the start position before any).
    pub fn last_received(&self) -> Lsn {
        self.state.last_received()
    }

    /// True if the next [`recv`](Self::recv) has a message already received and will not
    /// wait: a receiver that fsyncs per batch (as a synchronous standby does) can drain
    /// what has arrived first and fsync once.
    pub fn has_buffered_message(&self) -> bool {
        self.client.conn.has_buffered_message()
    }

    /// Like [`has_buffered_message`](Self::has_buffered_message), counting what the socket
    /// already holds too (taken in without waiting, as libpq's `PQconsumeInput` after a
    /// zero-timeout `select`): a receiver that fsyncs per batch then puts everything that has
    /// arrived into one fsync. On a current-thread runtime this costs one `epoll_wait` with a
    /// zero timeout, and a read when something is there.
    pub async fn message_ready_now(&mut self) -> bool {
        if !self.has_buffered_message() {
            self.client.conn.read_available().await;
        }
        self.has_buffered_message()
    }

    /// The next XLogData, keepalive, or the end of the stream.
    ///
    /// Cancel-safe: when dropped before it returns, nothing is lost. What handling a message
    /// obliges us to send (CopyDone, a keepalive reply) stays queued and goes out first on
    /// the next call (or [`request_stop`](Self::request_stop), or a sender), and an event
    /// already taken in is returned by the next call. Fails with [`Error::Timeout`] when the
    /// server has sent nothing for the receive timeout, and with [`Error::Db`] when the
    /// server reports an error.
    pub async fn recv(&mut self) -> Result<StreamEvent> {
        self.send_owed().await?;
        if let Some(ev) = self.pending.take() {
            return Ok(self.deliver(ev));
        }
        if let Some(end) = self.state.take_pending_end() {
            return Ok(self.deliver(StreamEvent::End(end)));
        }
        if self.state.is_ended() {
            return Err(Error::Closed("the replication stream has ended".into()));
        }
        loop {
            let deadline = self.shared.feedback().deadline();
            let msg = match deadline {
                Some(d) => self.next_message_before(d).await,
                None => self.client.conn.next_message().await,
            };
            // From the message to `pending` and the outbox, nothing awaits: a cancelled
            // `recv` has either not taken the message in, or has kept all it implies.
            let handled = msg.and_then(|m| {
                self.shared.feedback().on_receive(now());
                self.state.handle(m)
            });
            let handled = match handled {
                Ok(h) => h,
                Err(e) => {
                    self.fail(&e);
                    return Err(e);
                }
            };
            if handled.send_copy_done && self.shared.outbox.push_copy_done() {
                self.owes = true;
            }
            if let Some(StreamEvent::Keepalive(k)) = &handled.event {
                if self.shared.feedback().on_keepalive(k) {
                    let update = self
                        .shared
                        .feedback()
                        .status(now(), SystemTime::now(), false);
                    // Our side may have just sent CopyDone; then there is nothing to answer.
                    if self
                        .shared
                        .outbox
                        .push_copy_data(|b| update.encode(b))
                        .is_ok()
                    {
                        self.owes = true;
                    }
                }
            }
            self.pending = handled.event;
            self.send_owed().await?;
            if let Some(ev) = self.pending.take() {
                return Ok(self.deliver(ev));
            }
        }
    }

    /// Writes what this stream has queued, if anything may still be unwritten. Cancel-safe.
    async fn send_owed(&mut self) -> Result<()> {
        if self.owes {
            if let Err(e) = self.shared.outbox.flush().await {
                self.fail(&e);
                return Err(e);
            }
            self.owes = false;
        }
        Ok(())
    }

    /// Hands an event to the caller; the end also ends the stream's background work.
    fn deliver(&mut self, ev: StreamEvent) -> StreamEvent {
        if let StreamEvent::End(_) = ev {
            self.finish();
        }
        ev
    }

    /// The next message, or a timeout error once the receive deadline (`first`, then as
    /// [`Feedback::deadline`] moves it) has passed.
    async fn next_message_before(&mut self, first: Instant) -> Result<BackendMessage> {
        let timer = self
            .timeout
            .get_or_insert_with(|| Box::pin(sleep_until(first.into())));
        // Never later than the deadline (a timer left from before may be, if it was moved).
        if timer.deadline() > first.into() {
            timer.as_mut().reset(first.into());
        }
        loop {
            tokio::select! {
                biased;
                m = self.client.conn.next_message() => return m,
                _ = timer.as_mut() => {}
            }
            let deadline = self.shared.feedback().deadline();
            match deadline {
                Some(d) if d > now() => timer.as_mut().reset(d.into()),
                _ => break,
            }
        }
        Err(self.timeout_error())
    }

    fn timeout_error(&self) -> Error {
        let t = self
            .shared
            .feedback()
            .config()
            .receive_timeout
            .unwrap_or(Duration::ZERO);
        Error::Timeout(format!(
            "no message from the server for {} s (receive timeout)",
            t.as_secs_f64()
        ))
    }

    /// Sends CopyDone: the server finishes what it is sending, then ends the stream, which
    /// [`recv`](Self::recv) reports as [`StreamEnd::Stopped`] (or as the end of the timeline
    /// if that came first). WAL that arrives in between is still delivered.
    ///
    /// Whatever a cancelled `recv` still owes the server (its CopyDone at the end of a
    /// timeline, say) goes out first. Cancel-safe: when dropped, the CopyDone stays queued
    /// for the next `recv`.
    pub async fn request_stop(&mut self) -> Result<()> {
        if self.state.request_stop() && self.shared.outbox.push_copy_done() {
            self.owes = true;
        }
        self.send_owed().await
    }

    /// Stops the stream: sends CopyDone, discards what the server still sends up to its
    /// CopyDone, and returns how the stream ended, with the end of the last WAL received.
    pub async fn stop(&mut self) -> Result<StreamEnd> {
        self.request_stop().await?;
        loop {
            if let StreamEvent::End(end) = self.recv().await? {
                return Ok(end);
            }
        }
    }

    /// The stream is over and the client is ready for commands: no more CopyData (a server
    /// that ended the COPY with a bare CommandComplete never saw our CopyDone).
    fn finish(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        self.shared.outbox.close_copy();
    }

    /// An error left the connection mid-stream: nothing more can be sent or trusted.
    fn fail(&mut self, e: &Error) {
        self.finish();
        self.client
            .conn
            .mark_broken(format!("the replication stream failed: {e}"));
    }
}

impl Drop for ReplicationStream<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if !self.state.is_ended() {
            self.client
                .conn
                .mark_broken("a replication stream was dropped before it ended");
        }
    }
}

/// The background sender of periodic status updates and receive-timeout pings. It holds only
/// a weak reference, so it ends with the stream.
async fn tick(shared: std::sync::Weak<Shared>) {
    loop {
        let wake = {
            let Some(s) = shared.upgrade() else { return };
            let now = now();
            let due = s.feedback().next_wakeup();
            due.unwrap_or(now + Duration::from_secs(1))
        };
        sleep_until(wake.into()).await;
        let Some(s) = shared.upgrade() else { return };
        let update = s.feedback().poll(now(), SystemTime::now());
        if let Some(update) = update {
            // A failed send shows up as a failed read in `recv`; stop quietly.
            if s.send_status(update).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;

/// Now, by the runtime's clock: the real one, or a test's paused one (`tokio::time::pause`),
/// so that the timers [`Feedback`] decides on and the instants it is given agree.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
