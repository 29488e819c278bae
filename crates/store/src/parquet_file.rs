//! Encoding audit records as Parquet files every engine reads the same way.
//!
//! Choices, each for a reader:
//! - The file schema is the audit schema **without `tenant`**: the tenant is the `tenant=`
//!   directory (Hive partitioning). Spark refuses a column that is both in the data and in the
//!   path, and DataFusion, DuckDB and pyarrow all add it back from the path.
//! - Timestamps are `TIMESTAMP(MICROS, isAdjustedToUTC=true)` (never INT96, never nanoseconds),
//!   with the exact `start_time_unix_nano` kept as a plain INT64 column.
//! - zstd; dictionary encoding except on high-cardinality columns (ids, hashes, JSON);
//!   page-level statistics and the page index; bloom filters on `trace_id`, `user_id`,
//!   `session_id`.
//! - Rows sorted by (`user_id`, `start_time`), declared as the file's sorting columns, so a
//!   subject lookup or a time range touches few pages; data pages of at most
//!   [`DATA_PAGE_ROWS`] rows, so "few pages" is few rows.
//! - Footer key/values: min/max `start_time`, row count, schema fingerprint, writer id and the
//!   WAL range — enough to check a file without reading its rows.
//! - Deterministic bytes: no wall-clock time goes into a file, so a replayed flush of the same
//!   WAL range writes the same file.

use std::sync::{Arc, LazyLock};

use arrow_array::{Array, ArrayRef, RecordBatch, TimestampMicrosecondArray, UInt32Array};
use arrow_ord::sort::{SortColumn, SortOptions, lexsort_to_indices};
use arrow_schema::{Schema, SchemaRef};
use bytes::Bytes;
use genai_audit_core::AuditRecord;
use genai_audit_core::schema::{audit_schema, records_to_batch, schema_fingerprint};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::compute_leaves;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Footer key: smallest `start_time` in the file (µs since epoch).
pub const META_MIN_START: &str = "genai_audit.min_start_time_us";
/// Footer key: largest `start_time` in the file (µs since epoch).
pub const META_MAX_START: &str = "genai_audit.max_start_time_us";
/// Footer key: number of rows.
pub const META_ROWS: &str = "genai_audit.row_count";
/// Footer key: fingerprint of the audit schema that wrote the file.
pub const META_SCHEMA: &str = "genai_audit.schema_fingerprint";
/// Footer key: id of the collector that wrote the file.
pub const META_WRITER: &str = "genai_audit.writer_id";
/// Footer key: what the file holds (`wal:<first>-<last>` or `compaction:<commit>`).
pub const META_ORIGIN: &str = "genai_audit.origin";

/// Columns whose values are (nearly) unique: dictionaries would only cost time.
const HIGH_CARDINALITY: &[&str] = &[
    "record_id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "call_id",
    "response_id",
    "prompt_hash",
    "response_hash",
    "attributes",
    "start_time_unix_nano",
    "error_message",
];

