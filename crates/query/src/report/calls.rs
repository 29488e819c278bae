//! The compliance report's calls and facets, computed in this process in one scan.
//!
//! [`COMPLIANCE_CALLS_SQL`](super::compliance::COMPLIANCE_CALLS_SQL) groups ~10 M spans into
//! ~9 M calls with a dozen aggregate functions, and DataFusion keeps one growing array per
//! function: a 30-day report spent most of its time growing, copying and zeroing memory (perf:
//! 37 % in the kernel clearing fresh pages, 9 % in `memmove`) and peaked at ~3 GB. Here:
//!
//! 1. DataFusion scans and filters the spans ([`SPANS_SQL`]), one stream per scan partition;
//! 2. each stream folds its spans into **one 56-byte state per call** ([`Call`]), identified by
//!    a 128-bit fingerprint of (tenant, call key) ([`fingerprint`]), in shards shared by all
//!    streams ([`Shared`]): a call's spans meet in one shard whichever stream read them, with
//!    no repartitioning of the spans. Each shard is an open-addressing table ([`FpTable`])
//!    whose slots are loaded a thousand spans ahead, so that its cache misses overlap;
//! 3. each shard's calls are summed into the report's facets ([`Partial`]), the PII types
//!    included (no second scan), while the exact latency percentiles are selected from all
//!    calls' durations grouped by model and by day ([`Percentiles`]; `select_nth_unstable`,
//!    as DataFusion's `percentile_cont` does);
//! 4. the shards' facets are merged ([`Partial::merged`]).
//!
//! The figures are those of [`COMPLIANCE_CALLS_SQL`](super::compliance::COMPLIANCE_CALLS_SQL),
//! [`COMPLIANCE_SQL`](super::compliance::COMPLIANCE_SQL) and
//! [`COMPLIANCE_PII_SQL`](super::compliance::COMPLIANCE_PII_SQL), which still compute the
//! report on a cluster, and here when a span holds a value a [`Call`] cannot: the same NULL
//! rules, the same tie-breaks, the same interpolation. Tests compare the two computations on
//! the same store.

use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, Float64Array, Int64Array, ListArray,
    RecordBatch, StringViewArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int64Type};
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;
use genai_audit_core::Usd;
use genai_audit_core::money::USD_SCALE;
use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};

use super::Scope;
use super::compliance::{Facet, FacetRow, class_rank, provider_call_spans};
use crate::QueryEngine;
use crate::error::{Error, Result};
use crate::views::same_string;

/// The provider-call spans of the scope with what the report needs of each: the columns
/// [`CALLS_CTE`](super::compliance::CALLS_CTE) aggregates, before aggregation.
const SPANS_SQL: &str = concat!(
    "SELECT tenant, COALESCE(call_id, record_id) AS call_key,
       COALESCE(response_model, request_model) AS model, user_id, start_time, input_tokens,
       output_tokens, total_cost_usd, duration_ms, status = 'error' AS error, pii_detected,
       CASE WHEN pii_detected THEN pii_types END AS pii_types, ",
    class_rank!(),
    " AS class_rank
FROM audit_log
WHERE ",
    provider_call_spans!(),
    " AND {scope}"
);

