//! The messages inside CopyData during streaming replication.
//!
//! See <https://www.postgresql.org/docs/current/protocol-replication.html> ("START_REPLICATION").
//! Server to client: XLogData (`w`) and primary keepalive (`k`); client to server: standby
//! status update (`r`) and hot standby feedback (`h`). Each is decoded from a CopyData body
//! and encodes to a complete CopyData message.

use std::time::SystemTime;

use bytes::{BufMut, Bytes, BytesMut};

use super::codec::{write_message, Reader};
use crate::error::{Error, Result};
use crate::lsn::Lsn;
use crate::timestamp::{from_system_time, to_system_time};

/// `w`: a stretch of WAL.
///
/// ```text
/// Byte1('w') Int64 dataStart Int64 walEnd Int64 sendTime Byten data
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XLogData {
    /// The WAL position of the first byte of `data`.
    pub wal_start: Lsn,
    /// The server's current end of WAL.
    pub wal_end: Lsn,
    /// The server's clock when it sent this.
    pub send_time: SystemTime,
    /// The WAL bytes: a zero-copy slice of the connection's read buffer.
    pub data: Bytes,
}

impl XLogData {
    pub const HEADER_LEN: usize = 1 + 8 + 8 + 8;

    /// The position just past `data`, or `None` if a server claims a range past the end of
    /// the LSN space.
    pub fn data_end(&self) -> Option<Lsn> {
        self.wal_start.checked_add(self.data.len() as u64)
    }

    pub fn encode(&self, dst: &mut BytesMut) {
        write_message(dst, b'd', |d| {
            d.put_u8(b'w');
            d.put_u64(self.wal_start.0);
            d.put_u64(self.wal_end.0);
            d.put_i64(from_system_time(self.send_time));
            d.put_slice(&self.data);
        });
    }
}

/// `k`: the server's keepalive.
///
/// ```text
/// Byte1('k') Int64 walEnd Int64 sendTime Byte1 replyRequested
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrimaryKeepalive {
    pub wal_end: Lsn,
    pub send_time: SystemTime,
    /// "1 means that the client should reply to this message as soon as possible, to avoid
    /// a timeout disconnect."
    pub reply_requested: bool,
}

impl PrimaryKeepalive {
    pub const LEN: usize = 1 + 8 + 8 + 1;

    pub fn encode(&self, dst: &mut BytesMut) {
        write_message(dst, b'd', |d| {
            d.put_u8(b'k');
            d.put_u64(self.wal_end.0);
            d.put_i64(from_system_time(self.send_time));
            d.put_u8(u8::from(self.reply_requested));
        });
    }
}

/// What the server sends inside CopyData while streaming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicationMessage {
    XLogData(XLogData),
    PrimaryKeepalive(PrimaryKeepalive),
}

impl ReplicationMessage {
    /// Decodes a CopyData body from the server. The WAL payload stays a slice of `body`.
    pub fn decode(body: Bytes) -> Result<ReplicationMessage> {
        let mut r = Reader::new(&body, "replication");
        match r.u8()? {
            b'w' => {
                let wal_start = Lsn(r.u64()?);
                let wal_end = Lsn(r.u64()?);
                let send_time = to_system_time(r.i64()?);
                let data = r.rest();
                let x = XLogData {
                    wal_start,
                    wal_end,
                    send_time,
                    data,
                };
                if x.data_end().is_none() {
                    return Err(Error::protocol(format!(
                        "XLogData at {wal_start} with {} bytes runs past the end of WAL",
                        x.data.len()
                    )));
                }
                Ok(ReplicationMessage::XLogData(x))
            }
            b'k' => {
                if body.len() != PrimaryKeepalive::LEN {
                    return Err(Error::protocol(format!(
                        "primary keepalive message is {} bytes, expected {}",
                        body.len(),
                        PrimaryKeepalive::LEN
                    )));
                }
                let wal_end = Lsn(r.u64()?);
                let send_time = to_system_time(r.i64()?);
                let reply = r.u8()?;
                r.finish()?;
                Ok(ReplicationMessage::PrimaryKeepalive(PrimaryKeepalive {
                    wal_end,
                    send_time,
                    reply_requested: reply != 0,
                }))
            }
            t => Err(Error::protocol(format!(
                "unexpected replication message type '{}'",
                t.escape_ascii()
            ))),
        }
    }

    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            ReplicationMessage::XLogData(x) => x.encode(dst),
            ReplicationMessage::PrimaryKeepalive(k) => k.encode(dst),
        }
    }
}

