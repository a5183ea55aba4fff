//! The COPY BOTH state machine: the three ways a stream ends, errors, and the no-COPY case.

use std::time::{Duration, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};

use super::{assert_protocol_err, complete, error_response, frame, row, row_desc};
use crate::error::Error;
use crate::lsn::{Lsn, TimelineId};
use crate::protocol::backend::BackendMessage;
use crate::protocol::command::TimelineSwitch;
use crate::protocol::replication::{PrimaryKeepalive, XLogData};
use crate::protocol::streaming::{CopyBoth, Handled, StreamEnd, StreamEvent};

const START: Lsn = Lsn(0x0300_0000);

fn xlog(start: u64, len: usize) -> XLogData {
    XLogData {
        wal_start: Lsn(start),
        wal_end: Lsn(0x0900_0000),
        send_time: UNIX_EPOCH + Duration::from_secs(1_704_067_200),
        data: Bytes::from(vec![0x5a; len]),
    }
}

/// The CopyData message carrying `x`, as the server frames it.
fn copy_data(encode: impl FnOnce(&mut BytesMut)) -> BackendMessage {
    let mut buf = BytesMut::new();
    encode(&mut buf);
    BackendMessage::decode(frame(&buf)).unwrap()
}

fn wal(start: u64, len: usize) -> BackendMessage {
    copy_data(|d| xlog(start, len).encode(d))
}

fn keepalive(reply: bool) -> BackendMessage {
    let k = PrimaryKeepalive {
        wal_end: Lsn(0x0900_0000),
        send_time: UNIX_EPOCH,
        reply_requested: reply,
    };
    copy_data(|d| k.encode(d))
}

fn quiet(h: Handled) {
    assert!(
        h.event.is_none() && !h.send_copy_done,
        "expected nothing, got {h:?}"
    );
}

fn ended(h: Handled) -> StreamEnd {
    assert!(!h.send_copy_done);
    match h.event {
        Some(StreamEvent::End(end)) => end,
        other => panic!("not the end: {other:?}"),
    }
}

#[test]
fn end_of_timeline() {
    let mut c = CopyBoth::new(START);
    assert!(c.can_send() && !c.is_ended());
    let h = c.handle(wal(0x0300_0000, 16)).unwrap();
    assert!(!h.send_copy_done);
    assert_eq!(h.event, Some(StreamEvent::XLogData(xlog(0x0300_0000, 16))));
    assert_eq!(c.last_received(), Lsn(0x0300_0010));
    let h = c.handle(keepalive(true)).unwrap();
    assert!(matches!(h.event, Some(StreamEvent::Keepalive(k)) if k.reply_requested));

    // The server ends the historic timeline; we must answer CopyDone.
    let h = c.handle(BackendMessage::CopyDone).unwrap();
    assert!(h.send_copy_done && h.event.is_none());
    assert!(!c.can_send() && !c.is_ended());
    quiet(
        c.handle(row_desc(&["next_tli", "next_tli_startpos"]))
            .unwrap(),
    );
    quiet(c.handle(row(&[Some("2"), Some("0/5000000")])).unwrap());
    quiet(c.handle(complete("START_STREAMING")).unwrap());
    let end = ended(c.handle(BackendMessage::ReadyForQuery(b'I')).unwrap());
    assert_eq!(
        end,
        StreamEnd::EndOfTimeline {
            next_timeline: TimelineId(2),
            next_start: Lsn(0x0500_0000),
        }
    );
    assert!(c.is_ended() && !c.can_send());
    assert_eq!(c.take_pending_end(), None, "the end is reported once");
    assert_protocol_err(c.handle(BackendMessage::ReadyForQuery(b'I')));
}

#[test]
fn client_stop() {
    let mut c = CopyBoth::new(START);
    c.handle(wal(0x0300_0000, 100)).unwrap();
    assert!(c.request_stop(), "first stop sends CopyDone");
    assert!(!c.request_stop(), "CopyDone is sent once");
    assert!(!c.can_send());
    // The server may still send data before its own CopyDone.
    let h = c.handle(wal(0x0300_0064, 28)).unwrap();
    assert!(matches!(h.event, Some(StreamEvent::XLogData(_))));
    c.handle(keepalive(false)).unwrap();
    let h = c.handle(BackendMessage::CopyDone).unwrap();
    assert!(!h.send_copy_done, "we already sent CopyDone");
    quiet(c.handle(complete("START_STREAMING")).unwrap());
    let end = ended(c.handle(BackendMessage::ReadyForQuery(b'I')).unwrap());
    assert_eq!(
        end,
        StreamEnd::Stopped {
            last_received: Lsn(0x0300_0080)
        }
    );
}

#[test]
fn stop_before_any_data_reports_the_start() {
    let mut c = CopyBoth::new(START);
    assert!(c.request_stop());
    c.handle(BackendMessage::CopyDone).unwrap();
    c.handle(complete("START_STREAMING")).unwrap();
    let end = ended(c.handle(BackendMessage::ReadyForQuery(b'I')).unwrap());
    assert_eq!(
        end,
        StreamEnd::Stopped {
            last_received: START
        }
    );
}

