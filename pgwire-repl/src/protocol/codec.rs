//! Message framing: a one-byte tag, then an `i32` length that counts itself, then the body.
//!
//! See <https://www.postgresql.org/docs/current/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS>.
//! Every length from the network is checked against a cap for its tag **before** any memory is
//! reserved, so a hostile peer claiming a 2 GiB message gets an error, not an allocation.

use bytes::buf::Limit;
use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{Error, Result};

/// Largest CopyData body accepted. The walsender sends at most `MAX_SEND_SIZE` (16 WAL pages,
/// 1 MiB with the largest page size) of WAL per message; 16 MiB leaves room for forks.
pub const MAX_COPY_DATA: usize = 16 << 20;
/// Largest DataRow accepted (a timeline history file or a SHOW value).
pub const MAX_DATA_ROW: usize = 16 << 20;
/// Largest body of any other message (errors, row descriptions, authentication).
pub const MAX_OTHER: usize = 1 << 20;

/// One complete message as it came off the wire, body without tag and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub tag: u8,
    pub body: Bytes,
}

/// The largest body accepted for a message with this tag (backend or frontend).
pub fn max_body_len(tag: u8) -> usize {
    match tag {
        b'd' => MAX_COPY_DATA,
        b'D' => MAX_DATA_ROW,
        _ => MAX_OTHER,
    }
}

/// Splits one frame off the front of `buf`.
///
/// `Ok(None)` means more bytes are needed (and `buf` has room reserved for the whole frame);
/// it is never an error. A length below 4 or above the tag's cap is a protocol error.
pub fn decode_frame(buf: &mut BytesMut) -> Result<Option<Frame>> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let tag = buf[0];
    let len = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    // "The length count includes itself", so anything below 4 is impossible.
    if len < 4 {
        return Err(Error::protocol(format!(
            "message of type '{}' has invalid length {len}",
            tag.escape_ascii()
        )));
    }
    let body_len = len as usize - 4;
    if body_len > max_body_len(tag) {
        return Err(Error::protocol(format!(
            "message of type '{}' is {body_len} bytes, more than the {} allowed",
            tag.escape_ascii(),
            max_body_len(tag)
        )));
    }
    let total = 1 + len as usize;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let mut frame = buf.split_to(total);
    frame.advance(5);
    Ok(Some(Frame {
        tag,
        body: frame.freeze(),
    }))
}

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

/// Writes a message: `tag`, a length placeholder, the body `f` writes, then the real length.
pub fn write_message(dst: &mut BytesMut, tag: u8, f: impl FnOnce(&mut BytesMut)) {
    dst.put_u8(tag);
    write_body(dst, f);
}

/// Writes a length-prefixed body without a tag (the startup message has none).
pub fn write_body(dst: &mut BytesMut, f: impl FnOnce(&mut BytesMut)) {
    let at = dst.len();
    dst.put_i32(0);
    f(dst);
    let len = (dst.len() - at) as i32;
    dst[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Writes a NUL-terminated string; a string holding NUL cannot be sent and is an error.
pub fn put_cstr(dst: &mut BytesMut, s: &str) -> Result<()> {
    if s.as_bytes().contains(&0) {
        return Err(Error::config(format!(
            "string contains a NUL byte: {:?}",
            s.escape_debug().to_string()
        )));
    }
    dst.put_slice(s.as_bytes());
    dst.put_u8(0);
    Ok(())
}

/// A bounds-checked cursor over a message body. Every read checks what remains and returns a
/// protocol error naming the message; nothing here can panic on short input.
pub struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a Bytes, what: &'static str) -> Reader<'a> {
        Reader { buf, pos: 0, what }
    }

    fn short(&self, need: usize) -> Error {
        Error::protocol(format!(
            "{} message too short: needed {need} more bytes at offset {}, {} left",
            self.what,
            self.pos,
            self.remaining()
        ))
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        let b = self
            .buf
            .get(self.pos..self.pos + N)
            .ok_or_else(|| self.short(N))?;
        self.pos += N;
        let mut out = [0; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take::<1>()?[0])
    }

    pub fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(self.take()?))
    }

    pub fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.take()?))
    }

    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.take()?))
    }

    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.take()?))
    }

    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.take()?))
    }

    /// `n` bytes as a zero-copy slice of the frame.
    pub fn bytes(&mut self, n: usize) -> Result<Bytes> {
        if n > self.remaining() {
            return Err(self.short(n));
        }
        let b = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(b)
    }

    /// Everything left, as a zero-copy slice.
    pub fn rest(&mut self) -> Bytes {
        let b = self.buf.slice(self.pos..);
        self.pos = self.buf.len();
        b
    }

    /// A NUL-terminated string, which must be UTF-8.
    pub fn cstr(&mut self) -> Result<&'a str> {
        let buf: &'a Bytes = self.buf;
        let rest = &buf[self.pos..];
        let nul = rest.iter().position(|&b| b == 0).ok_or_else(|| {
            Error::protocol(format!(
                "{} message: string at offset {} is not NUL-terminated",
                self.what, self.pos
            ))
        })?;
        let s = std::str::from_utf8(&rest[..nul]).map_err(|_| {
            Error::protocol(format!(
                "{} message: string at offset {} is not valid UTF-8",
                self.what, self.pos
            ))
        })?;
        self.pos += nul + 1;
        Ok(s)
    }

    /// Fails unless the whole body was consumed.
    pub fn finish(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(Error::protocol(format!(
                "{} message has {} unexpected trailing bytes",
                self.what,
                self.remaining()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
