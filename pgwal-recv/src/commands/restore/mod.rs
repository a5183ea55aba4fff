//! `pgwal-recv restore -D ARCHIVE [--partial] [--prefetch N] WALFILE DEST`: PostgreSQL's
//! `restore_command` for our archive.
//!
//! PostgreSQL reads the exit status (`RestoreArchivedFile` in `xlogarchive.c`): 0 is
//! restored; any other status up to 125 is "not in the archive", which is normal (it asks for
//! the next timeline's history file, for the segment after the last one) but also ends
//! archive recovery there and promotes; a status above 125 (`wait_result_is_any_signal`)
//! stops the server instead. So only a file that is truly absent gets [`EXIT_NOT_FOUND`],
//! quickly and silently; everything else that goes wrong — an archive that cannot be read, a
//! damaged or wrong file, an I/O error on DEST, a bad command line — gets [`EXIT_FAILED`] and
//! one line on stderr, and PostgreSQL never replays past what it was given.
//!
//! A segment is found uncompressed, `.zst`, `.lz4` or `.gz`, decompressed as it is read,
//! checked ([`check`]) and written to a temporary file beside DEST that is renamed to DEST
//! only when all of it passed: DEST is whole or absent. It is not fsynced: PostgreSQL
//! fsyncs the segments it keeps (`KeepFileRestoredFromArchive`) and reads the others once.
//! With `--partial`, a segment that is absent is restored from its `.partial` (the segment the
//! archiver was writing), padded with zeros. `.history` and `.backup` files are copied after
//! a lighter check. `--prefetch` restores the segments that come next ahead of time
//! ([`prefetch`]).

pub mod check;
pub mod prefetch;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

use pgwire_repl::protocol::command::parse_history;

use crate::archive::names::PARTIAL;
use crate::archive::{zfile, Archive, Method};
use crate::cli::RestoreOptions;
use crate::output::{error, info, os_error};
use check::{Checked, Ended, SegmentCheck};

/// The file is not in the archive.
pub const EXIT_NOT_FOUND: i32 = 1;
/// Anything else went wrong: above 125, so that PostgreSQL stops rather than promotes.
pub const EXIT_FAILED: i32 = 255;

/// Bytes read, checked and written at a time.
const CHUNK: usize = 512 << 10;
/// Buffers of [`CHUNK`] bytes a segment is restored through.
const POOL: usize = 6;
/// The most a `.history` or `.backup` file may hold (they are a few lines).
const MAX_TEXT_FILE: u64 = 16 << 20;
/// Compression suffixes in the order they are looked for.
const METHODS: [Method; 4] = [Method::None, Method::Zstd, Method::Lz4, Method::Gzip];

/// Why a restore did not happen.
#[derive(Debug)]
pub enum Failure {
    NotFound,
    Failed(String),
}

impl From<String> for Failure {
    fn from(s: String) -> Failure {
        Failure::Failed(s)
    }
}

/// What PostgreSQL may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 24 hex digits.
    Segment,
    /// `NNNNNNNN.history`.
    History,
    /// `<segment>.<offset>.backup`.
    Backup,
}

impl Kind {
    pub fn of(name: &str) -> Option<Kind> {
        let hex = |s: &str, n: usize| {
            s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F'))
        };
        if hex(name, 24) {
            return Some(Kind::Segment);
        }
        if let Some(t) = name.strip_suffix(".history") {
            return hex(t, 8).then_some(Kind::History);
        }
        let b = name.strip_suffix(".backup")?;
        let (seg, off) = b.split_once('.')?;
        (hex(seg, 24) && hex(off, 8)).then_some(Kind::Backup)
    }
}

/// Runs `restore`; the exit code.
pub fn main(o: RestoreOptions) -> i32 {
    if o.prefetch_worker {
        return prefetch::worker(&o);
    }
    match restore(&o) {
        Ok(note) => {
            if let Some(note) = note {
                info(note);
            }
            if prefetch::applies(&o) {
                prefetch::start(&o);
            }
            0
        }
        Err(Failure::NotFound) => EXIT_NOT_FOUND,
        Err(Failure::Failed(msg)) => {
            error(msg);
            EXIT_FAILED
        }
    }
}

