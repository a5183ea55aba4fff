//! A failed file operation: which operation, on which file, and the system's reason.
//!
//! The operation is kept as a value, not only as text, because it decides what happens next:
//! an fsync failure ends the program (as in pg_receivewal: after a failed fsync the kernel may
//! have dropped the dirty pages, so a retry could report WAL as durable that is lost), while
//! anything else, a full disk say, is retried. The text keeps pg_receivewal's wording.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::output::os_error;

/// What was being done to the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOp {
    Open,
    /// Creating a new file (a history file's temporary name).
    Create,
    SetPermissions,
    Write,
    /// Reserving a new segment's space (or writing its zeros).
    Allocate,
    StartCompression,
    /// Finishing a compressed stream (its last blocks are written).
    FinishCompression,
    /// fsync (or fdatasync) of a file being written.
    Fsync,
    /// The fsync of a full-size `.partial` left by an earlier run, before it is reused
    /// (pg_receivewal words it apart).
    FsyncExisting,
    FsyncDirectory,
    /// Renaming the file to `to`.
    Rename {
        to: PathBuf,
    },
    /// Writing an object of an object store.
    Upload,
}

impl FileOp {
    /// True for every kind of fsync, whatever its message says.
    pub fn is_fsync(&self) -> bool {
        matches!(
            self,
            FileOp::Fsync | FileOp::FsyncExisting | FileOp::FsyncDirectory
        )
    }

    /// pg_receivewal's text up to the file name.
    fn text(&self) -> &'static str {
        match self {
            FileOp::Open => "could not open file",
            FileOp::Create => "could not create file",
            FileOp::SetPermissions => "could not set permissions of file",
            FileOp::Write => "could not write to file",
            FileOp::Allocate => "could not allocate space for file",
            FileOp::StartCompression => "could not start compression in file",
            FileOp::FinishCompression => "could not close compressed file",
            FileOp::Fsync => "could not fsync file",
            FileOp::FsyncExisting => "could not fsync existing write-ahead log file",
            FileOp::FsyncDirectory => "could not fsync directory",
            FileOp::Rename { .. } => "could not rename file",
            FileOp::Upload => "could not upload file",
        }
    }
}

/// A failed file operation. Cloned because the segment writer keeps its first failure and
/// returns it again (hence the shared `io::Error`).
#[derive(Debug, Clone)]
pub enum FileError {
    /// `op` on `path` failed.
    Io {
        op: FileOp,
        path: PathBuf,
        source: Arc<std::io::Error>,
    },
    /// A `.partial` left by an earlier run has a size no segment file has.
    WrongSize {
        path: PathBuf,
        size: u64,
        expected: u64,
    },
    /// The writer was called out of order (a bug); the text says how.
    Internal(&'static str),
}

impl FileError {
    pub fn io(op: FileOp, path: &Path, source: std::io::Error) -> FileError {
        FileError::Io {
            op,
            path: path.to_owned(),
            source: Arc::new(source),
        }
    }

    /// The failed operation, when an operation failed.
    pub fn op(&self) -> Option<&FileOp> {
        match self {
            FileError::Io { op, .. } => Some(op),
            _ => None,
        }
    }

    /// Whether receiving must end rather than retry: for a failed fsync of any kind (see
    /// the [module docs](self)).
    pub fn is_fatal(&self) -> bool {
        self.op().is_some_and(FileOp::is_fsync)
    }
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileError::Io {
                op: FileOp::Rename { to },
                path,
                source,
            } => write!(
                f,
                "could not rename file \"{}\" to \"{}\": {}",
                path.display(),
                to.display(),
                os_error(source)
            ),
            FileError::Io { op, path, source } => {
                write!(
                    f,
                    "{} \"{}\": {}",
                    op.text(),
                    path.display(),
                    os_error(source)
                )
            }
            FileError::WrongSize {
                path,
                size,
                expected,
            } => write!(
                f,
                "write-ahead log file \"{}\" has {size} bytes, should be 0 or {expected}",
                path.display()
            ),
            FileError::Internal(what) => f.write_str(what),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Error, ErrorKind};

    use super::*;

    fn enospc() -> Error {
        Error::from_raw_os_error(28)
    }

    fn eio() -> Error {
        Error::from_raw_os_error(5)
    }

    #[test]
    fn fatal_by_operation_not_by_wording() {
        let p = Path::new("/a/000000010000000000000003.partial");
        // Every fsync is fatal, whatever its message starts with or its reason says (an
        // fsync can fail with ENOSPC too, on NFS say, and is still fatal).
        for (op, text) in [
            (FileOp::Fsync, "could not fsync file"),
            (
                FileOp::FsyncExisting,
                "could not fsync existing write-ahead log file",
            ),
            (FileOp::FsyncDirectory, "could not fsync directory"),
        ] {
            for reason in [eio(), enospc(), Error::other("writeback error")] {
                let e = FileError::io(op.clone(), p, reason);
                assert!(e.is_fatal(), "{e}");
                assert!(e
                    .to_string()
                    .starts_with(&format!("{text} \"{}\": ", p.display())));
            }
        }
        // A write on a full disk is retried, and so is everything else that is no fsync,
        // even with a reason that reads like one.
        let e = FileError::io(FileOp::Write, p, enospc());
        assert!(!e.is_fatal());
        assert_eq!(
            e.to_string(),
            "could not write to file \"/a/000000010000000000000003.partial\": No space left on device"
        );
        for op in [
            FileOp::Open,
            FileOp::SetPermissions,
            FileOp::Allocate,
            FileOp::StartCompression,
            FileOp::FinishCompression,
            FileOp::Rename {
                to: PathBuf::from("/a/000000010000000000000003"),
            },
        ] {
            let e = FileError::io(op, p, Error::other("could not fsync file"));
            assert!(!e.is_fatal(), "{e}");
        }
        assert!(!FileError::Internal("internal error: no segment file open").is_fatal());
    }

    #[test]
    fn texts_keep_pg_receivewals_wording() {
        let p = Path::new("/a/x.partial");
        let rename = FileError::io(
            FileOp::Rename {
                to: PathBuf::from("/a/x"),
            },
            p,
            Error::new(ErrorKind::PermissionDenied, "ignored"),
        );
        assert_eq!(
            rename.to_string(),
            "could not rename file \"/a/x.partial\" to \"/a/x\": ignored"
        );
        assert_eq!(
            FileError::io(FileOp::Allocate, p, enospc()).to_string(),
            "could not allocate space for file \"/a/x.partial\": No space left on device"
        );
        assert_eq!(
            FileError::WrongSize {
                path: p.to_owned(),
                size: 3,
                expected: 16 << 20
            }
            .to_string(),
            "write-ahead log file \"/a/x.partial\" has 3 bytes, should be 0 or 16777216"
        );
    }
}