#[test]
fn last_received_never_goes_back() {
    let mut c = CopyBoth::new(START);
    c.handle(wal(0x0400_0000, 8)).unwrap();
    c.handle(wal(0x0300_0000, 8)).unwrap();
    assert_eq!(c.last_received(), Lsn(0x0400_0008));
}

#[test]
fn server_ends_without_next_timeline() {
    let mut c = CopyBoth::new(START);
    c.handle(wal(0x0300_0000, 1)).unwrap();
    let h = c.handle(BackendMessage::CopyDone).unwrap();
    assert!(h.send_copy_done);
    quiet(c.handle(complete("START_STREAMING")).unwrap());
    let end = ended(c.handle(BackendMessage::ReadyForQuery(b'I')).unwrap());
    assert_eq!(
        end,
        StreamEnd::ServerEnded {
            last_received: Lsn(0x0300_0001)
        }
    );
}

/// PostgreSQL's WalSndDone: a walsender stopping for a shutdown with everything sent sends
/// CommandComplete (`COPY 0`) straight away and exits.
#[test]
fn bare_command_complete_ends_the_stream() {
    let mut c = CopyBoth::new(START);
    c.handle(wal(0x0300_0000, 4)).unwrap();
    let end = ended(c.handle(complete("COPY 0")).unwrap());
    assert_eq!(
        end,
        StreamEnd::ServerEnded {
            last_received: Lsn(0x0300_0004)
        }
    );
    // After our own CopyDone it reads as the stop we asked for.
    let mut c = CopyBoth::new(START);
    c.request_stop();
    let end = ended(c.handle(complete("COPY 0")).unwrap());
    assert!(matches!(end, StreamEnd::Stopped { .. }), "{end:?}");
}

#[test]
fn error_response_mid_stream() {
    let mut c = CopyBoth::new(START);
    c.handle(wal(0x0300_0000, 1)).unwrap();
    let err = c
        .handle(error_response(
            "ERROR",
            "58P01",
            "requested WAL segment has already been removed",
        ))
        .unwrap_err();
    assert!(matches!(&err, Error::Db(_)));
    assert_eq!(err.code(), Some("58P01"));
    assert!(c.is_ended() && !c.can_send());
    // Also while reading the end-of-stream results.
    let mut c = CopyBoth::new(START);
    c.handle(BackendMessage::CopyDone).unwrap();
    let err = c
        .handle(error_response("FATAL", "57P01", "terminating"))
        .unwrap_err();
    assert_eq!(err.code(), Some("57P01"));
    assert!(c.is_ended());
}

#[test]
fn copy_data_after_copy_done_is_a_protocol_error() {
    let mut c = CopyBoth::new(START);
    c.handle(BackendMessage::CopyDone).unwrap();
    assert_protocol_err(c.handle(wal(0x0300_0000, 1)));
    // And after the client's stop plus the server's CopyDone.
    let mut c = CopyBoth::new(START);
    c.request_stop();
    c.handle(BackendMessage::CopyDone).unwrap();
    assert_protocol_err(c.handle(keepalive(false)));
}

#[test]
fn unexpected_messages_while_streaming() {
    for msg in [
        BackendMessage::ReadyForQuery(b'I'),
        BackendMessage::CopyBothResponse,
        row_desc(&["a"]),
    ] {
        let mut c = CopyBoth::new(START);
        assert_protocol_err(c.handle(msg));
        assert!(c.is_ended());
    }
    // Garbage inside CopyData.
    let mut c = CopyBoth::new(START);
    assert_protocol_err(c.handle(BackendMessage::CopyData(Bytes::from_static(b"x"))));
    let mut c = CopyBoth::new(START);
    assert_protocol_err(c.handle(BackendMessage::CopyData(Bytes::new())));
}

#[test]
fn bad_end_of_timeline_result_set() {
    let mut c = CopyBoth::new(START);
    c.handle(BackendMessage::CopyDone).unwrap();
    c.handle(row_desc(&["next_tli", "next_tli_startpos"]))
        .unwrap();
    c.handle(row(&[Some("0"), Some("0/5000000")])).unwrap();
    c.handle(complete("START_STREAMING")).unwrap();
    assert_protocol_err(c.handle(BackendMessage::ReadyForQuery(b'I')));
}

#[test]
fn already_ended() {
    let switch = TimelineSwitch {
        next_timeline: TimelineId(3),
        next_start: Lsn(0x0700_0000),
    };
    let mut c = CopyBoth::already_ended(START, switch);
    assert!(c.is_ended() && !c.can_send());
    assert_eq!(c.last_received(), START);
    assert!(!c.request_stop(), "nothing to send");
    assert_eq!(
        c.take_pending_end(),
        Some(StreamEnd::EndOfTimeline {
            next_timeline: TimelineId(3),
            next_start: Lsn(0x0700_0000),
        })
    );
    assert_eq!(c.take_pending_end(), None);
    assert_protocol_err(c.handle(wal(0x0300_0000, 1)));
    // No pending end on a live stream.
    assert_eq!(CopyBoth::new(START).take_pending_end(), None);
}
