//! Compressed segment streams: gzip, lz4 (frame format) and zstd, written the way
//! pg_receivewal writes them, and read back for the start-position scan.
//!
//! gzip is zlib's `gzdopen` + `gzsetparams(level)` in PostgreSQL: one member at the requested
//! level (zlib's default, 6, when none is given). lz4 is an LZ4F frame with default
//! preferences except the level: no content or block checksums, 64 KiB linked blocks. zstd,
//! which pg_receivewal lacks, is one frame at level 3 by default, with a content checksum.
//! In every case `finish` writes the trailer, so a cleanly closed `.partial` is a valid
//! stream of every byte received, which `gzip -t`, `lz4 -t` and `zstd -t` accept.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
#[cfg(test)]
use std::io::{Seek, SeekFrom};
#[cfg(test)]
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use flate2::write::GzEncoder;
use flate2::Compression;

use super::compress::{CompressSpec, Method};

/// zstd's own default level (what `zstd` with no level uses).
const ZSTD_DEFAULT_LEVEL: i32 = 3;

enum Inner {
    Gzip(GzEncoder<File>),
    Lz4(lz4::Encoder<File>),
    Zstd(zstd::stream::write::Encoder<'static, File>),
}

/// A compressing writer over a segment file, started at the file's current position.
///
/// Dropping it without [`Encoder::finish`] leaves an unterminated stream (flate2 alone
/// tries to write the gzip trailer on drop, ignoring errors); call `finish` on every path
/// where the file should stay readable.
pub struct Encoder {
    inner: Inner,
    written: u64,
}

fn invalid_input(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl Encoder {
    /// Starts a stream of `spec.method` (not `Method::None`) into `file`; the header is
    /// written now (gzip's is written with the first data).
    pub fn new(spec: CompressSpec, file: File) -> io::Result<Encoder> {
        let bad_level = |l: i32| {
            invalid_input(format!(
                "invalid compression level {l} for \"{}\"",
                spec.method.name()
            ))
        };
        let inner = match spec.method {
            Method::None => {
                return Err(invalid_input(
                    "compression method \"none\" has no encoder".into(),
                ))
            }
            Method::Gzip => {
                let level = match spec.level {
                    None => Compression::default(),
                    Some(l @ 0..=9) => Compression::new(l as u32),
                    Some(l) => return Err(bad_level(l)),
                };
                Inner::Gzip(GzEncoder::new(file, level))
            }
            Method::Lz4 => {
                let level = match spec.level {
                    // LZ4F's compressionLevel 0: the default fast mode.
                    None => 0,
                    Some(l @ 0..=12) => l as u32,
                    Some(l) => return Err(bad_level(l)),
                };
                // The crate turns both checksums on; LZ4F's defaults (PostgreSQL's) are off.
                let enc = lz4::EncoderBuilder::new()
                    .level(level)
                    .checksum(lz4::ContentChecksum::NoChecksum)
                    .block_checksum(lz4::liblz4::BlockChecksum::NoBlockChecksum)
                    .build(file)?;
                Inner::Lz4(enc)
            }
            Method::Zstd => {
                let level = match spec.level {
                    None => ZSTD_DEFAULT_LEVEL,
                    Some(l @ 1..=22) => l,
                    Some(l) => return Err(bad_level(l)),
                };
                let mut enc = zstd::stream::write::Encoder::new(file, level)?;
                enc.include_checksum(true)?;
                Inner::Zstd(enc)
            }
        };
        Ok(Encoder { inner, written: 0 })
    }

    /// Compresses all of `data`. Output reaches the file as the compressor's buffers fill.
    pub fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            Inner::Gzip(e) => e.write_all(data)?,
            Inner::Lz4(e) => e.write_all(data)?,
            Inner::Zstd(e) => e.write_all(data)?,
        }
        self.written += data.len() as u64;
        Ok(())
    }

    /// Pushes everything compressed so far into the file (a sync flush: zlib's
    /// `Z_SYNC_FLUSH`, `LZ4F_flush`, `ZSTD_e_flush`), so that the bytes on disk decompress to
    /// every byte written so far; only the trailer is missing. It does not fsync.
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Gzip(e) => e.flush(),
            Inner::Lz4(e) => e.flush(),
            Inner::Zstd(e) => e.flush(),
        }
    }

    /// Bytes handed to `write_all` so far (before compression).
    pub fn uncompressed_len(&self) -> u64 {
        self.written
    }

    /// Ends the stream (gzip CRC and ISIZE, the LZ4F end mark, the zstd last block and
    /// checksum) and hands back the file, not yet fsynced.
    pub fn finish(self) -> io::Result<File> {
        match self.inner {
            Inner::Gzip(e) => e.finish(),
            Inner::Lz4(e) => {
                let (file, res) = e.finish();
                res.map(|()| file)
            }
            Inner::Zstd(e) => e.finish(),
        }
    }

    /// The file being written, for fsync.
    pub fn file(&self) -> &File {
        match &self.inner {
            Inner::Gzip(e) => e.get_ref(),
            Inner::Lz4(e) => e.writer(),
            Inner::Zstd(e) => e.get_ref(),
        }
    }
}

