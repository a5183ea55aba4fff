//! Receiving one connection's worth of WAL into the archive: pick the start position,
//! fetch history files, stream, write segments, follow timeline switches.

use std::path::Path;
use std::time::Duration;

use pgwire_repl::protocol::command::version_text;
use pgwire_repl::{
    Client, FeedbackConfig, Lsn, StartReplication, StreamEnd, StreamEvent, StreamSender,
    TimelineId, WalSegmentSize, XLogData,
};

use crate::monitor::Monitor;
use crate::output::{info, os_error};
use crate::scan::find_streaming_start;
use crate::walfile::{fsync_dir, FileError, FileSettings};
use crate::writer::{SegmentWriter, WriterSettings};

/// Why receiving stopped.
#[derive(Debug)]
pub enum Outcome {
    /// Asked to stop (signal) or past --endpos: exit 0.
    Stopped,
}

/// An error while receiving, with whether retrying can help.
#[derive(Debug)]
pub struct ReceiveError {
    pub message: String,
    /// Directory scan and fsync failures end the program even without `-n`.
    pub fatal: bool,
}

impl ReceiveError {
    fn retry(message: impl Into<String>) -> ReceiveError {
        ReceiveError {
            message: message.into(),
            fatal: false,
        }
    }
}

impl From<FileError> for ReceiveError {
    fn from(e: FileError) -> Self {
        // fsync failures are fatal, as in pg_receivewal (the kernel may have dropped the
        // data); everything else (a full disk, say) is retried.
        ReceiveError {
            message: e.to_string(),
            fatal: e.is_fatal(),
        }
    }
}

fn db(context: &str, e: pgwire_repl::Error) -> ReceiveError {
    let text = pgwire_repl::error::Report(&e).to_string();
    ReceiveError::retry(if context.is_empty() {
        text
    } else {
        format!("{context}: {text}")
    })
}

/// What receiving needs to know.
pub struct Settings<'a> {
    pub dir: &'a Path,
    pub slot: Option<&'a str>,
    pub endpos: Option<Lsn>,
    pub status_interval: Option<Duration>,
    pub synchronous: bool,
    pub verbose: bool,
    pub files: FileSettings,
    pub seg: WalSegmentSize,
    /// The system identifier of the first connection: every later one must match.
    pub system_id: u64,
    /// Lag, rate and counters for the progress line and the metrics.
    pub monitor: Monitor,
}

/// Stop requests from signals.
pub struct StopSignal {
    rx: tokio::sync::watch::Receiver<bool>,
}

impl StopSignal {
    pub fn new(rx: tokio::sync::watch::Receiver<bool>) -> StopSignal {
        StopSignal { rx }
    }

