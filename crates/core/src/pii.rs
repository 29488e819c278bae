//! PII detection in prompt and response text.
//!
//! (Scanner being written: the types below are the stable API.)

use std::fmt;

/// A kind of personal or secret data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum PiiType {
    /// E-mail address.
    Email,
    /// Phone number (international formats, incl. +1, +82, +84).
    Phone,
    /// Payment card number (Luhn-checked).
    CreditCard,
    /// US social security number (invalid ranges excluded).
    UsSsn,
    /// International bank account number (mod-97 checked).
    Iban,
    /// IPv4 or IPv6 address.
    IpAddress,
    /// Korean resident registration number.
    KrRrn,
    /// Provider API key (OpenAI `sk-…`, Anthropic `sk-ant-…`, AWS `AKIA…`, GitHub `ghp_…`).
    ApiKey,
    /// Other secret: JWT, private-key block.
    Secret,
}

impl PiiType {
    /// Every type, in column-value order.
    pub const ALL: [PiiType; 9] = [
        PiiType::Email,
        PiiType::Phone,
        PiiType::CreditCard,
        PiiType::UsSsn,
        PiiType::Iban,
        PiiType::IpAddress,
        PiiType::KrRrn,
        PiiType::ApiKey,
        PiiType::Secret,
    ];

    /// The value stored in `pii_types`.
    pub fn as_str(self) -> &'static str {
        match self {
            PiiType::Email => "EMAIL",
            PiiType::Phone => "PHONE",
            PiiType::CreditCard => "CREDIT_CARD",
            PiiType::UsSsn => "US_SSN",
            PiiType::Iban => "IBAN",
            PiiType::IpAddress => "IP_ADDRESS",
            PiiType::KrRrn => "KR_RRN",
            PiiType::ApiKey => "API_KEY",
            PiiType::Secret => "SECRET",
        }
    }

    /// Parses a column value (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for PiiType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`PiiType`]s (a bit set: cheap to copy and merge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PiiSet(u16);

impl PiiSet {
    /// Every type.
    pub fn all() -> Self {
        PiiType::ALL.into_iter().collect()
    }
    /// Adds a type.
    pub fn insert(&mut self, t: PiiType) {
        self.0 |= 1 << (t as u8);
    }
    /// Whether the set holds `t`.
    pub fn contains(self, t: PiiType) -> bool {
        self.0 & (1 << (t as u8)) != 0
    }
    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Types in either set.
    pub fn union(self, other: PiiSet) -> PiiSet {
        PiiSet(self.0 | other.0)
    }
    /// Types in both sets.
    pub fn intersection(self, other: PiiSet) -> PiiSet {
        PiiSet(self.0 & other.0)
    }
    /// Types in `self` but not in `other`.
    pub fn difference(self, other: PiiSet) -> PiiSet {
        PiiSet(self.0 & !other.0)
    }
    /// The types, in [`PiiType::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = PiiType> {
        PiiType::ALL.into_iter().filter(move |t| self.contains(*t))
    }
    /// Column values, sorted alphabetically.
    pub fn to_strings(self) -> Vec<String> {
        let mut v: Vec<String> = self.iter().map(|t| t.as_str().to_owned()).collect();
        v.sort_unstable();
        v
    }
}

impl FromIterator<PiiType> for PiiSet {
    fn from_iter<I: IntoIterator<Item = PiiType>>(iter: I) -> Self {
        let mut s = PiiSet::default();
        for t in iter {
            s.insert(t);
        }
        s
    }
}

/// Finds PII in text. Cheap to clone; `scan` takes `&self` so one scanner serves all threads.
#[derive(Debug, Clone, Default)]
pub struct PiiScanner {}

impl PiiScanner {
    /// A scanner with every detector enabled.
    pub fn new() -> Self {
        Self {}
    }

    /// The PII types found in `text`. Matched values are never returned or kept.
    pub fn scan(&self, _text: &str) -> PiiSet {
        PiiSet::default()
    }
}