/// The compliance report of `scope` computed in process: the facet rows
/// [`COMPLIANCE_SQL`](super::compliance::COMPLIANCE_SQL) would give and the PII types
/// [`COMPLIANCE_PII_SQL`](super::compliance::COMPLIANCE_PII_SQL) would count (by calls, most
/// first); `None` when the period holds a value the fold cannot (see [`Call`]), for the
/// caller to compute the report with SQL.
pub(super) async fn compliance_facets(
    engine: &QueryEngine,
    scope: &Scope,
) -> Result<Option<(Vec<FacetRow>, Vec<(String, u64)>)>> {
    let threads = engine.context().copied_config().target_partitions().max(1);
    let spans = engine.sql(&scope.apply(SPANS_SQL)).await?;
    let task_ctx = Arc::new(spans.task_ctx());
    let scan = spans.create_physical_plan().await?;
    // Each of the scan's partitions folds its spans into shared shards of the calls, split
    // by fingerprint (so a call's spans meet in one shard whichever partition read them).
    // More shards than threads, so that a fold rarely waits for a shard another one holds.
    // Repartitioning the spans by call instead (`RepartitionExec`) cost more than the fold.
    let shards = threads * 4;
    // Sized up front: growing ~9 M calls by doubling spent more time copying and faulting in
    // fresh pages than folding (perf). Shards are even, within a few percent.
    let per_shard = spans_bound(engine, scope) / shards as u64;
    let capacity = usize::try_from(per_shard + per_shard / 16 + 1024).unwrap_or(0);
    let started = std::time::Instant::now();
    let shared = Arc::new(Shared::new(shards, capacity));
    tracing::debug!(
        shards,
        capacity,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "compliance report: room made for the calls"
    );
    // In a set, so that the other partitions' folds stop when one fails or gives up.
    let mut tasks = tokio::task::JoinSet::new();
    for partition in 0..scan.properties().output_partitioning().partition_count() {
        let spans = scan.execute(partition, Arc::clone(&task_ctx))?;
        tasks.spawn(fold_partition(spans, Arc::clone(&shared)));
    }
    while let Some(done) = tasks.join_next().await {
        let beyond = done.map_err(|e| Error::Task(format!("compliance report: {e}")))??;
        if let Some(what) = beyond {
            tracing::info!(
                "compliance report: {what} in the period, more than the in-process fold \
                 holds; computing the report with SQL instead"
            );
            return Ok(None);
        }
    }
    let folded = started.elapsed();
    let Shared { shards, names } = Arc::into_inner(shared)
        .ok_or_else(|| Error::Task("compliance report: a fold outlived its task".into()))?;
    let names = Arc::new(names.into_inner().map_err(poisoned)?);
    let calls = Arc::new(
        shards
            .into_iter()
            .map(|shard| Ok(shard.into_inner().map_err(poisoned)?.calls))
            .collect::<Result<Vec<_>>>()?,
    );
    // Summing ~9 M calls into facets and selecting the percentiles take a while: off the
    // runtime's workers, one task per shard and one for the percentiles.
    let percentiles = {
        let (calls, names) = (Arc::clone(&calls), Arc::clone(&names));
        tokio::task::spawn_blocking(move || Percentiles::of(&calls, &names))
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..calls.len() {
        let (calls, names) = (Arc::clone(&calls), Arc::clone(&names));
        tasks.spawn_blocking(move || (i, partial(&calls[i], &names)));
    }
    let mut partials = Vec::with_capacity(tasks.len());
    while let Some(done) = tasks.join_next().await {
        partials.push(done.map_err(|e| Error::Task(format!("compliance report: {e}")))?);
    }
    // In shard order: the float sums then do not depend on which task ended first.
    partials.sort_by_key(|&(i, _)| i);
    let summed = started.elapsed();
    let percentiles = percentiles
        .await
        .map_err(|e| Error::Task(format!("compliance report: {e}")))?;
    let merged = Partial::merged(partials.into_iter().map(|(_, p)| p), &names);
    let pii = merged.pii_types(&names);
    let merged = (merged.rows(percentiles, &names), pii);
    tracing::debug!(
        fold_ms = folded.as_millis() as u64,
        sum_ms = (summed - folded).as_millis() as u64,
        merge_ms = (started.elapsed() - summed).as_millis() as u64,
        "compliance calls folded and merged"
    );
    Ok(Some(merged))
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> Error {
    Error::Task("compliance report: a fold panicked".into())
}

/// At least as many rows as the spans of `scope`: the rows of the files whose tenant and
/// `start_time` range meet it (the engine's file list, refreshed by the statement just
/// planned).
fn spans_bound(engine: &QueryEngine, scope: &Scope) -> u64 {
    let from = scope.from.map_or(i64::MIN, |t| t.timestamp_micros());
    let to = scope.to.map_or(i64::MAX, |t| t.timestamp_micros());
    engine
        .files()
        .iter()
        .filter(|f| scope.tenant.as_deref().is_none_or(|t| t == f.tenant))
        .filter(|f| f.max_start_us >= from && f.min_start_us < to)
        .map(|f| f.rows)
        .sum()
}

/// Folds one partition's spans into the shared calls; `Some(what)` when a span had a value a
/// [`Call`] cannot hold.
async fn fold_partition(
    mut spans: SendableRecordBatchStream,
    shared: Arc<Shared>,
) -> Result<Option<&'static str>> {
    let started = std::time::Instant::now();
    let mut reader = Reader::default();
    let mut waited = std::time::Duration::ZERO;
    loop {
        let wait = std::time::Instant::now();
        let Some(batch) = spans.next().await else {
            break;
        };
        waited += wait.elapsed();
        if let Some(what) = reader.fold(&batch?, &shared)? {
            return Ok(Some(what));
        }
    }
    tracing::debug!(
        waited_ms = waited.as_millis() as u64,
        fold_ms = (started.elapsed() - waited).as_millis() as u64,
        "compliance partition folded"
    );
    Ok(None)
}

/// "No value" in a [`Call`]'s 32-bit fields.
const NONE: u32 = u32::MAX;
/// "No model" in [`Call::model`].
const NO_MODEL: u16 = u16::MAX;
/// "No day" in [`Call::day`].
const NO_DAY: i32 = i32::MAX;
/// "No cost" in [`Call::cost`].
const NO_COST: i64 = i64::MIN;

/// One provider call: what [`CALLS_CTE`](super::compliance::CALLS_CTE) keeps of its spans, as
/// far as the facets need it. 56 bytes, because a 30-day report holds ~9 M of them and the
/// fold spends most of its time touching fresh memory (perf: the kernel zeroing pages). So
/// the fields are narrow, with sentinels for "none"; a value that does not fit (a token count
/// beyond `u32`, a cost beyond ±9.2 M USD, more than 65,534 models) makes the report fall
/// back to SQL rather than be wrong.
#[derive(Debug, Clone, Copy)]
struct Call {
    /// The call's identity: the fingerprint of (tenant, call key), see [`fingerprint`].
    fp: [u64; 2],
    /// Largest cost (raw `DECIMAL(38,12)`); [`NO_COST`]: none.
    cost: i64,
    /// Longest duration, ms; NaN: none.
    duration: f64,
    /// Largest input tokens; [`NONE`]: none.
    input: u32,
    /// Largest output tokens; [`NONE`]: none.
    output: u32,
    /// Largest user id (interned in [`Names::users`]); [`NONE`]: none.
    user: u32,
    /// Spans merged into the call.
    spans: u32,
    /// UTC day of the earliest `start_time`, days since 1970-01-01 (the day of the minimum is
    /// the minimum of the days); [`NO_DAY`]: none.
    day: i32,
    /// Largest model (interned in [`Names::models`]); [`NO_MODEL`]: none.
    model: u16,
    /// Bit 0: any span an error; bit 1: any span PII-flagged; bits 2–3: the most sensitive
    /// classification, 0 (public) to 3 (restricted); bit 4 + t: a PII-flagged span found PII
    /// type t (interned in [`Names::pii_types`]).
    flags: u16,
}

const ERROR: u16 = 1;
const PII: u16 = 2;
const CLASS: u16 = 0b1100;
/// PII types a [`Call`] can hold.
const PII_TYPES: usize = 12;

impl Call {
    const EMPTY: Call = Call {
        fp: [0; 2],
        cost: NO_COST,
        duration: f64::NAN,
        input: NONE,
        output: NONE,
        user: NONE,
        spans: 0,
        day: NO_DAY,
        model: NO_MODEL,
        flags: 0,
    };

    fn error(&self) -> bool {
        self.flags & ERROR != 0
    }

    fn pii(&self) -> bool {
        self.flags & PII != 0
    }

    fn class_rank(&self) -> usize {
        usize::from((self.flags & CLASS) >> 2)
    }

    /// The PII types found (interned ids).
    fn pii_types(&self) -> impl Iterator<Item = usize> {
        let bits = self.flags >> 4;
        (0..PII_TYPES).filter(move |t| bits & (1 << t) != 0)
    }

    /// Adds the span or call `other` to this call: the aggregates of
    /// [`CALLS_CTE`](super::compliance::CALLS_CTE), with its NULL rules.
    fn add(&mut self, other: &Call, names: &Mutex<Names>) -> std::result::Result<(), &'static str> {
        self.spans = self
            .spans
            .checked_add(other.spans)
            .ok_or("2³² spans in one call")?;
        // Only two different names need comparing, so the (shared) names: not equal ids (the
        // usual case), nor a call's first span (perf: locking for each new call took 8 % of
        // the fold's time).
        let models_differ =
            self.model != other.model && self.model != NO_MODEL && other.model != NO_MODEL;
        let users_differ = self.user != other.user && self.user != NONE && other.user != NONE;
        if models_differ || users_differ {
            let names = names.lock().map_err(|_| "a panicked fold")?;
            if models_differ {
                self.model = names
                    .models
                    .max(u32::from(self.model), u32::from(other.model))
                    as u16;
            }
            if users_differ {
                self.user = names.users.max(self.user, other.user);
            }
        }
        if self.model == NO_MODEL {
            self.model = other.model;
        }
        if self.user == NONE {
            self.user = other.user;
        }
        self.day = self.day.min(other.day);
        self.input = max_some(self.input, other.input);
        self.output = max_some(self.output, other.output);
        // NO_COST is the least i64.
        self.cost = self.cost.max(other.cost);
        // `max` over floats as SQL orders them, NaN here meaning none.
        if !other.duration.is_nan()
            && (self.duration.is_nan() || other.duration.total_cmp(&self.duration).is_gt())
        {
            self.duration = other.duration;
        }
        let class = (self.flags & CLASS).max(other.flags & CLASS);
        self.flags = ((self.flags | other.flags) & !CLASS) | class;
        Ok(())
    }
}

