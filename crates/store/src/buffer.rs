//! The flush buffer: acknowledged records held as Arrow columns until a flush writes them.
//!
//! Why columns: an [`AuditRecord`] spreads its values over dozens of small heap strings, about
//! 4 KiB of memory for ~1 KiB of data; the same rows as Arrow arrays cost what their values
//! take, and their size is known exactly ([`RecordBatch::get_array_memory_size`]), so
//! `flush.max_bytes` bounds real memory. Each request's records are converted by the task that
//! appends them (on the runtime's many workers); the buffer concatenates the small batches of
//! single requests into larger ones as it goes, so thousands of requests do not each keep
//! sixty tiny arrays.
//!
//! A flush works on row positions (`(batch, row)`): duplicates are dropped and partitions are
//! sorted by reading a few key columns, then every file is encoded from its rows gathered one
//! column (of one row group) at a time, so the flush never holds a sorted copy of the buffer.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{Array, PrimitiveArray, RecordBatch, StringArray};
use chrono::NaiveDate;
use genai_audit_core::audit_schema;
use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
use crate::layout::day_of;
use crate::parquet_file::{EncodedFile, ParquetOptions, encode_columns, file_order, file_schema};
use crate::writer::{FlushPolicy, PendingContent};

/// Small batches (one request each) are concatenated once they hold this many bytes.
const COALESCE_BYTES: usize = 4 << 20;

/// Memory counted per buffered log-borne content besides its strings (digest, hashes).
const CONTENT_BYTES: usize = 512;

/// A row of the buffer: (batch, row in the batch).
pub(crate) type Position = (usize, usize);

/// Acknowledged WAL entries waiting for a flush, in WAL order.
///
/// Entries are held in memory up to a cap; past it they are *spilled*: only their seqs are kept
/// (`spilled`), and a flush reads them back from the WAL. The spilled entries always follow the
/// ones in memory, so both together are a gap-free prefix of the acknowledged entries.
#[derive(Default)]
pub(crate) struct Buffer {
    /// First and last WAL sequence numbers held in memory.
    pub(crate) range: Option<(u64, u64)>,
    /// First and last WAL sequence numbers of the entries after `range` held only in the WAL.
    pub(crate) spilled: Option<(u64, u64)>,
    /// Records, in WAL order: concatenated batches, then the recent small ones.
    batches: Vec<RecordBatch>,
    /// How many of `batches` (at the end) are single requests' not yet concatenated.
    small: usize,
    small_bytes: usize,
    /// Log-borne content waiting to be folded into its span.
    pub(crate) contents: Vec<PendingContent>,
    /// Records held.
    pub(crate) rows: usize,
    /// Memory held by the records' arrays and the contents, bytes.
    pub(crate) bytes: usize,
    /// When the oldest entry arrived.
    pub(crate) oldest: Option<Instant>,
}

impl Buffer {
    fn entry(&mut self, seq: u64) {
        self.range = Some(self.range.map_or((seq, seq), |(first, _)| (first, seq)));
        self.oldest.get_or_insert_with(Instant::now);
    }

    /// Adds the records of WAL entry `seq`. Not once entries are spilled (they would jump
    /// the queue).
    pub(crate) fn push_rows(&mut self, seq: u64, batch: RecordBatch) {
        debug_assert!(self.spilled.is_none(), "pushed after spilled entries");
        self.entry(seq);
        let size = batch.get_array_memory_size();
        self.rows += batch.num_rows();
        self.bytes += size;
        self.small_bytes += size;
        self.small += 1;
        self.batches.push(batch);
        if self.small_bytes >= COALESCE_BYTES {
            self.coalesce();
        }
    }

    /// Adds the log-borne content of WAL entry `seq` (not once entries are spilled).
    pub(crate) fn push_contents(&mut self, seq: u64, contents: Vec<PendingContent>) {
        debug_assert!(self.spilled.is_none(), "pushed after spilled entries");
        self.entry(seq);
        self.bytes += contents.iter().map(content_size).sum::<usize>();
        self.contents.extend(contents);
    }

    /// Concatenates the small batches into one (exactly sized, sixty arrays instead of sixty
    /// per request).
    fn coalesce(&mut self) {
        if self.small < 2 {
            return;
        }
        let start = self.batches.len() - self.small;
        match arrow_select::concat::concat_batches(&audit_schema(), &self.batches[start..]) {
            Ok(batch) => {
                self.batches.truncate(start);
                let size = batch.get_array_memory_size();
                self.bytes = self.bytes - self.small_bytes + size;
                self.batches.push(batch);
            }
            // Only memory is at stake: keep the small batches as they are.
            Err(e) => tracing::warn!(error = %e, "could not concatenate buffered batches"),
        }
        self.small = 0;
        self.small_bytes = 0;
    }

