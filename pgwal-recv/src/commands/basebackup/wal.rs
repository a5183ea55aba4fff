//! `-X stream`: the WAL a backup needs, streamed on a second connection while the backup
//! runs, into `pg_wal/` (plain format) or `pg_wal.tar` (tar format), as pg_basebackup's
//! background WAL receiver does: from the start of the backup's first segment until the
//! backup's end position (learnt when the backup ends) has been received.
//!
//! Segments are written under their final names, the last one zero-padded to the segment
//! size, as pg_basebackup writes them (no `.partial`): a backup's `pg_wal` is read by
//! recovery and by pg_verifybackup, which expect whole segment files.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

use crate::archive::compress::CompressSpec;

use pgwire_repl::{
    Client, CreateSlotOptions, Lsn, StartReplication, StreamEnd, StreamEvent, TimelineId,
    WalSegmentSize,
};
use tokio::sync::watch;

use crate::output::{os_error, report};

/// Where the streamed WAL goes.
pub enum WalTarget {
    /// A directory (the backup's `pg_wal`, or `--waldir`).
    Dir(PathBuf),
    /// A tar archive (`pg_wal.tar`, compressed as `-Z` says): one member per segment.
    Tar(PathBuf, CompressSpec),
}

/// The streaming connection's slot.
pub enum WalSlot {
    /// A temporary slot made here (`pg_basebackup_PID`, as pg_basebackup names it).
    Temporary,
    /// `-S NAME`, created first with `-C`.
    Named { name: String, create: bool },
    /// `--no-slot`.
    None,
}

/// What to stream, and where to.
pub struct WalStream {
    /// The backup's start (streaming begins at its segment's start).
    pub start: Lsn,
    pub timeline: TimelineId,
    pub seg: WalSegmentSize,
    pub slot: WalSlot,
    pub target: WalTarget,
    pub verbose: bool,
}

/// Starts [`stream`] on a thread of its own, with its own runtime and connection (a socket
/// belongs to the runtime that opened it, and the caller's blocks while it writes the
/// archives): the WAL is received and written while the backup is.
pub fn spawn(
    mut config: pgwire_repl::Config,
    conn: crate::cli::ConnOptions,
    w: WalStream,
    end: watch::Receiver<Option<Lsn>>,
) -> Result<std::thread::JoinHandle<Result<u64, String>>, String> {
    std::thread::Builder::new()
        .name("wal-receiver".into())
        .spawn(move || {
            crate::connect::block_on_result(async move {
                let client = crate::connect::connect(&mut config, &conn, true).await?;
                stream(client, w, end).await
            })
        })
        .map_err(|e| format!("could not start the WAL receiver: {e}"))
}

/// Streams WAL from `w.start` (rounded down to its segment) on `w.timeline` until the end
/// position arrives on `end` and has been received. Returns the number of segments written.
pub async fn stream(
    mut client: Client,
    w: WalStream,
    mut end: watch::Receiver<Option<Lsn>>,
) -> Result<u64, String> {
    let (start, timeline, seg, verbose) = (w.start, w.timeline, w.seg, w.verbose);
    let slot_name = match w.slot {
        WalSlot::Temporary => {
            let name = format!("pg_basebackup_{}", client.server_info().process_id);
            create_slot(&mut client, &name, true).await?;
            if verbose {
                crate::output::info(format!("created temporary replication slot \"{name}\""));
            }
            Some(name)
        }
        WalSlot::Named { name, create } => {
            if create {
                create_slot(&mut client, &name, false).await?;
                if verbose {
                    crate::output::info(format!("created replication slot \"{name}\""));
                }
            }
            Some(name)
        }
        WalSlot::None => None,
    };
    let from = seg.round_down(start);
    let mut opts = StartReplication::new(from).timeline(timeline);
    if let Some(s) = &slot_name {
        opts = opts.slot(s.clone());
    }
    let mut writer = SegmentWriter::new(w.target, seg, timeline)
        .map_err(|e| format!("could not write WAL: {}", os_error(&e)))?;
    let mut stream = client
        .start_replication(opts)
        .await
        .map_err(|e| format!("could not start streaming WAL: {}", report(&e)))?;
    let sender = stream.sender();
    let mut received = from;
    let mut stopping = false;
    let mut end_at: Option<Lsn> = *end.borrow_and_update();
    loop {
        if !stopping && end_at.is_some_and(|e| received >= e) {
            stream
                .request_stop()
                .await
                .map_err(|e| format!("could not stop streaming WAL: {}", report(&e)))?;
            stopping = true;
        }
        let event = tokio::select! {
            ev = stream.recv() => ev.map_err(|e| format!("could not receive WAL: {}", report(&e)))?,
            changed = end.changed(), if end_at.is_none() => {
                if changed.is_err() {
                    // The backup gave up; the caller reports why.
                    return Err("the base backup ended without an end position".into());
                }
                end_at = *end.borrow_and_update();
                continue;
            }
        };
        match event {
            StreamEvent::XLogData(x) => {
                if x.wal_start != received {
                    return Err(format!(
                        "WAL stream jumped from {received} to {}",
                        x.wal_start
                    ));
                }
                writer
                    .write(x.wal_start, &x.data)
                    .map_err(|e| format!("could not write WAL: {}", os_error(&e)))?;
                received = x.data_end().unwrap_or(received);
                sender.set_positions(received, received, Lsn::INVALID);
            }
            StreamEvent::Keepalive(_) => {}
            StreamEvent::End(how) => {
                if end_at.is_none_or(|e| received < e) {
                    return Err(match how {
                        StreamEnd::EndOfTimeline { .. } => format!(
                            "the server switched timelines at {received} before the backup's \
                             WAL was complete"
                        ),
                        _ => format!("the WAL stream ended at {received}, before the backup's end"),
                    });
                }
                break;
            }
        }
    }
    drop(stream);
    let segments = writer
        .finish()
        .map_err(|e| format!("could not write WAL: {}", os_error(&e)))?;
    let _ = client.close().await;
    Ok(segments)
}

