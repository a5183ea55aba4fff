//! The write side of a connection: messages are encoded into an outbox at once, and written
//! out, in order, by whoever flushes next.
//!
//! Two locks, because queueing must never wait and writing must. What has to change together
//! when a message is queued (whether CopyData may still be sent, and the encoded bytes) sits
//! under a std mutex that is never held across an await: a `recv` that owes the server a
//! CopyDone queues it in the same poll that handled the server's message, and closes our
//! side of COPY in that step, so no status update can slip in after it. The socket half sits
//! under a tokio mutex, held while writing.
//!
//! Cancel safety: a flush moves the outbox into the socket writer's own `pending` buffer and
//! writes from there, advancing past what each write took. An `AsyncWrite` that returns
//! `Pending` has taken nothing, so a flush dropped at any await loses nothing and repeats
//! nothing: the next flush, by anyone, writes the rest first, then what was queued since.
//! (Writing with `write_all` instead, a cancelled write lost the rest of a half-written
//! message, and a stop then waited for an answer the server could not give.)

use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncWriteExt, WriteHalf};

use super::socket::BoxTransport;
use crate::error::{Error, Result};
use crate::protocol::frontend;

/// The queue and the socket half it drains into. See the [module docs](self).
pub(crate) struct Outbox {
    queue: Mutex<Queue>,
    socket: tokio::sync::Mutex<Socket>,
}

struct Queue {
    /// True between CopyBothResponse and our CopyDone: CopyData may be sent.
    copy_open: bool,
    /// Encoded messages not yet handed to the socket writer, in order.
    bytes: BytesMut,
    /// Something queued may not be on the wire yet (still here, in the writer's `pending`,
    /// or in the transport's buffer until its flush).
    unflushed: bool,
}

struct Socket {
    half: WriteHalf<BoxTransport>,
    /// Bytes taken from the queue and not yet written: the head of the queue.
    pending: BytesMut,
}

impl Outbox {
    pub(crate) fn new(half: WriteHalf<BoxTransport>) -> Outbox {
        Outbox {
            queue: Mutex::new(Queue {
                copy_open: false,
                bytes: BytesMut::with_capacity(256),
                unflushed: false,
            }),
            socket: tokio::sync::Mutex::new(Socket {
                half,
                pending: BytesMut::with_capacity(256),
            }),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        // Held for plain buffer and flag updates only; a poisoned lock still has sane data.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues the message `encode` writes; when it fails, nothing is queued.
    pub(crate) fn push(&self, encode: impl FnOnce(&mut BytesMut) -> Result<()>) -> Result<()> {
        let mut q = self.queue();
        let len = q.bytes.len();
        if let Err(e) = encode(&mut q.bytes) {
            q.bytes.truncate(len);
            return Err(e);
        }
        q.unflushed = true;
        Ok(())
    }

    /// Queues a CopyData message while our side of COPY is open.
    pub(crate) fn push_copy_data(&self, encode: impl FnOnce(&mut BytesMut)) -> Result<()> {
        let mut q = self.queue();
        if !q.copy_open {
            return Err(Error::Closed("the replication stream has ended".into()));
        }
        encode(&mut q.bytes);
        q.unflushed = true;
        Ok(())
    }

    /// Queues CopyDone unless our side of COPY is already closed, and closes it: nothing
    /// queued after it can be CopyData. Returns whether CopyDone was queued.
    pub(crate) fn push_copy_done(&self) -> bool {
        let mut q = self.queue();
        if !q.copy_open {
            return false;
        }
        q.copy_open = false;
        frontend::copy_done(&mut q.bytes);
        q.unflushed = true;
        true
    }

    /// COPY BOTH has begun: CopyData may be queued.
    pub(crate) fn open_copy(&self) {
        self.queue().copy_open = true;
    }

    /// No more CopyData (the stream is over or failed), without sending CopyDone.
    pub(crate) fn close_copy(&self) {
        self.queue().copy_open = false;
    }

    /// Writes everything queued, in order, and flushes the transport; returns at once when
    /// nothing is owed. Cancel-safe (see the [module docs](self)).
    pub(crate) async fn flush(&self) -> Result<()> {
        if !self.queue().unflushed {
            return Ok(());
        }
        let mut guard = self.socket.lock().await;
        let s = &mut *guard;
        loop {
            {
                let mut q = self.queue();
                if s.pending.is_empty() {
                    // Swapped, not copied: each buffer keeps its memory for next time.
                    std::mem::swap(&mut s.pending, &mut q.bytes);
                } else {
                    s.pending.extend_from_slice(&q.bytes);
                    q.bytes.clear();
                }
            }
            while !s.pending.is_empty() {
                let n = s.half.write(&s.pending).await.map_err(send_error)?;
                if n == 0 {
                    return Err(send_error(std::io::ErrorKind::WriteZero.into()));
                }
                s.pending.advance(n);
            }
            s.half.flush().await.map_err(send_error)?;
            let mut q = self.queue();
            // Queued while this flush wrote: another round; else everything is out.
            if q.bytes.is_empty() {
                q.unflushed = false;
                return Ok(());
            }
        }
    }
}

fn send_error(e: std::io::Error) -> Error {
    Error::io("could not send data to server", e)
}