/// The identity of the call `key` of the tenant whose name hashes to `tenant`: its 128-bit
/// XXH3, instead of the ~48 key bytes (which would double the calls' memory).
///
/// Two distinct calls are merged only if their fingerprints collide: with n calls, a chance
/// of about n² / 2¹²⁹ (below 10⁻²⁰ for 10⁹ calls), the same assumption `record_id` (128 bits
/// of SHA-256) already rests on. A sender who wants two calls counted as one needs no
/// collision anyway: it can give them one `call_id`.
fn fingerprint(tenant: u64, key: &[u8]) -> [u64; 2] {
    let h = twox_hash::XxHash3_128::oneshot_with_seed(tenant, key);
    [h as u64, (h >> 64) as u64]
}

/// The seed of a tenant's fingerprints ([`fingerprint`]): the same in every partition.
fn tenant_seed(tenant: Option<&str>) -> u64 {
    // `\xff` is no UTF-8 string, so no tenant's name.
    let name: &[u8] = tenant.map_or(b"\xff", str::as_bytes);
    twox_hash::XxHash3_128::oneshot(name) as u64
}

/// Distinct strings, each stored once, numbered in order of arrival.
#[derive(Debug, Default)]
///
/// Looked up behind a batch's [`ViewIds`], which already catch repeated values.
struct Interner {
    table: HashTable<u32>,
    strings: Vec<Box<str>>,
}

impl Interner {
    fn id(&mut self, s: &str) -> u32 {
        let Self { table, strings } = self;
        let h = FxBuildHasher.hash_one(s);
        match table.find(h, |&i| *strings[i as usize] == *s) {
            Some(&i) => i,
            None => {
                let i = strings.len() as u32;
                strings.push(s.into());
                table.insert_unique(h, i, |&j| FxBuildHasher.hash_one(&*strings[j as usize]));
                i
            }
        }
    }

    fn get(&self, id: u32) -> &str {
        &self.strings[id as usize]
    }

    /// The larger of two ids' strings (byte-wise, as SQL `max`), [`NONE`] ignored.
    fn max(&self, a: u32, b: u32) -> u32 {
        match (a, b) {
            (NONE, x) | (x, NONE) => x,
            (a, b) if a == b => a,
            (a, b) => {
                if self.get(b) > self.get(a) {
                    b
                } else {
                    a
                }
            }
        }
    }
}

/// The names the calls refer to by number, shared by all partitions' folds.
#[derive(Debug, Default)]
struct Names {
    models: Interner,
    users: Interner,
    pii_types: Interner,
}

/// What the partitions' folds share: the calls, in shards by fingerprint, and their names.
///
/// A fold locks one shard at a time, for one batch's spans of that shard, and takes the
/// names' lock only to number a name it has not seen in the batch, or inside a shard to
/// compare two names (the lock order is shard, then names).
#[derive(Debug)]
struct Shared {
    shards: Vec<Mutex<Calls>>,
    names: Mutex<Names>,
}

impl Shared {
    /// `shards` shards, with room for `capacity` calls each.
    fn new(shards: usize, capacity: usize) -> Self {
        Self {
            shards: (0..shards)
                .map(|_| Mutex::new(Calls::with_capacity(capacity)))
                .collect(),
            names: Mutex::default(),
        }
    }

    /// The shard of the call `fp`.
    fn shard(&self, fp: &[u64; 2]) -> usize {
        // The table's slot comes from fp[0] and its tag from fp[1]'s high half: the low half
        // is free to pick the shard.
        (fp[1] as u32 as usize) % self.shards.len()
    }
}

/// Calls: a table over their fingerprints, and one [`Call`] each.
#[derive(Debug, Default)]
struct Calls {
    table: FpTable,
    calls: Vec<Call>,
}

/// One partition's reading of its batches into spans for the shared calls.
#[derive(Debug, Default)]
struct Reader {
    /// Tenant names by view, numbered by [`Reader::tenants`].
    tenant_views: ViewIds,
    tenants: Interner,
    /// The fingerprint seed of each of [`Reader::tenants`].
    seeds: Vec<u64>,
    model_views: ViewIds,
    user_views: ViewIds,
    /// The PII type names seen, with their shared ids.
    pii_types: Vec<(Box<str>, u16)>,
    /// The current batch's spans, each as a call of one span, and their order by shard.
    spans: Vec<Call>,
    by_shard: Vec<u32>,
    shard_ends: Vec<usize>,
}

/// The interned ids of one batch's views of a string column.
///
/// Parquet decodes a dictionary-encoded column (models, users) into views of the
/// dictionary's values, so equal views are equal strings, and a 16-byte view compares and
/// hashes faster than the string. Rows come sorted by user within a file, so most lookups
/// repeat the previous row's value: when its view differs (a value the column does not share,
/// such as the `tenant` partition value DataFusion repeats row by row, or a page that is not
/// dictionary-encoded), the strings are compared before anything is hashed. Cleared between
/// batches: a view names a buffer of its array.
#[derive(Debug, Default)]
struct ViewIds {
    ids: FxHashMap<u128, u32>,
    /// The last row looked up and its id.
    last: Option<(usize, u32)>,
}

impl ViewIds {
    fn clear(&mut self) {
        self.ids.clear();
        self.last = None;
    }

    /// The id of `array[row]` ([`NONE`] for NULL), `intern` numbering a string not seen in
    /// this batch.
    fn id<E>(
        &mut self,
        array: &StringViewArray,
        row: usize,
        intern: impl FnOnce(&str) -> std::result::Result<u32, E>,
    ) -> std::result::Result<u32, E> {
        if !array.is_valid(row) {
            return Ok(NONE);
        }
        if let Some((last_row, id)) = self.last
            && same_string(array, last_row, row)
        {
            self.last = Some((row, id));
            return Ok(id);
        }
        let view = array.views()[row];
        let id = match self.ids.get(&view) {
            Some(&id) => id,
            None => {
                let id = intern(array.value(row))?;
                self.ids.insert(view, id);
                id
            }
        };
        self.last = Some((row, id));
        Ok(id)
    }
}

/// Fingerprint → call index: open addressing with linear probing, in one array of slots that
/// each hold a 32-bit tag of the fingerprint and the index + 1 (0: empty), so that a probe
/// reads one cache line, and the calls only on a tag match.
///
/// Its own table rather than `hashbrown`'s for [`FpTable::touch`]: ~9 M calls make it far
/// larger than the caches, and perf showed the fold waiting on the table's first cache miss
/// for three quarters of its time.
#[derive(Debug)]
struct FpTable {
    slots: Vec<u64>,
    mask: usize,
    len: usize,
}

const TAG: u64 = 0xffff_ffff_0000_0000;

impl Default for FpTable {
    fn default() -> Self {
        Self {
            slots: vec![0; 16],
            mask: 15,
            len: 0,
        }
    }
}

