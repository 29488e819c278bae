//! `max_repeated(text)`: the largest string of each group, exactly as `max(text)`, stored for
//! columns whose values repeat across groups (user ids, models, providers, services).
//!
//! The reports group ~10 M spans into ~9 M calls and keep the largest user id and model of each
//! (see [`CALLS_CTE`](crate::report::compliance::CALLS_CTE)). DataFusion's `max` on strings keeps
//! one heap-allocated copy of the value per group: at 9 M groups that is 9 M small allocations
//! and a 24-byte slot per group for each column, and it was half of the 30-day compliance
//! report's CPU time (most of it the kernel zeroing fresh pages). `max_repeated` stores each
//! distinct value once and a 4-byte id per group, so the state of 9 M groups over 5,000 users is
//! 36 MB and no allocation per group. The result is the same as `max`'s (byte-wise comparison,
//! NULLs ignored, NULL for a group without a value); only the cost differs, and it grows with
//! the number of distinct values, so it is meant for label-like columns, not ids.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::compute::kernels::boolean::not;
use datafusion::arrow::compute::kernels::nullif::nullif;
use datafusion::arrow::compute::{cast, prep_null_mask_filter};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::error::Result as DfResult;
use datafusion::functions_aggregate::min_max::max_udaf;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};
use rustc_hash::FxHashMap;

use crate::views::same_string;

/// The SQL name of the function.
pub const MAX_REPEATED: &str = "max_repeated";

/// `max_repeated(text) -> text`: see the [module docs](self). Text as `Utf8` or `Utf8View`
/// (the table's type), the result of the same type, as `max`'s.
pub fn max_repeated_udaf() -> AggregateUDF {
    AggregateUDF::from(MaxRepeated {
        // Views as the table reads text: taking them as they come spares a cast per row.
        signature: Signature::uniform(
            1,
            vec![DataType::Utf8View, DataType::Utf8],
            Volatility::Immutable,
        ),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct MaxRepeated {
    signature: Signature,
}

impl AggregateUDFImpl for MaxRepeated {
    fn name(&self) -> &str {
        MAX_REPEATED
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The argument's type, as `max`'s.
    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(arg_types.first().cloned().unwrap_or(DataType::Utf8))
    }

    /// Without grouping there is a single value to keep: `max`'s accumulator does it.
    fn accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        max_udaf().accumulator(args)
    }

    /// The state is the largest value so far, like `max`'s, of the argument's type (so that a
    /// value that is its own state, [`GroupsAccumulator::convert_to_state`], needs no cast).
    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "max"),
            args.return_type().clone(),
            true,
        ))])
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> DfResult<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(MaxRepeatedGroups::new(args.return_type().clone())))
    }
}

/// Group index → id of its largest value so far ([`NONE`]: no value yet).
#[derive(Debug)]
struct MaxRepeatedGroups {
    /// The type of the argument, the result and the state (`Utf8` or `Utf8View`).
    ty: DataType,
    /// Per group, the id of its value in `values`.
    groups: Vec<u32>,
    /// Distinct values seen, by id.
    values: Vec<Box<str>>,
    /// Value → id.
    ids: FxHashMap<Box<str>, u32>,
    /// Bytes held by `values`.
    value_bytes: usize,
}

/// A group without a value (its result is NULL).
const NONE: u32 = u32::MAX;

impl MaxRepeatedGroups {
    fn new(ty: DataType) -> Self {
        Self {
            ty,
            groups: Vec::new(),
            values: Vec::new(),
            ids: FxHashMap::default(),
            value_bytes: 0,
        }
    }

    fn intern(&mut self, value: &str) -> DfResult<u32> {
        if let Some(&id) = self.ids.get(value) {
            return Ok(id);
        }
        let id = u32::try_from(self.values.len())
            .ok()
            .filter(|id| *id != NONE)
            .ok_or_else(|| {
                datafusion::error::DataFusionError::ResourcesExhausted(format!(
                    "{MAX_REPEATED}: more than {NONE} distinct values"
                ))
            })?;
        let value: Box<str> = value.into();
        self.value_bytes += value.len();
        self.values.push(value.clone());
        self.ids.insert(value, id);
        Ok(id)
    }

