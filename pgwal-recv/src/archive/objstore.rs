//! The object-store backend: the archive is the objects directly under `s3://BUCKET/PREFIX/`,
//! named as the files of a directory archive are ([`crate::archive::names`]).
//!
//! Reached through the `object_store` crate. Credentials, region and endpoint come from the
//! environment as that crate reads it (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, …); nothing here
//! prints them. Requests are retried by the crate a few times within a short time; what still
//! fails comes back as an error and the caller decides (the uploader retries with its own
//! back-off, see [`crate::upload`]).
//!
//! An object is written whole by one PUT: it exists complete or not at all, so nothing needs
//! a temporary name. A segment is at most 1 GB (16 MB by default), read into memory to be
//! written or read back.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjPath;
use object_store::{
    BackoffConfig, ClientConfigKey, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};

use super::Listed;

/// The URL schemes `-D` takes as an object store.
pub const SCHEMES: &[&str] = &["s3://", "s3a://"];

/// The largest object read: a segment is at most 1 GiB, and its compressed form a little
/// more in the worst case.
pub const MAX_OBJECT: u64 = (1 << 30) + (64 << 20);

/// S3's error codes for a request that no retry will make good: no such bucket, a key or
/// signature refused, access denied.
const REFUSALS: &[&str] = &[
    "NoSuchBucket",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AuthorizationHeaderMalformed",
];

/// Whether `-D` names an object store rather than a directory.
pub fn is_url(location: &Path) -> bool {
    // `scheme://…`: a scheme is a letter, then letters, digits, `+`, `-` or `.`.
    location
        .to_str()
        .and_then(|s| s.split_once("://"))
        .is_some_and(|(scheme, _)| {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        })
}

/// An archive in an object store.
#[derive(Debug, Clone)]
pub struct ObjStore {
    store: Arc<dyn ObjectStore>,
    /// The objects' common prefix (no leading or trailing `/`).
    prefix: ObjPath,
    /// `s3://BUCKET/PREFIX`, for messages.
    url: PathBuf,
}

