//! The archive: every file pgwal-recv writes, reads or deletes goes through [`Archive`].
//!
//! The receiver writes through it (segments as WAL arrives, history files whole), the
//! start-position scan reads through it ([`scan`]), and the commands that read an archive
//! back or prune it do the same. What lives where:
//!
//! - [`names`]: file names and suffixes (segments, `.partial`, compression, history files);
//! - [`compress`] and [`zfile`]: the `-Z` specification and the gzip, lz4 and zstd streams;
//! - [`scan`]: the newest segment, where streaming resumes;
//! - [`contents`]: what an archive holds, read back: its segment size and its histories;
//! - [`dir`]: the directory backend (durable writes and renames, preallocated segments, the
//!   lock); [`FileError`]: what failed, on which file, and whether that is fatal;
//! - [`objstore`]: the object-store backend (`-D s3://BUCKET/PREFIX`), which the archiver
//!   feeds from a local spool ([`crate::upload`]).
//!
//! # The interface a backend meets
//!
//! Few operations, whole files in and out, as an object store offers them: list the files
//! (names, sizes, modification times), read one (from its start, or its last bytes), write one whole
//! ([`put`](Archive::put): the file appears complete or not at all), delete one. Nothing here renames or appends,
//! so a backend without either (S3) fits. The one exception is receiving: a segment grows as
//! WAL arrives, so [`create_segment`](Archive::create_segment) always writes a local file
//! (the directory itself, or a local spool that another backend uploads from once the
//! segment is complete: [`crate::upload`]).
//!
//! The methods that a remote store would answer over the network are `async`; the directory
//! answers them inline.

pub mod compress;
pub mod contents;
pub mod dir;
mod error;
pub mod names;
pub mod objstore;
pub mod scan;
pub mod zfile;

use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use pgwire_repl::WalSegmentSize;

pub use compress::{CompressSpec, Method};
pub use contents::Histories;
pub use dir::lock::ArchiveLock;
pub use dir::segment::{SegmentFile, WRITEBACK_AFTER};
pub use error::{FileError, FileOp};
pub use names::SegmentName;
pub use scan::Found;

/// How files are written in this archive.
#[derive(Debug, Clone, Copy)]
pub struct FileSettings {
    pub compress: CompressSpec,
    /// fsync what is written (pg_receivewal's default; off with `--no-sync`).
    pub sync: bool,
    /// 0600, or 0640 when the server's data directory allows group access.
    pub mode: u32,
    /// Write zeros over a new segment instead of allocating it (see
    /// [`dir::segment`]); set with `--synchronous`, which fsyncs every batch (so no early
    /// writeback either).
    pub zero_fill: bool,
    pub segment_size: u32,
}

/// A file of the archive, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    /// Its size as stored (compressed, for a compressed file).
    pub size: u64,
    /// When it was last written (an object store's last-modified time), when known.
    pub modified: Option<SystemTime>,
}

/// An archive: where it is and how to reach it. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Archive {
    store: Store,
}

/// The backends.
#[derive(Debug, Clone)]
enum Store {
    Dir(dir::DirStore),
    Obj(objstore::ObjStore),
}

impl Archive {
    /// The archive in directory `path` (`-D`).
    pub fn dir(path: &Path) -> Archive {
        Archive {
            store: Store::Dir(dir::DirStore::new(path)),
        }
    }

    /// The archive `-D` names: an object store for a URL (`s3://BUCKET/PREFIX`), else a
    /// directory. Errors: a URL this build cannot use, in one line.
    pub fn open(location: &Path) -> Result<Archive, String> {
        if objstore::is_url(location) {
            Ok(Archive {
                store: Store::Obj(objstore::ObjStore::open(location)?),
            })
        } else {
            Ok(Archive::dir(location))
        }
    }

    /// The same archive, for another thread with a runtime of its own (see
    /// [`objstore::ObjStore::reopen`]).
    pub fn reopen(&self) -> Result<Archive, String> {
        Ok(match &self.store {
            Store::Dir(_) => self.clone(),
            Store::Obj(o) => Archive {
                store: Store::Obj(o.reopen()?),
            },
        })
    }

    /// The object store, when the archive is one.
    pub fn objstore(&self) -> Option<&objstore::ObjStore> {
        match &self.store {
            Store::Obj(o) => Some(o),
            Store::Dir(_) => None,
        }
    }

    /// Whether the archive is in an object store (not a directory of this machine).
    pub fn is_remote(&self) -> bool {
        matches!(self.store, Store::Obj(_))
    }