    /// Keeps only the seq of WAL entry `seq`, which follows every entry held: its records stay
    /// in the WAL until a flush reads them back.
    pub(crate) fn spill(&mut self, seq: u64) {
        self.spilled = Some(self.spilled.map_or((seq, seq), |(first, _)| (first, seq)));
    }

    /// Takes the entries held in memory, leaving the spilled ones.
    pub(crate) fn take_memory(&mut self) -> Buffer {
        let spilled = self.spilled.take();
        let taken = std::mem::take(self);
        self.spilled = spilled;
        taken
    }

    /// Whether a flush is due under `policy` (always, with spilled entries: they wait for it).
    pub(crate) fn due(&self, policy: &FlushPolicy) -> bool {
        self.rows >= policy.max_rows
            || self.bytes >= policy.max_bytes
            || self.spilled.is_some()
            || self.oldest.is_some_and(|t| t.elapsed() >= policy.max_age)
    }

    /// Whether one more entry fits under `policy` (below both thresholds).
    pub(crate) fn has_room(&self, policy: &FlushPolicy) -> bool {
        self.rows < policy.max_rows && self.bytes < policy.max_bytes
    }

    /// The record batches, in WAL order.
    pub(crate) fn into_batches(self) -> (Vec<RecordBatch>, Vec<PendingContent>) {
        (self.batches, self.contents)
    }
}

fn content_size(p: &PendingContent) -> usize {
    let c = &p.content;
    CONTENT_BYTES + c.tenant.len() + c.trace_id.len() + c.span_id.len()
}

/// The columns a flush reads row by row, of one batch of [`audit_schema`].
pub(crate) struct KeyColumns<'a> {
    pub(crate) record_id: &'a StringArray,
    pub(crate) tenant: &'a StringArray,
    pub(crate) trace_id: &'a StringArray,
    pub(crate) span_id: &'a StringArray,
    pub(crate) user_id: &'a StringArray,
    pub(crate) start_time: &'a PrimitiveArray<TimestampMicrosecondType>,
}

impl<'a> KeyColumns<'a> {
    /// The key columns of every batch.
    pub(crate) fn of(batches: &'a [RecordBatch]) -> Result<Vec<Self>> {
        batches.iter().map(Self::new).collect()
    }

    fn new(batch: &'a RecordBatch) -> Result<Self> {
        let text = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_string_opt::<i32>())
                .ok_or_else(|| Error::Parquet(format!("buffered batch lacks text column {name}")))
        };
        Ok(Self {
            record_id: text("record_id")?,
            tenant: text("tenant")?,
            trace_id: text("trace_id")?,
            span_id: text("span_id")?,
            user_id: text("user_id")?,
            start_time: batch
                .column_by_name("start_time")
                .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
                .ok_or_else(|| Error::Parquet("buffered batch lacks start_time".into()))?,
        })
    }
}

/// A record's identity for duplicate detection: (tenant, record id as a number).
pub(crate) type IdKey = (Arc<str>, u128);

/// How many flushes back duplicates are looked for.
const RECENT_FLUSHES: usize = 3;

/// Record ids of the last few flushes (replayed records are in the first flush after a restart).
///
/// Why: a client whose request timed out, or whose acknowledgement was lost in a crash,
/// resends the same spans. Their ids are deterministic, so the resend is recognisable; it
/// arrives within moments (or right after the restart), so a short window catches it at the
/// cost of 16 bytes per id.
#[derive(Default)]
pub(crate) struct RecentIds {
    generations: VecDeque<HashSet<IdKey>>,
}

impl RecentIds {
    fn contains(&self, key: &IdKey) -> bool {
        self.generations.iter().any(|g| g.contains(key))
    }

    /// Remembers the ids of one more flush, forgetting the oldest past the window.
    pub(crate) fn push(&mut self, ids: HashSet<IdKey>) {
        self.generations.push_back(ids);
        while self.generations.len() > RECENT_FLUSHES {
            self.generations.pop_front();
        }
    }
}

/// The id as a number (ids are 32 hex digits; anything else is hashed to keep it comparable).
fn id_number(record_id: &str) -> u128 {
    u128::from_str_radix(record_id, 16).unwrap_or_else(|_| {
        let d = <sha2::Sha256 as sha2::Digest>::digest(record_id.as_bytes());
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        u128::from_be_bytes(b)
    })
}

/// The rows a flush keeps after duplicates are dropped.
pub(crate) struct Deduplicated {
    /// Positions of the first occurrence of every id not seen in a recent flush, in WAL order.
    pub(crate) kept: Vec<Position>,
    /// The ids of this flush.
    pub(crate) seen: HashSet<IdKey>,
    /// Rows dropped as duplicates.
    pub(crate) dropped: u64,
}