/// Encodings chosen per column (measured on realistic records in benches/write_path.rs).
///
/// Hex ids and hashes: `DELTA_LENGTH_BYTE_ARRAY` puts the lengths apart, so zstd sees a pure
/// stream of hex digits and codes each in 4 bits (16.1 instead of 17.4 bytes per 32-digit
/// id, and less work for zstd than lengths interleaved with values). `response_id`:
/// `DELTA_BYTE_ARRAY` drops shared prefixes (`chatcmpl-`). Floats: `BYTE_STREAM_SPLIT`.
/// Timestamps: deltas. All of these are read by DuckDB, pyarrow, Spark and DataFusion.
const COLUMN_ENCODINGS: &[(&str, Encoding)] = &[
    ("duration_ms", Encoding::BYTE_STREAM_SPLIT),
    ("time_to_first_token_ms", Encoding::BYTE_STREAM_SPLIT),
    ("start_time", Encoding::DELTA_BINARY_PACKED),
    ("end_time", Encoding::DELTA_BINARY_PACKED),
    ("start_time_unix_nano", Encoding::DELTA_BINARY_PACKED),
    ("ingest_time", Encoding::DELTA_BINARY_PACKED),
    ("record_id", Encoding::DELTA_LENGTH_BYTE_ARRAY),
    ("trace_id", Encoding::DELTA_LENGTH_BYTE_ARRAY),
    ("span_id", Encoding::DELTA_LENGTH_BYTE_ARRAY),
    ("parent_span_id", Encoding::DELTA_LENGTH_BYTE_ARRAY),
    ("call_id", Encoding::DELTA_LENGTH_BYTE_ARRAY),
    ("response_id", Encoding::DELTA_BYTE_ARRAY),
    ("prompt_hash", Encoding::DELTA_LENGTH_BYTE_ARRAY),
    ("response_hash", Encoding::DELTA_LENGTH_BYTE_ARRAY),
];

/// Columns with bloom filters (point lookups by auditors).
const BLOOM: &[&str] = &["trace_id", "user_id", "session_id"];

/// Rows per data page at most (the writer's default is 20,000). The page index prunes whole
/// pages, and a file is sorted by user, so a subject lookup decodes the pages that hold the
/// user's rows: with 20,000-row pages a user with ~700 rows in a file made the reader decode
/// ~20,000 rows of every column there. 2,048 rows keep pages of tens of KiB (zstd compresses
/// them as well) and the page index small (~80 entries per column per 160,000-row file).
pub const DATA_PAGE_ROWS: usize = 2048;

static FILE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let full = audit_schema();
    let fields: Vec<_> = full
        .fields()
        .iter()
        .filter(|f| f.name() != "tenant")
        .cloned()
        .collect();
    Arc::new(Schema::new(fields))
});

/// The schema of the Parquet files: the audit schema without `tenant` (it is in the path).
pub fn file_schema() -> SchemaRef {
    FILE_SCHEMA.clone()
}

/// Tuning of the Parquet writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetOptions {
    /// zstd level (1–22). Level 1: on audit records (mostly random ids) higher levels cost CPU
    /// and save nothing (measured: 143.4 vs 144.0 bytes per record at level 3).
    pub zstd_level: i32,
    /// Maximum rows per row group.
    pub row_group_rows: usize,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        Self {
            zstd_level: 1,
            row_group_rows: 256 * 1024,
        }
    }
}

/// What the writer learned about a file it encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFile {
    /// The file bytes.
    pub bytes: Bytes,
    /// Rows in the file.
    pub rows: u64,
    /// Smallest `start_time`, µs.
    pub min_start_us: i64,
    /// Largest `start_time`, µs.
    pub max_start_us: i64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
}

/// Sorts records the way files are sorted: (`user_id` nulls last, `start_time`, `record_id`).
pub fn sort_records(records: &mut [&AuditRecord]) {
    let sorted: Vec<&AuditRecord> = sort_order(records)
        .into_iter()
        .map(|i| records[i as usize])
        .collect();
    records.copy_from_slice(&sorted);
}

/// The positions of `records` in file order: (`user_id` nulls last, `start_time`, `record_id`).
pub fn sort_order<R: std::borrow::Borrow<AuditRecord>>(records: &[R]) -> Vec<u32> {
    let positions: Vec<u32> = (0..records.len() as u32).collect();
    file_order(&positions, |i| {
        let r = records[i as usize].borrow();
        (r.user_id.as_deref(), r.start_time_us, r.record_id.as_str())
    })
}

