//! The command line: pg_receivewal 17's options (plus zstd in `-Z`), parsed as glibc's
//! `getopt_long` does and validated in pg_receivewal's order with its wording, all before any
//! connection is made.
//!
//! Hand-written on purpose: a drop-in for pg_receivewal must accept exactly the command
//! lines it accepts and fail with its messages, which no argument-parsing crate reproduces
//! (abbreviated long options, permuted operands, `-?` only as the first argument, its error
//! texts and their order).
//!
//! `getopt_long` behaviour kept: short options cluster (`-vn`), a value may be attached
//! (`-D/x`, `--directory=/x`) or be the next argument even when it starts with `-`, a long
//! option may be shortened to any unambiguous prefix (`--direc`), `--` ends the options, and
//! operands are collected wherever they appear (glibc permutes them to the end). `-?`/`--help`
//! and `-V`/`--version` count only as the first argument, as in every PostgreSQL program;
//! elsewhere `--help` and `--version` fail with just the hint (pg_receivewal's `switch` has no
//! case for them) and `-?` and `-V` are invalid options.
//!
//! Deliberate differences from pg_receivewal:
//! - `-E` is parsed as `pg_lsn` text (`X/Y`, each half 1 to 8 hex digits) instead of
//!   `sscanf("%X/%X")`, which also takes `0x` prefixes, signs, trailing garbage (`1/2zz`) and
//!   silently truncates halves wider than 32 bits. `-E 0/0` means no end position, as there.
//! - `-Z zstd` is accepted (pg_receivewal 17: `compression with ZSTD is not yet supported`).
//! - getopt's own complaints start with `pgwal-recv: `, not with argv[0] as typed.
//! - `POSIXLY_CORRECT` is ignored: operands never stop option parsing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use pgwire_repl::{Lsn, TimelineId};

use crate::archive::compress::CompressSpec;
use crate::output::{os_error, PROGNAME};

/// Everything the command line says, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `-D`; always set unless `create_slot` or `drop_slot`, and then an existing directory.
    pub directory: Option<PathBuf>,
    /// `-E`; `-E 0/0` gives `None`, as pg_receivewal treats it as no end position.
    pub endpos: Option<Lsn>,
    pub if_not_exists: bool,
    pub no_loop: bool,
    pub no_sync: bool,
    /// `-s`; `None` when 0 (never send periodic status updates). Default 10 s.
    pub status_interval: Option<Duration>,
    pub slot: Option<String>,
    pub synchronous: bool,
    pub verbose: bool,
    /// `-Z`; validated even with `--create-slot`/`--drop-slot`, which then ignore it.
    pub compress: CompressSpec,
    pub dbname: Option<String>,
    pub host: Option<String>,
    pub port: Option<String>,
    pub username: Option<String>,
    /// `-w`. `-w` and `-W` are one setting: the later one wins, so at most one is true.
    pub no_password: bool,
    /// `-W`.
    pub password_prompt: bool,
    pub create_slot: bool,
    pub drop_slot: bool,
    /// `--metrics-listen`: serve Prometheus metrics at `http://ADDR/metrics`.
    pub metrics_listen: Option<SocketAddr>,
    /// Check every record as it arrives (`--verify`; off by default: it costs ~50 % more
    /// CPU in a catch-up, see docs/benchmarks.md).
    pub verify: bool,
    /// `--spool`: the local directory WAL is received into when `-D` is an object store.
    pub spool: Option<PathBuf>,
    /// `--spool-max`: at most this many complete segments wait in the spool for upload;
    /// past it, receiving pauses.
    pub spool_max: usize,
    /// `--upload-jobs`: uploads at once.
    pub upload_jobs: usize,
    /// `--upload-partial`: the open segment is uploaded as `NAME.partial` this often.
    pub upload_partial: Option<Duration>,
}

/// `--spool-max`'s default: 4 segments (64 MB at the default segment size) wait at most.
pub const DEFAULT_SPOOL_MAX: usize = 4;
/// `--upload-jobs`' default.
pub const DEFAULT_UPLOAD_JOBS: usize = 2;

