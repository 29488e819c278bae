//! [`ExporterBuilder`]: where the audit log goes and how records are made.

use std::path::{Path, PathBuf};
use std::time::Duration;

use genai_audit_core::normalize::is_valid_tenant;
use genai_audit_core::{HashKey, NormalizerConfig, PriceTable};
use genai_audit_store::integrity::IntegrityKey;
use genai_audit_store::wal::Durability;
use genai_audit_store::{FlushPolicy, StoreLocation, WriterConfig};

use crate::error::{Error, Result};
use crate::exporter::AuditSpanExporter;

/// Longest an export may take by default (it waits for the WAL, not for the object store).
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the final flush at shutdown may take by default (the collector allows the same).
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the store is: a URL resolved at build time, or a location opened by the caller.
#[derive(Debug, Clone)]
enum StoreSpec {
    Url {
        url: String,
        options: Vec<(String, String)>,
    },
    Location(StoreLocation),
}

/// Where the hash key comes from.
#[derive(Debug, Clone)]
enum KeySpec {
    Key(HashKey),
    File(PathBuf),
}

#[derive(Debug, Clone)]
enum IntegritySpec {
    Key(IntegrityKey),
    File(PathBuf),
}

/// Settings of an [`AuditSpanExporter`]; [`ExporterBuilder::build`] opens the store.
///
/// Required: a collector id (unique among all writers of one store: two writers with one id
/// would contend for the same commit numbers) and a hash key (or key file). Everything else
/// has the collector's defaults: store `./genai-audit-data`, WAL `_wal` inside a local store,
/// fsync'ed appends, flush at 500 000 rows / 256 MiB / 60 s.
#[derive(Debug, Clone)]
pub struct ExporterBuilder {
    store: StoreSpec,
    wal_dir: Option<PathBuf>,
    collector_id: Option<String>,
    tenant: Option<String>,
    key: Option<KeySpec>,
    integrity: Option<IntegritySpec>,
    normalizer: NormalizerConfig,
    prices: Option<PriceTable>,
    durability: Durability,
    wal_max_bytes: Option<u64>,
    flush: FlushPolicy,
    export_timeout: Duration,
    shutdown_timeout: Duration,
}

impl Default for ExporterBuilder {
    fn default() -> Self {
        Self {
            store: StoreSpec::Url {
                url: "./genai-audit-data".to_owned(),
                options: Vec::new(),
            },
            wal_dir: None,
            collector_id: None,
            tenant: None,
            key: None,
            integrity: None,
            normalizer: NormalizerConfig::default(),
            prices: None,
            durability: Durability::Fsync,
            wal_max_bytes: None,
            flush: FlushPolicy::default(),
            export_timeout: DEFAULT_EXPORT_TIMEOUT,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }
}

impl ExporterBuilder {
    /// The store URL: a directory, `file://`, `s3://`, `gs://` or `az://` (as `genai-audit
    /// serve` takes it). `options` are `object_store` configuration keys, lower-case
    /// (`aws_endpoint`, `aws_region`, …); this crate reads no environment, so pass credentials
    /// here or let the cloud SDK's defaults (instance roles) apply.
    pub fn with_store_url(
        mut self,
        url: impl Into<String>,
        options: Vec<(String, String)>,
    ) -> Self {
        self.store = StoreSpec::Url {
            url: url.into(),
            options,
        };
        self
    }

    /// A store location the caller already opened.
    pub fn with_store_location(mut self, loc: StoreLocation) -> Self {
        self.store = StoreSpec::Location(loc);
        self
    }

    /// Directory of the write-ahead log, on local disk (default: `_wal` inside a local store,
    /// else `./genai-audit-wal`). Keep it across restarts: what was acknowledged but not yet
    /// committed is replayed from it.
    pub fn with_wal_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.wal_dir = Some(dir.into());
        self
    }

    /// Id of this writer, unique among the collectors and exporters writing to one store
    /// (1-64 characters of `A-Z a-z 0-9 . _ -`); it names files and commits. Required.
    pub fn with_collector_id(mut self, id: impl Into<String>) -> Self {
        self.collector_id = Some(id.into());
        self
    }

    /// Fixes the tenant of every record (as an authenticated collector does). Without it the
    /// tenant comes from the resource attribute `tenant.id` (see
    /// [`ExporterBuilder::with_normalizer_config`]), else `default`.
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// The content hash key (share it with the collectors of the same store, so `audit_hash()`
    /// works across them).
    pub fn with_hash_key(mut self, key: HashKey) -> Self {
        self.key = Some(KeySpec::Key(key));
        self
    }

    /// A file holding the content hash key as hex, created with a random key and mode 0600 if
    /// absent (the same file format and rules as `genai-audit serve`'s `hash.key_file`).
    pub fn with_hash_key_file(mut self, path: impl AsRef<Path>) -> Self {
        self.key = Some(KeySpec::File(path.as_ref().to_path_buf()));
        self
    }

    /// The price table for the cost columns (default: the shipped table; for contract prices,
    /// `PriceTable::embedded().with_overrides(yours)`).
    pub fn with_prices(mut self, prices: PriceTable) -> Self {
        self.prices = Some(prices);
        self
    }

