//! `pgwal-recv restore`: its options, parsing and help.

use super::*;

/// `pgwal-recv restore`: one file of the archive into place, as PostgreSQL's
/// `restore_command`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    /// `-D`: the archive.
    pub directory: PathBuf,
    /// `--partial`: when the segment is absent, its `.partial` (zero-padded).
    pub partial: bool,
    /// `--prefetch N`: keep the next N segments restored ahead in a spool beside DEST.
    pub prefetch: u32,
    /// `--prefetch-worker` (not in the help): this process is the background worker that
    /// `--prefetch` starts.
    pub prefetch_worker: bool,
    /// `%f`: the file's name in the archive.
    pub walfile: String,
    /// `%p`: where to write it.
    pub dest: PathBuf,
}

/// The most segments `--prefetch` keeps ahead (each is a whole segment on DEST's disk).
pub const MAX_PREFETCH: u32 = 64;

const RESTORE_LONG: &[(&str, bool, Opt)] = &[
    ("help", false, Opt::Help),
    ("directory", true, Opt::Directory),
    ("partial", false, Opt::Partial),
    ("prefetch", true, Opt::Prefetch),
    ("prefetch-worker", false, Opt::PrefetchWorker),
];

fn restore_short(c: char) -> Option<(bool, Opt)> {
    match c {
        'D' => Some((true, Opt::Directory)),
        '?' => Some((false, Opt::Help)),
        _ => None,
    }
}

pub(super) fn parse_restore(args: &[String]) -> Result<Action, CliError> {
    let mut o = RestoreOptions::default();
    let mut directory = None;
    let mut help = false;
    let operands = getopt(args, RESTORE_LONG, restore_short, &mut |opt, value| {
        let v = value.unwrap_or_default();
        match opt {
            Opt::Help => help = true,
            Opt::Directory => directory = Some(v.to_owned()),
            Opt::Partial => o.partial = true,
            Opt::PrefetchWorker => o.prefetch_worker = true,
            Opt::Prefetch => {
                o.prefetch = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n <= MAX_PREFETCH)
                    .ok_or_else(|| {
                        CliError::fatal(format!(
                            "invalid value \"{v}\" for option --prefetch: a number of segments \
                             from 0 to {MAX_PREFETCH}"
                        ))
                    })?;
            }
            _ => {}
        }
        Ok(())
    })?;
    if help {
        return Ok(Action::SubHelp(restore_help_text()));
    }
    let Some(dir) = directory else {
        return Err(CliError::usage("no archive specified (-D)"));
    };
    match operands[..] {
        [walfile, dest] => {
            if walfile.is_empty() || walfile.contains('/') || walfile.starts_with('.') {
                return Err(CliError::fatal(format!(
                    "invalid file name \"{walfile}\": a WAL file name (%f) expected"
                )));
            }
            if dest.is_empty() {
                return Err(CliError::usage("empty destination path (%p)"));
            }
            o.walfile = walfile.to_owned();
            o.dest = PathBuf::from(dest);
        }
        [] | [_] => {
            return Err(CliError::usage(
                "a WAL file name and a destination path are required (%f %p)",
            ))
        }
        [_, _, extra, ..] => {
            return Err(CliError::usage(format!(
                "too many command-line arguments (first is \"{extra}\")"
            )))
        }
    }
    o.directory = PathBuf::from(dir);
    Ok(Action::Restore(o))
}

/// `restore --help`.
pub fn restore_help_text() -> String {
    format!(
        "\
{PROGNAME} restore copies one file of a write-ahead log archive into place, decompressed
and checked, for PostgreSQL's restore_command:

  restore_command = '{PROGNAME} restore -D /archive %f %p'

Usage:
  {PROGNAME} restore -D DIRECTORY [OPTION]... WALFILE DEST

Options:
  -D, --directory=DIR    the archive to restore from
      --partial          when WALFILE is absent, restore WALFILE.partial (the segment
                         the archiver was writing), padded with zeros to a segment
      --prefetch=N       restore the next N segments ahead, in the background, into a
                         spool beside DEST (0 to {MAX_PREFETCH}; default 0)
  -?, --help             show this help, then exit

WALFILE is found as stored, .zst, .lz4 or .gz. A segment must be a whole segment whose
pages and records pass the checks of pgwal-recv verify; DEST is written whole or not at all.

Exit status: 0 restored; 1 not in the archive (nothing printed: PostgreSQL asks for files
that do not exist as part of recovery); 255 anything else (a damaged or wrong file, an
unreadable archive, an I/O error, a bad command line), which stops PostgreSQL's recovery
instead of ending it early.
"
    )
}
