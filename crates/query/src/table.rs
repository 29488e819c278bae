//! The `audit_log` table: exactly the committed files, pruned by the manifest's statistics.
//!
//! A [`ListingTable`](datafusion::datasource::listing::ListingTable) would list the directory and
//! so see files that are written but not committed (or removed by compaction and not yet
//! deleted). This provider scans the explicit file list of the last manifest snapshot instead,
//! with what the manifest knows of each file handed to DataFusion:
//!
//! - partition values `tenant` (Utf8) and `dt` (Date32) from the commit, not parsed from paths;
//! - row count and min/max `start_time` as exact file statistics, so `count(*)` needs no I/O and
//!   the Parquet opener can skip a file by its statistics too;
//! - file pruning at planning time: each filter is turned into a DataFusion
//!   [`PruningPredicate`] evaluated against one "container" per file whose min/max are the
//!   manifest's `start_time` range and the file's `tenant`/`dt`. A `start_time` range therefore
//!   prunes days without the auditor writing a `dt` filter, and the pruned files never appear in
//!   the plan (`EXPLAIN` shows only the files left).
//!
//! Row groups, pages and bloom filters inside the files left are pruned by the Parquet reader
//! (the session enables the page index, bloom filters and filter pushdown).
//!
//! [`PruningPredicate`]: datafusion::physical_optimizer::pruning::PruningPredicate

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::{
    Column, ColumnStatistics, DFSchema, ScalarValue, Statistics, project_schema,
};
use datafusion::datasource::TableType;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::Result as DfResult;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_optimizer::pruning::{PruningPredicateBuilder, PruningStatistics};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use genai_audit_store::StoreLocation;
use genai_audit_store::manifest::{FileEntry, Snapshot};
use object_store::ObjectMeta;
use object_store::path::Path;

/// Name of the table.
pub const AUDIT_LOG_TABLE: &str = "audit_log";

/// Name of the date partition column.
pub const DT_COLUMN: &str = "dt";

/// Name of the tenant partition column.
pub const TENANT_COLUMN: &str = "tenant";

const START_TIME: &str = "start_time";
const UTC: &str = "UTC";

/// One committed file, as the table sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveFile {
    /// Key relative to the store root (`audit_log/tenant=…/dt=…/….parquet`).
    pub key: String,
    /// Full object path (root prefix included).
    pub path: Path,
    /// Size in bytes.
    pub size: u64,
    /// Rows.
    pub rows: u64,
    /// Tenant partition.
    pub tenant: String,
    /// Date partition, days since 1970-01-01.
    pub dt_days: i32,
    /// Smallest `start_time`, µs since the epoch.
    pub min_start_us: i64,
    /// Largest `start_time`, µs since the epoch.
    pub max_start_us: i64,
}

impl LiveFile {
    fn from_entry(loc: &StoreLocation, f: &FileEntry) -> Option<Self> {
        let day = chrono::NaiveDate::parse_from_str(&f.dt, "%Y-%m-%d").ok()?;
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
        let dt_days = i32::try_from(day.signed_duration_since(epoch).num_days()).ok()?;
        Some(Self {
            key: f.key.clone(),
            path: loc.path(&f.key),
            size: f.size,
            rows: f.rows,
            tenant: f.tenant.clone(),
            dt_days,
            min_start_us: f.min_start_time_us,
            max_start_us: f.max_start_time_us,
        })
    }
}

/// The live files of a snapshot, optionally of one tenant, in key order.
pub(crate) fn live_files(
    loc: &StoreLocation,
    snapshot: &Snapshot,
    tenant: Option<&str>,
) -> Vec<LiveFile> {
    snapshot
        .files
        .values()
        .filter(|f| tenant.is_none_or(|t| t == f.tenant))
        .filter_map(|f| {
            let live = LiveFile::from_entry(loc, f);
            if live.is_none() {
                tracing::warn!(key = %f.key, dt = %f.dt, "skipping a committed file whose dt is not a date");
            }
            live
        })
        .collect()
}

/// The `audit_log` table over an explicit, refreshable list of committed files.
#[derive(Debug)]
pub struct AuditLogTable {
    table_schema: TableSchema,
    schema: SchemaRef,
    url: ObjectStoreUrl,
    files: RwLock<Arc<[LiveFile]>>,
}

impl AuditLogTable {
    /// A table reading files of `url` (the URL the store's object store is registered under).
    pub fn new(url: ObjectStoreUrl) -> Self {
        let file_schema = read_schema();
        let partition_cols: Vec<FieldRef> = vec![
            Arc::new(Field::new(TENANT_COLUMN, DataType::Utf8, false)),
            Arc::new(Field::new(DT_COLUMN, DataType::Date32, false)),
        ];
        let table_schema = TableSchema::builder(file_schema)
            .with_table_partition_cols(partition_cols)
            .build();
        let schema = Arc::clone(table_schema.table_schema());
        Self {
            table_schema,
            schema,
            url,
            files: RwLock::new(Arc::from(Vec::new())),
        }
    }

