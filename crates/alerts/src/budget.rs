//! Rebuilding budget totals at startup from the committed audit log, so a restart does not
//! reset the day's or month's spend.
//!
//! Reads only the Parquet files of the current month (by the manifest's `dt`) and, in them,
//! only the five columns a budget needs.

use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use chrono::Datelike;
use genai_audit_core::Usd;
use genai_audit_store::StoreLocation;
use genai_audit_store::manifest::Snapshot;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::engine::Spend;
use crate::error::{Error, Result};

const COLUMNS: [&str; 6] = [
    "user_id",
    "service_name",
    "response_model",
    "request_model",
    "start_time",
    "total_cost_usd",
];

/// Spend of every priced record committed in the UTC month of `now_us`.
pub async fn committed_spend(loc: &StoreLocation, now_us: i64) -> Result<Vec<Spend>> {
    let now = chrono::DateTime::from_timestamp_micros(now_us).unwrap_or_default();
    let month = format!("{:04}-{:02}-", now.year(), now.month());
    let snap = Snapshot::load(loc).await?;
    let mut out = Vec::new();
    for f in snap.files.values().filter(|f| f.dt.starts_with(&month)) {
        let bytes = loc.get_bytes(&f.key).await?;
        let fail = |e: &dyn std::fmt::Display| Error::Rebuild {
            key: f.key.clone(),
            reason: e.to_string(),
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| fail(&e))?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), COLUMNS);
        let reader = builder
            .with_projection(mask)
            .build()
            .map_err(|e| fail(&e))?;
        for batch in reader {
            let batch = batch.map_err(|e| fail(&e))?;
            spend_of(&batch, &f.tenant, &mut out).map_err(|e| fail(&e))?;
        }
    }
    Ok(out)
}

fn spend_of(b: &RecordBatch, tenant: &str, out: &mut Vec<Spend>) -> Result<(), String> {
    let col = |name: &str| {
        b.column_by_name(name)
            .ok_or_else(|| format!("no column {name}"))
    };
    let strings = |name: &str| -> Result<_, String> {
        col(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| format!("{name} is not a string column"))
    };
    let user = strings("user_id")?;
    let service = strings("service_name")?;
    let response_model = strings("response_model")?;
    let request_model = strings("request_model")?;
    let start = col("start_time")?
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or("start_time is not a µs timestamp")?;
    let cost = col("total_cost_usd")?
        .as_primitive_opt::<Decimal128Type>()
        .ok_or("total_cost_usd is not a decimal")?;
    let get = |a: &arrow_array::StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_owned());
    for i in 0..b.num_rows() {
        if !cost.is_valid(i) {
            continue;
        }
        out.push(Spend {
            tenant: tenant.to_owned(),
            user: get(user, i),
            service: get(service, i),
            model: get(response_model, i).or_else(|| get(request_model, i)),
            start_us: start.value(i),
            cost: Usd::from_raw(cost.value(i)),
        });
    }
    Ok(())
}
