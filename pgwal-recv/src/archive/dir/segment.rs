//! One WAL segment being written: `<name>[.gz|.lz4|.zst].partial`, renamed to its final name
//! once complete.
//!
//! An uncompressed `.partial` is full size from its creation (see [`preallocate`]: sparse
//! when space is plentiful, fallocated when it is low, zero-filled with `--synchronous`), so
//! it is never short, whatever instant the process dies at; on a nearly full disk a full disk
//! shows up when the file is created rather than in the middle of it. Compressed files are streams
//! written from the segment start; a cleanly closed one is a valid stream of what arrived.
//!
//! Durability (unless `--no-sync`): the new file and its directory are fsynced at creation; a
//! complete segment is fsynced, renamed, and the directory fsynced; an incomplete one is
//! fsynced with its directory when closed.
//!
//! The page cache: an archived segment is not read again soon, so writeback of a plain
//! segment starts every [`WRITEBACK_AFTER`] bytes as WAL arrives and the file's pages are
//! dropped from the cache when it is closed (those already written back; PostgreSQL does the
//! same with its own WAL when nothing archives it): the pages it frees are the ones its next
//! writes get, memory still warm rather than new to the process (the figures are in
//! `docs/benchmarks.md`).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{fsync_dir, set_mode};
use crate::archive::compress::Method;
use crate::archive::zfile::Encoder;
use crate::archive::{FileError, FileOp, FileSettings};
use crate::output::info;

enum Sink {
    Plain(File),
    Compressed(Encoder),
}

/// An open segment file. Where the WAL goes in it is the caller's to say (see
/// [`crate::receive::segments`], the one owner of positions); the file keeps only what
/// writing it needs.
pub struct SegmentFile {
    dir: PathBuf,
    /// Without any suffix: `000000010000000000000003`.
    name: String,
    partial: PathBuf,
    sink: Option<Sink>,
    /// Writeback has been started for the bytes before this (see [`WRITEBACK_AFTER`]).
    kicked: u32,
    settings: FileSettings,
}

/// Writeback of a plain segment is started every this many bytes written (except with
/// `--synchronous`, which fsyncs every batch), so the disk works while WAL arrives, the fsync
/// at the segment's end has little left to wait for (PostgreSQL's own `wal_writer_flush_after`
/// idea), and with `--no-sync` the pages are clean, so droppable, by the time the file closes.
pub const WRITEBACK_AFTER: u32 = 1 << 20;

impl SegmentFile {
    /// Opens segment `name` for writing from its start.
    pub(crate) fn open(
        dir: &Path,
        name: &str,
        settings: FileSettings,
    ) -> Result<SegmentFile, FileError> {
        let suffix = settings.compress.method.suffix();
        let partial = dir.join(format!("{name}{suffix}.partial"));
        let sink = if settings.compress.method == Method::None {
            Sink::Plain(open_plain(&partial, &settings)?)
        } else {
            // A compressed stream restarts from the segment start: drop any old one.
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(settings.mode)
                .open(&partial)
                .map_err(|e| FileError::io(FileOp::Open, &partial, e))?;
            set_mode(&file, settings.mode, &partial)?;
            if settings.sync {
                file.sync_all()
                    .map_err(|e| FileError::io(FileOp::Fsync, &partial, e))?;
            }
            Sink::Compressed(
                Encoder::new(settings.compress, file)
                    .map_err(|e| FileError::io(FileOp::StartCompression, &partial, e))?,
            )
        };
        if settings.sync {
            fsync_dir(dir)?;
        }
        Ok(SegmentFile {
            dir: dir.to_owned(),
            name: name.to_owned(),
            partial,
            sink: Some(sink),
            kicked: 0,
            settings,
        })
    }

    /// Writes WAL at `offset` in the segment; the caller writes in order, from the start,
    /// and never past the segment's end (a compressed stream can only be appended to).
    pub fn write_at(&mut self, offset: u32, data: &[u8]) -> Result<(), FileError> {
        let res = match self.sink.as_mut() {
            Some(Sink::Plain(f)) => f.write_all_at(data, u64::from(offset)),
            Some(Sink::Compressed(z)) if z.uncompressed_len() != u64::from(offset) => {
                return Err(FileError::Internal(
                    "internal error: a compressed segment written out of order",
                ))
            }
            Some(Sink::Compressed(z)) => z.write_all(data),
            None => return Err(FileError::Internal("file already closed")),
        };
        res.map_err(|e| FileError::io(FileOp::Write, &self.partial, e))?;
        let end = offset + data.len() as u32;
        // Not with zero_fill (--synchronous), which fsyncs every batch anyway. Whole 64 KiB
        // blocks only (any page size): the page the next write continues must stay cached.
        if !self.settings.zero_fill && end.saturating_sub(self.kicked) >= WRITEBACK_AFTER {
            let to = end & !((64 << 10) - 1);
            if let Some(Sink::Plain(f)) = &self.sink {
                start_writeback(f, self.kicked, to);
            }
            self.kicked = to;
        }
        Ok(())
    }

