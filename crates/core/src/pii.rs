//! PII detection in prompt and response text.
//!
//! [`PiiScanner::scan`] reports which [`PiiType`]s occur in a text:
//!
//! | type | shape | validation |
//! |---|---|---|
//! | `EMAIL` | `local@domain.tld` | ≥ 2 domain labels, alphabetic TLD |
//! | `PHONE` | `+CC …` (`+1-202-555-0143`, `+1 (202) 555-0143`, `+82 10-1234-5678`, `+84 912 345 678`); national `(202) 555-0143`, `202-555-0143`, `010-1234-5678` | 8–15 digits after `+`; North American area/exchange rules; trunk-`0` numbers of 9–11 digits in separated groups |
//! | `CREDIT_CARD` | 13–19 digits, contiguous or grouped by one space/dash (4-4-4-4, 4-6-5, …) | issuer digit 2–6, Luhn |
//! | `US_SSN` | `AAA-GG-SSSS` | area ≠ 000, 666, 900–999; group ≠ 00; serial ≠ 0000 |
//! | `IBAN` | country code, 2 check digits, ≤ 30 letters/digits, optionally in groups of 4 | 15–34 characters, mod-97 = 1 |
//! | `IP_ADDRESS` | IPv4 dotted quad; IPv6 full or compressed | octets ≤ 255; [`Ipv6Addr`] parse, ≥ 3 groups |
//! | `KR_RRN` | `YYMMDD-GNNNNNN` | real month/day, gender digit 1–8 (no checksum: numbers issued since 2020 have none) |
//! | `API_KEY` | `sk-…` (OpenAI, `sk-proj-`, Anthropic `sk-ant-`), AWS `AKIA`/`ASIA` ids, GitHub `ghp_`/`gho_`/`ghs_`/`ghu_`/`ghr_`/`github_pat_` | prefix plus a long enough token |
//! | `SECRET` | JWT `eyJ….eyJ….sig`; PEM `-----BEGIN … PRIVATE KEY-----` | |
//!
//! # How: one pass, anchors, in-place validators
//!
//! The text is read once, front to back. A 256-entry table marks the few bytes at which a
//! detection can start or be anchored: digits, `@`, `+`, `(`, `-`, `_`, `:`, `A` (AWS) and `J`
//! (`eyJ`). Everything else — nearly all of ordinary prose — costs one table lookup per byte. At
//! each anchor a small hand-written matcher reads the shape in place (bounded look-around, no
//! allocation, no regex) and runs the cheap validator (Luhn, mod-97, SSN ranges, calendar, …).
//! A combined `regex::bytes` alternation was measured too: its `find_iter` alone, before any
//! validation, ran at about 0.6× this scanner's throughput on the benchmark corpus
//! (`benches/pii.rs`). The detectors' leading classes (digits, local-part letters) leave it no
//! literal prefilter, so its automaton steps through every byte.
//!
//! Matches start and end on word boundaries: ASCII letters, digits and `_` are word characters,
//! so nothing is found inside a longer token (`x4111111111111111`, `v1.2.3.4`). Non-ASCII text is
//! a boundary, so a Korean particle written right after a number (`010-1234-5678로`) does not
//! hide it. Digit runs that continue a decimal, dashed or space-grouped number (`3.14159…`,
//! `2025-04-14`, `2 012 345 678`) are not starts either, and the shapes are strict enough that
//! dates, times, versions, token counts and plain numbers are not reported.
//!
//! Every scan is linear in the text and never panics, whatever the input.
//!
//! # What is never kept
//!
//! Only the set of types is returned. Matched text is never copied, stored, logged or returned,
//! and the scanner holds no state between calls.

use std::fmt;
use std::net::Ipv6Addr;

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
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Hash, serde::Serialize, serde::Deserialize,
)]
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
///
/// The scanner has no compiled state (the detectors are code and a static byte table), so a
/// clone is a copy of the set of enabled types.
#[derive(Debug, Clone)]
pub struct PiiScanner {
    /// Types reported by [`PiiScanner::scan`].
    enabled: PiiSet,
}

impl Default for PiiScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl PiiScanner {
    /// A scanner with every detector enabled.
    pub fn new() -> Self {
        Self::with_types(PiiSet::all())
    }

    /// A scanner that reports only `types` (the text is still read once).
    pub fn with_types(types: PiiSet) -> Self {
        Self { enabled: types }
    }

    /// The types this scanner reports.
    pub fn types(&self) -> PiiSet {
        self.enabled
    }

    /// The PII types found in `text`. Matched values are never returned or kept.
    pub fn scan(&self, text: &str) -> PiiSet {
        let b = text.as_bytes();
        let mut found = PiiSet::default();
        let mut i = 0;
        while let Some(off) = b
            .get(i..)
            .and_then(|rest| rest.iter().position(|&c| ANCHOR[usize::from(c)]))
        {
            let s = i + off;
            let (hit, resume) = match_at(b, s);
            if let Some(t) = hit {
                found.insert(t);
            }
            i = resume.max(s + 1);
        }
        found.intersection(self.enabled)
    }
}

/// Bytes at which a detection can start or be anchored (see the module docs).
const ANCHOR: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = b'0';
    while c <= b'9' {
        t[c as usize] = true;
        c += 1;
    }
    let others = b"@+(-_:AJ";
    let mut k = 0;
    while k < others.len() {
        t[others[k] as usize] = true;
        k += 1;
    }
    t
};

