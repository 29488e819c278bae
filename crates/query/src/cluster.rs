//! Running the same SQL on an Apache DataFusion [Ballista] cluster (cargo feature `cluster`).
//!
//! Ballista ships a query to its scheduler as a serialized *logical* plan; the scheduler plans
//! it and its executors read the data themselves. [`AuditLogTable`] cannot travel that way (it
//! is not a table `datafusion-proto` knows, and its file list lives in this process), so before
//! a statement is sent each scan of `audit_log` is replaced by a plan the cluster understands:
//!
//! ```text
//! SubqueryAlias audit_log
//!   Projection <the scan's columns>
//!     Union ALL                                  one branch per (tenant, dt) left after pruning
//!       Projection *, 'acme' AS tenant, DATE '2025-06-14' AS dt
//!         TableScan ListingTable [file:///…/tenant=acme/dt=2025-06-14/a.parquet, …]
//!       …
//! ```
//!
//! - **Only committed files**: each branch is a `ListingTable` over the explicit object URLs of
//!   the committed files of one partition (the manifest snapshot, as in process), never over a
//!   directory, so an uncommitted or compacted-away file is invisible on the cluster too.
//! - **Pruning**: the files are pruned on the client, with the filters DataFusion pushed into
//!   the scan, against the manifest's statistics, exactly as [`AuditLogTable`] does in process
//!   (a one-day `start_time` range sends one day's files). Inside the files, the executors use
//!   the Parquet statistics, page index and bloom filters with the session's settings.
//! - **Partition columns** `tenant` and `dt` are constants of each branch (a `ListingTable`
//!   over single files cannot parse them from the paths).
//! - **Object URLs**: a local store becomes `file:///abs/dir/…` (the directory must be mounted
//!   at the same path on the scheduler and every executor); `s3://`, `gs://`, `az://` stores
//!   keep their bucket URL, and the scheduler and executors use their own credentials.
//! - **Functions**: `audit_hash('literal')` and `audit_hash_key_id()` are folded into constants
//!   on the client (they are immutable), so the key never leaves this process and they work on
//!   a stock cluster. `audit_hash(column)` cannot run on executors, which do not know the
//!   function: Ballista refuses such a statement. `max_repeated(text)` is sent as the built-in
//!   `max(text)`, which gives the same result (see [`crate::max_repeated`]); the aggregate's
//!   output keeps its name, so the rest of the plan is unchanged.
//!
//! [Ballista]: https://datafusion.apache.org/ballista/

use std::collections::BTreeMap;
use std::sync::Arc;

use ballista::prelude::SessionContextExt;
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, ScalarValue, TableReference};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SessionState;
use datafusion::functions_aggregate::min_max::max_udaf;
use datafusion::logical_expr::{
    Aggregate, EmptyRelation, Expr, LogicalPlan, LogicalPlanBuilder, TableScan, lit,
};
use datafusion::prelude::{SessionConfig, SessionContext};
use genai_audit_store::StoreLocation;
use url::Url;

use crate::error::{Error, Result};
use crate::max_repeated::MAX_REPEATED;
use crate::table::{AuditLogTable, DT_COLUMN, LiveFile, TENANT_COLUMN};

/// Where a cluster session sends its queries, and how its executors address the store.
#[derive(Debug, Clone)]
pub(crate) struct Cluster {
    /// Base URL of the store's objects as the cluster resolves them (ends with `/`): a file's
    /// URL is this followed by its full object path.
    objects: Url,
}

impl Cluster {
    /// The cluster view of `loc`.
    pub(crate) fn new(loc: &StoreLocation) -> Result<Self> {
        Ok(Self {
            objects: objects_url(loc)?,
        })
    }

    /// Replaces every scan of [`AuditLogTable`] in `plan` (an optimized plan: the filters are
    /// in the scans) by listing tables over the committed files the filters leave.
    pub(crate) fn rewrite(&self, state: &SessionState, plan: LogicalPlan) -> Result<LogicalPlan> {
        let rewritten = plan.transform_up_with_subqueries(|node| match node {
            LogicalPlan::TableScan(scan) => {
                let provider = source_as_provider(&scan.source)?;
                match provider.downcast_ref::<AuditLogTable>() {
                    Some(table) => Ok(Transformed::yes(self.replace_scan(state, table, scan)?)),
                    None => Ok(Transformed::no(LogicalPlan::TableScan(scan))),
                }
            }
            LogicalPlan::Aggregate(agg) => as_builtin_max(agg),
            other => Ok(Transformed::no(other)),
        })?;
        Ok(rewritten.data)
    }

