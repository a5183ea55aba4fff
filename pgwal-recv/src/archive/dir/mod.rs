//! The directory backend: the archive is a local directory, laid out as pg_receivewal lays
//! it out (file names in [`crate::archive::names`]).
//!
//! Whole files are written durably (unless `--no-sync`): to `<name>.tmp`, fsynced, renamed,
//! and the directory fsynced. Segments are written in place as WAL arrives ([`segment`]).
//! The calls are the file system's own, made inline: they are quick, and the archiver's one
//! task waits on them anyway.

pub mod lock;
pub mod segment;

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{FileError, FileOp, FileSettings, Listed};
use segment::SegmentFile;

/// An archive directory.
#[derive(Debug, Clone)]
pub struct DirStore {
    path: PathBuf,
}

impl DirStore {
    pub fn new(path: &Path) -> DirStore {
        DirStore {
            path: path.to_owned(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every file's name, size and modification time. A name that is not UTF-8 belongs to no archive and is
    /// left out; so is a file gone between the listing and its `stat`.
    pub fn list(&self) -> io::Result<Vec<Listed>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.path)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let (size, modified) = match entry.metadata() {
                Ok(m) if m.is_file() => (m.len(), m.modified().ok()),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            out.push(Listed {
                name,
                size,
                modified,
            });
        }
        Ok(out)
    }

    pub fn open(&self, name: &str) -> io::Result<File> {
        File::open(self.path.join(name))
    }

    /// The file's length and its last `n` bytes (fewer if it is shorter).
    pub fn read_tail(&self, name: &str, n: u64) -> io::Result<(u64, Vec<u8>)> {
        let mut f = self.open(name)?;
        let len = f.metadata()?.len();
        let take = n.min(len);
        f.seek(SeekFrom::Start(len - take))?;
        let mut buf = vec![0u8; take as usize];
        f.read_exact(&mut buf)?;
        Ok((len, buf))
    }

    pub fn exists(&self, name: &str) -> io::Result<bool> {
        self.path.join(name).try_exists()
    }

    /// Writes `data` as `name`, whole or not at all: `name.tmp`, fsync, rename, fsync of the
    /// directory (the fsyncs unless `--no-sync`).
    pub fn put(&self, name: &str, data: &[u8], s: &FileSettings) -> Result<(), FileError> {
        let path = self.path.join(name);
        let tmp = self.path.join(format!("{name}.tmp"));
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(s.mode)
                .open(&tmp)
                .map_err(|e| FileError::io(FileOp::Create, &tmp, e))?;
            set_mode(&f, s.mode, &tmp)?;
            f.write_all(data)
                .map_err(|e| FileError::io(FileOp::Write, &tmp, e))?;
            if s.sync {
                f.sync_all()
                    .map_err(|e| FileError::io(FileOp::Fsync, &tmp, e))?;
            }
        }
        std::fs::rename(&tmp, &path)
            .map_err(|e| FileError::io(FileOp::Rename { to: path.clone() }, &tmp, e))?;
        if s.sync {
            fsync_dir(&self.path)?;
        }
        Ok(())
    }

    pub fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.path.join(name))
    }

    pub fn create_segment(&self, name: &str, s: FileSettings) -> Result<SegmentFile, FileError> {
        SegmentFile::open(&self.path, name, s)
    }

    pub fn sync(&self) -> Result<(), FileError> {
        fsync_dir(&self.path)
    }
}

/// Gives a new file exactly `mode`, whatever the process umask (pg_receivewal sets its
/// umask from the server's data_directory_mode; we set the mode itself).
pub(crate) fn set_mode(f: &File, mode: u32, path: &Path) -> Result<(), FileError> {
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| FileError::io(FileOp::SetPermissions, path, e))
}

/// fsyncs a directory, so that a creation or rename in it is durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), FileError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| FileError::io(FileOp::FsyncDirectory, dir, e))
}
