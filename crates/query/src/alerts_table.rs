//! The `alerts` table: every alert file under `alerts/` (see [`genai_audit_store::alerts`]).
//!
//! Alert files are not part of the commit manifests (each is written whole by one create-only
//! put), so this is a plain listing table over `alerts/tenant=…/dt=…/`, with `tenant` (Utf8)
//! and `dt` (Date32, the UTC day the alert fired) from the path, like `audit_log`. The
//! directory is listed at every statement: an alert written a moment ago is visible.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::{SessionContext, col, lit};
use genai_audit_store::StoreLocation;
use genai_audit_store::alerts::{ALERTS_DIR, alerts_file_schema};

use crate::engine::STORE_URL;
use crate::error::Result;
use crate::table::{DT_COLUMN, TENANT_COLUMN};

/// Name of the table.
pub const ALERTS_TABLE: &str = "alerts";

/// Registers `alerts` in `ctx`, restricted to `tenant` if given.
pub(crate) fn register(
    ctx: &SessionContext,
    loc: &StoreLocation,
    tenant: Option<&str>,
) -> Result<()> {
    let url = ListingTableUrl::parse(format!("{STORE_URL}{}/", loc.path(ALERTS_DIR)))?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(vec![
            (TENANT_COLUMN.to_owned(), DataType::Utf8),
            (DT_COLUMN.to_owned(), DataType::Date32),
        ]);
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(alerts_file_schema());
    let table: Arc<dyn TableProvider> = Arc::new(ListingTable::try_new(config)?);
    let table = match tenant {
        None => table,
        Some(t) => ctx
            .read_table(table)?
            .filter(col(TENANT_COLUMN).eq(lit(t)))?
            .into_view(),
    };
    ctx.register_table(ALERTS_TABLE, table)?;
    Ok(())
}