/// A file reader that remembers whether it failed, so that a decoder's error can be told
/// apart from the file's own: the first is corruption (`InvalidData`), the second is passed on.
struct Source<R> {
    inner: R,
    failed: bool,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.inner.read(buf);
        if matches!(&r, Err(e) if e.kind() != io::ErrorKind::Interrupted) {
            self.failed = true;
        }
        r
    }
}

fn corrupt(method: Method, why: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("invalid {} stream: {why}", method.name()),
    )
}

/// Decompresses the whole of `path` into `out`, stopping early once more than `limit`
/// bytes have come out. Returns the number of bytes produced. Every decoding failure,
/// truncation included, is `InvalidData`; the file's own read errors keep their kind.
#[cfg(test)]
fn decode<W: Write>(path: &Path, method: Method, out: &mut W, limit: u64) -> io::Result<u64> {
    decode_reader(File::open(path)?, method, out, limit)
}

/// As [`decode`], from any reader of the compressed bytes.
pub fn decode_reader<R: Read, W: Write>(
    reader: R,
    method: Method,
    out: &mut W,
    limit: u64,
) -> io::Result<u64> {
    let mut src = BufReader::with_capacity(
        64 * 1024,
        Source {
            inner: reader,
            failed: false,
        },
    );
    let res = decode_from(&mut src, method, out, limit);
    match res {
        Err(e) if !src.get_ref().failed && e.kind() != io::ErrorKind::InvalidData => {
            Err(corrupt(method, e))
        }
        r => r,
    }
}

fn decode_from<R: io::BufRead, W: Write>(
    src: &mut R,
    method: Method,
    out: &mut W,
    limit: u64,
) -> io::Result<u64> {
    let mut count = 0u64;
    // A file may hold several members or frames back to back, as the tools accept; an empty
    // file holds none, which is corrupt for gzip and lz4 (their tools reject it) and an
    // empty stream for zstd (its tool accepts it).
    let mut first = true;
    while count <= limit && (first || !src.fill_buf()?.is_empty()) {
        match method {
            Method::None => return Err(invalid_input("not a compressed file".into())),
            Method::Gzip => {
                let mut d = flate2::bufread::GzDecoder::new(&mut *src);
                count += copy_limited(&mut d, out, limit - count)?;
                if count <= limit && d.header().is_none() {
                    return Err(corrupt(method, "no gzip header"));
                }
            }
            Method::Lz4 => {
                let mut d = lz4::Decoder::new(&mut *src)?;
                count += copy_limited(&mut d, out, limit - count)?;
                if count <= limit {
                    // The decoder reports a missing end mark only here.
                    if let (_, Err(_)) = d.finish() {
                        return Err(corrupt(method, "truncated frame"));
                    }
                }
            }
            Method::Zstd => {
                let mut d = zstd::stream::read::Decoder::with_buffer(&mut *src)?;
                count += copy_limited(&mut d, out, limit - count)?;
                // This decoder reads every frame to the end of its input itself.
                return Ok(count);
            }
        }
        first = false;
    }
    Ok(count)
}

/// Copies until EOF, or until more than `budget` bytes have been copied.
fn copy_limited<R: Read, W: Write>(r: &mut R, w: &mut W, budget: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..k])?;
        n += k as u64;
        if n > budget {
            return Ok(n);
        }
    }
}

/// A compressed `.partial`, read as far as it decodes: what a stream without its end mark
/// (the archiver killed, or an `--upload-partial` snapshot: flushed, not finished, perhaps cut
/// inside a block) holds is every byte before that point, and where it stops decoding is
/// where its WAL ends. The WAL checks after it decide how much of that is valid.
pub fn partial_reader(inner: Box<dyn Read + Send>) -> Box<dyn Read + Send> {
    Box::new(UntilUndecodable { inner, done: false })
}

struct UntilUndecodable {
    inner: Box<dyn Read + Send>,
    done: bool,
}

impl Read for UntilUndecodable {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        match self.inner.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                self.done = true;
                Ok(0)
            }
            r => r,
        }
    }
}