impl FpTable {
    /// Room for `n` entries without growing (at most 3/4 full); an empty default table when
    /// the system refuses the memory.
    fn with_capacity(n: usize) -> Self {
        let size = n
            .saturating_add(n / 3)
            .max(16)
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX);
        let mut slots = Vec::new();
        if slots.try_reserve_exact(size).is_err() {
            return Self::default();
        }
        slots.resize(size, 0);
        Self {
            slots,
            mask: size - 1,
            len: 0,
        }
    }

    fn home(&self, fp: &[u64; 2]) -> usize {
        fp[0] as usize & self.mask
    }

    /// Loads the home slots of `fps`. The loads are independent, so the CPU overlaps their
    /// cache misses, and the probes that follow find their slots in cache: a prefetch in
    /// safe code.
    fn touch(&self, fps: &[[u64; 2]]) {
        let mut sink = 0;
        for fp in fps {
            sink ^= self.slots[self.home(fp)];
        }
        std::hint::black_box(sink);
    }

    /// The index of the call with fingerprint `fp` among `calls`, or the slot where it goes.
    fn find(&self, fp: &[u64; 2], calls: &[Call]) -> std::result::Result<u32, usize> {
        let tag = fp[1] & TAG;
        let mut pos = self.home(fp);
        loop {
            let slot = self.slots[pos];
            if slot == 0 {
                return Err(pos);
            }
            if slot & TAG == tag {
                let i = (slot as u32).wrapping_sub(1);
                if calls.get(i as usize).is_some_and(|c| c.fp == *fp) {
                    return Ok(i);
                }
            }
            pos = (pos + 1) & self.mask;
        }
    }

    /// Puts call `i` (fingerprint `fp`, `i < u32::MAX`) in slot `pos` (from [`FpTable::find`]),
    /// growing the table when it becomes 3/4 full (rehashing from `calls`).
    fn insert(&mut self, pos: usize, fp: &[u64; 2], i: u32, calls: &[Call]) {
        self.slots[pos] = (fp[1] & TAG) | u64::from(i + 1);
        self.len += 1;
        if self.len > self.slots.len() / 4 * 3 {
            let mut grown = Self {
                slots: vec![0; self.slots.len() * 2],
                mask: self.slots.len() * 2 - 1,
                len: 0,
            };
            for &slot in &self.slots {
                if slot != 0 {
                    let fp = &calls[(slot as u32 - 1) as usize].fp;
                    let mut pos = grown.home(fp);
                    while grown.slots[pos] != 0 {
                        pos = (pos + 1) & grown.mask;
                    }
                    grown.slots[pos] = slot;
                    grown.len += 1;
                }
            }
            *self = grown;
        }
    }
}

/// The columns of one batch of [`SPANS_SQL`], with the types this module reads.
struct SpanColumns {
    tenant: StringViewArray,
    call_key: StringViewArray,
    model: StringViewArray,
    user: StringViewArray,
    start: Int64Array,
    input: Int64Array,
    output: Int64Array,
    cost: Option<Decimal128Array>,
    duration: Float64Array,
    error: BooleanArray,
    pii: BooleanArray,
    class_rank: Int64Array,
    /// The PII types of PII-flagged spans: offsets into `pii_type_names`.
    pii_types: Option<ListArray>,
    pii_type_names: StringViewArray,
}

fn column(batch: &RecordBatch, name: &str, to: &DataType) -> Result<ArrayRef> {
    let c = batch
        .column_by_name(name)
        .ok_or_else(|| unexpected(format!("no column {name}")))?;
    if c.data_type() == to {
        return Ok(Arc::clone(c));
    }
    cast(c, to).map_err(|e| unexpected(format!("column {name}: {e}")))
}

fn unexpected(reason: String) -> Error {
    Error::UnexpectedResult {
        query: "compliance spans",
        reason,
    }
}

impl SpanColumns {
    fn of(batch: &RecordBatch) -> Result<Self> {
        let text = |name| {
            Ok::<_, Error>(
                column(batch, name, &DataType::Utf8View)?
                    .as_string_view()
                    .clone(),
            )
        };
        let int = |name| {
            Ok::<_, Error>(
                column(batch, name, &DataType::Int64)?
                    .as_primitive::<Int64Type>()
                    .clone(),
            )
        };
        let boolean = |name| {
            Ok::<_, Error>(
                column(batch, name, &DataType::Boolean)?
                    .as_boolean()
                    .clone(),
            )
        };
        let cost = batch
            .column_by_name("total_cost_usd")
            .ok_or_else(|| unexpected("no column total_cost_usd".into()))?;
        let cost = match cost.data_type() {
            DataType::Decimal128(_, s) if *s == USD_SCALE => {
                Some(cost.as_primitive::<Decimal128Type>().clone())
            }
            DataType::Null => None,
            other => {
                return Err(unexpected(format!(
                    "column total_cost_usd is {other}, expected DECIMAL(38,{USD_SCALE})"
                )));
            }
        };
        let pii_types = batch
            .column_by_name("pii_types")
            .ok_or_else(|| unexpected("no column pii_types".into()))?;
        let (pii_types, pii_type_names) = match pii_types.data_type() {
            DataType::Null => (None, StringViewArray::from(Vec::<&str>::new())),
            _ => {
                let list = pii_types.as_list_opt::<i32>().ok_or_else(|| {
                    unexpected(format!("column pii_types is {}", pii_types.data_type()))
                })?;
                let names = cast(list.values(), &DataType::Utf8View)
                    .map_err(|e| unexpected(format!("column pii_types: {e}")))?;
                (Some(list.clone()), names.as_string_view().clone())
            }
        };
        Ok(Self {
            tenant: text("tenant")?,
            call_key: text("call_key")?,
            model: text("model")?,
            user: text("user_id")?,
            start: int("start_time")?,
            input: int("input_tokens")?,
            output: int("output_tokens")?,
            cost,
            duration: column(batch, "duration_ms", &DataType::Float64)?
                .as_primitive::<Float64Type>()
                .clone(),
            error: boolean("error")?,
            pii: boolean("pii_detected")?,
            class_rank: int("class_rank")?,
            pii_types,
            pii_type_names,
        })
    }
}