    pub fn requested(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves when a stop is requested (never, if the signal watcher is gone).
    pub async fn wait(&mut self) {
        if self.rx.wait_for(|v| *v).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The receiving state of one connection.
struct Receiver<'a> {
    s: &'a Settings<'a>,
    tli: TimelineId,
    /// Writes the segment files.
    writer: SegmentWriter,
    /// Bytes of the open segment sent to the writer; `None` when no segment is open.
    open: Option<u32>,
    /// The position after the last byte received (`blockpos`).
    received: Lsn,
    /// Flush positions are reported only with a slot or --synchronous.
    report_flush: bool,
}

/// Streams until stopped or an error; the caller reconnects.
pub async fn stream_log(
    client: &mut Client,
    s: &Settings<'_>,
    stop: &mut StopSignal,
) -> Result<Outcome, ReceiveError> {
    // As pg_receivewal: a failing IDENTIFY_SYSTEM ends the program rather than retrying.
    let sys = client.identify_system().await.map_err(|e| ReceiveError {
        fatal: true,
        ..db("could not send replication command \"IDENTIFY_SYSTEM\"", e)
    })?;
    if sys.system_id != s.system_id {
        return Err(ReceiveError::retry(format!(
            "system identifier of the server ({}) differs from the first connection's ({})",
            sys.system_id, s.system_id
        )));
    }
    let (mut start, mut tli) = start_position(client, s, &sys).await?;
    start = s.seg.round_down(start);
    if s.verbose {
        info(format!(
            "starting log streaming at {start} (timeline {tli})"
        ));
    }
    if tli > sys.timeline {
        return Err(ReceiveError::retry(format!(
            "starting timeline {tli} is not present in the server"
        )));
    }
    let writer = SegmentWriter::new(
        WriterSettings {
            dir: s.dir.to_owned(),
            files: s.files,
            verbose: s.verbose,
            monitor: s.monitor.clone(),
        },
        start,
    );
    let mut r = Receiver {
        s,
        tli,
        writer,
        open: None,
        received: start,
        report_flush: s.slot.is_some() || s.synchronous,
    };
    let res = loop {
        if tli.0 != 1 {
            if let Err(e) = fetch_history(client, s, tli).await {
                break Err(e);
            }
        }
        if s.endpos.is_some_and(|e| e < start) || stop.requested() {
            break Ok(Outcome::Stopped);
        }
        r.tli = tli;
        r.received = start;
        match r.stream(client, start, stop).await {
            Ok(StreamEnd::EndOfTimeline {
                next_timeline,
                next_start,
            }) => {
                // Stopped by us (--endpos or a signal) on a historic timeline: the server
                // still reports the next timeline, which is no reason to go on or to fail.
                if stop.requested() || s.endpos.is_some_and(|e| e < r.received) {
                    break Ok(Outcome::Stopped);
                }
                if next_timeline <= tli {
                    break Err(ReceiveError::retry(format!(
                        "server reported unexpected next timeline {next_timeline}, following timeline {tli}"
                    )));
                }
                if next_start > r.received {
                    break Err(ReceiveError::retry(format!(
                        "server stopped streaming timeline {tli} at {}, but reported next timeline {next_timeline} to begin at {next_start}",
                        r.received
                    )));
                }
                tli = next_timeline;
                start = s.seg.round_down(next_start);
                if s.verbose {
                    info(format!("switched to timeline {tli} at {next_start}"));
                }
            }
            Ok(StreamEnd::Stopped { .. } | StreamEnd::ServerEnded { .. }) => {
                if stop.requested() || s.endpos.is_some_and(|e| e < r.received) {
                    break Ok(Outcome::Stopped);
                }
                break Err(ReceiveError::retry(
                    "replication stream was terminated before stop point",
                ));
            }
            Err(e) => break Err(e),
        }
    };
    s.monitor.disconnected();
    // Whatever happened, close the open segment (kept as .partial unless complete).
    let closed = r.close_file();
    if s.files.sync {
        fsync_dir(s.dir)?;
    }
    if let Ok(Outcome::Stopped) = &res {
        if s.verbose {
            info(format!(
                "stopped log streaming at {} (timeline {})",
                r.received, r.tli
            ));
        }
    }
    closed?;
    res
}

/// The newest segment in the directory, else the slot's restart_lsn (15+), else the
/// server's current position.
async fn start_position(
    client: &mut Client,
    s: &Settings<'_>,
    sys: &pgwire_repl::IdentifySystem,
) -> Result<(Lsn, TimelineId), ReceiveError> {
    let found =
        find_streaming_start(s.dir, s.seg, &mut |w| crate::output::warning(w)).map_err(|e| {
            ReceiveError {
                message: format!(
                    "could not read directory \"{}\": {}",
                    s.dir.display(),
                    os_error(&e)
                ),
                fatal: true,
            }
        })?;
    if let Some(f) = found {
        return Ok((f.start, f.timeline));
    }
    if let Some(slot) = s.slot {
        if client.server_version() >= 150000 {
            let read = client.read_replication_slot(slot).await.map_err(|e| {
                db(
                    &format!("could not send replication command \"READ_REPLICATION_SLOT {slot}\""),
                    e,
                )
            })?;
            match read.slot_type.as_deref() {
                None => {
                    return Err(ReceiveError::retry(format!(
                        "replication slot \"{slot}\" does not exist"
                    )))
                }
                Some("physical") => {}
                Some(other) => {
                    return Err(ReceiveError::retry(format!(
                        "expected a physical replication slot, got type \"{other}\" instead"
                    )))
                }
            }
            if let (Some(lsn), Some(tli)) = (read.restart_lsn, read.restart_tli) {
                return Ok((lsn, tli));
            }
        } else if s.verbose {
            info(format!(
                "server {} has no READ_REPLICATION_SLOT: starting at the current position",
                version_text(client.server_version())
            ));
        }
    }
    Ok((sys.xlogpos, sys.timeline))
}

/// Writes `NNNNNNNN.history` when missing: to `.tmp`, then renamed.
async fn fetch_history(
    client: &mut Client,
    s: &Settings<'_>,
    tli: TimelineId,
) -> Result<(), ReceiveError> {
    let name = tli.history_file_name();
    let path = s.dir.join(&name);
    if path.exists() {
        return Ok(());
    }
    let h = client.timeline_history(tli).await.map_err(|e| {
        db(
            &format!(
                "could not send replication command \"TIMELINE_HISTORY {}\"",
                tli.0
            ),
            e,
        )
    })?;
    if h.file_name != name {
        return Err(ReceiveError::retry(format!(
            "server reported unexpected history file name for timeline {tli}: {}",
            h.file_name
        )));
    }
    let tmp = s.dir.join(format!("{name}.tmp"));
    let io = |what: &str, p: &Path, e: std::io::Error| {
        ReceiveError::retry(format!("{what} \"{}\": {}", p.display(), os_error(&e)))
    };
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(s.files.mode)
            .open(&tmp)
            .map_err(|e| io("could not create file", &tmp, e))?;
        crate::walfile::set_mode(&f, s.files.mode, &tmp)?;
        f.write_all(&h.content)
            .map_err(|e| io("could not write to file", &tmp, e))?;
        if s.files.sync {
            f.sync_all()
                .map_err(|e| io("could not fsync file", &tmp, e))?;
        }
    }
    std::fs::rename(&tmp, &path).map_err(|e| io("could not rename file", &tmp, e))?;
    if s.files.sync {
        fsync_dir(s.dir)?;
    }
    Ok(())
}

impl Receiver<'_> {
    /// Closes the open segment (kept `.partial`) once everything before is written.
    fn close_file(&mut self) -> Result<(), ReceiveError> {
        self.open = None;
        self.writer.close()?;
        Ok(())
    }

