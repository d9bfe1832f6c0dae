//! Object storage selected with `--store URL`: the one handle through which
//! the log writes its static read path, its write-ahead segments and (when
//! configured) its artifacts to a bucket, backed by the `object_store`
//! crate so S3, anything S3-compatible (Garage, MinIO, Ceph RGW, R2) and a
//! local directory all behave the same.
//!
//! One store holds three trees under its prefix, kept apart so that an
//! operator can expose exactly one of them:
//! - [`READ_PATH`]`/`: `checkpoint` and `tile/...` in C2SP tlog-tiles layout,
//!   meant to be served as static files (a CDN, a static web server);
//! - [`WAL`]`/`: batches of entries not yet covered by a checkpoint in the
//!   bucket (recovery point zero, see [`crate::wal`]); private;
//! - [`ARTIFACTS`]`/`: model artifacts by digest; private (they are served
//!   only after a durable access entry).
//!
//! URLs: `file:///abs/dir` and `s3://bucket[/prefix]`. For S3 the
//! endpoint, region and credentials come from the standard `AWS_*`
//! environment variables (`AWS_ENDPOINT_URL`, `AWS_REGION`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), so
//! no secret ever appears on a command line; an `http://` endpoint is
//! allowed because the operator named it.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{Attribute, Attributes, ObjectStore, PutMode, PutOptions, PutPayload};

/// Tree of the static tlog-tiles read path.
pub const READ_PATH: &str = "log";
/// Tree of the write-ahead segments (recovery point zero).
pub const WAL: &str = "wal";
/// Tree of the artifacts.
pub const ARTIFACTS: &str = "artifacts";

/// Why a bucket operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    /// `--store` is not a URL this build can open.
    #[error("--store {url}: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The object store refused or failed a request.
    #[error("object store {url}: {source}")]
    Store {
        /// The store's URL.
        url: String,
        /// Cause.
        source: object_store::Error,
    },
    /// An object is larger than the reader accepts (a hostile or corrupt
    /// bucket cannot make the log allocate without bound).
    #[error("object {path} is larger than {cap} bytes")]
    TooLarge {
        /// Object path.
        path: String,
        /// Cap in bytes.
        cap: u64,
    },
}

/// How an object may be cached by whoever serves it: full tiles never
/// change, the checkpoint does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// `Cache-Control: public, max-age=31536000, immutable`.
    Immutable,
    /// `Cache-Control: no-cache`.
    Revalidate,
    /// Private objects: no header.
    Private,
}

/// An opened `--store`.
#[derive(Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    url: String,
    /// The backend keeps object attributes (content type, cache control);
    /// the local file system does not.
    attributes: bool,
}

impl fmt::Debug for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bucket").field("url", &self.url).finish()
    }
}

