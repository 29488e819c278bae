//! The synthetic store: realistic GenAI spans, normalized by core's `Normalizer` and written by
//! the store's `Committer` (the same sort, Parquet encoding, bloom filters and commit manifests
//! as the collector's writer; the WAL in front of it changes nothing on the read side), then
//! each closed day compacted as the collector's compactor does.
//!
//! Shape: `days` UTC days of `records / days` records each, written in four six-hour commits
//! per day (so four files per partition before compaction, one after); `tenants` tenants of
//! unequal size (each user belongs to one); `users` end users drawn with a Zipf law (s = 1.1:
//! the top user makes a few percent of all calls, most make a handful); the testkit's dozen
//! models, 2 % rate-limit errors, ten services. On top of the testkit spans: 8 % of provider
//! calls are also recorded by a wrapper span (a framework span sharing the call's response id,
//! so the same `call_id`: the report must count its tokens and cost once), and 4 % carry a
//! prompt with an e-mail address or a phone number (PII flags, `confidential` classification).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use genai_audit_core::testkit::{Rng, genai_span};
use genai_audit_core::{HashKey, IngestContext, Normalizer, NormalizerConfig, Source};
use genai_audit_store::maintenance::{CompactOptions, Maintainer, MaintenanceOptions};
use genai_audit_store::{Committer, StoreLocation};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// 2026-10-01T00:00:00Z in µs: the first day of the synthetic store.
pub const DAY0_US: i64 = 1_790_812_800_000_000;
/// One day in µs.
pub const DAY_US: i64 = 86_400_000_000;

/// Commits per day (and files per partition before compaction).
const COMMITS_PER_DAY: i64 = 4;
/// Spans per OTLP request, as an SDK batch processor sends them.
const REQUEST_SPANS: usize = 500;
/// Tenants' shares of the users, largest first (cycled when there are more tenants).
const TENANT_WEIGHTS: &[u64] = &[50, 25, 15, 10];

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Records in all (wrapper spans included).
    pub records: u64,
    /// Days.
    pub days: i64,
    /// End users.
    pub users: u64,
    /// Tenants.
    pub tenants: u64,
}

impl Shape {
    /// The cache directory name: every parameter, and a version to bump when the generator
    /// or the file format changes (v2: data pages of at most 2,048 rows).
    pub fn key(&self) -> String {
        format!(
            "scale-r{}-d{}-u{}-t{}-v2",
            self.records, self.days, self.users, self.tenants
        )
    }
}

/// The tenant of user `u`: tenants own contiguous shares of the user ids.
pub fn tenant_of(shape: &Shape, u: u64) -> String {
    let weights: Vec<u64> = (0..shape.tenants)
        .map(|t| TENANT_WEIGHTS[t as usize % TENANT_WEIGHTS.len()])
        .collect();
    let total: u64 = weights.iter().sum();
    let mut at = u * total / shape.users.max(1);
    for (t, w) in weights.iter().enumerate() {
        if at < *w {
            return format!("tenant-{t}");
        }
        at -= w;
    }
    format!("tenant-{}", shape.tenants.saturating_sub(1))
}

