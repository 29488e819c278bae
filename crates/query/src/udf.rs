//! SQL functions for auditors: `audit_hash(text)` and `audit_hash_key_id()`.
//!
//! `audit_hash('…')` is the keyed hash (HMAC-SHA-256, lowercase hex) the collector stores in
//! `prompt_hash` / `response_hash` for a canonical text, computed with the same
//! [`HashKey::hash`]. Only a holder of the deployment's key can compute it, which is the point:
//! the store alone does not let anyone test guesses of what was sent.
//!
//! Both functions are always registered. Without a key they fail with
//! [`NO_HASH_KEY`], so the auditor learns what to provide instead of "unknown function".

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::cast::as_string_array;
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use genai_audit_core::HashKey;

/// The error of `audit_hash` when no key was given.
pub const NO_HASH_KEY: &str = "no hash key available: set GENAI_AUDIT_HASH_KEY or --hash-key-file";

/// `audit_hash(text) -> text`: HMAC-SHA-256 of `text` under the deployment's hash key.
pub fn audit_hash_udf(key: Option<Arc<HashKey>>) -> ScalarUDF {
    ScalarUDF::from(AuditHash {
        key: KeyRef(key),
        signature: Signature::string(1, Volatility::Immutable),
    })
}

/// `audit_hash_key_id() -> text`: the id of the key `audit_hash` uses (compare it with
/// `hash_key_id`: a hash made under another key never matches).
pub fn audit_hash_key_id_udf(key: Option<Arc<HashKey>>) -> ScalarUDF {
    ScalarUDF::from(AuditHashKeyId {
        key: KeyRef(key),
        signature: Signature::nullary(Volatility::Immutable),
    })
}

/// The key, compared and hashed by its public id (DataFusion needs UDFs to be `Eq + Hash`).
#[derive(Debug, Clone)]
struct KeyRef(Option<Arc<HashKey>>);

impl KeyRef {
    fn get(&self) -> DfResult<&HashKey> {
        match &self.0 {
            Some(k) => Ok(k),
            None => exec_err!("{NO_HASH_KEY}"),
        }
    }

    fn id(&self) -> Option<&str> {
        self.0.as_deref().map(HashKey::id)
    }
}

impl PartialEq for KeyRef {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for KeyRef {}

impl Hash for KeyRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct AuditHash {
    key: KeyRef,
    signature: Signature,
}

impl ScalarUDFImpl for AuditHash {
    fn name(&self) -> &str {
        "audit_hash"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let key = self.key.get()?;
        let [arg] = args.args.as_slice() else {
            return exec_err!("audit_hash takes one argument, the canonical text");
        };
        match arg {
            ColumnarValue::Scalar(v) => {
                let text = match v {
                    ScalarValue::Utf8(s) | ScalarValue::Utf8View(s) | ScalarValue::LargeUtf8(s) => {
                        s.as_deref()
                    }
                    ScalarValue::Null => None,
                    other => {
                        return exec_err!("audit_hash takes text, not {}", other.data_type());
                    }
                };
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(
                    text.map(|t| key.hash(t)),
                )))
            }
            ColumnarValue::Array(array) => {
                let utf8 = cast(array, &DataType::Utf8)?;
                let strings = as_string_array(&utf8)?;
                let out: StringArray = strings.iter().map(|s| s.map(|t| key.hash(t))).collect();
                Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct AuditHashKeyId {
    key: KeyRef,
    signature: Signature,
}

impl ScalarUDFImpl for AuditHashKeyId {
    fn name(&self) -> &str {
        "audit_hash_key_id"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let key = self.key.get()?;
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
            key.id().to_owned(),
        ))))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use datafusion::prelude::SessionContext;

    use super::*;

    async fn one(ctx: &SessionContext, sql: &str) -> DfResult<String> {
        let batches = ctx.sql(sql).await?.collect().await?;
        let col = batches[0].column(0);
        let s = as_string_array(col)?;
        Ok(s.value(0).to_owned())
    }

    #[tokio::test]
    async fn hashes_like_the_collector_and_names_the_key() {
        let key = Arc::new(HashKey::new(&[b'k'; 32]).unwrap());
        let ctx = SessionContext::new();
        ctx.register_udf(audit_hash_udf(Some(key.clone())));
        ctx.register_udf(audit_hash_key_id_udf(Some(key.clone())));
        assert_eq!(
            one(&ctx, "SELECT audit_hash('hello')").await.unwrap(),
            "b77dedb81d7deb352f617552af07a682c4267366ef53870025bc48b701c8a76d"
        );
        assert_eq!(
            one(
                &ctx,
                "SELECT audit_hash(t) FROM (VALUES ('hello'), ('x')) AS v(t) ORDER BY t"
            )
            .await
            .unwrap(),
            key.hash("hello")
        );
        assert_eq!(
            one(&ctx, "SELECT audit_hash_key_id()").await.unwrap(),
            "74efbb5668edd916"
        );
    }

    #[tokio::test]
    async fn without_a_key_says_how_to_provide_one() {
        let ctx = SessionContext::new();
        ctx.register_udf(audit_hash_udf(None));
        let err = one(&ctx, "SELECT audit_hash('hello')").await.unwrap_err();
        assert!(err.to_string().contains(NO_HASH_KEY), "{err}");
    }
}