    /// Tenant attribute, default tenant, classification and retention rules (the prices set by
    /// [`ExporterBuilder::with_prices`] take precedence over the ones in `config`).
    pub fn with_normalizer_config(mut self, config: NormalizerConfig) -> Self {
        self.normalizer = config;
        self
    }

    /// When an export is acknowledged: after `fdatasync` (default) or after `write(2)` only.
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// WAL disk budget in bytes; past it (the object store has been down for long), exports
    /// fail after retrying until the export timeout, and the SDK drops those spans.
    pub fn with_wal_max_bytes(mut self, bytes: u64) -> Self {
        self.wal_max_bytes = Some(bytes);
        self
    }

    /// When buffered records become Parquet files (rows, bytes, age, rows per file).
    pub fn with_flush_policy(mut self, flush: FlushPolicy) -> Self {
        self.flush = flush;
        self
    }

    /// Longest one export may take (default 10 s). An export waits only for the local WAL,
    /// and for the WAL to make room when it is at its budget; never for the object store.
    pub fn with_export_timeout(mut self, timeout: Duration) -> Self {
        self.export_timeout = timeout;
        self
    }

    /// Longest the final flush at shutdown may take (default 30 s) before it gives up and
    /// leaves the rest in the WAL for the next start.
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Sign an integrity checkpoint with this Ed25519 key after the final flush of
    /// [`ExporterHandle::shutdown`](crate::ExporterHandle::shutdown), as `genai-audit serve` does
    /// (docs/integrity.md). Without a key (this or [`Self::with_integrity_key_file`]) the
    /// exporter's commits are listed but unsigned, and `genai-audit verify` reports them pending.
    pub fn with_integrity_key(mut self, key: IntegrityKey) -> Self {
        self.integrity = Some(IntegritySpec::Key(key));
        self
    }

    /// The integrity key in a file (the collector's format, hex; created with mode 0600 and its
    /// public key written beside it as `<file>.pub` when absent).
    pub fn with_integrity_key_file(mut self, path: impl AsRef<Path>) -> Self {
        self.integrity = Some(IntegritySpec::File(path.as_ref().to_path_buf()));
        self
    }

    /// Validates the settings, loads the hash key, starts the exporter's runtime (one worker
    /// thread) and opens the store, replaying what an earlier run left in the WAL.
    ///
    /// Blocks until the store is open. Callable from inside or outside an async runtime.
    pub fn build(self) -> Result<AuditSpanExporter> {
        let collector_id = self.collector_id.ok_or(Error::InvalidConfig {
            setting: "with_collector_id",
            reason: "required: an id unique among the writers of this store".into(),
        })?;
        if let Some(t) = &self.tenant
            && !is_valid_tenant(t)
        {
            return Err(Error::InvalidConfig {
                setting: "with_tenant",
                reason: format!(
                    "{t:?} is not a valid tenant (1-64 characters of A-Z a-z 0-9 . _ -, not starting with '.')"
                ),
            });
        }
        if self.export_timeout.is_zero() {
            return Err(Error::InvalidConfig {
                setting: "with_export_timeout",
                reason: "must be more than zero".into(),
            });
        }
        let key = match self.key {
            Some(KeySpec::Key(k)) => k,
            Some(KeySpec::File(path)) => genai_audit_store::keys::load_or_create_hash_key(&path)?,
            None => {
                return Err(Error::InvalidConfig {
                    setting: "with_hash_key",
                    reason: "required: with_hash_key or with_hash_key_file (share the \
                             collector's key so audit_hash() matches across writers)"
                        .into(),
                });
            }
        };
        let integrity_key = match self.integrity {
            Some(IntegritySpec::Key(k)) => Some(k),
            Some(IntegritySpec::File(path)) => Some(IntegrityKey::load_or_create(&path)?),
            None => None,
        };
        let loc = match self.store {
            StoreSpec::Url { url, options } => StoreLocation::open(&url, &options)?,
            StoreSpec::Location(loc) => loc,
        };
        let wal_dir = self
            .wal_dir
            .unwrap_or_else(|| genai_audit_store::location::default_wal_dir(&loc));
        let mut normalizer = self.normalizer;
        if let Some(p) = self.prices {
            normalizer.prices = std::sync::Arc::new(p);
        }
        let normalizer = genai_audit_core::Normalizer::new(normalizer, key);
        let mut wcfg = WriterConfig::new(&collector_id, wal_dir);
        wcfg.durability = self.durability;
        if let Some(b) = self.wal_max_bytes {
            wcfg.wal_max_bytes = b;
        }
        wcfg.flush = self.flush;
        wcfg.normalizer = Some(normalizer.clone());
        AuditSpanExporter::open(
            loc,
            wcfg,
            normalizer,
            crate::exporter::Settings {
                tenant: self.tenant,
                export_timeout: self.export_timeout,
                shutdown_timeout: self.shutdown_timeout,
                integrity_key,
            },
        )
    }
}
