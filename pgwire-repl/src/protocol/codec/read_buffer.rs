//! The read buffer: bytes from the socket in, [`Frame`]s out, sized so that WAL is never
//! copied on its way through.

use bytes::buf::Limit;
use bytes::{BufMut, BytesMut};

use super::frame::{decode_frame, max_body_len, Frame};
use crate::error::Result;

/// The largest frame a walsender sends while streaming with default page sizes: XLogData
/// (25-byte header) holding `MAX_SEND_SIZE`, 16 pages of 8 kB. The read buffer keeps room
/// for one of these wherever a frame may start, so that frames are never moved.
pub const STREAMING_FRAME: usize = 1 + 4 + 25 + (128 << 10);
/// Reads into the free part of the buffer are worth a system call from this size up.
const MIN_READ: usize = 16 << 10;

/// A connection's read buffer: bytes from the socket in, [`Frame`]s out, and how much the
/// next read should take.
///
/// Frames are split off without copying, so a frame's bytes must be contiguous. A frame cut
/// by the end of the buffer would have to be moved to the front (or to a new buffer), which
/// is a copy of the WAL. To avoid that, each read is sized so that every frame that starts
/// in it can still end inside the buffer (frames up to [`STREAMING_FRAME`]): near the end of
/// the buffer a read takes only the rest of the frame in progress; once that frame is split
/// off, the buffer starts over from the front with at most a partial header (4 bytes) to move.
///
/// Frames are slices of the buffer's memory, so a frame the application still holds keeps its
/// chunk alive. Starting over then takes another chunk: one given up earlier whose frames have
/// all been dropped since (up to [`SPARE_CHUNKS`] are kept for that), else a new one. An
/// application that hands WAL to another thread and drops it once written thus gets it without
/// a copy and without fresh memory for every refill (fresh pages cost the kernel a fault and a
/// zeroing each).
///
/// Sans-IO: the caller reads into [`read_buf`](Self::read_buf) however it likes.
///
/// ```
/// use pgwire_repl::protocol::codec::ReadBuffer;
/// use bytes::BufMut;
///
/// let mut rb = ReadBuffer::new();
/// let socket = b"Z\0\0\0\x05I";
/// let mut dst = rb.read_buf();
/// let n = socket.len().min(dst.remaining_mut());
/// dst.put_slice(&socket[..n]);
/// let frame = rb.next_frame().unwrap().unwrap();
/// assert_eq!((frame.tag, &frame.body[..]), (b'Z', &b"I"[..]));
/// ```
#[derive(Debug)]
pub struct ReadBuffer {
    buf: BytesMut,
    capacity: usize,
    moved: u64,
    /// Chunks given up while frames split from them were still held, oldest first.
    spare: Vec<BytesMut>,
    /// The size of the current chunk's allocation; only chunks of `capacity` are kept.
    chunk_size: usize,
    /// Chunks allocated over the buffer's life (the first one included).
    chunks: u64,
}

/// Chunks kept for reuse once the frames split from them are dropped: with the default
/// capacity, 16 MiB, more than a writer queue of 64 full frames (8 MiB) spans.
pub const SPARE_CHUNKS: usize = 16;

impl Default for ReadBuffer {
    fn default() -> ReadBuffer {
        ReadBuffer::new()
    }
}

impl ReadBuffer {
    /// The default capacity, a chunk: 1 MiB holds 7 full streaming frames (a frame starts
    /// only where a whole one still fits), so the buffer starts over every 7 frames, and
    /// reads of up to 900 KiB can be asked of the socket.
    pub const DEFAULT_CAPACITY: usize = 1 << 20;

