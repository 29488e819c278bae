//! Provider names and span kinds: turning each convention's vocabulary into ours.

use std::sync::LazyLock;

use rustc_hash::FxHashMap;

use crate::record::SpanKind;

/// Spellings of each provider across conventions → the OTel semconv name.
const PROVIDERS: &[(&str, &str)] = &[
    ("openai", "openai"),
    ("anthropic", "anthropic"),
    ("gcp.gemini", "gcp.gemini"),
    ("gemini", "gcp.gemini"),
    ("google", "gcp.gemini"),
    ("google.generative-ai", "gcp.gemini"),
    ("google.generativeai", "gcp.gemini"),
    ("google-genai", "gcp.gemini"),
    ("google_genai", "gcp.gemini"),
    ("gcp.gen_ai", "gcp.gen_ai"),
    ("gcp.vertex_ai", "gcp.vertex_ai"),
    ("vertex_ai", "gcp.vertex_ai"),
    ("vertexai", "gcp.vertex_ai"),
    ("vertex", "gcp.vertex_ai"),
    ("google.vertex", "gcp.vertex_ai"),
    ("google-vertex", "gcp.vertex_ai"),
    ("aws.bedrock", "aws.bedrock"),
    ("bedrock", "aws.bedrock"),
    ("amazon-bedrock", "aws.bedrock"),
    ("aws_bedrock", "aws.bedrock"),
    ("aws", "aws.bedrock"),
    ("azure.ai.openai", "azure.ai.openai"),
    ("az.ai.openai", "azure.ai.openai"),
    ("azure-openai", "azure.ai.openai"),
    ("azure_openai", "azure.ai.openai"),
    ("azure", "azure.ai.openai"),
    // Vercel AI SDK's Azure provider ids.
    ("azure.chat", "azure.ai.openai"),
    ("azure.responses", "azure.ai.openai"),
    ("azure.completion", "azure.ai.openai"),
    ("azure.embedding", "azure.ai.openai"),
    ("azure.ai.inference", "azure.ai.inference"),
    ("az.ai.inference", "azure.ai.inference"),
    ("deepseek", "deepseek"),
    ("mistral_ai", "mistral_ai"),
    ("mistral", "mistral_ai"),
    ("mistralai", "mistral_ai"),
    ("x_ai", "x_ai"),
    ("xai", "x_ai"),
    ("x-ai", "x_ai"),
    ("cohere", "cohere"),
    ("groq", "groq"),
    ("perplexity", "perplexity"),
    ("ibm.watsonx.ai", "ibm.watsonx.ai"),
    ("watsonx", "ibm.watsonx.ai"),
    ("ollama", "ollama"),
    ("together", "together"),
    ("togetherai", "together"),
    ("fireworks", "fireworks"),
];

/// Names that only match exactly, never as the cut-back prefix of a longer name.
const BROAD: &[&str] = &["aws", "azure", "google", "gcp", "az", "ibm"];

static PROVIDER_INDEX: LazyLock<FxHashMap<&'static str, &'static str>> =
    LazyLock::new(|| PROVIDERS.iter().copied().collect());

fn lookup(name: &str) -> Option<&'static str> {
    if let Some(p) = PROVIDER_INDEX.get(name) {
        return Some(p);
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return PROVIDER_INDEX
            .get(name.to_ascii_lowercase().as_str())
            .copied();
    }
    None
}

/// Normalizes a provider name: known spellings map to the semconv name; Vercel-style
/// `provider.api` names (`openai.chat`, `anthropic.messages`, `google.vertex.chat`) are cut back
/// one segment at a time until a known name matches; unknown names are kept, lowercased.
pub(crate) fn normalize_provider(raw: &str) -> String {
    let raw = raw.trim();
    if let Some(p) = lookup(raw) {
        return p.to_owned();
    }
    let mut candidate = raw;
    while let Some(i) = candidate.rfind('.') {
        candidate = &candidate[..i];
        // Cloud umbrella names are too broad to cut back to: `aws.sagemaker` is not Bedrock.
        if BROAD.iter().any(|b| b.eq_ignore_ascii_case(candidate)) {
            break;
        }
        if let Some(p) = lookup(candidate) {
            return p.to_owned();
        }
    }
    raw.to_ascii_lowercase()
}

/// Signals that decide a span's kind, in the order they are trusted.
#[derive(Debug, Default)]
pub(crate) struct KindSignals<'a> {
    pub openinference: Option<&'a str>,
    pub operation: Option<&'a str>,
    pub vercel_operation: Option<&'a str>,
    pub llm_request_type: Option<&'a str>,
    pub traceloop_kind: Option<&'a str>,
    pub has_model_or_usage: bool,
}