    fn replace_scan(
        &self,
        state: &SessionState,
        table: &AuditLogTable,
        scan: TableScan,
    ) -> DfResult<LogicalPlan> {
        let all = table.files();
        let keep = table.prune(state, &scan.filters, &all);
        let mut partitions: BTreeMap<(&str, i32), Vec<&LiveFile>> = BTreeMap::new();
        for (f, _) in all.iter().zip(&keep).filter(|(_, k)| **k) {
            partitions
                .entry((f.tenant.as_str(), f.dt_days))
                .or_default()
                .push(f);
        }
        tracing::debug!(
            files = all.len(),
            partitions = partitions.len(),
            "audit_log scan sent to the cluster after manifest pruning"
        );
        if partitions.is_empty() {
            return Ok(LogicalPlan::EmptyRelation(EmptyRelation {
                produce_one_row: false,
                schema: Arc::clone(&scan.projected_schema),
            }));
        }

        let file_schema = genai_audit_store::parquet_file::file_schema();
        let options = ListingOptions::new(Arc::new(
            ParquetFormat::default().with_options(state.default_table_options().parquet),
        ))
        .with_file_extension(".parquet");
        let mut union: Option<LogicalPlanBuilder> = None;
        for ((tenant, dt), files) in partitions {
            let urls = files
                .iter()
                .map(|f| self.file_url(f))
                .collect::<DfResult<Vec<_>>>()?;
            let config = ListingTableConfig::new_with_multi_paths(urls)
                .with_listing_options(options.clone())
                .with_schema(Arc::clone(&file_schema));
            let listing: Arc<dyn TableProvider> = Arc::new(ListingTable::try_new(config)?);
            let mut columns: Vec<Expr> = file_schema
                .fields()
                .iter()
                .map(|f| Expr::Column(Column::new_unqualified(f.name())))
                .collect();
            columns.push(lit(tenant).alias(TENANT_COLUMN));
            columns.push(lit(ScalarValue::Date32(Some(dt))).alias(DT_COLUMN));
            let branch = LogicalPlanBuilder::scan(
                TableReference::bare(format!("{}_{tenant}_{dt}", scan.table_name.table())),
                provider_as_source(listing),
                None,
            )?
            .project(columns)?
            .build()?;
            union = Some(match union {
                None => LogicalPlanBuilder::from(branch),
                Some(u) => u.union(branch)?,
            });
        }
        let Some(union) = union else {
            return Err(DataFusionError::Internal("no partition to scan".into()));
        };
        // The scan's own columns, filters and limit, under the table's name.
        let columns: Vec<Expr> = scan
            .projected_schema
            .fields()
            .iter()
            .map(|f| Expr::Column(Column::new_unqualified(f.name())))
            .collect();
        // The filters need not be applied again: the table accepts them as inexact, so
        // DataFusion kept them in a filter above the scan.
        let mut plan = union.project(columns)?;
        if let Some(fetch) = scan.fetch {
            plan = plan.limit(0, Some(fetch))?;
        }
        plan.alias(scan.table_name)?.build()
    }

    fn file_url(&self, f: &LiveFile) -> DfResult<ListingTableUrl> {
        let url = self
            .objects
            .join(f.path.as_ref())
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        ListingTableUrl::parse(url.as_str())
    }
}

/// `agg` with every `max_repeated(x)` replaced by `max(x)` under the same output name: executors
/// know only built-in functions, and `max` computes the same value.
fn as_builtin_max(agg: Aggregate) -> DfResult<Transformed<LogicalPlan>> {
    let is_max_repeated =
        |e: &Expr| matches!(e, Expr::AggregateFunction(f) if f.func.name() == MAX_REPEATED);
    let uses = |e: &Expr| match e {
        Expr::Alias(a) => is_max_repeated(&a.expr),
        other => is_max_repeated(other),
    };
    if !agg.aggr_expr.iter().any(uses) {
        return Ok(Transformed::no(LogicalPlan::Aggregate(agg)));
    }
    let to_max = |e: Expr| match e {
        Expr::AggregateFunction(mut f) => {
            f.func = max_udaf();
            Expr::AggregateFunction(f)
        }
        other => other,
    };
    let aggr_expr = agg
        .aggr_expr
        .into_iter()
        .map(|e| match e {
            Expr::Alias(a) if is_max_repeated(&a.expr) => {
                to_max(*a.expr).alias_qualified(a.relation, a.name)
            }
            e if is_max_repeated(&e) => {
                let name = e.schema_name().to_string();
                to_max(e).alias(name)
            }
            other => other,
        })
        .collect();
    let rebuilt = Aggregate::try_new(agg.input, agg.group_expr, aggr_expr)?;
    Ok(Transformed::yes(LogicalPlan::Aggregate(rebuilt)))
}

/// The URL the cluster reads `loc`'s objects under: `file:///dir/` for a local store,
/// `scheme://bucket/` otherwise (object paths already include the store's root prefix).
fn objects_url(loc: &StoreLocation) -> Result<Url> {
    if let Some(dir) = &loc.local_dir {
        return Url::from_directory_path(dir)
            .map_err(|()| Error::Cluster(format!("{} is not an absolute path", dir.display())));
    }
    let given = loc.to_string();
    let url = Url::parse(&given)
        .map_err(|e| Error::Cluster(format!("store URL {given:?} is not a URL: {e}")))?;
    let host = url
        .host_str()
        .ok_or_else(|| Error::Cluster(format!("store URL {given:?} names no bucket")))?;
    Url::parse(&format!("{}://{host}/", url.scheme()))
        .map_err(|e| Error::Cluster(format!("store URL {given:?}: {e}")))
}

/// A session whose queries run on the Ballista scheduler at `scheduler` (`df://host:port`).
pub(crate) async fn remote_context(
    scheduler: &str,
    config: SessionConfig,
) -> Result<SessionContext> {
    let url = Url::parse(scheduler)
        .map_err(|e| Error::Cluster(format!("scheduler URL {scheduler:?}: {e}")))?;
    if url.scheme() != "df" || url.host_str().is_none() {
        return Err(Error::Cluster(format!(
            "scheduler URL {scheduler:?}: expected df://HOST:PORT"
        )));
    }
    Ok(SessionContext::remote_with_state(scheduler, state(config)).await?)
}

/// A session on a Ballista scheduler and executor started in this process (tests, demos).
#[cfg(feature = "cluster-standalone")]
pub(crate) async fn standalone_context(config: SessionConfig) -> Result<SessionContext> {
    Ok(SessionContext::standalone_with_state(state(config)).await?)
}

fn state(config: SessionConfig) -> SessionState {
    datafusion::execution::SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .build()
}