    fn positions(&self, sender: &StreamSender) {
        let flush = if self.report_flush {
            self.writer.flushed()
        } else {
            Lsn::INVALID
        };
        sender.set_positions(self.writer.written(), flush, Lsn::INVALID);
    }

    /// fsyncs the open file if it holds unflushed WAL, and advances the flush position.
    fn flush(&mut self) -> Result<(), ReceiveError> {
        if self.writer.flushed() < self.received {
            self.writer.sync()?;
        }
        Ok(())
    }

    /// One START_REPLICATION on the current timeline.
    async fn stream(
        &mut self,
        client: &mut Client,
        start: Lsn,
        stop: &mut StopSignal,
    ) -> Result<StreamEnd, ReceiveError> {
        let feedback = FeedbackConfig {
            status_interval: self.s.status_interval,
            receive_timeout: Some(Duration::from_secs(60)),
            // Replies may need an fsync first: this loop answers them itself.
            reply_to_keepalives: false,
        };
        let mut opts = StartReplication::new(start)
            .timeline(self.tli)
            .feedback(feedback);
        opts.slot = self.s.slot.map(str::to_owned);
        let mut stream = client.start_replication(opts).await.map_err(|e| {
            db(
                "could not send replication command \"START_REPLICATION\"",
                e,
            )
        })?;
        let sender = stream.sender();
        self.positions(&sender);
        self.s.monitor.streaming(start, self.tli);
        self.s.monitor.flushed(self.writer.flushed());
        let mut stopping = false;
        // One wait for the whole stream (not one per message: each registers a waiter).
        let stop_wait = stop.wait();
        tokio::pin!(stop_wait);
        loop {
            let ev = tokio::select! {
                biased;
                _ = &mut stop_wait, if !stopping => None,
                ev = stream.recv() => Some(ev),
            };
            let ev = match ev {
                None => {
                    // A signal: close what we have and end the stream.
                    stopping = true;
                    if self.s.verbose {
                        info("received interrupt signal, exiting");
                    }
                    self.close_file()?;
                    stream.request_stop().await.map_err(|e| db("", e))?;
                    continue;
                }
                Some(ev) => {
                    ev.map_err(|e| db("unexpected termination of replication stream", e))?
                }
            };
            match ev {
                StreamEvent::XLogData(x) => {
                    if stopping {
                        continue;
                    }
                    self.s.monitor.xlogdata(&x);
                    if self.write(&x)? {
                        stopping = true;
                        self.close_file()?;
                        stream.request_stop().await.map_err(|e| db("", e))?;
                        continue;
                    }
                    self.positions(&sender);
                }
                StreamEvent::Keepalive(k) => {
                    self.s.monitor.keepalive(&k);
                    if k.reply_requested && !stopping {
                        if self.report_flush {
                            self.flush()?;
                        }
                        self.positions(&sender);
                        send_status(&sender).await?;
                    }
                }
                StreamEvent::End(end) => {
                    drop(stream);
                    // End of timeline: the last segment stays .partial.
                    self.close_file()?;
                    return Ok(end);
                }
            }
            // --synchronous: once what has arrived is written, fsync and report at once.
            if self.s.synchronous
                && !stopping
                && self.writer.flushed() < self.received
                && !stream.message_ready_now().await
            {
                self.flush()?;
                self.positions(&sender);
                send_status(&sender).await?;
            }
        }
    }