/// Runs the matchers anchored at `b[s]`: the type found, if any, and where to resume scanning.
fn match_at(b: &[u8], s: usize) -> (Option<PiiType>, usize) {
    use PiiType::*;
    let hit = |t: PiiType, end: Option<usize>| end.map(|e| (Some(t), e));
    let found = match at(b, s) {
        b'0'..=b'9' => {
            let found = if starts_number(b, s) {
                numeric(b, s)
            } else {
                hit(Iban, iban_at_check_digits(b, s))
            };
            // A failed start fails for the rest of its alphanumeric run too: skip it whole.
            return found.unwrap_or((None, s + alnum_run(b, s)));
        }
        b'@' => hit(Email, email(b, s)),
        b'+' => hit(Phone, phone_international(b, s)),
        b'(' => hit(Phone, phone_nanp_parenthesized(b, s)),
        b'-' => hit(Secret, private_key_block(b, s)).or_else(|| hit(ApiKey, sk_key(b, s))),
        b'_' => hit(ApiKey, github_token(b, s)),
        b':' => hit(IpAddress, ipv6(b, s)),
        b'A' => hit(ApiKey, aws_access_key_id(b, s)),
        b'J' => hit(Secret, jwt(b, s)),
        _ => None,
    };
    found.unwrap_or((None, s + 1))
}

/// A detector: text and anchor position in, end of the match out.
type Detector = fn(&[u8], usize) -> Option<usize>;

/// The numeric detectors, for a digit run starting at `s`; most specific first.
fn numeric(b: &[u8], s: usize) -> Option<(Option<PiiType>, usize)> {
    use PiiType::*;
    let detectors: [(PiiType, Detector); 5] = [
        (CreditCard, credit_card),
        (UsSsn, us_ssn),
        (KrRrn, kr_rrn),
        (IpAddress, ipv4),
        (Phone, phone_national),
    ];
    detectors
        .into_iter()
        .find_map(|(t, detect)| detect(b, s).map(|end| (Some(t), end)))
}

// ---------------------------------------------------------------------------------------------
// Byte helpers. Out-of-range reads return 0 (a non-word byte), so matchers never index past the
// end and never panic.

/// The byte at `i`, or 0 past the end.
fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// The byte `k` places before `i`, or 0 before the start.
fn before(b: &[u8], i: usize, k: usize) -> u8 {
    i.checked_sub(k).map_or(0, |j| at(b, j))
}

/// ASCII letter, digit or `_`. Non-ASCII bytes are not word bytes (they act as boundaries).
fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// A byte of an API key or base64url token.
fn is_token(c: u8) -> bool {
    is_word(c) || c == b'-'
}

/// Length of the run at `i` of bytes matching `pred`, counting at most `max`.
fn run(b: &[u8], i: usize, max: usize, pred: impl Fn(u8) -> bool) -> usize {
    b.get(i..).map_or(0, |rest| {
        rest.iter().take(max).take_while(|&&c| pred(c)).count()
    })
}

/// Length of the digit run at `i`, counting at most `max` (so a too-long run reads as `max`).
fn digits(b: &[u8], i: usize, max: usize) -> usize {
    run(b, i, max, |c| c.is_ascii_digit())
}

/// Length of the alphanumeric run at `i`.
fn alnum_run(b: &[u8], i: usize) -> usize {
    run(b, i, usize::MAX, |c| c.is_ascii_alphanumeric())
}

/// The value of the `n` (≤ 9) digits at `i`.
fn value(b: &[u8], i: usize, n: usize) -> u32 {
    (i..i + n).fold(0, |v, k| v * 10 + u32::from(at(b, k).wrapping_sub(b'0')))
}

/// Whether a number may start at `s`: not inside a word, and not continuing a decimal, dashed or
/// space-grouped number (`3.14159…`, the `04` of `2025-04-14`, the `012 345 678` of
/// `2 012 345 678`, the tail of an IBAN with a bad checksum).
fn starts_number(b: &[u8], s: usize) -> bool {
    let p = before(b, s, 1);
    let continues = matches!(p, b'.' | b'-' | b' ') && before(b, s, 2).is_ascii_digit();
    !is_word(p) && !continues
}

/// Whether a number may end at `e`: no word byte follows, and the number does not go on with
/// `.`, `-` or its own separator `sep` and another digit (`1.2.3.4.5`, `202-555-0143-99`).
fn ends_number(b: &[u8], e: usize, sep: u8) -> bool {
    let c = at(b, e);
    let continues =
        (c == b'.' || c == b'-' || (c == sep && sep != 0)) && at(b, e + 1).is_ascii_digit();
    !is_word(c) && !continues
}

// ---------------------------------------------------------------------------------------------
// Detectors. Each takes the text and the anchor position and returns the end of the match.

/// `local@domain.tld` anchored at the `@`: a local part of `[A-Za-z0-9._%+-]` (≤ 64 bytes, with
/// a letter or digit), then ≥ 2 domain labels of `[A-Za-z0-9-]` and an alphabetic TLD of ≥ 2.
fn email(b: &[u8], at_sign: usize) -> Option<usize> {
    let is_local =
        |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-');
    let local = b[..at_sign]
        .iter()
        .rev()
        .take(65)
        .take_while(|&&c| is_local(c))
        .count();
    let local_part = &b[at_sign - local..at_sign];
    if local > 64 || !local_part.iter().any(u8::is_ascii_alphanumeric) {
        return None;
    }
    let mut i = at_sign + 1;
    let mut labels = 0;
    loop {
        let label = run(b, i, 64, |c| c.is_ascii_alphanumeric() || c == b'-');
        if label == 0 || label > 63 || i - at_sign > 255 {
            return None;
        }
        labels += 1;
        i += label;
        if at(b, i) == b'.' && at(b, i + 1).is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let tld = &b[i - label..i];
        let ok = labels >= 2 && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic);
        return (ok && !matches!(at(b, i), b'_' | b'@')).then_some(i);
    }
}

