//! The streaming loop every streaming command runs: `START_REPLICATION` on a timeline, then
//! its messages until the stream ends, then the next timeline if the server switched; the
//! 60 s receive timeout; a stop on a signal, a deadline or the handler's word, which sends
//! CopyDone and then drains what the server still sends.
//!
//! What happens to the WAL is the [`Handler`]'s: the archiver writes it
//! ([`crate::receive`]), `measure` counts it.

use std::time::Duration;

use pgwire_repl::{
    Client, FeedbackConfig, Lsn, PrimaryKeepalive, ReplicationStream, StartReplication, StreamEnd,
    StreamEvent, StreamSender, TimelineId, XLogData,
};

use super::{StopSignal, StreamError};

/// A connection silent for this long is dead (after a reply-requesting ping at half of it,
/// as the walreceiver does).
pub const RECEIVE_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether to go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Go,
    Stop,
}

/// Why the stream is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT or SIGTERM.
    Signal,
    /// The deadline given to [`follow`] passed.
    Deadline,
    /// The handler said [`Step::Stop`] (an end position was reached).
    Done,
}

/// What a streaming command does with the stream. Called in stream order, on the task that
/// runs [`follow`].
#[allow(async_fn_in_trait)]
pub trait Handler {
    /// Before `START_REPLICATION` on timeline `tli` from `start` (each timeline): fetch
    /// what the timeline needs. [`Step::Stop`] ends streaming there, as a stop.
    async fn before_timeline(
        &mut self,
        client: &mut Client,
        tli: TimelineId,
        start: Lsn,
    ) -> Result<Step, StreamError>;

    /// Streaming has started on `tli` at `start`.
    fn started(&mut self, sender: &StreamSender, tli: TimelineId, start: Lsn);

    /// WAL; [`Step::Stop`] stops the stream (what arrives after it is dropped).
    fn xlogdata(&mut self, x: &XLogData, sender: &StreamSender) -> Result<Step, StreamError>;

    /// A keepalive, while not stopping.
    async fn keepalive(
        &mut self,
        k: &PrimaryKeepalive,
        sender: &StreamSender,
    ) -> Result<(), StreamError>;

    /// After each message, while not stopping (the archiver's per-batch fsync).
    async fn after_message(
        &mut self,
        _stream: &mut ReplicationStream<'_>,
        _sender: &StreamSender,
    ) -> Result<(), StreamError> {
        Ok(())
    }

    /// The stream is about to be stopped (CopyDone): close what is open.
    fn stopping(&mut self, why: StopReason) -> Result<(), StreamError>;

    /// The stream on the current timeline ended, however.
    fn ended(&mut self) -> Result<(), StreamError>;

    /// The end of the last WAL received.
    fn received(&self) -> Lsn;

    /// Where the next timeline starts streaming, given where the server says it begins.
    fn next_start(&self, begins: Lsn) -> Lsn {
        begins
    }

    /// The server switched to timeline `tli`, which begins at `at`.
    fn switched(&mut self, _tli: TimelineId, _at: Lsn) {}

    /// Once a [`Follow::tick`] period.
    fn tick(&mut self) {}
}

/// How to stream.
#[derive(Debug, Clone, Default)]
pub struct Follow {
    pub slot: Option<String>,
    /// Status updates every this long (`-s`); none when `None`.
    pub status_interval: Option<Duration>,
    /// Whether the library answers the server's reply requests by itself (`measure`), or the
    /// handler does (the archiver, which may have to fsync first).
    pub reply_to_keepalives: bool,
    /// Stop at this instant (`measure --duration`).
    pub deadline: Option<tokio::time::Instant>,
    /// Call [`Handler::tick`] this often (`measure`'s progress line; with an object store,
    /// the archiver's flush position and `--upload-partial`).
    pub tick: Option<Duration>,
}

/// Streams from `start` on `tli` until stopped (Ok) or an error; follows timeline switches.
pub async fn follow<H: Handler>(
    client: &mut Client,
    opts: &Follow,
    mut start: Lsn,
    mut tli: TimelineId,
    stop: &mut StopSignal,
    h: &mut H,
) -> Result<(), StreamError> {
    let mut tick = opts.tick.map(|period| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    loop {
        if h.before_timeline(client, tli, start).await? == Step::Stop || stop.requested() {
            return Ok(());
        }
        let feedback = FeedbackConfig {
            status_interval: opts.status_interval,
            receive_timeout: Some(RECEIVE_TIMEOUT),
            reply_to_keepalives: opts.reply_to_keepalives,
        };
        let mut replication = StartReplication::new(start)
            .timeline(tli)
            .feedback(feedback);
        replication.slot = opts.slot.clone();
        let mut stream = client.start_replication(replication).await.map_err(|e| {
            StreamError::db(
                "could not send replication command \"START_REPLICATION\"",
                &e,
            )
        })?;
        let sender = stream.sender();
        h.started(&sender, tli, start);
        let mut stopping = false;
        // One wait for the whole stream (not one per message: each registers a waiter).
        let stop_wait = stop.wait();
        tokio::pin!(stop_wait);
        let end = loop {
            let ev = tokio::select! {
                biased;
                _ = &mut stop_wait, if !stopping => Err(StopReason::Signal),
                _ = sleep_until(opts.deadline), if !stopping => Err(StopReason::Deadline),
                _ = next_tick(&mut tick) => {
                    h.tick();
                    continue;
                }
                ev = stream.recv() => Ok(ev),
            };
            let ev = match ev {
                Err(why) => {
                    stopping = true;
                    h.stopping(why)?;
                    stream
                        .request_stop()
                        .await
                        .map_err(|e| StreamError::db("", &e))?;
                    continue;
                }
                Ok(ev) => ev.map_err(|e| {
                    StreamError::db("unexpected termination of replication stream", &e)
                })?,
            };
            match ev {
                StreamEvent::XLogData(_) if stopping => continue,
                StreamEvent::XLogData(x) => {
                    if h.xlogdata(&x, &sender)? == Step::Stop {
                        stopping = true;
                        h.stopping(StopReason::Done)?;
                        stream
                            .request_stop()
                            .await
                            .map_err(|e| StreamError::db("", &e))?;
                        continue;
                    }
                }
                StreamEvent::Keepalive(_) if stopping => continue,
                StreamEvent::Keepalive(k) => h.keepalive(&k, &sender).await?,
                StreamEvent::End(end) => break end,
            }
            h.after_message(&mut stream, &sender).await?;
        };
        drop(stream);
        h.ended()?;
        match end {
            // Stopped by us (an end position, a signal, the deadline): on a historic timeline
            // the server still reports the next one, which is no reason to go on or to fail.
            _ if stopping => return Ok(()),
            StreamEnd::EndOfTimeline {
                next_timeline,
                next_start,
            } => {
                if next_timeline <= tli {
                    return Err(StreamError::retry(format!(
                        "server reported unexpected next timeline {next_timeline}, following timeline {tli}"
                    )));
                }
                if next_start > h.received() {
                    return Err(StreamError::retry(format!(
                        "server stopped streaming timeline {tli} at {}, but reported next timeline {next_timeline} to begin at {next_start}",
                        h.received()
                    )));
                }
                tli = next_timeline;
                start = h.next_start(next_start);
                h.switched(tli, next_start);
            }
            StreamEnd::Stopped { .. } | StreamEnd::ServerEnded { .. } => {
                return Err(StreamError::retry(
                    "replication stream was terminated before stop point",
                ))
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn next_tick(tick: &mut Option<tokio::time::Interval>) {
    match tick {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}
