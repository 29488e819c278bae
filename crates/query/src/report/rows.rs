//! Reading report query results row by row, by column name, with the types the reports need.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int64Type};
use genai_audit_core::Usd;
use genai_audit_core::money::USD_SCALE;

use crate::QueryEngine;
use crate::error::{Error, Result};

/// Runs `sql` on `engine` (refreshed, read-only, on its cluster when it has one) and collects
/// the result.
pub(crate) async fn collect(engine: &QueryEngine, sql: &str) -> Result<Vec<RecordBatch>> {
    engine.collect(sql).await
}

/// One result batch with its columns looked up by name.
pub(crate) struct Rows<'a> {
    query: &'static str,
    batch: &'a RecordBatch,
}

impl<'a> Rows<'a> {
    pub(crate) fn new(query: &'static str, batch: &'a RecordBatch) -> Self {
        Self { query, batch }
    }

    pub(crate) fn len(&self) -> usize {
        self.batch.num_rows()
    }

    fn column(&self, name: &str) -> Result<&'a ArrayRef> {
        self.batch
            .column_by_name(name)
            .ok_or_else(|| self.unexpected(format!("no column {name}")))
    }

    fn unexpected(&self, reason: String) -> Error {
        Error::UnexpectedResult {
            query: self.query,
            reason,
        }
    }

    fn cast(&self, name: &str, to: &DataType) -> Result<ArrayRef> {
        let col = self.column(name)?;
        if col.data_type() == to {
            return Ok(Arc::clone(col));
        }
        cast(col, to).map_err(|e| self.unexpected(format!("column {name}: {e}")))
    }

    /// A text column (any string type).
    pub(crate) fn strings(&self, name: &str) -> Result<Vec<Option<String>>> {
        let col = self.cast(name, &DataType::Utf8)?;
        let a = col.as_string::<i32>();
        Ok((0..a.len())
            .map(|i| a.is_valid(i).then(|| a.value(i).to_owned()))
            .collect())
    }

    /// An integer column (any integer type), NULL as 0.
    pub(crate) fn counts(&self, name: &str) -> Result<Vec<u64>> {
        let col = self.cast(name, &DataType::Int64)?;
        let a = col.as_primitive::<Int64Type>();
        Ok((0..a.len())
            .map(|i| {
                if a.is_valid(i) {
                    u64::try_from(a.value(i)).unwrap_or(0)
                } else {
                    0
                }
            })
            .collect())
    }

    /// A float column.
    pub(crate) fn floats(&self, name: &str) -> Result<Vec<Option<f64>>> {
        let col = self.cast(name, &DataType::Float64)?;
        let a = col.as_primitive::<Float64Type>();
        Ok((0..a.len())
            .map(|i| a.is_valid(i).then(|| a.value(i)))
            .collect())
    }

    /// A money column: `DECIMAL(p, 12)` read exactly, NULL as zero. Any other scale is refused
    /// rather than rounded.
    pub(crate) fn usd(&self, name: &str) -> Result<Vec<Usd>> {
        let col = self.column(name)?;
        match col.data_type() {
            DataType::Decimal128(_, s) if *s == USD_SCALE => {}
            DataType::Null => return Ok(vec![Usd::ZERO; col.len()]),
            other => {
                return Err(self.unexpected(format!(
                    "column {name} is {other}, expected DECIMAL(38,{USD_SCALE})"
                )));
            }
        }
        let a = col.as_primitive::<Decimal128Type>();
        Ok((0..a.len())
            .map(|i| {
                if a.is_valid(i) {
                    Usd::from_raw(a.value(i))
                } else {
                    Usd::ZERO
                }
            })
            .collect())
    }
}
