//! # genai-audit-query
//!
//! Read-only SQL over the audit log, for auditors: a [DataFusion] session whose `audit_log`
//! table is exactly the files the store's commit manifests list, nothing else.
//!
//! ## What a query sees
//!
//! - **Only committed files.** The table is built from the manifests
//!   ([`genai_audit_store::manifest`]), never from a directory listing, so a file being
//!   written, or one compaction replaced, is invisible. [`QueryEngine::sql`] reads the commits
//!   made since the previous statement first: a commit is visible to the next query.
//! - **Columns**: the Parquet file schema (the audit schema without `tenant`), then the two
//!   partition columns `tenant` (Utf8) and `dt` (Date32, the UTC date of `start_time`). `dt` is
//!   a date rather than text so that `dt BETWEEN '2025-06-01' AND '2025-06-30'` compares dates,
//!   and so that it prunes like `start_time` does. [`audit_log_columns`] says what each column
//!   means (`\d audit_log` in the CLI).
//! - **Pruning.** Auditors filter on time, not on `dt`: every filter is evaluated against the
//!   manifest's per-file statistics (`tenant`, `dt`, min/max `start_time`, rows), so a
//!   one-day `start_time` range plans that day's files only ([`QueryEngine::planned_files`],
//!   or `EXPLAIN`). Inside the files, the Parquet reader uses row-group statistics, the page
//!   index and the bloom filters on `trace_id`, `user_id` and `session_id`, with filter pushdown
//!   on.
//! - **Read-only.** DDL and DML (`INSERT`, `UPDATE`, `DELETE`, `COPY`, `CREATE TABLE … AS`,
//!   `CREATE VIEW`, `DROP`, …) are refused with [`Error::ReadOnly`]; `SET` is allowed.
//! - **Functions**: DataFusion's (date/time, string, regex, math, aggregates, window, and the
//!   array functions for `pii_types` / `finish_reasons`, e.g. `array_has(pii_types,
//!   'EMAIL')`), plus `audit_hash(text)`, the keyed hash the collector stores in `prompt_hash`
//!   and `response_hash`, `audit_hash_key_id()` (see [`udf`]), and the aggregate
//!   `max_repeated(text)`, `max` for label-like columns (see [`max_repeated`]).
//!
//! ## Cluster
//!
//! With the cargo feature `cluster`, [`QueryEngine::open_cluster`] runs the same statements on
//! an Apache DataFusion [Ballista] cluster (`df://HOST:PORT`): the client reads the manifests
//! and prunes files as in process, then sends each scan of `audit_log` as listing tables over
//! the committed files' URLs, which the scheduler and executors read from the store
//! themselves. A local store must be mounted at the same path on every executor; an object
//! store is read with the executors' own credentials. `audit_hash('literal')` is folded on the
//! client and works; `audit_hash(column)` does not (the executors do not have the key).
//! `cluster-standalone` adds [`QueryEngine::open_standalone`], an in-process scheduler and
//! executor for tests.
//!
//! [Ballista]: https://datafusion.apache.org/ballista/
//!
//! ## Main types
//!
//! - [`QueryEngine`]: opens a session over a [`StoreLocation`](genai_audit_store::StoreLocation)
//!   with [`QueryOptions`] (tenant restriction, hash key); [`QueryEngine::sql`] returns a lazy
//!   DataFusion [`DataFrame`](datafusion::dataframe::DataFrame).
//! - [`AuditLogTable`]: the `TableProvider` behind `audit_log`.
//! - [`ALERTS_TABLE`] (`alerts`): the compliance alerts the collector raised, a listing table
//!   over `alerts/tenant=…/dt=…/` with the same `tenant` and `dt` partition columns.
//! - [`split_statements`] and [`render_error`]: for front ends (scripts of several statements,
//!   errors shown at their line and column).
//! - [`report`]: the compliance, subject-access (GDPR Art. 15) and cost reports, computed on the
//!   session and rendered as Markdown, JSON, CSV or self-contained HTML.
//!
//! ## Example
//!
//! ```
//! use genai_audit_query::{QueryEngine, QueryOptions};
//! use genai_audit_store::StoreLocation;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let store = StoreLocation::local(dir.path()).unwrap();
//! let engine = QueryEngine::open(store, QueryOptions::default()).await.unwrap();
//! assert_eq!(engine.summary().files, 0); // nothing committed yet
//!
//! let batches = engine
//!     .collect("SELECT provider, sum(total_cost_usd) AS usd FROM audit_log \
//!               WHERE start_time >= TIMESTAMP '2025-06-14T00:00:00Z' GROUP BY provider")
//!     .await
//!     .unwrap();
//! assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
//!
//! let refused = engine.sql("DROP TABLE audit_log").await.unwrap_err();
//! assert!(refused.to_string().contains("read-only"));
//! # });
//! ```
//!
//! [DataFusion]: https://datafusion.apache.org

mod alerts_table;
#[cfg(feature = "cluster")]
mod cluster;
mod describe;
mod engine;
mod error;
mod manifests;
pub mod max_repeated;
pub mod report;
mod sql;
mod table;
pub mod udf;
mod views;

/// DataFusion, as this crate uses it (one Arrow stack for callers).
pub use datafusion;

pub use alerts_table::ALERTS_TABLE;
pub use describe::{ColumnInfo, DT_DESCRIPTION, audit_log_columns};
pub use engine::{QueryEngine, QueryOptions, STORE_URL, TableSummary, read_only};
pub use error::{Error, Result};
pub use sql::{Statements, render_error, split_statements};
pub use table::{
    AUDIT_LOG_TABLE, AuditLogTable, DT_COLUMN, LiveFile, TENANT_COLUMN, audit_log_schema,
};
