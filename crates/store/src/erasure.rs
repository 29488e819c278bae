//! Erasure of one data subject (GDPR Art. 17): pseudonymize or delete the rows of a user.
//!
//! Rows are found by `user_id`. Files whose `user_id` statistics or bloom filters exclude the
//! subject are skipped unread (the files are sorted by `user_id`, so the subject's rows sit in
//! few row groups of few files); the others are read and rewritten.
//!
//! - [`ErasureMode::Pseudonymize`] (default) keeps what an auditor of cost and usage needs
//!   (model, provider, tokens, cost, times, status, service, classification, PII *types*) and,
//!   in the subject's rows only:
//!   - `user_id` and `session_id` become `erased:<32 hex>`, an HMAC-SHA-256 under a random key
//!     drawn for this erasure and never stored: the same value gets the same pseudonym within
//!     one erasure (distinct users and sessions still count right), and nobody — operator
//!     included — can link it back to the id afterwards;
//!   - `client_address`, `user_agent`, `prompt_hash`, `response_hash` and `hash_key_id` become
//!     NULL (a keyed hash of a prompt lets whoever holds the key test what was sent);
//!   - any occurrence of the raw id inside `attributes`, `resource_attributes` or
//!     `error_message` is replaced by the user's pseudonym.
//! - [`ErasureMode::Delete`] removes the subject's rows.
//!
//! Each batch is a commit of kind `erasure` whose reason is the receipt
//! `subject=<keyed hash of the user id> mode=<mode> request=<reason text>`: the hash is the
//! deployment's content hash (`audit_hash('<user id>')` in `genai-audit query`), so whoever holds
//! the key can find the receipts of a subject ([`receipts`]), and the commit never names the
//! subject in clear. A legal hold on the user, or on the tenant of any of their rows, refuses the
//! erasure before anything is changed.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use genai_audit_core::HashKey;

use crate::error::{Error, Result};
use crate::holds::HoldSet;
use crate::maintenance::{Maintainer, MaintenanceReport, Operation, Progress, Rewritten, Triage};
use crate::manifest::{Commit, FileEntry, load_commits};
use crate::retention::column;

/// Commit kind of erasure receipts.
pub const KIND: &str = "erasure";

/// What happens to the subject's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErasureMode {
    /// Replace identifying columns by irreversible pseudonyms or NULL; keep the facts.
    #[default]
    Pseudonymize,
    /// Remove the rows.
    Delete,
}

impl ErasureMode {
    /// `pseudonymize` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErasureMode::Pseudonymize => "pseudonymize",
            ErasureMode::Delete => "delete",
        }
    }
}

/// An erasure request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureRequest {
    /// The subject's `user_id`, as stored.
    pub user_id: String,
    /// Only this tenant's rows (all tenants when `None`).
    pub tenant: Option<String>,
    /// Pseudonymize or delete.
    pub mode: ErasureMode,
    /// The request (ticket, legal basis), recorded in the receipt. Must not contain the id.
    pub request: String,
}

/// The subject as receipts name it: the keyed hash of the user id under the deployment's content
/// hash key, which `audit_hash('<user id>')` reproduces in `genai-audit query`.
pub fn subject_hash(key: &HashKey, user_id: &str) -> String {
    key.hash(user_id)
}

/// The reason of an erasure commit.
pub fn receipt_reason(subject_hash: &str, mode: ErasureMode, request: &str) -> String {
    format!(
        "subject={subject_hash} mode={} request={request}",
        mode.as_str()
    )
}

/// The erasure commits (receipts) of the subject with this [`subject_hash`], oldest first.
pub async fn receipts(loc: &crate::StoreLocation, subject_hash: &str) -> Result<Vec<Commit>> {
    let prefix = format!("subject={subject_hash} ");
    let mut out: Vec<Commit> = load_commits(loc)
        .await?
        .into_iter()
        .filter(|c| c.kind == KIND && c.reason.as_deref().is_some_and(|r| r.starts_with(&prefix)))
        .collect();
    out.sort_by(|a, b| {
        (&a.created_at, &a.collector_id, a.commit).cmp(&(&b.created_at, &b.collector_id, b.commit))
    });
    Ok(out)
}

/// One erasure, ready to run.
#[derive(Debug)]
pub struct ErasureRun {
    req: ErasureRequest,
    subject: String,
    holds: HoldSet,
    /// Keyed by a random secret that dies with this value.
    pseudonyms: HashKey,
    user_pseudonym: String,
}

impl ErasureRun {
    /// Checks the request (and the holds naming the user) and draws the pseudonym key.
    pub fn new(req: ErasureRequest, key: &HashKey, holds: HoldSet) -> Result<Self> {
        if req.user_id.is_empty() {
            return Err(Error::InvalidArgument("the user id is empty".into()));
        }
        if req.request.trim().is_empty() {
            return Err(Error::InvalidArgument(
                "an erasure needs a reason (the request it fulfils)".into(),
            ));
        }
        if req.request.contains(&req.user_id) {
            return Err(Error::InvalidArgument(
                "the reason contains the user id: the receipt must name the subject only by its hash"
                    .into(),
            ));
        }
        if let Some(h) = holds.on_user(&req.user_id, req.tenant.as_deref()) {
            return Err(h.refusal());
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|e| Error::InvalidArgument(format!("no system randomness: {e}")))?;
        let pseudonyms = HashKey::new(&secret)?;
        let subject = subject_hash(key, &req.user_id);
        let mut run = Self {
            req,
            subject,
            holds,
            pseudonyms,
            user_pseudonym: String::new(),
        };
        run.user_pseudonym = run.pseudonym("user_id", &run.req.user_id);
        Ok(run)
    }