    /// Where the archive is, for messages (a directory, or the store's URL); `.join(name)`
    /// names a file of it.
    pub fn location(&self) -> &Path {
        match &self.store {
            Store::Dir(d) => d.path(),
            Store::Obj(o) => o.url(),
        }
    }

    /// The path of file `name` when the archive is on this machine's file system (the
    /// directory backend): what lets a plain file be copied by the kernel
    /// (`copy_file_range`) rather than read and written back. `None` for a remote store.
    pub fn local_path(&self, name: &str) -> Option<PathBuf> {
        match &self.store {
            Store::Dir(d) => Some(d.path().join(name)),
            Store::Obj(_) => None,
        }
    }

    /// One archiver per archive: held until dropped, or an error saying who holds it.
    pub fn lock(&self) -> Result<ArchiveLock, String> {
        match &self.store {
            Store::Dir(d) => dir::lock::lock_directory(d.path()),
            Store::Obj(o) => Err(format!(
                "archive \"{}\" is an object store: it is written through a spool (--spool)",
                o.url().display()
            )),
        }
    }

    /// Every file's name, size and modification time, in no particular order.
    pub async fn list(&self) -> io::Result<Vec<Listed>> {
        match &self.store {
            Store::Dir(d) => d.list(),
            Store::Obj(o) => o.list().await,
        }
    }

    /// A file's bytes as stored, from the start (compressed, for a compressed file).
    pub async fn read(&self, name: &str) -> io::Result<Box<dyn Read + Send>> {
        match &self.store {
            Store::Dir(d) => Ok(Box::new(d.open(name)?)),
            Store::Obj(o) => Ok(Box::new(Cursor::new(o.get(name).await?))),
        }
    }

    /// A file's bytes uncompressed (`method` is its compression, from its name), read as
    /// they are asked for; see [`zfile::reader`].
    pub async fn read_uncompressed(
        &self,
        name: &str,
        method: Method,
    ) -> io::Result<Box<dyn Read + Send>> {
        let stored = self.read(name).await?;
        zfile::reader(method, stored)
    }

    /// A file's stored length and its last `n` bytes (a gzip trailer, say).
    pub async fn read_tail(&self, name: &str, n: u64) -> io::Result<(u64, Vec<u8>)> {
        match &self.store {
            Store::Dir(d) => d.read_tail(name, n),
            Store::Obj(o) => o.read_tail(name, n).await,
        }
    }

    pub async fn exists(&self, name: &str) -> io::Result<bool> {
        match &self.store {
            Store::Dir(d) => d.exists(name),
            Store::Obj(o) => Ok(o.size(name).await?.is_some()),
        }
    }

    /// Writes `data` as `name`, whole or not at all, durably unless `--no-sync`.
    pub async fn put(&self, name: &str, data: &[u8], s: &FileSettings) -> Result<(), FileError> {
        match &self.store {
            Store::Dir(d) => d.put(name, data, s),
            Store::Obj(o) => o
                .put(name, bytes::Bytes::copy_from_slice(data))
                .await
                .map_err(|e| FileError::io(FileOp::Upload, &o.url().join(name), e)),
        }
    }

    pub async fn remove(&self, name: &str) -> io::Result<()> {
        match &self.store {
            Store::Dir(d) => d.remove(name),
            Store::Obj(o) => o.remove(name).await,
        }
    }

    /// Starts segment `name` (without suffixes) as a `.partial` written as WAL arrives; see
    /// [`SegmentFile`]. Local and synchronous: this is the receiving hot path.
    pub fn create_segment(&self, name: &str, s: FileSettings) -> Result<SegmentFile, FileError> {
        match &self.store {
            Store::Dir(d) => d.create_segment(name, s),
            Store::Obj(_) => Err(FileError::Internal(
                "internal error: segments are received into the spool, not the store",
            )),
        }
    }

    /// Makes the creations and renames so far durable.
    pub fn sync(&self) -> Result<(), FileError> {
        match &self.store {
            Store::Dir(d) => d.sync(),
            // What the store confirmed is durable there.
            Store::Obj(_) => Ok(()),
        }
    }

    /// The newest usable segment and where streaming resumes after it (see [`scan`]);
    /// `warn` receives each damaged file's warning.
    pub async fn newest_segment(
        &self,
        seg: WalSegmentSize,
        warn: &mut dyn FnMut(String),
    ) -> io::Result<Option<Found>> {
        scan::find_streaming_start(self, seg, warn).await
    }
}
