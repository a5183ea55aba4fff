//! `pgwal-recv cleanup`: its options, parsing and help.

use super::verify::parse_segment_name;
use super::*;
use crate::archive::names::looks_like_segment;

/// `pgwal-recv cleanup`: remove the WAL that recovery from a kept point on cannot need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupOptions {
    /// `-D`: the archive.
    pub directory: PathBuf,
    /// Where the WAL to keep begins.
    pub keep: Keep,
    /// `-n`, `--dry-run`: say what would go, remove nothing.
    pub dry_run: bool,
    pub json: bool,
}

/// `--keep-from` or `--keep-within`: exactly one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    From(KeepFrom),
    /// Every segment written in this last stretch of time.
    Within(Duration),
}

/// `--keep-from`'s value, told apart by its form: a segment name first (24 hex digits and
/// segment suffixes), then an LSN (`X/Y`), else a file (a path, or a `.backup` file of the
/// archive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepFrom {
    /// The 24 hex digits of a segment name, suffixes dropped.
    Segment(String),
    /// On the archive's newest timeline.
    Lsn(Lsn),
    /// A base backup's `.backup` file or a `backup_label`.
    File(String),
}

const CLEANUP_LONG: &[(&str, bool, Opt)] = &[
    ("help", false, Opt::Help),
    ("directory", true, Opt::Directory),
    ("keep-from", true, Opt::KeepFrom),
    ("keep-within", true, Opt::KeepWithin),
    ("dry-run", false, Opt::DryRun),
    ("json", false, Opt::Json),
];

fn cleanup_short(c: char) -> Option<(bool, Opt)> {
    match c {
        'D' => Some((true, Opt::Directory)),
        'n' => Some((false, Opt::DryRun)),
        '?' => Some((false, Opt::Help)),
        _ => None,
    }
}

fn parse_keep_from(v: &str) -> Result<KeepFrom, CliError> {
    if looks_like_segment(v) {
        return parse_segment_name("--keep-from", v).map(KeepFrom::Segment);
    }
    if let Ok(lsn) = Lsn::from_str(v) {
        return Ok(KeepFrom::Lsn(lsn));
    }
    if v.is_empty() {
        return Err(CliError::fatal(
            "invalid value \"\" for option --keep-from".to_owned(),
        ));
    }
    Ok(KeepFrom::File(v.to_owned()))
}

/// `--keep-within`: a whole number, at least 1, then one unit: `s`, `m`, `h`, `d` (24 h) or
/// `w` (7 d). No unit is an error, not seconds: `7` meant as days would remove almost
/// everything.
pub(super) fn parse_keep_within(v: &str) -> Result<Duration, CliError> {
    let invalid = || {
        CliError::fatal(format!(
            "invalid value \"{v}\" for option --keep-within: a number and a unit (s, m, h, d, \
             w) expected, as in 36h or 7d"
        ))
    };
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    let unit = match &v[digits..] {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(invalid()),
    };
    let n: u64 = v[..digits].parse().map_err(|_| invalid())?;
    match n.checked_mul(unit) {
        Some(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
        _ => Err(invalid()),
    }
}

pub(super) fn parse_cleanup(args: &[String]) -> Result<Action, CliError> {
    let mut directory = None;
    let mut keep_from = None;
    let mut keep_within = None;
    let (mut dry_run, mut json, mut help) = (false, false, false);
    let operands = getopt(args, CLEANUP_LONG, cleanup_short, &mut |opt, value| {
        let v = value.unwrap_or_default();
        match opt {
            Opt::Help => help = true,
            Opt::Directory => directory = Some(v.to_owned()),
            Opt::KeepFrom => keep_from = Some(parse_keep_from(v)?),
            Opt::KeepWithin => keep_within = Some(parse_keep_within(v)?),
            Opt::DryRun => dry_run = true,
            Opt::Json => json = true,
            _ => {}
        }
        Ok(())
    })?;
    if help {
        return Ok(Action::SubHelp(cleanup_help_text()));
    }
    no_operands(&operands)?;
    let Some(dir) = directory else {
        return Err(CliError::usage("no archive specified (-D)"));
    };
    let keep = match (keep_from, keep_within) {
        (Some(f), None) => Keep::From(f),
        (None, Some(w)) => Keep::Within(w),
        (Some(_), Some(_)) => {
            return Err(CliError::usage(
                "cannot use --keep-from together with --keep-within",
            ))
        }
        (None, None) => {
            return Err(CliError::usage(
                "what to keep must be specified using --keep-from or --keep-within",
            ))
        }
    };
    Ok(Action::Cleanup(CleanupOptions {
        directory: PathBuf::from(dir),
        keep,
        dry_run,
        json,
    }))
}

/// `cleanup --help`.
pub fn cleanup_help_text() -> String {
    format!(
        "\
{PROGNAME} cleanup removes from a write-ahead log archive what no recovery from a kept
point on can need: the segments before the cut, on every timeline, and the .backup files
before it. History files, each timeline's newest segment, a timeline's segments from where a
newer timeline branched off it, and files that are not WAL always stay. It takes no lock:
it is safe while the archiver writes into the archive.

Usage:
  {PROGNAME} cleanup -D DIRECTORY --keep-from=WHERE [OPTION]...
  {PROGNAME} cleanup -D DIRECTORY --keep-within=DURATION [OPTION]...

Options:
  -D, --directory=DIR    the archive to clean up
      --keep-from=WHERE  keep the WAL from here on: a segment file name, an LSN (X/Y),
                         or a base backup's .backup file or backup_label (its start)
      --keep-within=DURATION
                         keep every segment written in the last DURATION, and all after
                         the oldest of them: a number and a unit, s, m, h, d or w (36h, 7d)
  -n, --dry-run          show what would be removed, remove nothing
      --json             print a JSON summary as the last line of stdout
  -?, --help             show this help, then exit

Exit status: 0 when done (or nothing was to be removed), 1 on any error.
"
    )
}
