//! Finding the PostgreSQL programs and their major version.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// Where Debian-style packages put each major version's programs.
const VERSIONED_ROOT: &str = "/usr/lib/postgresql";

/// The server programs (`initdb`, `pg_ctl`, `postgres`) of one installation.
#[derive(Debug, Clone)]
pub struct PgBin {
    bindir: PathBuf,
    version: u32,
}

impl PgBin {
    /// The installation the tests use, found once per process:
    /// `$PG_BINDIR`, else `pg_config --bindir` if it holds `postgres` and `initdb`,
    /// else the newest `/usr/lib/postgresql/<N>/bin`.
    pub fn get() -> Result<&'static PgBin> {
        static BIN: OnceLock<std::result::Result<PgBin, String>> = OnceLock::new();
        BIN.get_or_init(|| PgBin::discover().map_err(|e| format!("{e:?}")))
            .as_ref()
            .map_err(|e| Error::new(e.clone()))
    }

    fn discover() -> Result<PgBin> {
        let bindir = if let Some(dir) = std::env::var_os("PG_BINDIR") {
            let dir = PathBuf::from(dir);
            if !has_server(&dir) {
                return Err(Error::new(format!(
                    "PG_BINDIR={} holds no postgres and initdb",
                    dir.display()
                )));
            }
            dir
        } else if let Some(dir) = pg_config_bindir().filter(|d| has_server(d)) {
            dir
        } else {
            versioned_bindirs()
                .into_iter()
                .find(|d| has_server(d))
                .ok_or_else(|| {
                    Error::new(format!(
                        "no PostgreSQL server found: set PG_BINDIR, put pg_config on PATH \
                         or install one under {VERSIONED_ROOT}/<version>/bin"
                    ))
                })?
        };
        let version = major_version(&bindir.join("postgres"))
            .or_else(|_| major_version(&bindir.join("pg_ctl")))?;
        Ok(PgBin { bindir, version })
    }

    /// The directory holding `postgres`, `initdb` and `pg_ctl`.
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// The server's major version (15 for 15.4).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// A server program of this installation (`initdb`, `pg_ctl`, `postgres`).
    pub(crate) fn server(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }

    /// A client program (`psql`, `pg_basebackup`, `pg_receivewal`, `pg_waldump`, ...):
    /// from the server's bindir, else the newest `/usr/lib/postgresql/<N>/bin`, else `PATH`.
    ///
    /// Some builds ship only the server programs, hence the search.
    pub fn tool(&self, name: &str) -> Result<PathBuf> {
        let path_dirs = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default();
        std::iter::once(self.bindir.clone())
            .chain(versioned_bindirs())
            .chain(path_dirs)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                Error::new(format!(
                    "{name} not found in {}, {VERSIONED_ROOT}/*/bin or PATH",
                    self.bindir.display()
                ))
            })
    }
}

fn has_server(dir: &Path) -> bool {
    dir.join("postgres").is_file() && dir.join("initdb").is_file()
}

fn pg_config_bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8(out.stdout).ok()?;
    Some(PathBuf::from(dir.trim()))
}

/// `/usr/lib/postgresql/<N>/bin`, newest first (numeric order, so 9.6 < 10 < 17).
fn versioned_bindirs() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(VERSIONED_ROOT) else {
        return Vec::new();
    };
    let mut dirs: Vec<(Vec<u32>, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let key = name
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((key, e.path().join("bin")))
        })
        .filter(|(_, d)| d.is_dir())
        .collect();
    dirs.sort_by(|a, b| b.0.cmp(&a.0));
    dirs.into_iter().map(|(_, d)| d).collect()
}

/// Runs `program --version` and parses "postgres (PostgreSQL) 15.4 (Debian ...)".
fn major_version(program: &Path) -> Result<u32> {
    let out = Command::new(program)
        .arg("--version")
        .output()
        .map_err(|e| {
            Error::with_source(format!("cannot run {} --version", program.display()), e)
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_major(&text).ok_or_else(|| {
        Error::new(format!(
            "cannot read a version from `{} --version`: {:?}",
            program.display(),
            text.trim()
        ))
    })
}

pub(crate) fn parse_major(text: &str) -> Option<u32> {
    let rest = text.split("(PostgreSQL)").nth(1)?.trim_start();
    let number: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    // Only the first component: 15 for 15.4, and 9 for 9.6 (nothing here supports 9.x).
    number.split('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_major;

    #[test]
    fn parses_versions() {
        assert_eq!(
            parse_major("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n"),
            Some(15)
        );
        assert_eq!(parse_major("pg_ctl (PostgreSQL) 17devel\n"), Some(17));
        assert_eq!(parse_major("pg_ctl (PostgreSQL) 9.6.24\n"), Some(9));
        assert_eq!(parse_major("something else"), None);
    }
}
