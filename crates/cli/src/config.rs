//! Configuration of `genai-audit serve`: embedded defaults, then a TOML file, then
//! `GENAI_AUDIT_<SECTION>_<KEY>` environment variables, then command-line flags.
//!
//! Every key is documented in `config/genai-audit.example.toml`, which is embedded: the names of
//! the environment overrides are derived from it (`receiver.grpc.listen` →
//! `GENAI_AUDIT_RECEIVER_GRPC_LISTEN`), so a documented key is always overridable and an
//! undocumented one never silently is. A test keeps the example parseable and complete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use genai_audit_core::RetentionPolicy;
use genai_audit_core::classify::ClassificationConfig;
use genai_audit_receiver::ReceiverConfig;
use serde::Deserialize;

/// The documented example configuration (every key, with its default).
pub const EXAMPLE: &str = include_str!("../../../config/genai-audit.example.toml");

/// Variables with the prefix that are not config keys.
const RESERVED_ENV: &[&str] = &[
    "GENAI_AUDIT_HASH_KEY",
    "GENAI_AUDIT_INTEGRITY_KEY",
    "GENAI_AUDIT_LOG",
    "GENAI_AUDIT_STORE_URL",
];

/// Everything `serve` can be told.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Unique id of this collector among those writing to one store (file names, commits).
    pub collector_id: Option<String>,
    /// Where the audit log is written.
    pub store: StoreSection,
    /// The write-ahead log.
    pub wal: WalSection,
    /// When buffered records become Parquet files.
    pub flush: FlushSection,
    /// The OTLP receiver.
    pub receiver: ReceiverConfig,
    /// Normalization of spans.
    pub normalize: NormalizeSection,
    /// PII type → data classification.
    pub classification: ClassificationConfig,
    /// Retention policy stamped on records.
    pub retention: RetentionPolicy,
    /// Retention and erasure runs (`retention apply`, `erase`).
    pub maintenance: MaintenanceSection,
    /// The content hash key.
    pub hash: HashSection,
    /// Signed integrity checkpoints.
    pub integrity: IntegritySection,
    /// The admin endpoint (metrics, health).
    pub admin: AdminSection,
    /// Logging.
    pub log: LogSection,
    /// Compliance alerts on the ingest stream.
    pub alerts: genai_audit_alerts::AlertsConfig,
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// Store URL: a directory, `file://`, `s3://`, `gs://` or `az://`.
    pub url: String,
}

impl Default for StoreSection {
    fn default() -> Self {
        Self {
            url: crate::store::DEFAULT_STORE.to_owned(),
        }
    }
}

/// `[wal]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalSection {
    /// Directory on local disk (default: `_wal` inside a local store, else `./genai-audit-wal`).
    pub dir: Option<PathBuf>,
    /// `fsync` (acknowledge after fdatasync) or `os` (after write(2) only).
    pub durability: String,
    /// Disk budget in bytes; past it, clients are told to retry later.
    pub max_bytes: u64,
}

impl Default for WalSection {
    fn default() -> Self {
        Self {
            dir: None,
            durability: "fsync".to_owned(),
            max_bytes: 1 << 30,
        }
    }
}

/// `[flush]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlushSection {
    /// Flush at this many buffered records.
    pub max_rows: usize,
    /// Flush when the buffered records take this much memory (Arrow arrays, exact).
    pub max_bytes: usize,
    /// Flush records at the latest this many seconds after the oldest arrived.
    pub max_age_secs: u64,
    /// At most this many rows per Parquet file.
    pub max_file_rows: usize,
}

impl Default for FlushSection {
    fn default() -> Self {
        let p = genai_audit_store::FlushPolicy::default();
        Self {
            max_rows: p.max_rows,
            max_bytes: p.max_bytes,
            max_age_secs: p.max_age.as_secs(),
            max_file_rows: p.max_file_rows,
        }
    }
}

/// `[normalize]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NormalizeSection {
    /// Resource attribute naming the tenant (when auth does not).
    pub tenant_attribute: String,
    /// Tenant of spans that name none.
    pub default_tenant: String,
    /// Your contract prices, applied over the shipped table.
    pub prices_file: Option<PathBuf>,
}

impl Default for NormalizeSection {
    fn default() -> Self {
        Self {
            tenant_attribute: "tenant.id".to_owned(),
            default_tenant: "default".to_owned(),
            prices_file: None,
        }
    }
}

/// `[maintenance]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaintenanceSection {
    /// Collector id the retention and erasure commits are made as.
    pub collector_id: String,
    /// Files one run deletes or rewrites at most.
    pub max_files: usize,
    /// `serve` applies retention every this many seconds (0: never; `retention apply` then has
    /// to run from a scheduler).
    pub retention_interval_secs: u64,
}

