//! PII scanner throughput on realistic chat text.
//!
//! The corpus is ~1 MiB of JSON-ish chat turns built from varied English sentences (with the
//! numbers, dates, code and punctuation real conversations have), with one PII item roughly every
//! 3 KiB; a second corpus has no PII. Besides scanning the whole corpus at once, the messages are
//! also scanned one by one, as the normalizer does.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use genai_audit_core::{PiiScanner, PiiSet};

/// Varied prose, including the things that must *not* be flagged.
const SENTENCES: &[&str] = &[
    "Could you summarize the attached quarterly report in three bullet points?",
    "Sure! Here is a short summary of the main findings from the report.",
    "Revenue grew 12.5% year over year, driven mostly by the enterprise segment.",
    "The meeting was moved to 2025-04-14 at 10:30, in room 4B on the third floor.",
    "Usage for this request: 1234 in / 567 out, total cost about $0.0042.",
    "I think the issue is that the cache is invalidated too eagerly after each deploy.",
    "Let me know if you would like me to rewrite the introduction in a more formal tone.",
    "What is the capital of France, and how many people live there?",
    "Paris is the capital of France, with about 2.1 million inhabitants in the city proper.",
    "Traces drift like leaves / spans whisper where time was spent / logs remember all.",
    "Here is the corrected function: `fn add(a: i32, b: i32) -> i32 { a + b }`.",
    "In Python you can reverse a list with `xs[::-1]` or take every other item with `xs[::2]`.",
    "Version 1.2.3 fixed the crash; please upgrade from 1.1.9 as soon as possible.",
    "Order ORD-2025-000123 shipped on Monday and should arrive within 3-5 business days.",
    "The p99 latency dropped from 840 ms to 212 ms after we enabled connection pooling.",
    "Can you translate \"good morning, how are you?\" into Korean and Vietnamese?",
    "안녕하세요, 잘 지내세요? In Vietnamese: Chào buổi sáng, bạn khỏe không?",
    "Please draft a polite reply declining the invitation but suggesting a call next week.",
    "The function returns None when the input list is empty, which callers must handle.",
    "We processed 1,234,567 requests across 12 regions with an error rate of 0.03%.",
    "Note: the API rate limit is 500 requests per minute per organization.",
    "The recipe needs 250 g of flour, 2 eggs and 120 ml of milk; bake for 25 minutes.",
    "Step 1: install the dependencies. Step 2: run the migrations. Step 3: restart.",
    "According to RFC 9110, section 15.5.4, the server should respond with 403 Forbidden.",
    "Is it better to use a B-tree or an LSM-tree for a write-heavy workload?",
    "LSM-trees usually win on write throughput, while B-trees give more predictable reads.",
    "The patient-facing summary must avoid jargon and stay under 200 words.",
    "Thanks, that worked perfectly. One more question about the deployment pipeline.",
    "At 09:45:12 UTC the job failed with exit code 137, which usually means out of memory.",
    "Try increasing the memory limit to 2Gi and setting `GOMAXPROCS=2` in the pod spec.",
    "I have attached invoice INV-20250414-0042 for the March consulting work.",
    "The training run took 36 hours on 8 GPUs and reached a loss of 1.87 at step 12000.",
];

/// Occasional PII, of every kind the scanner knows.
const PII: &[&str] = &[
    "jane.doe@example.com",
    "+1-202-555-0143",
    "4111 1111 1111 1111",
    "(202) 555-0143",
    "+82 10-1234-5678",
    "010-1234-5678",
    "+84 912 345 678",
    "123-45-6789",
    "DE89 3704 0044 0532 0130 00",
    "192.168.10.24",
    "2001:db8:85a3::8a2e:370:7334",
    "900101-1234567",
    "sk-proj-Ab3dEf6hIj9lMn2pQr5tUv8xYz1AbCdEfGh",
    "AKIAIOSFODNN7EXAMPLE",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqYW5lIn0.c2lnbmF0dXJlc2lnbmF0dXJl",
];

/// A small deterministic generator (xorshift64*), so every run scans the same text.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Chat messages (one JSON-ish turn each) totalling at least `target` bytes; with `pii`, one
/// PII item is mixed in about every 3 KiB.
fn chat_messages(target: usize, pii: bool) -> Vec<String> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut messages, mut total, mut since_pii) = (Vec::new(), 0, 0);
    while total < target {
        let role = if messages.len() % 2 == 0 {
            "user"
        } else {
            "assistant"
        };
        let mut m = format!(r#"{{"role":"{role}","content":""#);
        for _ in 0..2 + rng.below(10) {
            m.push_str(rng.pick(SENTENCES));
            m.push(' ');
            since_pii += 80;
            if pii && since_pii > 3072 {
                m.push_str("My details: ");
                m.push_str(rng.pick(PII));
                m.push_str(". ");
                since_pii = 0;
            }
        }
        m.push_str(r#"","usage":{"input_tokens":"#);
        m.push_str(&(100 + rng.below(4000)).to_string());
        m.push_str(r#","output_tokens":"#);
        m.push_str(&(10 + rng.below(900)).to_string());
        m.push_str("}}\n");
        total += m.len();
        messages.push(m);
    }
    messages
}

fn bench_pii(c: &mut Criterion) {
    let scanner = PiiScanner::new();
    let mut group = c.benchmark_group("pii_scan");
    for (name, pii) in [("chat_with_pii", true), ("chat_no_pii", false)] {
        let messages = chat_messages(1 << 20, pii);
        let corpus = messages.concat();
        // Every detector fires on the PII corpus; none on the clean one.
        let want = if pii {
            PiiSet::all()
        } else {
            PiiSet::default()
        };
        assert_eq!(scanner.scan(&corpus), want, "{name}");
        group.throughput(Throughput::Bytes(corpus.len() as u64));
        group.bench_function(format!("{name}/1MiB_whole"), |b| {
            b.iter(|| scanner.scan(black_box(&corpus)))
        });
        group.bench_function(format!("{name}/per_message"), |b| {
            b.iter(|| {
                messages.iter().fold(PiiSet::default(), |acc, m| {
                    acc.union(scanner.scan(black_box(m)))
                })
            })
        });
    }
    group.finish();
}

// `main` by hand: `criterion_group!` would define an undocumented public function.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_pii(&mut c);
    c.final_summary();
}
