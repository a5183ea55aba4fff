//! `pgwal-recv basebackup`: pg_basebackup's options, parsed and checked with its wording.

use super::*;

/// `-F`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Plain,
    Tar,
}

/// `-X`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WalMethod {
    None,
    Fetch,
    #[default]
    Stream,
}

/// `-Z`: where the archives are compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CompressAt {
    #[default]
    Client,
    /// `server-gzip`, … (PostgreSQL 15+): the server compresses, the archives arrive so.
    Server,
}

/// `pgwal-recv basebackup`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BasebackupOptions {
    pub conn: ConnOptions,
    /// `-D`: the directory to write the backup into (created, or existing and empty).
    pub directory: PathBuf,
    pub format: Format,
    pub wal_method: WalMethod,
    /// `-c fast`.
    pub fast_checkpoint: bool,
    /// `-C`: create the `-S` slot.
    pub create_slot: bool,
    /// `-S`.
    pub slot: Option<String>,
    /// `--no-slot`: stream WAL without a temporary slot.
    pub no_slot: bool,
    /// `-r`, in kB/s.
    pub max_rate: Option<u32>,
    /// `-R`.
    pub write_recovery_conf: bool,
    /// `-T OLDDIR=NEWDIR`.
    pub tablespace_mapping: Vec<(PathBuf, PathBuf)>,
    /// `--waldir`.
    pub waldir: Option<PathBuf>,
    /// `-Z`.
    pub compress: CompressSpec,
    pub compress_at: CompressAt,
    /// `-l`.
    pub label: String,
    /// `-n`: leave what was written after a failure.
    pub no_clean: bool,
    /// `-N`.
    pub no_sync: bool,
    pub verbose: bool,
    /// `-P`.
    pub progress: bool,
    pub no_verify_checksums: bool,
    pub no_manifest: bool,
    pub manifest_checksums: Option<String>,
    pub manifest_force_encode: bool,
    /// `-i OLDMANIFEST` (17+): an incremental backup relative to the backup whose manifest
    /// this is.
    pub incremental: Option<PathBuf>,
}

/// pg_basebackup's long options, in its table's order (for ambiguous abbreviations).
const BASEBACKUP_LONG: &[(&str, bool, Opt)] = &[
    ("help", false, Opt::Help),
    ("pgdata", true, Opt::Directory),
    ("format", true, Opt::Format),
    ("incremental", true, Opt::Incremental),
    ("checkpoint", true, Opt::Checkpoint),
    ("create-slot", false, Opt::CreateSlot),
    ("max-rate", true, Opt::MaxRate),
    ("write-recovery-conf", false, Opt::WriteRecoveryConf),
    ("slot", true, Opt::Slot),
    ("tablespace-mapping", true, Opt::TablespaceMapping),
    ("wal-method", true, Opt::WalMethod),
    ("gzip", false, Opt::Gzip),
    ("compress", true, Opt::Compress),
    ("label", true, Opt::Label),
    ("no-clean", false, Opt::NoClean),
    ("no-sync", false, Opt::NoSync),
    CONN_LONG[0],
    CONN_LONG[1],
    CONN_LONG[2],
    CONN_LONG[3],
    CONN_LONG[4],
    CONN_LONG[5],
    ("verbose", false, Opt::Verbose),
    ("progress", false, Opt::Progress),
    ("waldir", true, Opt::Waldir),
    ("no-slot", false, Opt::NoSlot),
    ("no-verify-checksums", false, Opt::NoVerifyChecksums),
    ("manifest-checksums", true, Opt::ManifestChecksums),
    ("manifest-force-encode", false, Opt::ManifestForceEncode),
    ("no-manifest", false, Opt::NoManifest),
];

fn basebackup_short(c: char) -> Option<(bool, Opt)> {
    Some(match c {
        'D' => (true, Opt::Directory),
        'F' => (true, Opt::Format),
        'i' => (true, Opt::Incremental),
        'c' => (true, Opt::Checkpoint),
        'C' => (false, Opt::CreateSlot),
        'r' => (true, Opt::MaxRate),
        'R' => (false, Opt::WriteRecoveryConf),
        'S' => (true, Opt::Slot),
        'T' => (true, Opt::TablespaceMapping),
        'X' => (true, Opt::WalMethod),
        'z' => (false, Opt::Gzip),
        'Z' => (true, Opt::Compress),
        'l' => (true, Opt::Label),
        'n' => (false, Opt::NoClean),
        'N' => (false, Opt::NoSync),
        'v' => (false, Opt::Verbose),
        'P' => (false, Opt::Progress),
        '?' => (false, Opt::Help),
        _ => return conn_short(c),
    })
}

