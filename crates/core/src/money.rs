//! Exact money: US dollars as a fixed-point integer with 12 fractional digits.
//!
//! Costs are never floats: a float sum over millions of rows drifts, and an auditor must be able to
//! reproduce every figure to the last digit. [`Usd`] matches the `Decimal128(38, 12)` columns.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Number of fractional decimal digits of [`Usd`] (and of the cost columns).
pub const USD_SCALE: i8 = 12;
/// Precision of the cost columns.
pub const USD_PRECISION: u8 = 38;

const UNIT: i128 = 1_000_000_000_000;

/// An exact amount of US dollars, stored as an integer count of 10⁻¹² USD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Usd(i128);

impl Usd {
    /// Zero dollars.
    pub const ZERO: Usd = Usd(0);

    /// Builds an amount from its raw count of 10⁻¹² USD (the Decimal128 value).
    pub const fn from_raw(raw: i128) -> Self {
        Usd(raw)
    }

    /// The raw count of 10⁻¹² USD (the Decimal128 value).
    pub const fn raw(self) -> i128 {
        self.0
    }

    /// Adds two amounts, `None` on overflow.
    pub fn checked_add(self, other: Usd) -> Option<Usd> {
        self.0.checked_add(other.0).map(Usd)
    }

    /// Cost of `tokens` at `per_million` dollars per million tokens, rounded half away from zero
    /// to 10⁻¹² USD (exact whenever the rate has at most 6 fractional digits). `None` on overflow.
    pub fn per_million(per_million: Usd, tokens: i64) -> Option<Usd> {
        let product = per_million.0.checked_mul(i128::from(tokens))?;
        let q = product / 1_000_000;
        let r = product % 1_000_000;
        let rounded = if r.abs() * 2 >= 1_000_000 {
            q + product.signum()
        } else {
            q
        };
        Some(Usd(rounded))
    }

    /// Converts a float (as found in span attributes) to the nearest 10⁻¹² USD, going through its
    /// shortest decimal representation so `0.075` becomes exactly `0.075`. `None` for non-finite
    /// or absurdly large values.
    pub fn from_f64(v: f64) -> Option<Usd> {
        if !v.is_finite() || v.abs() > 1e15 {
            return None;
        }
        format!("{v}").parse().ok()
    }
}

/// Error parsing a decimal dollar amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid USD amount {input:?}: {reason}")]
pub struct ParseUsdError {
    input: String,
    reason: &'static str,
}

impl FromStr for Usd {
    type Err = ParseUsdError;

    /// Parses `123`, `-0.5`, `2.000001`, `1e-6` (plain decimal or scientific notation).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseUsdError {
            input: s.to_owned(),
            reason,
        };
        let t = s.trim();
        let (mantissa, exp) = match t.find(['e', 'E']) {
            Some(i) => {
                let exp: i32 = t[i + 1..].parse().map_err(|_| err("bad exponent"))?;
                (&t[..i], exp)
            }
            None => (t, 0),
        };
        let (neg, digits) = match mantissa.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
        };
        let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err("no digits"));
        }
        if !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
        {
            return Err(err("not a decimal number"));
        }
        // Value = digits(int_part ‖ frac_part) × 10^(exp − len(frac_part)); rescale to 10⁻¹².
        let all: String = [int_part, frac_part].concat();
        let all = all.trim_start_matches('0');
        if all.len() > 36 {
            return Err(err("too many digits"));
        }
        let mut value: i128 = if all.is_empty() {
            0
        } else {
            all.parse().map_err(|_| err("not a decimal number"))?
        };
        let shift = exp + i32::from(USD_SCALE) - frac_part.len() as i32;
        if shift >= 0 {
            for _ in 0..shift {
                value = value.checked_mul(10).ok_or_else(|| err("too large"))?;
            }
        } else {
            // More precision than 10⁻¹²: round half away from zero.
            let drop = -shift;
            if drop > 38 {
                value = 0;
            } else {
                let div = 10i128.pow(drop as u32);
                let (q, r) = (value / div, value % div);
                value = if r * 2 >= div { q + 1 } else { q };
            }
        }
        Ok(Usd(if neg { -value } else { value }))
    }
}

impl fmt::Display for Usd {
    /// Plain decimal with all 12 fractional digits, e.g. `0.004476000000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let unit = UNIT as u128;
        write!(f, "{sign}{}.{:012}", abs / unit, abs % unit)
    }
}

impl Serialize for Usd {
    /// A decimal string in human-readable formats (JSON), the raw i128 in binary ones (the WAL).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_i128(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            return i128::deserialize(d).map(Usd);
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            F(f64),
            I(i64),
        }
        match Raw::deserialize(d)? {
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
            Raw::F(v) => Usd::from_f64(v)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid USD amount {v}"))),
            Raw::I(v) => Ok(Usd(i128::from(v) * UNIT)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_exactly() {
        let cases = [
            ("2", "2.000000000000"),
            ("0.075", "0.075000000000"),
            ("-1.5", "-1.500000000000"),
            ("1e-6", "0.000001000000"),
            ("2.5E3", "2500.000000000000"),
            (".5", "0.500000000000"),
            ("0.0000000000005", "0.000000000001"),
            ("0.0000000000004", "0.000000000000"),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<Usd>().unwrap().to_string(), want, "{input}");
        }
        for bad in ["", "abc", "1.2.3", "1e", "--1", "."] {
            assert!(bad.parse::<Usd>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn per_million_is_exact() {
        let rate: Usd = "2.00".parse().unwrap();
        assert_eq!(
            Usd::per_million(rate, 1034).unwrap().to_string(),
            "0.002068000000"
        );
        let cached: Usd = "0.0375".parse().unwrap();
        assert_eq!(
            Usd::per_million(cached, 1).unwrap().to_string(),
            "0.000000037500"
        );
    }

    #[test]
    fn serde_is_a_string_in_json_and_exact_in_binary() {
        let v: Usd = "0.006704".parse().unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"0.006704000000\"");
        assert_eq!(
            serde_json::from_str::<Usd>("0.5").unwrap().to_string(),
            "0.500000000000"
        );
        let bin = postcard::to_allocvec(&v).unwrap();
        assert_eq!(postcard::from_bytes::<Usd>(&bin).unwrap(), v);
    }

    #[test]
    fn float_goes_through_shortest_decimal() {
        assert_eq!(Usd::from_f64(0.075).unwrap().to_string(), "0.075000000000");
        assert!(Usd::from_f64(f64::NAN).is_none());
    }
}
