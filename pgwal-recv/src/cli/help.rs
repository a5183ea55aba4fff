//! `--help` and `--version`, with pg_receivewal's layout.

use crate::output::PROGNAME;

/// The connection options' help, the same in every subcommand.
pub(super) const CONNECTION_HELP: &str = "  -d, --dbname=CONNSTR   connection string
  -h, --host=HOSTNAME    database server host or socket directory
  -p, --port=PORT        database server port number
  -U, --username=NAME    connect as specified database user
  -w, --no-password      never prompt for password
  -W, --password         force password prompt (should happen automatically)
";

/// `--help`, modelled on `pg_receivewal --help`.
pub fn help_text() -> String {
    format!(
        "\
{PROGNAME} receives PostgreSQL streaming write-ahead logs.

Usage:
  {PROGNAME} [OPTION]...

Options:
  -D, --directory=DIR    receive write-ahead log files into this directory, or into
                         the object store s3://BUCKET/PREFIX (needs --spool)
  -E, --endpos=LSN       exit after receiving the specified LSN
      --if-not-exists    do not error if slot already exists when creating a slot
  -n, --no-loop          do not loop on connection lost
      --no-sync          do not wait for changes to be written safely to disk
  -s, --status-interval=SECS
                         time between status packets sent to server (default: 10)
  -S, --slot=SLOTNAME    replication slot to use
      --synchronous      flush write-ahead log immediately after writing
  -v, --verbose          output verbose messages
      --verify           check each record (headers, links, CRC) as it arrives, before
                         reporting it flushed
      --no-verify        do not (the default)
  -V, --version          output version information, then exit
  -Z, --compress=METHOD[:DETAIL]
                         compress as specified; METHOD is none, gzip, lz4 or zstd
  -?, --help             show this help, then exit

Object store (-D s3://BUCKET/PREFIX; credentials, region and endpoint from AWS_*):
      --spool=DIR        receive into this local directory, then upload each complete
                         segment (compressed as -Z says) and remove it from DIR
      --spool-max=N      at most N complete segments wait for upload; past that,
                         receiving pauses (default: 4)
      --upload-jobs=N    uploads at once (default: 2)
      --upload-partial=SECS
                         also upload the open segment as NAME.partial every SECS

Connection options:
{CONNECTION_HELP}
Optional actions:
      --create-slot      create a new replication slot (for the slot's name see --slot)
      --drop-slot        drop the replication slot (for the slot's name see --slot)

Monitoring:
      --metrics-listen=HOST:PORT
                         serve Prometheus metrics at http://HOST:PORT/metrics
  {PROGNAME} measure [OPTION]...
                         stream without writing and report rate and lag
  {PROGNAME} status [OPTION]...
                         show the server's replication connections and slots
  {PROGNAME} verify -D DIRECTORY [OPTION]...
                         read every record of an archive and report what is wrong
  {PROGNAME} cleanup -D DIRECTORY --keep-from=WHERE|--keep-within=DURATION
                         remove the WAL that recovery from a kept point on cannot need
  {PROGNAME} restore -D DIRECTORY WALFILE DEST
                         PostgreSQL's restore_command for the archive
  {PROGNAME} basebackup -D DIRECTORY [OPTION]...
                         take a base backup, as pg_basebackup does
"
    )
}

/// `--version`, without a trailing newline.
pub fn version_text() -> String {
    format!("{PROGNAME} (pgwire-repl) {}", env!("CARGO_PKG_VERSION"))
}