impl ObjStore {
    /// The store `url` names, configured from the environment. Only the URL is checked here:
    /// the first request tells whether the store answers.
    pub fn open(url: &Path) -> Result<ObjStore, String> {
        let text = url
            .to_str()
            .ok_or_else(|| format!("invalid archive URL \"{}\"", url.display()))?;
        if !SCHEMES.iter().any(|p| text.starts_with(p)) {
            return Err(format!(
                "unsupported archive URL \"{text}\": only s3:// is supported"
            ));
        }
        let rest = text.split_once("://").map_or("", |(_, r)| r);
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("archive URL \"{text}\" names no bucket"));
        }
        let prefix = ObjPath::parse(prefix.trim_matches('/'))
            .map_err(|e| format!("invalid prefix in archive URL \"{text}\": {e}"))?;
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            // Few quick retries: the uploader retries for as long as it takes, and says so.
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries: 3,
                retry_timeout: Duration::from_secs(20),
            })
            // Set one by one: a whole ClientOptions would replace what the environment
            // set (AWS_ALLOW_HTTP among them).
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                "5s",
            )
            .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "600s")
            .build()
            .map_err(|e| format!("could not use archive \"{text}\": {}", one_line(&e)))?;
        Ok(ObjStore {
            store: Arc::new(store),
            prefix,
            url: PathBuf::from(text.trim_end_matches('/')),
        })
    }

    /// The same store with a client of its own: a client's pooled connections are driven
    /// by the runtime that opened them, so a thread with a runtime of its own (`verify`'s
    /// reader) must not share them with a runtime it blocks.
    pub fn reopen(&self) -> Result<ObjStore, String> {
        ObjStore::open(&self.url).map(|mut s| {
            s.prefix = self.prefix.clone();
            s
        })
    }

    pub fn url(&self) -> &Path {
        &self.url
    }

    fn path(&self, name: &str) -> ObjPath {
        self.prefix.clone().join(name)
    }

    /// One listing request that finds nothing (a name under the prefix no archive has): an
    /// error the archiver must not start with — no such bucket, credentials refused — is
    /// `Err(Ok(text))`; any other failure (the store away for now) `Err(Err(text))`.
    pub async fn probe(&self) -> Result<(), Result<String, String>> {
        let path = self.path(".pgwal-recv-probe");
        match self.store.list_with_delimiter(Some(&path)).await {
            Ok(_) => Ok(()),
            Err(
                e @ (object_store::Error::NotFound { .. }
                | object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }),
            ) => Err(Ok(one_line(&e))),
            Err(e) => {
                // A listing's errors come back generic: S3's own error code (in the XML
                // answer, which the text carries) says which they are.
                let text = one_line(&e);
                let refused = REFUSALS
                    .iter()
                    .any(|code| text.contains(&format!("<Code>{code}</Code>")));
                Err(if refused { Ok(text) } else { Err(text) })
            }
        }
    }

    /// The objects directly under the prefix (not those of deeper "directories").
    pub async fn list(&self) -> io::Result<Vec<Listed>> {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let listed = self
            .store
            .list_with_delimiter(prefix)
            .await
            .map_err(io_error)?;
        Ok(listed
            .objects
            .into_iter()
            .filter_map(|o| {
                Some(Listed {
                    name: o.location.filename()?.to_owned(),
                    size: o.size,
                    modified: Some(SystemTime::from(o.last_modified)),
                })
            })
            .collect())
    }

    /// The whole object, refused before it is read when it is larger than any file of an
    /// archive can be ([`MAX_OBJECT`]).
    pub async fn get(&self, name: &str) -> io::Result<Bytes> {
        let got = self.store.get(&self.path(name)).await.map_err(io_error)?;
        if got.meta.size > MAX_OBJECT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "object is {} bytes, more than any WAL file can be",
                    got.meta.size
                ),
            ));
        }
        got.bytes().await.map_err(io_error)
    }

    /// The object's size and its last `n` bytes.
    pub async fn read_tail(&self, name: &str, n: u64) -> io::Result<(u64, Vec<u8>)> {
        let path = self.path(name);
        let meta = self.store.head(&path).await.map_err(io_error)?;
        let take = n.min(meta.size);
        if take == 0 {
            return Ok((meta.size, Vec::new()));
        }
        let tail = self
            .store
            .get_range(&path, meta.size - take..meta.size)
            .await
            .map_err(io_error)?;
        Ok((meta.size, tail.to_vec()))
    }

    /// The object's size, or `None` when there is none of that name.
    pub async fn size(&self, name: &str) -> io::Result<Option<u64>> {
        match self.store.head(&self.path(name)).await {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(io_error(e)),
        }
    }

    /// One PUT of the whole object (it replaces one of the same name); `data` may come in
    /// pieces.
    pub async fn put(&self, name: &str, data: impl Into<PutPayload>) -> io::Result<()> {
        self.store
            .put(&self.path(name), data.into())
            .await
            .map(|_| ())
            .map_err(io_error)
    }

    /// Deletes the object; one that is not there is not an error (S3 says nothing either).
    pub async fn remove(&self, name: &str) -> io::Result<()> {
        match self.store.delete(&self.path(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io_error(e)),
        }
    }
}

/// The store's error as an `io::Error`: "not found" as [`io::ErrorKind::NotFound`] (what the
/// readers test for), anything else with its text on one line.
fn io_error(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => {
            io::Error::new(io::ErrorKind::NotFound, "no such object")
        }
        e => io::Error::other(one_line(&e)),
    }
}

/// An error and its sources on one line (the store's errors nest several deep).
fn one_line(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_directories() {
        assert!(is_url(Path::new("s3://b/p")));
        assert!(is_url(Path::new("gs://b/p")));
        assert!(!is_url(Path::new("/var/lib/wal")));
        assert!(!is_url(Path::new("s3")));
        assert!(!is_url(Path::new("/srv/a://b")));
        assert!(!is_url(Path::new("://b")));
    }

    #[test]
    fn bad_urls_are_one_line_errors() {
        let e = ObjStore::open(Path::new("gs://b/p")).unwrap_err();
        assert!(e.contains("only s3:// is supported"), "{e}");
        let e = ObjStore::open(Path::new("s3:///p")).unwrap_err();
        assert!(e.contains("names no bucket"), "{e}");
    }

    #[test]
    fn the_prefix_is_trimmed() {
        let s = ObjStore::open(Path::new("s3://bucket/a/b/")).unwrap();
        assert_eq!(s.url(), Path::new("s3://bucket/a/b"));
        assert_eq!(s.path("x").as_ref(), "a/b/x");
        let s = ObjStore::open(Path::new("s3://bucket")).unwrap();
        assert_eq!(s.path("x").as_ref(), "x");
    }
}
