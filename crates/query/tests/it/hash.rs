//! `audit_hash()`: an auditor holding the key finds the call a text was sent on.

use genai_audit_query::QueryOptions;
use genai_audit_query::udf::NO_HASH_KEY;

use crate::common::{TestStore, expected, fixture_records, hash_key, record_id_of, scalar};

/// The canonical prompt of the chat_pii captures: the system prompt, then the user's message.
fn chat_pii_prompt() -> String {
    let user = expected("openai-v2", "chat_pii")["truth"]["user_prompt"]
        .as_str()
        .unwrap()
        .to_owned();
    format!("You are a concise, helpful assistant.\n{user}")
}

#[tokio::test]
async fn audit_hash_finds_the_stored_prompt_hash() {
    let store = TestStore::new();
    store.commit(fixture_records()).await;
    let engine = store.engine().await;
    let id = record_id_of(&expected("openai-v2", "chat_pii"));
    let prompt = chat_pii_prompt().replace('\'', "''");

    // The stored hash is the collector's HMAC of the canonical prompt…
    let stored = scalar(
        &engine,
        &format!("SELECT prompt_hash FROM audit_log WHERE record_id = '{id}'"),
    )
    .await;
    assert_eq!(stored, hash_key().hash(&chat_pii_prompt()));
    // …and audit_hash() computes the same, so the auditor's query finds the call.
    let found = engine
        .collect(&format!(
            "SELECT record_id FROM audit_log WHERE prompt_hash = audit_hash('{prompt}') \
             AND hash_key_id = audit_hash_key_id() ORDER BY record_id"
        ))
        .await
        .unwrap();
    let ids: Vec<String> = found
        .iter()
        .flat_map(|b| {
            let col = b.column(0).clone();
            (0..b.num_rows())
                .map(move |i| {
                    genai_audit_query::datafusion::arrow::util::display::array_value_to_string(
                        &col, i,
                    )
                    .unwrap()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(ids.contains(&id), "{ids:?} lacks {id}");
    // A different text (one character off) matches nothing.
    assert_eq!(
        scalar(
            &engine,
            &format!("SELECT count(*) FROM audit_log WHERE prompt_hash = audit_hash('{prompt} ')")
        )
        .await,
        "0"
    );
}

#[tokio::test]
async fn without_a_key_audit_hash_says_what_to_provide() {
    let store = TestStore::new();
    store.commit(fixture_records()).await;
    let engine = store.engine_with(QueryOptions::default()).await;
    // Other queries work without a key.
    assert_eq!(
        scalar(&engine, "SELECT count(*) FROM audit_log").await,
        "16"
    );
    let err = engine
        .collect("SELECT count(*) FROM audit_log WHERE prompt_hash = audit_hash('x')")
        .await
        .unwrap_err();
    assert!(err.to_string().contains(NO_HASH_KEY), "{err}");
}
