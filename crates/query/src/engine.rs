//! [`QueryEngine`]: a DataFusion session over one store, read-only, refreshed before every
//! statement.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::DataFusionError;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use genai_audit_core::HashKey;
use genai_audit_store::StoreLocation;
use tokio::sync::Mutex;

#[cfg(feature = "cluster")]
use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::manifests::Manifests;
use crate::max_repeated::max_repeated_udaf;
use crate::table::{AUDIT_LOG_TABLE, AuditLogTable, LiveFile, live_files};
use crate::udf::{audit_hash_key_id_udf, audit_hash_udf};

/// The URL the store's object store is registered under in the session. A scheme of its own,
/// so it never collides with `file://` or a bucket the session might know otherwise.
pub const STORE_URL: &str = "genai-audit://store/";

/// How to open a [`QueryEngine`].
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// Only this tenant's files make up `audit_log` (the others are not even planned).
    pub tenant: Option<String>,
    /// The deployment's content hash key, for `audit_hash()`. Without it the function exists
    /// and fails with [`crate::udf::NO_HASH_KEY`].
    pub hash_key: Option<HashKey>,
    /// Partitions (threads) a query runs on; default: the number of CPUs.
    pub target_partitions: Option<usize>,
}

/// What the table holds as of the last refresh.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableSummary {
    /// Committed files visible to queries.
    pub files: usize,
    /// Rows in them.
    pub rows: u64,
    /// Bytes in them.
    pub bytes: u64,
    /// Tenants present.
    pub tenants: BTreeSet<String>,
    /// First and last `dt` present (`YYYY-MM-DD`).
    pub days: Option<(String, String)>,
}

/// Read-only SQL over the committed audit log of one store.
///
/// The session has the table `audit_log` (the file schema, then the partition columns
/// `tenant` Utf8 and `dt` Date32), the table `alerts` (compliance alerts, see
/// [`crate::ALERTS_TABLE`]), the functions `audit_hash(text)` and `audit_hash_key_id()`, the
/// aggregate `max_repeated(text)` the reports use ([`crate::max_repeated`]),
/// and `information_schema` (`SHOW TABLES`, `SHOW COLUMNS FROM audit_log`).
///
/// [`QueryEngine::sql`] refreshes the file list from the commit manifests (reading only new
/// commits), refuses any statement that would write (DDL, DML, `COPY`), and returns a lazy
/// [`DataFrame`].
pub struct QueryEngine {
    ctx: SessionContext,
    loc: StoreLocation,
    tenant: Option<String>,
    table: Arc<AuditLogTable>,
    manifests: Mutex<Manifests>,
    /// Set when statements run on a Ballista cluster.
    #[cfg(feature = "cluster")]
    cluster: Option<Cluster>,
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine")
            .field("store", &self.loc)
            .field("tenant", &self.tenant)
            .field("session", &self.ctx.session_id())
            .finish_non_exhaustive()
    }
}

impl QueryEngine {
    /// Opens a session over the store at `loc` and reads its commits.
    pub async fn open(loc: StoreLocation, options: QueryOptions) -> Result<Self> {
        let ctx = SessionContext::new_with_config(session_config(&options));
        Self::with_context(ctx, loc, options).await
    }

    /// Like [`Self::open`], but statements run on the Apache DataFusion Ballista cluster whose
    /// scheduler is at `scheduler` (`df://HOST:PORT`). The scheduler and executors read the
    /// store's files themselves: see the [`cluster`](crate#cluster) section of the crate docs
    /// for what they need. Nothing is sent before the first statement.
    #[cfg(feature = "cluster")]
    pub async fn open_cluster(
        loc: StoreLocation,
        options: QueryOptions,
        scheduler: &str,
    ) -> Result<Self> {
        let cluster = Cluster::new(&loc)?;
        let ctx = crate::cluster::remote_context(scheduler, session_config(&options)).await?;
        let mut engine = Self::with_context(ctx, loc, options).await?;
        engine.cluster = Some(cluster);
        Ok(engine)
    }

    /// Like [`Self::open_cluster`], on a Ballista scheduler and executor started in this
    /// process: the same serialized plans and the same code paths as a real cluster, for tests.
    #[cfg(feature = "cluster-standalone")]
    pub async fn open_standalone(loc: StoreLocation, options: QueryOptions) -> Result<Self> {
        let cluster = Cluster::new(&loc)?;
        let ctx = crate::cluster::standalone_context(session_config(&options)).await?;
        let mut engine = Self::with_context(ctx, loc, options).await?;
        engine.cluster = Some(cluster);
        Ok(engine)
    }

    /// Whether statements run on a Ballista cluster.
    pub fn is_cluster(&self) -> bool {
        #[cfg(feature = "cluster")]
        return self.cluster.is_some();
        #[cfg(not(feature = "cluster"))]
        false
    }

    async fn with_context(
        ctx: SessionContext,
        loc: StoreLocation,
        options: QueryOptions,
    ) -> Result<Self> {
        let url = ObjectStoreUrl::parse(STORE_URL)?;
        ctx.register_object_store(url.as_ref(), Arc::clone(&loc.store));
        let table = Arc::new(AuditLogTable::new(url));
        ctx.register_table(AUDIT_LOG_TABLE, Arc::clone(&table) as _)?;
        crate::alerts_table::register(&ctx, &loc, options.tenant.as_deref())?;
        let key = options.hash_key.map(Arc::new);
        ctx.register_udf(audit_hash_udf(key.clone()));
        ctx.register_udf(audit_hash_key_id_udf(key));
        ctx.register_udaf(max_repeated_udaf());
        let engine = Self {
            ctx,
            loc,
            tenant: options.tenant,
            table,
            manifests: Mutex::new(Manifests::default()),
            #[cfg(feature = "cluster")]
            cluster: None,
        };
        engine.refresh().await?;
        Ok(engine)
    }

