//! A framed connection: the read half with its buffer, and the write side, an [`Outbox`] that
//! a stream's sender handle can share, so status updates go out while a read is pending.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, ReadHalf};

use super::outbox::Outbox;
use super::socket::BoxTransport;
use crate::error::{DbError, Error, Result};
use crate::protocol::backend::BackendMessage;
use crate::protocol::codec::ReadBuffer;
use crate::protocol::startup::ServerInfo;

/// Notices kept for the application; older ones are dropped.
const MAX_NOTICES: usize = 32;

pub(crate) struct Connection {
    reader: ReadHalf<BoxTransport>,
    /// Sized and refilled so that WAL is never moved within it (see [`ReadBuffer`]).
    rbuf: ReadBuffer,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) info: ServerInfo,
    pub(crate) notices: VecDeque<DbError>,
    /// Why the connection can no longer be used, once something left it in an unknown state.
    pub(crate) broken: Option<String>,
}

impl Connection {
    pub(crate) fn new(t: BoxTransport) -> Connection {
        let (reader, half) = tokio::io::split(t);
        Connection {
            reader,
            rbuf: ReadBuffer::new(),
            outbox: Arc::new(Outbox::new(half)),
            info: ServerInfo::default(),
            notices: VecDeque::new(),
            broken: None,
        }
    }

    pub(crate) fn check_usable(&self) -> Result<()> {
        match &self.broken {
            Some(why) => Err(Error::Closed(why.clone())),
            None => Ok(()),
        }
    }

    pub(crate) fn mark_broken(&mut self, why: impl Into<String>) {
        self.broken.get_or_insert_with(|| why.into());
    }

    /// Queues the message `f` encodes and writes it out, after anything queued before it.
    pub(crate) async fn send(&self, f: impl FnOnce(&mut BytesMut) -> Result<()>) -> Result<()> {
        self.outbox.push(f)?;
        self.outbox.flush().await
    }

    /// The next message that is not a ParameterStatus or NoticeResponse (those are absorbed
    /// into `info` and `notices`). Cancel-safe: a cancelled read loses no bytes.
    pub(crate) async fn next_message(&mut self) -> Result<BackendMessage> {
        loop {
            let msg = self.read_message().await?;
            match msg {
                BackendMessage::ParameterStatus { name, value } => {
                    self.info.set_parameter(name, value)
                }
                BackendMessage::NoticeResponse(n) => {
                    if self.notices.len() == MAX_NOTICES {
                        self.notices.pop_front();
                    }
                    self.notices.push_back(n);
                }
                other => return Ok(other),
            }
        }
    }

    /// True if a whole message is already in the read buffer, so the next read will not
    /// wait for the network.
    /// Notices and ParameterStatus, which `next_message` absorbs, do not count.
    pub(crate) fn has_buffered_message(&self) -> bool {
        self.rbuf
            .complete_frame_tags()
            .any(|tag| !matches!(tag, b'N' | b'S'))
    }

    /// Takes in what the socket already holds, without waiting (one read at most), as libpq's
    /// `PQconsumeInput`. Only a look ahead: an error or the end of the stream is left for the
    /// next real read to report.
    ///
    /// The runtime knows whether the socket is readable only from its last look (after a short
    /// read it assumes not, and makes no system call until the I/O driver says otherwise), so
    /// this lets the driver look first: on a current-thread runtime a yield turns it without
    /// waiting, as `select` with a zero timeout.
    pub(crate) async fn read_available(&mut self) {
        use std::future::Future;
        tokio::task::yield_now().await;
        let mut dst = self.rbuf.read_buf();
        let mut read = std::pin::pin!(self.reader.read_buf(&mut dst));
        // One poll: data already there is read; otherwise the waker is left registered,
        // which is harmless, and nothing is lost (the read future is cancel-safe).
        std::future::poll_fn(|cx| {
            let _ = read.as_mut().poll(cx);
            std::task::Poll::Ready(())
        })
        .await;
    }

    /// The next message of any kind.
    pub(crate) async fn read_message(&mut self) -> Result<BackendMessage> {
        loop {
            if let Some(frame) = self.rbuf.next_frame()? {
                return BackendMessage::decode(frame);
            }
            let n = self
                .reader
                .read_buf(&mut self.rbuf.read_buf())
                .await
                .map_err(|e| Error::io("could not receive data from server", e))?;
            if n == 0 {
                let why = if self.rbuf.is_empty() {
                    "server closed the connection unexpectedly"
                } else {
                    "server closed the connection in the middle of a message"
                };
                self.mark_broken(why);
                return Err(Error::Closed(why.into()));
            }
        }
    }
}
