//! Rule evaluation on each record: compiled rules, per-key state, suppression.
//!
//! Cost model (the ingest path must stay within a few percent): per record, the per-record
//! rules are plain comparisons on the borrowed record (CEL rules mostly compiled natively, see
//! [`crate::expr`]), and each *key kind* that windowed or budget rules use costs one hash
//! lookup by borrowed `(tenant, value)`, whatever the number of rules on it: the entry holds the
//! state of every rule of that kind. Nothing is allocated unless a key is new or a rule fires.
//! The whole batch is evaluated under one lock.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use genai_audit_core::{AuditRecord, CostSource, DataClassification, Status, Usd};
use hashbrown::hash_map::EntryRef;
use hashbrown::{Equivalent, HashMap};
use rustc_hash::FxBuildHasher;

use crate::alert::Alert;
use crate::config::{AlertsConfig, Check, KeyKind, Period, RuleKind, Severity};
use crate::error::{Error, Result};
use crate::expr::{CelPath, CelRule, Tri};
use crate::fields::usd_f64;
use crate::metrics::AlertMetrics;
use crate::window::{BUCKETS, Ring};

const DAY_US: i64 = 86_400_000_000;
/// How often idle keys and old suppressions are swept (ingest time).
const SWEEP_EVERY_US: i64 = 10_000_000;

/// A compiled rule.
#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) name: Arc<str>,
    pub(crate) kind: RuleKind,
    pub(crate) severity: Severity,
    pub(crate) key: KeyKind,
    suppress_us: i64,
    check: Check,
    cel: Option<CelRule>,
}

/// Windowed and budget rules sharing one key kind: one lookup per record for all of them.
#[derive(Debug)]
struct Group {
    kind: KeyKind,
    rules: Vec<usize>,
    /// A key idle this long holds nothing any of its rules still needs.
    horizon_us: i64,
}

/// A key within a tenant, owned (map keys).
#[derive(Debug, Clone, PartialEq, Eq)]
struct OwnedKey {
    tenant: Box<str>,
    value: Box<str>,
}

impl Hash for OwnedKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        KeyRef {
            tenant: &self.tenant,
            value: &self.value,
        }
        .hash(h)
    }
}

/// A key borrowed from a record (lookups without allocating).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct KeyRef<'a> {
    tenant: &'a str,
    value: &'a str,
}

impl Equivalent<OwnedKey> for KeyRef<'_> {
    fn equivalent(&self, k: &OwnedKey) -> bool {
        *self.tenant == *k.tenant && *self.value == *k.value
    }
}

impl KeyRef<'_> {
    fn to_owned_key(self) -> OwnedKey {
        OwnedKey {
            tenant: self.tenant.into(),
            value: self.value.into(),
        }
    }
}

/// State of one rule for one key.
#[derive(Debug, Clone)]
struct Slot {
    /// When this rule last fired for this key (`i64::MIN`: not seen): a cache of the
    /// suppression map, so that a key in breach is suppressed without a second lookup.
    last_fired_us: i64,
    state: SlotState,
}

#[derive(Debug, Clone)]
enum SlotState {
    Window(Ring),
    Budget { period: i32, total: Usd },
}

#[derive(Debug)]
struct KeyState {
    last_us: i64,
    slots: Box<[Slot]>,
}

type KeyMap = HashMap<OwnedKey, KeyState, FxBuildHasher>;

#[derive(Debug, Clone, PartialEq, Eq)]
struct SuppressKey {
    rule: u32,
    key: OwnedKey,
}

impl Hash for SuppressKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.rule.hash(h);
        self.key.hash(h);
    }
}

#[derive(Debug, Clone, Copy, Hash)]
struct SuppressRef<'a> {
    rule: u32,
    key: KeyRef<'a>,
}

impl Equivalent<SuppressKey> for SuppressRef<'_> {
    fn equivalent(&self, k: &SuppressKey) -> bool {
        self.rule == k.rule && self.key.equivalent(&k.key)
    }
}

#[derive(Debug, Default)]
struct State {
    /// Parallel to `Engine::groups`.
    keys: Vec<KeyMap>,
    /// (rule, key) → when it last fired.
    fired: HashMap<SuppressKey, i64, FxBuildHasher>,
    last_sweep_us: i64,
}