/// `rows` in file order, given each row's (`user_id`, `start_time`, `record_id`): user ids
/// ascending with nulls last, then time, then id (unique, so the order is deterministic).
pub(crate) fn file_order<'a, T: Copy>(
    rows: &[T],
    key: impl Fn(T) -> (Option<&'a str>, i64, &'a str),
) -> Vec<T> {
    // Sort compact keys, not the rows: each user id gets its rank among the distinct ids
    // (one hash lookup per row, then a sort of the few distinct ids), so comparisons touch
    // neither the rows nor their scattered strings; `record_id` only breaks ties.
    let mut ids: FxHashMap<&str, u32> = FxHashMap::default();
    let mut distinct: Vec<&str> = Vec::new();
    let mut keys: Vec<(u32, i64, u32)> = rows
        .iter()
        .enumerate()
        .map(|(i, &row)| {
            let (user, start, _) = key(row);
            let user = match user {
                Some(u) => *ids.entry(u).or_insert_with(|| {
                    distinct.push(u);
                    (distinct.len() - 1) as u32
                }),
                None => u32::MAX,
            };
            (user, start, i as u32)
        })
        .collect();
    let mut order: Vec<u32> = (0..distinct.len() as u32).collect();
    order.sort_unstable_by_key(|&i| distinct[i as usize]);
    let mut rank = vec![0u32; distinct.len()];
    for (pos, &id) in order.iter().enumerate() {
        rank[id as usize] = pos as u32;
    }
    for k in &mut keys {
        // Nulls last: no rank reaches u32::MAX (there are fewer distinct ids than rows).
        k.0 = rank.get(k.0 as usize).copied().unwrap_or(u32::MAX);
    }
    let id = |i: u32| key(rows[i as usize]).2;
    keys.sort_unstable_by(|a, b| {
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then_with(|| id(a.2).cmp(id(b.2)))
    });
    keys.into_iter().map(|k| rows[k.2 as usize]).collect()
}

/// Records → the batch of one file: sorted (see [`sort_records`]), without `tenant`.
///
/// The arrays are built in the records' own order, then permuted column by column: reading
/// the records sequentially is several times faster than following a sorted order through
/// them (each record and each of its strings would be a cache miss).
pub fn records_to_file_batch(records: &[AuditRecord]) -> Result<RecordBatch> {
    let order = UInt32Array::from(sort_order(records));
    let batch = project(&records_to_batch(records).map_err(|e| Error::Parquet(e.to_string()))?)?;
    arrow_select::take::take_record_batch(&batch, &order).map_err(Error::parquet)
}

/// Drops the `tenant` column and sorts by (`user_id`, `start_time`).
pub fn prepare(batch: &RecordBatch) -> Result<RecordBatch> {
    sort(&project(batch)?)
}

/// Drops the `tenant` column (it is in the path).
fn project(batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = file_schema();
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            batch
                .column_by_name(f.name())
                .cloned()
                .ok_or_else(|| Error::Parquet(format!("batch lacks column {}", f.name())))
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(schema, columns).map_err(Error::parquet)
}

/// Sorts a file batch by (`user_id` nulls last, `start_time`, `record_id`).
pub fn sort(batch: &RecordBatch) -> Result<RecordBatch> {
    let col = |name: &str| {
        batch
            .column_by_name(name)
            .cloned()
            .ok_or_else(|| Error::Parquet(format!("batch lacks column {name}")))
    };
    let keys = [
        SortColumn {
            values: col("user_id")?,
            options: Some(SortOptions {
                descending: false,
                nulls_first: false,
            }),
        },
        SortColumn {
            values: col("start_time")?,
            options: Some(SortOptions::default()),
        },
        // Ties broken by the unique id: the order (and so the bytes) is deterministic.
        SortColumn {
            values: col("record_id")?,
            options: Some(SortOptions::default()),
        },
    ];
    let indices = lexsort_to_indices(&keys, None).map_err(Error::parquet)?;
    arrow_select::take::take_record_batch(batch, &indices).map_err(Error::parquet)
}

