//! Receiving one connection's worth of WAL into the archive: pick the start position, fetch
//! history files, write segments as the stream goes ([`segments`]), answer the server with
//! the written and flushed positions.

pub mod segments;
mod verify;

use std::time::Duration;

use pgwire_repl::{
    Client, Lsn, PrimaryKeepalive, ReplicationStream, StreamSender, TimelineId, WalSegmentSize,
    XLogData,
};

use crate::archive::{Archive, FileSettings};
use crate::observe::monitor::Monitor;
use crate::output::{info, os_error};
use crate::stream::follow::{follow, Follow, Handler, Step, StopReason};
use crate::stream::start::{slot_start, version_text, SlotStart};
use crate::stream::{StopSignal, StreamError};
use crate::upload::UploadQueue;
use segments::SegmentWriter;
use verify::Checker;

/// What receiving needs to know.
pub struct Settings<'a> {
    pub archive: &'a Archive,
    pub slot: Option<&'a str>,
    pub endpos: Option<Lsn>,
    pub status_interval: Option<Duration>,
    pub synchronous: bool,
    pub verbose: bool,
    /// Check each record as it arrives, before its bytes are reported flushed.
    pub verify: bool,
    pub files: FileSettings,
    pub seg: WalSegmentSize,
    /// The system identifier of the first connection: every later one must match.
    pub system_id: u64,
    /// Lag, rate and counters for the progress line and the metrics.
    pub monitor: Monitor,
    /// When `-D` is an object store: `archive` is then the local spool.
    pub upload: Option<Upload<'a>>,
}

/// Receiving into a spool for an object store (see [`crate::upload`]).
pub struct Upload<'a> {
    pub store: &'a Archive,
    pub queue: UploadQueue,
    /// Receiving pauses while this many complete segments wait for upload.
    pub spool_max: usize,
    /// `--upload-partial`.
    pub partial_every: Option<Duration>,
    /// A stop request ends a pause.
    pub stop: StopSignal,
}

/// Streams until stopped (Ok) or an error; the caller reconnects.
pub async fn stream_log(
    client: &mut Client,
    s: &Settings<'_>,
    stop: &mut StopSignal,
) -> Result<(), StreamError> {
    // As pg_receivewal: a failing IDENTIFY_SYSTEM ends the program rather than retrying.
    let sys = client.identify_system().await.map_err(|e| StreamError {
        fatal: true,
        ..StreamError::db("could not send replication command \"IDENTIFY_SYSTEM\"", &e)
    })?;
    if sys.system_id != s.system_id {
        return Err(StreamError::retry(format!(
            "system identifier of the server ({}) differs from the first connection's ({})",
            sys.system_id, s.system_id
        )));
    }
    let (start, tli) = start_position(client, s, &sys).await?;
    let start = s.seg.round_down(start);
    if s.verbose {
        info(format!(
            "starting log streaming at {start} (timeline {tli})"
        ));
    }
    if tli > sys.timeline {
        return Err(StreamError::retry(format!(
            "starting timeline {tli} is not present in the server"
        )));
    }
    let mut writer = SegmentWriter::new(
        s.archive.clone(),
        s.files,
        s.seg,
        s.verbose,
        s.monitor.clone(),
        start,
    );
    if let Some(u) = &s.upload {
        writer.upload_to(u.queue.clone());
    }
    let mut r = Receiver {
        s,
        checker: None,
        writer,
        report_flush: s.slot.is_some() || s.synchronous,
        sender: None,
        partial_at: tokio::time::Instant::now(),
        partial_written: Lsn::INVALID,
        closed_partial: None,
    };
    let opts = Follow {
        slot: s.slot.map(str::to_owned),
        status_interval: s.status_interval,
        // Replies may need an fsync first: the receiver answers them itself.
        reply_to_keepalives: false,
        deadline: None,
        // With an object store: the flush position follows the uploads, and the open
        // segment's snapshot goes up when due.
        tick: s.upload.as_ref().map(|_| Duration::from_secs(1)),
    };
    let res = follow(client, &opts, start, tli, stop, &mut r).await;
    s.monitor.disconnected();
    // Whatever happened, close the open segment (kept as .partial unless complete).
    let closed = r.writer.close();
    if s.files.sync {
        s.archive.sync()?;
    }
    if res.is_ok() && s.verbose {
        info(format!(
            "stopped log streaming at {} (timeline {})",
            r.writer.written(),
            r.writer.timeline()
        ));
    }
    closed?;
    res
}