/// Spend of one committed record, for rebuilding budgets at startup.
#[derive(Debug, Clone, PartialEq)]
pub struct Spend {
    /// Tenant.
    pub tenant: String,
    /// `user_id`.
    pub user: Option<String>,
    /// `service_name`.
    pub service: Option<String>,
    /// `response_model`, else `request_model`.
    pub model: Option<String>,
    /// `start_time`, µs.
    pub start_us: i64,
    /// `total_cost_usd`.
    pub cost: Usd,
}

/// The rules, compiled, and their state.
#[derive(Debug)]
pub struct Engine {
    rules: Vec<Rule>,
    per_record: Vec<usize>,
    groups: Vec<Group>,
    max_keys: usize,
    state: Mutex<State>,
    metrics: Arc<AlertMetrics>,
}

/// What fired, before suppression: the figures of the alert's value, threshold and message,
/// turned into them only once the firing passes suppression (a key in breach fires on every
/// record, and formatting each of those would cost more than the rules).
enum Firing {
    Latency {
        ms: f64,
        max_ms: f64,
    },
    LargePrompt {
        tokens: i64,
        max: i64,
    },
    Pii {
        min: DataClassification,
    },
    Unpriced,
    ContentCaptured,
    Cel,
    Volume {
        calls: u32,
        window_s: i64,
        max: u64,
    },
    ErrorRate {
        errors: u32,
        calls: u32,
        ratio: f64,
        window_s: i64,
        max_ratio: f64,
    },
    Budget {
        period: Period,
        total: Usd,
        max: Usd,
    },
}

impl Firing {
    /// The measured value that crossed the threshold.
    fn value(&self) -> Option<f64> {
        match *self {
            Firing::Latency { ms, .. } => Some(ms),
            Firing::LargePrompt { tokens, .. } => Some(tokens as f64),
            Firing::Volume { calls, .. } => Some(f64::from(calls)),
            Firing::ErrorRate { ratio, .. } => Some(ratio),
            Firing::Budget { total, .. } => Some(usd_f64(total)),
            Firing::Pii { .. } | Firing::Unpriced | Firing::ContentCaptured | Firing::Cel => None,
        }
    }

    /// The rule's threshold, in the unit of [`Firing::value`].
    fn threshold(&self) -> Option<f64> {
        match *self {
            Firing::Latency { max_ms, .. } => Some(max_ms),
            Firing::LargePrompt { max, .. } => Some(max as f64),
            Firing::Volume { max, .. } => Some(max as f64),
            Firing::ErrorRate { max_ratio, .. } => Some(max_ratio),
            Firing::Budget { max, .. } => Some(usd_f64(max)),
            Firing::Pii { .. } | Firing::Unpriced | Firing::ContentCaptured | Firing::Cel => None,
        }
    }

    fn render(&self, rule: &Rule, r: &AuditRecord) -> String {
        match *self {
            Firing::Latency { ms, max_ms } => format!("call took {ms:.0} ms (max {max_ms} ms)"),
            Firing::LargePrompt { tokens, max } => {
                format!("prompt of {tokens} input tokens (max {max})")
            }
            Firing::Pii { min } => format!(
                "PII ({}) in a {} call (alerting from {min})",
                r.pii_types.join(", "),
                r.data_classification
            ),
            Firing::Unpriced => format!(
                "no price for model {} of provider {}",
                r.response_model
                    .as_deref()
                    .or(r.request_model.as_deref())
                    .unwrap_or("(none)"),
                r.provider.as_deref().unwrap_or("(none)")
            ),
            Firing::ContentCaptured => format!(
                "prompt or response content captured for tenant {}, whose capture is disabled",
                r.tenant
            ),
            Firing::Cel => match &rule.check {
                Check::Cel { expression } => format!("matched {expression}"),
                _ => String::new(),
            },
            Firing::Volume {
                calls,
                window_s,
                max,
            } => format!("{calls} calls in the last {window_s} s (max {max})"),
            Firing::ErrorRate {
                errors,
                calls,
                ratio,
                window_s,
                max_ratio,
            } => format!(
                "{errors} errors in {calls} calls ({:.1} %) in the last {window_s} s (max {:.1} %)",
                ratio * 100.0,
                max_ratio * 100.0
            ),
            Firing::Budget { period, total, max } => format!(
                "spend this {} is {total} USD (budget {max} USD)",
                match period {
                    Period::Day => "day",
                    Period::Month => "month",
                }
            ),
        }
    }
}

