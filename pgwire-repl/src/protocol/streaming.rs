//! The COPY BOTH phase of `START_REPLICATION`, sans-IO.
//!
//! While streaming, the server sends CopyData holding XLogData or keepalives. The phase ends
//! in one of three ways ([`StreamEnd`]):
//! 1. **End of timeline**: the server sends CopyDone; we answer CopyDone; the server sends a
//!    result set (`next_tli`, `next_tli_startpos`), CommandComplete and ReadyForQuery.
//!    When START_REPLICATION starts exactly at the end of a historic timeline the server
//!    skips COPY and sends that result set at once ([`CopyBoth::already_ended`]).
//! 2. **Client stop**: we send CopyDone; the server may still send CopyData, then CopyDone,
//!    CommandComplete, ReadyForQuery.
//! 3. **Server end** without a next timeline: as 1 without the result set — or, when a
//!    walsender shuts down with everything sent (`WalSndDone`), a bare CommandComplete
//!    (`COPY 0`) in the middle of COPY BOTH, with no CopyDone before it and no
//!    ReadyForQuery after it (the server process exits). libpq ends the COPY on it, and so
//!    do we: the stream ends at once.
//!
//! An ErrorResponse at any point is the server's error, returned as [`Error::Db`].

use super::backend::BackendMessage;
use super::command::TimelineSwitch;
use super::query::{message_name, QueryStep, SimpleQuery};
use super::replication::{PrimaryKeepalive, ReplicationMessage, XLogData};
use crate::error::{Error, Result};
use crate::lsn::Lsn;

/// What the stream yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    XLogData(XLogData),
    Keepalive(PrimaryKeepalive),
    /// The stream is over; the connection is ready for the next command.
    End(StreamEnd),
}

/// Why the stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The timeline being streamed is historic and has been sent to its end; streaming goes
    /// on with `next_timeline` from `next_start`.
    EndOfTimeline {
        next_timeline: crate::lsn::TimelineId,
        next_start: Lsn,
    },
    /// The client asked to stop. `last_received` is the end of the last WAL received.
    Stopped { last_received: Lsn },
    /// The server ended the stream without a next timeline (for instance, it is shutting
    /// down).
    ServerEnded { last_received: Lsn },
}

#[derive(Debug)]
enum Phase {
    Streaming,
    /// We sent CopyDone; the server may still send data before its own CopyDone.
    ClientDone,
    /// Both sides sent CopyDone: reading the optional result set up to ReadyForQuery.
    Results(Box<SimpleQuery>),
    /// Ended; the end is reported once.
    Ended(Option<StreamEnd>),
}

/// What handling one message asks of the driver.
#[derive(Debug, Default)]
pub struct Handled {
    pub event: Option<StreamEvent>,
    /// The server sent CopyDone and we have not: send CopyDone now.
    pub send_copy_done: bool,
}

/// The COPY BOTH state machine.
#[derive(Debug)]
pub struct CopyBoth {
    phase: Phase,
    stop_requested: bool,
    last_received: Lsn,
}

impl CopyBoth {
    /// After CopyBothResponse. `start` is the position streaming was asked to start from.
    pub fn new(start: Lsn) -> CopyBoth {
        CopyBoth {
            phase: Phase::Streaming,
            stop_requested: false,
            last_received: start,
        }
    }

    /// START_REPLICATION answered with a result set and no COPY: the requested start is the
    /// end of a historic timeline.
    pub fn already_ended(start: Lsn, switch: TimelineSwitch) -> CopyBoth {
        CopyBoth {
            phase: Phase::Ended(Some(StreamEnd::EndOfTimeline {
                next_timeline: switch.next_timeline,
                next_start: switch.next_start,
            })),
            stop_requested: false,
            last_received: start,
        }
    }

    /// The end of the last WAL received.
    pub fn last_received(&self) -> Lsn {
        self.last_received
    }

    /// True while we may still send CopyData (status updates, feedback).
    pub fn can_send(&self) -> bool {
        matches!(self.phase, Phase::Streaming)
    }

    pub fn is_ended(&self) -> bool {
        matches!(self.phase, Phase::Ended(_))
    }

    /// A pending end that needs no further message (the no-COPY case).
    pub fn take_pending_end(&mut self) -> Option<StreamEnd> {
        match &mut self.phase {
            Phase::Ended(end) => end.take(),
            _ => None,
        }
    }

    /// Asks to stop. Returns true if the caller must now send CopyDone.
    pub fn request_stop(&mut self) -> bool {
        self.stop_requested = true;
        if matches!(self.phase, Phase::Streaming) {
            self.phase = Phase::ClientDone;
            return true;
        }
        false
    }

    /// How a stream ends without a timeline switch: stopped if we asked, else by the server.
    fn no_switch_end(&self) -> StreamEnd {
        if self.stop_requested {
            StreamEnd::Stopped {
                last_received: self.last_received,
            }
        } else {
            StreamEnd::ServerEnded {
                last_received: self.last_received,
            }
        }
    }

    /// Feeds one message (ParameterStatus and NoticeResponse are the caller's business).
    pub fn handle(&mut self, msg: BackendMessage) -> Result<Handled> {
        if let BackendMessage::ErrorResponse(e) = msg {
            self.phase = Phase::Ended(None);
            return Err(Error::Db(Box::new(e)));
        }
        let mut out = Handled::default();
        match (&mut self.phase, msg) {
            (Phase::Streaming | Phase::ClientDone, BackendMessage::CopyData(body)) => {
                let m = ReplicationMessage::decode(body)?;
                out.event = Some(match m {
                    ReplicationMessage::XLogData(x) => {
                        // data_end was checked by the decoder.
                        let end = x.data_end().unwrap_or(x.wal_start);
                        self.last_received = self.last_received.max(end);
                        StreamEvent::XLogData(x)
                    }
                    ReplicationMessage::PrimaryKeepalive(k) => StreamEvent::Keepalive(k),
                });
            }
            (Phase::Streaming, BackendMessage::CopyDone) => {
                out.send_copy_done = true;
                self.phase = Phase::Results(Box::default());
            }
            (Phase::ClientDone, BackendMessage::CopyDone) => {
                self.phase = Phase::Results(Box::default());
            }
            // A walsender shutting down after sending everything: no CopyDone, and the
            // process exits without ReadyForQuery.
            (Phase::Streaming | Phase::ClientDone, BackendMessage::CommandComplete(_)) => {
                self.phase = Phase::Ended(None);
                out.event = Some(StreamEvent::End(self.no_switch_end()));
            }
            (Phase::Results(q), msg) => {
                let step = q.handle(msg);
                if step.is_err() {
                    self.phase = Phase::Ended(None);
                }
                if let QueryStep::Done(res) = step? {
                    self.phase = Phase::Ended(None);
                    let results = res?;
                    let switch = results
                        .iter()
                        .find(|r| !r.columns.is_empty())
                        .map(TimelineSwitch::parse)
                        .transpose()?;
                    let end = match switch {
                        Some(s) => StreamEnd::EndOfTimeline {
                            next_timeline: s.next_timeline,
                            next_start: s.next_start,
                        },
                        None => self.no_switch_end(),
                    };
                    self.phase = Phase::Ended(None);
                    out.event = Some(StreamEvent::End(end));
                }
            }
            (phase, msg) => {
                let err = Error::protocol(format!(
                    "unexpected {} while {}",
                    message_name(&msg),
                    match phase {
                        Phase::Ended(_) => "the stream had ended",
                        _ => "streaming",
                    }
                ));
                self.phase = Phase::Ended(None);
                return Err(err);
            }
        }
        Ok(out)
    }
}
