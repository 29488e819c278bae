//! Which attribute keys feed which column, in order of preference.
//!
//! Every convention genai-audit understands is one row of [`FIELD_KEYS`]: the first key in a list
//! wins when a span carries several (they appear mixed, even on one span). Keys listed here are
//! "mapped": they leave the `attributes` JSON. Content-carrying keys are recognised separately
//! ([`content_key`]) and never stored.

use std::sync::LazyLock;

use rustc_hash::FxHashMap;

/// A slot a span attribute can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Field {
    Operation,
    ProviderName,
    RequestModel,
    ResponseModel,
    OiModelName,
    InvocationParameters,
    ResponseId,
    FinishReasons,
    Temperature,
    MaxTokens,
    Streaming,
    TtftSeconds,
    TtftMillis,
    InputTokens,
    OutputTokens,
    TotalTokens,
    CachedInputTokens,
    CacheWriteTokens,
    ReasoningTokens,
    ReportedCost,
    ReportedCostPrompt,
    ReportedCostCompletion,
    UserId,
    SessionId,
    ClientAddress,
    UserAgent,
    ServerAddress,
    HttpStatus,
    ErrorType,
    OiSpanKind,
    TraceloopSpanKind,
    LlmRequestType,
    VercelOperationId,
}

/// Number of [`Field`] variants (size of the per-span slot array).
pub(crate) const FIELD_COUNT: usize = Field::VercelOperationId as usize + 1;

/// Ordered fallback keys per field. Earlier keys win.
pub(crate) const FIELD_KEYS: &[(Field, &[&str])] = &[
    (Field::Operation, &["gen_ai.operation.name"]),
    (
        Field::ProviderName,
        &[
            "gen_ai.provider.name",
            "gen_ai.system",
            "llm.provider",
            "llm.system",
            "llm.vendor",
            "ai.model.provider",
        ],
    ),
    (
        Field::RequestModel,
        &[
            "gen_ai.request.model",
            "llm.request.model",
            "ai.model.id",
            "embedding.model_name",
        ],
    ),
    (
        Field::ResponseModel,
        &[
            "gen_ai.response.model",
            "llm.response.model",
            "ai.response.model",
        ],
    ),
    (Field::OiModelName, &["llm.model_name"]),
    (Field::InvocationParameters, &["llm.invocation_parameters"]),
    (
        Field::ResponseId,
        &["gen_ai.response.id", "ai.response.id", "llm.response.id"],
    ),
    (
        Field::FinishReasons,
        &[
            "gen_ai.response.finish_reasons",
            "gen_ai.response.finish_reason",
            "ai.response.finishReason",
            "llm.response.finish_reason",
        ],
    ),
    (
        Field::Temperature,
        &[
            "gen_ai.request.temperature",
            "llm.request.temperature",
            "llm.temperature",
            "ai.settings.temperature",
        ],
    ),
    (
        Field::MaxTokens,
        &[
            "gen_ai.request.max_tokens",
            "llm.request.max_tokens",
            "ai.settings.maxOutputTokens",
            "ai.settings.maxTokens",
        ],
    ),
    (
        Field::Streaming,
        &[
            "gen_ai.request.stream",
            "gen_ai.is_streaming",
            "gen_ai.request.is_stream",
            "llm.is_streaming",
        ],
    ),
    (
        Field::TtftSeconds,
        &[
            "gen_ai.response.time_to_first_chunk",
            "gen_ai.server.time_to_first_token",
        ],
    ),
    (
        Field::TtftMillis,
        &["ai.response.msToFirstChunk", "ai.stream.msToFirstChunk"],
    ),
    (
        Field::InputTokens,
        &[
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.prompt_tokens",
            "llm.usage.prompt_tokens",
            "llm.token_count.prompt",
            "ai.usage.inputTokens",
            "ai.usage.promptTokens",
        ],
    ),
    (
        Field::OutputTokens,
        &[
            "gen_ai.usage.output_tokens",
            "gen_ai.usage.completion_tokens",
            "llm.usage.completion_tokens",
            "llm.token_count.completion",
            "ai.usage.outputTokens",
            "ai.usage.completionTokens",
        ],
    ),
    (
        Field::TotalTokens,
        &[
            "gen_ai.usage.total_tokens",
            "llm.usage.total_tokens",
            "llm.token_count.total",
            "ai.usage.totalTokens",
        ],
    ),
    (
        Field::CachedInputTokens,
        &[
            "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.cache_read_input_tokens",
            "llm.token_count.prompt_details.cache_read",
            "ai.usage.cachedInputTokens",
        ],
    ),
    (
        Field::CacheWriteTokens,
        &[
            "gen_ai.usage.cache_creation.input_tokens",
            "gen_ai.usage.cache_write.input_tokens",
            "gen_ai.usage.cache_creation_input_tokens",
            "llm.token_count.prompt_details.cache_write",
        ],
    ),
    (
        Field::ReasoningTokens,
        &[
            "gen_ai.usage.reasoning.output_tokens",
            "gen_ai.usage.reasoning_tokens",
            "llm.token_count.completion_details.reasoning",
            "ai.usage.reasoningTokens",
        ],
    ),
    (
        Field::ReportedCost,
        &["gen_ai.usage.cost", "llm.cost.total", "llm.usage.cost"],
    ),
    (Field::ReportedCostPrompt, &["llm.cost.prompt"]),
    (Field::ReportedCostCompletion, &["llm.cost.completion"]),
    (
        Field::UserId,
        &[
            "user.id",
            "enduser.id",
            "gen_ai.request.user",
            "gen_ai.user",
            "llm.user",
            "traceloop.association.properties.user_id",
            "ai.telemetry.metadata.userId",
        ],
    ),
    (
        Field::SessionId,
        &[
            "gen_ai.conversation.id",
            "session.id",
            "traceloop.association.properties.session_id",
            "ai.telemetry.metadata.sessionId",
        ],
    ),
    (Field::ClientAddress, &["client.address"]),
    (
        Field::UserAgent,
        &["user_agent.original", "http.user_agent"],
    ),
    (Field::ServerAddress, &["server.address"]),
    (
        Field::HttpStatus,
        &["http.response.status_code", "http.status_code"],
    ),
    (Field::ErrorType, &["error.type"]),
    (Field::OiSpanKind, &["openinference.span.kind"]),
    (Field::TraceloopSpanKind, &["traceloop.span.kind"]),
    (Field::LlmRequestType, &["llm.request.type"]),
    (Field::VercelOperationId, &["ai.operationId"]),
];

