//! Cost engine: a versioned price table and the cost of one call.
//!
//! # What is billed how
//!
//! A [`PriceEntry`] gives USD rates per million tokens for one model of one provider from one
//! day on. For a call with [`Usage`] (OTel meaning: `input_tokens` includes cache reads and
//! cache writes; `output_tokens` includes reasoning):
//!
//! * uncached input = `input_tokens − cached_input_tokens − cache_write_input_tokens` (never
//!   below 0: when cache reads plus writes exceed `input_tokens`, the input is taken to be their
//!   sum);
//! * `input_cost` = uncached × input rate + cache reads × cached rate + cache writes × cache-write
//!   rate (an entry without a cached or cache-write rate bills those tokens at the input rate);
//! * `output_cost` = output × output rate; `total_cost` = `input_cost + output_cost`.
//!
//! Each product is rounded half away from zero to 10⁻¹² USD ([`Usd::per_million`], exact for any
//! rate with at most 6 fractional digits) and then summed: no floats anywhere. A missing token
//! count counts as 0 for its side; when both `input_tokens` and `output_tokens` are missing the
//! result is [`PriceResult::NoUsage`]. An entry may have a long-context tier: when a call's
//! input (cached tokens included) exceeds its threshold, the whole call is billed at the tier's
//! rates (Gemini 2.5 Pro and Claude Sonnet 4/4.5 above 200K prompt tokens).
//!
//! # Matching
//!
//! Instrumentations spell models in many ways, so a model name is normalized before lookup:
//!
//! 1. trimmed and ASCII-lowercased (no allocation when already lowercase);
//! 2. provider prefixes are removed: everything up to the last `/` (`openai/gpt-4.1`,
//!    `models/gemini-2.5-pro`, `publishers/google/models/…`, Bedrock ARNs), then a Bedrock
//!    `[region.]vendor.` prefix (`anthropic.claude-…`, `us.anthropic.claude-…`);
//! 3. the name is looked up exactly among the models and aliases of the table (normalized by
//!    steps 1–2); if no entry of the provider has that name, one version suffix is stripped —
//!    `@20241022` / `@001` / `@latest` (Vertex), `-v2:0` (Bedrock), `-2025-04-14`, `-20241022`,
//!    `-0613` (4 digits), `-001` (3 digits), `-latest` — and the lookup is repeated, until
//!    nothing is left to strip.
//!
//! The most specific name wins, so an entry for a dated snapshot (`gpt-4o-2024-05-13`) takes
//! precedence over the undated model, while `gpt-4.1-2025-04-14` falls back to `gpt-4.1`. There
//! is never any prefix matching: `gpt-4.1-mini` is not `gpt-4.1`, `o3-mini` is not `o3`.
//!
//! With a provider, only entries whose `provider` or `also_providers` contain it are considered.
//! Without one, a name matches only if every entry carrying it has the same provider; otherwise
//! the call is [`PriceResult::UnknownModel`]. Among the entries of the most specific matching
//! name, the one with the newest `effective_from` not after the call's day applies; if all of
//! them start later, the call is unpriced. Candidate names (response model, then request model)
//! are tried in order. An unknown model is [`PriceResult::UnknownModel`]: the caller stores a
//! NULL cost, never 0 and never a guess.
//!
//! # Versioning and reproducibility
//!
//! Every table has a version string, and every priced call carries
//! `price_id = "{provider}/{model}@{effective_from}#{table_version}"` naming the exact entry and
//! the table it came from, so any cost can be recomputed later from the archived table. Operators
//! layer their contract prices on the shipped table with [`PriceTable::with_overrides`]: an
//! override entry replaces the shipped entry with the same provider, model and `effective_from`,
//! and its `price_id` carries the override table's version.
//!
//! The table is immutable after loading; lookups take `&self` and use an index built at load time
//! (no regex, at most one small allocation per name on the hot path).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, LazyLock};

use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};
use crate::money::Usd;

/// The shipped price table.
const EMBEDDED_TOML: &str = include_str!("../../../config/prices.toml");

static EMBEDDED: LazyLock<PriceTable> = LazyLock::new(|| {
    PriceTable::from_toml_str(EMBEDDED_TOML)
        .unwrap_or_else(|e| panic!("the embedded config/prices.toml is invalid: {e}"))
});

/// Highest accepted rate, USD per million tokens. Keeps every cost computation far from `i128`
/// overflow (rate × `i64::MAX` tokens still fits).
const MAX_RATE_USD: i128 = 1_000_000;
const USD_UNIT_RAW: i128 = 1_000_000_000_000;

/// Token usage of one provider call, as normalized (OTel meaning: `input_tokens` includes
/// cached and cache-write tokens; `output_tokens` includes reasoning tokens).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input tokens, cached ones included.
    pub input_tokens: Option<i64>,
    /// Output tokens.
    pub output_tokens: Option<i64>,
    /// Input tokens read from cache.
    pub cached_input_tokens: Option<i64>,
    /// Input tokens written to cache.
    pub cache_write_input_tokens: Option<i64>,
}

/// The rates of a long-context tier: calls whose input exceeds `above_input_tokens` are billed
/// entirely at these rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongContextRates {
    /// The tier applies when the call's input tokens (cached ones included) exceed this.
    pub above_input_tokens: i64,
    /// USD per million uncached input tokens.
    pub input_per_mtok: Usd,
    /// USD per million input tokens read from cache (`None`: the tier's input rate).
    pub cached_input_per_mtok: Option<Usd>,
    /// USD per million input tokens written to cache (`None`: the tier's input rate).
    pub cache_write_per_mtok: Option<Usd>,
    /// USD per million output tokens.
    pub output_per_mtok: Usd,
}

/// One price entry: the rates of one model of one provider from `effective_from` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceEntry {
    /// Normalized provider (`openai`, `anthropic`, `gcp.gemini`, …).
    pub provider: String,
    /// Other providers billing this model at the same rates (`aws.bedrock`, …).
    pub also_providers: Vec<String>,
    /// Canonical model name (lowercase, no version suffix unless the entry is for a snapshot).
    pub model: String,
    /// Other names of the model.
    pub aliases: Vec<String>,
    /// First day (UTC) the rates apply, `YYYY-MM-DD`.
    pub effective_from: String,
    /// USD per million uncached input tokens.
    pub input_per_mtok: Usd,
    /// USD per million input tokens read from cache (`None`: the input rate).
    pub cached_input_per_mtok: Option<Usd>,
    /// USD per million input tokens written to cache (`None`: the input rate).
    pub cache_write_per_mtok: Option<Usd>,
    /// USD per million output tokens (reasoning included).
    pub output_per_mtok: Usd,
    /// Optional long-context tier.
    pub long_context: Option<LongContextRates>,
    /// Where the rates were read (URL or document name).
    pub source: String,
    /// When the rates were read or published, `YYYY-MM-DD`.
    pub source_date: String,
    /// Version of the table this entry comes from.
    pub table_version: String,
    /// `effective_from` as days since the Unix epoch.
    effective_day: i32,
    /// `provider/model@effective_from#table_version`.
    price_id: String,
    /// 0 for a table's own entries; overrides get higher layers and win ties.
    layer: u32,
}

/// Resolved rates of one tier, defaults applied.
#[derive(Clone, Copy)]
struct Rates {
    input: Usd,
    cached: Usd,
    cache_write: Usd,
    output: Usd,
}