impl Default for Options {
    fn default() -> Self {
        Options {
            directory: None,
            endpos: None,
            if_not_exists: false,
            no_loop: false,
            no_sync: false,
            status_interval: Some(Duration::from_secs(10)),
            slot: None,
            synchronous: false,
            verbose: false,
            compress: CompressSpec::default(),
            dbname: None,
            host: None,
            port: None,
            username: None,
            no_password: false,
            password_prompt: false,
            create_slot: false,
            drop_slot: false,
            metrics_listen: None,
            verify: false,
            spool: None,
            spool_max: DEFAULT_SPOOL_MAX,
            upload_jobs: DEFAULT_UPLOAD_JOBS,
            upload_partial: None,
        }
    }
}

impl Options {
    /// The connection options alone.
    pub fn conn(&self) -> ConnOptions {
        ConnOptions {
            dbname: self.dbname.clone(),
            host: self.host.clone(),
            port: self.port.clone(),
            username: self.username.clone(),
            no_password: self.no_password,
            password_prompt: self.password_prompt,
        }
    }
}

/// `-d`, `-h`, `-p`, `-U`, `-w`, `-W`: the same in every subcommand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnOptions {
    pub dbname: Option<String>,
    pub host: Option<String>,
    pub port: Option<String>,
    pub username: Option<String>,
    pub no_password: bool,
    pub password_prompt: bool,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Print [`help_text`] to stdout, exit 0.
    Help,
    /// Print [`version_text`] to stdout, exit 0.
    Version,
    Run(Options),
    /// `measure`.
    Measure(MeasureOptions),
    /// `status`.
    Status(StatusOptions),
    /// `verify`.
    Verify(VerifyOptions),
    /// `restore`.
    Restore(RestoreOptions),
    /// `cleanup`.
    Cleanup(CleanupOptions),
    /// `basebackup`.
    Basebackup(BasebackupOptions),
    /// A subcommand's `--help`: print this text to stdout, exit 0.
    SubHelp(String),
}

/// A command line that cannot run; [`CliError::print`] it and exit 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// The text after `pgwal-recv: ` (and `error: ` when `tagged`). Empty when only the hint
    /// is printed (`--help` or `--version` after the first argument).
    pub message: String,
    /// `false` for getopt's own complaints, which carry no level tag.
    pub tagged: bool,
    /// Followed by `pgwal-recv: hint: Try "pgwal-recv --help" for more information.`
    pub hint: bool,
}

impl CliError {
    /// getopt's complaint about the options themselves.
    fn getopt(message: String) -> CliError {
        CliError {
            message,
            tagged: false,
            hint: true,
        }
    }

    /// A usage error: an error followed by the hint.
    fn usage(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            tagged: true,
            hint: true,
        }
    }

    /// An error without the hint (a bad option value, compression, the directory).
    fn fatal(message: String) -> CliError {
        CliError {
            message,
            tagged: true,
            hint: false,
        }
    }

    /// The lines [`CliError::print`] writes, without newlines.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::with_capacity(2);
        if !self.message.is_empty() {
            let tag = if self.tagged { "error: " } else { "" };
            lines.push(format!("{PROGNAME}: {tag}{}", self.message));
        }
        if self.hint {
            lines.push(format!(
                "{PROGNAME}: hint: Try \"{PROGNAME} --help\" for more information."
            ));
        }
        lines
    }

    /// Writes the error to stderr.
    pub fn print(&self) {
        for line in self.lines() {
            eprintln!("{line}");
        }
    }
}