/// International number anchored at the `+`: a country code (1–3 digits when groups follow), then
/// digit groups separated by one space, dash or dot, one group optionally parenthesized
/// (`+1 (202) 555-0143`, `+44 (0)20 7946 0958`); groups have ≥ 2 digits except right after the
/// country code (`+33 1 23 45 67 89`); 8–15 digits in all (E.164). Without separators, `+` and
/// 8–15 digits.
fn phone_international(b: &[u8], plus: usize) -> Option<usize> {
    if is_word(before(b, plus, 1)) || !matches!(at(b, plus + 1), b'1'..=b'9') {
        return None;
    }
    let cc = digits(b, plus + 1, 16);
    let (mut i, mut total, mut groups, mut parenthesized) = (plus + 1 + cc, cc, 1, false);
    while total <= 15 {
        let mut j = i;
        if matches!(at(b, j), b' ' | b'-' | b'.') {
            j += 1;
        }
        let g;
        if at(b, j) == b'(' && !parenthesized {
            g = digits(b, j + 1, 5);
            if !(1..=4).contains(&g) || at(b, j + 1 + g) != b')' {
                break;
            }
            parenthesized = true;
            i = j + g + 2;
        } else {
            g = digits(b, j, 16);
            if g == 0 || (g == 1 && groups > 1) {
                break; // also: a separator not followed by digits ends the number before it
            }
            i = j + g;
        }
        total += g;
        groups += 1;
    }
    let ok = (8..=15).contains(&total) && (groups == 1 || cc <= 3);
    (ok && ends_number(b, i, 0)).then_some(i)
}

/// `(AAA) EEE-NNNN` anchored at the `(` (also `(AAA)EEE-NNNN`, `(AAA) EEE NNNN`).
fn phone_nanp_parenthesized(b: &[u8], paren: usize) -> Option<usize> {
    let area = paren + 1;
    if is_word(before(b, paren, 1))
        || !matches!(at(b, area), b'2'..=b'9')
        || digits(b, area, 4) != 3
        || at(b, area + 3) != b')'
    {
        return None;
    }
    let mut i = area + 4;
    if matches!(at(b, i), b' ' | b'-') {
        i += 1;
    }
    exchange_and_line(b, i, None)
}

/// National phone numbers (no `+`): North American `[1-]AAA-EEE-NNNN`, or trunk-`0` numbers.
fn phone_national(b: &[u8], s: usize) -> Option<usize> {
    phone_nanp(b, s).or_else(|| phone_trunk_zero(b, s))
}

/// `AAA-EEE-NNNN` with one separator (`-`, `.` or space) throughout, optionally after `1-`; area
/// and exchange codes start with 2–9, so `100 200 3000` is not a phone number.
fn phone_nanp(b: &[u8], s: usize) -> Option<usize> {
    let mut area = s;
    if at(b, s) == b'1' && matches!(at(b, s + 1), b'-' | b'.' | b' ') {
        area = s + 2;
    }
    let sep = at(b, area + 3);
    if !matches!(at(b, area), b'2'..=b'9')
        || digits(b, area, 4) != 3
        || !matches!(sep, b'-' | b'.' | b' ')
    {
        return None;
    }
    exchange_and_line(b, area + 4, Some(sep))
}

/// `EEE<sep>NNNN` at `i` (exchange code 2–9..), the separator `sep` if given, else any of `-. `.
fn exchange_and_line(b: &[u8], i: usize, sep: Option<u8>) -> Option<usize> {
    let s = at(b, i + 3);
    let sep_ok = sep.map_or(matches!(s, b'-' | b'.' | b' '), |want| s == want);
    let ok = matches!(at(b, i), b'2'..=b'9')
        && digits(b, i, 4) == 3
        && sep_ok
        && digits(b, i + 4, 5) == 4;
    (ok && ends_number(b, i + 8, s)).then_some(i + 8)
}

/// A national number with trunk prefix `0` (Korea, Vietnam, the UK, most of Europe and Asia):
/// a first group of 2–5 digits starting with `0`, then 1–4 groups of 2–6 digits, one separator
/// (`-`, `.` or space) throughout, 9–11 digits in all: `010-1234-5678`, `02-123-4567`,
/// `0912 345 678`, `020 7946 0958`, `01 23 45 67 89`. Groups after the first are all pairs
/// (French style) or all ≥ 3 digits, so SSN-shaped `012-34-5678` is not a phone; `00` is the
/// international prefix, not a trunk; dates (`01.02.2025`) are too short.
fn phone_trunk_zero(b: &[u8], s: usize) -> Option<usize> {
    let first = digits(b, s, 6);
    let sep = at(b, s + first);
    if at(b, s) != b'0'
        || at(b, s + 1) == b'0'
        || !(2..=5).contains(&first)
        || !matches!(sep, b'-' | b'.' | b' ')
    {
        return None;
    }
    let (mut i, mut total, mut groups, mut pairs) = (s + first, first, 1, 0);
    while groups < 5 && at(b, i) == sep {
        let g = digits(b, i + 1, 7);
        if !(2..=6).contains(&g) {
            break;
        }
        (i, total, groups) = (i + 1 + g, total + g, groups + 1);
        pairs += usize::from(g == 2);
    }
    let uniform = pairs == 0 || pairs == groups - 1;
    let ok = groups >= 2 && uniform && (9..=11).contains(&total);
    (ok && ends_number(b, i, sep)).then_some(i)
}