impl Reader {
    /// Folds one batch of [`SPANS_SQL`] into `shared`'s calls; `Some(what)`, and nothing
    /// folded, when a span has a value a [`Call`] cannot hold.
    fn fold(&mut self, batch: &RecordBatch, shared: &Shared) -> Result<Option<&'static str>> {
        let c = SpanColumns::of(batch)?;
        self.tenant_views.clear();
        self.model_views.clear();
        self.user_views.clear();
        self.spans.clear();
        for row in 0..batch.num_rows() {
            match self.span(&c, row, &shared.names)? {
                Ok(span) => self.spans.push(span),
                Err(what) => return Ok(Some(what)),
            }
        }
        // The spans in shard order (a counting sort), so that each shard is locked once.
        let shards = shared.shards.len();
        self.shard_ends.clear();
        self.shard_ends.resize(shards + 1, 0);
        for span in &self.spans {
            self.shard_ends[shared.shard(&span.fp) + 1] += 1;
        }
        for s in 0..shards {
            self.shard_ends[s + 1] += self.shard_ends[s];
        }
        let mut next = self.shard_ends.clone();
        self.by_shard.clear();
        self.by_shard.resize(self.spans.len(), 0);
        for (i, span) in self.spans.iter().enumerate() {
            let s = shared.shard(&span.fp);
            self.by_shard[next[s]] = i as u32;
            next[s] += 1;
        }
        // Each shard once: those free first, then waiting for the others.
        let mut pending: Vec<usize> = (0..shards)
            .filter(|&s| self.shard_ends[s + 1] > self.shard_ends[s])
            .collect();
        while !pending.is_empty() {
            let free =
                pending
                    .iter()
                    .enumerate()
                    .find_map(|(k, &s)| match shared.shards[s].try_lock() {
                        Ok(guard) => Some((k, s, guard)),
                        Err(_) => None,
                    });
            let (k, s, mut calls) = match free {
                Some(free) => free,
                None => {
                    let s = pending[0];
                    (0, s, shared.shards[s].lock().map_err(poisoned)?)
                }
            };
            pending.swap_remove(k);
            let rows = &self.by_shard[self.shard_ends[s]..self.shard_ends[s + 1]];
            let spans = rows.iter().map(|&i| self.spans[i as usize]);
            if let Err(what) = calls.add(spans, &shared.names) {
                return Ok(Some(what));
            }
        }
        Ok(None)
    }

    /// Row `row` of `c` as a call of one span; `Err` inside: which value a [`Call`] cannot
    /// hold.
    fn span(
        &mut self,
        c: &SpanColumns,
        row: usize,
        names: &Mutex<Names>,
    ) -> Result<std::result::Result<Call, &'static str>> {
        let Self { tenants, seeds, .. } = self;
        let tenant = self.tenant_views.id(&c.tenant, row, |t| {
            let id = tenants.id(t);
            if id as usize == seeds.len() {
                seeds.push(tenant_seed(Some(t)));
            }
            Ok::<_, Error>(id)
        })?;
        let seed = match tenant {
            NONE => tenant_seed(None),
            t => self.seeds[t as usize],
        };
        // COALESCE(call_id, record_id) is NULL only for a record without an id: such rows
        // form one call per tenant, as `GROUP BY` puts NULL keys together. (`\xff` is no
        // UTF-8 string, so no key's bytes.)
        let key: &[u8] = if c.call_key.is_valid(row) {
            c.call_key.value(row).as_bytes()
        } else {
            b"\xff"
        };
        let mut span = Call {
            fp: fingerprint(seed, key),
            spans: 1,
            ..Call::EMPTY
        };
        let lock = || names.lock().map_err(poisoned);
        let model = self
            .model_views
            .id(&c.model, row, |m| Ok::<_, Error>(lock()?.models.id(m)))?;
        span.model = match model {
            NONE => NO_MODEL,
            m => match u16::try_from(m).ok().filter(|&m| m != NO_MODEL) {
                Some(m) => m,
                None => return Ok(Err("more than 65,534 models")),
            },
        };
        span.user = self
            .user_views
            .id(&c.user, row, |u| Ok::<_, Error>(lock()?.users.id(u)))?;
        if c.start.is_valid(row) {
            // i64 µs / a day's µs always fits an i32.
            let day = c.start.value(row).div_euclid(DAY_US);
            span.day = i32::try_from(day).unwrap_or(NO_DAY - 1);
        }
        let tokens = |a: &Int64Array| -> std::result::Result<u32, &'static str> {
            if !a.is_valid(row) {
                return Ok(NONE);
            }
            u32::try_from(a.value(row))
                .ok()
                .filter(|&t| t != NONE)
                .ok_or("a token count beyond 0..2³²−1")
        };
        match (tokens(&c.input), tokens(&c.output)) {
            (Ok(input), Ok(output)) => (span.input, span.output) = (input, output),
            (Err(what), _) | (_, Err(what)) => return Ok(Err(what)),
        }
        if let Some(cost) = &c.cost
            && cost.is_valid(row)
        {
            match i64::try_from(cost.value(row))
                .ok()
                .filter(|&v| v != NO_COST)
            {
                Some(cost) => span.cost = cost,
                None => return Ok(Err("a cost beyond ±9.2 M USD")),
            }
        }
        if c.duration.is_valid(row) {
            span.duration = c.duration.value(row);
        }
        if c.error.is_valid(row) && c.error.value(row) {
            span.flags |= ERROR;
        }
        if c.pii.is_valid(row) && c.pii.value(row) {
            span.flags |= PII;
        }
        if c.class_rank.is_valid(row) {
            span.flags |= (c.class_rank.value(row).clamp(0, 3) as u16) << 2;
        }
        if let Some(list) = &c.pii_types
            && list.is_valid(row)
        {
            let offsets = list.value_offsets();
            for v in offsets[row] as usize..offsets[row + 1] as usize {
                // `unnest` gives a NULL element a NULL type, which the report leaves out.
                if !c.pii_type_names.is_valid(v) {
                    continue;
                }
                let name = c.pii_type_names.value(v);
                let id = match self.pii_types.iter().find(|(n, _)| **n == *name) {
                    Some(&(_, id)) => id,
                    None => {
                        let id = lock()?.pii_types.id(name);
                        let Some(id) = u16::try_from(id).ok().filter(|&i| (i as usize) < PII_TYPES)
                        else {
                            return Ok(Err("more than 12 PII types"));
                        };
                        self.pii_types.push((name.into(), id));
                        id
                    }
                };
                span.flags |= 1 << (4 + id);
            }
        }
        Ok(Ok(span))
    }
}

impl Calls {
    /// Room for `calls` calls without growing.
    fn with_capacity(calls: usize) -> Self {
        // The bound counts whole files: it can be far above what the period holds. Untouched
        // reserved memory costs nothing, but a reservation the system refuses must not abort
        // the process: then the table and the calls grow as needed instead.
        let mut t = Self {
            table: FpTable::with_capacity(calls),
            calls: Vec::new(),
        };
        if t.calls.try_reserve_exact(calls).is_err() || t.table.slots.len() < calls {
            tracing::debug!(
                calls,
                "compliance report: could not reserve room for the calls up front"
            );
        }
        t
    }

    /// The index of the call with fingerprint `fp`, created empty when new; `None` past
    /// `u32::MAX - 1` calls.
    fn call(&mut self, fp: [u64; 2]) -> Option<usize> {
        match self.table.find(&fp, &self.calls) {
            Ok(i) => Some(i as usize),
            Err(pos) => {
                let i = u32::try_from(self.calls.len())
                    .ok()
                    .filter(|&i| i < u32::MAX - 1)?;
                self.calls.push(Call { fp, ..Call::EMPTY });
                self.table.insert(pos, &fp, i, &self.calls);
                Some(i as usize)
            }
        }
    }