/// The options, identified independently of how they were spelt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Help,
    Version,
    Directory,
    Dbname,
    Endpos,
    Host,
    Port,
    Username,
    NoLoop,
    NoPassword,
    Password,
    StatusInterval,
    Slot,
    Verbose,
    Compress,
    CreateSlot,
    DropSlot,
    IfNotExists,
    Synchronous,
    NoSync,
    MetricsListen,
    Duration,
    Json,
    Timeline,
    Start,
    End,
    Stats,
    Verify,
    NoVerify,
    Spool,
    SpoolMax,
    UploadJobs,
    UploadPartial,
    Partial,
    Prefetch,
    PrefetchWorker,
    KeepFrom,
    KeepWithin,
    DryRun,
    Format,
    Checkpoint,
    MaxRate,
    WriteRecoveryConf,
    TablespaceMapping,
    WalMethod,
    Gzip,
    Label,
    NoClean,
    Progress,
    Waldir,
    NoSlot,
    NoVerifyChecksums,
    ManifestChecksums,
    ManifestForceEncode,
    NoManifest,
    Incremental,
}

/// Long options in pg_receivewal's table order, which is the order glibc lists the
/// candidates of an ambiguous abbreviation in. `true` means the option takes a value.
const LONG: &[(&str, bool, Opt)] = &[
    ("help", false, Opt::Help),
    ("version", false, Opt::Version),
    ("directory", true, Opt::Directory),
    ("dbname", true, Opt::Dbname),
    ("endpos", true, Opt::Endpos),
    ("host", true, Opt::Host),
    ("port", true, Opt::Port),
    ("username", true, Opt::Username),
    ("no-loop", false, Opt::NoLoop),
    ("no-password", false, Opt::NoPassword),
    ("password", false, Opt::Password),
    ("status-interval", true, Opt::StatusInterval),
    ("slot", true, Opt::Slot),
    ("verbose", false, Opt::Verbose),
    ("compress", true, Opt::Compress),
    ("create-slot", false, Opt::CreateSlot),
    ("drop-slot", false, Opt::DropSlot),
    ("if-not-exists", false, Opt::IfNotExists),
    ("synchronous", false, Opt::Synchronous),
    ("no-sync", false, Opt::NoSync),
    ("metrics-listen", true, Opt::MetricsListen),
    ("verify", false, Opt::Verify),
    ("no-verify", false, Opt::NoVerify),
    ("spool", true, Opt::Spool),
    ("spool-max", true, Opt::SpoolMax),
    ("upload-jobs", true, Opt::UploadJobs),
    ("upload-partial", true, Opt::UploadPartial),
];

/// The connection options every subcommand takes.
const CONN_LONG: [(&str, bool, Opt); 6] = [
    ("dbname", true, Opt::Dbname),
    ("host", true, Opt::Host),
    ("port", true, Opt::Port),
    ("username", true, Opt::Username),
    ("no-password", false, Opt::NoPassword),
    ("password", false, Opt::Password),
];

fn conn_short(c: char) -> Option<(bool, Opt)> {
    Some(match c {
        'd' => (true, Opt::Dbname),
        'h' => (true, Opt::Host),
        'p' => (true, Opt::Port),
        'U' => (true, Opt::Username),
        'w' => (false, Opt::NoPassword),
        'W' => (false, Opt::Password),
        _ => return None,
    })
}

/// pg_receivewal's short options, `d:D:E:h:np:s:S:U:vwWZ:` (no `V` and no `?`).
fn short(c: char) -> Option<(bool, Opt)> {
    Some(match c {
        'd' => (true, Opt::Dbname),
        'D' => (true, Opt::Directory),
        'E' => (true, Opt::Endpos),
        'h' => (true, Opt::Host),
        'n' => (false, Opt::NoLoop),
        'p' => (true, Opt::Port),
        's' => (true, Opt::StatusInterval),
        'S' => (true, Opt::Slot),
        'U' => (true, Opt::Username),
        'v' => (false, Opt::Verbose),
        'w' => (false, Opt::NoPassword),
        'W' => (false, Opt::Password),
        'Z' => (true, Opt::Compress),
        _ => return None,
    })
}

/// The options as given, before the checks that need all of them.
#[derive(Default)]
struct Raw {
    opts: Options,
    directory: Option<String>,
    compress: Option<String>,
    spool: Option<String>,
}

