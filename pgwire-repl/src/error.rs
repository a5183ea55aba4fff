//! The library's one error type.
//!
//! Display text describes this layer only; the underlying cause (an I/O error, say) is
//! reachable through [`std::error::Error::source`]. [`Report`] prints the whole chain on one
//! line, the way a command-line tool wants it.

use std::fmt;

/// Errors returned by every part of the library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A socket or file operation failed; `context` says which.
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The peer sent something the protocol does not allow.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The server answered with an ErrorResponse.
    #[error("{0}")]
    Db(Box<DbError>),
    /// Authentication could not be carried out on the client side (unsupported method,
    /// channel binding refused, a server proof that does not verify). A missing password
    /// is [`Error::PasswordRequired`].
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The server asked for a password (by `method`: `password`, `MD5`, `SCRAM-SHA-256`)
    /// and none was given or found in the password file. An interactive program can ask
    /// the user for one and connect again, as libpq programs do after
    /// `PQconnectionNeedsPassword`; see [`Error::needs_password`].
    #[error("authentication failed: the server requested {method} authentication but no password was supplied")]
    PasswordRequired { method: String },
    /// A connection string, URI, environment variable or password file was invalid.
    #[error("{0}")]
    Config(String),
    /// Something took longer than its configured limit.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The connection was closed, by the server or because an earlier error left it unusable.
    #[error("connection closed: {0}")]
    Closed(String),
}

impl Error {
    /// The SQLSTATE code when the server reported the error.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Db(db) => Some(&db.code),
            _ => None,
        }
    }

    /// The server's error, if this is one.
    pub fn as_db(&self) -> Option<&DbError> {
        match self {
            Error::Db(db) => Some(db),
            _ => None,
        }
    }

    /// True when the server asked for a password and none was supplied: connecting again
    /// with one may succeed.
    pub fn needs_password(&self) -> bool {
        matches!(self, Error::PasswordRequired { .. })
    }

    /// True when the connection is gone (closed by the peer, reset, or marked broken).
    pub fn is_closed(&self) -> bool {
        match self {
            Error::Closed(_) => true,
            Error::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            ),
            _ => false,
        }
    }

    pub(crate) fn protocol(what: impl Into<String>) -> Error {
        Error::Protocol(what.into())
    }

    pub(crate) fn config(what: impl Into<String>) -> Error {
        Error::Config(what.into())
    }

    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Crate-wide result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An ErrorResponse (or NoticeResponse) from the server, field by field.
///
/// See <https://www.postgresql.org/docs/current/protocol-error-fields.html>.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbError {
    /// `S`/`V`: ERROR, FATAL, PANIC (or WARNING, NOTICE… for notices), never localized (`V`)
    /// when the server sends it.
    pub severity: String,
    /// `C`: the SQLSTATE code, e.g. `28P01`.
    pub code: String,
    /// `M`: the primary message.
    pub message: String,
    /// `D`
    pub detail: Option<String>,
    /// `H`
    pub hint: Option<String>,
    /// `W`
    pub where_: Option<String>,
    /// `F`
    pub file: Option<String>,
    /// `L`
    pub line: Option<String>,
    /// `R`
    pub routine: Option<String>,
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity, self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, " (detail: {detail})")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for DbError {}

/// Displays an error and all its causes on one line, separated by `: `.
///
/// ```
/// use pgwire_repl::error::{Error, Report};
/// let e = Error::Closed("server closed the connection unexpectedly".into());
/// assert_eq!(Report(&e).to_string(), "connection closed: server closed the connection unexpectedly");
/// ```
pub struct Report<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cur = self.0.source();
        while let Some(e) = cur {
            write!(f, ": {e}")?;
            cur = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_error_display_does_not_repeat_cause() {
        let e = Error::io(
            "could not connect to 127.0.0.1:1",
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"),
        );
        assert_eq!(e.to_string(), "could not connect to 127.0.0.1:1");
        assert_eq!(
            Report(&e).to_string(),
            "could not connect to 127.0.0.1:1: refused"
        );
        assert!(!e.is_closed());
    }

    #[test]
    fn db_error_code_and_display() {
        let e = Error::Db(Box::new(DbError {
            severity: "FATAL".into(),
            code: "28P01".into(),
            message: "password authentication failed for user \"x\"".into(),
            ..Default::default()
        }));
        assert_eq!(e.code(), Some("28P01"));
        assert_eq!(
            e.to_string(),
            "FATAL: password authentication failed for user \"x\""
        );
    }
}