impl PriceEntry {
    /// `provider/model@effective_from#table_version`: the identifier stored with every cost
    /// computed from this entry.
    pub fn price_id(&self) -> &str {
        &self.price_id
    }

    /// `effective_from` as days since the Unix epoch (UTC).
    pub fn effective_day(&self) -> i32 {
        self.effective_day
    }

    /// Whether this entry bills calls made through `provider` (its `provider` or one of its
    /// `also_providers`, ASCII case-insensitively).
    pub fn serves(&self, provider: &str) -> bool {
        self.provider.eq_ignore_ascii_case(provider)
            || self
                .also_providers
                .iter()
                .any(|p| p.eq_ignore_ascii_case(provider))
    }

    /// Prices `usage` with this entry's rates (ignoring its provider, model and date).
    pub fn price(&self, usage: &Usage) -> PriceResult {
        if usage.input_tokens.is_none() && usage.output_tokens.is_none() {
            return PriceResult::NoUsage {
                price_id: self.price_id.clone(),
            };
        }
        match self.cost(usage) {
            Some((input_cost, output_cost, total_cost)) => PriceResult::Priced(Priced {
                input_cost,
                output_cost,
                total_cost,
                price_id: self.price_id.clone(),
            }),
            // Unreachable: rates are capped at load time so no product can overflow. Never
            // report a wrong figure, though.
            None => PriceResult::UnknownModel,
        }
    }

    fn cost(&self, usage: &Usage) -> Option<(Usd, Usd, Usd)> {
        let tokens = |v: Option<i64>| v.unwrap_or(0).max(0);
        let cached = tokens(usage.cached_input_tokens);
        let write = tokens(usage.cache_write_input_tokens);
        let input = tokens(usage.input_tokens).max(cached.saturating_add(write));
        let uncached = input.saturating_sub(cached).saturating_sub(write).max(0);
        let output = tokens(usage.output_tokens);
        let r = self.rates_for(input);
        let input_cost = Usd::per_million(r.input, uncached)?
            .checked_add(Usd::per_million(r.cached, cached)?)?
            .checked_add(Usd::per_million(r.cache_write, write)?)?;
        let output_cost = Usd::per_million(r.output, output)?;
        let total_cost = input_cost.checked_add(output_cost)?;
        Some((input_cost, output_cost, total_cost))
    }

    fn rates_for(&self, input_tokens: i64) -> Rates {
        match &self.long_context {
            Some(lc) if input_tokens > lc.above_input_tokens => Rates {
                input: lc.input_per_mtok,
                cached: lc.cached_input_per_mtok.unwrap_or(lc.input_per_mtok),
                cache_write: lc.cache_write_per_mtok.unwrap_or(lc.input_per_mtok),
                output: lc.output_per_mtok,
            },
            _ => Rates {
                input: self.input_per_mtok,
                cached: self.cached_input_per_mtok.unwrap_or(self.input_per_mtok),
                cache_write: self.cache_write_per_mtok.unwrap_or(self.input_per_mtok),
                output: self.output_per_mtok,
            },
        }
    }

    /// Index keys of this entry: its model and aliases, normalized (without suffix stripping).
    fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::with_capacity(1 + self.aliases.len());
        for name in std::iter::once(&self.model).chain(&self.aliases) {
            let key = entry_key(name);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys
    }

    fn served_providers(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.provider.as_str())
            .chain(self.also_providers.iter().map(String::as_str))
    }
}

/// A priced call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    /// Cost of input tokens.
    pub input_cost: Usd,
    /// Cost of output tokens.
    pub output_cost: Usd,
    /// Sum of both.
    pub total_cost: Usd,
    /// `provider/model@effective_from#table_version`.
    pub price_id: String,
}

/// Result of pricing one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriceResult {
    /// A price entry matched and usage was known.
    Priced(Priced),
    /// A price entry matched but the call reported no token usage.
    NoUsage {
        /// The entry that matched.
        price_id: String,
    },
    /// No price entry matches the model.
    UnknownModel,
}

/// A versioned price table (cheap to clone: the entries and index are shared).
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    version: String,
    entries: Vec<PriceEntry>,
    index: HashMap<Box<str>, Bucket, FxBuild>,
}

/// The entries carrying one normalized name.
#[derive(Debug, Default)]
struct Bucket {
    /// Entry indices, newest `effective_from` first, then highest layer first.
    ids: Vec<u32>,
    /// More than one primary provider carries this name: it cannot be priced without a provider.
    ambiguous: bool,
}

/// Outcome of looking up one normalized name.
enum Pick {
    Entry(u32),
    /// Entries of the provider carry the name, but none is in force on the day.
    NotInForce,
    /// No entry of the provider carries the name.
    NoneForProvider,
    /// No provider given and several providers carry the name.
    Ambiguous,
}

/// Outcome of resolving one model name.
enum Resolved {
    Entry(u32),
    NotFound,
    Ambiguous,
}

impl PriceTable {
    /// The table shipped in `config/prices.toml`, parsed once per process.
    ///
    /// # Panics
    ///
    /// Never in practice: the shipped table is checked by this module's tests.
    pub fn embedded() -> Self {
        EMBEDDED.clone()
    }

    /// Parses and validates a price table in the `config/prices.toml` format.
    ///
    /// Errors ([`Error::PriceTable`]) name the offending entry (1-based position and model) and
    /// the problem: TOML syntax, unknown or missing keys, invalid dates or rates, duplicate
    /// provider + model + `effective_from`, or a name that means two models for one provider.
    pub fn from_toml_str(s: &str) -> Result<Self> {
        let raw: RawTable =
            toml::from_str(s).map_err(|e| Error::PriceTable(format!("invalid TOML: {e}")))?;
        let version = raw.version.trim().to_owned();
        if version.is_empty()
            || version.contains(['#', '/', '@'])
            || version.contains(char::is_whitespace)
        {
            return Err(Error::PriceTable(format!(
                "table version {:?} must be non-empty, without whitespace, `#`, `/` or `@`",
                raw.version
            )));
        }
        let mut entries = Vec::with_capacity(raw.price.len());
        for (i, value) in raw.price.into_iter().enumerate() {
            let n = i + 1;
            let model_hint = value
                .get("model")
                .and_then(toml::Value::as_str)
                .map(|m| format!(" (model {m:?})"))
                .unwrap_or_default();
            let entry = value
                .try_into::<RawEntry>()
                .map_err(|e| Error::PriceTable(format!("price entry #{n}{model_hint}: {e}")))?;
            entries.push(entry.validate(n, &version)?);
        }
        check_table(&entries)?;
        Ok(Self::build(version, entries))
    }

    /// Layers `overrides` (typically contract prices) on this table.
    ///
    /// An override entry replaces this table's entry with the same provider, model and
    /// `effective_from`; other override entries are added (and win ties with entries of the same
    /// date). Entries keep the version of the table they come from, so the `price_id` of a call
    /// priced by an override names the override table's version. The combined table's
    /// [`version`](Self::version) is `"{base}+{overrides}"`.
    pub fn with_overrides(self, overrides: PriceTable) -> Self {
        let layer = self
            .inner
            .entries
            .iter()
            .map(|e| e.layer)
            .max()
            .unwrap_or(0)
            + 1;
        let replaced: HashSet<(&str, &str, i32)> = overrides
            .inner
            .entries
            .iter()
            .map(|e| (e.provider.as_str(), e.model.as_str(), e.effective_day))
            .collect();
        let mut entries: Vec<PriceEntry> = self
            .inner
            .entries
            .iter()
            .filter(|e| {
                !replaced.contains(&(e.provider.as_str(), e.model.as_str(), e.effective_day))
            })
            .cloned()
            .collect();
        entries.extend(overrides.inner.entries.iter().cloned().map(|mut e| {
            e.layer += layer;
            e
        }));
        let version = format!("{}+{}", self.inner.version, overrides.inner.version);
        Self::build(version, entries)
    }