/// Restores `o.walfile` to `o.dest`; a note to print when there is something to say.
pub fn restore(o: &RestoreOptions) -> Result<Option<String>, Failure> {
    let kind = Kind::of(&o.walfile).ok_or_else(|| {
        format!(
            "\"{}\" is not the name of a WAL segment, history or backup file",
            o.walfile
        )
    })?;
    check_archive(&o.directory)?;
    if prefetch::applies(o) && prefetch::take(&o.walfile, &o.dest)? {
        return Ok(None);
    }
    let archive = Archive::open(&o.directory).map_err(Failure::Failed)?;
    let found = find(&archive, &o.walfile, kind, o.partial)?;
    let system_id = system_id_beside(&o.dest);
    let (name, partial) = (found.name.clone(), found.partial);
    let checked = write_checked(found, &o.walfile, kind, system_id, &o.dest)?;
    let Some(checked) = checked.filter(|_| partial) else {
        return Ok(None);
    };
    let end = match checked.ended {
        Some(Ended::End(e)) => format!("valid WAL ends at {}", e.lsn),
        Some(Ended::Invalid(_, why)) => format!("valid WAL ends where {why}"),
        None => format!("{} bytes of WAL", checked.len),
    };
    Ok(Some(format!(
        "restored {} from \"{name}\" ({end}), padded with zeros to a segment",
        o.walfile
    )))
}

/// The archive must be a directory we can read: a mistyped `-D` is not "not found".
fn check_archive(dir: &Path) -> Result<(), Failure> {
    if crate::archive::objstore::is_url(dir) {
        // A store is checked by its first request.
        return Ok(());
    }
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!("archive \"{}\" is not a directory", dir.display()).into()),
        Err(e) => Err(format!(
            "could not access archive \"{}\": {}",
            dir.display(),
            os_error(&e)
        )
        .into()),
    }
}

/// A file found in the archive, open.
pub struct Found {
    /// Its name in the archive.
    pub name: String,
    pub method: Method,
    pub partial: bool,
    pub stored: Box<dyn Read + Send>,
    /// Its path, when the archive is local.
    pub local: Option<PathBuf>,
}

/// Looks for `walfile` as stored or compressed; with `partial`, then for its `.partial`
/// (and once more for the complete file, which the archiver may have just renamed).
pub fn find(archive: &Archive, walfile: &str, kind: Kind, partial: bool) -> Result<Found, Failure> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the runtime: {e}"))?;
    let open = |suffix: &str, partial: bool| -> Result<Option<Found>, Failure> {
        for method in METHODS {
            let name = format!("{walfile}{}{suffix}", method.suffix());
            match rt.block_on(archive.read(&name)) {
                Ok(stored) => {
                    return Ok(Some(Found {
                        local: archive.local_path(&name),
                        name,
                        method,
                        partial,
                        stored,
                    }))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Failure::Failed(format!(
                        "could not open file \"{}\": {}",
                        archive.location().join(&name).display(),
                        os_error(&e)
                    )))
                }
            }
        }
        Ok(None)
    };
    if let Some(f) = open("", false)? {
        return Ok(f);
    }
    if partial && kind == Kind::Segment {
        if let Some(f) = open(PARTIAL, true)? {
            return Ok(f);
        }
        if let Some(f) = open("", false)? {
            return Ok(f);
        }
    }
    Err(Failure::NotFound)
}

/// The system identifier of the cluster DEST belongs to: `%p` is `pg_wal/NAME` in its data
/// directory, whose `global/pg_control` starts with it.
pub fn system_id_beside(dest: &Path) -> Option<u64> {
    let datadir = dest.parent()?.parent()?;
    let datadir = if datadir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        datadir
    };
    let mut f = File::open(datadir.join("global").join("pg_control")).ok()?;
    let mut b = [0u8; 8];
    f.read_exact(&mut b).ok()?;
    Some(u64::from_le_bytes(b))
}

