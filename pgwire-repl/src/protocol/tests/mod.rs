//! Unit tests of the sans-IO core: byte strings in, byte strings and events out. No sockets,
//! no clocks, no sleeps.
//!
//! - `golden_backend`: server messages against hand-written bytes from the protocol docs.
//! - `golden_frontend`: client and replication (CopyData sub-protocol) messages, exact bytes.
//! - `hostile`: malformed input, bad lengths, caps, zero-copy.
//! - `roundtrip`: proptest round trips and "never panics" over arbitrary bytes.
//! - `basebackup`: BASE_BACKUP's command texts by version and its answer, both forms.
//! - `commands`: replication command texts and result parsing.
//! - `query_startup`: the simple-query and startup state machines (with authentication).
//! - `streaming`: the COPY BOTH state machine.

mod basebackup;
mod commands;
mod golden_backend;
mod golden_frontend;
mod hostile;
mod query_startup;
mod roundtrip;
mod streaming;

use bytes::{Bytes, BytesMut};

use super::backend::{BackendMessage, DataRow};
use super::codec::{decode_frame, Frame};
use super::query::QueryResult;
use crate::error::{DbError, Error, Result};

/// A message as the protocol docs define it, built independently of the codec: the tag, an
/// `i32` length that counts itself but not the tag, then the body parts.
fn wire(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = parts.concat();
    let mut out = vec![tag];
    out.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Splits exactly one whole frame off `bytes`; panics if anything is left or missing.
fn frame(bytes: &[u8]) -> Frame {
    let mut buf = BytesMut::from(bytes);
    let f = decode_frame(&mut buf)
        .expect("frame header is valid")
        .expect("frame is complete");
    assert!(buf.is_empty(), "{} bytes left after the frame", buf.len());
    f
}

/// Decodes one complete backend message from its wire bytes.
fn backend(bytes: &[u8]) -> Result<BackendMessage> {
    BackendMessage::decode(frame(bytes))
}

fn encode(msg: &BackendMessage) -> Vec<u8> {
    let mut dst = BytesMut::new();
    msg.encode(&mut dst).expect("message encodes");
    dst.to_vec()
}

fn row(cols: &[Option<&str>]) -> BackendMessage {
    BackendMessage::DataRow(DataRow::new(cols.iter().map(|c| c.map(str::as_bytes))))
}

fn row_desc(names: &[&str]) -> BackendMessage {
    BackendMessage::RowDescription(names.iter().map(|n| n.to_string()).collect())
}

fn complete(tag: &str) -> BackendMessage {
    BackendMessage::CommandComplete(tag.to_owned())
}

fn error_response(severity: &str, code: &str, message: &str) -> BackendMessage {
    BackendMessage::ErrorResponse(DbError {
        severity: severity.into(),
        code: code.into(),
        message: message.into(),
        ..DbError::default()
    })
}

/// One result set as `SimpleQuery` would have collected it.
fn result_set(columns: &[&str], rows: &[&[Option<&str>]]) -> QueryResult {
    QueryResult {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows: rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|c| c.map(|s| Bytes::copy_from_slice(s.as_bytes())))
                    .collect()
            })
            .collect(),
        tag: Some("SELECT 1".into()),
    }
}

#[track_caller]
fn assert_protocol_err<T: std::fmt::Debug>(r: Result<T>) -> String {
    match r {
        Err(Error::Protocol(m)) => m,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}