    /// The `.partial` file's name (in its directory).
    pub fn partial_name(&self) -> String {
        self.partial
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Pushes a compressor's buffered output into the file (no fsync), so that the file as it
    /// is now holds a readable stream of everything written (the `--upload-partial`
    /// snapshot). Nothing to do for a plain file.
    pub fn flush_buffers(&mut self) -> Result<(), FileError> {
        match self.sink.as_mut() {
            Some(Sink::Compressed(z)) => z
                .flush()
                .map_err(|e| FileError::io(FileOp::Write, &self.partial, e)),
            _ => Ok(()),
        }
    }

    /// Makes everything written so far durable.
    pub fn sync(&mut self) -> Result<(), FileError> {
        let file = match self.sink.as_mut() {
            Some(Sink::Plain(f)) => &*f,
            Some(Sink::Compressed(z)) => {
                // Pushing out the compressor's buffer is a write (it can hit a full disk,
                // which is retried), not an fsync (whose failure is fatal).
                z.flush()
                    .map_err(|e| FileError::io(FileOp::Write, &self.partial, e))?;
                z.file()
            }
            None => return Ok(()),
        };
        // fdatasync: the segment's size was made durable when it was created, and fdatasync
        // still writes whatever block allocation its data needs (none with --synchronous,
        // whose segments are zero-filled); what it skips is the inode's times, which fsync
        // wrote synchronously whenever the modification time had ticked.
        file.sync_data()
            .map_err(|e| FileError::io(FileOp::Fsync, &self.partial, e))
    }

    /// Closes the file: renamed to its final name when `complete` (durably, unless
    /// `--no-sync`), else kept as `.partial` with a note.
    pub fn close(mut self, complete: bool) -> Result<(), FileError> {
        let file = match self.sink.take() {
            Some(Sink::Plain(f)) => f,
            Some(Sink::Compressed(z)) => z
                .finish()
                .map_err(|e| FileError::io(FileOp::FinishCompression, &self.partial, e))?,
            None => return Ok(()),
        };
        if self.settings.sync {
            file.sync_all()
                .map_err(|e| FileError::io(FileOp::Fsync, &self.partial, e))?;
        }
        // Only a hint (see the module docs): a failure changes nothing.
        let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
        drop(file);
        if complete {
            let done = self.dir.join(format!(
                "{}{}",
                self.name,
                self.settings.compress.method.suffix()
            ));
            std::fs::rename(&self.partial, &done).map_err(|e| {
                FileError::io(FileOp::Rename { to: done.clone() }, &self.partial, e)
            })?;
        } else {
            info(format!(
                "not renaming \"{}{}.partial\", segment is not complete",
                self.name,
                self.settings.compress.method.suffix()
            ));
        }
        if self.settings.sync {
            fsync_dir(&self.dir)?;
        }
        Ok(())
    }
}

impl Drop for SegmentFile {
    fn drop(&mut self) {
        // Dropped without close() (an error path): finish a compressed stream so the
        // .partial stays a valid stream; plain files need nothing.
        if let Some(Sink::Compressed(z)) = self.sink.take() {
            let _ = z.finish();
        }
    }
}

/// Starts writing back bytes `from..to` of `f` without waiting for it: `POSIX_FADV_DONTNEED`
/// starts writeback of the dirty pages (and drops pages already clean, which an archive does
/// not read again). Only a hint: the fsync still makes the data durable (and --no-sync never
/// promised it), so a failure is ignored.
fn start_writeback(f: &File, from: u32, to: u32) {
    let len = std::num::NonZeroU64::new(u64::from(to - from));
    let _ = rustix::fs::fadvise(f, u64::from(from), len, rustix::fs::Advice::DontNeed);
}

/// Opens or creates an uncompressed `.partial` at full size.
fn open_plain(path: &Path, s: &FileSettings) -> Result<File, FileError> {
    let size = u64::from(s.segment_size);
    match std::fs::metadata(path) {
        Ok(m) if m.len() == size => {
            // Left by an earlier run: reuse it, and make sure what it holds is on disk.
            let f = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| FileError::io(FileOp::Open, path, e))?;
            if s.sync {
                f.sync_all()
                    .map_err(|e| FileError::io(FileOp::FsyncExisting, path, e))?;
            }
            return Ok(f);
        }
        // An empty one (left by pg_receivewal, say) is allocated anew like a missing one.
        Ok(m) if m.len() != 0 => {
            return Err(FileError::WrongSize {
                path: path.to_owned(),
                size: m.len(),
                expected: size,
            })
        }
        _ => {}
    }
    // Allocated under a temporary name first: a crash between creating and allocating must
    // not leave a short .partial behind. A stale .tmp from such a crash is simply reused.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(s.mode)
        .open(&tmp)
        .map_err(|e| FileError::io(FileOp::Open, &tmp, e))?;
    set_mode(&f, s.mode, &tmp)?;
    if let Err(e) = preallocate(&f, size, s.zero_fill) {
        drop(f);
        let _ = std::fs::remove_file(&tmp);
        return Err(FileError::io(FileOp::Allocate, path, e));
    }
    if s.sync {
        f.sync_all()
            .map_err(|e| FileError::io(FileOp::Fsync, &tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        FileError::io(
            FileOp::Rename {
                to: path.to_owned(),
            },
            &tmp,
            e,
        )
    })?;
    Ok(f)
}

/// The size of each write that zero-fills a segment: a page. The page cache sizes its folios
/// by the write that creates them and an fsync writes back a dirty folio whole, so larger
/// zero writes made every `--synchronous` batch of a few hundred bytes write back a large
/// folio.
const ZERO_FILL_WRITE: usize = 4096;

/// Below this much free space (or 64 segments, if more), a new segment's blocks are
/// reserved up front, so that a full disk shows up when the file is created.
const LOW_SPACE: u64 = 1 << 30;

/// Makes the new file its full size, so it is never short. How:
///
/// - With plenty of free space, by setting its length (a sparse file; the blocks are
///   allocated as the WAL is written back): writing into fallocated (unwritten) extents
///   costs ext4 much more CPU.
/// - With little free space (under [`LOW_SPACE`]), by reserving the blocks (fallocate), so
///   that a full disk fails the creation — "could not allocate space" — rather than a write
///   in the middle of the segment. (A mid-segment ENOSPC with a sparse file is handled too:
///   a retried write error, and the segment is written again from its start.)
/// - With `zero_fill`, by writing zeros, as pg_receivewal does. That writes the segment
///   twice, but a later fdatasync then flushes data only (after fallocate, the first write
///   to each block also changes the extent map, which fdatasync must journal), so
///   `--synchronous`, which fsyncs every batch, zero-fills.
fn preallocate(f: &File, size: u64, zero_fill: bool) -> std::io::Result<()> {
    if zero_fill {
        let zeros = vec![0u8; ZERO_FILL_WRITE];
        let mut at = 0;
        while at < size {
            let n = zeros.len().min((size - at) as usize);
            f.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        return Ok(());
    }
    let free = rustix::fs::fstatvfs(f)
        .map(|v| v.f_bavail.saturating_mul(v.f_frsize))
        .unwrap_or(0);
    if free > LOW_SPACE.max(size.saturating_mul(64)) {
        return f.set_len(size);
    }
    match rustix::fs::fallocate(f, rustix::fs::FallocateFlags::empty(), 0, size) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::OPNOTSUPP) | Err(rustix::io::Errno::NOSYS) => f.set_len(size),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(sync: bool, zero_fill: bool) -> FileSettings {
        FileSettings {
            compress: crate::archive::compress::CompressSpec::default(),
            sync,
            mode: 0o600,
            zero_fill,
            segment_size: 4 << 20,
        }
    }

    #[test]
    fn a_segment_written_in_pieces_reads_back_whole_with_each_preallocation() {
        // Pieces that straddle the writeback interval (and a final short one).
        let data: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
        for (sync, zero_fill) in [(true, false), (true, true), (false, false)] {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path();
            let name = "000000010000000000000007";
            let mut f = SegmentFile::open(dir, name, settings(sync, zero_fill)).unwrap();
            // Full size from the start, whatever the method.
            let partial = dir.join(format!("{name}.partial"));
            assert_eq!(std::fs::metadata(&partial).unwrap().len(), 4 << 20);
            let mut at = 0;
            for piece in data.chunks(300_001) {
                f.write_at(at, piece).unwrap();
                at += piece.len() as u32;
            }
            assert_eq!(at, 4 << 20);
            f.close(true).unwrap();
            assert!(!partial.exists());
            assert!(std::fs::read(dir.join(name)).unwrap() == data);
        }
    }

    /// Bytes of `path` in the page cache, by util-linux's `fincore`; `None` when it cannot
    /// tell (no fincore, or a tmpfs, whose pages are the file itself).
    fn cached_bytes(path: &Path) -> Option<u64> {
        let fs = std::process::Command::new("stat")
            .args(["-f", "-c", "%T"])
            .arg(path)
            .output()
            .ok()?;
        if String::from_utf8_lossy(&fs.stdout).trim() == "tmpfs" {
            return None;
        }
        let out = std::process::Command::new("fincore")
            .args(["--bytes", "--noheadings", "--output", "RES"])
            .arg(path)
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }

    #[test]
    fn a_closed_segment_leaves_the_page_cache() {
        // With fsync on, the closed segment's pages are clean and dropped at once; the
        // control, a file written the same way and left alone, stays cached.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let data = vec![7u8; 4 << 20];
        let control = dir.join("control");
        std::fs::write(&control, &data).unwrap();
        let Some(before) = cached_bytes(&control) else {
            testenv::skip("fincore cannot tell what is cached here (missing, or a tmpfs)");
            return;
        };
        assert_eq!(before, 4 << 20, "the control is cached");
        let name = "000000010000000000000009";
        let mut f = SegmentFile::open(dir, name, settings(true, false)).unwrap();
        for (i, piece) in data.chunks(128 << 10).enumerate() {
            f.write_at((i * (128 << 10)) as u32, piece).unwrap();
        }
        f.close(true).unwrap();
        assert_eq!(cached_bytes(&dir.join(name)), Some(0));
    }
}
