//! What every streaming command shares: where to start ([`start`]), the streaming loop with
//! its timelines, receive timeout and stop signal ([`follow`]), and how a stream's errors
//! are told apart ([`StreamError`]).

pub mod follow;
pub mod start;

use crate::archive::FileError;

/// An error while streaming, with whether retrying can help.
#[derive(Debug)]
pub struct StreamError {
    pub message: String,
    /// The program must end even when it would reconnect: a failed fsync (the kernel may
    /// have dropped the data), an archive that cannot be read, a failing IDENTIFY_SYSTEM.
    pub fatal: bool,
}

impl StreamError {
    pub fn retry(message: impl Into<String>) -> StreamError {
        StreamError {
            message: message.into(),
            fatal: false,
        }
    }

    pub fn fatal(message: impl Into<String>) -> StreamError {
        StreamError {
            message: message.into(),
            fatal: true,
        }
    }

    /// A library error, after `context` (pg_receivewal's "could not send replication
    /// command …"); retried.
    pub fn db(context: &str, e: &pgwire_repl::Error) -> StreamError {
        let text = pgwire_repl::error::Report(e).to_string();
        StreamError::retry(if context.is_empty() {
            text
        } else {
            format!("{context}: {text}")
        })
    }
}

impl From<FileError> for StreamError {
    fn from(e: FileError) -> Self {
        StreamError {
            fatal: e.is_fatal(),
            message: e.to_string(),
        }
    }
}

/// Stop requests from signals (SIGINT, SIGTERM).
#[derive(Debug, Clone)]
pub struct StopSignal {
    rx: tokio::sync::watch::Receiver<bool>,
}

impl StopSignal {
    pub fn new(rx: tokio::sync::watch::Receiver<bool>) -> StopSignal {
        StopSignal { rx }
    }

    /// Watches SIGINT and SIGTERM from now on (on the current runtime).
    pub fn watch() -> StopSignal {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                crate::output::warning("could not install signal handlers");
                // Keep the sender: a dropped one would read as a stop request.
                std::future::pending::<()>().await;
                return;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            let _ = tx.send(true);
        });
        StopSignal::new(rx)
    }

    pub fn requested(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves when a stop is requested (never, if the signal watcher is gone).
    pub async fn wait(&mut self) {
        if self.rx.wait_for(|v| *v).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
