//! The plain format: a tar stream from the server written out as a directory tree while it
//! arrives, as pg_basebackup's extractor does (`src/fe_utils/astreamer_file.c`).
//!
//! [`Extractor`] is pushed the archive's bytes in whatever chunks the network delivers;
//! each piece of member data goes straight to the open file, so nothing is held but one
//! header block. Members are regular files, directories and symbolic links (the only types
//! the server writes); anything else is an error naming the member, as is a path that would
//! leave the target directory (absolute, `..`) or pass through a symbolic link that the
//! archive itself created. `-T OLDDIR=NEWDIR` is [`ExtractOptions::tablespace_map`].
//!
//! Nothing here fsyncs while extracting; [`sync_tree`] does it once at the end, as
//! pg_basebackup's `fsync_pgdata` does.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use tar::{EntryType, Header};

use super::tarstream::{Event, TarError, TarStream};
use crate::output::os_error;

/// How to extract.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// `-T OLDDIR=NEWDIR`: a symbolic link whose target is exactly an OLDDIR points to its
    /// NEWDIR instead (these are the links in `pg_tblspc`).
    pub tablespace_map: Vec<(PathBuf, PathBuf)>,
}

/// What an extraction wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractStats {
    pub files: u64,
    pub directories: u64,
    pub symlinks: u64,
    /// Bytes of file data written.
    pub bytes: u64,
}

/// Why extraction stopped. Each displays as one line in PostgreSQL's wording.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The stream is not a well-formed tar archive.
    #[error(transparent)]
    Tar(#[from] TarError),
    #[error("tar member has unsafe path name: \"{name}\"")]
    UnsafePath { name: String },
    #[error("link target has unsafe path name: \"{target}\" (tar member \"{name}\")")]
    UnsafeLinkTarget { name: String, target: String },
    /// The member's path goes through a symbolic link that the archive created earlier.
    #[error("tar member \"{name}\" is inside the symbolic link \"{link}\"")]
    ThroughSymlink { name: String, link: String },
    #[error("tar member \"{name}\" has unsupported type '{kind}'")]
    UnsupportedType { name: String, kind: char },
    #[error("tar member \"{name}\" is a {what} but has {size} bytes of data")]
    DataOnNonFile {
        name: String,
        what: &'static str,
        size: u64,
    },
    /// A file operation failed: `op` is PostgreSQL's text up to the path ("could not create
    /// file").
    #[error("{op} \"{}\": {}", path.display(), os_error(error))]
    Io {
        op: &'static str,
        path: PathBuf,
        error: io::Error,
    },
}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ExtractError + 'a {
    move |error| ExtractError::Io {
        op,
        path: path.to_owned(),
        error,
    }
}

/// A push-style extractor of one tar stream into `root`.
///
/// Call [`feed`](Extractor::feed) with the bytes as they arrive, then
/// [`finish`](Extractor::finish). After an error the extraction is over: later calls fail.
#[derive(Debug)]
pub struct Extractor {
    stream: TarStream,
    sink: Sink,
}

#[derive(Debug)]
struct Sink {
    root: PathBuf,
    opts: ExtractOptions,
    stats: ExtractStats,
    /// The regular file being written, and its path for errors.
    file: Option<(File, PathBuf)>,
    /// Symbolic links this archive created, relative to `root`: nothing is written through
    /// them (a hostile `a -> /etc` followed by `a/passwd`).
    links: HashSet<PathBuf>,
}

impl Extractor {
    /// Extracts into `root`, which must exist.
    pub fn new(root: PathBuf, opts: ExtractOptions) -> Extractor {
        Extractor {
            stream: TarStream::new(),
            sink: Sink {
                root,
                opts,
                stats: ExtractStats::default(),
                file: None,
                links: HashSet::new(),
            },
        }
    }

    /// Writes out what `data` completes of the archive.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), ExtractError> {
        let sink = &mut self.sink;
        self.stream.feed(data, |event| sink.event(event))
    }

    /// Checks that the archive ended with its end-of-archive marker, and returns what was
    /// written.
    pub fn finish(self) -> Result<ExtractStats, ExtractError> {
        self.stream.finish()?;
        Ok(self.sink.stats)
    }
}

impl Sink {
    fn event(&mut self, event: Event<'_>) -> Result<(), ExtractError> {
        match event {
            Event::Header(header) => self.member(header),
            Event::Data(data) => {
                // Only regular files have data here: member() rejects any other with a size.
                if let Some((file, path)) = &mut self.file {
                    file.write_all(data)
                        .map_err(io_error("could not write to file", path))?;
                    self.stats.bytes += data.len() as u64;
                }
                Ok(())
            }
            Event::MemberEnd => {
                // Closing reports nothing that sync_tree's fsync will not.
                self.file = None;
                Ok(())
            }
            Event::ArchiveEnd => Ok(()),
        }
    }

