//! The framing of a tar stream, fed in chunks as they arrive: headers, member data, the
//! end-of-archive marker. Sans-IO: it reads no file and holds nothing but the one 512-byte
//! header block being assembled; what a member *is* (its type, its path) is for the caller.
//!
//! A tar archive is a run of 512-byte blocks:
//!
//! ```text
//! header (512) | data (size bytes) | zeros up to a multiple of 512 | header | ... | 0 (512) | 0 (512)
//! ```
//!
//! "A tar archive consists of a series of 512-byte records. Each file system object requires
//! a header record [...] followed by zero or more records with the file contents. The end of
//! the archive is indicated by two records consisting entirely of zero bytes." (POSIX pax,
//! ustar Interchange Format). PostgreSQL's server writes plain ustar headers
//! (`src/port/tar.c`, `tarCreateHeader`): names of at most 99 bytes, the size in octal, or
//! in base-256 from 8 GiB on.

use tar::Header;

/// Bytes in a tar block.
pub const BLOCK: usize = 512;

/// The largest member accepted: far above anything a data directory holds (relation
/// segments are 1 GiB unless built otherwise), and low enough that a corrupt size field is
/// reported at its header instead of after the disk has filled.
pub const MAX_MEMBER_SIZE: u64 = 1 << 40;

/// What is wrong with the tar stream itself.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TarError {
    #[error("invalid tar header for \"{name}\": checksum is {stored}, computed {computed}")]
    Checksum {
        name: String,
        stored: u32,
        computed: u32,
    },
    #[error("invalid tar header for \"{name}\": {what}")]
    BadField { name: String, what: String },
    #[error(
        "tar member \"{name}\" has a size of {size}, over the limit of {MAX_MEMBER_SIZE} bytes"
    )]
    TooLarge { name: String, size: String },
    #[error("tar archive has a lone zero block before the header of \"{name}\"")]
    LoneZeroBlock { name: String },
    #[error("tar archive has non-zero data after its end-of-archive marker")]
    DataAfterEnd,
    #[error("tar archive ends inside a member header")]
    EndsInHeader,
    #[error("tar archive ends inside member \"{name}\" ({missing} bytes missing)")]
    EndsInMember { name: String, missing: u64 },
    #[error("tar archive ends without its end-of-archive marker")]
    NoEndMarker,
    #[error("tar stream used after an earlier error")]
    AfterError,
}