/// `-r`: kB/s, or with a `k` or `M` suffix, 32 kB/s to 1 GB/s (pg_basebackup's
/// `parse_max_rate`).
fn parse_max_rate(v: &str) -> Result<u32, CliError> {
    let invalid = || CliError::fatal(format!("transfer rate \"{v}\" is not a valid value"));
    let t = v.trim();
    let (num, mult) = match t.strip_suffix('M') {
        Some(n) => (n.trim_end(), 1024.0),
        None => (t.strip_suffix('k').map_or(t, str::trim_end), 1.0),
    };
    let n: f64 = num.parse().map_err(|_| invalid())?;
    if !n.is_finite() || n <= 0.0 {
        return Err(CliError::fatal(
            "transfer rate must be greater than zero".into(),
        ));
    }
    let rate = n * mult;
    if !(32.0..=1_048_576.0).contains(&rate) {
        return Err(CliError::fatal(format!(
            "transfer rate \"{v}\" is out of range"
        )));
    }
    Ok(rate as u32)
}

/// `-T OLDDIR=NEWDIR` (`\=` for a `=` in a name); both must be absolute.
fn parse_mapping(v: &str) -> Result<(PathBuf, PathBuf), CliError> {
    let mut old = String::new();
    let mut new = String::new();
    let mut in_new = false;
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        let dst = if in_new { &mut new } else { &mut old };
        match c {
            '\\' if chars.peek() == Some(&'=') => {
                dst.push('=');
                chars.next();
            }
            '=' if in_new => {
                return Err(CliError::fatal(
                    "multiple \"=\" signs in tablespace mapping".into(),
                ))
            }
            '=' => in_new = true,
            c => dst.push(c),
        }
    }
    if !in_new || old.is_empty() || new.is_empty() {
        return Err(CliError::fatal(format!(
            "invalid tablespace mapping format \"{v}\", must be \"OLDDIR=NEWDIR\""
        )));
    }
    for (dir, which) in [(&old, "old"), (&new, "new")] {
        if !dir.starts_with('/') {
            return Err(CliError::fatal(format!(
                "{which} directory is not an absolute path in tablespace mapping: {dir}"
            )));
        }
    }
    Ok((PathBuf::from(old), PathBuf::from(new)))
}

pub(super) fn parse_basebackup(args: &[String]) -> Result<Action, CliError> {
    let mut o = BasebackupOptions {
        label: "pg_basebackup base backup".into(),
        ..BasebackupOptions::default()
    };
    let mut directory = None;
    let mut help = false;
    let mut compress = None;
    let operands = getopt(
        args,
        BASEBACKUP_LONG,
        basebackup_short,
        &mut |opt, value| {
            if set_conn(&mut o.conn, opt, value) {
                return Ok(());
            }
            let v = value.unwrap_or_default();
            match opt {
                Opt::Help => help = true,
                Opt::Directory => directory = Some(v.to_owned()),
                Opt::Format => {
                    o.format = match v {
                        "p" | "plain" => Format::Plain,
                        "t" | "tar" => Format::Tar,
                        _ => {
                            return Err(CliError::fatal(format!(
                                "invalid output format \"{v}\", must be \"plain\" or \"tar\""
                            )))
                        }
                    }
                }
                Opt::WalMethod => {
                    o.wal_method = match v {
                        "n" | "none" => WalMethod::None,
                        "f" | "fetch" => WalMethod::Fetch,
                        "s" | "stream" => WalMethod::Stream,
                        _ => {
                            return Err(CliError::fatal(format!(
                            "invalid wal-method option \"{v}\", must be \"fetch\", \"stream\", \
                             or \"none\""
                        )))
                        }
                    }
                }
                Opt::Checkpoint => {
                    o.fast_checkpoint = match v.to_ascii_lowercase().as_str() {
                        "fast" => true,
                        "spread" => false,
                        _ => {
                            return Err(CliError::fatal(format!(
                            "invalid checkpoint argument \"{v}\", must be \"fast\" or \"spread\""
                        )))
                        }
                    }
                }
                Opt::CreateSlot => o.create_slot = true,
                Opt::Slot => o.slot = Some(v.to_owned()),
                Opt::NoSlot => o.no_slot = true,
                Opt::MaxRate => o.max_rate = Some(parse_max_rate(v)?),
                Opt::WriteRecoveryConf => o.write_recovery_conf = true,
                Opt::TablespaceMapping => o.tablespace_mapping.push(parse_mapping(v)?),
                Opt::Waldir => o.waldir = Some(PathBuf::from(v)),
                Opt::Gzip => compress = Some("gzip".to_owned()),
                Opt::Compress => compress = Some(v.to_owned()),
                Opt::Label => o.label = v.to_owned(),
                Opt::NoClean => o.no_clean = true,
                Opt::NoSync => o.no_sync = true,
                Opt::Verbose => o.verbose = true,
                Opt::Progress => o.progress = true,
                Opt::NoVerifyChecksums => o.no_verify_checksums = true,
                Opt::NoManifest => o.no_manifest = true,
                Opt::ManifestChecksums => o.manifest_checksums = Some(v.to_owned()),
                Opt::ManifestForceEncode => o.manifest_force_encode = true,
                Opt::Incremental => o.incremental = Some(PathBuf::from(v)),
                _ => {}
            }
            Ok(())
        },
    )?;
    if help {
        return Ok(Action::SubHelp(basebackup_help_text()));
    }
    no_operands(&operands)?;
    let Some(dir) = directory else {
        return Err(CliError::usage("no target directory specified"));
    };
    if dir == "-" {
        return Err(CliError::usage(
            "writing the backup to standard output (-D -) is not supported",
        ));
    }
    o.directory = PathBuf::from(dir);
    if let Some(spec) = compress {
        let (at, rest) = match spec.split_once('-') {
            Some(("server", rest)) => (CompressAt::Server, rest.to_owned()),
            Some(("client", rest)) => (CompressAt::Client, rest.to_owned()),
            _ => (CompressAt::Client, spec.clone()),
        };
        o.compress_at = at;
        o.compress = CompressSpec::parse(&rest).map_err(CliError::fatal)?;
    }
    // pg_basebackup's checks, in its order and wording.
    let compressed = o.compress.method != crate::archive::compress::Method::None;
    if o.format == Format::Plain && compressed && o.compress_at == CompressAt::Client {
        return Err(CliError::usage("only tar mode backups can be compressed"));
    }
    if o.format == Format::Plain
        && o.compress_at == CompressAt::Server
        && o.compress.method == crate::archive::compress::Method::Lz4
    {
        return Err(CliError::usage(
            "server-side lz4 with the plain format is not supported: use gzip or zstd, or -F tar",
        ));
    }
    if o.slot.is_some() && o.wal_method != WalMethod::Stream {
        return Err(CliError::usage(
            "replication slots can only be used with WAL streaming",
        ));
    }
    if o.no_slot {
        if o.slot.is_some() {
            return Err(CliError::usage("--no-slot cannot be used with slot name"));
        }
        if o.create_slot {
            return Err(CliError::usage(
                "--create-slot and --no-slot are incompatible options",
            ));
        }
    }
    if o.create_slot && o.slot.is_none() {
        return Err(CliError::usage(
            "--create-slot needs a slot to be specified using --slot",
        ));
    }
    if o.waldir.is_some() {
        if o.format != Format::Plain {
            return Err(CliError::usage(
                "WAL directory location can only be specified in plain mode",
            ));
        }
        if !o.waldir.as_ref().is_some_and(|d| d.is_absolute()) {
            return Err(CliError::usage(
                "WAL directory location must be an absolute path",
            ));
        }
    }
    if o.no_manifest {
        if o.manifest_checksums.is_some() {
            return Err(CliError::usage(
                "--no-manifest and --manifest-checksums are incompatible options",
            ));
        }
        if o.manifest_force_encode {
            return Err(CliError::usage(
                "--no-manifest and --manifest-force-encode are incompatible options",
            ));
        }
    }
    Ok(Action::Basebackup(o))
}