/// The uncompressed bytes of a file stored with `method`, read from `stored` as they are
/// asked for: in constant memory, whatever the file's size. A corrupt or truncated stream is
/// an `InvalidData` error (an lz4 frame without its end mark included); the source's own
/// read errors keep their kind.
pub fn reader<R: Read + Send + 'static>(
    method: Method,
    stored: R,
) -> io::Result<Box<dyn Read + Send>> {
    if method == Method::None {
        // Read straight into the caller's buffer: no copy through one of ours.
        return Ok(Box::new(stored));
    }
    let failed = Arc::new(AtomicBool::new(false));
    let src = BufReader::with_capacity(
        64 * 1024,
        Watched {
            inner: stored,
            failed: failed.clone(),
        },
    );
    let decoder: Box<dyn Read + Send> = match method {
        Method::None => Box::new(src),
        Method::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(src)),
        Method::Lz4 => Box::new(Lz4Reader(Some(lz4::Decoder::new(src)?))),
        Method::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(src)?),
    };
    Ok(Box::new(Decoded {
        method,
        inner: decoder,
        failed,
    }))
}

/// A source that notes when it failed, so that a decoder's error can be told from its own.
struct Watched<R> {
    inner: R,
    failed: Arc<AtomicBool>,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.inner.read(buf);
        if matches!(&r, Err(e) if e.kind() != io::ErrorKind::Interrupted) {
            self.failed.store(true, Ordering::Relaxed);
        }
        r
    }
}

/// A decoder whose errors, unless the source failed, are corruption.
struct Decoded {
    method: Method,
    inner: Box<dyn Read + Send>,
    failed: Arc<AtomicBool>,
}

impl Read for Decoded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if self.failed.load(Ordering::Relaxed)
                || matches!(
                    e.kind(),
                    io::ErrorKind::InvalidData | io::ErrorKind::Interrupted
                )
            {
                e
            } else {
                corrupt(self.method, e)
            }
        })
    }
}

/// lz4's decoder reports a frame without its end mark only when finished: done at the end.
struct Lz4Reader<R: io::BufRead>(Option<lz4::Decoder<R>>);

impl<R: io::BufRead> Read for Lz4Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(d) = self.0.as_mut() else {
            return Ok(0);
        };
        let n = d.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if let Some(d) = self.0.take() {
                if let (_, Err(_)) = d.finish() {
                    return Err(corrupt(Method::Lz4, "truncated frame"));
                }
            }
        }
        Ok(n)
    }
}

/// The uncompressed size of a complete compressed file (see [`uncompressed_size_limited`]).
#[cfg(test)]
pub fn uncompressed_size(path: &Path, method: Method) -> io::Result<u64> {
    uncompressed_size_limited(path, method, u64::MAX)
}

/// [`gzip_isize`] or [`decode_reader`] on a file, as the start-position scan does through
/// the archive.
#[cfg(test)]
pub fn uncompressed_size_limited(path: &Path, method: Method, limit: u64) -> io::Result<u64> {
    match method {
        Method::None => Ok(std::fs::metadata(path)?.len()),
        Method::Gzip => {
            let mut f = File::open(path)?;
            let len = f.metadata()?.len();
            f.seek(SeekFrom::Start(len.saturating_sub(4)))?;
            let mut tail = Vec::new();
            f.read_to_end(&mut tail)?;
            gzip_isize(len, &tail)
        }
        _ => decode_reader(File::open(path)?, method, &mut io::sink(), limit),
    }
}

/// A gzip file's uncompressed size as its ISIZE trailer says (the last 4 bytes,
/// little-endian), as pg_receivewal reads it: modulo 4 GiB, and the stream is not checked.
/// `len` is the file's length, `tail` its last bytes; a file too short to hold a header and
/// a trailer is `InvalidData`.
pub fn gzip_isize(len: u64, tail: &[u8]) -> io::Result<u64> {
    if len < 18 {
        // A header (10) and a trailer (8) at least.
        return Err(corrupt(Method::Gzip, format!("file is {len} bytes long")));
    }
    let isize: [u8; 4] = tail
        .get(tail.len().saturating_sub(4)..)
        .and_then(|t| t.try_into().ok())
        .ok_or_else(|| corrupt(Method::Gzip, "no trailer"))?;
    Ok(u64::from(u32::from_le_bytes(isize)))
}

/// Decompresses a whole file into memory (for tests and verification). Unlike
/// [`uncompressed_size`], gzip is fully decoded and its CRC and ISIZE checked.
#[cfg(test)]
pub fn decompress_file(path: &Path, method: Method) -> io::Result<Vec<u8>> {
    if method == Method::None {
        return std::fs::read(path);
    }
    let mut out = Vec::new();
    decode(path, method, &mut out, u64::MAX)?;
    Ok(out)
}

#[cfg(test)]
mod tests;