fn key_value(r: &AuditRecord, kind: KeyKind) -> Option<&str> {
    match kind {
        KeyKind::Tenant => Some(&r.tenant),
        KeyKind::User => r.user_id.as_deref(),
        KeyKind::Service => r.service_name.as_deref(),
        KeyKind::Model => r.response_model.as_deref().or(r.request_model.as_deref()),
    }
}

fn period_of(start_us: i64, p: Period) -> i32 {
    let day = start_us.div_euclid(DAY_US);
    match p {
        Period::Day => day as i32,
        Period::Month => month_of_day(day),
    }
}

/// `year * 12 + month0` of a day counted from 1970-01-01 (UTC), by Howard Hinnant's
/// civil-from-days arithmetic: a budget rule asks it for every priced record, and chrono's
/// calendar conversion cost more than the rule itself.
fn month_of_day(day: i64) -> i32 {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1st
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let month0 = if mp < 10 { mp + 2 } else { mp - 10 };
    let year = yoe + era * 400 + i64::from(month0 < 2);
    i32::try_from(year * 12 + month0).unwrap_or(i32::MIN)
}

impl Engine {
    /// Compiles the rules of `cfg` (errors name the key, e.g. `alerts.rules[2].expression`).
    pub fn new(cfg: &AlertsConfig) -> Result<Self> {
        let env = crate::expr::env();
        let mut rules = Vec::with_capacity(cfg.rules.len());
        for (i, rc) in cfg.rules.iter().enumerate() {
            let at = format!("alerts.rules[{i}]");
            let check = rc.check(&at)?;
            if cfg.rules[..i].iter().any(|o| o.name == rc.name) {
                return Err(Error::Config {
                    key: format!("{at}.name"),
                    reason: format!("rule name {:?} is used twice", rc.name),
                });
            }
            let cel = match &check {
                Check::Cel { expression } => Some(CelRule::compile(&env, expression).map_err(
                    |reason| Error::Config {
                        key: format!("{at}.expression"),
                        reason: format!("rule {:?}: {reason}", rc.name),
                    },
                )?),
                _ => None,
            };
            rules.push(Rule {
                name: rc.name.as_str().into(),
                kind: rc.kind,
                severity: rc.severity,
                key: rc.key,
                suppress_us: (rc.suppress_secs as i64).saturating_mul(1_000_000),
                check,
                cel,
            });
        }
        let mut per_record = Vec::new();
        let mut groups: Vec<Group> = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let horizon = match rule.check {
                Check::RequestVolume { window_us, .. } | Check::ErrorRate { window_us, .. } => {
                    window_us
                }
                Check::Budget { period, .. } => match period {
                    Period::Day => DAY_US,
                    Period::Month => 31 * DAY_US,
                },
                _ => {
                    per_record.push(i);
                    continue;
                }
            };
            match groups.iter_mut().find(|g| g.kind == rule.key) {
                Some(g) => {
                    g.rules.push(i);
                    g.horizon_us = g.horizon_us.max(horizon);
                }
                None => groups.push(Group {
                    kind: rule.key,
                    rules: vec![i],
                    horizon_us: horizon,
                }),
            }
        }
        let metrics = Arc::new(AlertMetrics::new(
            rules.iter().map(|r| r.name.clone()).collect(),
        ));
        let state = State {
            keys: groups.iter().map(|_| KeyMap::default()).collect(),
            ..State::default()
        };
        Ok(Self {
            rules,
            per_record,
            groups,
            max_keys: cfg.max_keys,
            state: Mutex::new(state),
            metrics,
        })
    }

    /// The counters of this engine (and of delivery, which shares them).
    pub fn metrics(&self) -> &Arc<AlertMetrics> {
        &self.metrics
    }

    /// Number of rules.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// How each CEL rule is evaluated, by name (for the startup log and the benchmark).
    pub fn cel_paths(&self) -> Vec<(Arc<str>, CelPath)> {
        self.rules
            .iter()
            .filter_map(|r| r.cel.as_ref().map(|c| (r.name.clone(), c.path())))
            .collect()
    }

    /// Makes every CEL rule use the interpreter only (benchmarks of the slow path).
    #[doc(hidden)]
    pub fn force_cel_interpreter(&mut self) {
        for r in &mut self.rules {
            if let Some(c) = &mut r.cel {
                c.force_interpreter();
            }
        }
    }

    /// Adds committed spend to the budgets (startup), without raising alerts. Spend outside the
    /// period that contains `now_us` is ignored.
    pub fn absorb_spend(&self, spends: &[Spend], now_us: i64) {
        let mut st = self.lock();
        for s in spends {
            for (g, group) in self.groups.iter().enumerate() {
                let value = match group.kind {
                    KeyKind::Tenant => Some(s.tenant.as_str()),
                    KeyKind::User => s.user.as_deref(),
                    KeyKind::Service => s.service.as_deref(),
                    KeyKind::Model => s.model.as_deref(),
                };
                let Some(value) = value else { continue };
                let key = KeyRef {
                    tenant: &s.tenant,
                    value,
                };
                let Some(ks) = Self::slots(&self.rules, group, &mut st.keys[g], key, now_us, 0)
                else {
                    continue;
                };
                for (slot, &ri) in ks.slots.iter_mut().zip(&group.rules) {
                    if let (SlotState::Budget { period, total }, Check::Budget { period: p, .. }) =
                        (&mut slot.state, &self.rules[ri].check)
                    {
                        let pid = period_of(s.start_us, *p);
                        if pid != period_of(now_us, *p) {
                            continue;
                        }
                        if *period < pid {
                            *period = pid;
                            *total = Usd::ZERO;
                        }
                        *total = total.checked_add(s.cost).unwrap_or(*total);
                    }
                }
            }
        }
    }

    /// The current spend of `key` for the budget rule `rule` (tests and diagnostics).
    pub fn budget_total(&self, rule: &str, tenant: &str, key: &str) -> Option<Usd> {
        let ri = self.rules.iter().position(|r| &*r.name == rule)?;
        let g = self.groups.iter().position(|g| g.rules.contains(&ri))?;
        let pos = self.groups[g].rules.iter().position(|&x| x == ri)?;
        let st = self.lock();
        let ks = st.keys[g].get(&KeyRef { tenant, value: key })?;
        match &ks.slots[pos].state {
            SlotState::Budget { total, .. } => Some(*total),
            SlotState::Window(_) => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state of `key` in `map`, created if new and the map has room.
    fn slots<'m>(
        rules: &[Rule],
        group: &Group,
        map: &'m mut KeyMap,
        key: KeyRef<'_>,
        now_us: i64,
        max_keys: usize,
    ) -> Option<&'m mut KeyState> {
        // One lookup; only a new key allocates.
        let full = max_keys != 0 && map.len() >= max_keys;
        let vacant = match map.entry_ref(&key) {
            EntryRef::Occupied(o) => {
                let ks = o.into_mut();
                ks.last_us = now_us;
                return Some(ks);
            }
            EntryRef::Vacant(v) => v,
        };
        if full {
            return None;
        }
        let slots = group
            .rules
            .iter()
            .map(|&ri| Slot {
                last_fired_us: i64::MIN,
                state: match &rules[ri].check {
                    Check::RequestVolume { window_us, .. } | Check::ErrorRate { window_us, .. } => {
                        SlotState::Window(Ring::new(now_us, window_us / BUCKETS as i64))
                    }
                    _ => SlotState::Budget {
                        period: i32::MIN,
                        total: Usd::ZERO,
                    },
                },
            })
            .collect();
        Some(vacant.insert_with_key(
            key.to_owned_key(),
            KeyState {
                last_us: now_us,
                slots,
            },
        ))
    }

    /// Evaluates every rule on `records`; alerts that pass suppression are appended to `out`.
    pub fn evaluate(&self, records: &[AuditRecord], out: &mut Vec<Alert>) {
        if self.rules.is_empty() || records.is_empty() {
            return;
        }
        let mut st = self.lock();
        let st = &mut *st;
        for r in records {
            let now = r.ingest_time_us;
            for &ri in &self.per_record {
                if let Some(f) = self.check_record(ri, r) {
                    self.fire(&mut st.fired, ri, r, now, f, out);
                }
            }
            for (g, group) in self.groups.iter().enumerate() {
                let Some(value) = key_value(r, group.kind) else {
                    continue;
                };
                let key = KeyRef {
                    tenant: &r.tenant,
                    value,
                };
                // At the bound, a sweep (at most once a second) may make room.
                if st.keys[g].len() >= self.max_keys
                    && now - st.last_sweep_us >= 1_000_000
                    && !st.keys[g].contains_key(&key)
                {
                    self.sweep(st, now);
                }
                let State { keys, fired, .. } = &mut *st;
                let Some(ks) =
                    Self::slots(&self.rules, group, &mut keys[g], key, now, self.max_keys)
                else {
                    self.metrics.key_untracked();
                    continue;
                };
                for (slot, &ri) in ks.slots.iter_mut().zip(&group.rules) {
                    let rule = &self.rules[ri];
                    let Some(f) = Self::update(rule, &mut slot.state, r, now) else {
                        continue;
                    };
                    // A key in breach fires on every record: most firings end here.
                    if now.saturating_sub(slot.last_fired_us) < rule.suppress_us {
                        self.metrics.suppressed(ri);
                        continue;
                    }
                    slot.last_fired_us = self.fire(fired, ri, r, now, f, out);
                }
            }
            if now - st.last_sweep_us >= SWEEP_EVERY_US {
                self.sweep(st, now);
            }
        }
    }

    /// Evaluates the per-record rules on records whose content arrived after they did
    /// (`before` and `after` the merge of log-borne content, in the same order). A rule fires
    /// for a record only when it matches the merged record and did not match it before: each
    /// record is alerted by each rule at most once, as soon as it matches. Windowed and budget rules are left alone: they
    /// count calls, errors and cost, which content does not change, and they counted the
    /// record when it arrived.
    pub fn evaluate_merged(
        &self,
        before: &[AuditRecord],
        after: &[AuditRecord],
        out: &mut Vec<Alert>,
    ) {
        if self.per_record.is_empty() || after.is_empty() {
            return;
        }
        let mut st = self.lock();
        for (before, after) in before.iter().zip(after) {
            for &ri in &self.per_record {
                if self.check_record(ri, before).is_some() {
                    continue;
                }
                if let Some(f) = self.check_record(ri, after) {
                    self.fire(&mut st.fired, ri, after, after.ingest_time_us, f, out);
                }
            }
        }
    }

    /// Per-record rules: the condition on this record alone.
    fn check_record(&self, ri: usize, r: &AuditRecord) -> Option<Firing> {
        let rule = &self.rules[ri];
        let call = r.span_kind.is_provider_call();
        match &rule.check {
            Check::Latency { max_ms } => {
                (call && r.duration_ms > *max_ms).then_some(Firing::Latency {
                    ms: r.duration_ms,
                    max_ms: *max_ms,
                })
            }
            Check::LargePrompt { max_tokens } => {
                let tokens = r.input_tokens.filter(|t| call && t > max_tokens)?;
                Some(Firing::LargePrompt {
                    tokens,
                    max: *max_tokens,
                })
            }
            Check::Pii { min } => (r.pii_detected && r.data_classification >= *min)
                .then_some(Firing::Pii { min: *min }),
            Check::UnpricedModel => {
                (call && r.cost_source == Some(CostSource::Unpriced)).then_some(Firing::Unpriced)
            }
            Check::ContentCaptured { all, tenants } => (r.content_captured
                && (*all || tenants.iter().any(|t| **t == *r.tenant)))
            .then_some(Firing::ContentCaptured),
            Check::Cel { .. } => {
                let cel = rule.cel.as_ref()?;
                match cel.eval(r) {
                    Tri::True => Some(Firing::Cel),
                    Tri::False => None,
                    Tri::Error => {
                        self.metrics.rule_error(ri);
                        None
                    }
                }
            }
            Check::RequestVolume { .. } | Check::ErrorRate { .. } | Check::Budget { .. } => None,
        }
    }

    /// Windowed and budget rules: count the record in the key's state, then check.
    fn update(rule: &Rule, slot: &mut SlotState, r: &AuditRecord, now: i64) -> Option<Firing> {
        match (&rule.check, slot) {
            (Check::RequestVolume { window_us, max }, SlotState::Window(ring)) => {
                if !r.span_kind.is_provider_call() {
                    return None;
                }
                let (calls, _) = ring.add(now, window_us / BUCKETS as i64, false);
                (u64::from(calls) > *max).then(|| Firing::Volume {
                    calls,
                    window_s: window_us / 1_000_000,
                    max: *max,
                })
            }
            (
                Check::ErrorRate {
                    window_us,
                    max_ratio,
                    min_requests,
                },
                SlotState::Window(ring),
            ) => {
                if !r.span_kind.is_provider_call() {
                    return None;
                }
                let error = r.status == Status::Error;
                let (calls, errors) = ring.add(now, window_us / BUCKETS as i64, error);
                let ratio = f64::from(errors) / f64::from(calls.max(1));
                (u64::from(calls) >= *min_requests && ratio > *max_ratio).then(|| {
                    Firing::ErrorRate {
                        errors,
                        calls,
                        ratio,
                        window_s: window_us / 1_000_000,
                        max_ratio: *max_ratio,
                    }
                })
            }
            (Check::Budget { max, period: p }, SlotState::Budget { period, total }) => {
                let cost = r.total_cost_usd?;
                let pid = period_of(r.start_time_us, *p);
                if pid < *period {
                    // A late call of a past period: that period's budget is closed.
                    return None;
                }
                if pid > *period {
                    *period = pid;
                    *total = Usd::ZERO;
                }
                *total = total.checked_add(cost).unwrap_or(*total);
                (*total > *max).then_some(Firing::Budget {
                    period: *p,
                    total: *total,
                    max: *max,
                })
            }
            _ => None,
        }
    }

    /// Suppression, then the alert. Returns when the rule last fired for this key (`now` if it
    /// fires now).
    fn fire(
        &self,
        fired: &mut HashMap<SuppressKey, i64, FxBuildHasher>,
        ri: usize,
        r: &AuditRecord,
        now: i64,
        f: Firing,
        out: &mut Vec<Alert>,
    ) -> i64 {
        let rule = &self.rules[ri];
        let key = KeyRef {
            tenant: &r.tenant,
            value: key_value(r, rule.key).unwrap_or(""),
        };
        let sref = SuppressRef {
            rule: ri as u32,
            key,
        };
        if let Some(last) = fired.get_mut(&sref) {
            if now - *last < rule.suppress_us {
                self.metrics.suppressed(ri);
                return *last;
            }
            *last = now;
        } else {
            fired.insert(
                SuppressKey {
                    rule: ri as u32,
                    key: key.to_owned_key(),
                },
                now,
            );
        }
        self.metrics.fired(ri);
        out.push(Alert {
            alert_id: format!("{}-{ri}", r.record_id),
            rule: rule.name.to_string(),
            kind: rule.kind,
            severity: rule.severity,
            tenant: r.tenant.to_string(),
            key_kind: rule.key,
            key: key.value.to_owned(),
            fired_at_us: now,
            value: f.value(),
            threshold: f.threshold(),
            message: f.render(rule, r),
            record_ids: vec![r.record_id.clone()],
        });
        now
    }

    /// Drops keys idle past every window of their rules, and suppressions that expired.
    fn sweep(&self, st: &mut State, now: i64) {
        st.last_sweep_us = now;
        let mut keys = 0;
        for (g, group) in self.groups.iter().enumerate() {
            let horizon = group.horizon_us;
            st.keys[g].retain(|_, ks| now - ks.last_us <= horizon);
            keys += st.keys[g].len();
        }
        let rules = &self.rules;
        st.fired
            .retain(|k, at| now - *at < rules[k.rule as usize].suppress_us);
        self.metrics.set_keys(keys as u64);
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, NaiveDate};

    use super::*;

    #[test]
    fn month_of_day_matches_the_calendar() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
        // 1900-01-01 ..= 2100-12-31: leap years, centuries, 2000, month ends.
        for day in -25_567..=47_846 {
            let date = epoch + chrono::Duration::days(day);
            assert_eq!(
                month_of_day(day),
                date.year() * 12 + date.month0() as i32,
                "{date}"
            );
        }
    }
}
