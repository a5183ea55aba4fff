//! Replication command texts and the parsing of their results.
//!
//! See <https://www.postgresql.org/docs/current/protocol-replication.html>. Command syntax
//! that changed between versions is picked by the [`ServerVersion`] the server reported at
//! startup; an unknown version (`None`) gets what servers before the change get.

use bytes::Bytes;

use super::query::QueryResult;
use crate::error::{Error, Result};
use crate::lsn::{Lsn, TimelineId};
use crate::server_version::ServerVersion;

/// Quotes an identifier (a slot name) the way the replication grammar reads it.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn one_row<'a>(
    results: &'a [QueryResult],
    what: &str,
    min_cols: usize,
) -> Result<&'a [Option<Bytes>]> {
    let res = match results {
        [r] => r,
        _ => {
            return Err(Error::protocol(format!(
                "{what} returned {} result sets, expected 1",
                results.len()
            )))
        }
    };
    match res.rows.as_slice() {
        [row] if row.len() >= min_cols => Ok(row),
        [row] => Err(Error::protocol(format!(
            "{what} returned {} columns, expected at least {min_cols}",
            row.len()
        ))),
        rows => Err(Error::protocol(format!(
            "{what} returned {} rows, expected 1",
            rows.len()
        ))),
    }
}

fn text<'a>(col: &'a Option<Bytes>, what: &str) -> Result<Option<&'a str>> {
    col.as_deref()
        .map(|b| {
            std::str::from_utf8(b)
                .map_err(|_| Error::protocol(format!("{what} is not valid UTF-8")))
        })
        .transpose()
}

fn required<'a>(col: &'a Option<Bytes>, what: &str) -> Result<&'a str> {
    text(col, what)?.ok_or_else(|| Error::protocol(format!("{what} is NULL")))
}

fn number<T: std::str::FromStr>(s: &str, what: &str) -> Result<T> {
    s.parse()
        .map_err(|_| Error::protocol(format!("{what} \"{s}\" is not a valid number")))
}

fn lsn(s: &str, what: &str) -> Result<Lsn> {
    s.parse()
        .map_err(|_| Error::protocol(format!("{what} \"{s}\" is not a valid WAL location")))
}

fn timeline(s: &str, what: &str) -> Result<TimelineId> {
    let n: u32 = number(s, what)?;
    if n == 0 {
        return Err(Error::protocol(format!("{what} is 0")));
    }
    Ok(TimelineId(n))
}

/// The answer to `IDENTIFY_SYSTEM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifySystem {
    pub system_id: u64,
    pub timeline: TimelineId,
    /// The current WAL flush location (on a standby, its replay location).
    pub xlogpos: Lsn,
    /// The database connected to, or `None` for a physical replication connection.
    pub dbname: Option<String>,
}

impl IdentifySystem {
    pub const COMMAND: &'static str = "IDENTIFY_SYSTEM";

    /// Columns `systemid`, `timeline`, `xlogpos`, `dbname`; extra columns are tolerated.
    pub fn parse(results: &[QueryResult]) -> Result<IdentifySystem> {
        let row = one_row(results, "IDENTIFY_SYSTEM", 3)?;
        Ok(IdentifySystem {
            system_id: number(required(&row[0], "system identifier")?, "system identifier")?,
            timeline: timeline(required(&row[1], "timeline")?, "timeline")?,
            xlogpos: lsn(required(&row[2], "xlogpos")?, "xlogpos")?,
            dbname: match row.get(3) {
                Some(c) => text(c, "dbname")?.map(str::to_owned),
                None => None,
            },
        })
    }
}

/// `SHOW name`. The name must be a plain setting name, as no quoting is applied.
pub fn show_command(name: &str) -> Result<String> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    {
        return Err(Error::config(format!("invalid setting name \"{name}\"")));
    }
    Ok(format!("SHOW {name}"))
}