/// Zipf(s = 1.1) over `0..n`, by inverting the cumulative distribution.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: u64) -> Self {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=n.max(1))
            .map(|k| {
                acc += 1.0 / (k as f64).powf(1.1);
                acc
            })
            .collect();
        cdf.iter_mut().for_each(|c| *c /= acc);
        Self { cdf }
    }

    fn sample(&self, rng: &mut Rng) -> u64 {
        let x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        self.cdf.partition_point(|c| *c < x).min(self.cdf.len() - 1) as u64
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn set_attr(span: &mut Span, key: &str, value: &str) {
    span.attributes.retain(|a| a.key != key);
    span.attributes.push(kv(key, value));
}

/// Writes the store into `dir` (which must be empty). Returns the records written.
pub async fn generate(shape: &Shape, dir: &Path) -> Result<u64> {
    let started = Instant::now();
    let loc = StoreLocation::local(dir).context("store")?;
    let normalizer = Normalizer::new(
        NormalizerConfig::default(),
        HashKey::new(&[7u8; 32]).context("hash key")?,
    );
    let committer = Committer::new(loc.clone(), "bench").context("committer")?;
    let compactor = Maintainer::new(loc, MaintenanceOptions::default()).context("compactor")?;
    let zipf = Zipf::new(shape.users);
    let ids = ranked_users(shape);
    let mut rng = Rng::new(0xda7a);
    let tenants: Vec<String> = (0..shape.users).map(|u| tenant_of(shape, u)).collect();

    let per_commit = (shape.records / (shape.days * COMMITS_PER_DAY) as u64).max(1);
    let window_us = DAY_US / COMMITS_PER_DAY;
    let mut written = 0u64;
    for day in 0..shape.days {
        for part in 0..COMMITS_PER_DAY {
            let from_us = DAY0_US + day * DAY_US + part * window_us;
            let spans = spans(&mut rng, &zipf, &ids, per_commit, from_us, window_us);
            let ctx = IngestContext::new(Source::OtlpGrpc, "bench", from_us + window_us);
            let mut records = Vec::with_capacity(spans.len());
            for chunk in spans.chunks(REQUEST_SPANS) {
                let req = request(chunk, &tenants);
                records.extend(normalizer.normalize_traces(&req, &ctx).records);
            }
            let report = committer
                .commit_records(records, "bench")
                .await
                .with_context(|| format!("commit day {day} part {part}"))?;
            written += report.records;
        }
        // The day is closed: one file per partition, as the compactor leaves it.
        let date = chrono::DateTime::from_timestamp_micros(DAY0_US + day * DAY_US)
            .context("date")?
            .date_naive();
        let opts = CompactOptions {
            tenant: None,
            before: date.succ_opt().context("date")?,
            min_files: 2,
            max_file_rows: 1_000_000,
        };
        compactor
            .compact(&opts, &())
            .await
            .with_context(|| format!("compact {date}"))?;
        eprintln!(
            "  day {}/{}: {written} records, {:.0} s",
            day + 1,
            shape.days,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(written)
}

/// `n` spans (wrapper spans included) starting in `[from_us, from_us + window_us)`, each tagged
/// with the index of its user (resolved to a tenant when the request is built).
fn spans(
    rng: &mut Rng,
    zipf: &Zipf,
    ids: &[u64],
    n: u64,
    from_us: i64,
    window_us: i64,
) -> Vec<(u64, Span)> {
    let mut out = Vec::with_capacity(n as usize);
    while (out.len() as u64) < n {
        let start_ns = (from_us + rng.below(window_us as u64) as i64) as u64 * 1000;
        let mut span = genai_span(rng, start_ns, 1);
        let user = ids[zipf.sample(rng) as usize];
        set_attr(&mut span, "user.id", &format!("user-{user}"));
        set_attr(
            &mut span,
            "session.id",
            &format!("sess-{user}-{}", rng.below(20)),
        );
        if rng.below(100) < 4 {
            let text = if rng.below(2) == 0 {
                format!(
                    "Please write to jane.doe{}@example.com about it",
                    rng.below(1000)
                )
            } else {
                format!("Call me back on +1 415 555 {:04}", rng.below(10_000))
            };
            let messages = serde_json::json!([
                {"role": "user", "parts": [{"type": "text", "content": text}]}
            ]);
            set_attr(&mut span, "gen_ai.input.messages", &messages.to_string());
        }
        let wrapper = rng.below(100) < 8;
        if wrapper {
            // A framework span around the same call: same trace, same attributes (so the
            // same response id and call_id), a child of the provider span.
            let mut outer = span.clone();
            outer.span_id = (rng.next_u64() | 1).to_be_bytes().to_vec();
            outer.parent_span_id = span.span_id.clone();
            outer.name = "ChatOpenAI.invoke".into();
            out.push((user, outer));
        }
        out.push((user, span));
    }
    out
}

/// One OTLP request: a resource per (tenant, service) holding its spans.
fn request(spans: &[(u64, Span)], tenants: &[String]) -> ExportTraceServiceRequest {
    let mut groups: std::collections::BTreeMap<(&str, usize), Vec<Span>> = Default::default();
    for (i, (user, span)) in spans.iter().enumerate() {
        let tenant = tenants[*user as usize].as_str();
        groups
            .entry((tenant, i % 10))
            .or_default()
            .push(span.clone());
    }
    let resource_spans = groups
        .into_iter()
        .map(|((tenant, svc), spans)| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", &format!("svc-{svc}")),
                    kv("service.version", "1.4.2"),
                    kv("deployment.environment.name", "prod"),
                    kv("tenant.id", tenant),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

/// The user whose calls the subject lookup exports: the 50th most active (a busy user, not
/// the busiest), as `user-N`.
pub fn subject(shape: &Shape) -> String {
    let ids = ranked_users(shape);
    format!("user-{}", ids[ids.len().min(50) - 1])
}

/// User ids by popularity rank (a fixed shuffle: rank 0 is not user-0, so the popular users
/// spread over the tenants).
fn ranked_users(shape: &Shape) -> Vec<u64> {
    let mut rng = Rng::new(0x5ca1e);
    let mut ids: Vec<u64> = (0..shape.users.max(1)).collect();
    for i in (1..ids.len()).rev() {
        ids.swap(i, rng.below(i as u64 + 1) as usize);
    }
    ids
}

/// Marks a generated store complete (generation is all or nothing for the cache).
pub const COMPLETE: &str = "bench-complete";

/// Drops a partial store left by an interrupted generation.
pub fn reset(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    Ok(())
}