    fn member(&mut self, header: &Header) -> Result<(), ExtractError> {
        let raw = header.path_bytes();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let kind = header.entry_type();
        let what = match kind {
            EntryType::Regular => "file",
            EntryType::Directory => "directory",
            EntryType::Symlink => "symbolic link",
            other => {
                return Err(ExtractError::UnsupportedType {
                    name,
                    kind: char::from(other.as_byte()),
                })
            }
        };
        let rel =
            safe_relative(&raw).ok_or_else(|| ExtractError::UnsafePath { name: name.clone() })?;
        // entry_size was checked by the stream already.
        let size = header.entry_size().unwrap_or_default();
        if size > 0 && kind != EntryType::Regular {
            return Err(ExtractError::DataOnNonFile { name, what, size });
        }
        if let Some(link) = rel.ancestors().find(|prefix| self.links.contains(*prefix)) {
            return Err(ExtractError::ThroughSymlink {
                link: link.display().to_string(),
                name,
            });
        }
        let mode = header.mode().map_err(|_| TarError::BadField {
            name: name.clone(),
            what: "bad mode field".to_owned(),
        })? & 0o7777;
        let path = self.root.join(&rel);
        match kind {
            // "./": the root itself, which the caller made.
            EntryType::Directory if rel.as_os_str().is_empty() => Ok(()),
            _ if rel.as_os_str().is_empty() => Err(ExtractError::UnsafePath { name }),
            EntryType::Regular => self.file(path, mode),
            EntryType::Directory => self.directory(&path, mode),
            _ => self.symlink(header, name, rel, &path),
        }
    }

    fn file(&mut self, path: PathBuf, mode: u32) -> Result<(), ExtractError> {
        // As pg_basebackup: created 0600, then given the archive's mode (a chmod, so the
        // umask does not apply and an existing file gets it too).
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_error("could not create file", &path))?;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_error("could not set permissions on file", &path))?;
        self.stats.files += 1;
        self.file = Some((file, path));
        Ok(())
    }

    fn directory(&mut self, path: &Path, mode: u32) -> Result<(), ExtractError> {
        if let Err(e) = DirBuilder::new().mode(0o700).create(path) {
            // pg_wal may be there already (a symbolic link to --waldir, or made by the WAL
            // receiver); any directory that exists is fine.
            let is_dir = e.kind() == io::ErrorKind::AlreadyExists
                && fs::metadata(path).is_ok_and(|m| m.is_dir());
            if !is_dir {
                return Err(io_error("could not create directory", path)(e));
            }
        }
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(io_error("could not set permissions on directory", path))?;
        self.stats.directories += 1;
        Ok(())
    }

    fn symlink(
        &mut self,
        header: &Header,
        name: String,
        rel: PathBuf,
        path: &Path,
    ) -> Result<(), ExtractError> {
        let raw_target = header.link_name_bytes().unwrap_or_default();
        let target = Path::new(OsStr::from_bytes(&raw_target));
        let mapped = self
            .opts
            .tablespace_map
            .iter()
            .find(|(old, _)| old == target)
            .map_or(target, |(_, new)| new.as_path());
        // As pg_basebackup: an absolute target is the user's business (tablespaces live
        // anywhere), a relative one must not climb out.
        if mapped.as_os_str().is_empty()
            || (!mapped.is_absolute() && safe_relative(&raw_target).is_none())
        {
            return Err(ExtractError::UnsafeLinkTarget {
                name,
                target: String::from_utf8_lossy(&raw_target).into_owned(),
            });
        }
        std::os::unix::fs::symlink(mapped, path).map_err(|error| ExtractError::Io {
            op: "could not create symbolic link",
            path: path.to_owned(),
            error,
        })?;
        self.links.insert(rel);
        self.stats.symlinks += 1;
        Ok(())
    }
}

/// A member's path made relative to the target, or `None` if it is absolute, climbs with
/// `..` or holds a NUL. A leading `./` is dropped; the empty path is the target itself.
fn safe_relative(raw: &[u8]) -> Option<PathBuf> {
    if raw.contains(&0) {
        return None;
    }
    let mut rel = PathBuf::new();
    for component in Path::new(OsStr::from_bytes(raw)).components() {
        match component {
            Component::Normal(part) => rel.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(rel)
}

/// fsyncs every regular file and directory under `root`, `root` included, as pg_basebackup
/// does at the end (`fsync_pgdata`). Symbolic links are not followed, except `pg_wal` and
/// those in `pg_tblspc`: their targets (`--waldir`, the tablespaces) are synced likewise.
/// Errors name the path.
pub fn sync_tree(root: &Path) -> io::Result<()> {
    sync_dir(root)?;
    for link in [root.join("pg_wal")]
        .into_iter()
        .chain(read_dir_paths(&root.join("pg_tblspc"))?)
    {
        let is_link = fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink());
        if is_link && fs::metadata(&link).is_ok_and(|m| m.is_dir()) {
            sync_dir(&link)?;
        }
    }
    Ok(())
}

/// The entries of `dir`, or none if it does not exist.
fn read_dir_paths(dir: &Path) -> io::Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<_>>()
            .map_err(|e| with_path(e, "could not read directory", dir)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(with_path(e, "could not open directory", dir)),
    }
}

/// fsyncs the files and directories in `dir` (not following links), then `dir` itself.
fn sync_dir(dir: &Path) -> io::Result<()> {
    for path in read_dir_paths(dir)? {
        let meta =
            fs::symlink_metadata(&path).map_err(|e| with_path(e, "could not stat file", &path))?;
        if meta.is_dir() {
            sync_dir(&path)?;
        } else if meta.is_file() {
            fsync(&path, "could not fsync file")?;
        }
    }
    fsync(dir, "could not fsync directory")
}

fn fsync(path: &Path, op: &str) -> io::Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| with_path(e, op, path))
}

fn with_path(e: io::Error, op: &str, path: &Path) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("{op} \"{}\": {}", path.display(), os_error(&e)),
    )
}

#[cfg(test)]
mod tests;