    /// The table version (`"{base}+{overrides}"` for a table with overrides).
    pub fn version(&self) -> &str {
        &self.inner.version
    }

    /// All entries, in table order (base entries first, then overrides).
    pub fn entries(&self) -> &[PriceEntry] {
        &self.inner.entries
    }

    /// The entry that prices a call of `provider` to `model` on `day` (days since the Unix epoch,
    /// UTC), with the matching rules of [`price`](Self::price).
    pub fn find(&self, provider: Option<&str>, model: &str, day: i32) -> Option<&PriceEntry> {
        match self.resolve(provider, model, day) {
            Resolved::Entry(i) => self.inner.entries.get(i as usize),
            Resolved::NotFound | Resolved::Ambiguous => None,
        }
    }

    /// Prices a call of `provider` to the first of `models` (response model first, then request
    /// model) that matches an entry in force on `day` (days since epoch, UTC).
    pub fn price(
        &self,
        provider: Option<&str>,
        models: &[&str],
        day: i32,
        usage: &Usage,
    ) -> PriceResult {
        for model in models {
            match self.resolve(provider, model, day) {
                Resolved::Entry(i) => {
                    return match self.inner.entries.get(i as usize) {
                        Some(entry) => entry.price(usage),
                        None => PriceResult::UnknownModel,
                    };
                }
                Resolved::Ambiguous => return PriceResult::UnknownModel,
                Resolved::NotFound => {}
            }
        }
        PriceResult::UnknownModel
    }

    fn resolve(&self, provider: Option<&str>, model: &str, day: i32) -> Resolved {
        let provider = provider.map(str::trim).filter(|p| !p.is_empty());
        let lowered = ascii_lowercase(model.trim());
        let mut name = strip_prefixes(&lowered);
        if name.is_empty() {
            return Resolved::NotFound;
        }
        loop {
            if let Some(bucket) = self.inner.index.get(name) {
                match self.pick(bucket, provider, day) {
                    Pick::Entry(i) => return Resolved::Entry(i),
                    Pick::NotInForce => return Resolved::NotFound,
                    Pick::Ambiguous => return Resolved::Ambiguous,
                    Pick::NoneForProvider => {}
                }
            }
            match strip_suffix_once(name) {
                Some(shorter) => name = shorter,
                None => return Resolved::NotFound,
            }
        }
    }

    fn pick(&self, bucket: &Bucket, provider: Option<&str>, day: i32) -> Pick {
        let entries = &self.inner.entries;
        let mut any = false;
        if provider.is_none() && bucket.ambiguous {
            return Pick::Ambiguous;
        }
        for &i in &bucket.ids {
            let Some(e) = entries.get(i as usize) else {
                continue;
            };
            if let Some(p) = provider
                && !e.serves(p)
            {
                continue;
            }
            any = true;
            if e.effective_day <= day {
                return Pick::Entry(i);
            }
        }
        if any {
            Pick::NotInForce
        } else {
            Pick::NoneForProvider
        }
    }

    /// Builds the index over validated entries.
    fn build(version: String, entries: Vec<PriceEntry>) -> Self {
        let mut index: HashMap<Box<str>, Bucket, FxBuild> = HashMap::default();
        for (i, entry) in entries.iter().enumerate() {
            for key in entry.keys() {
                // Table sizes are far below u32::MAX entries.
                index
                    .entry(key.into_boxed_str())
                    .or_default()
                    .ids
                    .push(i as u32);
            }
        }
        for bucket in index.values_mut() {
            bucket.ids.sort_by(|&a, &b| {
                let (ea, eb) = (&entries[a as usize], &entries[b as usize]);
                eb.effective_day
                    .cmp(&ea.effective_day)
                    .then(eb.layer.cmp(&ea.layer))
            });
            let first = bucket
                .ids
                .first()
                .map(|&i| entries[i as usize].provider.as_str());
            bucket.ambiguous = bucket
                .ids
                .iter()
                .any(|&i| Some(entries[i as usize].provider.as_str()) != first);
        }
        Self {
            inner: Arc::new(Inner {
                version,
                entries,
                index,
            }),
        }
    }
}