fn writer_properties(
    opts: &ParquetOptions,
    rows: usize,
    meta: Vec<KeyValue>,
) -> Result<WriterProperties> {
    let schema = file_schema();
    let idx = |name: &str| {
        schema
            .index_of(name)
            .map(|i| i as u32)
            .map_err(Error::parquet)
    };
    let level = ZstdLevel::try_new(opts.zstd_level).map_err(Error::parquet)?;
    let mut b = WriterProperties::builder()
        .set_created_by(format!("genai-audit {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::ZSTD(level))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(opts.row_group_rows.max(1)))
        .set_data_page_row_count_limit(DATA_PAGE_ROWS)
        .set_dictionary_enabled(true)
        .set_sorting_columns(Some(vec![
            SortingColumn {
                column_idx: idx("user_id")? as i32,
                descending: false,
                nulls_first: false,
            },
            SortingColumn {
                column_idx: idx("start_time")? as i32,
                descending: false,
                nulls_first: false,
            },
        ]))
        .set_key_value_metadata(Some(meta));
    for name in HIGH_CARDINALITY {
        b = b.set_column_dictionary_enabled(ColumnPath::from(*name), false);
    }
    // Floats with arbitrary fractions compress far better with their bytes split by position;
    // timestamps as deltas.
    for (name, encoding) in COLUMN_ENCODINGS {
        let path = ColumnPath::from(*name);
        b = b
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_encoding(path, *encoding);
    }
    let ndv = rows.clamp(1, opts.row_group_rows.max(1)) as u64;
    for name in BLOOM {
        let path = ColumnPath::from(*name);
        b = b
            .set_column_bloom_filter_enabled(path.clone(), true)
            .set_column_bloom_filter_fpp(path.clone(), 0.01)
            .set_column_bloom_filter_max_ndv(path, ndv);
    }
    Ok(b.build())
}

/// Encodes a prepared batch (see [`prepare`]) as one Parquet file in memory.
pub fn encode(
    batch: &RecordBatch,
    writer_id: &str,
    origin: &str,
    opts: &ParquetOptions,
) -> Result<EncodedFile> {
    let schema = file_schema();
    encode_columns(
        batch.num_rows(),
        |c, rows| {
            let name = schema.field(c).name();
            batch
                .column_by_name(name)
                .map(|a| a.slice(rows.start, rows.len()))
                .ok_or_else(|| Error::Parquet(format!("batch lacks column {name}")))
        },
        writer_id,
        origin,
        opts,
    )
}

/// Encodes one file of `rows` rows of [`file_schema`], sorted (see [`prepare`]), asking
/// `column(index, rows)` for one column's values in a range of rows at a time: one row group's
/// worth of one column is all the encoder holds besides the encoded bytes, so a flush can
/// gather a file's rows column by column instead of building the whole sorted batch first.
pub(crate) fn encode_columns(
    rows: usize,
    mut column: impl FnMut(usize, std::ops::Range<usize>) -> Result<ArrayRef>,
    writer_id: &str,
    origin: &str,
    opts: &ParquetOptions,
) -> Result<EncodedFile> {
    let schema = file_schema();
    let start_idx = schema.index_of("start_time").map_err(Error::parquet)?;
    let (min, max) = start_range(column(start_idx, 0..rows)?.as_ref())?;
    let meta = vec![
        KeyValue::new(META_MIN_START.to_owned(), min.to_string()),
        KeyValue::new(META_MAX_START.to_owned(), max.to_string()),
        KeyValue::new(META_ROWS.to_owned(), rows.to_string()),
        KeyValue::new(META_SCHEMA.to_owned(), schema_fingerprint()),
        KeyValue::new(META_WRITER.to_owned(), writer_id.to_owned()),
        KeyValue::new(META_ORIGIN.to_owned(), origin.to_owned()),
    ];
    let props = writer_properties(opts, rows, meta)?;
    // Typical content-free records take ~150 bytes; avoid regrowing (and copying) the buffer.
    let mut buf = Vec::with_capacity(rows * 192 + 64 * 1024);
    let (mut file, factory) = ArrowWriter::try_new(&mut buf, schema.clone(), Some(props))
        .and_then(ArrowWriter::into_serialized_writer)
        .map_err(Error::parquet)?;
    let group = opts.row_group_rows.max(1);
    let mut offset = 0;
    for index in 0.. {
        if offset >= rows {
            break;
        }
        let range = offset..(offset + group).min(rows);
        let mut writers = factory
            .create_column_writers(index)
            .map_err(Error::parquet)?
            .into_iter();
        let mut row_group = file.next_row_group().map_err(Error::parquet)?;
        for (c, field) in schema.fields().iter().enumerate() {
            let values = column(c, range.clone())?;
            for leaf in compute_leaves(field, &values).map_err(Error::parquet)? {
                let mut writer = writers
                    .next()
                    .ok_or_else(|| Error::Parquet("fewer column writers than columns".into()))?;
                writer.write(&leaf).map_err(Error::parquet)?;
                writer
                    .close()
                    .map_err(Error::parquet)?
                    .append_to_row_group(&mut row_group)
                    .map_err(Error::parquet)?;
            }
        }
        row_group.close().map_err(Error::parquet)?;
        offset = range.end;
    }
    file.close().map_err(Error::parquet)?;
    let sha256 = const_hex::encode(Sha256::digest(&buf));
    Ok(EncodedFile {
        bytes: Bytes::from(buf),
        rows: rows as u64,
        min_start_us: min,
        max_start_us: max,
        sha256,
    })
}

fn start_range(col: &dyn Array) -> Result<(i64, i64)> {
    let col = col
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .ok_or_else(|| Error::Parquet("start_time is not a µs timestamp column".into()))?;
    if col.null_count() > 0 {
        return Err(Error::Parquet("start_time has nulls".into()));
    }
    let values = col.values();
    let min = values.iter().copied().min().unwrap_or(0);
    let max = values.iter().copied().max().unwrap_or(0);
    Ok((min, max))
}

/// Decodes a whole Parquet file written by [`encode`] (compaction, verification, tests).
pub fn decode(bytes: Bytes) -> Result<Vec<RecordBatch>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(Error::parquet)?
        .with_batch_size(64 * 1024)
        .build()
        .map_err(Error::parquet)?;
    reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(Error::parquet)
}

#[cfg(test)]
mod tests {
    use super::*;
    use genai_audit_core::testkit::{Rng, genai_request};
    use genai_audit_core::{HashKey, IngestContext, Normalizer, NormalizerConfig, Source};

    /// 2 000 synthetic records, a tenth without a user and some sharing (user, start_time), so
    /// every level of the sort order matters.
    fn records() -> Vec<AuditRecord> {
        let normalizer = Normalizer::new(
            NormalizerConfig::default(),
            HashKey::new(&[3u8; 32]).expect("32-byte key"),
        );
        let ctx = IngestContext::new(Source::OtlpGrpc, "test", 1_795_400_000_000_000);
        let mut rng = Rng::new(9);
        let mut out = Vec::new();
        for i in 0..4u64 {
            let req = genai_request(&mut rng, 500, 1_795_000_000_000_000_000 + i, 1_000, 50);
            out.extend(normalizer.normalize_traces(&req, &ctx).records);
        }
        for (i, r) in out.iter_mut().enumerate() {
            if i % 10 == 3 {
                r.user_id = None;
            }
            if i % 7 == 0 {
                r.start_time_us = 1_795_000_000_000_000;
            }
        }
        out
    }

    fn ids(batch: &RecordBatch) -> Vec<String> {
        let col = batch
            .column_by_name("record_id")
            .expect("record_id")
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .expect("strings");
        col.iter()
            .map(|v| v.expect("not null").to_owned())
            .collect()
    }

    #[test]
    fn sort_order_is_the_lexicographic_order_of_the_sort_columns() {
        let records = records();
        let sorted = records_to_file_batch(&records).expect("batch");
        let unsorted = project(&records_to_batch(&records).expect("batch")).expect("project");
        assert_eq!(ids(&sorted), ids(&sort(&unsorted).expect("lexsort")));
        let mut refs: Vec<&AuditRecord> = records.iter().collect();
        sort_records(&mut refs);
        let by_refs: Vec<String> = refs.iter().map(|r| r.record_id.clone()).collect();
        assert_eq!(ids(&sorted), by_refs);
        // Users first (nulls last), then time.
        assert!(refs.last().is_some_and(|r| r.user_id.is_none()));
        assert!(refs.first().is_some_and(|r| r.user_id.is_some()));
    }

    #[test]
    fn data_pages_hold_at_most_data_page_rows() {
        let mut records = records();
        let more: Vec<AuditRecord> = records.clone();
        records.extend(more.iter().cloned());
        records.extend(more);
        let batch = records_to_file_batch(&records).expect("batch");
        let file = encode(&batch, "test", "test", &ParquetOptions::default()).expect("encode");
        let options = parquet::arrow::arrow_reader::ArrowReaderOptions::new()
            .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Required);
        let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(file.bytes, options)
            .expect("reader");
        let meta = reader.metadata();
        let offsets = meta.offset_index().expect("page index written");
        let rows = meta.row_group(0).num_rows();
        assert_eq!(rows, 6_000);
        for (column, index) in offsets[0].iter().enumerate() {
            let starts: Vec<i64> = index
                .page_locations()
                .iter()
                .map(|p| p.first_row_index)
                .chain([rows])
                .collect();
            assert!(
                starts.len() > 3,
                "column {column}: {} pages",
                starts.len() - 1
            );
            for w in starts.windows(2) {
                assert!(
                    w[1] - w[0] <= DATA_PAGE_ROWS as i64,
                    "column {column}: page of {} rows",
                    w[1] - w[0]
                );
            }
        }
    }

    #[test]
    fn an_encoded_file_decodes_to_the_same_rows() {
        let records = records();
        let batch = records_to_file_batch(&records).expect("batch");
        let file = encode(&batch, "test", "test", &ParquetOptions::default()).expect("encode");
        let decoded = decode(file.bytes).expect("decode");
        let decoded =
            arrow_select::concat::concat_batches(&file_schema(), &decoded).expect("concat");
        assert_eq!(decoded, batch);
    }

    #[test]
    fn column_by_column_encoding_writes_the_bytes_arrow_writer_writes() {
        let records = records();
        let batch = records_to_file_batch(&records).expect("batch");
        // Several row groups, the last one partial.
        let opts = ParquetOptions {
            row_group_rows: 700,
            ..ParquetOptions::default()
        };
        let file = encode(&batch, "w", "o", &opts).expect("encode");
        let (min, max) =
            start_range(batch.column_by_name("start_time").expect("start")).expect("range");
        let meta = vec![
            KeyValue::new(META_MIN_START.to_owned(), min.to_string()),
            KeyValue::new(META_MAX_START.to_owned(), max.to_string()),
            KeyValue::new(META_ROWS.to_owned(), batch.num_rows().to_string()),
            KeyValue::new(META_SCHEMA.to_owned(), schema_fingerprint()),
            KeyValue::new(META_WRITER.to_owned(), "w".to_owned()),
            KeyValue::new(META_ORIGIN.to_owned(), "o".to_owned()),
        ];
        let props = writer_properties(&opts, batch.num_rows(), meta).expect("props");
        let mut buf = Vec::new();
        let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props)).expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
        assert_eq!(file.bytes.as_ref(), buf.as_slice());
        let groups = parquet::file::reader::SerializedFileReader::new(file.bytes)
            .map(|r| parquet::file::reader::FileReader::metadata(&r).num_row_groups())
            .expect("reader");
        assert_eq!(groups, 3);
    }
}