/// One step of the stream, handed to the caller's callback in archive order.
#[derive(Debug)]
pub enum Event<'a> {
    /// A member's header, its checksum verified and its size within [`MAX_MEMBER_SIZE`].
    Header(&'a Header),
    /// The next piece of the current member's data (never empty).
    Data(&'a [u8]),
    /// The current member's data is complete (sent for empty members too).
    MemberEnd,
    /// The end-of-archive marker: two zero blocks. Nothing follows.
    ArchiveEnd,
}

#[derive(Debug)]
enum State {
    /// Assembling a header block in `block[..filled]`.
    Header,
    /// In a member's data; `padding` zero bytes follow it.
    Data {
        remaining: u64,
        padding: usize,
    },
    Padding {
        remaining: usize,
    },
    /// After the end-of-archive marker: only zeros may follow.
    End,
    Failed,
}

/// The push parser: [`feed`](TarStream::feed) it bytes as they arrive, in any chunks; it
/// calls back with [`Event`]s. A callback's error stops the stream and is returned.
#[derive(Debug)]
pub struct TarStream {
    state: State,
    block: [u8; BLOCK],
    filled: usize,
    /// One zero block seen: the second one ends the archive.
    zero_block: bool,
    /// The current member's name, for errors about its data.
    name: String,
}

impl Default for TarStream {
    fn default() -> Self {
        TarStream::new()
    }
}

impl TarStream {
    pub fn new() -> TarStream {
        TarStream {
            state: State::Header,
            block: [0; BLOCK],
            filled: 0,
            zero_block: false,
            name: String::new(),
        }
    }

    /// Parses `data`, calling `on` for each event it completes.
    pub fn feed<E: From<TarError>>(
        &mut self,
        data: &[u8],
        mut on: impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if matches!(self.state, State::Failed) {
            return Err(TarError::AfterError.into());
        }
        let result = self.feed_inner(data, &mut on);
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn feed_inner<E: From<TarError>>(
        &mut self,
        mut input: &[u8],
        on: &mut impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        while !input.is_empty() {
            match self.state {
                State::Header => {
                    let n = (BLOCK - self.filled).min(input.len());
                    self.block[self.filled..self.filled + n].copy_from_slice(&input[..n]);
                    self.filled += n;
                    input = &input[n..];
                    if self.filled == BLOCK {
                        self.filled = 0;
                        self.header_block(on)?;
                    }
                }
                State::Data { remaining, padding } => {
                    // Lossless: the minimum is at most input.len().
                    let n = remaining.min(input.len() as u64) as usize;
                    on(Event::Data(&input[..n]))?;
                    input = &input[n..];
                    let remaining = remaining - n as u64;
                    self.state = if remaining > 0 {
                        State::Data { remaining, padding }
                    } else {
                        on(Event::MemberEnd)?;
                        after_data(padding)
                    };
                }
                State::Padding { remaining } => {
                    // Padding is not checked for zeros: GNU tar and PostgreSQL ignore it too.
                    let n = remaining.min(input.len());
                    input = &input[n..];
                    self.state = after_data(remaining - n);
                }
                State::End => {
                    if input.iter().any(|&b| b != 0) {
                        return Err(TarError::DataAfterEnd.into());
                    }
                    input = &[];
                }
                State::Failed => return Err(TarError::AfterError.into()),
            }
        }
        Ok(())
    }

    /// A complete block in `self.block` where a header is expected.
    fn header_block<E: From<TarError>>(
        &mut self,
        on: &mut impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.block.iter().all(|&b| b == 0) {
            if self.zero_block {
                self.state = State::End;
                on(Event::ArchiveEnd)?;
            }
            self.zero_block = true;
            return Ok(());
        }
        let header = Header::from_byte_slice(&self.block);
        self.name = String::from_utf8_lossy(&header.path_bytes()).into_owned();
        if self.zero_block {
            return Err(TarError::LoneZeroBlock {
                name: self.name.clone(),
            }
            .into());
        }
        let size = check_header(header, &self.name)?;
        on(Event::Header(header))?;
        if size == 0 {
            on(Event::MemberEnd)?;
            self.state = State::Header;
        } else {
            self.state = State::Data {
                remaining: size,
                padding: padding(size),
            };
        }
        Ok(())
    }

    /// Checks that the stream ended where an archive may end: after its end-of-archive
    /// marker (trailing zeros after it are fine).
    pub fn finish(&self) -> Result<(), TarError> {
        match self.state {
            State::End => Ok(()),
            State::Header if self.filled > 0 => Err(TarError::EndsInHeader),
            State::Header => Err(TarError::NoEndMarker),
            State::Data { remaining, .. } => Err(TarError::EndsInMember {
                name: self.name.clone(),
                missing: remaining,
            }),
            // The data is complete; only its padding is cut short.
            State::Padding { .. } => Err(TarError::NoEndMarker),
            State::Failed => Err(TarError::AfterError),
        }
    }
}

fn after_data(padding: usize) -> State {
    if padding > 0 {
        State::Padding { remaining: padding }
    } else {
        State::Header
    }
}

/// Zero bytes after `size` bytes of data, up to the next block.
pub fn padding(size: u64) -> usize {
    // Lossless: the remainder is below BLOCK.
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

/// Verifies a header's checksum and returns its data size.
fn check_header(header: &Header, name: &str) -> Result<u64, TarError> {
    let bytes = header.as_bytes();
    // "The chksum field shall be the ASCII representation of the octal value of the simple
    // sum of all bytes in the header logical record. Each byte in the header shall be
    // treated as an unsigned value. [...] the chksum field is treated as if it were all
    // <space> characters."
    let computed: u32 = bytes[..148]
        .iter()
        .chain(&[b' '; 8])
        .chain(&bytes[156..])
        .map(|&b| u32::from(b))
        .sum();
    let stored = header
        .cksum()
        .map_err(|e| bad_field(name, "checksum", &e))?;
    if stored != computed {
        return Err(TarError::Checksum {
            name: name.to_owned(),
            stored,
            computed,
        });
    }
    // Base-256 (first byte 0x80): tar::Header reads only the last 8 of the 12 bytes, so
    // anything in the 3 bytes between would be dropped silently; 0xff starts a negative.
    let field = &bytes[124..136];
    if field[0] & 0x80 != 0 && (field[0] != 0x80 || field[1..4] != [0; 3]) {
        return Err(TarError::TooLarge {
            name: name.to_owned(),
            size: "2^64 bytes or more".to_owned(),
        });
    }
    let size = header
        .entry_size()
        .map_err(|e| bad_field(name, "size", &e))?;
    if size > MAX_MEMBER_SIZE {
        return Err(TarError::TooLarge {
            name: name.to_owned(),
            size: format!("{size} bytes"),
        });
    }
    Ok(size)
}

fn bad_field(name: &str, field: &str, e: &std::io::Error) -> TarError {
    // tar's messages repeat the member name ("... when getting size for NAME"): keep the
    // part before it.
    let text = e.to_string();
    let text = text.split(" when getting ").next().unwrap_or_default();
    TarError::BadField {
        name: name.to_owned(),
        what: format!("bad {field} field ({text})"),
    }
}