    /// Replaces the file list (after a manifest refresh).
    pub fn set_files(&self, files: Vec<LiveFile>) {
        let files: Arc<[LiveFile]> = Arc::from(files);
        match self.files.write() {
            Ok(mut g) => *g = files,
            Err(poisoned) => *poisoned.into_inner() = files,
        }
    }

    /// The current file list.
    pub fn files(&self) -> Arc<[LiveFile]> {
        match self.files.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Which of `files` may hold rows matching all `filters` (the manifest's statistics can
    /// only rule files out, never in: `true` means "must be read").
    pub fn prune(&self, state: &dyn Session, filters: &[Expr], files: &[LiveFile]) -> Vec<bool> {
        let mut keep = vec![true; files.len()];
        if files.is_empty() || filters.is_empty() {
            return keep;
        }
        let Ok(df_schema) = DFSchema::try_from(Arc::clone(&self.schema)) else {
            return keep;
        };
        let stats = ManifestStatistics { files };
        for filter in filters {
            let predicate = state
                .create_physical_expr(filter.clone(), &df_schema)
                .and_then(|expr| {
                    PruningPredicateBuilder::new()
                        .with_file_schema(Arc::clone(&self.schema))
                        .try_build(expr)
                });
            let mask = match predicate {
                Ok(p) if p.always_true() => continue,
                Ok(p) => p.prune(&stats),
                Err(e) => Err(e),
            };
            match mask {
                Ok(mask) => keep.iter_mut().zip(mask).for_each(|(k, m)| *k &= m),
                // Not prunable (an expression the pruner does not know): read every file.
                Err(e) => {
                    tracing::debug!(%filter, error = %e, "filter not usable for file pruning")
                }
            }
        }
        keep
    }

    fn file_statistics(&self, f: &LiveFile) -> Statistics {
        let file_schema = self.table_schema.file_schema();
        let mut columns = vec![ColumnStatistics::new_unknown(); file_schema.fields().len()];
        if let Ok(i) = file_schema.index_of(START_TIME) {
            columns[i] = start_time_stats(f.min_start_us, f.max_start_us);
        }
        Statistics {
            num_rows: Precision::Exact(f.rows as usize),
            total_byte_size: Precision::Absent,
            column_statistics: columns,
        }
    }

    fn table_statistics(&self, files: &[&LiveFile]) -> Statistics {
        let mut columns = vec![ColumnStatistics::new_unknown(); self.schema.fields().len()];
        let min = files.iter().map(|f| f.min_start_us).min();
        let max = files.iter().map(|f| f.max_start_us).max();
        if let (Some(min), Some(max), Ok(i)) = (min, max, self.schema.index_of(START_TIME)) {
            columns[i] = start_time_stats(min, max);
        }
        Statistics {
            num_rows: Precision::Exact(files.iter().map(|f| f.rows as usize).sum()),
            total_byte_size: Precision::Absent,
            column_statistics: columns,
        }
    }
}

fn start_time_stats(min_us: i64, max_us: i64) -> ColumnStatistics {
    let ts = |v| ScalarValue::TimestampMicrosecond(Some(v), Some(UTC.into()));
    ColumnStatistics {
        null_count: Precision::Exact(0),
        min_value: Precision::Exact(ts(min_us)),
        max_value: Precision::Exact(ts(max_us)),
        ..ColumnStatistics::new_unknown()
    }
}

/// Spreads files over at most `n` groups of similar total size (each group is read by one
/// partition, its files one after the other).
fn group_files(mut files: Vec<PartitionedFile>, n: usize) -> Vec<FileGroup> {
    let n = n.clamp(1, files.len().max(1));
    files.sort_by(|a, b| {
        b.object_meta
            .size
            .cmp(&a.object_meta.size)
            .then_with(|| a.object_meta.location.cmp(&b.object_meta.location))
    });
    let mut groups: Vec<(u64, Vec<PartitionedFile>)> = (0..n).map(|_| (0, Vec::new())).collect();
    for f in files {
        let Some(smallest) = groups.iter_mut().min_by_key(|(size, _)| *size) else {
            break;
        };
        smallest.0 += f.object_meta.size;
        smallest.1.push(f);
    }
    groups
        .into_iter()
        .filter(|(_, fs)| !fs.is_empty())
        .map(|(_, mut fs)| {
            fs.sort_by(|a, b| a.object_meta.location.cmp(&b.object_meta.location));
            FileGroup::new(fs)
        })
        .collect()
}

#[async_trait]
impl TableProvider for AuditLogTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Inexact: the filters are used to prune files here and row groups, pages and rows in
        // the Parquet reader, and DataFusion still applies them to the rows read.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let all = self.files();
        let keep = self.prune(state, filters, &all);
        let files: Vec<&LiveFile> = all
            .iter()
            .zip(&keep)
            .filter_map(|(f, k)| k.then_some(f))
            .collect();
        tracing::debug!(
            files = all.len(),
            kept = files.len(),
            "audit_log scan after manifest pruning"
        );
        if files.is_empty() {
            let projected = project_schema(&self.schema, projection)?;
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        let table_stats = self.table_statistics(&files);
        let partitioned: Vec<PartitionedFile> = files
            .iter()
            .map(|f| {
                // The path as committed (already encoded): not re-parsed from a string.
                PartitionedFile::new_from_meta(ObjectMeta {
                    location: f.path.clone(),
                    // Files are immutable and their names never reused: a fixed time keeps
                    // DataFusion's footer cache valid across queries.
                    last_modified: chrono::DateTime::UNIX_EPOCH,
                    size: f.size,
                    e_tag: None,
                    version: None,
                })
                .with_partition_values(vec![
                    ScalarValue::Utf8(Some(f.tenant.clone())),
                    ScalarValue::Date32(Some(f.dt_days)),
                ])
                .with_statistics(Arc::new(self.file_statistics(f)))
            })
            .collect();
        let groups = group_files(partitioned, state.config().target_partitions());
        let format = ParquetFormat::default().with_options(state.default_table_options().parquet);
        let source = format.file_source(self.table_schema.clone());
        let config = FileScanConfigBuilder::new(self.url.clone(), source)
            .with_file_groups(groups)
            .with_statistics(table_stats)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        format.create_physical_plan(state, config).await
    }
}

/// One pruning container per file: the manifest's statistics.
struct ManifestStatistics<'a> {
    files: &'a [LiveFile],
}