/// Key → (field, preference rank; lower wins).
pub(crate) static KEY_INDEX: LazyLock<FxHashMap<&'static str, (Field, u8)>> = LazyLock::new(|| {
    let mut m = FxHashMap::default();
    for (field, keys) in FIELD_KEYS {
        for (rank, key) in keys.iter().enumerate() {
            m.insert(*key, (*field, rank as u8));
        }
    }
    m
});

/// Fields that describe the usage or cost of a provider call: on wrapper spans they are left in
/// `attributes` (for the record) instead of filling the token and cost columns.
pub(crate) fn is_usage_field(f: Field) -> bool {
    matches!(
        f,
        Field::InputTokens
            | Field::OutputTokens
            | Field::TotalTokens
            | Field::CachedInputTokens
            | Field::CacheWriteTokens
            | Field::ReasoningTokens
            | Field::ReportedCost
            | Field::ReportedCostPrompt
            | Field::ReportedCostCompletion
    )
}

/// Which side of the conversation a content-carrying attribute belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Prompt,
    Response,
    /// Content that is neither hashed nor scanned (embedding vectors); only removed.
    Drop,
}

/// A content-carrying attribute: its side and its family (lower family wins for the hash; every
/// family is scanned for PII).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContentKey {
    pub side: Side,
    pub family: u8,
    /// For indexed keys (`gen_ai.prompt.3.content`): the message index, else 0.
    pub index: u32,
    /// Whether this sub-key carries text (indexed families also have `role`, `finish_reason`, …).
    pub is_text: bool,
}

const PLAIN_CONTENT_KEYS: &[(&str, Side, u8)] = &[
    ("gen_ai.system_instructions", Side::Prompt, 0),
    ("gen_ai.input.messages", Side::Prompt, 0),
    ("gen_ai.output.messages", Side::Response, 0),
    ("gen_ai.prompt", Side::Prompt, 3),
    ("gen_ai.completion", Side::Response, 3),
    ("ai.prompt.messages", Side::Prompt, 4),
    ("ai.prompt", Side::Prompt, 5),
    ("ai.response.text", Side::Response, 4),
    ("ai.response.object", Side::Response, 5),
    ("ai.response.toolCalls", Side::Response, 6),
    ("ai.toolCall.args", Side::Prompt, 6),
    ("ai.toolCall.result", Side::Response, 7),
    ("ai.value", Side::Prompt, 7),
    ("ai.values", Side::Prompt, 7),
    ("ai.embedding", Side::Drop, 9),
    ("ai.embeddings", Side::Drop, 9),
    ("gen_ai.tool.call.arguments", Side::Prompt, 8),
    ("gen_ai.tool.call.result", Side::Response, 8),
    ("llm.prompts", Side::Prompt, 2),
    ("llm.input_messages", Side::Prompt, 2),
    ("llm.output_messages", Side::Response, 2),
    ("llm.completions", Side::Response, 2),
    ("embedding.embeddings", Side::Prompt, 9),
    ("input.value", Side::Prompt, 8),
    ("output.value", Side::Response, 8),
    ("traceloop.entity.input", Side::Prompt, 9),
    ("traceloop.entity.output", Side::Response, 9),
];

/// Indexed families: prefix, side, family. The key continues with `N.<suffix>`.
const INDEXED_CONTENT_PREFIXES: &[(&str, Side, u8)] = &[
    ("gen_ai.prompt.", Side::Prompt, 1),
    ("gen_ai.completion.", Side::Response, 1),
    ("llm.input_messages.", Side::Prompt, 2),
    ("llm.output_messages.", Side::Response, 2),
    ("llm.prompts.", Side::Prompt, 2),
    ("llm.completions.", Side::Response, 2),
    ("llm.prompt_template.", Side::Prompt, 9),
    ("embedding.embeddings.", Side::Prompt, 9),
];

