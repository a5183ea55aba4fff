//! The one owner of positions while receiving: which segment is open and how far it is
//! written, the position after the last byte written, and the position that is durable.
//!
//! WAL is written straight from the socket buffer, as each message arrives, while its bytes
//! are still in the CPU's cache; the slice is dropped once written, so the library's read
//! buffer reuses its memory. (A writer thread fed through a queue cost more CPU than the
//! overlap saved; see `docs/benchmarks.md`.) The disk works while WAL arrives anyway: the
//! file starts writeback every MiB ([`crate::archive::WRITEBACK_AFTER`]).
//!
//! A failure is kept: later calls return it (closing the open file as `.partial` is still
//! done).

use pgwire_repl::{Lsn, TimelineId, WalSegmentSize, XLogData};

use crate::archive::names::PARTIAL;
use crate::archive::{Archive, FileError, FileSettings, SegmentFile};
use crate::observe::monitor::Monitor;
use crate::output::info;
use crate::stream::StreamError;
use crate::upload::UploadQueue;

/// The open segment.
struct Open {
    file: SegmentFile,
    /// Bytes of the segment written so far.
    offset: u32,
    /// Its first byte's position.
    start: Lsn,
}

/// Writes one connection's WAL into the archive's segments. See the [module docs](self).
pub struct SegmentWriter {
    archive: Archive,
    files: FileSettings,
    seg: WalSegmentSize,
    verbose: bool,
    monitor: Monitor,
    tli: TimelineId,
    open: Option<Open>,
    /// The position after the last byte written (pg_receivewal's `blockpos`).
    written: Lsn,
    /// Up to here WAL is durable (written, with `--no-sync`).
    flushed: Lsn,
    error: Option<FileError>,
    /// Told of each complete segment, when the archive is an object store.
    uploads: Option<UploadQueue>,
}

impl SegmentWriter {
    /// A writer whose written and flushed positions start at `start` (a segment boundary).
    pub fn new(
        archive: Archive,
        files: FileSettings,
        seg: WalSegmentSize,
        verbose: bool,
        monitor: Monitor,
        start: Lsn,
    ) -> SegmentWriter {
        SegmentWriter {
            archive,
            files,
            seg,
            verbose,
            monitor,
            tli: TimelineId(1),
            open: None,
            written: start,
            flushed: start,
            error: None,
            uploads: None,
        }
    }

    /// Each segment, once complete, is queued for upload to the object store.
    pub fn upload_to(&mut self, q: UploadQueue) {
        self.uploads = Some(q);
    }

    /// Makes the open `.partial` readable as it is now (see
    /// [`SegmentFile::flush_buffers`]) and returns its name; `None` with no segment open.
    pub fn partial_snapshot(&mut self) -> Result<Option<String>, FileError> {
        self.run(|w| match w.open.as_mut() {
            Some(open) => {
                open.file.flush_buffers()?;
                Ok(Some(open.file.partial_name()))
            }
            None => Ok(None),
        })
    }

    /// Streaming (again) on `tli` from `start`, a segment boundary.
    pub fn start_timeline(&mut self, tli: TimelineId, start: Lsn) {
        self.tli = tli;
        self.written = start;
    }

    pub fn timeline(&self) -> TimelineId {
        self.tli
    }

    /// The position after the last byte written.
    pub fn written(&self) -> Lsn {
        self.written
    }

    /// The position up to which WAL is durable (written, with `--no-sync`): advanced when a
    /// segment completes and by [`sync`](Self::sync).
    pub fn flushed(&self) -> Lsn {
        self.flushed
    }

