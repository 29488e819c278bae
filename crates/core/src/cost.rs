//! Cost engine: a versioned price table and the cost of one call.
//!
//! (Being written: the signatures below are the stable API.)

use crate::error::Result;
use crate::money::Usd;

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

/// One price entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceEntry {
    /// Normalized provider (`openai`, `anthropic`, …).
    pub provider: String,
    /// Canonical model name.
    pub model: String,
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

/// A versioned price table.
#[derive(Debug, Clone, Default)]
pub struct PriceTable {}

impl PriceTable {
    /// The table shipped in `config/prices.toml`.
    pub fn embedded() -> Self {
        Self {}
    }

    /// Parses a price table in the `config/prices.toml` format.
    pub fn from_toml_str(_s: &str) -> Result<Self> {
        Ok(Self {})
    }

    /// Prices a call of `provider` to the first of `models` that matches an entry in force on
    /// `day` (days since epoch, UTC).
    pub fn price(
        &self,
        _provider: Option<&str>,
        _models: &[&str],
        _day: i32,
        _usage: &Usage,
    ) -> PriceResult {
        PriceResult::UnknownModel
    }
}