impl Raw {
    /// Takes in one option, checking its value as pg_receivewal does during option parsing.
    fn set(&mut self, opt: Opt, value: Option<&str>) -> Result<(), CliError> {
        let o = &mut self.opts;
        let text = || value.unwrap_or_default().to_owned();
        match opt {
            // Recognized by getopt but not handled by pg_receivewal's switch: only the hint.
            Opt::Help | Opt::Version => {
                return Err(CliError {
                    message: String::new(),
                    tagged: false,
                    hint: true,
                })
            }
            Opt::Directory => self.directory = Some(text()),
            Opt::Dbname => o.dbname = Some(text()),
            Opt::Endpos => o.endpos = parse_endpos(value.unwrap_or_default())?,
            Opt::Host => o.host = Some(text()),
            Opt::Port => o.port = Some(text()),
            Opt::Username => o.username = Some(text()),
            Opt::NoLoop => o.no_loop = true,
            Opt::NoPassword => (o.no_password, o.password_prompt) = (true, false),
            Opt::Password => (o.no_password, o.password_prompt) = (false, true),
            Opt::StatusInterval => {
                let secs = parse_status_interval(value.unwrap_or_default())?;
                o.status_interval = (secs > 0).then(|| Duration::from_secs(secs));
            }
            Opt::Slot => o.slot = Some(text()),
            Opt::Verbose => o.verbose = true,
            // Only split off here; pg_receivewal validates it after the other checks.
            Opt::Compress => self.compress = Some(text()),
            Opt::CreateSlot => o.create_slot = true,
            Opt::DropSlot => o.drop_slot = true,
            Opt::IfNotExists => o.if_not_exists = true,
            Opt::Synchronous => o.synchronous = true,
            Opt::NoSync => o.no_sync = true,
            Opt::MetricsListen => o.metrics_listen = Some(parse_listen(&text())?),
            Opt::Verify => o.verify = true,
            Opt::NoVerify => o.verify = false,
            Opt::Spool => self.spool = Some(text()),
            Opt::SpoolMax => o.spool_max = parse_count("--spool-max", &text(), 1, 100_000)?,
            Opt::UploadJobs => o.upload_jobs = parse_count("--upload-jobs", &text(), 1, 64)?,
            Opt::UploadPartial => {
                let secs = parse_count("--upload-partial", &text(), 1, 86_400)?;
                o.upload_partial = Some(Duration::from_secs(secs as u64));
            }
            // Not in the archiver's tables.
            Opt::Duration
            | Opt::Json
            | Opt::Timeline
            | Opt::Start
            | Opt::End
            | Opt::Stats
            | Opt::Partial
            | Opt::Prefetch
            | Opt::PrefetchWorker => {}
            Opt::KeepFrom | Opt::KeepWithin | Opt::DryRun => {}
            Opt::Format
            | Opt::Checkpoint
            | Opt::MaxRate
            | Opt::WriteRecoveryConf
            | Opt::TablespaceMapping
            | Opt::WalMethod
            | Opt::Gzip
            | Opt::Label
            | Opt::NoClean
            | Opt::Progress
            | Opt::Waldir
            | Opt::NoSlot
            | Opt::NoVerifyChecksums
            | Opt::ManifestChecksums
            | Opt::ManifestForceEncode
            | Opt::NoManifest
            | Opt::Incremental => {}
        }
        Ok(())
    }
}

/// Takes in a connection option; false if `opt` is not one.
fn set_conn(c: &mut ConnOptions, opt: Opt, value: Option<&str>) -> bool {
    let text = || value.map(str::to_owned);
    match opt {
        Opt::Dbname => c.dbname = text(),
        Opt::Host => c.host = text(),
        Opt::Port => c.port = text(),
        Opt::Username => c.username = text(),
        Opt::NoPassword => (c.no_password, c.password_prompt) = (true, false),
        Opt::Password => (c.no_password, c.password_prompt) = (false, true),
        _ => return false,
    }
    true
}