    /// Folds `values[i]` into group `group_indices[i]` for every row `filter` keeps.
    fn fold(
        &mut self,
        values: &ArrayRef,
        group_indices: &[usize],
        filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.groups.resize(total_num_groups, NONE);
        let views = as_type(values, &DataType::Utf8View)?;
        let strings = views.as_string_view();
        // Runs of one value are common (files are sorted by user): intern each run once.
        let mut last: Option<(usize, u32)> = None;
        for (row, &group) in group_indices.iter().enumerate() {
            if strings.is_null(row) || filter.is_some_and(|f| !f.is_valid(row) || !f.value(row)) {
                continue;
            }
            let id = match last {
                Some((last_row, id)) if same_string(strings, last_row, row) => id,
                _ => self.intern(strings.value(row))?,
            };
            last = Some((row, id));
            let current = self.groups[group];
            if current == NONE
                || (current != id && strings.value(row) > &*self.values[current as usize])
            {
                self.groups[group] = id;
            }
        }
        Ok(())
    }

    /// The values of the groups `emit_to` selects, removed from the state.
    fn emit(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        let groups = emit_to.take_needed(&mut self.groups);
        let len = |id: &u32| self.values.get(*id as usize).map_or(0, |v| v.len());
        let mut offsets = Vec::with_capacity(groups.len() + 1);
        let mut bytes = Vec::with_capacity(groups.iter().map(len).sum());
        offsets.push(0i32);
        for &id in &groups {
            if id != NONE {
                bytes.extend_from_slice(self.values[id as usize].as_bytes());
            }
            let end = i32::try_from(bytes.len()).map_err(|_| {
                datafusion::error::DataFusionError::ResourcesExhausted(format!(
                    "{MAX_REPEATED}: more than 2 GiB of results in one batch"
                ))
            })?;
            offsets.push(end);
        }
        let nulls = NullBuffer::from_iter(groups.iter().map(|&id| id != NONE));
        let nulls = (nulls.null_count() > 0).then_some(nulls);
        let array = StringArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            bytes.into(),
            nulls,
        )?;
        // As views, views of this array's buffer (validated once as a whole, not per view).
        as_type(&(Arc::new(array) as ArrayRef), &self.ty)
    }
}

/// `values` as `ty`, cast only if needed (cheap from `Utf8` to `Utf8View`: views of its
/// buffer).
fn as_type(values: &ArrayRef, ty: &DataType) -> DfResult<ArrayRef> {
    if values.data_type() == ty {
        return Ok(Arc::clone(values));
    }
    Ok(cast(values, ty)?)
}

