//! The segment writer: the file side of receiving, fed in stream order on the receiving
//! thread.
//!
//! WAL is written straight from the socket buffer, as each message arrives, while its bytes
//! are still in the CPU's cache; the slice is dropped once written, so the library's read
//! buffer reuses its memory. A writer thread fed through a queue was measured first: the
//! hand-off cost more CPU than the overlap saved (`--no-sync` catch-up: 0.5–1.1 s against
//! 0.4–0.45 s of CPU for 870 MB, and slower), because the copy into the page cache then read
//! WAL that had left the cache. The disk works while WAL arrives anyway: the file starts
//! writeback every MiB ([`crate::walfile::WRITEBACK_AFTER`]), so the fsync at a segment's end
//! has little left to wait for.
//!
//! A failure is kept as the writer's error: later calls return it (closing the open file as
//! `.partial` is still done).

use std::path::PathBuf;

use bytes::Bytes;
use pgwire_repl::{Lsn, TimelineId};

use crate::monitor::Monitor;
use crate::output::info;
use crate::walfile::{FileError, FileSettings, WalFile};

/// What the writer needs to know.
#[derive(Clone)]
pub struct WriterSettings {
    pub dir: PathBuf,
    pub files: FileSettings,
    pub verbose: bool,
    pub monitor: Monitor,
}

/// Writes segments for one connection's stream. See the [module docs](self).
pub struct SegmentWriter {
    s: WriterSettings,
    file: Option<WalFile>,
    /// The position after the last byte written.
    written: Lsn,
    flushed: Lsn,
    error: Option<FileError>,
}

impl SegmentWriter {
    /// A writer whose flushed position starts at `start`.
    pub fn new(s: WriterSettings, start: Lsn) -> SegmentWriter {
        SegmentWriter {
            s,
            file: None,
            written: start,
            flushed: start,
            error: None,
        }
    }

    /// The position up to which WAL is durable (written, with `--no-sync`): advanced when a
    /// segment completes and by [`sync`](Self::sync).
    pub fn flushed(&self) -> Lsn {
        self.flushed
    }

    /// The position after the last byte handed to the OS.
    pub fn written(&self) -> Lsn {
        self.written
    }

    /// Runs `f` unless an earlier call failed; a failure is kept.
    fn run(
        &mut self,
        f: impl FnOnce(&mut SegmentWriter) -> Result<(), FileError>,
    ) -> Result<(), FileError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        f(self).inspect_err(|e| self.error = Some(e.clone()))
    }

    /// Creates segment file `name`, which starts at `at`.
    pub fn open(&mut self, name: String, at: Lsn) -> Result<(), FileError> {
        self.run(|w| {
            w.file = Some(WalFile::open(&w.s.dir, &name, w.s.files)?);
            w.written = at;
            Ok(())
        })
    }

    /// Appends `data`, a slice of an XLogData payload ending at `end`.
    pub fn write(&mut self, data: Bytes, end: Lsn) -> Result<(), FileError> {
        self.run(|w| {
            w.file.as_mut().ok_or_else(no_file)?.write(&data)?;
            w.written = end;
            Ok(())
        })
    }

    /// The open segment is complete: fsync, rename, report.
    pub fn complete(&mut self, tli: TimelineId) -> Result<(), FileError> {
        self.run(|w| {
            w.file.take().ok_or_else(no_file)?.close()?;
            w.set_flushed(w.written);
            w.s.monitor.segment_completed();
            if w.s.verbose {
                info(format!(
                    "finished segment at {} (timeline {tli})",
                    w.written
                ));
            }
            Ok(())
        })
    }

    /// fsyncs what is written (when syncing) and returns the flushed position — or the
    /// writer's error.
    pub fn sync(&mut self) -> Result<Lsn, FileError> {
        self.run(|w| {
            if w.flushed < w.written {
                if let Some(f) = w.file.as_mut() {
                    if w.s.files.sync {
                        f.sync()?;
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
        match (self.file.take(), &self.error) {
            // After a failure, leave what there is as .partial; the error is already kept.
            (Some(f), Some(e)) => {
                let _ = f.close();
                Err(e.clone())
            }
            (None, Some(e)) => Err(e.clone()),
            (Some(f), None) => f.close().inspect_err(|e| self.error = Some(e.clone())),
            (None, None) => Ok(()),
        }
    }

    fn set_flushed(&mut self, lsn: Lsn) {
        self.flushed = self.flushed.max(lsn);
        self.s.monitor.flushed(self.flushed);
    }
}

fn no_file() -> FileError {
    FileError::Internal("internal error: no segment file open")
}