    /// Writes one XLogData, split at segment boundaries (slices of the socket buffer,
    /// dropped once written). Returns true when `endpos` has been passed: then writing
    /// stops after the segment that completes past it.
    pub fn write(&mut self, x: &XLogData, endpos: Option<Lsn>) -> Result<bool, StreamError> {
        let seg = self.seg;
        for w in seg.writes(x.wal_start, x.data.len()) {
            let offset = match &self.open {
                None if w.offset != 0 => {
                    return Err(StreamError::retry(format!(
                        "received write-ahead log record for offset {} with no file open",
                        w.offset
                    )))
                }
                None => {
                    let name = seg.file_name(self.tli, w.segno);
                    let file = self.run(|w| w.archive.create_segment(&name, w.files))?;
                    self.open = Some(Open {
                        file,
                        offset: 0,
                        start: seg.segment_start(w.segno).unwrap_or(x.wal_start),
                    });
                    0
                }
                Some(open) if open.offset != w.offset => {
                    return Err(StreamError::retry(format!(
                        "got WAL data offset {:08x}, expected {:08x}",
                        w.offset, open.offset
                    )))
                }
                Some(open) => open.offset,
            };
            // The decoder checked that the payload's end does not overflow.
            let end = Lsn(x.wal_start.0 + w.range.end as u64);
            let data = x.data.slice(w.range.clone());
            self.run(|wr| match wr.open.as_mut() {
                Some(open) => open.file.write_at(offset, &data),
                None => Err(no_file()),
            })?;
            self.written = end;
            if w.ends_segment(seg) {
                self.complete()?;
                if endpos.is_some_and(|e| e < end) {
                    return Ok(true);
                }
            } else if let Some(open) = self.open.as_mut() {
                open.offset = w.offset + w.range.len() as u32;
            }
        }
        Ok(endpos.is_some_and(|e| e < self.written))
    }

    /// The open segment is complete: fsync, rename, report.
    fn complete(&mut self) -> Result<(), FileError> {
        let (name, start) = self.run(|w| {
            let open = w.open.take().ok_or_else(no_file)?;
            let start = open.start;
            let name = open.file.partial_name();
            open.file.close(true)?;
            Ok((name, start))
        })?;
        if let Some(q) = &self.uploads {
            let complete = name.strip_suffix(PARTIAL).unwrap_or(&name).to_owned();
            q.segment(complete, start);
        }
        self.set_flushed(self.written);
        self.monitor.segment_completed();
        if self.verbose {
            info(format!(
                "finished segment at {} (timeline {})",
                self.written, self.tli
            ));
        }
        Ok(())
    }

    /// Runs `f` unless an earlier call failed; a failure is kept.
    fn run<T>(
        &mut self,
        f: impl FnOnce(&mut SegmentWriter) -> Result<T, FileError>,
    ) -> Result<T, FileError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        f(self).inspect_err(|e| self.error = Some(e.clone()))
    }

    /// fsyncs what is written (when syncing) and advances the flushed position — or returns
    /// the writer's error.
    pub fn sync(&mut self) -> Result<Lsn, FileError> {
        self.run(|w| {
            if w.flushed < w.written {
                if let Some(open) = w.open.as_mut() {
                    if w.files.sync {
                        open.file.sync()?;
                    }
                    w.set_flushed(w.written);
                }
            }
            Ok(())
        })?;
        Ok(self.flushed)
    }

    /// Closes the open segment (kept `.partial`, with what it holds fsynced); returns the
    /// writer's error, if any.
    pub fn close(&mut self) -> Result<(), FileError> {
        match (self.open.take(), &self.error) {
            // After a failure, leave what there is as .partial; the error is already kept.
            (Some(open), Some(e)) => {
                let _ = open.file.close(false);
                Err(e.clone())
            }
            (None, Some(e)) => Err(e.clone()),
            (Some(open), None) => open
                .file
                .close(false)
                .inspect_err(|e| self.error = Some(e.clone())),
            (None, None) => Ok(()),
        }
    }

    fn set_flushed(&mut self, lsn: Lsn) {
        self.flushed = self.flushed.max(lsn);
        self.monitor.flushed(self.flushed);
    }
}

fn no_file() -> FileError {
    FileError::Internal("internal error: no segment file open")
}