/// Drops rows whose id is already in this flush or a recent one.
pub(crate) fn deduplicate(keys: &[KeyColumns<'_>], recent: &RecentIds) -> Deduplicated {
    let rows: usize = keys.iter().map(|k| k.record_id.len()).sum();
    let mut out = Deduplicated {
        kept: Vec::with_capacity(rows),
        seen: HashSet::with_capacity(rows),
        dropped: 0,
    };
    let mut tenants: FxHashMap<&str, Arc<str>> = FxHashMap::default();
    for (b, k) in keys.iter().enumerate() {
        for i in 0..k.record_id.len() {
            let tenant = k.tenant.value(i);
            let tenant = tenants
                .entry(tenant)
                .or_insert_with(|| Arc::from(tenant))
                .clone();
            let key = (tenant, id_number(k.record_id.value(i)));
            if recent.contains(&key) || !out.seen.insert(key) {
                out.dropped += 1;
            } else {
                out.kept.push((b, i));
            }
        }
    }
    out
}

/// The rows of one file to write.
pub(crate) struct FileRows {
    /// Partition: tenant and UTC day of `start_time`.
    pub(crate) tenant: Arc<str>,
    pub(crate) day: NaiveDate,
    /// Index of the file within its partition (partitions over `max_file_rows` are split).
    pub(crate) part: u32,
    /// The rows, in file order.
    rows: Vec<Position>,
}

/// Groups `kept` by partition, sorts every partition in file order and splits it into files
/// of at most `max_file_rows`.
pub(crate) fn plan_files(
    keys: &[KeyColumns<'_>],
    kept: Vec<Position>,
    max_file_rows: usize,
) -> Vec<FileRows> {
    let mut groups: FxHashMap<(&str, NaiveDate), Vec<Position>> = FxHashMap::default();
    for (b, i) in kept {
        let k = &keys[b];
        let day = day_of(k.start_time.value(i));
        groups
            .entry((k.tenant.value(i), day))
            .or_default()
            .push((b, i));
    }
    let groups: BTreeMap<_, _> = groups.into_iter().collect();
    let mut files = Vec::new();
    for ((tenant, day), rows) in groups {
        let tenant: Arc<str> = Arc::from(tenant);
        let sorted = file_order(&rows, |(b, i)| {
            let k = &keys[b];
            let user = k.user_id.is_valid(i).then(|| k.user_id.value(i));
            (user, k.start_time.value(i), k.record_id.value(i))
        });
        for (part, chunk) in sorted.chunks(max_file_rows.max(1)).enumerate() {
            files.push(FileRows {
                tenant: tenant.clone(),
                day,
                part: part as u32,
                rows: chunk.to_vec(),
            });
        }
    }
    files
}

/// Encodes one file's rows, gathered from `batches` one column (of one row group) at a time:
/// besides the buffer, the flush holds only that column and the encoded bytes, never a sorted
/// copy of the whole buffer.
pub(crate) fn encode_rows(
    batches: &[RecordBatch],
    file: &FileRows,
    writer_id: &str,
    origin: &str,
    opts: &ParquetOptions,
) -> Result<EncodedFile> {
    let audit = audit_schema();
    let schema = file_schema();
    let sources = schema
        .fields()
        .iter()
        .map(|f| audit.index_of(f.name()).map_err(Error::parquet))
        .collect::<Result<Vec<usize>>>()?;
    encode_columns(
        file.rows.len(),
        |c, rows| {
            let arrays: Vec<&dyn Array> = batches
                .iter()
                .map(|b| b.column(sources[c]).as_ref())
                .collect();
            arrow_select::interleave::interleave(&arrays, &file.rows[rows]).map_err(Error::parquet)
        },
        writer_id,
        origin,
        opts,
    )
}

/// The rows at `positions`, as one batch of [`audit_schema`].
pub(crate) fn take_rows(batches: &[RecordBatch], positions: &[Position]) -> Result<RecordBatch> {
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    arrow_select::interleave::interleave_record_batch(&refs, positions).map_err(Error::parquet)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parquet_file::{decode, records_to_file_batch};
    use genai_audit_core::testkit::{Rng, genai_request};
    use genai_audit_core::{
        AuditRecord, HashKey, IngestContext, Normalizer, NormalizerConfig, Source, records_to_batch,
    };

    /// `requests` requests of `spans` records, over two tenants and two days.
    fn requests(requests: usize, spans: usize) -> Vec<Vec<AuditRecord>> {
        let normalizer = Normalizer::new(
            NormalizerConfig::default(),
            HashKey::new(&[3u8; 32]).expect("32-byte key"),
        );
        let ctx = IngestContext::new(Source::OtlpGrpc, "test", 1_795_400_000_000_000);
        let mut rng = Rng::new(11);
        (0..requests)
            .map(|n| {
                let start = 1_795_000_000_000_000_000 + n as u64 * 7_200_000_000_000;
                let req = genai_request(&mut rng, spans, start, 1_000_000, 40);
                let mut records = normalizer.normalize_traces(&req, &ctx).records;
                for (i, r) in records.iter_mut().enumerate() {
                    if (n + i) % 3 == 0 {
                        r.tenant = Arc::from("other");
                    }
                    if i % 9 == 0 {
                        r.user_id = None;
                    }
                }
                records
            })
            .collect()
    }

    fn buffer_of(requests: &[Vec<AuditRecord>]) -> Buffer {
        let mut buffer = Buffer::default();
        for (seq, records) in requests.iter().enumerate() {
            buffer.push_rows(seq as u64 + 1, records_to_batch(records).expect("batch"));
        }
        buffer
    }

    #[test]
    fn the_buffer_counts_the_memory_its_batches_hold_before_and_after_concatenating() {
        let requests = requests(40, 500);
        let mut buffer = Buffer::default();
        let mut concatenated = false;
        for (seq, records) in requests.iter().enumerate() {
            buffer.push_rows(seq as u64 + 1, records_to_batch(records).expect("batch"));
            let held: usize = buffer
                .batches
                .iter()
                .map(|b| b.get_array_memory_size())
                .sum();
            assert_eq!(buffer.bytes, held);
            concatenated |= buffer.batches.len() < seq + 1;
        }
        assert!(concatenated, "4 MiB of small batches are concatenated");
        assert!(buffer.batches.len() < requests.len() / 4);
        assert_eq!(buffer.rows, 40 * 500);
        assert_eq!(buffer.range, Some((1, 40)));
    }

    #[test]
    fn files_encoded_from_many_batches_hold_the_files_built_from_the_records() {
        let requests = requests(20, 300);
        let (batches, _) = buffer_of(&requests).into_batches();
        let keys = KeyColumns::of(&batches).expect("keys");
        let dedup = deduplicate(&keys, &RecentIds::default());
        assert_eq!(dedup.dropped, 0);
        let plan = plan_files(&keys, dedup.kept, 250);
        drop(keys);
        // Row groups of 100 rows: a file's columns are gathered in several slices.
        let opts = ParquetOptions {
            row_group_rows: 100,
            ..ParquetOptions::default()
        };
        let files: Vec<RecordBatch> = plan
            .iter()
            .map(|rows| {
                let file = encode_rows(&batches, rows, "w", "o", &opts).expect("encode");
                let decoded = decode(file.bytes).expect("decode");
                assert_eq!(
                    decoded.iter().map(RecordBatch::num_rows).sum::<usize>(),
                    rows.rows.len()
                );
                arrow_select::concat::concat_batches(&file_schema(), &decoded).expect("concat")
            })
            .collect();

        let mut partitions: BTreeMap<(Arc<str>, NaiveDate), Vec<AuditRecord>> = BTreeMap::new();
        for r in requests.into_iter().flatten() {
            let key = (r.tenant.clone(), day_of(r.start_time_us));
            partitions.entry(key).or_default().push(r);
        }
        assert!(partitions.len() >= 4, "two tenants over several days");
        let mut expected = Vec::new();
        for ((tenant, day), records) in partitions {
            let sorted = records_to_file_batch(&records).expect("file batch");
            let mut part = 0;
            let mut offset = 0;
            while offset < sorted.num_rows() {
                let len = (sorted.num_rows() - offset).min(250);
                expected.push((tenant.clone(), day, part, sorted.slice(offset, len)));
                offset += len;
                part += 1;
            }
        }
        assert_eq!(plan.len(), expected.len());
        for ((rows, batch), (tenant, day, part, want)) in plan.iter().zip(&files).zip(&expected) {
            assert_eq!((&rows.tenant, rows.day, rows.part), (tenant, *day, *part));
            assert_eq!(batch, want);
        }
    }

    #[test]
    fn duplicates_are_dropped_within_a_flush_and_against_recent_ones() {
        let requests = requests(3, 100);
        // The first request again (a client retrying), and the second twice.
        let again = vec![
            requests[0].clone(),
            requests[1].clone(),
            requests[1].clone(),
        ];
        let (batches, _) =
            buffer_of(&requests.iter().chain(&again).cloned().collect::<Vec<_>>()).into_batches();
        let keys = KeyColumns::of(&batches).expect("keys");
        let first = deduplicate(&keys, &RecentIds::default());
        assert_eq!(first.kept.len(), 300);
        assert_eq!(first.dropped, 300);
        // The first occurrence is kept: rows of the first three batches, in order.
        assert!(first.kept.iter().all(|(b, _)| *b < 3));
        let mut recent = RecentIds::default();
        recent.push(first.seen);
        let next = deduplicate(&keys, &recent);
        assert!(next.kept.is_empty());
        assert_eq!(next.dropped, 600);
    }
}