/// Decides the span kind and the normalized operation name.
pub(crate) fn classify(s: &KindSignals<'_>) -> (SpanKind, Option<String>) {
    let op = s.operation.map(normalize_operation);
    if let Some(k) = s.openinference {
        let kind = match k.trim().to_ascii_uppercase().as_str() {
            "LLM" => SpanKind::LlmCall,
            "EMBEDDING" => SpanKind::Embeddings,
            "TOOL" => SpanKind::ToolCall,
            "AGENT" => SpanKind::Agent,
            "CHAIN" => SpanKind::Workflow,
            _ => SpanKind::OtherGenai,
        };
        return (kind, op.or_else(|| default_operation(kind)));
    }
    if let Some(op) = op {
        let kind = match op.as_str() {
            // Synonyms (`completion`, `embedding`, …) were folded by `normalize_operation`.
            "chat" | "text_completion" | "generate_content" | "responses" | "generate" => {
                SpanKind::LlmCall
            }
            "embeddings" => SpanKind::Embeddings,
            "execute_tool" => SpanKind::ToolCall,
            "invoke_agent" | "create_agent" => SpanKind::Agent,
            "invoke_workflow" | "workflow" => SpanKind::Workflow,
            _ => SpanKind::OtherGenai,
        };
        return (kind, Some(op));
    }
    if let Some(id) = s.vercel_operation {
        // `ai.generateText.doGenerate` is the provider call; `ai.generateText` wraps it.
        let kind = if id.ends_with(".doGenerate") || id.ends_with(".doStream") {
            SpanKind::LlmCall
        } else if id.ends_with(".doEmbed") {
            SpanKind::Embeddings
        } else if id == "ai.toolCall" {
            SpanKind::ToolCall
        } else {
            SpanKind::Workflow
        };
        return (kind, default_operation(kind));
    }
    if let Some(t) = s.llm_request_type {
        let (kind, op) = match t.trim().to_ascii_lowercase().as_str() {
            "chat" => (SpanKind::LlmCall, "chat"),
            "completion" => (SpanKind::LlmCall, "text_completion"),
            "embedding" | "embeddings" => (SpanKind::Embeddings, "embeddings"),
            _ => (SpanKind::OtherGenai, ""),
        };
        return (kind, (!op.is_empty()).then(|| op.to_owned()));
    }
    if let Some(k) = s.traceloop_kind {
        let kind = match k.trim().to_ascii_lowercase().as_str() {
            "workflow" | "task" => SpanKind::Workflow,
            "agent" => SpanKind::Agent,
            "tool" => SpanKind::ToolCall,
            _ => SpanKind::OtherGenai,
        };
        return (kind, default_operation(kind));
    }
    if s.has_model_or_usage {
        return (SpanKind::LlmCall, None);
    }
    (SpanKind::OtherGenai, None)
}

/// Lowercases `gen_ai.operation.name` and folds synonyms onto the semconv names.
fn normalize_operation(raw: &str) -> String {
    let o = raw.trim();
    let lower = if o.bytes().any(|b| b.is_ascii_uppercase()) {
        o.to_ascii_lowercase()
    } else {
        o.to_owned()
    };
    match lower.as_str() {
        "embedding" | "embed" => "embeddings".to_owned(),
        "completion" => "text_completion".to_owned(),
        _ => lower,
    }
}

fn default_operation(kind: SpanKind) -> Option<String> {
    let op = match kind {
        SpanKind::LlmCall => "chat",
        SpanKind::Embeddings => "embeddings",
        SpanKind::ToolCall => "execute_tool",
        SpanKind::Agent => "invoke_agent",
        SpanKind::Workflow | SpanKind::OtherGenai => return None,
    };
    Some(op.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/conventions.md §4 must list every provider spelling of [`PROVIDERS`].
    #[test]
    fn docs_conventions_md_lists_every_provider_spelling() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/conventions.md");
        let doc = std::fs::read_to_string(&path).expect("docs/conventions.md is readable");
        let missing: Vec<String> = PROVIDERS
            .iter()
            .flat_map(|(raw, norm)| [*raw, *norm])
            .map(|name| format!("`{name}`"))
            .filter(|name| !doc.contains(name.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/conventions.md does not list {missing:?}"
        );
    }

    #[test]
    fn providers() {
        for (raw, want) in [
            ("openai", "openai"),
            ("OpenAI", "openai"),
            ("openai.chat", "openai"),
            ("openai.responses", "openai"),
            ("anthropic.messages", "anthropic"),
            ("google.generative-ai", "gcp.gemini"),
            ("google.vertex.chat", "gcp.vertex_ai"),
            ("amazon-bedrock", "aws.bedrock"),
            ("azure.ai.openai", "azure.ai.openai"),
            ("mistralai", "mistral_ai"),
            ("xai.chat", "x_ai"),
            ("deepseek.chat", "deepseek"),
            ("SomethingNew", "somethingnew"),
            ("aws", "aws.bedrock"),
            ("aws.sagemaker", "aws.sagemaker"),
            ("azure.foo", "azure.foo"),
            ("azure.chat", "azure.ai.openai"),
        ] {
            assert_eq!(normalize_provider(raw), want, "{raw}");
        }
    }

    #[test]
    fn vercel_wrappers_are_not_calls() {
        let wrapper = KindSignals {
            vercel_operation: Some("ai.generateText"),
            has_model_or_usage: true,
            ..Default::default()
        };
        assert_eq!(classify(&wrapper).0, SpanKind::Workflow);
        let call = KindSignals {
            vercel_operation: Some("ai.streamText.doStream"),
            ..Default::default()
        };
        assert_eq!(classify(&call), (SpanKind::LlmCall, Some("chat".into())));
    }
}