    /// Adds `spans` (calls of one span each) to their calls.
    fn add(
        &mut self,
        spans: impl ExactSizeIterator<Item = Call> + Clone,
        names: &Mutex<Names>,
    ) -> std::result::Result<(), &'static str> {
        /// Spans whose table slots are loaded together ([`FpTable::touch`]): their cache
        /// lines (64 KiB) stay in L2 until probed.
        const AHEAD: usize = 1024;
        let mut ahead = spans.clone();
        let mut fps = [[0u64; 2]; AHEAD];
        for (n, span) in spans.enumerate() {
            if n % AHEAD == 0 {
                let k = ahead.by_ref().take(AHEAD).fold(0, |k, s| {
                    fps[k] = s.fp;
                    k + 1
                });
                self.table.touch(&fps[..k]);
            }
            let i = self
                .call(span.fp)
                .ok_or("more than 2³² − 2 calls in a shard")?;
            self.calls[i].add(&span, names)?;
        }
        Ok(())
    }
}

/// Sums a shard's calls into its facets (all but the latency percentiles: [`Percentiles`]).
fn partial(calls: &[Call], names: &Names) -> Partial {
    let users = names.users.strings.len();
    let models = names.models.strings.len();
    let mut p = Partial::new(names);
    // The last model slot holds the calls without a model.
    let model = |c: &Call| {
        if c.model == NO_MODEL {
            models
        } else {
            usize::from(c.model)
        }
    };
    let day = |c: &Call| (c.day != NO_DAY).then(|| i64::from(c.day));
    for call in calls {
        p.total.add(call);
        p.models[model(call)].add(call);
        if let Some(day) = day(call) {
            p.days
                .entry(day)
                .or_insert_with(|| Acc::new(users))
                .add(call);
        }
        if call.user != NONE {
            p.users[call.user as usize].add(call);
        }
        p.classes[call.class_rank()] += 1;
        p.latency[latency_bucket(call.duration)] += 1;
        for t in call.pii_types() {
            p.pii_types[t] += 1;
        }
    }
    p
}

/// p50, p95 and p99 of the durations of a group of calls.
type Latency = [Option<f64>; 3];

/// The latency percentiles of the report's groups.
#[derive(Debug, Default)]
struct Percentiles {
    total: Latency,
    /// By model id; the last: the calls without a model.
    models: Vec<Latency>,
    /// By day (days since 1970-01-01, UTC).
    days: FxHashMap<i64, Latency>,
}

impl Percentiles {
    /// The percentiles of the calls of all `shards`. The durations are gathered by model
    /// into one buffer and each model's selected in its slice, then the total's in the whole
    /// buffer; the days' likewise in a second buffer, in a second thread. Two buffers of all
    /// the durations in all (~75 MB each for a 30-day report), instead of one per group and
    /// shard: fresh memory is what the report spends most on.
    fn of(shards: &[Vec<Call>], names: &Names) -> Self {
        let calls = || shards.iter().flatten().filter(|c| !c.duration.is_nan());
        let models = names.models.strings.len();
        let model = |c: &Call| {
            Some(if c.model == NO_MODEL {
                models
            } else {
                usize::from(c.model)
            })
        };
        std::thread::scope(|s| {
            let days = s.spawn(|| {
                let mut ids: FxHashMap<i32, usize> = FxHashMap::default();
                for c in calls() {
                    if c.day != NO_DAY {
                        let n = ids.len();
                        ids.entry(c.day).or_insert(n);
                    }
                }
                let (mut buffer, ends) = grouped(calls(), ids.len(), |c| ids.get(&c.day).copied());
                ids.into_iter()
                    .map(|(day, g)| {
                        let start = if g == 0 { 0 } else { ends[g - 1] };
                        (i64::from(day), percentiles(&mut buffer[start..ends[g]]))
                    })
                    .collect()
            });
            let (mut buffer, ends) = grouped(calls(), models + 1, model);
            let by_model = (0..=models)
                .map(|g| {
                    let start = if g == 0 { 0 } else { ends[g - 1] };
                    percentiles(&mut buffer[start..ends[g]])
                })
                .collect();
            Percentiles {
                total: percentiles(&mut buffer),
                models: by_model,
                days: join(days),
            }
        })
    }
}

/// The durations of `calls` grouped by `group` (`0..groups`; `None`: left out), in one buffer,
/// with the end of each group's slice.
fn grouped<'a>(
    calls: impl Iterator<Item = &'a Call> + Clone,
    groups: usize,
    group: impl Fn(&Call) -> Option<usize>,
) -> (Vec<f64>, Vec<usize>) {
    let mut ends = vec![0; groups];
    for c in calls.clone() {
        if let Some(g) = group(c) {
            ends[g] += 1;
        }
    }
    let mut next = Vec::with_capacity(groups);
    let mut end = 0;
    for n in &mut ends {
        next.push(end);
        end += *n;
        *n = end;
    }
    let mut buffer = vec![0.0; end];
    for c in calls {
        if let Some(g) = group(c) {
            buffer[next[g]] = c.duration;
            next[g] += 1;
        }
    }
    (buffer, ends)
}

/// The larger of two [`NONE`]-or-count fields, [`NONE`] ignored.
fn max_some(a: u32, b: u32) -> u32 {
    match (a, b) {
        (NONE, x) | (x, NONE) => x,
        (a, b) => a.max(b),
    }
}

/// Microseconds per day.
const DAY_US: i64 = 86_400_000_000;

/// The index of the latency facet's bucket, as [`COMPLIANCE_SQL`]'s `CASE` computes it
/// (a call without a duration falls to the `ELSE`, the last bucket).
///
/// [`COMPLIANCE_SQL`]: super::compliance::COMPLIANCE_SQL
fn latency_bucket(duration_ms: f64) -> usize {
    super::compliance::LATENCY_BUCKETS
        .iter()
        .position(|&(_, _, max)| max.is_some_and(|max| duration_ms < max))
        .unwrap_or(super::compliance::LATENCY_BUCKETS.len() - 1)
}

/// The figures of a set of calls (a facet's group).
#[derive(Debug, Clone, Default)]
struct Acc {
    figures: Figures,
    no_user: u64,
    duration_sum: f64,
    /// Calls with a duration.
    timed: u64,
    /// Bit `u` set: the user interned as `u` made one of the calls.
    users: Vec<u64>,
}

impl Acc {
    fn new(users: usize) -> Self {
        Self {
            users: vec![0; users.div_ceil(64)],
            ..Self::default()
        }
    }

    fn add(&mut self, c: &Call) {
        self.figures.add(c);
        if c.user == NONE {
            self.no_user += 1;
        } else {
            self.users[c.user as usize / 64] |= 1 << (c.user % 64);
        }
        if !c.duration.is_nan() {
            self.duration_sum += c.duration;
            self.timed += 1;
        }
    }

    /// Adds `other` (its users numbered as this one's).
    fn merge(&mut self, other: &Acc) {
        self.figures.merge(&other.figures);
        self.no_user += other.no_user;
        self.duration_sum += other.duration_sum;
        self.timed += other.timed;
        if self.users.len() < other.users.len() {
            self.users.resize(other.users.len(), 0);
        }
        for (a, b) in self.users.iter_mut().zip(&other.users) {
            *a |= b;
        }
    }