/// Parses and validates the command line (without argv[0]).
pub fn parse(args: &[String]) -> Result<Action, CliError> {
    match args.first().map(String::as_str) {
        Some("--help" | "-?") => return Ok(Action::Help),
        Some("--version" | "-V") => return Ok(Action::Version),
        Some("measure") => return parse_measure(&args[1..]),
        Some("status") => return parse_status(&args[1..]),
        Some("verify") => return verify::parse_verify(&args[1..]),
        Some("restore") => return restore::parse_restore(&args[1..]),
        Some("cleanup") => return cleanup::parse_cleanup(&args[1..]),
        Some("basebackup") => return basebackup::parse_basebackup(&args[1..]),
        _ => {}
    }
    let mut raw = Raw::default();
    let operands = getopt(args, LONG, short, &mut |opt, value| raw.set(opt, value))?;
    validate(raw, &operands).map(Action::Run)
}

fn no_operands(operands: &[&str]) -> Result<(), CliError> {
    match operands.first() {
        Some(first) => Err(CliError::usage(format!(
            "too many command-line arguments (first is \"{first}\")"
        ))),
        None => Ok(()),
    }
}

/// The checks that need the whole command line, in pg_receivewal's order.
fn validate(raw: Raw, operands: &[&str]) -> Result<Options, CliError> {
    let mut o = raw.opts;
    no_operands(operands)?;
    if o.create_slot && o.drop_slot {
        return Err(CliError::usage(
            "cannot use --create-slot together with --drop-slot",
        ));
    }
    if o.slot.is_none() && (o.create_slot || o.drop_slot) {
        let which = if o.drop_slot {
            "--drop-slot"
        } else {
            "--create-slot"
        };
        return Err(CliError::usage(format!(
            "{which} needs a slot to be specified using --slot"
        )));
    }
    if o.synchronous && o.no_sync {
        return Err(CliError::usage(
            "cannot use --synchronous together with --no-sync",
        ));
    }
    let slot_action = o.create_slot || o.drop_slot;
    if raw.directory.is_none() && !slot_action {
        return Err(CliError::usage("no target directory specified"));
    }
    if let Some(spec) = &raw.compress {
        o.compress = CompressSpec::parse(spec).map_err(CliError::fatal)?;
    }
    let remote = raw
        .directory
        .as_deref()
        .is_some_and(|d| crate::archive::objstore::is_url(std::path::Path::new(d)));
    if remote && raw.spool.is_none() && !slot_action {
        return Err(CliError::usage(
            "an object store (-D URL) is archived to through a local spool: --spool is required",
        ));
    }
    if !remote && raw.spool.is_some() {
        return Err(CliError::usage(
            "--spool is only for an object store (-D s3://BUCKET/PREFIX)",
        ));
    }
    if let Some(dir) = &raw.directory {
        // pg_receivewal opens the directory only when it is going to stream into it.
        let local = if remote {
            raw.spool.as_deref()
        } else {
            Some(&**dir)
        };
        if let (Some(local), false) = (local, slot_action) {
            if let Err(e) = std::fs::read_dir(local) {
                return Err(CliError::fatal(format!(
                    "could not open directory \"{local}\": {}",
                    os_error(&e)
                )));
            }
        }
        o.directory = Some(PathBuf::from(dir));
    }
    o.spool = raw.spool.map(PathBuf::from);
    Ok(o)
}

mod basebackup;
mod values;
pub use basebackup::{basebackup_help_text, BasebackupOptions, CompressAt, Format, WalMethod};
use values::{parse_count, parse_duration, parse_endpos, parse_listen, parse_status_interval};
mod cleanup;
mod getopt;
pub use cleanup::{cleanup_help_text, CleanupOptions, Keep, KeepFrom};
use getopt::getopt;
mod help;
use help::CONNECTION_HELP;
pub use help::{help_text, version_text};

mod subcommands;
pub use subcommands::{measure_help_text, status_help_text, MeasureOptions, StatusOptions};
mod verify;
use subcommands::{parse_measure, parse_status};
pub use verify::{verify_help_text, VerifyOptions};
mod restore;
pub use restore::{restore_help_text, RestoreOptions, MAX_PREFETCH};

#[cfg(test)]
mod tests;