/// The single value `SHOW` returns.
pub fn parse_show(results: &[QueryResult]) -> Result<String> {
    let row = one_row(results, "SHOW", 1)?;
    Ok(required(&row[0], "SHOW value")?.to_owned())
}

/// The answer to `TIMELINE_HISTORY tli`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineHistory {
    /// The history file's name, `%08X.history`.
    pub file_name: String,
    /// The file's bytes, exactly as the server has them.
    pub content: Bytes,
}

impl TimelineHistory {
    pub fn command(tli: TimelineId) -> String {
        format!("TIMELINE_HISTORY {}", tli.0)
    }

    pub fn parse(results: &[QueryResult]) -> Result<TimelineHistory> {
        let row = one_row(results, "TIMELINE_HISTORY", 2)?;
        Ok(TimelineHistory {
            file_name: required(&row[0], "history file name")?.to_owned(),
            content: row[1]
                .clone()
                .ok_or_else(|| Error::protocol("history file content is NULL"))?,
        })
    }

    /// The entries of the history file.
    pub fn entries(&self) -> Result<Vec<HistoryEntry>> {
        parse_history(&self.content)
    }
}

/// One line of a timeline history file: timeline `timeline` ended at `switchpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub timeline: TimelineId,
    pub switchpoint: Lsn,
    pub reason: String,
}

/// Parses a history file: lines `parentTLI <tab> switchpoint <tab> reason`; blank lines and
/// `#` comments are skipped, as the server's `readTimeLineHistory` does. Timelines must
/// increase from line to line.
pub fn parse_history(content: &[u8]) -> Result<Vec<HistoryEntry>> {
    let text = std::str::from_utf8(content)
        .map_err(|_| Error::protocol("timeline history is not valid UTF-8"))?;
    let mut out: Vec<HistoryEntry> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad =
            |why: &str| Error::protocol(format!("invalid timeline history line {}: {why}", i + 1));
        // As the server's sscanf("%u\t%X/%X"): any run of blanks between the fields.
        let tli = line.split_whitespace().next().unwrap_or_default();
        let rest = line[tli.len()..].trim_start();
        let sp = rest.split_whitespace().next().unwrap_or_default();
        let reason = rest[sp.len()..].trim();
        let tli: u32 = tli.parse().map_err(|_| bad("timeline is not a number"))?;
        if sp.is_empty() {
            return Err(bad("no switchpoint"));
        }
        let switchpoint = sp
            .parse::<Lsn>()
            .map_err(|_| bad("switchpoint is not a WAL location"))?;
        if let Some(prev) = out.last() {
            if tli <= prev.timeline.0 {
                return Err(bad("timelines are not in increasing order"));
            }
        }
        out.push(HistoryEntry {
            timeline: TimelineId(tli),
            switchpoint,
            reason: reason.to_owned(),
        });
    }
    Ok(out)
}

/// Options of `CREATE_REPLICATION_SLOT … PHYSICAL`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreateSlotOptions {
    /// Dropped when the session ends.
    pub temporary: bool,
    /// Reserve WAL at once (otherwise restart_lsn stays NULL until a client streams).
    pub reserve_wal: bool,
}

/// `CREATE_REPLICATION_SLOT`: the parenthesized option list on 15+, the bare keyword before
/// (an empty option list is left out, as pg_receivewal does).
pub fn create_slot_command(
    name: &str,
    opts: CreateSlotOptions,
    server_version: Option<ServerVersion>,
) -> String {
    let mut cmd = format!("CREATE_REPLICATION_SLOT {}", quote_ident(name));
    if opts.temporary {
        cmd.push_str(" TEMPORARY");
    }
    cmd.push_str(" PHYSICAL");
    if opts.reserve_wal {
        cmd.push_str(if server_version.is_some_and(|v| v.at_least(15)) {
            " (RESERVE_WAL)"
        } else {
            " RESERVE_WAL"
        });
    }
    cmd
}

