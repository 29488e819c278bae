//! Data classification from the PII found in a call's content.
//!
//! Default rules: secrets, card numbers and national identifiers make a call `restricted`; any
//! other PII makes it `confidential`; no PII leaves it `internal`. `public` is never inferred.

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::pii::{PiiSet, PiiType};
use crate::record::DataClassification;

/// Which PII types raise a call to which classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassificationRules {
    restricted: PiiSet,
    confidential: PiiSet,
}

impl Default for ClassificationRules {
    fn default() -> Self {
        use PiiType::*;
        let restricted = PiiSet::from_iter([CreditCard, UsSsn, KrRrn, ApiKey, Secret]);
        let confidential = PiiSet::all().difference(restricted);
        Self {
            restricted,
            confidential,
        }
    }
}

/// The `[classification]` config section: PII type names per level.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassificationConfig {
    /// PII types that make a call `restricted` (default: CREDIT_CARD, US_SSN, KR_RRN, API_KEY, SECRET).
    pub restricted: Option<Vec<String>>,
    /// PII types that make a call `confidential` (default: every other type).
    pub confidential: Option<Vec<String>>,
}

impl ClassificationRules {
    /// Builds rules from config, defaulting each unset level; unknown type names are an error.
    pub fn from_config(cfg: &ClassificationConfig) -> Result<Self> {
        let parse = |key: &str, names: &[String]| -> Result<PiiSet> {
            names
                .iter()
                .map(|n| {
                    PiiType::parse(n).ok_or_else(|| Error::Config {
                        key: format!("classification.{key}"),
                        reason: format!(
                            "unknown PII type {n:?} (known: {})",
                            PiiType::ALL.map(PiiType::as_str).join(", ")
                        ),
                    })
                })
                .collect()
        };
        let mut rules = Self::default();
        if let Some(names) = &cfg.restricted {
            rules.restricted = parse("restricted", names)?;
        }
        rules.confidential = match &cfg.confidential {
            Some(names) => parse("confidential", names)?,
            None => PiiSet::all().difference(rules.restricted),
        };
        Ok(rules)
    }

    /// Classifies a call by the PII found in it.
    pub fn classify(&self, found: PiiSet) -> DataClassification {
        if !found.intersection(self.restricted).is_empty() {
            DataClassification::Restricted
        } else if !found.intersection(self.confidential).is_empty() {
            DataClassification::Confidential
        } else {
            DataClassification::Internal
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_levels() {
        let r = ClassificationRules::default();
        assert_eq!(r.classify(PiiSet::default()), DataClassification::Internal);
        assert_eq!(
            r.classify(PiiSet::from_iter([PiiType::Email])),
            DataClassification::Confidential
        );
        assert_eq!(
            r.classify(PiiSet::from_iter([PiiType::Email, PiiType::CreditCard])),
            DataClassification::Restricted
        );
    }

    #[test]
    fn config_overrides_and_rejects_unknown_names() {
        let cfg = ClassificationConfig {
            restricted: Some(vec!["EMAIL".into()]),
            confidential: None,
        };
        let r = ClassificationRules::from_config(&cfg).unwrap();
        assert_eq!(
            r.classify(PiiSet::from_iter([PiiType::Email])),
            DataClassification::Restricted
        );
        let bad = ClassificationConfig {
            restricted: Some(vec!["SHOE_SIZE".into()]),
            confidential: None,
        };
        let err = ClassificationRules::from_config(&bad)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("classification.restricted") && err.contains("SHOE_SIZE"),
            "{err}"
        );
    }
}