impl Default for MaintenanceSection {
    fn default() -> Self {
        Self {
            collector_id: genai_audit_store::maintenance::DEFAULT_COLLECTOR_ID.to_owned(),
            max_files: genai_audit_store::maintenance::DEFAULT_MAX_FILES,
            retention_interval_secs: 0,
        }
    }
}

/// `[hash]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HashSection {
    /// File holding the key (created with mode 0600 if absent).
    pub key_file: PathBuf,
}

impl Default for HashSection {
    fn default() -> Self {
        Self {
            key_file: PathBuf::from(crate::DEFAULT_HASH_KEY_FILE),
        }
    }
}

/// `[integrity]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntegritySection {
    /// File holding the Ed25519 checkpoint signing key (created with mode 0600 if absent, its
    /// public key written beside it as `<file>.pub`).
    pub key_file: PathBuf,
    /// Seconds between checkpoints, published also when nothing was written.
    pub checkpoint_interval_secs: u64,
}

impl Default for IntegritySection {
    fn default() -> Self {
        Self {
            key_file: PathBuf::from(crate::integrity::DEFAULT_INTEGRITY_KEY_FILE),
            checkpoint_interval_secs: 300,
        }
    }
}

/// Longest interval between checkpoints: a day.
const MAX_CHECKPOINT_INTERVAL_SECS: u64 = 86_400;
/// Longest scheduled-retention interval: 30 days.
const MAX_RETENTION_INTERVAL_SECS: u64 = 30 * 86_400;

/// `[admin]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    /// `IP:port` of `/metrics`, `/healthz`, `/readyz`; empty turns it off.
    pub listen: String,
}

impl Default for AdminSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".to_owned(),
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// Filter in `tracing` syntax (`info`, `genai_audit_store=debug,info`).
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
        }
    }
}

impl Config {
    /// Loads the file (if any) and applies `env` overrides. Errors name the key and the reason.
    pub fn load(file: Option<&Path>, env: &BTreeMap<String, String>) -> Result<Self> {
        let mut table: toml::Table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("in the config file {}", path.display()))?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut table, env)?;
        let mut cfg: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("invalid configuration: {e}"))?;
        cfg.receiver.collector_id = cfg.collector_id();
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what serde cannot: values, not just types.
    pub fn validate(&self) -> Result<()> {
        self.durability()?;
        if let Some(id) = &self.collector_id
            && !genai_audit_store::layout::valid_collector_id(id)
        {
            bail!(
                "invalid configuration `collector_id`: {id:?} must be 1-64 characters of A-Z a-z 0-9 . _ -"
            );
        }
        if self.flush.max_rows == 0 || self.flush.max_file_rows == 0 || self.flush.max_age_secs == 0
        {
            bail!(
                "invalid configuration `flush`: max_rows, max_file_rows and max_age_secs must be positive"
            );
        }
        if !genai_audit_store::layout::valid_collector_id(&self.maintenance.collector_id) {
            bail!(
                "invalid configuration `maintenance.collector_id`: {:?} must be 1-64 characters of A-Z a-z 0-9 . _ -",
                self.maintenance.collector_id
            );
        }
        if self.maintenance.max_files == 0 {
            bail!("invalid configuration `maintenance.max_files`: must be positive");
        }
        if self.maintenance.retention_interval_secs > MAX_RETENTION_INTERVAL_SECS {
            bail!(
                "invalid configuration `maintenance.retention_interval_secs`: 0 (off) or 1 to {MAX_RETENTION_INTERVAL_SECS} seconds, got {}",
                self.maintenance.retention_interval_secs
            );
        }
        if !(1..=MAX_CHECKPOINT_INTERVAL_SECS).contains(&self.integrity.checkpoint_interval_secs) {
            bail!(
                "invalid configuration `integrity.checkpoint_interval_secs`: 1 to {MAX_CHECKPOINT_INTERVAL_SECS} seconds, got {}",
                self.integrity.checkpoint_interval_secs
            );
        }
        if self.wal.max_bytes < 1 << 20 {
            bail!(
                "invalid configuration `wal.max_bytes`: at least 1 MiB, got {}",
                self.wal.max_bytes
            );
        }
        if !genai_audit_core::normalize::is_valid_tenant(&self.normalize.default_tenant) {
            bail!(
                "invalid configuration `normalize.default_tenant`: {:?} is not a valid tenant",
                self.normalize.default_tenant
            );
        }
        genai_audit_core::ClassificationRules::from_config(&self.classification)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        self.receiver
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        self.alerts.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        if !self.admin.listen.is_empty() {
            self.admin
                .listen
                .parse::<std::net::SocketAddr>()
                .map_err(|e| {
                    anyhow::anyhow!(
                        "invalid configuration `admin.listen`: {:?}: {e}",
                        self.admin.listen
                    )
                })?;
        }
        Ok(())
    }

    /// This collector's id: as configured, else `collector-<host name>`.
    pub fn collector_id(&self) -> String {
        if let Some(id) = &self.collector_id {
            return id.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_default();
        let host: String = host
            .trim()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .take(50)
            .collect();
        if host.is_empty() {
            "collector".to_owned()
        } else {
            format!("collector-{host}")
        }
    }

    /// The WAL durability mode.
    pub fn durability(&self) -> Result<genai_audit_store::wal::Durability> {
        match self.wal.durability.as_str() {
            "fsync" => Ok(genai_audit_store::wal::Durability::Fsync),
            "os" => Ok(genai_audit_store::wal::Durability::Os),
            other => {
                bail!("invalid configuration `wal.durability`: {other:?} (use \"fsync\" or \"os\")")
            }
        }
    }

    /// The flush policy.
    pub fn flush_policy(&self) -> genai_audit_store::FlushPolicy {
        genai_audit_store::FlushPolicy {
            max_rows: self.flush.max_rows,
            max_bytes: self.flush.max_bytes,
            max_age: Duration::from_secs(self.flush.max_age_secs),
            max_file_rows: self.flush.max_file_rows,
        }
    }
}