/// The newest segment in the archive (for an object store: in the spool, else in the
/// store), else the slot's restart_lsn (15+), else the server's current position.
async fn start_position(
    client: &mut Client,
    s: &Settings<'_>,
    sys: &pgwire_repl::IdentifySystem,
) -> Result<(Lsn, TimelineId), StreamError> {
    let newest = |archive: &Archive| {
        let archive = archive.clone();
        async move {
            archive
                .newest_segment(s.seg, &mut |w| crate::output::warning(w))
                .await
                .map_err(|e| {
                    if archive.is_remote() {
                        // The store may be away for a while: try again after the pause.
                        StreamError::retry(format!(
                            "could not list archive \"{}\": {}",
                            archive.location().display(),
                            os_error(&e)
                        ))
                    } else {
                        StreamError::fatal(format!(
                            "could not read directory \"{}\": {}",
                            archive.location().display(),
                            os_error(&e)
                        ))
                    }
                })
        }
    };
    let mut found = newest(s.archive).await?;
    // The spool's newest is where to go on when it is the open segment (a .partial: nothing
    // newer was ever received). A complete one may be older than what the store holds already:
    // uploads run side by side and each leaves the spool once stored.
    if let Some(u) = s
        .upload
        .as_ref()
        .filter(|_| !found.as_ref().is_some_and(|f| f.partial))
    {
        if let Some(stored) = newest(u.store).await? {
            if found.as_ref().is_none_or(|f| stored.start > f.start) {
                found = Some(stored);
            }
        }
    }
    if let Some(f) = found {
        return Ok((f.start, f.timeline));
    }
    if let Some(slot) = s.slot {
        match slot_start(client, slot).await? {
            SlotStart::At(lsn, tli) => return Ok((lsn, tli)),
            SlotStart::NoRestartLsn => {}
            SlotStart::Unsupported(version) if s.verbose => info(format!(
                "server {} has no READ_REPLICATION_SLOT: starting at the current position",
                version_text(version)
            )),
            SlotStart::Unsupported(_) => {}
        }
    }
    Ok((sys.xlogpos, sys.timeline))
}

/// The archiver's side of the stream.
struct Receiver<'a> {
    s: &'a Settings<'a>,
    /// Checks every record as it arrives (`--verify`); started anew with each stream.
    checker: Option<Checker>,
    /// Writes the segment files and owns the positions.
    writer: SegmentWriter,
    /// Flush positions are reported only with a slot or --synchronous.
    report_flush: bool,
    /// The stream's sender, once started (positions are refreshed as uploads end).
    sender: Option<StreamSender>,
    /// When the open segment's snapshot last went to the store (`--upload-partial`), and
    /// how far WAL was written then.
    partial_at: tokio::time::Instant,
    partial_written: Lsn,
    /// The `.partial` closed at the end of the stream, until the server says it switched
    /// timeline.
    closed_partial: Option<String>,
}