async fn create_slot(client: &mut Client, name: &str, temporary: bool) -> Result<(), String> {
    client
        .create_replication_slot(
            name,
            CreateSlotOptions {
                temporary,
                reserve_wal: true,
            },
        )
        .await
        .map(drop)
        .map_err(|e| {
            format!(
                "could not create replication slot \"{name}\": {}",
                report(&e)
            )
        })
}

/// Writes WAL in LSN order into whole segment files or tar members.
struct SegmentWriter {
    out: Out,
    seg: WalSegmentSize,
    timeline: TimelineId,
    /// The open segment's number and the bytes written into it.
    current: Option<(u64, u32)>,
    segments: u64,
}

/// Where segments go: files in a directory (the open one kept), or members of one tar.
enum Out {
    Dir { dir: PathBuf, open: Option<File> },
    Tar(super::sink::TarOut),
}

impl Out {
    /// Writes into the open segment; in a directory, a segment is open after `open_segment`.
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Out::Dir { open: Some(f), .. } => f.write_all(data),
            Out::Dir { open: None, .. } => Err(io::Error::other("no WAL segment is open")),
            Out::Tar(t) => t.write(data),
        }
    }
}

impl SegmentWriter {
    fn new(target: WalTarget, seg: WalSegmentSize, timeline: TimelineId) -> io::Result<Self> {
        let out = match target {
            WalTarget::Tar(path, spec) => Out::Tar(super::sink::TarOut::create(&path, spec)?),
            WalTarget::Dir(dir) => {
                std::fs::create_dir_all(&dir)?;
                Out::Dir { dir, open: None }
            }
        };
        Ok(SegmentWriter {
            out,
            seg,
            timeline,
            current: None,
            segments: 0,
        })
    }

    fn write(&mut self, start: Lsn, data: &[u8]) -> io::Result<()> {
        for piece in self.seg.writes(start, data.len()) {
            if self.current.map(|(segno, _)| segno) != Some(piece.segno) {
                self.close_segment()?;
                self.open_segment(piece.segno)?;
            }
            self.out.write_all(&data[piece.range.clone()])?;
            self.current = Some((piece.segno, piece.offset + piece.range.len() as u32));
        }
        Ok(())
    }

    fn open_segment(&mut self, segno: u64) -> io::Result<()> {
        let name = self.seg.file_name(self.timeline, segno);
        match &mut self.out {
            Out::Dir { dir, open } => {
                let f = File::create(dir.join(&name))?;
                // Whole size from the start, as pg_basebackup pads: the last segment is
                // a segment file even though it is not complete.
                f.set_len(u64::from(self.seg.bytes()))?;
                *open = Some(f);
            }
            Out::Tar(t) => {
                let mut h = tar::Header::new_ustar();
                h.set_path(&name)?;
                h.set_size(u64::from(self.seg.bytes()));
                h.set_mode(0o600);
                // The writer's own ids, as pg_basebackup's tar members carry.
                h.set_uid(u64::from(rustix::process::geteuid().as_raw()));
                h.set_gid(u64::from(rustix::process::getegid().as_raw()));
                h.set_mtime(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs()),
                );
                h.set_entry_type(tar::EntryType::Regular);
                h.set_cksum();
                t.write(h.as_bytes())?;
            }
        }
        self.current = Some((segno, 0));
        self.segments += 1;
        Ok(())
    }

    /// Ends the open segment: in a tar, zeros up to the segment size (the member's size).
    fn close_segment(&mut self) -> io::Result<()> {
        let Some((_, written)) = self.current.take() else {
            return Ok(());
        };
        match &mut self.out {
            // Already full size; the file is synced with the rest of the backup.
            Out::Dir { open, .. } => *open = None,
            Out::Tar(t) => {
                let zeros = [0u8; 8192];
                let mut left = (self.seg.bytes() - written) as usize;
                while left > 0 {
                    let n = left.min(zeros.len());
                    t.write(&zeros[..n])?;
                    left -= n;
                }
            }
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<u64> {
        self.close_segment()?;
        if let Out::Tar(mut t) = self.out {
            t.write(&[0u8; 1024])?;
            t.finish()?;
        }
        Ok(self.segments)
    }
}