/// Environment variable name → (key path, example value giving its type), from the example.
fn env_keys() -> Result<BTreeMap<String, (Vec<String>, toml::Value)>> {
    let example: toml::Table = toml::from_str(EXAMPLE).context("the embedded example config")?;
    let mut out = BTreeMap::new();
    fn walk(
        table: &toml::Table,
        path: &mut Vec<String>,
        out: &mut BTreeMap<String, (Vec<String>, toml::Value)>,
    ) {
        for (k, v) in table {
            path.push(k.clone());
            match v {
                toml::Value::Table(t) => walk(t, path, out),
                // Arrays of tables (auth tokens) cannot be spelled as one variable.
                toml::Value::Array(a) if a.iter().any(toml::Value::is_table) => {}
                _ => {
                    let name = format!("GENAI_AUDIT_{}", path.join("_").to_ascii_uppercase());
                    out.insert(name, (path.clone(), v.clone()));
                }
            }
            path.pop();
        }
    }
    walk(&example, &mut Vec::new(), &mut out);
    // Optional keys have no default, so the example shows them commented out:
    // `# key = value` under their `[section]`.
    // `None` inside a commented-out array of tables (`# [[receiver.auth.tokens]]`), whose keys
    // cannot be set by a variable.
    let mut section: Option<Vec<String>> = Some(Vec::new());
    for line in EXAMPLE.lines() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(header.split('.').map(str::to_owned).collect());
        } else if line.starts_with("# [[") {
            section = None;
        } else if let Some(section) = &section
            && let Some(rest) = line.strip_prefix("# ")
            && let Some((key, value)) = rest.split_once(" = ")
            && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            && let Ok(v) = toml::from_str::<toml::Table>(&format!("v = {value}"))
            && let Some(v) = v.get("v")
        {
            let mut path = section.clone();
            path.push(key.to_owned());
            let name = format!("GENAI_AUDIT_{}", path.join("_").to_ascii_uppercase());
            out.entry(name).or_insert((path, v.clone()));
        }
    }
    Ok(out)
}

