//! The simple-query exchange, as a state machine fed backend messages.
//!
//! Client sends `Query`; the server answers with, per statement, `RowDescription` +
//! `DataRow`* + `CommandComplete` (or `EmptyQueryResponse`, or `ErrorResponse`), then
//! `ReadyForQuery`. START_REPLICATION answers with `CopyBothResponse` instead and the
//! exchange turns into streaming; it may also answer with a result set and no COPY at all,
//! when it starts exactly at the end of a historic timeline.

use bytes::Bytes;

use super::backend::{BackendMessage, DataRow};
use crate::error::{DbError, Error, Result};

/// One statement's result: column names, rows of text-format values (NULL is `None`), and
/// the command tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<Bytes>>>,
    pub tag: Option<String>,
}

/// Adds a DataRow to the result set being read, which must have its width.
pub(crate) fn push_row(current: Option<&mut QueryResult>, row: &DataRow) -> Result<()> {
    let cur = current.ok_or_else(|| Error::protocol("DataRow without RowDescription"))?;
    if row.len() != cur.columns.len() {
        return Err(Error::protocol(format!(
            "DataRow has {} columns, RowDescription {}",
            row.len(),
            cur.columns.len()
        )));
    }
    cur.rows.push(row.columns().collect::<Result<_>>()?);
    Ok(())
}

/// What the exchange did with a message.
#[derive(Debug)]
pub enum QueryStep {
    /// Keep feeding messages.
    Continue,
    /// The server entered COPY BOTH (START_REPLICATION).
    CopyBoth,
    /// ReadyForQuery arrived: the results, or the server's error.
    Done(Result<Vec<QueryResult>>),
}

/// Collects the answer to one simple query.
#[derive(Debug, Default)]
pub struct SimpleQuery {
    results: Vec<QueryResult>,
    current: Option<QueryResult>,
    error: Option<DbError>,
}

impl SimpleQuery {
    pub fn new() -> SimpleQuery {
        SimpleQuery::default()
    }

    /// Feeds one message (ParameterStatus and NoticeResponse are the caller's business and
    /// must not reach here).
    pub fn handle(&mut self, msg: BackendMessage) -> Result<QueryStep> {
        match msg {
            BackendMessage::RowDescription(columns) => {
                if self.current.is_some() {
                    return Err(Error::protocol("RowDescription inside a result set"));
                }
                self.current = Some(QueryResult {
                    columns,
                    ..QueryResult::default()
                });
            }
            BackendMessage::DataRow(row) => push_row(self.current.as_mut(), &row)?,
            BackendMessage::CommandComplete(tag) => {
                let mut res = self.current.take().unwrap_or_default();
                res.tag = Some(tag);
                self.results.push(res);
            }
            BackendMessage::EmptyQueryResponse => self.results.push(QueryResult::default()),
            BackendMessage::ErrorResponse(e) => {
                self.current = None;
                self.error.get_or_insert(e);
            }
            BackendMessage::CopyBothResponse if self.error.is_none() => {
                return Ok(QueryStep::CopyBoth);
            }
            BackendMessage::ReadyForQuery(_) => {
                if let Some(cur) = self.current.take() {
                    // A result set with no CommandComplete: keep it rather than lose rows.
                    self.results.push(cur);
                }
                let out = match self.error.take() {
                    Some(e) => Err(Error::Db(Box::new(e))),
                    None => Ok(std::mem::take(&mut self.results)),
                };
                return Ok(QueryStep::Done(out));
            }
            other => {
                return Err(Error::protocol(format!(
                    "unexpected {} during a query",
                    message_name(&other)
                )))
            }
        }
        Ok(QueryStep::Continue)
    }
}

/// A short name for a message, for error texts.
pub fn message_name(msg: &BackendMessage) -> &'static str {
    match msg {
        BackendMessage::Authentication(_) => "Authentication",
        BackendMessage::ParameterStatus { .. } => "ParameterStatus",
        BackendMessage::BackendKeyData { .. } => "BackendKeyData",
        BackendMessage::ReadyForQuery(_) => "ReadyForQuery",
        BackendMessage::ErrorResponse(_) => "ErrorResponse",
        BackendMessage::NoticeResponse(_) => "NoticeResponse",
        BackendMessage::RowDescription(_) => "RowDescription",
        BackendMessage::DataRow(_) => "DataRow",
        BackendMessage::CommandComplete(_) => "CommandComplete",
        BackendMessage::EmptyQueryResponse => "EmptyQueryResponse",
        BackendMessage::CopyBothResponse => "CopyBothResponse",
        BackendMessage::CopyOutResponse => "CopyOutResponse",
        BackendMessage::CopyInResponse => "CopyInResponse",
        BackendMessage::CopyData(_) => "CopyData",
        BackendMessage::CopyDone => "CopyDone",
        BackendMessage::NegotiateProtocolVersion { .. } => "NegotiateProtocolVersion",
    }
}