    /// The facet row of these calls (the latency figures computed here).
    fn row(self, facet: Facet, key: Option<String>, latency: Latency) -> FacetRow {
        let [p50, p95, p99] = latency;
        FacetRow {
            users: self.users.iter().map(|w| u64::from(w.count_ones())).sum(),
            no_user: self.no_user,
            latency_avg_ms: (self.timed > 0).then(|| self.duration_sum / self.timed as f64),
            latency_p50_ms: p50,
            latency_p95_ms: p95,
            latency_p99_ms: p99,
            ..self.figures.row(facet, key)
        }
    }
}

/// A token sum as the SQL path reads it back (`Rows::counts`: negative → 0).
fn count(sum: i128) -> u64 {
    u64::try_from(sum).unwrap_or(0)
}

/// The sums and counts of a set of calls: all the user facet has (no latency, no distinct
/// counts), and part of every other group's [`Acc`].
#[derive(Debug, Clone, Default)]
struct Figures {
    requests: u64,
    spans: u64,
    input: i128,
    output: i128,
    cost: i128,
    priced: u64,
    errors: u64,
    pii: u64,
}

impl Figures {
    fn add(&mut self, c: &Call) {
        self.requests += 1;
        self.spans += u64::from(c.spans);
        if c.input != NONE {
            self.input += i128::from(c.input);
        }
        if c.output != NONE {
            self.output += i128::from(c.output);
        }
        if c.cost != NO_COST {
            self.cost += i128::from(c.cost);
            self.priced += 1;
        }
        self.errors += u64::from(c.error());
        self.pii += u64::from(c.pii());
    }

    fn merge(&mut self, o: &Figures) {
        self.requests += o.requests;
        self.spans += o.spans;
        self.input += o.input;
        self.output += o.output;
        self.cost += o.cost;
        self.priced += o.priced;
        self.errors += o.errors;
        self.pii += o.pii;
    }

    /// The facet row of these figures.
    fn row(&self, facet: Facet, key: Option<String>) -> FacetRow {
        FacetRow {
            requests: self.requests,
            spans: self.spans,
            input_tokens: count(self.input),
            output_tokens: count(self.output),
            cost_usd: Usd::from_raw(self.cost),
            priced: self.priced,
            errors: self.errors,
            pii_calls: self.pii,
            ..FacetRow::new(facet, key)
        }
    }
}

/// The facets of some calls (a shard's, or all shards' merged), their models, users and PII
/// types numbered as in [`Names`].
#[derive(Debug)]
struct Partial {
    total: Acc,
    /// By model id; the last slot holds the calls without a model.
    models: Vec<Acc>,
    /// By day (days since 1970-01-01, UTC).
    days: FxHashMap<i64, Acc>,
    /// By user id.
    users: Vec<Figures>,
    /// Calls by classification rank.
    classes: [u64; 4],
    /// Calls by latency bucket.
    latency: [u64; 10],
    /// Calls by PII type id.
    pii_types: Vec<u64>,
}

impl Partial {
    /// No calls yet, with room for every name of `names`.
    fn new(names: &Names) -> Self {
        let users = names.users.strings.len();
        Self {
            total: Acc::new(users),
            models: (0..=names.models.strings.len())
                .map(|_| Acc::new(users))
                .collect(),
            days: FxHashMap::default(),
            users: vec![Figures::default(); users],
            classes: [0; 4],
            latency: [0; 10],
            pii_types: vec![0; names.pii_types.strings.len()],
        }
    }

    /// The shards' facets, merged.
    fn merged(shards: impl IntoIterator<Item = Partial>, names: &Names) -> Self {
        let mut merged = Partial::new(names);
        for p in shards {
            merged.merge(p);
        }
        merged
    }

    fn merge(&mut self, p: Partial) {
        self.total.merge(&p.total);
        for (a, b) in self.models.iter_mut().zip(&p.models) {
            a.merge(b);
        }
        for (day, acc) in p.days {
            match self.days.entry(day) {
                std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().merge(&acc),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(acc);
                }
            }
        }
        for (a, b) in self.users.iter_mut().zip(&p.users) {
            a.merge(b);
        }
        for (a, b) in self.classes.iter_mut().zip(p.classes) {
            *a += b;
        }
        for (a, b) in self.latency.iter_mut().zip(p.latency) {
            *a += b;
        }
        for (a, b) in self.pii_types.iter_mut().zip(p.pii_types) {
            *a += b;
        }
    }

    /// Calls by PII type, most first (ties: by name), as
    /// [`COMPLIANCE_PII_SQL`](super::compliance::COMPLIANCE_PII_SQL) orders them.
    fn pii_types(&self, names: &Names) -> Vec<(String, u64)> {
        let mut types: Vec<(String, u64)> = (self.pii_types.iter().enumerate())
            .filter(|&(_, &n)| n > 0)
            .map(|(t, &n)| (names.pii_types.get(t as u32).to_owned(), n))
            .collect();
        types.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        types
    }

    /// The rows [`COMPLIANCE_SQL`](super::compliance::COMPLIANCE_SQL) would give.
    fn rows(self, latency: Percentiles, names: &Names) -> Vec<FacetRow> {
        let model_name = |m: usize| names.models.strings.get(m).map(|n| n.to_string());
        let used = |acc: &&Acc| acc.figures.requests > 0;
        let models_used = self.models[..self.models.len() - 1]
            .iter()
            .filter(used)
            .count() as u64;
        let mut rows = vec![FacetRow {
            models: models_used,
            ..self.total.row(Facet::Total, None, latency.total)
        }];
        for (m, (acc, l)) in self.models.into_iter().zip(latency.models).enumerate() {
            if acc.figures.requests > 0 {
                rows.push(acc.row(Facet::Model, model_name(m), l));
            }
        }
        let mut day_latency = latency.days;
        for (day, acc) in self.days {
            let key = chrono::DateTime::from_timestamp_micros(day * DAY_US)
                .map(|t| t.date_naive().to_string());
            let l = day_latency.remove(&day).unwrap_or_default();
            rows.push(acc.row(Facet::Day, key, l));
        }
        rows.extend(top_users(&names.users, &self.users));
        let names = ["public", "internal", "confidential", "restricted"];
        for (rank, &n) in self.classes.iter().enumerate() {
            if n > 0 {
                rows.push(FacetRow {
                    requests: n,
                    ..FacetRow::new(Facet::Classification, Some(names[rank].to_owned()))
                });
            }
        }
        for (bucket, &n) in self.latency.iter().enumerate() {
            if n > 0 {
                rows.push(FacetRow {
                    requests: n,
                    ..FacetRow::new(Facet::Latency, Some(bucket.to_string()))
                });
            }
        }
        rows
    }
}