impl Receiver<'_> {
    fn positions(&self, sender: &StreamSender) {
        let flush = if self.report_flush {
            // With --verify, nothing is flushed that has not been checked.
            let mut flush = match &self.checker {
                Some(c) => self.writer.flushed().min(c.checked),
                None => self.writer.flushed(),
            };
            // With an object store, a slot keeps what the store does not hold yet: the
            // open segment and those waiting for upload. With --synchronous the spool's
            // fsync is what counts.
            if let (Some(u), false) = (&self.s.upload, self.s.synchronous) {
                flush = flush.min(self.s.seg.round_down(self.writer.written()));
                if let Some(waiting) = u.queue.stored_before() {
                    flush = flush.min(waiting);
                }
            }
            flush
        } else {
            Lsn::INVALID
        };
        sender.set_positions(self.writer.written(), flush, Lsn::INVALID);
    }

    /// fsyncs the open file if it holds unflushed WAL, and advances the flush position.
    fn flush(&mut self) -> Result<(), StreamError> {
        if self.writer.flushed() < self.writer.written() {
            self.writer.sync()?;
        }
        Ok(())
    }

    /// Writes `NNNNNNNN.history` when the archive lacks it.
    async fn fetch_history(
        &mut self,
        client: &mut Client,
        tli: TimelineId,
    ) -> Result<(), StreamError> {
        let name = tli.history_file_name();
        let archive = self.s.archive;
        let have = archive.exists(&name).await.map_err(|e| {
            StreamError::retry(format!(
                "could not stat file \"{}\": {}",
                archive.location().join(&name).display(),
                os_error(&e)
            ))
        })?;
        if have {
            return Ok(());
        }
        let h = client.timeline_history(tli).await.map_err(|e| {
            StreamError::db(
                &format!(
                    "could not send replication command \"TIMELINE_HISTORY {}\"",
                    tli.0
                ),
                &e,
            )
        })?;
        if h.file_name != name {
            return Err(StreamError::retry(format!(
                "server reported unexpected history file name for timeline {tli}: {}",
                h.file_name
            )));
        }
        // Retried whatever failed, fsync included, as pg_receivewal does for history files.
        archive
            .put(&name, &h.content, &self.s.files)
            .await
            .map_err(|e| StreamError::retry(e.to_string()))?;
        if let Some(u) = &self.s.upload {
            u.queue.history(name);
        }
        Ok(())
    }

    /// With an object store: stops on an upload that failed for good, and pauses while
    /// `--spool-max` segments wait for upload, telling the server where the store is every
    /// few seconds (so that it neither times out nor gets ahead of what is stored).
    async fn wait_for_uploads(&mut self, sender: &StreamSender) -> Result<(), StreamError> {
        let Some(u) = &self.s.upload else {
            return Ok(());
        };
        let mut said = false;
        loop {
            if let Some(why) = u.queue.failed() {
                return Err(StreamError::fatal(why));
            }
            if u.queue.waiting() < u.spool_max || u.stop.requested() {
                if said && self.s.verbose {
                    info("uploads caught up; receiving again");
                }
                return Ok(());
            }
            if !said && self.s.verbose {
                info(format!(
                    "{} segments wait for upload (--spool-max): receiving pauses",
                    u.queue.waiting()
                ));
                said = true;
            }
            self.positions(sender);
            send_status(sender).await?;
            let mut stop = u.stop.clone();
            tokio::select! {
                _ = u.queue.progressed(Duration::from_secs(5)) => {}
                _ = stop.wait() => {}
            }
        }
    }
}

