//! Where an archive's bytes go as they arrive: decompressed first if the server compressed
//! a plain-format backup, through the `-R` injector (main archive), into the extractor or a
//! tar file (compressed as `-Z` says).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::archive::compress::{CompressSpec, Method};
use crate::archive::zfile::Encoder;
use crate::basebackup::extract::Extractor;
use crate::basebackup::inject::RecoveryInjector;
use crate::basebackup::TarError;
use crate::cli::{BasebackupOptions, CompressAt};
use crate::output::os_error;

/// What stops the `-R` injector: the archive (its tar framing), or the sink.
enum PipeError {
    Tar(TarError),
    Out(String),
}

impl From<TarError> for PipeError {
    fn from(e: TarError) -> PipeError {
        PipeError::Tar(e)
    }
}

/// Where the current archive's bytes go.
pub(super) enum Sink {
    Extract(Box<Extractor>),
    Tar(TarOut),
}

impl Sink {
    /// Extracts or writes `bytes` of archive `name`.
    fn write(&mut self, name: &str, bytes: &[u8]) -> Result<(), String> {
        match self {
            Sink::Extract(x) => x.feed(bytes).map_err(|e| format!("{name}: {e}")),
            Sink::Tar(t) => t
                .write(bytes)
                .map_err(|e| format!("could not write to file \"{name}\": {}", os_error(&e))),
        }
    }
}

pub(super) enum TarOut {
    Plain(BufWriter<File>),
    Compressed(Encoder),
}

impl TarOut {
    /// `path`, compressed as `spec` says (`Method::None`: as it is).
    pub(super) fn create(path: &Path, spec: CompressSpec) -> std::io::Result<TarOut> {
        let f = File::create(path)?;
        Ok(if spec.method == Method::None {
            TarOut::Plain(BufWriter::with_capacity(256 << 10, f))
        } else {
            TarOut::Compressed(Encoder::new(spec, f)?)
        })
    }

    pub(super) fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            TarOut::Plain(w) => w.write_all(data),
            TarOut::Compressed(e) => e.write_all(data),
        }
    }

    pub(super) fn finish(self) -> std::io::Result<File> {
        match self {
            TarOut::Plain(w) => w.into_inner().map_err(|e| e.into_error()),
            TarOut::Compressed(e) => e.finish(),
        }
    }
}

/// An archive's tar bytes on their way out: the `-R` injector (main archive only), then the
/// sink.
pub(super) struct Pipeline {
    pub(super) name: String,
    pub(super) sink: Sink,
    pub(super) inject: Option<RecoveryInjector>,
}

impl Pipeline {
    pub(super) fn feed(&mut self, data: &[u8]) -> Result<(), String> {
        let Pipeline { name, sink, inject } = self;
        match inject {
            // The injector hands on the archive's own bytes as slices of `data`.
            Some(inj) => inj
                .feed_to(data, &mut |piece: &[u8]| {
                    sink.write(name, piece).map_err(PipeError::Out)
                })
                .map_err(|e| match e {
                    PipeError::Tar(e) => format!("{name}: {e}"),
                    PipeError::Out(e) => e,
                }),
            None => sink.write(name, data),
        }
    }

    /// Ends the archive; a tar file is returned for the final fsync.
    pub(super) fn finish(self) -> Result<Option<File>, String> {
        if let Some(inj) = self.inject {
            inj.finish().map_err(|e| format!("{}: {e}", self.name))?;
        }
        match self.sink {
            Sink::Extract(x) => x
                .finish()
                .map(|_| None)
                .map_err(|e| format!("{}: {e}", self.name)),
            Sink::Tar(t) => t.finish().map(Some).map_err(|e| {
                format!(
                    "could not write to file \"{}\": {}",
                    self.name,
                    os_error(&e)
                )
            }),
        }
    }
}

/// The decompressors write into the pipeline; its errors travel as `io::Error`s whose
/// text is the whole message.
impl Write for Pipeline {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.feed(buf).map_err(std::io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One archive being received: as it arrives, or decompressed first (the plain format of
/// a backup the server compressed).
pub(super) enum Archive {
    Direct(Box<Pipeline>),
    Gzip(Box<flate2::write::GzDecoder<Pipeline>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, Pipeline>>),
}

impl Archive {
    pub(super) fn new(pipe: Pipeline, decompress: Method) -> Result<Archive, String> {
        Ok(match decompress {
            Method::None => Archive::Direct(Box::new(pipe)),
            Method::Gzip => Archive::Gzip(Box::new(flate2::write::GzDecoder::new(pipe))),
            Method::Zstd => Archive::Zstd(Box::new(
                zstd::stream::write::Decoder::new(pipe)
                    .map_err(|e| format!("could not start zstd: {}", os_error(&e)))?,
            )),
            Method::Lz4 => {
                return Err("server-side lz4 with the plain format is not supported".into())
            }
        })
    }

    pub(super) fn feed(&mut self, data: &[u8]) -> Result<(), String> {
        let written = match self {
            Archive::Direct(p) => return p.feed(data),
            Archive::Gzip(d) => d.write_all(data),
            Archive::Zstd(d) => d.write_all(data),
        };
        written.map_err(|e| format!("could not decompress the archive: {e}"))
    }

    pub(super) fn finish(self) -> Result<Option<File>, String> {
        let pipe = match self {
            Archive::Direct(p) => *p,
            Archive::Gzip(d) => d
                .finish()
                .map_err(|e| format!("could not decompress the archive: {e}"))?,
            Archive::Zstd(mut d) => {
                d.flush()
                    .map_err(|e| format!("could not decompress the archive: {e}"))?;
                d.into_inner()
            }
        };
        pipe.finish()
    }
}

/// What the client compresses its tar files with (`Method::None` for none, or when the
/// server compresses).
pub(super) fn client_compression(o: &BasebackupOptions) -> CompressSpec {
    if o.compress_at == CompressAt::Client {
        o.compress
    } else {
        CompressSpec::default()
    }
}

/// `pg_wal.tar`, with the client's compression suffix (as pg_basebackup names it).
pub(super) fn wal_tar_name(o: &BasebackupOptions) -> String {
    format!("pg_wal.tar{}", client_compression(o).method.suffix())
}