/// Payment card: 13–19 digits, either contiguous or grouped 4-4-4-4 (last group 1–4, up to five
/// groups), 4-6-5 or 4-6-4 with one space or dash; issuer digit 2–6 (Mastercard 2/5, Amex and
/// Diners 3, Visa 4, Discover/UnionPay 6), which keeps millisecond timestamps out; Luhn-valid.
fn credit_card(b: &[u8], s: usize) -> Option<usize> {
    if !matches!(at(b, s), b'2'..=b'6') {
        return None;
    }
    let first = digits(b, s, 20);
    let (end, count, sep) = if (13..=19).contains(&first) {
        (s + first, first, 0)
    } else if first == 4 && matches!(at(b, s + 4), b' ' | b'-') {
        let sep = at(b, s + 4);
        let mut groups = [4, 0, 0, 0, 0];
        let (mut n, mut i) = (1, s + 4);
        while n < groups.len() && at(b, i) == sep {
            let g = digits(b, i + 1, 7);
            if g == 0 {
                break;
            }
            groups[n] = g;
            (n, i) = (n + 1, i + 1 + g);
        }
        let groups = &groups[..n];
        let standard = n >= 4 && groups[..n - 1].iter().all(|&g| g == 4) && groups[n - 1] <= 4;
        if !(standard || matches!(groups, [4, 6, 5] | [4, 6, 4])) {
            return None;
        }
        (i, groups.iter().sum(), sep)
    } else {
        return None;
    };
    let ok = (13..=19).contains(&count) && ends_number(b, end, sep) && luhn(&b[s..end]);
    ok.then_some(end)
}

/// The Luhn checksum over the digits of `text` (separators skipped).
fn luhn(text: &[u8]) -> bool {
    let mut sum = 0;
    for (k, &c) in text.iter().rev().filter(|c| c.is_ascii_digit()).enumerate() {
        let d = u32::from(c - b'0');
        // Every second digit from the right is doubled, and its digits summed (16 → 7).
        sum += match (k % 2 == 1, d * 2) {
            (true, dd) if dd > 9 => dd - 9,
            (true, dd) => dd,
            (false, _) => d,
        };
    }
    sum % 10 == 0
}

/// `AAA-GG-SSSS` with a valid area (not 000, 666 or 900–999), group (not 00) and serial (not 0000).
fn us_ssn(b: &[u8], s: usize) -> Option<usize> {
    let shape = digits(b, s, 4) == 3
        && at(b, s + 3) == b'-'
        && digits(b, s + 4, 3) == 2
        && at(b, s + 6) == b'-'
        && digits(b, s + 7, 5) == 4;
    if !shape {
        return None;
    }
    let (area, group, serial) = (value(b, s, 3), value(b, s + 4, 2), value(b, s + 7, 4));
    let valid = area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
    (valid && ends_number(b, s + 11, b'-')).then_some(s + 11)
}

/// Korean resident registration number `YYMMDD-GNNNNNN`: a real month and day (29 February
/// allowed in any year) and a gender/century digit 1–8. The check digit is deliberately not
/// verified: numbers issued since October 2020 do not have one.
fn kr_rrn(b: &[u8], s: usize) -> Option<usize> {
    if digits(b, s, 7) != 6 || at(b, s + 6) != b'-' || digits(b, s + 7, 8) != 7 {
        return None;
    }
    let (month, day) = (value(b, s + 2, 2), value(b, s + 4, 2));
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 => 29,
        _ => 0,
    };
    let ok = (1..=days).contains(&day) && matches!(at(b, s + 7), b'1'..=b'8');
    (ok && ends_number(b, s + 14, b'-')).then_some(s + 14)
}

/// IPv4 dotted quad, each octet 1–3 digits ≤ 255 (a fifth `.N` makes it something else).
fn ipv4(b: &[u8], s: usize) -> Option<usize> {
    let mut i = s;
    for octet in 0..4 {
        if octet > 0 {
            if at(b, i) != b'.' {
                return None;
            }
            i += 1;
        }
        let n = digits(b, i, 4);
        if !(1..=3).contains(&n) || value(b, i, n) > 255 {
            return None;
        }
        i += n;
    }
    ends_number(b, i, b'.').then_some(i)
}

/// IPv6 around a `:`: the surrounding run of hex digits and colons (and a trailing dotted IPv4),
/// on word boundaries, with at least three non-empty groups, parsed by [`Ipv6Addr`]. The group
/// minimum keeps Python slices (`a[1::2]`) and `::1` out; times (`12:30:45`) and MAC addresses
/// fail the parse.
fn ipv6(b: &[u8], colon: usize) -> Option<usize> {
    const MAX: usize = 45; // longest textual IPv6 address (with embedded IPv4)
    let is_v6 = |c: u8| c.is_ascii_hexdigit() || c == b':';
    let left = b[..colon]
        .iter()
        .rev()
        .take(MAX)
        .take_while(|&&c| is_v6(c))
        .count();
    let start = colon - left;
    let mut end = colon + 1;
    while end - start <= MAX {
        let c = at(b, end);
        if !(is_v6(c) || (c == b'.' && at(b, end + 1).is_ascii_digit())) {
            break;
        }
        end += 1;
    }
    let bounded = !is_token(before(b, start, 1)) && !is_word(at(b, end)) && end - start <= MAX;
    let text = b.get(start..end)?;
    let groups = text.split(|&c| c == b':').filter(|g| !g.is_empty()).count();
    if !bounded || groups < 3 {
        return None;
    }
    let parsed = std::str::from_utf8(text).ok()?.parse::<Ipv6Addr>();
    parsed.is_ok().then_some(end)
}