/// The temporary name DEST is written under.
pub fn temp_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".pgwal-recv.tmp");
    dest.with_file_name(name)
}

/// Decompresses `found` into a temporary file beside `dest`, checking it as it goes, and
/// renames it to `dest` when it passed. For a segment, what the check found.
pub fn write_checked(
    found: Found,
    walfile: &str,
    kind: Kind,
    system_id: Option<u64>,
    dest: &Path,
) -> Result<Option<Checked>, Failure> {
    let tmp = temp_path(dest);
    let result = write_to(found, walfile, kind, system_id, &tmp);
    let checked = match result {
        Ok(c) => c,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    fs::rename(&tmp, dest).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!(
            "could not rename file \"{}\" to \"{}\": {}",
            tmp.display(),
            dest.display(),
            os_error(&e)
        )
    })?;
    Ok(checked)
}

fn write_to(
    found: Found,
    walfile: &str,
    kind: Kind,
    system_id: Option<u64>,
    tmp: &Path,
) -> Result<Option<Checked>, Failure> {
    let stored_name = found.name;
    let what = |e: &io::Error| {
        if e.kind() == io::ErrorKind::InvalidData {
            format!("could not decompress file \"{stored_name}\": {e}")
        } else {
            format!("could not read file \"{stored_name}\": {}", os_error(e))
        }
    };
    let bad = |why: String| format!("file \"{stored_name}\" {why}");
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)
        .map_err(|e| {
            format!(
                "could not create file \"{}\": {}",
                tmp.display(),
                os_error(&e)
            )
        })?;
    let write_err = |e: io::Error| {
        format!(
            "could not write file \"{}\": {}",
            tmp.display(),
            os_error(&e)
        )
    };
    let mut r = zfile::reader(found.method, found.stored).map_err(|e| what(&e))?;
    if found.partial && found.method != Method::None {
        r = zfile::partial_reader(r);
    }
    match kind {
        Kind::Segment => {
            let check = SegmentCheck::new(walfile, found.partial, system_id);
            let (read, written, checked) = match &found.local {
                // A plain local file: the kernel copies it (as cp does) while it is checked.
                Some(path) if found.method == Method::None => {
                    copy_and_check(r, path, check, &mut out)
                }
                _ => pipeline(r, check, Some(&mut out)),
            };
            read.map_err(|e| what(&e))?;
            written.map_err(write_err)?;
            let checked = checked.map_err(bad)?;
            // A `.partial` is padded with zeros to a whole segment (written, not a hole:
            // PostgreSQL may write into this file once it is the end of its WAL).
            let mut left = u64::from(checked.seg.bytes()) - checked.len;
            let zeros = vec![0u8; CHUNK.min(left as usize)];
            while left > 0 {
                let n = left.min(CHUNK as u64) as usize;
                out.write_all(&zeros[..n]).map_err(write_err)?;
                left -= n as u64;
            }
            Ok(Some(checked))
        }
        Kind::History | Kind::Backup => {
            let mut text = Vec::new();
            (&mut r)
                .take(MAX_TEXT_FILE + 1)
                .read_to_end(&mut text)
                .map_err(|e| what(&e))?;
            if text.len() as u64 > MAX_TEXT_FILE {
                return Err(bad(format!("is larger than {} MB", MAX_TEXT_FILE >> 20)).into());
            }
            if kind == Kind::History {
                parse_history(&text).map_err(|e| bad(format!("is not a timeline history: {e}")))?;
            } else if !text.starts_with(b"START WAL LOCATION: ") {
                return Err(bad("is not a backup history file".to_owned()).into());
            }
            out.write_all(&text).map_err(write_err)?;
            Ok(None)
        }
    }
}