fn apply_env(table: &mut toml::Table, env: &BTreeMap<String, String>) -> Result<()> {
    let keys = env_keys()?;
    for (name, raw) in env {
        if !name.starts_with("GENAI_AUDIT_") || RESERVED_ENV.contains(&name.as_str()) {
            continue;
        }
        let Some((path, example)) = keys.get(name) else {
            bail!(
                "unknown environment variable {name}: not a configuration key (see config/genai-audit.example.toml)"
            );
        };
        let value = match example {
            toml::Value::Integer(_) => raw
                .trim()
                .parse::<i64>()
                .map(toml::Value::Integer)
                .with_context(|| format!("{name}={raw:?}: expected an integer"))?,
            toml::Value::Float(_) => raw
                .trim()
                .parse::<f64>()
                .map(toml::Value::Float)
                .with_context(|| format!("{name}={raw:?}: expected a number"))?,
            toml::Value::Boolean(_) => raw
                .trim()
                .parse::<bool>()
                .map(toml::Value::Boolean)
                .with_context(|| format!("{name}={raw:?}: expected true or false"))?,
            toml::Value::Array(_) => toml::Value::Array(
                raw.split(',')
                    .map(|s| toml::Value::String(s.trim().to_owned()))
                    .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
                    .collect(),
            ),
            _ => toml::Value::String(raw.clone()),
        };
        let (last, parents) = path.split_last().context("empty key path")?;
        let mut t = &mut *table;
        for p in parents {
            t = t
                .entry(p.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .with_context(|| format!("{name}: `{p}` is not a table in the config file"))?;
        }
        t.insert(last.clone(), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_parses_and_matches_the_defaults() {
        let mut example: Config = toml::from_str(EXAMPLE).unwrap();
        example.receiver.collector_id = example.collector_id();
        example.validate().unwrap();
        let default = Config::default();
        assert_eq!(example.store.url, default.store.url);
        assert_eq!(example.wal.max_bytes, default.wal.max_bytes);
        assert_eq!(example.flush.max_rows, default.flush.max_rows);
        assert_eq!(example.flush.max_bytes, default.flush.max_bytes);
        assert_eq!(example.admin.listen, default.admin.listen);
        assert_eq!(example.maintenance.max_files, default.maintenance.max_files);
        assert_eq!(
            example.maintenance.collector_id,
            default.maintenance.collector_id
        );
        assert_eq!(example.integrity.key_file, default.integrity.key_file);
        assert_eq!(
            example.integrity.checkpoint_interval_secs,
            default.integrity.checkpoint_interval_secs
        );
        assert_eq!(example.receiver.grpc.listen, default.receiver.grpc.listen);
        assert_eq!(
            example.receiver.max_request_bytes,
            default.receiver.max_request_bytes
        );
    }

    #[test]
    fn docs_configuration_md_lists_every_key() {
        let doc = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md"),
        )
        .unwrap();
        for (_, (path, _)) in env_keys().unwrap() {
            let key = path.join(".");
            // Map entries (`retention.tenants.<tenant>`) are documented by their parent.
            let documented = doc.contains(&format!("`{key}`"))
                || path.len() > 2 && doc.contains(&format!("`{}.", path[..2].join(".")));
            assert!(
                documented,
                "docs/configuration.md does not document `{key}`"
            );
        }
    }

    #[test]
    fn env_overrides_by_documented_key() {
        let env = BTreeMap::from([
            (
                "GENAI_AUDIT_RECEIVER_GRPC_LISTEN".to_owned(),
                "127.0.0.1:0".to_owned(),
            ),
            ("GENAI_AUDIT_FLUSH_MAX_ROWS".to_owned(), "10".to_owned()),
            ("GENAI_AUDIT_WAL_DURABILITY".to_owned(), "os".to_owned()),
            ("GENAI_AUDIT_HASH_KEY".to_owned(), "ignored here".to_owned()),
        ]);
        let cfg = Config::load(None, &env).unwrap();
        assert_eq!(cfg.receiver.grpc.listen, "127.0.0.1:0");
        assert_eq!(cfg.flush.max_rows, 10);
        assert_eq!(cfg.wal.durability, "os");
    }

    #[test]
    fn errors_name_the_key() {
        let bad = |k: &str, v: &str| {
            let env = BTreeMap::from([(k.to_owned(), v.to_owned())]);
            format!("{:#}", Config::load(None, &env).unwrap_err())
        };
        assert!(bad("GENAI_AUDIT_FLUSH_MAX_ROWS", "lots").contains("GENAI_AUDIT_FLUSH_MAX_ROWS"));
        assert!(bad("GENAI_AUDIT_WAL_DURABILITY", "maybe").contains("wal.durability"));
        assert!(
            bad("GENAI_AUDIT_NOPE", "1").contains("unknown environment variable GENAI_AUDIT_NOPE")
        );
        assert!(bad("GENAI_AUDIT_ADMIN_LISTEN", "here").contains("admin.listen"));
        assert!(bad("GENAI_AUDIT_MAINTENANCE_MAX_FILES", "0").contains("maintenance.max_files"));
        assert!(
            bad("GENAI_AUDIT_MAINTENANCE_COLLECTOR_ID", "a/b").contains("maintenance.collector_id")
        );
        for v in ["-1", "2592001", "daily"] {
            let err = bad("GENAI_AUDIT_MAINTENANCE_RETENTION_INTERVAL_SECS", v);
            assert!(
                err.contains("maintenance.retention_interval_secs")
                    || err.contains("GENAI_AUDIT_MAINTENANCE_RETENTION_INTERVAL_SECS"),
                "{err}"
            );
        }
        for v in ["0", "86401"] {
            let err = bad("GENAI_AUDIT_INTEGRITY_CHECKPOINT_INTERVAL_SECS", v);
            assert!(err.contains("integrity.checkpoint_interval_secs"), "{err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[flush]\nmax_rowz = 3\n").unwrap();
        let err = format!(
            "{:#}",
            Config::load(Some(&file), &BTreeMap::new()).unwrap_err()
        );
        assert!(err.contains("max_rowz"), "{err}");
    }
}