impl GroupsAccumulator for MaxRepeatedGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.fold(&values[0], group_indices, opt_filter, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        self.emit(emit_to)
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        Ok(vec![self.emit(emit_to)?])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> DfResult<()> {
        // The state is a value like the input: merging is folding.
        self.fold(&values[0], group_indices, None, total_num_groups)
    }

    /// Lets DataFusion skip the partial aggregation when it does not reduce the rows (one
    /// call per span, mostly): each value is its own state, rows filtered out become NULL.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> DfResult<Vec<ArrayRef>> {
        let values = as_type(&values[0], &self.ty)?;
        let Some(filter) = opt_filter else {
            return Ok(vec![values]);
        };
        // Rows the filter drops (false or NULL) hold no value.
        let keep = prep_null_mask_filter(filter);
        Ok(vec![nullif(&values, &not(&keep)?)?])
    }

    fn size(&self) -> usize {
        self.groups.capacity() * size_of::<u32>()
            + self.values.capacity() * size_of::<Box<str>>()
            + self.ids.capacity() * (size_of::<Box<str>>() + size_of::<u32>() + 1)
            + 2 * self.value_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, RecordBatch};
    use datafusion::arrow::datatypes::Schema;
    use datafusion::arrow::util::display::array_value_to_string;
    use datafusion::prelude::SessionContext;

    /// `max_repeated` and `max` over the same groups, with NULLs, a group without values and
    /// values that repeat across groups, grouped both with and without a partial stage, for
    /// text as `Utf8` and as `Utf8View` (with values short enough to be held in the view and
    /// not).
    #[tokio::test]
    async fn matches_max() {
        for ty in [DataType::Utf8, DataType::Utf8View] {
            matches_max_for(ty).await;
        }
    }

    async fn matches_max_for(ty: DataType) {
        let keys: Vec<i32> = (0..5_000).map(|i| (i * 7919) % 1_201).collect();
        let values: Vec<Option<String>> = (0..5_000)
            .map(|i| match i % 13 {
                0 => None,
                k if k % 3 == 0 => Some(format!("user-{}-longer-than-a-view", (i * k) % 97)),
                k => Some(format!("user-{}", (i * k) % 97)),
            })
            .collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int32, false),
            Field::new("v", ty.clone(), true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(keys)),
                cast(&(Arc::new(StringArray::from(values)) as ArrayRef), &ty).expect("cast"),
            ],
        )
        .expect("batch");
        // Partial aggregation skipped from the first rows on (each value its own state, as
        // for calls of one span), so that `convert_to_state` is exercised too.
        let config = datafusion::prelude::SessionConfig::new()
            .with_target_partitions(2)
            .set_usize(
                "datafusion.execution.skip_partial_aggregation_probe_rows_threshold",
                1,
            )
            .set_str(
                "datafusion.execution.skip_partial_aggregation_probe_ratio_threshold",
                "0.0",
            );
        let ctx = SessionContext::new_with_config(config);
        ctx.register_udaf(max_repeated_udaf());
        // Several partitions, so that partial and final aggregations both run.
        let parts: Vec<Vec<RecordBatch>> = (0..4)
            .map(|p| vec![batch.slice(p * 1_250, 1_250)])
            .collect();
        let table =
            datafusion::datasource::MemTable::try_new(batch.schema(), parts).expect("table");
        ctx.register_table("t", Arc::new(table)).expect("register");
        // Rows as text, so that results compare whatever their column names.
        let run = |sql: &str| {
            let ctx = ctx.clone();
            let sql = sql.to_owned();
            async move {
                let batches = ctx
                    .sql(&sql)
                    .await
                    .expect("plan")
                    .collect()
                    .await
                    .expect("run");
                let mut rows = Vec::new();
                for b in &batches {
                    for r in 0..b.num_rows() {
                        let row: Vec<String> = b
                            .columns()
                            .iter()
                            .map(|c| array_value_to_string(c, r).expect("text"))
                            .collect();
                        rows.push(row.join("|"));
                    }
                }
                rows
            }
        };
        let ours = run(
            "SELECT k, max_repeated(v), max_repeated(CASE WHEN k < 0 THEN v END) \
             FROM t GROUP BY k ORDER BY k",
        )
        .await;
        let theirs =
            run("SELECT k, max(v), max(CASE WHEN k < 0 THEN v END) FROM t GROUP BY k ORDER BY k")
                .await;
        assert_eq!(ours.len(), 1_201, "{ty}");
        let result = ctx
            .sql("SELECT max_repeated(v) AS m FROM t GROUP BY k")
            .await
            .expect("plan");
        assert_eq!(result.schema().field(0).data_type(), &ty, "max's type");
        assert_eq!(ours, theirs);
        assert!(ours.iter().any(|r| r.ends_with("|user-96|")), "{ours:?}");
        assert!(
            ours.iter().any(|r| r.ends_with("-longer-than-a-view|")),
            "{ours:?}"
        );
        let filtered =
            run("SELECT k, max_repeated(v) FILTER (WHERE k % 2 = 0) FROM t GROUP BY k ORDER BY k")
                .await;
        let expected =
            run("SELECT k, max(v) FILTER (WHERE k % 2 = 0) FROM t GROUP BY k ORDER BY k").await;
        assert_eq!(filtered, expected, "FILTER clause");
        assert!(
            filtered.iter().any(|r| r == "1|"),
            "odd groups have no value"
        );
        assert_eq!(
            run("SELECT max_repeated(v) FROM t").await,
            run("SELECT max(v) FROM t").await
        );
    }
}
