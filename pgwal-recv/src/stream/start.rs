//! Where a stream starts when nothing local says: the slot's `restart_lsn`, read with
//! `READ_REPLICATION_SLOT` (PostgreSQL 15 and later; the library refuses it on older servers
//! without a round trip, so it is not sent), else the server's current position.

use pgwire_repl::{Client, Lsn, ServerVersion, TimelineId};

use super::StreamError;

/// What the slot says about where to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotStart {
    /// Its `restart_lsn` and that position's timeline.
    At(Lsn, TimelineId),
    /// A physical slot that has reserved no WAL yet.
    NoRestartLsn,
    /// The server has no `READ_REPLICATION_SLOT` (before 15, or a version it did not report).
    Unsupported(Option<ServerVersion>),
}

/// Reads physical slot `slot`. Errors: the command failed, the slot does not exist, or it is
/// not physical — in pg_receivewal's words.
pub async fn slot_start(client: &mut Client, slot: &str) -> Result<SlotStart, StreamError> {
    if !client.server_version().is_some_and(|v| v.at_least(15)) {
        return Ok(SlotStart::Unsupported(client.server_version()));
    }
    let read = client.read_replication_slot(slot).await.map_err(|e| {
        StreamError::db(
            &format!("could not send replication command \"READ_REPLICATION_SLOT {slot}\""),
            &e,
        )
    })?;
    match (
        read.slot_type.as_deref(),
        read.restart_lsn,
        read.restart_tli,
    ) {
        (None, _, _) => Err(StreamError::retry(format!(
            "replication slot \"{slot}\" does not exist"
        ))),
        (Some("physical"), Some(lsn), Some(tli)) => Ok(SlotStart::At(lsn, tli)),
        (Some("physical"), _, _) => Ok(SlotStart::NoRestartLsn),
        (Some(other), _, _) => Err(StreamError::retry(format!(
            "expected a physical replication slot, got type \"{other}\" instead"
        ))),
    }
}

/// "15.4", or "of unknown version", for "server … has no READ_REPLICATION_SLOT".
pub fn version_text(v: Option<ServerVersion>) -> String {
    v.map_or_else(|| "of unknown version".into(), |v| v.to_string())
}