    pub fn new() -> ReadBuffer {
        ReadBuffer::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// A buffer of `capacity` bytes (at least room for one streaming frame and a read).
    pub fn with_capacity(capacity: usize) -> ReadBuffer {
        let capacity = capacity.max(STREAMING_FRAME + MIN_READ);
        ReadBuffer {
            buf: BytesMut::with_capacity(capacity),
            capacity,
            moved: 0,
            spare: Vec::new(),
            chunk_size: capacity,
            chunks: 1,
        }
    }

    /// Splits off the next complete frame; `Ok(None)` means a read is needed. Errors are
    /// those of [`decode_frame`] (bad or oversized length) and are final.
    pub fn next_frame(&mut self) -> Result<Option<Frame>> {
        let (at, len) = (self.buf.as_ptr(), self.buf.len());
        let frame = decode_frame(&mut self.buf)?;
        // decode_frame reserves room for a frame it has the header of; count a move.
        if frame.is_none() && self.buf.as_ptr() != at {
            self.moved += len as u64;
            self.chunk_size = self.buf.capacity();
        }
        Ok(frame)
    }

    /// Makes room for the next read and returns where it goes: append to it (a socket's
    /// `read_buf`, `put_slice`) as much as it takes, then call [`next_frame`](Self::next_frame).
    pub fn read_buf(&mut self) -> Limit<&mut BytesMut> {
        let len = self.buf.len();
        let in_progress = self.frame_in_progress().filter(|&total| total > len);
        let limit = match in_progress {
            Some(total) => {
                // next_frame reserved room for this frame: read on past it only into the
                // part of the buffer where a frame that starts there still fits whole.
                let missing = total - len;
                self.reserve(missing);
                let free = (self.buf.capacity() - len).saturating_sub(STREAMING_FRAME);
                if free >= missing + MIN_READ {
                    free
                } else {
                    missing
                }
            }
            None => {
                // No frame header yet: at most 4 bytes (or a frame already complete) to
                // move, so start over at the front of the buffer when it is nearly used up.
                if self.buf.capacity() - len < STREAMING_FRAME + MIN_READ {
                    self.start_over();
                }
                (self.buf.capacity() - len)
                    .saturating_sub(STREAMING_FRAME)
                    .max(MIN_READ)
            }
        };
        (&mut self.buf).limit(limit)
    }

    /// Moves the few bytes of the next frame to the front of a whole chunk: this one when no
    /// frame split from it is still held, else a spare chunk whose frames have all been
    /// dropped, else a new one. The chunk given up is kept as a spare.
    fn start_over(&mut self) {
        let len = self.buf.len();
        let want = self.capacity.max(len + MIN_READ);
        let at = self.buf.as_ptr();
        if self.buf.try_reclaim(want - len) {
            if self.buf.as_ptr() != at {
                self.moved += len as u64;
            }
            return;
        }
        let reused = self.spare.iter_mut().position(|c| c.try_reclaim(want));
        let mut next = match reused {
            Some(i) => self.spare.remove(i),
            None => {
                self.chunks += 1;
                BytesMut::with_capacity(want)
            }
        };
        next.extend_from_slice(&self.buf);
        self.moved += len as u64;
        let old_size = std::mem::replace(&mut self.chunk_size, next.capacity());
        let mut old = std::mem::replace(&mut self.buf, next);
        if self.spare.len() < SPARE_CHUNKS && old_size == self.capacity {
            old.clear();
            self.spare.push(old);
        }
    }

    /// `BytesMut::reserve`, counting the bytes it moves.
    fn reserve(&mut self, additional: usize) {
        let at = self.buf.as_ptr();
        self.buf.reserve(additional);
        if self.buf.as_ptr() != at {
            self.moved += self.buf.len() as u64;
            self.chunk_size = self.buf.capacity();
        }
    }

    /// `1 + length` of the frame at the front, once its header is in and its length passes
    /// the checks of [`decode_frame`] (so nothing is reserved for a length it refuses).
    fn frame_in_progress(&self) -> Option<usize> {
        let b = self.buf.get(..5)?;
        let len = i32::from_be_bytes([b[1], b[2], b[3], b[4]]);
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l >= 4 && l - 4 <= max_body_len(b[0]))?;
        Some(1 + len)
    }

    /// The tags of the complete frames already in the buffer, in order.
    pub fn complete_frame_tags(&self) -> impl Iterator<Item = u8> + '_ {
        let b = &self.buf[..];
        let mut at = 0usize;
        std::iter::from_fn(move || {
            let h = b.get(at..at + 5)?;
            let len = i32::from_be_bytes([h[1], h[2], h[3], h[4]]);
            let len = usize::try_from(len).ok().filter(|&l| l >= 4)?;
            let end = at.checked_add(1 + len).filter(|&e| e <= b.len())?;
            at = end;
            Some(h[0])
        })
    }

    /// Bytes buffered and not yet split off as frames.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// How many chunks have been allocated over the buffer's life: one while every frame is
    /// dropped before the buffer starts over, and few more when frames are held a while.
    pub fn chunks_allocated(&self) -> u64 {
        self.chunks
    }

    /// How many buffered bytes have been moved to make room, over the buffer's life: zero
    /// while frames are no larger than [`STREAMING_FRAME`], apart from partial headers.
    pub fn moved_bytes(&self) -> u64 {
        self.moved
    }
}

#[cfg(test)]
mod tests;
