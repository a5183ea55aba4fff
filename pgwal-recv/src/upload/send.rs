//! Sending one file of the spool to the store: read in pieces, looked up first (never
//! overwriting other bytes: a compressed object is compared by its WAL, since the same WAL
//! compressed twice need not give the same bytes), then PUT, and only then removed from the
//! spool.

use std::io::Read;
use std::path::Path;

use bytes::Bytes;
use object_store::PutPayload;

use super::{Kind, Shared};
use crate::archive::names::{method_of, PARTIAL};
use crate::archive::{zfile, Method};
use crate::output::os_error;

/// How one upload ended.
pub(super) enum Outcome {
    /// Stored (or found stored, identical): `bytes` sent.
    Done { bytes: u64 },
    /// Nothing to send: the spool's file is gone (a `.partial` snapshot whose segment
    /// completed meanwhile).
    Gone,
    /// Try again later.
    Retry(String),
    /// Stop uploading: an object exists with different bytes.
    Conflict(String),
}

/// The object a spool file goes to: its own name, but for a timeline's last `.partial`
/// (renamed `NAME.partial.closed` in the spool).
pub(super) fn object_name(name: &str, kind: Kind) -> &str {
    match kind {
        Kind::Closed => name.strip_suffix(super::CLOSED).unwrap_or(name),
        _ => name,
    }
}

/// Uploads one file of the spool; see the [module docs](super).
pub(super) async fn upload(s: &Shared, name: &str, kind: Kind) -> Outcome {
    let path = s.spool.join(name);
    let data = match read_pieces(&path).await {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && kind == Kind::Partial => {
            return Outcome::Gone
        }
        Err(e) => {
            return Outcome::Retry(format!(
                "could not read file \"{}\": {}",
                path.display(),
                os_error(&e)
            ))
        }
    };
    let bytes = data.iter().map(|p| p.len() as u64).sum::<u64>();
    let target = || s.store.url().join(name).display().to_string();
    if kind == Kind::Partial {
        return match s.store.put(name, payload(&data)).await {
            Ok(()) => Outcome::Done { bytes },
            Err(e) => Outcome::Retry(os_error(&e)),
        };
    }
    if kind == Kind::Closed {
        if let Err(e) = s.store.put(object_name(name, kind), payload(&data)).await {
            return Outcome::Retry(os_error(&e));
        }
        return remove_spooled(&path, bytes);
    }
    // Never overwrite silently: what is there must be these bytes.
    let stored = match s.store.size(name).await {
        Ok(size) => size,
        Err(e) => return Outcome::Retry(os_error(&e)),
    };
    let sent = match stored {
        None => match s.store.put(name, payload(&data)).await {
            Ok(()) => bytes,
            Err(e) => return Outcome::Retry(os_error(&e)),
        },
        Some(size) => {
            let there = match s.store.get(name).await {
                Ok(there) => there,
                Err(e) => return Outcome::Retry(os_error(&e)),
            };
            let same = same_bytes(&there, &data)
                || match same_wal(name, there, &data).await {
                    Ok(same) => same,
                    Err(e) => return Outcome::Retry(e),
                };
            if !same {
                return Outcome::Conflict(format!(
                    "object \"{}\" already exists with different content ({size} bytes stored, \
                     {bytes} bytes in the spool file \"{}\"); it is left as it is",
                    target(),
                    path.display()
                ));
            }
            0
        }
    };
    if let (true, Kind::Segment(_)) = (s.partials, kind) {
        let snapshot = format!("{name}{PARTIAL}");
        if let Err(e) = s.store.remove(&snapshot).await {
            return Outcome::Retry(format!(
                "could not remove \"{}\": {}",
                s.store.url().join(&snapshot).display(),
                os_error(&e)
            ));
        }
    }
    remove_spooled(&path, sent)
}

/// Files are read, and sent, in pieces of this size: one allocation per segment (16 MiB
/// and up) would sit above the allocator's mmap threshold and, once that threshold has
/// risen, be carved out of the heap, where freed segments stay resident; equal pieces are
/// reused from one file to the next.
const PIECE: usize = 1 << 20;

