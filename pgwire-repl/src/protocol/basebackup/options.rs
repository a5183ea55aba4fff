//! `BASE_BACKUP`'s options (pg_basebackup's defaults) and their command text in the form of
//! the server's version; `UPLOAD_MANIFEST`.

use crate::error::{Error, Result};
use crate::server_version::ServerVersion;

/// `CHECKPOINT 'fast'` or `'spread'` (pg_basebackup's `-c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckpointMode {
    Fast,
    #[default]
    Spread,
}

/// Whether the server sends a backup manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ManifestOption {
    /// `MANIFEST 'no'`.
    No,
    /// `MANIFEST 'yes'` (pg_basebackup's default).
    #[default]
    Yes,
    /// `MANIFEST 'force-encode'`: every path hex-encoded.
    ForceEncode,
}

/// The options of `BASE_BACKUP`, with pg_basebackup's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseBackupOptions {
    /// `LABEL`; pg_basebackup's default is `pg_basebackup base backup`.
    pub label: String,
    /// `PROGRESS`: the server estimates each tablespace's size first (the list's `size`).
    pub progress: bool,
    pub checkpoint: CheckpointMode,
    /// `WAL`: the WAL written during the backup, in the main archive (`-X fetch`).
    pub wal: bool,
    /// `WAIT` (default true): wait for the WAL the backup needs to be archived.
    pub wait: bool,
    /// `MAX_RATE` in kB/s (32 to 1048576).
    pub max_rate: Option<u32>,
    /// `TABLESPACE_MAP`: a `tablespace_map` file instead of symlinks in the archive.
    pub tablespace_map: bool,
    /// `VERIFY_CHECKSUMS` (default true).
    pub verify_checksums: bool,
    pub manifest: ManifestOption,
    /// `MANIFEST_CHECKSUMS`: `NONE`, `CRC32C` (the server's default), `SHA224` … `SHA512`.
    pub manifest_checksums: Option<String>,
    /// `TARGET` (15+): `client` (the default), `server:/path` or `blackhole`.
    pub target: Option<String>,
    /// `COMPRESSION` (15+): `gzip`, `lz4` or `zstd`, done by the server.
    pub compression: Option<String>,
    /// `COMPRESSION_DETAIL` (15+): `level=N`, `workers=N`, `long`, …
    pub compression_detail: Option<String>,
    /// `INCREMENTAL` (17+): relative to the manifest uploaded by `UPLOAD_MANIFEST` on the
    /// same connection just before.
    pub incremental: bool,
}

impl Default for BaseBackupOptions {
    fn default() -> BaseBackupOptions {
        BaseBackupOptions {
            label: "pg_basebackup base backup".into(),
            progress: false,
            checkpoint: CheckpointMode::default(),
            wal: false,
            wait: true,
            max_rate: None,
            tablespace_map: false,
            verify_checksums: true,
            manifest: ManifestOption::default(),
            manifest_checksums: None,
            target: None,
            compression: None,
            compression_detail: None,
            incremental: false,
        }
    }
}

/// A string literal of the replication grammar (`repl_scanner.l`): single quotes, a quote
/// doubled, no backslash escapes; NUL cannot be sent.
fn literal(what: &str, s: &str) -> Result<String> {
    if s.contains('\0') {
        return Err(Error::config(format!("{what} must not contain a NUL byte")));
    }
    Ok(format!("'{}'", s.replace('\'', "''")))
}

fn needs(version: Option<ServerVersion>, major: u32, what: &str) -> Result<()> {
    match version {
        Some(v) if v.at_least(major) => Ok(()),
        _ => Err(Error::config(format!(
            "{what} requires a server of PostgreSQL {major} or later"
        ))),
    }
}

/// The `BASE_BACKUP` command for a server of `version` (`None`: an unknown version, which
/// gets the older keyword form).
pub fn base_backup_command(
    opts: &BaseBackupOptions,
    version: Option<ServerVersion>,
) -> Result<String> {
    let new_syntax = version.is_some_and(|v| v.at_least(15));
    let mut items: Vec<String> = vec![format!("LABEL {}", literal("the label", &opts.label)?)];
    if opts.progress {
        items.push("PROGRESS".into());
    }
    if opts.checkpoint == CheckpointMode::Fast {
        items.push(
            if new_syntax {
                "CHECKPOINT 'fast'"
            } else {
                "FAST"
            }
            .into(),
        );
    }
    if opts.wal {
        items.push("WAL".into());
    }
    if !opts.wait {
        items.push(if new_syntax { "WAIT 0" } else { "NOWAIT" }.into());
    }
    if let Some(rate) = opts.max_rate {
        if !(32..=1_048_576).contains(&rate) {
            return Err(Error::config(format!(
                "transfer rate {rate} kB/s is out of range (32 to 1048576)"
            )));
        }
        items.push(format!("MAX_RATE {rate}"));
    }
    if opts.tablespace_map {
        items.push("TABLESPACE_MAP".into());
    }
    if !opts.verify_checksums {
        items.push(
            if new_syntax {
                "VERIFY_CHECKSUMS 0"
            } else {
                "NOVERIFY_CHECKSUMS"
            }
            .into(),
        );
    }
    // Servers before 13 know no manifest; 13+ default to none, so 'no' is sent as nothing.
    match opts.manifest {
        ManifestOption::No => {}
        ManifestOption::Yes => items.push("MANIFEST 'yes'".into()),
        ManifestOption::ForceEncode => items.push("MANIFEST 'force-encode'".into()),
    }
    if let Some(c) = &opts.manifest_checksums {
        items.push(format!(
            "MANIFEST_CHECKSUMS {}",
            literal("the manifest checksum algorithm", c)?
        ));
    }
    for (name, value) in [
        ("TARGET", &opts.target),
        ("COMPRESSION", &opts.compression),
        ("COMPRESSION_DETAIL", &opts.compression_detail),
    ] {
        if let Some(v) = value {
            needs(version, 15, name)?;
            items.push(format!("{name} {}", literal(name, v)?));
        }
    }
    if opts.incremental {
        needs(version, 17, "INCREMENTAL")?;
        items.push("INCREMENTAL".into());
    }
    Ok(if new_syntax {
        format!("BASE_BACKUP ( {} )", items.join(", "))
    } else {
        format!("BASE_BACKUP {}", items.join(" "))
    })
}

/// `UPLOAD_MANIFEST` (17+): the server answers with COPY IN; the client sends the previous
/// backup's manifest and CopyDone.
pub fn upload_manifest_command(version: Option<ServerVersion>) -> Result<&'static str> {
    needs(version, 17, "UPLOAD_MANIFEST")?;
    Ok("UPLOAD_MANIFEST")
}
