//! The directories a backup writes: made or checked empty (pg_basebackup's rules), and
//! removed again when the backup fails.

use std::fs;
use std::path::{Path, PathBuf};

use crate::cli::BasebackupOptions;
use crate::output::{error, info, os_error};

/// What to remove when the backup fails, and the WAL receiver to wait for first.
#[derive(Default)]
pub(super) struct Cleanup {
    /// Directories this run created (removed whole) or found empty (emptied).
    pub(super) dirs: Vec<(PathBuf, bool)>,
    /// `-X stream`'s thread. When the backup fails it stops by itself (the end position
    /// will never come, or it has come and is near); it is joined before anything is
    /// removed, so that it writes nothing into a directory being removed.
    pub(super) wal_receiver: Option<std::thread::JoinHandle<Result<u64, String>>>,
}

impl Cleanup {
    pub(super) fn run(&mut self, no_clean: bool) {
        if let Some(handle) = self.wal_receiver.take() {
            let _ = handle.join();
        }
        for (dir, created) in self.dirs.iter().rev() {
            if no_clean {
                info(format!(
                    "data directory \"{}\" not removed at user's request",
                    dir.display()
                ));
                continue;
            }
            if *created {
                info(format!("removing data directory \"{}\"", dir.display()));
                if let Err(e) = fs::remove_dir_all(dir) {
                    error(format!("failed to remove data directory: {}", os_error(&e)));
                }
            } else {
                info(format!(
                    "removing contents of data directory \"{}\"",
                    dir.display()
                ));
                if let Err(e) = remove_contents(dir) {
                    error(format!(
                        "failed to remove contents of data directory: {}",
                        os_error(&e)
                    ));
                }
            }
        }
    }
}

fn remove_contents(dir: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            fs::remove_dir_all(entry.path())?;
        } else {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// pg_basebackup's `verify_dir_is_empty_or_create`: a missing directory is created (mode
/// 0700, parents as needed), an empty one is used, anything else is an error.
pub(super) fn empty_or_create(dir: &Path, cleanup: &mut Cleanup) -> Result<(), String> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(format!(
                    "directory \"{}\" exists but is not empty",
                    dir.display()
                ));
            }
            cleanup.dirs.push((dir.to_owned(), false));
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::os::unix::fs::DirBuilderExt;
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| {
                    format!(
                        "could not create directory \"{}\": {}",
                        dir.display(),
                        os_error(&e)
                    )
                })?;
            cleanup.dirs.push((dir.to_owned(), true));
            Ok(())
        }
        Err(e) => Err(format!(
            "could not access directory \"{}\": {}",
            dir.display(),
            os_error(&e)
        )),
    }
}

pub(super) fn mapped(o: &BasebackupOptions, location: &str) -> PathBuf {
    let loc = Path::new(location);
    o.tablespace_mapping
        .iter()
        .find(|(old, _)| old == loc)
        .map_or_else(|| loc.to_owned(), |(_, new)| new.clone())
}
