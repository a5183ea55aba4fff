//! Message framing and the pieces every message's encoding and decoding is built from, one
//! file each:
//!
//! - `frame`: the frame split — tag, length that counts itself, body — with a length cap per
//!   tag checked before any memory is reserved ([`decode_frame`], [`Frame`]);
//! - `read_buffer`: the connection's read buffer, which hands out frames without copying
//!   them and sizes each read so that WAL is never moved ([`ReadBuffer`]);
//! - `reader`: the bounds-checked field reader that decoders read bodies through
//!   ([`Reader`]);
//! - `writer`: the write helpers, a message with its length back-patched and C strings that
//!   refuse NUL ([`write_message`], [`write_body`], [`put_cstr`]).
//!
//! See <https://www.postgresql.org/docs/current/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS>.

mod frame;
mod read_buffer;
mod reader;
mod writer;

pub use frame::{decode_frame, max_body_len, Frame, MAX_COPY_DATA, MAX_DATA_ROW, MAX_OTHER};
pub use read_buffer::{ReadBuffer, SPARE_CHUNKS, STREAMING_FRAME};
pub use reader::Reader;
pub use writer::{put_cstr, write_body, write_message};