/// Checks the rules that span several entries of one table.
fn check_table(entries: &[PriceEntry]) -> Result<()> {
    // (served provider, name key, day) → entry number; (served provider, name key) → entry number.
    let mut dated: HashMap<(&str, String, i32), usize> = HashMap::new();
    let mut names: HashMap<(&str, String), usize> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        let n = i + 1;
        for provider in e.served_providers() {
            for key in e.keys() {
                if let Some(&m) = dated.get(&(provider, key.clone(), e.effective_day)) {
                    return Err(Error::PriceTable(format!(
                        "price entries #{m} and #{n} both price `{key}` of provider `{provider}` \
                         from {}",
                        e.effective_from
                    )));
                }
                dated.insert((provider, key.clone(), e.effective_day), n);
                match names.get(&(provider, key.clone())) {
                    Some(&m) if entries[m - 1].model != e.model => {
                        return Err(Error::PriceTable(format!(
                            "price entry #{n} ({}): the name `{key}` of provider `{provider}` \
                             already means model `{}` (entry #{m})",
                            e.model,
                            entries[m - 1].model
                        )));
                    }
                    Some(_) => {}
                    None => {
                        names.insert((provider, key), n);
                    }
                }
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// TOML format
// ------------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    version: String,
    #[serde(default)]
    price: Vec<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    provider: String,
    #[serde(default)]
    also_providers: Vec<String>,
    model: String,
    #[serde(default)]
    aliases: Vec<String>,
    effective_from: DateField,
    input_per_mtok: Usd,
    cached_input_per_mtok: Option<Usd>,
    cache_write_per_mtok: Option<Usd>,
    output_per_mtok: Usd,
    long_context: Option<RawLongContext>,
    source: String,
    source_date: DateField,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLongContext {
    above_input_tokens: i64,
    input_per_mtok: Usd,
    cached_input_per_mtok: Option<Usd>,
    cache_write_per_mtok: Option<Usd>,
    output_per_mtok: Usd,
}

/// A date given as a `"YYYY-MM-DD"` string or a bare TOML local date (validated later).
struct DateField(String);

impl<'de> Deserialize<'de> for DateField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match toml::Value::deserialize(d)? {
            toml::Value::String(s) => Ok(DateField(s)),
            toml::Value::Datetime(dt) => match (dt.date, dt.time, dt.offset) {
                (Some(date), None, None) => Ok(DateField(date.to_string())),
                _ => Err(serde::de::Error::custom(format!(
                    "expected a date \"YYYY-MM-DD\", found the date-time {dt}"
                ))),
            },
            other => Err(serde::de::Error::custom(format!(
                "expected a date \"YYYY-MM-DD\", found a {}",
                other.type_str()
            ))),
        }
    }
}

impl RawEntry {
    /// Checks one entry on its own; `n` is its 1-based position.
    fn validate(self, n: usize, table_version: &str) -> Result<PriceEntry> {
        let what = format!("{}/{}@{}", self.provider, self.model, self.effective_from.0);
        let err = |msg: String| Error::PriceTable(format!("price entry #{n} ({what}): {msg}"));

        check_provider(&self.provider).map_err(&err)?;
        for p in &self.also_providers {
            check_provider(p).map_err(&err)?;
            if p == &self.provider {
                return Err(err(format!("also_providers repeats the provider `{p}`")));
            }
        }
        let model = self.model.trim();
        if model.is_empty()
            || model.contains(['#', '@', '/'])
            || model.contains(char::is_whitespace)
            || model.bytes().any(|b| b.is_ascii_uppercase())
        {
            return Err(err(format!(
                "model {:?} must be a non-empty lowercase name without whitespace, `/`, `@` or `#`",
                self.model
            )));
        }
        for alias in &self.aliases {
            if entry_key(alias).is_empty() {
                return Err(err(format!("alias {alias:?} is empty")));
            }
        }
        let effective_day = parse_day(&self.effective_from.0).ok_or_else(|| {
            err(format!(
                "effective_from {:?} is not a valid YYYY-MM-DD date",
                self.effective_from.0
            ))
        })?;
        parse_day(&self.source_date.0).ok_or_else(|| {
            err(format!(
                "source_date {:?} is not a valid YYYY-MM-DD date",
                self.source_date.0
            ))
        })?;
        if self.source.trim().is_empty() {
            return Err(err("source must name where the rates were read".to_owned()));
        }
        check_rate("input_per_mtok", self.input_per_mtok).map_err(&err)?;
        check_rate("output_per_mtok", self.output_per_mtok).map_err(&err)?;
        if let Some(r) = self.cached_input_per_mtok {
            check_rate("cached_input_per_mtok", r).map_err(&err)?;
        }
        if let Some(r) = self.cache_write_per_mtok {
            check_rate("cache_write_per_mtok", r).map_err(&err)?;
        }
        let long_context = match self.long_context {
            None => None,
            Some(lc) => {
                if lc.above_input_tokens <= 0 {
                    return Err(err(
                        "long_context.above_input_tokens must be positive".to_owned()
                    ));
                }
                check_rate("long_context.input_per_mtok", lc.input_per_mtok).map_err(&err)?;
                check_rate("long_context.output_per_mtok", lc.output_per_mtok).map_err(&err)?;
                for (field, base, tier) in [
                    (
                        "cached_input_per_mtok",
                        self.cached_input_per_mtok,
                        lc.cached_input_per_mtok,
                    ),
                    (
                        "cache_write_per_mtok",
                        self.cache_write_per_mtok,
                        lc.cache_write_per_mtok,
                    ),
                ] {
                    if let Some(r) = tier {
                        check_rate(&format!("long_context.{field}"), r).map_err(&err)?;
                    } else if base.is_some() {
                        return Err(err(format!(
                            "long_context must give {field} since the entry does"
                        )));
                    }
                }
                Some(LongContextRates {
                    above_input_tokens: lc.above_input_tokens,
                    input_per_mtok: lc.input_per_mtok,
                    cached_input_per_mtok: lc.cached_input_per_mtok,
                    cache_write_per_mtok: lc.cache_write_per_mtok,
                    output_per_mtok: lc.output_per_mtok,
                })
            }
        };
        let effective_from = self.effective_from.0;
        let price_id = format!("{}/{model}@{effective_from}#{table_version}", self.provider);
        Ok(PriceEntry {
            provider: self.provider,
            also_providers: self.also_providers,
            model: model.to_owned(),
            aliases: self.aliases,
            effective_from,
            input_per_mtok: self.input_per_mtok,
            cached_input_per_mtok: self.cached_input_per_mtok,
            cache_write_per_mtok: self.cache_write_per_mtok,
            output_per_mtok: self.output_per_mtok,
            long_context,
            source: self.source,
            source_date: self.source_date.0,
            table_version: table_version.to_owned(),
            effective_day,
            price_id,
            layer: 0,
        })
    }
}

fn check_provider(p: &str) -> std::result::Result<(), String> {
    let ok = !p.is_empty()
        && p.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "provider {p:?} must be a normalized name (lowercase letters, digits, `.`, `_`, `-`)"
        ))
    }
}

fn check_rate(field: &str, rate: Usd) -> std::result::Result<(), String> {
    if rate < Usd::ZERO {
        Err(format!("{field} must not be negative (got {rate})"))
    } else if rate.raw() > MAX_RATE_USD * USD_UNIT_RAW {
        Err(format!(
            "{field} is implausibly large (got {rate} USD per million tokens)"
        ))
    } else {
        Ok(())
    }
}