/// The answer to `CREATE_REPLICATION_SLOT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSlot {
    pub slot_name: String,
    /// The server's `consistent_point` column. Meaningful for logical slots; for a physical
    /// slot the server reports `0/0` even with RESERVE_WAL (read `restart_lsn` with
    /// READ_REPLICATION_SLOT or `pg_replication_slots` instead).
    pub consistent_point: Option<Lsn>,
}

impl CreatedSlot {
    pub fn parse(results: &[QueryResult]) -> Result<CreatedSlot> {
        let row = one_row(results, "CREATE_REPLICATION_SLOT", 2)?;
        Ok(CreatedSlot {
            slot_name: required(&row[0], "slot name")?.to_owned(),
            consistent_point: text(&row[1], "consistent point")?
                .map(|s| lsn(s, "consistent point"))
                .transpose()?,
        })
    }
}

/// `DROP_REPLICATION_SLOT name [WAIT]`.
pub fn drop_slot_command(name: &str, wait: bool) -> String {
    let mut cmd = format!("DROP_REPLICATION_SLOT {}", quote_ident(name));
    if wait {
        cmd.push_str(" WAIT");
    }
    cmd
}

/// The answer to `READ_REPLICATION_SLOT` (PostgreSQL 15+). All fields are NULL when the slot
/// does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSlot {
    /// `physical` or `logical`; `None` when there is no such slot.
    pub slot_type: Option<String>,
    pub restart_lsn: Option<Lsn>,
    pub restart_tli: Option<TimelineId>,
}

impl ReadSlot {
    /// The command, or a clear error for a server older than 15 (which would not know it).
    pub fn command(name: &str, server_version: Option<ServerVersion>) -> Result<String> {
        match server_version {
            Some(v) if v.at_least(15) => {}
            Some(v) => {
                return Err(Error::config(format!(
                    "READ_REPLICATION_SLOT needs PostgreSQL 15 or later, the server is {v}"
                )))
            }
            None => {
                return Err(Error::config(
                    "READ_REPLICATION_SLOT needs PostgreSQL 15 or later, the server did not report its version",
                ))
            }
        }
        Ok(format!("READ_REPLICATION_SLOT {}", quote_ident(name)))
    }

    pub fn parse(results: &[QueryResult]) -> Result<ReadSlot> {
        let row = one_row(results, "READ_REPLICATION_SLOT", 3)?;
        Ok(ReadSlot {
            slot_type: text(&row[0], "slot_type")?.map(str::to_owned),
            restart_lsn: text(&row[1], "restart_lsn")?
                .map(|s| lsn(s, "restart_lsn"))
                .transpose()?,
            restart_tli: text(&row[2], "restart_tli")?
                .map(|s| timeline(s, "restart_tli"))
                .transpose()?,
        })
    }
}

/// `START_REPLICATION [SLOT name] PHYSICAL X/Y [TIMELINE tli]`.
pub fn start_replication_command(
    slot: Option<&str>,
    start: Lsn,
    timeline: Option<TimelineId>,
) -> String {
    let mut cmd = String::from("START_REPLICATION ");
    if let Some(slot) = slot {
        cmd.push_str("SLOT ");
        cmd.push_str(&quote_ident(slot));
        cmd.push(' ');
    }
    cmd.push_str(&format!("PHYSICAL {start}"));
    if let Some(tli) = timeline {
        cmd.push_str(&format!(" TIMELINE {}", tli.0));
    }
    cmd
}

/// The result set that follows the end of a historic timeline: the next timeline and where
/// it begins (`next_tli`, `next_tli_startpos`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineSwitch {
    pub next_timeline: TimelineId,
    pub next_start: Lsn,
}

impl TimelineSwitch {
    pub fn parse(res: &QueryResult) -> Result<TimelineSwitch> {
        let row = one_row(std::slice::from_ref(res), "end-of-timeline result", 2)?;
        Ok(TimelineSwitch {
            next_timeline: timeline(required(&row[0], "next_tli")?, "next_tli")?,
            next_start: lsn(required(&row[1], "next_tli_startpos")?, "next_tli_startpos")?,
        })
    }
}