    /// The subject's keyed hash.
    pub fn subject_hash(&self) -> &str {
        &self.subject
    }

    fn pseudonym(&self, column: &str, value: &str) -> String {
        let h = self.pseudonyms.hash(&format!("{column}\0{value}"));
        format!("erased:{}", &h[..32])
    }

    /// Replaces the raw id inside free text and JSON (keys and string values).
    fn scrub(&self, text: &str) -> String {
        let id = self.req.user_id.as_str();
        if !text.contains(id) {
            return text.to_owned();
        }
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(mut v) if v.is_object() => {
                scrub_json(&mut v, id, &self.user_pseudonym);
                serde_json::to_string(&v).unwrap_or_else(|_| text.replace(id, &self.user_pseudonym))
            }
            _ => text.replace(id, &self.user_pseudonym),
        }
    }
}

fn scrub_json(v: &mut serde_json::Value, id: &str, with: &str) {
    match v {
        serde_json::Value::String(s) if s.contains(id) => *s = s.replace(id, with),
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| scrub_json(x, id, with)),
        serde_json::Value::Object(m) => {
            let old = std::mem::take(m);
            for (k, mut x) in old {
                scrub_json(&mut x, id, with);
                let k = if k.contains(id) {
                    k.replace(id, with)
                } else {
                    k
                };
                m.insert(k, x);
            }
        }
        _ => {}
    }
}

/// What pseudonymization does to a column of the subject's rows.
#[derive(Debug, Clone, Copy)]
enum Edit {
    Pseudonym,
    Null,
    Scrub,
}

/// Columns set to NULL in the subject's rows.
const NULLED: &[&str] = &[
    "client_address",
    "user_agent",
    "prompt_hash",
    "response_hash",
    "hash_key_id",
];
/// Free text in which the raw id is replaced.
const SCRUBBED: &[&str] = &["attributes", "resource_attributes", "error_message"];

impl Operation for ErasureRun {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn reason(&self) -> String {
        receipt_reason(&self.subject, self.req.mode, &self.req.request)
    }

    fn triage(&self, f: &FileEntry) -> Triage {
        if self.req.tenant.as_ref().is_some_and(|t| *t != f.tenant) {
            Triage::Skip
        } else {
            Triage::Footer
        }
    }

    fn probe(&self) -> Option<(&'static str, &str)> {
        Some(("user_id", &self.req.user_id))
    }

    fn check_plan(&self, plan: &[(FileEntry, Triage)]) -> Result<()> {
        // A file planned may hold the subject's rows: refuse before changing anything.
        for (f, _) in plan {
            if let Some(h) = self.holds.tenant_wide(&f.tenant) {
                return Err(h.refusal());
            }
        }
        Ok(())
    }

    fn rewrite(&self, _f: &FileEntry, batch: &RecordBatch) -> Result<Rewritten> {
        let user = column::<StringArray>(batch, "user_id")?;
        let id = self.req.user_id.as_str();
        let hit: Vec<bool> = (0..batch.num_rows())
            .map(|i| user.is_valid(i) && user.value(i) == id)
            .collect();
        let n = hit.iter().filter(|h| **h).count() as u64;
        if n == 0 {
            return Ok(Rewritten {
                batch: batch.clone(),
                rows_deleted: 0,
                rows_changed: 0,
                rows_held: 0,
            });
        }
        if self.req.mode == ErasureMode::Delete {
            let keep = BooleanArray::from(hit.iter().map(|h| !h).collect::<Vec<_>>());
            let batch =
                arrow_select::filter::filter_record_batch(batch, &keep).map_err(Error::parquet)?;
            return Ok(Rewritten {
                batch,
                rows_deleted: n,
                rows_changed: 0,
                rows_held: 0,
            });
        }
        let schema = batch.schema();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
        for (field, col) in schema.fields().iter().zip(batch.columns()) {
            let name = field.name().as_str();
            let edit = match name {
                "user_id" | "session_id" => Edit::Pseudonym,
                n if NULLED.contains(&n) => Edit::Null,
                n if SCRUBBED.contains(&n) => Edit::Scrub,
                _ => {
                    columns.push(col.clone());
                    continue;
                }
            };
            let strings = col
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| Error::Parquet(format!("column {name} is not a string column")))?;
            let out: StringArray = (0..strings.len())
                .map(|i| {
                    let v = strings.is_valid(i).then(|| strings.value(i))?;
                    if !hit[i] {
                        return Some(v.to_owned());
                    }
                    match edit {
                        Edit::Pseudonym => Some(self.pseudonym(name, v)),
                        Edit::Null => None,
                        Edit::Scrub => Some(self.scrub(v)),
                    }
                })
                .collect();
            columns.push(Arc::new(out));
        }
        let batch = RecordBatch::try_new(schema, columns).map_err(Error::parquet)?;
        Ok(Rewritten {
            batch,
            rows_deleted: 0,
            rows_changed: n,
            rows_held: 0,
        })
    }
}

impl Maintainer {
    /// Erases the subject of `run` (see the module docs). When nothing of the subject is found, a
    /// receipt is still committed (no files added or removed), so the request is on record.
    pub async fn erase(
        &self,
        run: &ErasureRun,
        progress: &dyn Progress,
    ) -> Result<MaintenanceReport> {
        let mut report = self.run(run, progress).await?;
        if report.commits.is_empty() && !report.dry_run {
            report.commits.push(self.commit_receipt(run).await?);
        }
        Ok(report)
    }
}