/// Days since 1970-01-01 of a strict `YYYY-MM-DD` date (years 1900–9999).
fn parse_day(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_len = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if y < 1900 || d < 1 || d > month_len {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    i32::try_from(era * 146_097 + doe - 719_468).ok()
}

// ------------------------------------------------------------------------------------------------
// Model name normalization (hot path: byte-level, no regex, no allocation for lowercase input)
// ------------------------------------------------------------------------------------------------

/// Bedrock cross-region inference profile prefixes (only stripped before a vendor prefix).
const BEDROCK_REGIONS: &[&str] = &[
    "us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.",
];
/// Bedrock vendor prefixes.
const BEDROCK_VENDORS: &[&str] = &[
    "anthropic.",
    "openai.",
    "mistral.",
    "deepseek.",
    "google.",
    "meta.",
    "amazon.",
    "cohere.",
    "ai21.",
];

fn ascii_lowercase(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// Normalized name of a table model or alias: lowercase, provider prefixes stripped.
fn entry_key(name: &str) -> String {
    strip_prefixes(&ascii_lowercase(name.trim())).to_owned()
}

/// Strips `…/` path prefixes and a Bedrock `[region.]vendor.` prefix from a lowercase name.
fn strip_prefixes(s: &str) -> &str {
    let s = match s.rfind('/') {
        Some(i) => &s[i + 1..],
        None => s,
    };
    let candidates = BEDROCK_REGIONS
        .iter()
        .filter_map(|r| s.strip_prefix(r))
        .chain(std::iter::once(s));
    for rest in candidates {
        for vendor in BEDROCK_VENDORS {
            if let Some(model) = rest.strip_prefix(vendor)
                && !model.is_empty()
            {
                return model;
            }
        }
    }
    s
}

/// Strips one version suffix from a lowercase name, if it has one (leaving a non-empty name).
fn strip_suffix_once(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let n = b.len();
    let digits_before = |end: usize| {
        b[..end]
            .iter()
            .rev()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let keep = |len: usize| (len > 0 && b[len - 1] != b'-').then(|| &s[..len]);

    // Vertex AI: `@20241022`, `@001`, `@latest`.
    if let Some(at) = s.rfind('@') {
        let tail = &b[at + 1..];
        if tail == b"latest" || (!tail.is_empty() && tail.iter().all(u8::is_ascii_digit)) {
            return keep(at);
        }
    }
    // `-latest`.
    if let Some(base) = s.strip_suffix("-latest") {
        return keep(base.len());
    }
    // Bedrock: `-v2:0`.
    let minor = digits_before(n);
    if minor > 0 && n > minor && b[n - minor - 1] == b':' {
        let colon = n - minor - 1;
        let major = digits_before(colon);
        let v = colon - major;
        if major > 0 && v >= 2 && b[v - 1] == b'v' && b[v - 2] == b'-' {
            return keep(v - 2);
        }
        return None;
    }
    // `-2025-04-14`.
    if n >= 11 {
        let t = &b[n - 11..];
        let shape = t[0] == b'-'
            && t[5] == b'-'
            && t[8] == b'-'
            && [1, 2, 3, 4, 6, 7, 9, 10]
                .iter()
                .all(|&i| t[i].is_ascii_digit());
        if shape {
            return keep(n - 11);
        }
    }
    // `-20241022`, `-0613`, `-001`.
    if matches!(minor, 3 | 4 | 8) && n > minor && b[n - minor - 1] == b'-' {
        return keep(n - minor - 1);
    }
    None
}

/// A fast, non-keyed hasher for the model index. Hash flooding is not a concern: the keys come
/// from the price table, and span data only ever looks keys up.
#[derive(Debug, Clone, Copy, Default)]
struct FxBuild;

impl BuildHasher for FxBuild {
    type Hasher = FxHasher;
    fn build_hasher(&self) -> FxHasher {
        FxHasher(0)
    }
}

struct FxHasher(u64);

impl FxHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn usd(s: &str) -> Usd {
        s.parse().unwrap()
    }

    fn day(s: &str) -> i32 {
        parse_day(s).unwrap()
    }

    fn usage(input: i64, cached: i64, write: i64, output: i64) -> Usage {
        Usage {
            input_tokens: Some(input),
            output_tokens: Some(output),
            cached_input_tokens: Some(cached),
            cache_write_input_tokens: Some(write),
        }
    }

    fn priced(r: PriceResult) -> Priced {
        match r {
            PriceResult::Priced(p) => p,
            other => panic!("expected a priced call, got {other:?}"),
        }
    }

    fn err_of(toml: &str) -> String {
        match PriceTable::from_toml_str(toml) {
            Ok(_) => panic!("table should be rejected:\n{toml}"),
            Err(e) => e.to_string(),
        }
    }

    const TODAY: &str = "2026-11-23";

    const TWO_DATES: &str = r#"
        version = "t1"
        [[price]]
        provider = "openai"
        model = "m"
        effective_from = "2025-01-01"
        input_per_mtok = "1"
        output_per_mtok = "2"
        source = "test"
        source_date = "2025-01-01"
        [[price]]
        provider = "openai"
        model = "m"
        effective_from = 2025-06-01
        input_per_mtok = 0.5
        output_per_mtok = 1
        source = "test"
        source_date = 2025-06-01
    "#;

    #[test]
    fn embedded_table_parses_and_every_entry_is_valid() {
        let table = PriceTable::embedded();
        assert_eq!(table.version(), "2026-11-23");
        assert!(table.entries().len() >= 40, "{}", table.entries().len());
        let mut seen = HashSet::new();
        for e in table.entries() {
            let id = e.price_id();
            assert!(
                e.input_per_mtok >= Usd::ZERO && e.output_per_mtok >= Usd::ZERO,
                "{id}"
            );
            assert!(
                e.cached_input_per_mtok.unwrap_or(Usd::ZERO) >= Usd::ZERO,
                "{id}"
            );
            assert!(
                e.cache_write_per_mtok.unwrap_or(Usd::ZERO) >= Usd::ZERO,
                "{id}"
            );
            assert_eq!(
                parse_day(&e.effective_from),
                Some(e.effective_day()),
                "{id}"
            );
            assert!(parse_day(&e.source_date).is_some(), "{id}");
            assert!(e.source.starts_with("https://"), "{id}");
            assert!(e.effective_day() <= day(TODAY), "{id}");
            assert!(
                seen.insert((&e.provider, &e.model, e.effective_day())),
                "duplicate {id}"
            );
            assert_eq!(
                id,
                format!("{}/{}@{}#2026-11-23", e.provider, e.model, e.effective_from)
            );
            // Discounted cache reads never cost more than fresh input.
            if let Some(c) = e.cached_input_per_mtok {
                assert!(c <= e.input_per_mtok, "{id}");
            }
        }
        // The same value is shared, not re-parsed.
        assert!(Arc::ptr_eq(&table.inner, &PriceTable::embedded().inner));
    }

    #[test]
    fn embedded_table_covers_the_required_models() {
        let table = PriceTable::embedded();
        let today = day(TODAY);
        let required = [
            (
                "openai",
                "gpt-4.1 gpt-4.1-mini gpt-4.1-nano gpt-4o gpt-4o-mini o1 o3 o3-mini o4-mini gpt-5 gpt-5-mini gpt-5-nano text-embedding-3-small text-embedding-3-large text-embedding-ada-002",
            ),
            (
                "anthropic",
                "claude-opus-4-1 claude-opus-4 claude-sonnet-4-5 claude-sonnet-4 claude-3-7-sonnet claude-3-5-sonnet claude-3-5-haiku claude-haiku-4-5 claude-3-haiku",
            ),
            (
                "gcp.gemini",
                "gemini-2.5-pro gemini-2.5-flash gemini-2.5-flash-lite gemini-2.0-flash gemini-embedding-001",
            ),
            ("deepseek", "deepseek-chat deepseek-reasoner"),
            (
                "mistral_ai",
                "mistral-large-latest mistral-medium mistral-small codestral mistral-embed",
            ),
        ];
        for (provider, models) in required {
            for model in models.split_whitespace() {
                let e = table
                    .find(Some(provider), model, today)
                    .unwrap_or_else(|| panic!("{provider}/{model} is not priced"));
                assert_eq!(e.provider, provider);
                if provider == "anthropic" {
                    assert!(
                        e.cached_input_per_mtok.is_some() && e.cache_write_per_mtok.is_some(),
                        "{model}"
                    );
                }
                if model.contains("embed") {
                    assert_eq!(e.output_per_mtok, Usd::ZERO, "{model}");
                }
            }
        }
        assert_eq!(
            table
                .find(Some("mistral_ai"), "mistral-large-latest", today)
                .unwrap()
                .model,
            "mistral-large"
        );
    }

    #[test]
    fn anchor_prices() {
        let table = PriceTable::embedded();
        let today = day(TODAY);
        for (model, input, cached, output) in [
            ("gpt-4.1", "2.00", Some("0.50"), "8.00"),
            ("gpt-4o-mini", "0.15", Some("0.075"), "0.60"),
            ("o3-mini", "1.10", Some("0.55"), "4.40"),
            ("text-embedding-3-small", "0.02", None, "0"),
            ("gpt-4o", "2.50", Some("1.25"), "10.00"),
        ] {
            let e = table.find(Some("openai"), model, today).unwrap();
            assert_eq!(e.input_per_mtok, usd(input), "{model}");
            assert_eq!(e.cached_input_per_mtok, cached.map(usd), "{model}");
            assert_eq!(e.output_per_mtok, usd(output), "{model}");
        }
        assert_eq!(
            table
                .find(Some("openai"), "gpt-4.1", today)
                .unwrap()
                .effective_from,
            "2025-04-14"
        );
    }

    #[test]
    fn gpt_4_1_cost_is_exact() {
        let table = PriceTable::embedded();
        let p = priced(table.price(
            Some("openai"),
            &["gpt-4.1"],
            day("2025-06-01"),
            &usage(1234, 200, 0, 567),
        ));
        assert_eq!(p.input_cost, usd("0.002168"));
        assert_eq!(p.output_cost, usd("0.004536"));
        assert_eq!(p.total_cost, usd("0.006704"));
        assert_eq!(p.price_id, "openai/gpt-4.1@2025-04-14#2026-11-23");
        assert_eq!(p.total_cost.to_string(), "0.006704000000");
    }

    #[test]
    fn model_spellings_match() {
        let table = PriceTable::embedded();
        let d = day(TODAY);
        let u = usage(1000, 0, 0, 0);
        let id = |provider: &str, model: &str| match table.price(Some(provider), &[model], d, &u) {
            PriceResult::Priced(p) => p.price_id,
            other => panic!("{provider} {model}: {other:?}"),
        };
        for m in [
            "gpt-4.1",
            "gpt-4.1-2025-04-14",
            "openai/gpt-4.1",
            "GPT-4.1",
            " gpt-4.1 ",
            "OpenAI/GPT-4.1-2025-04-14",
        ] {
            assert_eq!(
                id("openai", m),
                "openai/gpt-4.1@2025-04-14#2026-11-23",
                "{m}"
            );
        }
        for m in [
            "claude-3-5-sonnet-20241022",
            "claude-3-5-sonnet-latest",
            "anthropic/claude-3-5-sonnet-20240620",
            "claude-3.5-sonnet",
        ] {
            assert!(
                id("anthropic", m).starts_with("anthropic/claude-3-5-sonnet@"),
                "{m}"
            );
        }
        for m in [
            "anthropic.claude-3-5-sonnet-20241022-v2:0",
            "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0",
        ] {
            assert!(
                id("aws.bedrock", m).starts_with("anthropic/claude-3-5-sonnet@"),
                "{m}"
            );
        }
        for m in [
            "claude-3-5-sonnet-v2@20241022",
            "claude-3-5-sonnet@20240620",
        ] {
            assert!(
                id("gcp.vertex_ai", m).starts_with("anthropic/claude-3-5-sonnet@"),
                "{m}"
            );
        }
        assert!(
            id(
                "aws.bedrock",
                "global.anthropic.claude-sonnet-4-20250514-v1:0"
            )
            .starts_with("anthropic/claude-sonnet-4@")
        );
        assert!(
            id("anthropic", "claude-sonnet-4-5-20250929")
                .starts_with("anthropic/claude-sonnet-4-5@")
        );
        assert!(id("anthropic", "claude-opus-4-0").starts_with("anthropic/claude-opus-4@"));
        for m in [
            "models/gemini-2.5-pro",
            "publishers/google/models/gemini-2.5-pro",
            "projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro",
            "gemini-2.5-pro",
        ] {
            assert!(
                id("gcp.gemini", m).starts_with("gcp.gemini/gemini-2.5-pro@"),
                "{m}"
            );
        }
        assert!(
            id("gcp.gemini", "gemini-2.0-flash-001").starts_with("gcp.gemini/gemini-2.0-flash@")
        );
        assert!(
            id("gcp.gemini", "models/gemini-embedding-001")
                .starts_with("gcp.gemini/gemini-embedding-001@")
        );
        assert!(id("mistral_ai", "mistral-large-latest").starts_with("mistral_ai/mistral-large@"));
        assert!(id("mistral_ai", "mistral-large-2411").starts_with("mistral_ai/mistral-large@"));
        assert!(id("mistral_ai", "codestral-2501").starts_with("mistral_ai/codestral@2025-01-13"));
        assert!(id("openai", "o3-mini-2025-01-31").starts_with("openai/o3-mini@"));
        assert!(
            id("openai", "text-embedding-ada-002")
                .starts_with("openai/text-embedding-ada-002@2023-06-13")
        );
    }

    #[test]
    fn never_prefix_matches() {
        let table = PriceTable::embedded();
        let d = day(TODAY);
        let model_of = |m: &str| table.find(Some("openai"), m, d).map(|e| e.model.as_str());
        assert_eq!(model_of("gpt-4.1-mini"), Some("gpt-4.1-mini"));
        assert_eq!(model_of("gpt-4.1-mini-2025-04-14"), Some("gpt-4.1-mini"));
        assert_eq!(model_of("gpt-4o-mini-2024-07-18"), Some("gpt-4o-mini"));
        assert_eq!(model_of("gpt-4o-2024-11-20"), Some("gpt-4o"));
        assert_eq!(model_of("o3-mini"), Some("o3-mini"));
        assert_eq!(model_of("o3-2025-04-16"), Some("o3"));
        for unknown in [
            "gpt-4.1-turbo",
            "gpt-4",
            "gpt-4o-mini-tts",
            "o3-pro",
            "gpt-5-codex",
            "ft:gpt-4o-mini-2024-07-18:acme::abc123",
            "gpt-4.1-mini-preview",
            "gemini-2.5-pro",
            "",
            "-latest",
        ] {
            assert_eq!(model_of(unknown), None, "{unknown}");
        }
        // Gemini previews are billed differently from GA and must not match.
        assert!(
            table
                .find(Some("gcp.gemini"), "gemini-2.5-flash-preview-05-20", d)
                .is_none()
        );
        assert!(
            table
                .find(Some("gcp.gemini"), "gemini-2.5-flash-lite-preview-06-17", d)
                .is_none()
        );
    }

    #[test]
    fn suffix_stripping() {
        let chain = |name: &str| {
            let mut out = vec![name.to_owned()];
            let mut cur = name;
            while let Some(next) = strip_suffix_once(cur) {
                out.push(next.to_owned());
                cur = next;
            }
            out.join(" > ")
        };
        assert_eq!(
            chain("claude-3-5-sonnet-20241022-v2:0"),
            "claude-3-5-sonnet-20241022-v2:0 > claude-3-5-sonnet-20241022 > claude-3-5-sonnet"
        );
        assert_eq!(
            chain("claude-3-5-sonnet-v2@20241022"),
            "claude-3-5-sonnet-v2@20241022 > claude-3-5-sonnet-v2"
        );
        assert_eq!(chain("gpt-4o-2024-05-13"), "gpt-4o-2024-05-13 > gpt-4o");
        assert_eq!(
            chain("gpt-3.5-turbo-0613"),
            "gpt-3.5-turbo-0613 > gpt-3.5-turbo"
        );
        assert_eq!(
            chain("gemini-1.5-pro-002@latest"),
            "gemini-1.5-pro-002@latest > gemini-1.5-pro-002 > gemini-1.5-pro"
        );
        assert_eq!(
            chain("mistral-large-latest"),
            "mistral-large-latest > mistral-large"
        );
        assert_eq!(chain("o1"), "o1");
        assert_eq!(chain("gpt-4"), "gpt-4");
        assert_eq!(chain("2024-05-13"), "2024-05-13");
        assert_eq!(chain("-0613"), "-0613");
        assert_eq!(chain("model-v1"), "model-v1");
        assert_eq!(chain("x-05-20"), "x-05-20");
        assert_eq!(
            strip_prefixes("us.anthropic.claude-3-haiku"),
            "claude-3-haiku"
        );
        assert_eq!(strip_prefixes("anthropic."), "anthropic.");
        assert_eq!(strip_prefixes("us.gpt"), "us.gpt");
    }

    #[test]
    fn effective_from_selects_the_entry_in_force() {
        let table = PriceTable::from_toml_str(TWO_DATES).unwrap();
        let u = usage(1_000_000, 0, 0, 1_000_000);
        let at = |d: &str| table.price(Some("openai"), &["m"], day(d), &u);
        assert_eq!(at("2024-12-31"), PriceResult::UnknownModel);
        let first = priced(at("2025-01-01"));
        assert_eq!(
            (first.total_cost, first.price_id.as_str()),
            (usd("3"), "openai/m@2025-01-01#t1")
        );
        assert_eq!(priced(at("2025-05-31")).total_cost, usd("3"));
        let second = priced(at("2025-06-01"));
        assert_eq!(
            (second.total_cost, second.price_id.as_str()),
            (usd("1.5"), "openai/m@2025-06-01#t1")
        );
        assert_eq!(priced(at("2030-01-01")).total_cost, usd("1.5"));

        // In the shipped table: o3's price cut, gpt-4o's alias move.
        let t = PriceTable::embedded();
        let o3 = |d: &str| {
            t.find(Some("openai"), "o3", day(d))
                .map(|e| e.input_per_mtok)
        };
        assert_eq!(o3("2025-04-15"), None);
        assert_eq!(o3("2025-05-01"), Some(usd("10")));
        assert_eq!(o3("2025-06-10"), Some(usd("2")));
        let gpt4o = |m: &str, d: &str| t.find(Some("openai"), m, day(d)).map(|e| e.input_per_mtok);
        assert_eq!(gpt4o("gpt-4o", "2024-09-01"), Some(usd("5")));
        assert_eq!(gpt4o("gpt-4o", "2024-10-02"), Some(usd("2.5")));
        // A dated snapshot entry beats the undated model.
        assert_eq!(gpt4o("gpt-4o-2024-05-13", "2025-01-01"), Some(usd("5")));
        assert_eq!(
            gpt4o("openai/gpt-4o-2024-08-06", "2024-09-01"),
            Some(usd("2.5"))
        );
    }

    #[test]
    fn overrides_win_and_price_id_names_their_version() {
        let overrides = PriceTable::from_toml_str(
            r#"
            version = "acme-contract-2026"
            [[price]]
            provider = "openai"
            model = "gpt-4.1"
            effective_from = "2025-04-14"
            input_per_mtok = "1.50"
            cached_input_per_mtok = "0.25"
            output_per_mtok = "6"
            source = "Contract ACME-OAI-2025, annex B"
            source_date = "2025-03-30"
            [[price]]
            provider = "azure.ai.openai"
            model = "gpt-4o"
            effective_from = "2025-01-01"
            input_per_mtok = "2.75"
            output_per_mtok = "11"
            source = "Azure invoice 2025-01"
            source_date = "2025-02-01"
            "#,
        )
        .unwrap();
        let base = PriceTable::embedded();
        let n_base = base.entries().len();
        let table = base.with_overrides(overrides);
        assert_eq!(table.version(), "2026-11-23+acme-contract-2026");
        assert_eq!(table.entries().len(), n_base + 1);
        let d = day("2025-07-01");
        let u = usage(1_000_000, 0, 0, 1_000_000);
        let p = priced(table.price(Some("openai"), &["gpt-4.1-2025-04-14"], d, &u));
        assert_eq!(p.price_id, "openai/gpt-4.1@2025-04-14#acme-contract-2026");
        assert_eq!(p.total_cost, usd("7.5"));
        let p = priced(table.price(Some("azure.ai.openai"), &["gpt-4o-2024-11-20"], d, &u));
        assert_eq!(
            p.price_id,
            "azure.ai.openai/gpt-4o@2025-01-01#acme-contract-2026"
        );
        // Untouched entries keep the shipped version.
        let p = priced(table.price(Some("openai"), &["gpt-4o"], d, &u));
        assert_eq!(p.price_id, "openai/gpt-4o@2024-10-02#2026-11-23");
        // gpt-4o now exists at two providers: without a provider it cannot be priced.
        assert_eq!(
            table.price(None, &["gpt-4o"], d, &u),
            PriceResult::UnknownModel
        );
        // Layering again: the newest layer wins its ties.
        let again = PriceTable::from_toml_str(
            r#"
            version = "v3"
            [[price]]
            provider = "openai"
            model = "gpt-4.1"
            effective_from = "2025-04-14"
            input_per_mtok = "1"
            output_per_mtok = "1"
            source = "x"
            source_date = "2025-04-14"
            "#,
        )
        .unwrap();
        let table = table.with_overrides(again);
        assert_eq!(table.version(), "2026-11-23+acme-contract-2026+v3");
        let p = priced(table.price(Some("openai"), &["gpt-4.1"], d, &u));
        assert_eq!(p.price_id, "openai/gpt-4.1@2025-04-14#v3");
    }

    #[test]
    fn unknown_model_and_fallback_to_request_model() {
        let table = PriceTable::embedded();
        let d = day(TODAY);
        let u = usage(10, 0, 0, 10);
        assert_eq!(
            table.price(Some("openai"), &["my-finetune"], d, &u),
            PriceResult::UnknownModel
        );
        assert_eq!(
            table.price(Some("openai"), &[], d, &u),
            PriceResult::UnknownModel
        );
        assert_eq!(
            table.price(Some("cohere"), &["gpt-4.1"], d, &u),
            PriceResult::UnknownModel
        );
        // Azure is deliberately not priced from list prices.
        assert_eq!(
            table.price(Some("azure.ai.openai"), &["gpt-4.1"], d, &u),
            PriceResult::UnknownModel
        );
        // Response model first; the request model is the fallback.
        let p = priced(table.price(
            Some("openai"),
            &["gpt-4.1-mini-2025-04-14", "gpt-4.1"],
            d,
            &u,
        ));
        assert!(p.price_id.starts_with("openai/gpt-4.1-mini@"));
        let p = priced(table.price(Some("openai"), &["acme-proxy-model", "gpt-4.1"], d, &u));
        assert!(p.price_id.starts_with("openai/gpt-4.1@"));
    }

    #[test]
    fn no_usage_and_partial_usage() {
        let table = PriceTable::embedded();
        let d = day(TODAY);
        assert_eq!(
            table.price(Some("openai"), &["gpt-4.1"], d, &Usage::default()),
            PriceResult::NoUsage {
                price_id: "openai/gpt-4.1@2025-04-14#2026-11-23".into()
            }
        );
        let only_output = Usage {
            output_tokens: Some(1_000_000),
            ..Usage::default()
        };
        let p = priced(table.price(Some("openai"), &["gpt-4.1"], d, &only_output));
        assert_eq!((p.input_cost, p.output_cost), (Usd::ZERO, usd("8")));
        // Embeddings: input only.
        let embed = Usage {
            input_tokens: Some(500_000),
            ..Usage::default()
        };
        let p = priced(table.price(Some("openai"), &["text-embedding-3-small"], d, &embed));
        assert_eq!(
            (p.input_cost, p.output_cost, p.total_cost),
            (usd("0.01"), Usd::ZERO, usd("0.01"))
        );
        // Negative counts are treated as 0.
        let p = priced(table.price(Some("openai"), &["gpt-4.1"], d, &usage(-5, -1, -1, -7)));
        assert_eq!(p.total_cost, Usd::ZERO);
    }

    #[test]
    fn anthropic_cache_reads_and_writes_use_their_rates() {
        let table = PriceTable::embedded();
        let d = day(TODAY);
        // 10,000 input = 1,000 fresh + 4,000 cache reads + 5,000 cache writes.
        let p = priced(table.price(
            Some("anthropic"),
            &["claude-sonnet-4-20250514"],
            d,
            &usage(10_000, 4_000, 5_000, 2_000),
        ));
        // 1000×3 + 4000×0.30 + 5000×3.75 = 3000 + 1200 + 18750 = 22950 µUSD.
        assert_eq!(p.input_cost, usd("0.02295"));
        assert_eq!(p.output_cost, usd("0.03"));
        assert_eq!(p.total_cost, usd("0.05295"));
        // Reads plus writes above the reported input: input is taken as their sum.
        let p = priced(table.price(
            Some("anthropic"),
            &["claude-sonnet-4"],
            d,
            &usage(100, 4_000, 5_000, 0),
        ));
        assert_eq!(p.input_cost, usd("0.01995")); // 4000×0.30 + 5000×3.75
        // OpenAI has no cache-write rate: writes are billed as input.
        let p = priced(table.price(
            Some("openai"),
            &["gpt-4.1"],
            d,
            &usage(1_000_000, 0, 1_000_000, 0),
        ));
        assert_eq!(p.input_cost, usd("2"));
    }

    #[test]
    fn long_context_tier_applies_above_the_threshold() {
        let table = PriceTable::embedded();
        let d = day(TODAY);
        let at = |input: i64| {
            priced(table.price(
                Some("gcp.gemini"),
                &["gemini-2.5-pro"],
                d,
                &usage(input, 0, 0, 1_000),
            ))
        };
        assert_eq!(at(200_000).total_cost, usd("0.26")); // 200k×1.25 + 1k×10
        assert_eq!(at(200_001).total_cost, usd("0.5150025")); // 200,001×2.50 + 1k×15
    }

    #[test]
    fn provider_none_matches_only_unambiguous_models() {
        let table = PriceTable::from_toml_str(
            r#"
            version = "t"
            [[price]]
            provider = "openai"
            model = "shared"
            effective_from = "2025-01-01"
            input_per_mtok = "1"
            output_per_mtok = "1"
            source = "t"
            source_date = "2025-01-01"
            [[price]]
            provider = "deepseek"
            model = "shared"
            effective_from = "2025-01-01"
            input_per_mtok = "2"
            output_per_mtok = "2"
            source = "t"
            source_date = "2025-01-01"
            [[price]]
            provider = "anthropic"
            also_providers = ["aws.bedrock"]
            model = "only-here"
            effective_from = "2025-01-01"
            input_per_mtok = "3"
            output_per_mtok = "3"
            source = "t"
            source_date = "2025-01-01"
            "#,
        )
        .unwrap();
        let d = day("2025-02-01");
        let u = usage(1, 0, 0, 1);
        assert_eq!(
            table.price(None, &["shared"], d, &u),
            PriceResult::UnknownModel
        );
        assert!(table.find(None, "shared", d).is_none());
        assert_eq!(
            table.find(Some("deepseek"), "shared", d).unwrap().provider,
            "deepseek"
        );
        assert_eq!(
            table.find(None, "only-here-2025-01-01", d).unwrap().model,
            "only-here"
        );
        assert_eq!(
            table
                .find(Some("AWS.Bedrock"), "only-here", d)
                .unwrap()
                .model,
            "only-here"
        );
        assert_eq!(
            table.find(Some(""), "only-here", d).unwrap().model,
            "only-here"
        );
        // Same for the shipped table: claude-3-5-sonnet is one entry serving three providers.
        let t = PriceTable::embedded();
        assert_eq!(
            t.find(None, "claude-3-5-sonnet-20241022", day(TODAY))
                .unwrap()
                .provider,
            "anthropic"
        );
    }

    #[test]
    fn malformed_tables_give_clear_errors() {
        let e = err_of("version = \"x\"\n[[price]\n");
        assert!(e.starts_with("price table: invalid TOML"), "{e}");
        assert!(e.contains("line 2"), "{e}");

        let e = err_of("version = \"x\"\nprices = []\n");
        assert!(e.contains("unknown field `prices`"), "{e}");

        let e = err_of(&TWO_DATES.replace("input_per_mtok = 0.5", "input_per_mtoks = 0.5"));
        assert!(
            e.contains("price entry #2 (model \"m\")")
                && e.contains("unknown field `input_per_mtoks`"),
            "{e}"
        );

        let e = err_of(&TWO_DATES.replace("output_per_mtok = 1\n", "\n"));
        assert!(
            e.contains("price entry #2") && e.contains("missing field `output_per_mtok`"),
            "{e}"
        );

        let e = err_of(&TWO_DATES.replace("input_per_mtok = \"1\"", "input_per_mtok = \"-1\""));
        assert!(
            e.contains("price entry #1 (openai/m@2025-01-01)")
                && e.contains("input_per_mtok must not be negative"),
            "{e}"
        );

        let e = err_of(&TWO_DATES.replace("input_per_mtok = \"1\"", "input_per_mtok = \"one\""));
        assert!(
            e.contains("price entry #1") && e.contains("invalid USD amount"),
            "{e}"
        );

        let e = err_of(&TWO_DATES.replace(
            "effective_from = \"2025-01-01\"",
            "effective_from = \"2025-02-30\"",
        ));
        assert!(
            e.contains("effective_from \"2025-02-30\" is not a valid YYYY-MM-DD date"),
            "{e}"
        );

        let e = err_of(&TWO_DATES.replace(
            "effective_from = 2025-06-01",
            "effective_from = 2025-06-01T10:00:00Z",
        ));
        assert!(
            e.contains("price entry #2") && e.contains("is not a valid YYYY-MM-DD date"),
            "{e}"
        );

        let e = err_of(&TWO_DATES.replace("2025-06-01", "2025-01-01"));
        assert!(
            e.contains(
                "price entries #1 and #2 both price `m` of provider `openai` from 2025-01-01"
            ),
            "{e}"
        );

        let e = err_of(&TWO_DATES.replace("provider = \"openai\"\n        model = \"m\"\n        effective_from = 2025", "provider = \"openai\"\n        model = \"n\"\n        aliases = [\"M\"]\n        effective_from = 2025"));
        assert!(
            e.contains("the name `m` of provider `openai` already means model `m`"),
            "{e}"
        );

        let e = err_of(&TWO_DATES.replace("provider = \"openai\"", "provider = \"OpenAI\""));
        assert!(e.contains("must be a normalized name"), "{e}");

        let e = err_of(&TWO_DATES.replace("version = \"t1\"", "version = \"a#b\""));
        assert!(e.contains("table version"), "{e}");

        let e = err_of(&TWO_DATES.replace("source = \"test\"", "source = \" \""));
        assert!(e.contains("source must name"), "{e}");

        let e = err_of(&TWO_DATES.replace(
            "output_per_mtok = \"2\"",
            "output_per_mtok = \"2\"\n        cached_input_per_mtok = \"0.1\"\n        long_context = { above_input_tokens = 10, input_per_mtok = \"2\", output_per_mtok = \"4\" }",
        ));
        assert!(
            e.contains("long_context must give cached_input_per_mtok"),
            "{e}"
        );
    }

    #[test]
    fn parse_day_is_days_since_epoch() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(parse_day("2000-03-01"), Some(11_017));
        assert_eq!(parse_day("2024-02-29"), Some(19_782));
        assert_eq!(parse_day("2025-04-14"), Some(20_192));
        for bad in [
            "2023-02-29",
            "2025-13-01",
            "2025-00-10",
            "2025-4-14",
            "2025/04/14",
            "1899-12-31",
            "2025-04-1x",
            "",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
    }

    #[test]
    fn table_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<PriceTable>();
        assert_send_sync::<PriceEntry>();
    }
}