/// `basebackup --help`.
pub fn basebackup_help_text() -> String {
    format!(
        "\
{PROGNAME} basebackup takes a base backup of a running PostgreSQL server, as
pg_basebackup does.

Usage:
  {PROGNAME} basebackup [OPTION]...

Options controlling the output:
  -D, --pgdata=DIRECTORY receive base backup into directory
  -F, --format=p|t       output format (plain (default), tar)
  -i, --incremental=OLDMANIFEST
                         take incremental backup (PostgreSQL 17+)
  -r, --max-rate=RATE    maximum transfer rate to transfer data directory
                         (in kB/s, or use suffix \"k\" or \"M\")
  -R, --write-recovery-conf
                         write configuration for replication
  -T, --tablespace-mapping=OLDDIR=NEWDIR
                         relocate tablespace in OLDDIR to NEWDIR
      --waldir=WALDIR    location for the write-ahead log directory
  -X, --wal-method=none|fetch|stream
                         include required WAL files with specified method
  -z, --gzip             compress tar output
  -Z, --compress=[{{client|server}}-]METHOD[:LEVEL]
                         compress tar output as specified (gzip, lz4, zstd;
                         server-… on PostgreSQL 15+)

General options:
  -c, --checkpoint=fast|spread
                         set fast or spread (default) checkpointing
  -C, --create-slot      create replication slot
  -l, --label=LABEL      set backup label
  -n, --no-clean         do not clean up after errors
  -N, --no-sync          do not wait for changes to be written safely to disk
  -P, --progress         show progress information
  -S, --slot=SLOTNAME    replication slot to use
  -v, --verbose          output verbose messages
      --manifest-checksums=SHA{{224,256,384,512}}|CRC32C|NONE
                         use algorithm for manifest checksums
      --manifest-force-encode
                         hex encode all file names in manifest
      --no-manifest      suppress generation of backup manifest
      --no-slot          prevent creation of temporary replication slot
      --no-verify-checksums
                         do not verify checksums
  -?, --help             show this help, then exit

Connection options:
{CONNECTION_HELP}
The plain format is written as it arrives (never staged whole); backup_manifest is
written last, so a directory without it is not a complete backup. Exit status: 0 done,
1 anything else.
"
    )
}