    /// Writes one XLogData, split at segment boundaries (slices of the socket buffer, dropped
    /// once written).
    /// Returns true when --endpos has been passed and streaming should stop.
    fn write(&mut self, x: &XLogData) -> Result<bool, ReceiveError> {
        let seg = self.s.seg;
        for w in seg.writes(x.wal_start, x.data.len()) {
            match self.open {
                None if w.offset != 0 => {
                    return Err(ReceiveError::retry(format!(
                        "received write-ahead log record for offset {} with no file open",
                        w.offset
                    )))
                }
                None => self.writer.open(
                    seg.file_name(self.tli, w.segno),
                    Lsn(x.wal_start.0 + w.range.start as u64),
                )?,
                Some(pos) if pos != w.offset => {
                    return Err(ReceiveError::retry(format!(
                        "got WAL data offset {:08x}, expected {pos:08x}",
                        w.offset
                    )))
                }
                Some(_) => {}
            }
            // The decoder checked that the payload's end does not overflow.
            let end = Lsn(x.wal_start.0 + w.range.end as u64);
            let complete = w.ends_segment(seg);
            self.writer.write(x.data.slice(w.range.clone()), end)?;
            self.received = end;
            if complete {
                self.open = None;
                self.writer.complete(self.tli)?;
                if self.s.endpos.is_some_and(|e| e < end) {
                    return Ok(true);
                }
            } else {
                self.open = Some(w.offset + w.range.len() as u32);
            }
        }
        Ok(self.s.endpos.is_some_and(|e| e < self.received))
    }
}

async fn send_status(sender: &StreamSender) -> Result<(), ReceiveError> {
    match sender.send_status(false).await {
        Ok(()) | Err(pgwire_repl::Error::Closed(_)) => Ok(()),
        Err(e) => Err(db("could not send feedback packet", e)),
    }
}