/// IBAN whose check digits start at `d`: two upper-case letters before it, on a word boundary.
fn iban_at_check_digits(b: &[u8], d: usize) -> Option<usize> {
    let s = d.checked_sub(2)?;
    let country = at(b, s).is_ascii_uppercase() && at(b, s + 1).is_ascii_uppercase();
    if !country || is_word(before(b, s, 1)) || !at(b, d + 1).is_ascii_digit() {
        return None;
    }
    iban(b, s)
}

/// IBAN at `s`: country code and check digits, then upper-case letters and digits, contiguous or
/// in groups of four separated by one space (last group 1–4); 15–34 characters; mod-97 = 1.
/// Grouped IBANs are checked at every group end, so a following upper-case word does not hide one.
fn iban(b: &[u8], s: usize) -> Option<usize> {
    let is_char = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    let grouped = at(b, s + 4) == b' ';
    let (mut i, mut len, mut bban, mut found) = (s + 4, 4, 0, None);
    loop {
        if grouped {
            if at(b, i) != b' ' {
                break;
            }
            i += 1;
        }
        let n = run(b, i, if grouped { 4 } else { 30 }, is_char);
        bban = b[i..i + n].iter().fold(bban, |r, &c| mod97(r, c));
        (i, len) = (i + n, len + n);
        if n == 0 || len > 34 || is_word(at(b, i)) {
            break;
        }
        // The check: BBAN followed by country code and check digits, mod 97.
        if len >= 15 && b[s..s + 4].iter().fold(bban, |r, &c| mod97(r, c)) == 1 {
            found = Some(i);
        }
        if !grouped || n < 4 {
            break;
        }
    }
    found
}

/// Appends an IBAN character to a remainder mod 97 (letters count as 10–35, two digits).
fn mod97(r: u32, c: u8) -> u32 {
    if c.is_ascii_digit() {
        (r * 10 + u32::from(c - b'0')) % 97
    } else {
        (r * 100 + u32::from(c.wrapping_sub(b'A')) + 10) % 97
    }
}

/// `sk-…` anchored at the dash: OpenAI (`sk-…`, `sk-proj-…`) and Anthropic (`sk-ant-…`) keys,
/// ≥ 20 token bytes after `sk-`.
fn sk_key(b: &[u8], dash: usize) -> Option<usize> {
    let s = dash.checked_sub(2)?;
    if b.get(s..dash)? != b"sk" || is_token(before(b, s, 1)) {
        return None;
    }
    let n = run(b, dash + 1, usize::MAX, is_token);
    (n >= 20).then_some(dash + 1 + n)
}

/// AWS access key id: `AKIA` or `ASIA` and exactly 16 upper-case letters or digits.
fn aws_access_key_id(b: &[u8], s: usize) -> Option<usize> {
    let prefix = b.get(s..s + 4)?;
    if (prefix != b"AKIA" && prefix != b"ASIA") || is_word(before(b, s, 1)) {
        return None;
    }
    let n = run(b, s + 4, 17, |c| {
        c.is_ascii_uppercase() || c.is_ascii_digit()
    });
    (n == 16 && !is_word(at(b, s + 20))).then_some(s + 20)
}

/// GitHub token anchored at its first `_`: `ghp_`/`gho_`/`ghs_`/`ghu_`/`ghr_` and ≥ 30
/// alphanumerics (36 in practice), or `github_pat_` and ≥ 22 word bytes.
fn github_token(b: &[u8], underscore: usize) -> Option<usize> {
    let u = underscore;
    let classic = u.checked_sub(3).filter(|&s| {
        b.get(s..s + 2) == Some(b"gh") && matches!(at(b, s + 2), b'p' | b'o' | b's' | b'u' | b'r')
    });
    if let Some(s) = classic {
        let n = alnum_run(b, u + 1);
        let ok = !is_token(before(b, s, 1)) && n >= 30 && !is_word(at(b, u + 1 + n));
        return ok.then_some(u + 1 + n);
    }
    let s = u.checked_sub(6)?;
    if b.get(s..u)? != b"github" || is_token(before(b, s, 1)) || !b[u..].starts_with(b"_pat_") {
        return None;
    }
    let n = run(b, u + 5, usize::MAX, is_word);
    (n >= 22).then_some(u + 5 + n)
}

/// JWT anchored at the `J` of `eyJ`: `eyJ…` header, `.`, `eyJ…` payload (base64url JSON objects,
/// ≥ 10 bytes each), `.`, signature (may be empty for unsigned tokens).
fn jwt(b: &[u8], j: usize) -> Option<usize> {
    let s = j.checked_sub(2)?;
    if b.get(s..j)? != b"ey" || is_token(before(b, s, 1)) {
        return None;
    }
    let header = run(b, s, usize::MAX, is_token);
    let p = s + header + 1;
    if header < 10 || at(b, p - 1) != b'.' || !b[p..].starts_with(b"eyJ") {
        return None;
    }
    let payload = run(b, p, usize::MAX, is_token);
    if payload < 10 || at(b, p + payload) != b'.' {
        return None;
    }
    let sig = p + payload + 1;
    Some(sig + run(b, sig, usize::MAX, is_token))
}