/// `r`: the standby's positions.
///
/// ```text
/// Byte1('r') Int64 write Int64 flush Int64 apply Int64 sendTime Byte1 replyRequested
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StandbyStatusUpdate {
    /// "The location of the last WAL byte + 1 received and written to disk in the standby."
    pub write: Lsn,
    /// "… flushed to disk in the standby."
    pub flush: Lsn,
    /// "… applied in the standby."
    pub apply: Lsn,
    pub send_time: SystemTime,
    /// Asks the server to answer with a keepalive at once.
    pub reply_requested: bool,
}

impl StandbyStatusUpdate {
    pub const LEN: usize = 1 + 8 * 4 + 1;

    pub fn encode(&self, dst: &mut BytesMut) {
        write_message(dst, b'd', |d| {
            d.put_u8(b'r');
            d.put_u64(self.write.0);
            d.put_u64(self.flush.0);
            d.put_u64(self.apply.0);
            d.put_i64(from_system_time(self.send_time));
            d.put_u8(u8::from(self.reply_requested));
        });
    }
}

/// `h`: hot standby feedback, the standby's oldest running transaction.
///
/// ```text
/// Byte1('h') Int64 sendTime Int32 xmin Int32 xminEpoch Int32 catalogXmin Int32 catalogXminEpoch
/// ```
/// An xmin of 0 tells the server to stop holding back anything for this standby.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotStandbyFeedback {
    pub send_time: SystemTime,
    pub xmin: u32,
    pub xmin_epoch: u32,
    pub catalog_xmin: u32,
    pub catalog_xmin_epoch: u32,
}

impl HotStandbyFeedback {
    pub const LEN: usize = 1 + 8 + 4 * 4;

    pub fn encode(&self, dst: &mut BytesMut) {
        write_message(dst, b'd', |d| {
            d.put_u8(b'h');
            d.put_i64(from_system_time(self.send_time));
            d.put_u32(self.xmin);
            d.put_u32(self.xmin_epoch);
            d.put_u32(self.catalog_xmin);
            d.put_u32(self.catalog_xmin_epoch);
        });
    }
}

/// What a standby sends inside CopyData.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandbyMessage {
    StatusUpdate(StandbyStatusUpdate),
    HotStandbyFeedback(HotStandbyFeedback),
}

impl StandbyMessage {
    /// Decodes a CopyData body from a client (used by scripted servers and tests).
    pub fn decode(body: &Bytes) -> Result<StandbyMessage> {
        let mut r = Reader::new(body, "standby");
        let exact = |len: usize, what: &str| {
            if body.len() == len {
                Ok(())
            } else {
                Err(Error::protocol(format!(
                    "{what} message is {} bytes, expected {len}",
                    body.len()
                )))
            }
        };
        match r.u8()? {
            b'r' => {
                exact(StandbyStatusUpdate::LEN, "standby status update")?;
                let m = StandbyStatusUpdate {
                    write: Lsn(r.u64()?),
                    flush: Lsn(r.u64()?),
                    apply: Lsn(r.u64()?),
                    send_time: to_system_time(r.i64()?),
                    reply_requested: r.u8()? != 0,
                };
                r.finish()?;
                Ok(StandbyMessage::StatusUpdate(m))
            }
            b'h' => {
                exact(HotStandbyFeedback::LEN, "hot standby feedback")?;
                let m = HotStandbyFeedback {
                    send_time: to_system_time(r.i64()?),
                    xmin: r.u32()?,
                    xmin_epoch: r.u32()?,
                    catalog_xmin: r.u32()?,
                    catalog_xmin_epoch: r.u32()?,
                };
                r.finish()?;
                Ok(StandbyMessage::HotStandbyFeedback(m))
            }
            t => Err(Error::protocol(format!(
                "unexpected standby message type '{}'",
                t.escape_ascii()
            ))),
        }
    }

    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            StandbyMessage::StatusUpdate(m) => m.encode(dst),
            StandbyMessage::HotStandbyFeedback(m) => m.encode(dst),
        }
    }
}
