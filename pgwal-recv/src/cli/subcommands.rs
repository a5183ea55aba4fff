//! The subcommands beyond the archiver: `measure` and `status` — their options, parsing and
//! help. They share the archiver's getopt and connection options (in the parent module).

use super::*;

/// `pgwal-recv measure`: stream without writing, report rate and lag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeasureOptions {
    pub conn: ConnOptions,
    pub slot: Option<String>,
    pub endpos: Option<Lsn>,
    /// `--duration`: stop after this long.
    pub duration: Option<Duration>,
    /// `-s`; `None` when 0. Default 10 s.
    pub status_interval: Option<Duration>,
    pub json: bool,
    pub metrics_listen: Option<SocketAddr>,
    /// `--stats`: decode the WAL and show which resource managers write it.
    pub stats: bool,
}

/// `pgwal-recv status`: the server's view of its replication.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusOptions {
    pub conn: ConnOptions,
    pub json: bool,
}

const MEASURE_LONG: &[(&str, bool, Opt)] = &[
    ("help", false, Opt::Help),
    CONN_LONG[0],
    CONN_LONG[1],
    CONN_LONG[2],
    CONN_LONG[3],
    CONN_LONG[4],
    CONN_LONG[5],
    ("slot", true, Opt::Slot),
    ("endpos", true, Opt::Endpos),
    ("duration", true, Opt::Duration),
    ("status-interval", true, Opt::StatusInterval),
    ("json", false, Opt::Json),
    ("metrics-listen", true, Opt::MetricsListen),
    ("stats", false, Opt::Stats),
];

fn measure_short(c: char) -> Option<(bool, Opt)> {
    match c {
        'S' => Some((true, Opt::Slot)),
        'E' => Some((true, Opt::Endpos)),
        's' => Some((true, Opt::StatusInterval)),
        '?' => Some((false, Opt::Help)),
        _ => conn_short(c),
    }
}

const STATUS_LONG: &[(&str, bool, Opt)] = &[
    ("help", false, Opt::Help),
    CONN_LONG[0],
    CONN_LONG[1],
    CONN_LONG[2],
    CONN_LONG[3],
    CONN_LONG[4],
    CONN_LONG[5],
    ("json", false, Opt::Json),
];

fn status_short(c: char) -> Option<(bool, Opt)> {
    match c {
        '?' => Some((false, Opt::Help)),
        _ => conn_short(c),
    }
}

pub(super) fn parse_measure(args: &[String]) -> Result<Action, CliError> {
    let mut o = MeasureOptions {
        status_interval: Some(Duration::from_secs(10)),
        ..MeasureOptions::default()
    };
    let mut help = false;
    let operands = getopt(args, MEASURE_LONG, measure_short, &mut |opt, value| {
        if set_conn(&mut o.conn, opt, value) {
            return Ok(());
        }
        let v = value.unwrap_or_default();
        match opt {
            Opt::Help => help = true,
            Opt::Slot => o.slot = Some(v.to_owned()),
            Opt::Endpos => o.endpos = parse_endpos(v)?,
            Opt::Duration => o.duration = Some(parse_duration(v)?),
            Opt::StatusInterval => {
                let secs = parse_status_interval(v)?;
                o.status_interval = (secs > 0).then(|| Duration::from_secs(secs));
            }
            Opt::Json => o.json = true,
            Opt::MetricsListen => o.metrics_listen = Some(parse_listen(v)?),
            Opt::Stats => o.stats = true,
            _ => {}
        }
        Ok(())
    })?;
    if help {
        return Ok(Action::SubHelp(measure_help_text()));
    }
    no_operands(&operands)?;
    Ok(Action::Measure(o))
}

pub(super) fn parse_status(args: &[String]) -> Result<Action, CliError> {
    let mut o = StatusOptions::default();
    let mut help = false;
    let operands = getopt(args, STATUS_LONG, status_short, &mut |opt, value| {
        if !set_conn(&mut o.conn, opt, value) {
            match opt {
                Opt::Help => help = true,
                Opt::Json => o.json = true,
                _ => {}
            }
        }
        Ok(())
    })?;
    if help {
        return Ok(Action::SubHelp(status_help_text()));
    }
    no_operands(&operands)?;
    Ok(Action::Status(o))
}

/// `measure --help`.
pub fn measure_help_text() -> String {
    format!(
        "\
{PROGNAME} measure streams write-ahead log from a server without writing it anywhere
and reports how fast it flows and how far behind the server it is.

Usage:
  {PROGNAME} measure [OPTION]...

Options:
  -S, --slot=SLOTNAME    start at this physical slot's restart_lsn (PostgreSQL 15+);
                         the slot is never advanced
  -E, --endpos=LSN       stop once WAL up to this LSN has been received
      --duration=SECS    stop after this many seconds
  -s, --status-interval=SECS
                         time between status packets sent to server (default: 10)
      --json             print a JSON summary as the last line of stdout
      --metrics-listen=HOST:PORT
                         serve Prometheus metrics at http://HOST:PORT/metrics
      --stats            decode the WAL: records and bytes per second by resource
                         manager, in the progress lines, the JSON and the metrics
  -?, --help             show this help, then exit

Without --slot, streaming starts at the start of the server's current segment.
Rates are in MB/s (10^6 bytes). Lag: see docs/archiver.md. Stop with Ctrl-C for the summary.

Connection options:
{CONNECTION_HELP}"
    )
}

/// `status --help`.
pub fn status_help_text() -> String {
    format!(
        "\
{PROGNAME} status shows a server's replication: its standbys and archivers
(pg_stat_replication), its replication slots, and on a standby its recovery.

Usage:
  {PROGNAME} status [OPTION]...

Options:
      --json             print one JSON object instead of tables
  -?, --help             show this help, then exit

Connection options (a plain SQL connection; the database defaults to postgres):
{CONNECTION_HELP}"
    )
}
