//! `pgwal-recv verify`: its options, parsing and help.

use super::*;

/// `pgwal-recv verify`: read every record of an archive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// `-D`: the archive.
    pub directory: PathBuf,
    /// `--timeline`: that timeline and the ancestors its history names.
    pub timeline: Option<TimelineId>,
    /// `--start`, `--end`: the first and last segment to read, by name (24 hex digits; the
    /// timeline part is ignored: the timeline is chosen with `--timeline`).
    pub start: Option<String>,
    pub end: Option<String>,
    /// `--stats`: pg_waldump's `--stats=rmgr` table (and `rmgrs` in the JSON).
    pub stats: bool,
    pub json: bool,
}

const VERIFY_LONG: &[(&str, bool, Opt)] = &[
    ("help", false, Opt::Help),
    ("directory", true, Opt::Directory),
    ("timeline", true, Opt::Timeline),
    ("start", true, Opt::Start),
    ("end", true, Opt::End),
    ("stats", false, Opt::Stats),
    ("json", false, Opt::Json),
];

fn verify_short(c: char) -> Option<(bool, Opt)> {
    match c {
        'D' => Some((true, Opt::Directory)),
        '?' => Some((false, Opt::Help)),
        _ => None,
    }
}

/// A segment file name's 24 hex digits (suffixes allowed: `.partial`, `.gz`, ...).
pub(super) fn parse_segment_name(option: &str, v: &str) -> Result<String, CliError> {
    let base = v.get(..24).filter(|b| {
        b.bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
    });
    match base {
        Some(b) => Ok(b.to_owned()),
        None => Err(CliError::fatal(format!(
            "invalid segment name \"{v}\" for option {option}: 24 uppercase hex digits expected"
        ))),
    }
}

pub(super) fn parse_verify(args: &[String]) -> Result<Action, CliError> {
    let mut o = VerifyOptions::default();
    let mut directory = None;
    let mut help = false;
    let operands = getopt(args, VERIFY_LONG, verify_short, &mut |opt, value| {
        let v = value.unwrap_or_default();
        match opt {
            Opt::Help => help = true,
            Opt::Directory => directory = Some(v.to_owned()),
            Opt::Timeline => {
                let t = v.parse::<u32>().ok().filter(|t| *t > 0).ok_or_else(|| {
                    CliError::fatal(format!("invalid timeline \"{v}\" for option --timeline"))
                })?;
                o.timeline = Some(TimelineId(t));
            }
            Opt::Start => o.start = Some(parse_segment_name("--start", v)?),
            Opt::End => o.end = Some(parse_segment_name("--end", v)?),
            Opt::Stats => o.stats = true,
            Opt::Json => o.json = true,
            _ => {}
        }
        Ok(())
    })?;
    if help {
        return Ok(Action::SubHelp(verify_help_text()));
    }
    no_operands(&operands)?;
    let Some(dir) = directory else {
        return Err(CliError::usage("no archive specified (-D)"));
    };
    o.directory = PathBuf::from(dir);
    Ok(Action::Verify(o))
}

/// `verify --help`.
pub fn verify_help_text() -> String {
    format!(
        "\
{PROGNAME} verify reads every record of a write-ahead log archive, checks each page and
record as PostgreSQL's own reader does (headers, links, CRC), and the archive's shape:
continuity from segment to segment, timelines against their history files, gaps.

Usage:
  {PROGNAME} verify -D DIRECTORY [OPTION]...

Options:
  -D, --directory=DIR    the archive to verify
      --timeline=TLI     only this timeline (and its ancestors' segments)
      --start=SEGMENT    begin with this segment (a file name)
      --end=SEGMENT      end with this segment
      --stats            show pg_waldump's --stats=rmgr table of the records read
      --json             print a JSON summary as the last line of stdout
  -?, --help             show this help, then exit

Exit status: 0 when everything checked is intact, 1 when anything is wrong.
"
    )
}