/// Reads `r` (decompressing) on one thread, checks on another, and writes to `out` on this
/// one: the three overlap, so a restore takes about as long as the slowest of them (the
/// decompression, or the copy) rather than their sum. The chunks are shared, not copied, and
/// come from a pool of [`POOL`] buffers allocated once: a chunk goes back to the pool when
/// both the check and the write are done with it. Returns the reading's, the writing's and
/// the check's outcomes: when one side stops early the others see their channel close and
/// stop too, so the first of the three errors is the cause.
fn pipeline(
    mut r: Box<dyn Read + Send>,
    mut check: SegmentCheck,
    out: Option<&mut File>,
) -> (io::Result<()>, io::Result<()>, Result<Checked, String>) {
    let writing = out.is_some();
    let (to_pool, pool) = mpsc::sync_channel::<Vec<u8>>(POOL);
    for _ in 0..POOL {
        let _ = to_pool.send(vec![0u8; CHUNK]);
    }
    let (to_check, checks) = mpsc::sync_channel::<Chunk>(POOL);
    let (to_write, writes) = mpsc::sync_channel::<Chunk>(POOL);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || -> io::Result<()> {
            while let Ok(mut buf) = pool.recv() {
                let n = fill(&mut r, &mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                let chunk = Chunk {
                    buf: Some(Arc::new(buf)),
                    len: n,
                    pool: to_pool.clone(),
                };
                let sent = if writing {
                    to_check.send(chunk.clone()).is_ok() && to_write.send(chunk).is_ok()
                } else {
                    to_check.send(chunk).is_ok()
                };
                if !sent {
                    return Ok(());
                }
                if n < CHUNK {
                    return Ok(());
                }
            }
            Ok(())
        });
        let checker = scope.spawn(move || -> Result<Checked, String> {
            for chunk in checks {
                check.feed(chunk.bytes())?;
            }
            check.finish()
        });
        let mut written = Ok(());
        if let Some(out) = out {
            for chunk in &writes {
                if let Err(e) = out.write_all(chunk.bytes()) {
                    written = Err(e);
                    break;
                }
            }
        }
        drop(writes);
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the reading thread panicked")));
        let checked = checker
            .join()
            .unwrap_or_else(|_| Err("the checking thread panicked".to_owned()));
        (read, written, checked)
    })
}

/// For a plain file on this machine: `copy_file_range` from `path` to `out` (through
/// `std::io::copy`, which uses it between files) on one thread, while [`pipeline`] reads `r`
/// (the same file) and checks it on two others. The copy must be as long as what was checked. The same
/// outcomes as [`pipeline`].
fn copy_and_check(
    r: Box<dyn Read + Send>,
    path: &Path,
    check: SegmentCheck,
    out: &mut File,
) -> (io::Result<()>, io::Result<()>, Result<Checked, String>) {
    let mut src = match File::open(path) {
        Ok(f) => f,
        Err(e) => return (Err(e), Ok(()), Err(String::new())),
    };
    std::thread::scope(|scope| {
        let copier = scope.spawn(move || io::copy(&mut src, out));
        let (read, _, checked) = pipeline(r, check, None);
        let copied = copier
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the copying thread panicked")));
        let written = match (&copied, &checked) {
            (Ok(n), Ok(c)) if *n != c.len => Err(io::Error::other(format!(
                "copied {n} bytes, checked {}: the file changed meanwhile",
                c.len
            ))),
            _ => copied.map(|_| ()),
        };
        (read, written, checked)
    })
}

/// A buffer's first `len` bytes, shared by the check and the write; the last to drop it
/// gives the buffer back to the pool.
#[derive(Clone)]
struct Chunk {
    buf: Option<Arc<Vec<u8>>>,
    len: usize,
    pool: mpsc::SyncSender<Vec<u8>>,
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        self.buf.as_deref().map_or(&[], |b| &b[..self.len])
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take().and_then(Arc::into_inner) {
            // Never blocks: the pool has room for every buffer there is.
            let _ = self.pool.try_send(buf);
        }
    }
}

/// Reads until `buf` is full or the stream ends; the bytes read.
fn fill(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