impl Bucket {
    /// Opens `url` (see the module docs). A `file://` directory is created
    /// if missing. Nothing is requested from an S3 store yet: the first
    /// write or read reports an unreachable endpoint or bad credentials.
    pub fn open(url: &str) -> Result<Self, BucketError> {
        let bad = |reason: &str| BucketError::Url { url: url.to_owned(), reason: reason.to_owned() };
        if let Some(dir) = url.strip_prefix("file://") {
            if !dir.starts_with('/') {
                return Err(bad("a file:// store needs an absolute path (file:///dir)"));
            }
            std::fs::create_dir_all(dir).map_err(|e| bad(&format!("cannot create {dir}: {e}")))?;
            let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| bad(&e.to_string()))?;
            return Ok(Bucket {
                store: Arc::new(fs),
                prefix: String::new(),
                url: url.to_owned(),
                attributes: false,
            });
        }
        let Some(rest) = url.strip_prefix("s3://") else {
            return Err(bad("expected file:///dir or s3://bucket[/prefix]"));
        };
        let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if name.is_empty() {
            return Err(bad("no bucket name"));
        }
        let prefix = prefix.trim_matches('/').to_owned();
        if prefix.split('/').any(|c| c == "." || c == "..") {
            return Err(bad("the prefix may not contain . or .."));
        }
        let s3 = s3_builder(name).build().map_err(|e| bad(&e.to_string()))?;
        Ok(Bucket { store: Arc::new(s3), prefix, url: url.to_owned(), attributes: true })
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The underlying store, for streaming reads and multipart uploads.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The object path of `rel` (`tree/...`) under the store's prefix.
    pub fn path(&self, rel: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(rel)
        } else {
            ObjectPath::from(format!("{}/{rel}", self.prefix))
        }
    }

    fn err(&self, source: object_store::Error) -> BucketError {
        BucketError::Store { url: self.url.clone(), source }
    }

    /// Writes `bytes` at `rel`, replacing any object there (every caller
    /// writes deterministic content, or content meant to replace).
    pub async fn put(
        &self,
        rel: &str,
        bytes: Vec<u8>,
        content_type: &str,
        caching: Caching,
    ) -> Result<(), BucketError> {
        let mut attributes = Attributes::new();
        if self.attributes {
            attributes.insert(Attribute::ContentType, content_type.to_owned().into());
            match caching {
                Caching::Immutable => {
                    attributes.insert(Attribute::CacheControl, "public, max-age=31536000, immutable".into());
                }
                Caching::Revalidate => {
                    attributes.insert(Attribute::CacheControl, "no-cache".into());
                }
                Caching::Private => {}
            }
        }
        let opts = PutOptions { mode: PutMode::Overwrite, attributes, ..PutOptions::default() };
        self.store.put_opts(&self.path(rel), PutPayload::from(bytes), opts).await.map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The object at `rel`, `None` if absent, refused beyond `cap` bytes.
    pub async fn get(&self, rel: &str, cap: u64) -> Result<Option<Bytes>, BucketError> {
        let path = self.path(rel);
        let got = match self.store.get(&path).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        if got.meta.size > cap {
            return Err(BucketError::TooLarge { path: path.to_string(), cap });
        }
        Ok(Some(got.bytes().await.map_err(|e| self.err(e))?))
    }

    /// Deletes `rel`; absent is not an error.
    pub async fn delete(&self, rel: &str) -> Result<(), BucketError> {
        match self.store.delete(&self.path(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Names (relative to the store's prefix) of every object under `rel/`.
    pub async fn list(&self, rel: &str) -> Result<Vec<String>, BucketError> {
        let base = self.path(rel);
        let strip = if self.prefix.is_empty() { 0 } else { self.prefix.len() + 1 };
        let mut names = Vec::new();
        let mut stream = self.store.list(Some(&base));
        while let Some(meta) = stream.next().await {
            let meta = meta.map_err(|e| self.err(e))?;
            let full = meta.location.to_string();
            names.push(full.get(strip..).unwrap_or_default().to_owned());
        }
        names.sort_unstable();
        Ok(names)
    }
}

impl Bucket {
    /// The S3 client of an `s3://` store, built as [`Bucket::open`] built
    /// it (for presigning URLs, which needs the concrete type); `None` for
    /// a `file://` store.
    pub fn s3(&self) -> Result<Option<AmazonS3>, BucketError> {
        let Some(rest) = self.url.strip_prefix("s3://") else { return Ok(None) };
        let name = rest.split_once('/').map_or(rest, |(name, _)| name);
        let bad = |reason: String| BucketError::Url { url: self.url.clone(), reason };
        s3_builder(name).build().map(Some).map_err(|e| bad(e.to_string()))
    }
}

/// An S3 client of bucket `name` configured from the `AWS_*` environment.
fn s3_builder(name: &str) -> AmazonS3Builder {
    let builder = AmazonS3Builder::from_env().with_bucket_name(name);
    let endpoint = std::env::var("AWS_ENDPOINT_URL").or_else(|_| std::env::var("AWS_ENDPOINT"));
    if endpoint.is_ok_and(|e| e.starts_with("http://")) {
        return builder.with_allow_http(true);
    }
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_urls_it_cannot_open() {
        for url in ["", "/tmp/x", "file://relative", "s3://", "gs://b/p", "s3://b/a/../c"] {
            assert!(matches!(Bucket::open(url), Err(BucketError::Url { .. })), "{url}");
        }
    }

    #[tokio::test]
    async fn a_file_store_round_trips_lists_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().join("b").display());
        let b = Bucket::open(&url).unwrap();
        assert_eq!(b.get("log/checkpoint", 10).await.unwrap(), None);
        b.put("log/checkpoint", b"one".to_vec(), "text/plain", Caching::Revalidate).await.unwrap();
        b.put("log/tile/0/000", vec![7; 32], "application/octet-stream", Caching::Immutable).await.unwrap();
        b.put("log/checkpoint", b"two".to_vec(), "text/plain", Caching::Revalidate).await.unwrap();
        assert_eq!(b.get("log/checkpoint", 10).await.unwrap().as_deref(), Some(&b"two"[..]));
        assert!(matches!(b.get("log/tile/0/000", 31).await, Err(BucketError::TooLarge { .. })));
        assert_eq!(b.list("log").await.unwrap(), vec!["log/checkpoint", "log/tile/0/000"]);
        // The layout on disk is the tlog-tiles layout a static server needs.
        assert_eq!(std::fs::read(dir.path().join("b/log/checkpoint")).unwrap(), b"two");
        b.delete("log/checkpoint").await.unwrap();
        b.delete("log/checkpoint").await.unwrap();
        assert_eq!(b.list("log").await.unwrap(), vec!["log/tile/0/000"]);
    }
}