/// PEM private key anchored at its first dash: `-----BEGIN <label>-----` where the label names a
/// private key (`RSA PRIVATE KEY`, `OPENSSH PRIVATE KEY`, `PGP PRIVATE KEY BLOCK`, …).
fn private_key_block(b: &[u8], s: usize) -> Option<usize> {
    let label = b.get(s..)?.strip_prefix(b"-----BEGIN ")?;
    let n = label
        .iter()
        .take(48)
        .take_while(|&&c| c.is_ascii_uppercase() || c == b' ')
        .count();
    let names_private_key = label[..n].windows(11).any(|w| w == b"PRIVATE KEY");
    (names_private_key && label[n..].starts_with(b"-----")).then_some(s + 11 + n + 5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use PiiType::*;
    use proptest::prelude::*;

    fn scan(text: &str) -> PiiSet {
        PiiScanner::new().scan(text)
    }

    fn set<const N: usize>(types: [PiiType; N]) -> PiiSet {
        PiiSet::from_iter(types)
    }

    /// Each text, on its own and embedded in prose, is found as exactly `t`.
    #[track_caller]
    fn found(t: PiiType, texts: &[&str]) {
        for text in texts {
            assert_eq!(scan(text), set([t]), "{text:?} should be {t}");
            let embedded = format!("Hello, please use {text} for this (thanks).");
            assert_eq!(scan(&embedded), set([t]), "{embedded:?} should be {t}");
        }
    }

    /// Each text, on its own and embedded in prose, is not reported at all.
    #[track_caller]
    fn clean(texts: &[&str]) {
        for text in texts {
            assert_eq!(scan(text), PiiSet::default(), "{text:?} should be clean");
            let embedded = format!("Hello, please use {text} for this (thanks).");
            assert_eq!(
                scan(&embedded),
                PiiSet::default(),
                "{embedded:?} should be clean"
            );
        }
    }

    #[test]
    fn example_conversation() {
        assert_eq!(
            scan(
                "Hi, this is Jane Doe. My email is jane.doe@example.com, my card number is \
                 4111 1111 1111 1111 and my phone is +1-202-555-0143. Please update my billing \
                 details."
            ),
            set([Email, CreditCard, Phone])
        );
        assert_eq!(
            scan(
                "Thanks Jane. I have updated the billing contact to jane.doe@example.com and we \
                 will call +1-202-555-0143 to confirm the change."
            ),
            set([Email, Phone])
        );
        assert_eq!(scan("What is the capital of France?"), PiiSet::default());
        assert_eq!(
            scan(
                "Traces drift like leaves / spans whisper where time was spent / logs remember all"
            ),
            PiiSet::default()
        );
    }

    #[test]
    fn email() {
        found(
            Email,
            &[
                "jane.doe@example.com",
                "j@x.io",
                "first.last+tag@mail.sub.example.co.uk",
                "user_name%x@my-host.example.org",
                "JANE@EXAMPLE.COM",
            ],
        );
        // Sentence punctuation after the address.
        assert_eq!(scan("write to jane@example.com."), set([Email]));
        assert_eq!(scan("\"email\":\"jane@example.com\""), set([Email]));
        clean(&[
            "@mention",
            "user@localhost",
            "foo@1.2.3",
            "npm i left-pad@latest",
            "a@b",
            "x@.com",
            "x@example.c",
            "@@@",
            "name@",
        ]);
    }

    #[test]
    fn phone() {
        found(
            Phone,
            &[
                "+1-202-555-0143",
                "+1 (202) 555-0143",
                "(202) 555-0143",
                "(202)555-0143",
                "202-555-0143",
                "202.555.0143",
                "1-202-555-0143",
                "+82 10-1234-5678",
                "+82-10-1234-5678",
                "010-1234-5678",
                "02-123-4567",
                "+84 912 345 678",
                "0912 345 678",
                "+44 20 7946 0958",
                "+44 (0)20 7946 0958",
                "020 7946 0958",
                "+821012345678",
                "+33 1 23 45 67 89",
            ],
        );
        // Korean particles written right after the number.
        assert_eq!(scan("010-1234-5678로 연락 주세요"), set([Phone]));
        assert_eq!(scan("전화번호:010-1234-5678"), set([Phone]));
        clean(&[
            "2025550143",  // a bare 10-digit run
            "01012345678", // national without separators
            "+1",
            "+1 in / +2 out",
            "+12345",
            "+2025-04-14",
            "100 200 3000",    // area code cannot start with 1
            "202-555-01430",   // one digit too many
            "202-555-0143-99", // part of a longer number
            "x202-555-0143",   // inside a token
            "202-555-0143abc",
            "(202) 555-014",
            "(123) 555-0143",
            "01.02.2025",
            "555-0143",
        ]);
    }

    #[test]
    fn credit_card() {
        found(
            CreditCard,
            &[
                "4111 1111 1111 1111",
                "4111-1111-1111-1111",
                "4111111111111111",
                "5555 5555 5555 4444",
                "3782 822463 10005", // Amex 4-6-5
                "378282246310005",
                "6011111111111117",
                "2223003122003222",        // Mastercard 2-series
                "4222222222222",           // 13-digit Visa
                "4111 1111 1111 1111 003", // 19 digits
            ],
        );
        clean(&[
            "4111 1111 1111 1112", // Luhn fails
            "4111111111111112",
            "1234567812345678",     // Luhn fails
            "4111 1111 1111",       // 12 digits
            "41111111111111111111", // 20 digits
            "x4111111111111111",    // inside a token
            "4111111111111111x",
            "4111 1111-1111 1111",     // mixed separators
            "41 11 11 11 11 11 11 11", // not a card grouping
            "3.4111111111111111",      // decimal digits
            "1712345678907",           // millisecond timestamp (passes Luhn, issuer 1)
            "0000 0000 0000 0000",
        ]);
        assert!(
            luhn(b"1712345678907"),
            "the timestamp above must pass Luhn to test the issuer rule"
        );
    }

    #[test]
    fn us_ssn() {
        found(UsSsn, &["123-45-6789", "078-05-1120", "899-99-9999"]);
        clean(&[
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "999-12-3456",
            "123-00-6789",
            "123-45-0000",
            "123-45-67890",
            "1123-45-6789",
            "123-45-6789-1",
            "123 45 6789",
        ]);
    }

    #[test]
    fn iban() {
        found(
            Iban,
            &[
                "DE89 3704 0044 0532 0130 00",
                "DE89370400440532013000",
                "GB82 WEST 1234 5698 7654 32",
                "GB82WEST12345698765432",
                "NL91 ABNA 0417 1643 00",
                "FR14 2004 1010 0505 0001 3M02 606",
                "AT61 1904 3002 3457 3201", // starts with an `A` anchor
                "NO93 8601 1117 947",       // shortest (15)
            ],
        );
        // An upper-case word after a grouped IBAN does not hide it.
        assert_eq!(
            scan("ES91 2100 0418 4502 0005 1332 ATTN billing"),
            set([Iban])
        );
        clean(&[
            "DE88 3704 0044 0532 0130 00", // bad check digits
            "DE89 3704 0044 0532 0130 01",
            "DE89370400440532013001",
            "GB82 WEST 1234",          // too short
            "xDE89370400440532013000", // inside a token
            "DE89370400440532013000x",
        ]);
    }

    #[test]
    fn ip_address() {
        found(
            IpAddress,
            &[
                "192.168.1.1",
                "10.0.0.1:8080",
                "255.255.255.255",
                "1.2.3.4",
                "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
                "2001:db8:85a3::8a2e:370:7334",
                "2001:db8::1",
                "fe80::1ff:fe23:4567:890a",
                "[2001:db8::1]:443",
                "::ffff:192.0.2.128",
                "FE80::0202:B3FF:FE1E:8329",
            ],
        );
        assert_eq!(scan("ssh to 10.0.0.1."), set([IpAddress]));
        clean(&[
            "256.1.1.1",
            "192.168.1.256",
            "1.2.3.4.5",
            "1.2.3",
            "v1.2.3.4",
            "1.2.3.4x",
            "12:30:45",
            "10:30",
            "a[1::2]",
            "x[::2]",
            "::1",
            "std::net::Ipv6Addr",
            "Vec::new()",
            "de:ad:be:ef:00:01",
            "2001:db8::1::2",
            "note: this",
        ]);
    }

    #[test]
    fn kr_rrn() {
        found(
            KrRrn,
            &[
                "900101-1234567",
                "850315-2345678",
                "020229-4123456",
                "991231-5000000",
            ],
        );
        clean(&[
            "901301-1234567", // month 13
            "900001-1234567", // month 00
            "900132-1234567", // day 32
            "900431-1234567", // 31 April
            "900230-1234567", // 30 February
            "900101-9234567", // gender digit 9
            "900101-0234567", // gender digit 0
            "900101-123456",
            "900101-12345678",
            "9001011234567",
        ]);
    }

    #[test]
    fn api_key() {
        found(
            ApiKey,
            &[
                "sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH",
                "sk-proj-Ab3dEf6hIj9lMn2pQr5tUv8xYz1AbCdEfGh",
                "sk-ant-api03-Ab3dEf6hIj9lMn2pQr5tUv8xYz1AbCdEfGh-AbCdEfAA",
                "AKIAIOSFODNN7EXAMPLE",
                "ASIAY34FZKBOKMUTVV7A",
                "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
                "gho_16C7e42F292c6912E7710c838347Ae178B4a",
                "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
                "ghu_16C7e42F292c6912E7710c838347Ae178B4a",
                "github_pat_11ABCDEFG0123456789abc_defghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
            ],
        );
        assert_eq!(
            scan("OPENAI_API_KEY=sk-abcdefghijklmnopqrstuvwxyz0123"),
            set([ApiKey])
        );
        clean(&[
            "sk-short",
            "task-abcdefghijklmnopqrstuvwxyz0123", // `sk` inside a word
            "risk-free",
            "AKIAIOSFODNN7EXAMPL",   // 15 after the prefix
            "AKIAIOSFODNN7EXAMPLE1", // 17
            "xAKIAIOSFODNN7EXAMPLE",
            "AKIA is not a key",
            "ghp_short",
            "my_ghp_16C7e42F292c6912E7710c838347Ae178B4a",
            "github_pat_short",
            "input_tokens",
        ]);
    }

    #[test]
    fn secret() {
        found(
            Secret,
            &[
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
                "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxMjM0In0.",
                "-----BEGIN PRIVATE KEY-----",
                "-----BEGIN RSA PRIVATE KEY-----",
                "-----BEGIN EC PRIVATE KEY-----",
                "-----BEGIN OPENSSH PRIVATE KEY-----",
                "-----BEGIN ENCRYPTED PRIVATE KEY-----",
                "-----BEGIN PGP PRIVATE KEY BLOCK-----",
            ],
        );
        assert_eq!(
            scan("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqYW5lIn0.c2lnbmF0dXJl"),
            set([Secret])
        );
        assert_eq!(
            scan(
                "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n"
            ),
            set([Secret])
        );
        clean(&[
            "eyJ",
            "eyJhbGciOiJIUzI1NiJ9",
            "eyJhbGciOiJIUzI1NiJ9.notapayload.sig",
            "heyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqYW5lIn0.c2ln",
            "-----BEGIN CERTIFICATE-----",
            "-----BEGIN PUBLIC KEY-----",
            "-----BEGIN PRIVATE KEY",
            "-----",
        ]);
    }

    #[test]
    fn ordinary_text_is_clean() {
        clean(&[
            "1234",
            "42",
            "2025-04-14",
            "2025-04-14T10:30:00Z",
            "14.04.2025",
            "04/14/2025",
            "10:30:45",
            "1234 in / 567 out",
            "1,234,567 tokens",
            "order #123456789",
            "ORD-2025-000123",
            "INV-20250414-0042",
            "version 1.2.3",
            "3.14159265358979",
            "$1,299.99",
            "50%",
            "ISO 8601",
            "v2.0.1-beta",
            "the year 2024",
            "call me maybe",
            "2 012 345 678", // space as thousands separator
            "ISBN 978-3-16-148410-0",
            "ISBN 9783161484100",
            "123e4567-e89b-12d3-a456-426614174000", // UUID
            "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "+1.5%",
            "37.5665, 126.9780",
            "00:05:23",
            "2025년 4월 14일",
        ]);
        let prose = "The quick brown fox jumps over the lazy dog. In 2024, we processed 1,234,567 \
                     requests (about 98.7% of them under 250 ms) across 12 regions; the p99 latency \
                     was 1.8 s. Note: the meeting is at 10:30 on 2025-04-14 in room 4B. Usage: 1234 \
                     in / 567 out. See RFC 9110, section 15.5.4, and issue #4521.";
        assert_eq!(scan(prose), PiiSet::default());
        let json = r#"{"role":"assistant","content":"Done.","usage":{"input_tokens":1234,"output_tokens":567},"id":"msg_01XyZ","created":1712345678}"#;
        assert_eq!(scan(json), PiiSet::default());
        let code =
            "fn main() { let v: Vec<u8> = Vec::new(); let x = &a[1::2]; std::process::exit(0); }";
        assert_eq!(scan(code), PiiSet::default());
    }

    #[test]
    fn several_types_at_once() {
        let text = "ssn 123-45-6789, rrn 900101-1234567, ip 10.1.2.3, key AKIAIOSFODNN7EXAMPLE, \
                    iban DE89 3704 0044 0532 0130 00, mail a@b.co";
        assert_eq!(
            scan(text),
            set([UsSsn, KrRrn, IpAddress, ApiKey, Iban, Email])
        );
    }

    #[test]
    fn enabled_types_filter_results() {
        let text = "jane@example.com, +1-202-555-0143";
        let scanner = PiiScanner::with_types(set([Phone]));
        assert_eq!(scanner.types(), set([Phone]));
        assert_eq!(scanner.scan(text), set([Phone]));
        assert_eq!(
            PiiScanner::with_types(PiiSet::default()).scan(text),
            PiiSet::default()
        );
        assert_eq!(PiiScanner::default().types(), PiiSet::all());
    }

    #[test]
    fn scanner_is_shareable() {
        fn assert_traits<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}
        assert_traits::<PiiScanner>();
    }

    #[test]
    fn truncated_inputs() {
        for text in [
            "",
            "+",
            "(",
            "@",
            "-",
            "_",
            ":",
            "A",
            "J",
            "ey",
            "eyJ",
            "sk-",
            "gh",
            "ghp_",
            "github_",
            "github_pat_",
            "-----BEGIN",
            "-----BEGIN ",
            "AKIA",
            "DE8",
            "DE89",
            "4111 1111 1111 111",
            "123-45-678",
            "900101-",
            "1.2.3.",
            "2001:db8:",
            "jane@",
            "jane@example.",
            "(202) 555-",
            "é",
            "\u{0}",
        ] {
            assert!(scan(text).is_empty(), "{text:?}");
        }
    }

    #[test]
    fn adversarial_inputs_stay_linear() {
        // Repetitions of anchor-heavy fragments; quadratic matching would take minutes here.
        for unit in [
            "1",
            "1 ",
            "1-",
            "1.",
            "+1 ",
            "a@",
            "@a.",
            "a.",
            "eyJ-",
            "eyJa.",
            "sk-",
            "ghp_",
            ":",
            "1:",
            "a:",
            "AKIA",
            "-----BEGIN ",
            "DE89 ",
            "(2",
            "_",
            "J",
        ] {
            let text = unit.repeat((1 << 18) / unit.len());
            let _ = scan(&text);
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in any::<String>()) {
            let _ = scan(&text);
        }

        #[test]
        fn never_panics_on_pii_like_text(text in "[0-9A-Za-z .:()+@_/-]{0,400}") {
            let _ = scan(&text);
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = scan(&String::from_utf8_lossy(&bytes));
        }

        /// PII set apart from arbitrary surroundings is always found.
        #[test]
        fn finds_pii_in_any_surroundings(
            before in "\\PC{0,60}",
            after in "\\PC{0,60}",
            item in 0usize..6,
        ) {
            let (t, value) = [
                (Email, "jane.doe@example.com"),
                (Phone, "+1-202-555-0143"),
                (CreditCard, "4111 1111 1111 1111"),
                (UsSsn, "123-45-6789"),
                (ApiKey, "AKIAIOSFODNN7EXAMPLE"),
                (Secret, "-----BEGIN RSA PRIVATE KEY-----"),
            ][item];
            let text = format!("{before} | {value} | {after}");
            prop_assert!(scan(&text).contains(t), "{:?}", text);
        }
    }
}
