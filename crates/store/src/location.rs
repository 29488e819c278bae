//! Where the store lives: a URL resolved to an `object_store` and a root path inside it.
//!
//! Accepted forms: a plain path (`./genai-audit-data`, `/var/lib/audit`), `file:///abs/path`,
//! `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix` (and the other Azure
//! spellings `object_store` knows). Credentials and endpoints are passed in as options (the
//! binary collects them from the standard environment variables: `AWS_ACCESS_KEY_ID`,
//! `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_NAME`,
//! …); this crate reads no environment itself. Keys that do not belong to the URL's provider are
//! ignored, so all of `AWS_*`, `GOOGLE_*` and `AZURE_*` can be passed as they are.

use std::fmt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, RetryConfig};
use url::Url;

use crate::error::{Error, Result};

/// A resolved store location.
#[derive(Clone)]
pub struct StoreLocation {
    /// The URL as given (for messages).
    display: String,
    /// The object store.
    pub store: Arc<dyn ObjectStore>,
    /// Root path inside the store (the bucket prefix; empty for local disk).
    pub root: Path,
    /// For local stores: the directory (useful for tools and messages).
    pub local_dir: Option<PathBuf>,
}

/// The write-ahead log directory used when none is configured: `_wal` inside a local store (so
/// one directory holds everything), else `./genai-audit-wal` (the WAL must be on local disk).
pub fn default_wal_dir(loc: &StoreLocation) -> PathBuf {
    match &loc.local_dir {
        Some(dir) => dir.join("_wal"),
        None => PathBuf::from("genai-audit-wal"),
    }
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreLocation")
            .field("url", &self.display)
            .field("root", &self.root)
            .finish()
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

impl StoreLocation {
    /// Resolves `url` with `options` (object_store config keys such as `aws_endpoint`,
    /// `aws_allow_http`, lower-case). A local directory is created if missing.
    pub fn open(url: &str, options: &[(String, String)]) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidStoreUrl {
            url: url.to_owned(),
            reason,
        };
        let has_scheme = url.contains("://");
        if !has_scheme || url.starts_with("file://") {
            let dir = if has_scheme {
                Url::parse(url)
                    .map_err(|e| invalid(e.to_string()))?
                    .to_file_path()
                    .map_err(|()| invalid("not an absolute file path".into()))?
            } else {
                PathBuf::from(url)
            };
            return Self::local(&dir).map(|mut loc| {
                loc.display = url.to_owned();
                loc
            });
        }
        let parsed = Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        let store: Arc<dyn ObjectStore> = match parsed.scheme() {
            "s3" | "s3a" => {
                let mut b = AmazonS3Builder::new()
                    .with_url(url)
                    .with_retry(retry_config());
                for (k, v) in options {
                    if let Ok(key) = k.parse::<AmazonS3ConfigKey>() {
                        b = b.with_config(key, v.clone());
                    }
                }
                Arc::new(b.build().map_err(|e| invalid(e.to_string()))?)
            }
            "gs" => {
                let mut b = GoogleCloudStorageBuilder::new()
                    .with_url(url)
                    .with_retry(retry_config());
                for (k, v) in options {
                    if let Ok(key) = k.parse::<GoogleConfigKey>() {
                        b = b.with_config(key, v.clone());
                    }
                }
                Arc::new(b.build().map_err(|e| invalid(e.to_string()))?)
            }
            "az" | "azure" | "abfs" | "abfss" | "adl" => {
                let mut b = MicrosoftAzureBuilder::new()
                    .with_url(url)
                    .with_retry(retry_config());
                for (k, v) in options {
                    if let Ok(key) = k.parse::<AzureConfigKey>() {
                        b = b.with_config(key, v.clone());
                    }
                }
                Arc::new(b.build().map_err(|e| invalid(e.to_string()))?)
            }
            other => {
                return Err(invalid(format!(
                    "unsupported scheme {other:?} (use a path, file://, s3://, gs:// or az://)"
                )));
            }
        };
        let root = Path::from_url_path(parsed.path()).map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            display: url.to_owned(),
            store,
            root,
            local_dir: None,
        })
    }

    /// A store on local disk rooted at `dir` (created if missing).
    pub fn local(dir: &FsPath) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let abs = dir.canonicalize().map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let fs = LocalFileSystem::new_with_prefix(&abs).map_err(|e| Error::InvalidStoreUrl {
            url: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            display: abs.display().to_string(),
            store: Arc::new(fs),
            root: Path::default(),
            local_dir: Some(abs),
        })
    }

    /// Builds a path below the root from `/`-separated parts.
    pub fn path(&self, rel: &str) -> Path {
        let mut p = self.root.clone();
        for part in rel.split('/').filter(|s| !s.is_empty()) {
            p = p.join(part);
        }
        p
    }

    /// Reads a whole object (`key` relative to the root).
    pub async fn get_bytes(&self, key: &str) -> Result<bytes::Bytes> {
        self.get_object(&self.path(key)).await
    }

    /// Reads a whole object by its full path.
    pub async fn get_object(&self, path: &Path) -> Result<bytes::Bytes> {
        let fail = |e| Error::object("get", path.as_ref(), e);
        self.store
            .get(path)
            .await
            .map_err(fail)?
            .bytes()
            .await
            .map_err(fail)
    }

    /// The path relative to the root (what manifests record), `/`-separated.
    pub fn relative(&self, path: &Path) -> String {
        match path.prefix_match(&self.root) {
            Some(parts) => parts
                .map(|p| p.as_ref().to_owned())
                .collect::<Vec<_>>()
                .join("/"),
            None => path.to_string(),
        }
    }
}

/// A few quick retries inside object_store (a dropped connection, a 503), bounded in time: a
/// longer outage must reach the writer, whose own retry loop keeps going, counts errors and
/// applies backpressure, instead of hiding for minutes inside one request.
fn retry_config() -> RetryConfig {
    RetryConfig {
        max_retries: 3,
        retry_timeout: std::time::Duration::from_secs(20),
        ..RetryConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_file_urls_are_local() {
        let dir = tempfile::tempdir().unwrap();
        let plain = StoreLocation::open(dir.path().join("a").to_str().unwrap(), &[]).unwrap();
        assert!(plain.local_dir.is_some());
        let url = format!("file://{}", dir.path().join("b").display());
        let file = StoreLocation::open(&url, &[]).unwrap();
        assert!(file.local_dir.unwrap().ends_with("b"));
    }

    #[test]
    fn s3_urls_keep_their_prefix() {
        let opts = vec![
            ("aws_region".to_owned(), "us-east-1".to_owned()),
            ("aws_endpoint".to_owned(), "http://127.0.0.1:9".to_owned()),
            ("aws_allow_http".to_owned(), "true".to_owned()),
        ];
        let loc = StoreLocation::open("s3://bucket/some/prefix", &opts).unwrap();
        assert_eq!(loc.root.as_ref(), "some/prefix");
        assert_eq!(
            loc.path("audit_log/x.parquet").as_ref(),
            "some/prefix/audit_log/x.parquet"
        );
        assert_eq!(loc.relative(&loc.path("a/b")), "a/b");
    }

    #[test]
    fn bad_urls_say_why() {
        let err = StoreLocation::open("nope://x/y", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope://x/y"), "{err}");
    }
}