    /// The DataFusion session. Statements run on it directly bypass the read-only check of
    /// [`Self::sql`] and the refresh; use it for programmatic access (DataFrame API, plans).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The store.
    pub fn location(&self) -> &StoreLocation {
        &self.loc
    }

    /// The tenant the table is restricted to, if any.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// Reads commits made since the last refresh and updates the file list. Called by
    /// [`Self::sql`]; cheap when nothing changed (one listing of `_manifest/`).
    pub async fn refresh(&self) -> Result<TableSummary> {
        let mut manifests = self.manifests.lock().await;
        if manifests.refresh(&self.loc).await? > 0 {
            self.table.set_files(live_files(
                &self.loc,
                manifests.snapshot(),
                self.tenant.as_deref(),
            ));
        }
        Ok(self.summary())
    }

    /// The committed files visible to queries, as of the last refresh.
    pub fn files(&self) -> Arc<[LiveFile]> {
        self.table.files()
    }

    /// What the table holds, as of the last refresh.
    pub fn summary(&self) -> TableSummary {
        let files = self.files();
        let days: BTreeSet<i32> = files.iter().map(|f| f.dt_days).collect();
        let day = |d: &i32| {
            chrono::DateTime::from_timestamp(i64::from(*d) * 86_400, 0)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default()
        };
        TableSummary {
            files: files.len(),
            rows: files.iter().map(|f| f.rows).sum(),
            bytes: files.iter().map(|f| f.size).sum(),
            tenants: files.iter().map(|f| f.tenant.clone()).collect(),
            days: days.first().zip(days.last()).map(|(a, b)| (day(a), day(b))),
        }
    }

    /// Plans one SQL statement against the freshly refreshed table. Statements that would
    /// modify data or the catalog are refused with [`Error::ReadOnly`]; `SET` (session options)
    /// takes effect immediately. The result is lazy: collect or stream the [`DataFrame`].
    pub async fn sql(&self, sql: &str) -> Result<DataFrame> {
        self.refresh().await?;
        let plan = self.ctx.state().create_logical_plan(sql).await?;
        read_only()
            .verify_plan(&plan)
            .map_err(|e| Error::ReadOnly(plain_message(e)))?;
        #[cfg(feature = "cluster")]
        let plan = match &self.cluster {
            // The cluster gets a plan it can deserialize: the optimizer first pushes the
            // filters into the scans, which the rewrite uses to prune files.
            Some(cluster) => {
                let state = self.ctx.state();
                cluster.rewrite(&state, state.optimize(&plan)?)?
            }
            None => plan,
        };
        Ok(self.ctx.execute_logical_plan(plan).await?)
    }

    /// Runs one statement and collects its result.
    pub async fn collect(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        Ok(self.sql(sql).await?.collect().await?)
    }

    /// The files (keys relative to the store root, sorted) the physical plan of `sql` reads:
    /// what is left after file pruning. Row groups and pages pruned inside them are not
    /// reflected here (see `EXPLAIN ANALYZE` metrics for those).
    pub async fn planned_files(&self, sql: &str) -> Result<Vec<String>> {
        let plan = self.sql(sql).await?.create_physical_plan().await?;
        let mut out = BTreeSet::new();
        collect_files(&plan, &mut |path| {
            out.insert(self.loc.relative(path));
        });
        Ok(out.into_iter().collect())
    }
}

/// The session settings of every engine, in process or on a cluster.
fn session_config(options: &QueryOptions) -> SessionConfig {
    let mut config = SessionConfig::new()
        .with_information_schema(true)
        // Pruning inside the files left after file pruning: row groups by statistics,
        // pages by the page index, row groups by the bloom filters on trace_id, user_id and
        // session_id (point lookups), then filters evaluated while decoding so only the
        // matching rows of the other columns are materialized.
        .set_bool("datafusion.execution.parquet.enable_page_index", true)
        .set_bool("datafusion.execution.parquet.bloom_filter_on_read", true)
        .set_bool("datafusion.execution.parquet.pushdown_filters", true)
        .set_bool("datafusion.execution.parquet.reorder_filters", true)
        // Error positions (line, column) in the SQL.
        .set_bool("datafusion.sql_parser.collect_spans", true);
    if let Some(n) = options.target_partitions {
        config = config.with_target_partitions(n.max(1));
    }
    config
}

/// The options every statement is checked against: no DDL, no DML (`INSERT`, `UPDATE`,
/// `DELETE`, `COPY`, `CREATE TABLE … AS`, `DROP`, …). `SET` and the like stay allowed.
pub fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(true)
}

/// A DataFusion error's text without the kind prefix (`Error during planning: `).
fn plain_message(e: DataFusionError) -> String {
    match e {
        DataFusionError::Plan(m) => m,
        other => other.strip_backtrace(),
    }
}

fn collect_files(plan: &Arc<dyn ExecutionPlan>, f: &mut impl FnMut(&object_store::path::Path)) {
    if let Some(exec) = plan.downcast_ref::<DataSourceExec>()
        && let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>()
    {
        for group in &config.file_groups {
            for file in group.iter() {
                f(&file.object_meta.location);
            }
        }
    }
    for child in plan.children() {
        collect_files(child, f);
    }
}