impl Handler for Receiver<'_> {
    async fn before_timeline(
        &mut self,
        client: &mut Client,
        tli: TimelineId,
        start: Lsn,
    ) -> Result<Step, StreamError> {
        if tli.0 != 1 {
            self.fetch_history(client, tli).await?;
        }
        if self.s.endpos.is_some_and(|e| e < start) {
            return Ok(Step::Stop);
        }
        self.writer.start_timeline(tli, start);
        Ok(Step::Go)
    }

    fn started(&mut self, sender: &StreamSender, tli: TimelineId, start: Lsn) {
        self.sender = Some(sender.clone());
        if self.s.verify {
            self.checker = Some(Checker::new(self.s, start));
        }
        self.positions(sender);
        self.s.monitor.streaming(start, tli);
        self.s.monitor.flushed(self.writer.flushed());
    }

    fn xlogdata(&mut self, x: &XLogData, sender: &StreamSender) -> Result<Step, StreamError> {
        self.s.monitor.xlogdata(x);
        // Checked before it is written: a bad record stops the archiver, and what was
        // received before it stays in the .partial.
        if let Some(c) = self.checker.as_mut() {
            c.check(x, &self.s.monitor)?;
        }
        if self.writer.write(x, self.s.endpos)? {
            return Ok(Step::Stop);
        }
        self.positions(sender);
        Ok(Step::Go)
    }

    async fn keepalive(
        &mut self,
        k: &PrimaryKeepalive,
        sender: &StreamSender,
    ) -> Result<(), StreamError> {
        self.s.monitor.keepalive(k);
        if k.reply_requested {
            if self.report_flush {
                self.flush()?;
            }
            self.positions(sender);
            send_status(sender).await?;
        }
        Ok(())
    }

    async fn after_message(
        &mut self,
        stream: &mut ReplicationStream<'_>,
        sender: &StreamSender,
    ) -> Result<(), StreamError> {
        self.wait_for_uploads(sender).await?;
        // --synchronous: once what has arrived is written, fsync and report at once.
        if self.s.synchronous
            && self.writer.flushed() < self.writer.written()
            && !stream.message_ready_now().await
        {
            self.flush()?;
            self.positions(sender);
            send_status(sender).await?;
        }
        Ok(())
    }

    fn stopping(&mut self, why: StopReason) -> Result<(), StreamError> {
        if why == StopReason::Signal && self.s.verbose {
            info("received interrupt signal, exiting");
        }
        self.writer.close()?;
        Ok(())
    }

    fn ended(&mut self) -> Result<(), StreamError> {
        // End of timeline: the last segment stays .partial (with an object store, it goes
        // there as such once the switch is confirmed, see `switched`).
        self.closed_partial = match self.s.upload {
            Some(_) => self.writer.partial_snapshot().ok().flatten(),
            None => None,
        };
        self.writer.close()?;
        Ok(())
    }

    fn received(&self) -> Lsn {
        self.writer.written()
    }

    fn next_start(&self, begins: Lsn) -> Lsn {
        self.s.seg.round_down(begins)
    }

    /// With an object store: the positions to report follow the uploads, and with
    /// `--upload-partial` a snapshot of the open segment goes to the store when due.
    fn tick(&mut self) {
        let Some(u) = &self.s.upload else { return };
        if let Some(sender) = &self.sender {
            self.positions(sender);
        }
        // Only when WAL came since the last one: an idle server's segment is not sent again.
        if u.partial_every
            .is_some_and(|every| self.partial_at.elapsed() >= every)
            && self.writer.written() > self.partial_written
        {
            self.partial_at = tokio::time::Instant::now();
            self.partial_written = self.writer.written();
            // A failure is kept by the writer and ends the stream at its next write.
            if let Ok(Some(name)) = self.writer.partial_snapshot() {
                u.queue.partial(name);
            }
        }
    }

    fn switched(&mut self, tli: TimelineId, at: Lsn) {
        if self.s.verbose {
            info(format!("switched to timeline {tli} at {at}"));
        }
        // The old timeline's last segment is final as a .partial: renamed to a name the
        // writer never opens (nor the start-position scan finds), then uploaded.
        if let (Some(u), Some(name)) = (&self.s.upload, self.closed_partial.take()) {
            let closed = format!("{name}{}", crate::upload::CLOSED);
            let (Some(from), Some(to)) = (
                self.s.archive.local_path(&name),
                self.s.archive.local_path(&closed),
            ) else {
                return;
            };
            match std::fs::rename(&from, &to) {
                Ok(()) => u.queue.closed(closed),
                Err(e) => crate::output::warning(format!(
                    "could not rename file \"{}\" to \"{}\": {}; it stays in the spool",
                    from.display(),
                    to.display(),
                    os_error(&e)
                )),
            }
        }
    }
}

async fn send_status(sender: &StreamSender) -> Result<(), StreamError> {
    match sender.send_status(false).await {
        Ok(()) | Err(pgwire_repl::Error::Closed(_)) => Ok(()),
        Err(e) => Err(StreamError::db("could not send feedback packet", &e)),
    }
}