/// The file at `path`, in pieces of [`PIECE`] bytes.
async fn read_pieces(path: &Path) -> std::io::Result<Vec<Bytes>> {
    use tokio::io::AsyncReadExt;
    let mut f = tokio::fs::File::open(path).await?;
    let mut pieces = Vec::new();
    loop {
        let mut piece = Vec::with_capacity(PIECE);
        while piece.len() < PIECE {
            let n = (&mut f)
                .take((PIECE - piece.len()) as u64)
                .read_to_end(&mut piece)
                .await?;
            if n == 0 {
                break;
            }
        }
        if piece.is_empty() {
            return Ok(pieces);
        }
        let full = piece.len() == PIECE;
        pieces.push(Bytes::from(piece));
        if !full {
            return Ok(pieces);
        }
    }
}

fn payload(pieces: &[Bytes]) -> PutPayload {
    pieces.iter().cloned().collect()
}

/// Whether compressed segment `name` as stored (`there`) and as spooled (`pieces`) hold the
/// same WAL: the same WAL received again (after a restart) is compressed in other pieces,
/// so into other bytes. `false` for an uncompressed name, and for a stream that does not
/// decode (which then is no copy of ours).
async fn same_wal(name: &str, there: Bytes, pieces: &[Bytes]) -> Result<bool, String> {
    let method = method_of(name);
    if method == Method::None {
        return Ok(false);
    }
    let mine = Bytes::from(pieces.concat());
    let compare = move || -> bool {
        let open = |b: Bytes| zfile::reader(method, std::io::Cursor::new(b));
        let (Ok(mut a), Ok(mut b)) = (open(there), open(mine)) else {
            return false;
        };
        let (mut x, mut y) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
        loop {
            let (Ok(n), Ok(m)) = (read_full(&mut a, &mut x), read_full(&mut b, &mut y)) else {
                return false;
            };
            if x[..n] != y[..m] {
                return false;
            }
            if n == 0 {
                return true;
            }
        }
    };
    tokio::task::spawn_blocking(compare)
        .await
        .map_err(|e| format!("internal error: comparing \"{name}\" failed: {e}"))
}

/// Fills `buf` as far as the reader goes; the number of bytes read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Whether the stored object `there` holds exactly the bytes of `pieces`.
fn same_bytes(there: &[u8], pieces: &[Bytes]) -> bool {
    let mut rest = there;
    for p in pieces {
        match rest.split_at_checked(p.len()) {
            Some((head, tail)) if head == &p[..] => rest = tail,
            _ => return false,
        }
    }
    rest.is_empty()
}

/// The spool's copy goes once the store has the file.
fn remove_spooled(path: &Path, sent: u64) -> Outcome {
    match std::fs::remove_file(path) {
        Ok(()) => Outcome::Done { bytes: sent },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Outcome::Done { bytes: sent },
        Err(e) => Outcome::Retry(format!(
            "could not remove file \"{}\": {}",
            path.display(),
            os_error(&e)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_compare_with_the_whole() {
        let p = [Bytes::from_static(b"abc"), Bytes::from_static(b"de")];
        assert!(same_bytes(b"abcde", &p));
        assert!(!same_bytes(b"abcdf", &p));
        assert!(!same_bytes(b"abcd", &p));
        assert!(!same_bytes(b"abcdef", &p));
        assert!(same_bytes(b"", &[]));
    }

    #[tokio::test]
    async fn files_are_read_in_whole_pieces() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0, 1, PIECE - 1, PIECE, PIECE + 1, 3 * PIECE] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let path = dir.path().join("f");
            std::fs::write(&path, &data).unwrap();
            let pieces = read_pieces(&path).await.unwrap();
            assert!(
                pieces.iter().rev().skip(1).all(|p| p.len() == PIECE),
                "{len}"
            );
            assert!(same_bytes(&data, &pieces), "{len}");
        }
    }
}
