//! The `alerts` table: one row per compliance alert raised on the ingest stream.
//!
//! ```text
//! <root>/alerts/tenant=<tenant>/dt=<YYYY-MM-DD>/<collector>-a<first fired_at µs>-<seq>.parquet
//! ```
//!
//! Unlike the audit log, alert files are not listed in commit manifests: alerts are a derived,
//! best-effort notification log, not the evidence itself. Each file is written whole by one
//! create-only put (atomic on every object store), so a reader listing `alerts/` never sees a
//! partial file. `dt` is the UTC date the alert fired; `tenant` and `dt` are in the path only
//! (Hive partitioning), like the audit log's `tenant`.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use object_store::{PutMode, PutOptions, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};
use crate::layout::{day_of, escape};
use crate::location::StoreLocation;

/// Directory of the alerts table below the store root.
pub const ALERTS_DIR: &str = "alerts";

/// One alert as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    /// Unique id of the alert (hex).
    pub alert_id: String,
    /// Tenant of the records that triggered it (partition).
    pub tenant: String,
    /// When it fired, µs since the epoch (UTC); its day is the `dt` partition.
    pub fired_at_us: i64,
    /// Name of the rule, as configured.
    pub rule: String,
    /// Kind of the rule (`request_volume`, `latency`, `cel`, …).
    pub kind: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// What the rule counts per (`tenant`, `user`, `service`, `model`).
    pub key_kind: String,
    /// The key's value (the user id, service name, …).
    pub key: String,
    /// The observed value (count, ratio, ms, tokens, USD, …); NULL when the rule has none.
    pub value: Option<f64>,
    /// The threshold it was compared with; NULL when the rule has none.
    pub threshold: Option<f64>,
    /// Human-readable explanation.
    pub message: String,
    /// Ids of the audit records that triggered it.
    pub record_ids: Vec<String>,
    /// Collector that raised it.
    pub collector_id: String,
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let s = |name: &str| Field::new(name, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        s("alert_id"),
        Field::new(
            "fired_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        s("rule"),
        s("kind"),
        s("severity"),
        s("key_kind"),
        s("key"),
        Field::new("value", DataType::Float64, true),
        Field::new("threshold", DataType::Float64, true),
        s("message"),
        Field::new(
            "record_ids",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        ),
        s("collector_id"),
    ]))
});

/// The schema of alert files (`tenant` and `dt` are the partition directories).
pub fn alerts_file_schema() -> SchemaRef {
    SCHEMA.clone()
}

/// Rows → one file batch (same tenant and day expected; not checked).
pub fn alerts_to_batch(rows: &[&AlertRow]) -> Result<RecordBatch> {
    let strings = |f: fn(&AlertRow) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| f(r))))
    };
    let mut ids = ListBuilder::new(StringBuilder::new());
    for r in rows {
        for id in &r.record_ids {
            ids.values().append_value(id);
        }
        ids.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        strings(|r| &r.alert_id),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.fired_at_us))
                .with_timezone("UTC"),
        ),
        strings(|r| &r.rule),
        strings(|r| &r.kind),
        strings(|r| &r.severity),
        strings(|r| &r.key_kind),
        strings(|r| &r.key),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.value))),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.threshold))),
        strings(|r| &r.message),
        Arc::new(ids.finish()),
        strings(|r| &r.collector_id),
    ];
    RecordBatch::try_new(alerts_file_schema(), columns).map_err(Error::parquet)
}

/// Writes `rows` as one file per (tenant, day) with create-only puts; returns the keys
/// written (relative to the store root). `seq` makes names unique within one collector run.
pub async fn write_alerts(
    loc: &StoreLocation,
    collector_id: &str,
    seq: u64,
    rows: &[AlertRow],
) -> Result<Vec<String>> {
    let mut groups: BTreeMap<(&str, String), Vec<&AlertRow>> = BTreeMap::new();
    for r in rows {
        let dt = day_of(r.fired_at_us).format("%Y-%m-%d").to_string();
        groups.entry((&r.tenant, dt)).or_default().push(r);
    }
    let mut keys = Vec::with_capacity(groups.len());
    for (part, ((tenant, dt), group)) in groups.into_iter().enumerate() {
        let first = group.iter().map(|r| r.fired_at_us).min().unwrap_or(0);
        let key = format!(
            "{ALERTS_DIR}/tenant={}/dt={dt}/{}-a{first:020}-{seq:010}-{part:04}.parquet",
            escape(tenant),
            escape(collector_id),
        );
        let bytes = encode(&alerts_to_batch(&group)?)?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        loc.store
            .put_opts(&loc.path(&key), PutPayload::from(bytes), opts)
            .await
            .map_err(|e| Error::object("put", &key, e))?;
        keys.push(key);
    }
    Ok(keys)
}

fn encode(batch: &RecordBatch) -> Result<Vec<u8>> {
    let props = WriterProperties::builder()
        .set_created_by(format!("genai-audit {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).map_err(Error::parquet)?,
        ))
        .build();
    let mut buf = Vec::new();
    let mut w =
        ArrowWriter::try_new(&mut buf, batch.schema(), Some(props)).map_err(Error::parquet)?;
    w.write(batch).map_err(Error::parquet)?;
    w.close().map_err(Error::parquet)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn row(tenant: &str, at: i64) -> AlertRow {
        AlertRow {
            alert_id: format!("a{at}"),
            tenant: tenant.into(),
            fired_at_us: at,
            rule: "r".into(),
            kind: "latency".into(),
            severity: "warning".into(),
            key_kind: "user".into(),
            key: "u1".into(),
            value: Some(31_000.0),
            threshold: Some(30_000.0),
            message: "slow".into(),
            record_ids: vec!["id1".into(), "id2".into()],
            collector_id: "c1".into(),
        }
    }

    #[tokio::test]
    async fn files_per_tenant_and_day_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let loc = StoreLocation::local(dir.path()).unwrap();
        let day = 86_400_000_000i64 * 20_000;
        let rows = [row("a", day + 5), row("a", day + 6), row("b", day + 7)];
        let keys = write_alerts(&loc, "c1", 1, &rows).await.unwrap();
        assert_eq!(keys.len(), 2);
        assert!(
            keys[0].starts_with("alerts/tenant=a/dt=2024-10-04/c1-a"),
            "{keys:?}"
        );
        let bytes = loc.get_bytes(&keys[0]).await.unwrap();
        let batches: Vec<_> = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(batches[0].num_rows(), 2);
        assert_eq!(batches[0].schema(), alerts_file_schema());
        // The same name is never overwritten: a second write with the same seq fails.
        assert!(write_alerts(&loc, "c1", 1, &rows[..1]).await.is_err());
    }
}