impl ManifestStatistics<'_> {
    fn tenants(&self) -> ArrayRef {
        Arc::new(StringArray::from_iter_values(
            self.files.iter().map(|f| f.tenant.as_str()),
        ))
    }

    fn days(&self) -> ArrayRef {
        Arc::new(Date32Array::from_iter_values(
            self.files.iter().map(|f| f.dt_days),
        ))
    }

    fn times(&self, pick: impl Fn(&LiveFile) -> i64) -> ArrayRef {
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(self.files.iter().map(pick))
                .with_timezone(UTC),
        )
    }
}

impl PruningStatistics for ManifestStatistics<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        match column.name.as_str() {
            TENANT_COLUMN => Some(self.tenants()),
            DT_COLUMN => Some(self.days()),
            START_TIME => Some(self.times(|f| f.min_start_us)),
            _ => None,
        }
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        match column.name.as_str() {
            TENANT_COLUMN => Some(self.tenants()),
            DT_COLUMN => Some(self.days()),
            START_TIME => Some(self.times(|f| f.max_start_us)),
            _ => None,
        }
    }

    fn num_containers(&self) -> usize {
        self.files.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        match column.name.as_str() {
            TENANT_COLUMN | DT_COLUMN | START_TIME => {
                Some(Arc::new(UInt64Array::from(vec![0; self.files.len()])))
            }
            _ => None,
        }
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        Some(Arc::new(UInt64Array::from_iter_values(
            self.files.iter().map(|f| f.rows),
        )))
    }

    #[allow(clippy::mutable_key_type)] // the trait's signature
    fn contained(&self, column: &Column, values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        // A partition column holds one value per file: it is either in the set or not.
        match column.name.as_str() {
            TENANT_COLUMN => {
                let set: HashSet<&str> = values
                    .iter()
                    .map(|v| match v {
                        ScalarValue::Utf8(Some(s))
                        | ScalarValue::Utf8View(Some(s))
                        | ScalarValue::LargeUtf8(Some(s)) => Some(s.as_str()),
                        _ => None,
                    })
                    .collect::<Option<_>>()?;
                Some(
                    self.files
                        .iter()
                        .map(|f| Some(set.contains(f.tenant.as_str())))
                        .collect(),
                )
            }
            DT_COLUMN => {
                let set: HashSet<i32> = values
                    .iter()
                    .map(|v| match v {
                        ScalarValue::Date32(Some(d)) => Some(*d),
                        _ => None,
                    })
                    .collect::<Option<_>>()?;
                Some(
                    self.files
                        .iter()
                        .map(|f| Some(set.contains(&f.dt_days)))
                        .collect(),
                )
            }
            _ => None,
        }
    }
}

/// The columns of the files as the table reads them: the file schema with its text columns
/// as `Utf8View` (DataFusion's own default for Parquet, `schema_force_view_types`). The
/// Parquet reader then decodes a dictionary-encoded column (users, models, statuses…) into
/// views of the dictionary's values, instead of copying each row's string into a new buffer
/// (perf: those copies and the casts after them took ~12 % of the 30-day compliance report).
fn read_schema() -> SchemaRef {
    let fields: Vec<FieldRef> = genai_audit_store::parquet_file::file_schema()
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 => Arc::new(f.as_ref().clone().with_data_type(DataType::Utf8View)),
            _ => Arc::clone(f),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// The table schema: the file columns (text as `Utf8View`) followed by `tenant` and `dt`.
pub fn audit_log_schema() -> SchemaRef {
    let mut fields: Vec<FieldRef> = read_schema().fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(TENANT_COLUMN, DataType::Utf8, false)));
    fields.push(Arc::new(Field::new(DT_COLUMN, DataType::Date32, false)));
    Arc::new(Schema::new(fields))
}