/// The result of a scoped thread, its panic carried on.
fn join<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The users [`COMPLIANCE_SQL`](super::compliance::COMPLIANCE_SQL)'s `user` facet keeps: the
/// top [`TOP_USERS`](super::compliance::TOP_USERS) by requests (ties: user id) and by cost
/// (no priced call last, then requests, then user id).
fn top_users(names: &Interner, figures: &[Figures]) -> Vec<FacetRow> {
    use super::compliance::TOP_USERS;
    let mut ids: Vec<usize> = (0..figures.len())
        .filter(|&u| figures[u].requests > 0)
        .collect();
    let name = |u: usize| names.get(u as u32);
    let mut keep = vec![false; figures.len()];
    ids.sort_by(|&a, &b| {
        figures[b]
            .requests
            .cmp(&figures[a].requests)
            .then_with(|| name(a).cmp(name(b)))
    });
    for &u in ids.iter().take(TOP_USERS) {
        keep[u] = true;
    }
    // SQL: `sum(cost_usd) DESC NULLS LAST`; the sum is NULL without a priced call.
    let cost = |u: usize| (figures[u].priced > 0).then_some(figures[u].cost);
    ids.sort_by(|&a, &b| {
        match (cost(a), cost(b)) {
            (Some(x), Some(y)) => y.cmp(&x),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
        .then_with(|| figures[b].requests.cmp(&figures[a].requests))
        .then_with(|| name(a).cmp(name(b)))
    });
    for &u in ids.iter().take(TOP_USERS) {
        keep[u] = true;
    }
    (0..figures.len())
        .filter(|&u| keep[u])
        .map(|u| figures[u].row(Facet::User, Some(name(u).to_owned())))
        .collect()
}

/// DataFusion's `percentile_cont` interpolation weight is truncated to this precision; the
/// same here, so both computations give the same figures.
const INTERPOLATION_PRECISION: f64 = 1_000_000.0;

/// p50, p95 and p99 of `values` (reordered), as DataFusion's `percentile_cont` computes them:
/// the order statistics at `p·(n−1)` and the next, linearly interpolated.
///
/// Each percentile's order statistics lie at or after the previous one's, so each selection
/// runs on what is right of the previous one: about two passes over the values in all,
/// instead of a sort.
fn percentiles(values: &mut [f64]) -> [Option<f64>; 3] {
    let n = values.len();
    let mut out = [None; 3];
    if n == 0 {
        return out;
    }
    if n == 1 {
        return [Some(values[0]); 3];
    }
    let mut done = 0; // values[..done] are all ≤ values[done..] (and sorted where selected)
    for (slot, p) in out.iter_mut().zip([0.5, 0.95, 0.99]) {
        let index = p * ((n - 1) as f64);
        let lower = index.floor() as usize;
        let upper = index.ceil() as usize;
        let lower_value = nth(values, done, lower);
        done = done.max(lower + 1);
        *slot = Some(if lower == upper {
            lower_value
        } else {
            let upper_value = nth(values, done, upper);
            done = done.max(upper + 1);
            let fraction = index - lower as f64;
            let weight =
                ((fraction * INTERPOLATION_PRECISION) as usize) as f64 / INTERPOLATION_PRECISION;
            lower_value + (upper_value - lower_value) * weight
        });
    }
    out
}

/// The `k`-th smallest of `values`, given that `values[..from]` holds the `from` smallest:
/// selected within `values[from..]`, which it leaves partitioned around position `k`.
///
/// A `k` below `from` was itself selected before (a percentile's order statistic can be the
/// previous one's), so it is in place.
fn nth(values: &mut [f64], from: usize, k: usize) -> f64 {
    if k < from {
        return values[k];
    }
    let (_, v, _) = values[from..].select_nth_unstable_by(k - from, f64::total_cmp);
    *v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DataFusion's own computation, for the comparison.
    fn datafusion_percentile(values: &[f64], p: f64) -> f64 {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let index = p * ((v.len() - 1) as f64);
        let (lower, upper) = (index.floor() as usize, index.ceil() as usize);
        if lower == upper {
            return v[lower];
        }
        let weight = ((index - lower as f64) * INTERPOLATION_PRECISION) as usize as f64
            / INTERPOLATION_PRECISION;
        v[lower] + (v[upper] - v[lower]) * weight
    }

    #[test]
    fn percentiles_are_those_of_a_sort() {
        let mut seed = 7u64;
        for n in [1usize, 2, 3, 10, 99, 100, 101, 1000, 4099] {
            let values: Vec<f64> = (0..n)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    // Repeated values too: ties must not move the order statistics.
                    ((seed >> 33) % 500) as f64 / 4.0
                })
                .collect();
            let mut work = values.clone();
            let got = percentiles(&mut work);
            if n == 1 {
                assert_eq!(got, [Some(values[0]); 3]);
                continue;
            }
            for (g, p) in got.iter().zip([0.5, 0.95, 0.99]) {
                assert_eq!(*g, Some(datafusion_percentile(&values, p)), "n {n} p {p}");
            }
        }
        assert_eq!(percentiles(&mut []), [None; 3]);
    }

    #[test]
    fn latency_buckets_follow_the_sql() {
        assert_eq!(latency_bucket(0.0), 0);
        assert_eq!(latency_bucket(99.999), 0);
        assert_eq!(latency_bucket(100.0), 1);
        assert_eq!(latency_bucket(59_999.0), 8);
        assert_eq!(latency_bucket(60_000.0), 9);
        // No duration: the SQL's ELSE.
        assert_eq!(latency_bucket(f64::NAN), 9);
    }

    #[test]
    fn a_call_is_56_bytes() {
        // What the fold's speed rests on: see `Call`.
        assert_eq!(std::mem::size_of::<Call>(), 56);
    }

    #[test]
    fn an_impossible_reservation_falls_back_to_growing() {
        let mut t = Calls::with_capacity(usize::MAX / 8);
        let key = b"openai:chatcmpl-1";
        let i = t.call(fingerprint(0, key));
        assert_eq!((i, t.call(fingerprint(0, key))), (Some(0), Some(0)));
        assert_eq!(t.call(fingerprint(1, key)), Some(1));
    }

    #[test]
    fn the_table_grows_and_finds_every_call_again() {
        let mut t = Calls::default();
        let n = 50_000;
        let keys: Vec<String> = (0..n).map(|i| format!("openai:chatcmpl-{i}")).collect();
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(t.call(fingerprint(0, key.as_bytes())), Some(i));
        }
        assert!(
            t.table.slots.len() >= n * 4 / 3,
            "grew to {}",
            t.table.slots.len()
        );
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(t.call(fingerprint(0, key.as_bytes())), Some(i), "{key}");
        }
        // A tenant is part of the call's identity.
        assert_eq!(t.call(fingerprint(1, keys[0].as_bytes())), Some(n));
        assert_eq!(t.calls.len(), n + 1);
    }

    #[test]
    fn interner_max_is_bytewise() {
        let mut i = Interner::default();
        let (a, b) = (i.id("user-2"), i.id("user-10"));
        assert_eq!(i.max(a, b), a);
        assert_eq!(i.max(NONE, b), b);
        assert_eq!(i.max(a, NONE), a);
        assert_eq!(i.id("user-2"), a);
    }
}