static PLAIN_CONTENT_INDEX: LazyLock<FxHashMap<&'static str, (Side, u8)>> = LazyLock::new(|| {
    PLAIN_CONTENT_KEYS
        .iter()
        .map(|(k, side, family)| (*k, (*side, *family)))
        .collect()
});

/// Whether `key` carries prompt or response content, and how to read it.
pub(crate) fn content_key(key: &str) -> Option<ContentKey> {
    if let Some(&(side, family)) = PLAIN_CONTENT_INDEX.get(key) {
        return Some(ContentKey {
            side,
            family,
            index: 0,
            is_text: true,
        });
    }
    for (prefix, side, family) in INDEXED_CONTENT_PREFIXES {
        if let Some(rest) = key.strip_prefix(prefix) {
            let (n, suffix) = rest.split_once('.').unwrap_or((rest, ""));
            let Ok(index) = n.parse::<u32>() else {
                // Not a message index (`llm.prompt_template.template`, `gen_ai.prompt.name`):
                // still removed from `attributes`, but only template text counts as content.
                return Some(ContentKey {
                    side: *side,
                    family: *family,
                    index: u32::MAX,
                    is_text: *prefix == "llm.prompt_template."
                        && matches!(rest, "template" | "variables"),
                });
            };
            // Embedding vectors are numbers, not content: removed, never hashed.
            if *prefix == "embedding.embeddings." && !suffix.ends_with("text") {
                return Some(ContentKey {
                    side: Side::Drop,
                    family: *family,
                    index,
                    is_text: false,
                });
            }
            let is_text = matches!(
                suffix,
                "" | "content" | "message.content" | "prompt" | "text" | "arguments"
            ) || suffix.ends_with(".text")
                || suffix.ends_with(".arguments")
                || suffix.ends_with(".content");
            return Some(ContentKey {
                side: *side,
                family: *family,
                index,
                is_text,
            });
        }
    }
    None
}

/// Prefixes that mark a span as GenAI even when no mapped key is present.
pub(crate) fn is_genai_key(key: &str) -> bool {
    key.starts_with("gen_ai.")
        || key.starts_with("llm.")
        || key.starts_with("ai.")
        || key.starts_with("openinference.")
        || key.starts_with("traceloop.")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/conventions.md must name every key this module maps or treats as content, so the
    /// page stays complete when a key is added here.
    #[test]
    fn docs_conventions_md_names_every_key() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/conventions.md");
        let doc = std::fs::read_to_string(&path).expect("docs/conventions.md is readable");
        let keys = FIELD_KEYS
            .iter()
            .flat_map(|(_, keys)| keys.iter().copied())
            .chain(PLAIN_CONTENT_KEYS.iter().map(|(k, _, _)| *k))
            .chain(INDEXED_CONTENT_PREFIXES.iter().map(|(k, _, _)| *k));
        let missing: Vec<&str> = keys.filter(|k| !doc.contains(&format!("`{k}"))).collect();
        assert!(
            missing.is_empty(),
            "docs/conventions.md does not mention {missing:?}"
        );
    }

    #[test]
    fn every_key_is_listed_once_and_no_content_key_is_mapped() {
        let total: usize = FIELD_KEYS.iter().map(|(_, k)| k.len()).sum();
        assert_eq!(KEY_INDEX.len(), total, "a key appears in two fields");
        for key in KEY_INDEX.keys() {
            assert!(
                content_key(key).is_none(),
                "{key} is both mapped and content"
            );
        }
        assert_eq!(FIELD_KEYS.len(), FIELD_COUNT);
        for (i, (field, _)) in FIELD_KEYS.iter().enumerate() {
            assert_eq!(*field as usize, i, "FIELD_KEYS must follow the Field order");
        }
    }

    #[test]
    fn indexed_content_keys() {
        let k = content_key("gen_ai.prompt.3.content").unwrap();
        assert_eq!((k.side, k.index, k.is_text), (Side::Prompt, 3, true));
        let k = content_key("embedding.embeddings.0.embedding.text").unwrap();
        assert_eq!((k.side, k.is_text), (Side::Prompt, true));
        let k = content_key("embedding.embeddings.0.embedding.vector").unwrap();
        assert_eq!(k.side, Side::Drop);
        assert!(!content_key("gen_ai.prompt.name").unwrap().is_text);
        assert!(!content_key("llm.prompt_template.version").unwrap().is_text);
        assert!(content_key("llm.prompt_template.template").unwrap().is_text);
        let k = content_key("gen_ai.completion.0.finish_reason").unwrap();
        assert_eq!((k.side, k.is_text), (Side::Response, false));
        let k =
            content_key("llm.input_messages.1.message.contents.0.message_content.text").unwrap();
        assert_eq!((k.side, k.index, k.is_text), (Side::Prompt, 1, true));
        assert!(content_key("gen_ai.usage.input_tokens").is_none());
    }
}
