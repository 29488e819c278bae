//! Custom rules: CEL expressions over a record's fields.
//!
//! Expressions are parsed by the `cel` crate at startup (a syntax error or an unknown field is a
//! configuration error). The interpreter costs about a microsecond per evaluation, more than
//! normalizing the span, so the common shape of a compliance rule, comparisons of fields with
//! literals joined by `&&`, `||` and `!`, is compiled from CEL's own syntax tree into a
//! [`Native`] predicate that gives the interpreter's answer without it:
//!
//! - `field == lit`, `!=`, `<`, `<=`, `>`, `>=` (either side), with CEL's semantics: `null`
//!   equals only `null`, ints and doubles compare numerically, ordering `null` or mixed types
//!   is an error;
//! - `field in [lit, …]`, `"lit" in list_field`, a bare boolean field;
//! - `&&`, `||` and `!` with CEL's commutative error handling (`error && false` is `false`).
//!
//! Anything else (functions, arithmetic, macros) runs in the interpreter, after the natively
//! compilable conjuncts of a top-level `&&` were checked as a pre-filter: most records fail
//! those, and a conjunct that is `false` decides an `&&` whatever the rest evaluates to, errors
//! included. The interpreter reads fields through a borrowing resolver: only the fields an
//! expression names are looked up, and strings are not copied.

use std::sync::Arc;

use cel::common::ast::operators as op;
use cel::common::ast::{Expr, LiteralValue};
use cel::common::types::{CelBool, CelDouble, CelInt, CelList, CelNull, CelString};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, Env, Program, Value};
use genai_audit_core::AuditRecord;

use crate::fields::{Field, FieldType, FieldValue};

/// Outcome of a predicate, as CEL's logical operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tri {
    False,
    True,
    /// Evaluation error (e.g. `null > 3`, or a non-boolean result).
    Error,
}

impl Tri {
    fn of(b: bool) -> Tri {
        if b { Tri::True } else { Tri::False }
    }

    fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::False, _) | (_, Tri::False) => Tri::False,
            (Tri::True, Tri::True) => Tri::True,
            _ => Tri::Error,
        }
    }

    fn or(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::True, _) | (_, Tri::True) => Tri::True,
            (Tri::False, Tri::False) => Tri::False,
            _ => Tri::Error,
        }
    }

    fn not(self) -> Tri {
        match self {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Error => Tri::Error,
        }
    }
}

/// A literal of the expression.
#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Null,
    Str(String),
    Int(i64),
    Double(f64),
    Bool(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn from_op(name: &str) -> Option<Cmp> {
        Some(match name {
            op::EQUALS => Cmp::Eq,
            op::NOT_EQUALS => Cmp::Ne,
            op::LESS => Cmp::Lt,
            op::LESS_EQUALS => Cmp::Le,
            op::GREATER => Cmp::Gt,
            op::GREATER_EQUALS => Cmp::Ge,
            _ => return None,
        })
    }

    /// `a OP b` read as `b OP' a`.
    fn flip(self) -> Cmp {
        match self {
            Cmp::Lt => Cmp::Gt,
            Cmp::Le => Cmp::Ge,
            Cmp::Gt => Cmp::Lt,
            Cmp::Ge => Cmp::Le,
            same => same,
        }
    }
}

/// A predicate compiled from CEL, evaluated without the interpreter.
#[derive(Debug, Clone, PartialEq)]
enum Native {
    Const(Tri),
    Compare(Field, Cmp, Lit),
    InList(Field, Vec<Lit>),
    ListHas(Field, String),
    BoolField(Field),
    Not(Box<Native>),
    And(Box<Native>, Box<Native>),
    Or(Box<Native>, Box<Native>),
}

fn equals(v: FieldValue<'_>, lit: &Lit) -> bool {
    match (v, lit) {
        (FieldValue::Null, Lit::Null) => true,
        (FieldValue::Str(a), Lit::Str(b)) => a == b,
        (FieldValue::Int(a), Lit::Int(b)) => a == *b,
        (FieldValue::Int(a), Lit::Double(b)) => (a as f64) == *b,
        (FieldValue::Double(a), Lit::Int(b)) => a == *b as f64,
        (FieldValue::Double(a), Lit::Double(b)) => a == *b,
        (FieldValue::Bool(a), Lit::Bool(b)) => a == *b,
        _ => false,
    }
}

fn order(v: FieldValue<'_>, lit: &Lit) -> Option<std::cmp::Ordering> {
    match (v, lit) {
        (FieldValue::Str(a), Lit::Str(b)) => Some(a.cmp(b.as_str())),
        (FieldValue::Int(a), Lit::Int(b)) => Some(a.cmp(b)),
        (FieldValue::Int(a), Lit::Double(b)) => (a as f64).partial_cmp(b),
        (FieldValue::Double(a), Lit::Int(b)) => a.partial_cmp(&(*b as f64)),
        (FieldValue::Double(a), Lit::Double(b)) => a.partial_cmp(b),
        _ => None,
    }
}

impl Native {
    fn eval(&self, r: &AuditRecord) -> Tri {
        use std::cmp::Ordering::*;
        match self {
            Native::Const(t) => *t,
            Native::Compare(f, cmp, lit) => {
                let v = f.get(r);
                match cmp {
                    Cmp::Eq => Tri::of(equals(v, lit)),
                    Cmp::Ne => Tri::of(!equals(v, lit)),
                    _ => match order(v, lit) {
                        None => Tri::Error,
                        Some(o) => Tri::of(match cmp {
                            Cmp::Lt => o == Less,
                            Cmp::Le => o != Greater,
                            Cmp::Gt => o == Greater,
                            _ => o != Less,
                        }),
                    },
                }
            }
            Native::InList(f, list) => {
                let v = f.get(r);
                Tri::of(list.iter().any(|l| equals(v, l)))
            }
            Native::ListHas(f, s) => match f.get(r) {
                FieldValue::StrList(items) => Tri::of(items.iter().any(|i| i == s)),
                _ => Tri::Error,
            },
            Native::BoolField(f) => match f.get(r) {
                FieldValue::Bool(b) => Tri::of(b),
                _ => Tri::Error,
            },
            Native::Not(a) => a.eval(r).not(),
            // Both sides are pure: evaluating the cheap left side first is enough.
            Native::And(a, b) => match a.eval(r) {
                Tri::False => Tri::False,
                left => left.and(b.eval(r)),
            },
            Native::Or(a, b) => match a.eval(r) {
                Tri::True => Tri::True,
                left => left.or(b.eval(r)),
            },
        }
    }
}

fn literal(e: &Expr) -> Option<Lit> {
    let Expr::Literal(l) = e else { return None };
    Some(match l {
        LiteralValue::Null => Lit::Null,
        LiteralValue::String(s) => Lit::Str(s.inner().to_owned()),
        LiteralValue::Int(i) => Lit::Int(*i.inner()),
        LiteralValue::Double(d) => Lit::Double(*d.inner()),
        LiteralValue::Boolean(b) => Lit::Bool(*b.inner()),
        // uint and bytes literals: rare in rules; the interpreter has them.
        LiteralValue::UInt(_) | LiteralValue::Bytes(_) => return None,
    })
}

fn field(e: &Expr) -> Option<Field> {
    match e {
        Expr::Ident(name) => Field::by_name(name),
        _ => None,
    }
}

/// Compiles `e` natively if every node of it is in the supported subset.
fn compile(e: &Expr) -> Option<Native> {
    match e {
        Expr::Literal(LiteralValue::Boolean(b)) => Some(Native::Const(Tri::of(*b.inner()))),
        Expr::Ident(_) => {
            let f = field(e)?;
            (f.ty() == FieldType::Bool).then_some(Native::BoolField(f))
        }
        Expr::Call(call) if call.target.is_none() => {
            let args = &call.args;
            match (call.func_name.as_str(), args.len()) {
                (op::LOGICAL_AND, 2) => Some(Native::And(
                    Box::new(compile(&args[0].expr)?),
                    Box::new(compile(&args[1].expr)?),
                )),
                (op::LOGICAL_OR, 2) => Some(Native::Or(
                    Box::new(compile(&args[0].expr)?),
                    Box::new(compile(&args[1].expr)?),
                )),
                (op::LOGICAL_NOT, 1) => Some(Native::Not(Box::new(compile(&args[0].expr)?))),
                (op::IN, 2) => {
                    if let (Some(f), Expr::List(list)) = (field(&args[0].expr), &args[1].expr) {
                        let lits = list
                            .elements
                            .iter()
                            .map(|el| literal(&el.expr))
                            .collect::<Option<Vec<_>>>()?;
                        // Optional elements (`?x`) change list semantics: leave them to CEL.
                        return list
                            .optional_indices
                            .is_empty()
                            .then_some(Native::InList(f, lits));
                    }
                    match (literal(&args[0].expr), field(&args[1].expr)) {
                        (Some(Lit::Str(s)), Some(f)) if f.ty() == FieldType::StrList => {
                            Some(Native::ListHas(f, s))
                        }
                        _ => None,
                    }
                }
                (name, 2) => {
                    let cmp = Cmp::from_op(name)?;
                    let (f, cmp, lit) = match (field(&args[0].expr), field(&args[1].expr)) {
                        (Some(f), None) => (f, cmp, literal(&args[1].expr)?),
                        (None, Some(f)) => (f, cmp.flip(), literal(&args[0].expr)?),
                        _ => return None,
                    };
                    // Lists compare by their elements: the interpreter does that.
                    (f.ty() != FieldType::StrList).then_some(Native::Compare(f, cmp, lit))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// The top-level conjuncts of `a && b && …`.
fn conjuncts<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::Call(call)
            if call.target.is_none()
                && call.func_name == op::LOGICAL_AND
                && call.args.len() == 2 =>
        {
            conjuncts(&call.args[0].expr, out);
            conjuncts(&call.args[1].expr, out);
        }
        other => out.push(other),
    }
}

/// Fields of one record, for the interpreter: looked up by name on first use, never copied.
struct RecordResolver<'a>(&'a AuditRecord);

impl VariableResolver for RecordResolver<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let f = Field::by_name(variable)?;
        Some(match f.get(self.0) {
            FieldValue::Null => CowVal::owned(CelNull),
            FieldValue::Str(s) => CowVal::owned(CelString::from(s)),
            FieldValue::Int(i) => CowVal::owned(CelInt::from(i)),
            FieldValue::Double(d) => CowVal::owned(CelDouble::from(d)),
            FieldValue::Bool(b) => CowVal::owned(CelBool::from(b)),
            FieldValue::StrList(items) => {
                let vals: Vec<Box<dyn Val + 'b>> = items
                    .iter()
                    .map(|s| Box::new(CelString::from(s.as_str())) as Box<dyn Val + 'b>)
                    .collect();
                CowVal::owned(CelList::from(vals))
            }
        })
    }
}

/// How a CEL rule is evaluated (reported in logs at startup and by the benchmark).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CelPath {
    /// Entirely without the interpreter.
    Native,
    /// Native pre-filter on some conjuncts, then the interpreter.
    Prefiltered,
    /// The interpreter on every record.
    Interpreted,
}

/// A compiled CEL rule.
pub(crate) struct CelRule {
    program: Program,
    native: Option<Native>,
    prefilter: Vec<Native>,
    env: Arc<Env>,
}

impl std::fmt::Debug for CelRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CelRule")
            .field("path", &self.path())
            .finish_non_exhaustive()
    }
}

impl CelRule {
    /// Parses and checks `source`: every identifier must be a record field.
    pub(crate) fn compile(env: &Arc<Env>, source: &str) -> Result<CelRule, String> {
        let program = env.compile(source).map_err(|e| e.to_string())?;
        let refs = program.references();
        let mut unknown: Vec<&str> = refs
            .variables()
            .into_iter()
            .filter(|v| Field::by_name(v).is_none())
            .collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            return Err(format!(
                "unknown field(s) {} (known: {})",
                unknown.join(", "),
                crate::fields::FIELDS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let expr = &program.expression().expr;
        let native = compile(expr);
        let prefilter = if native.is_some() {
            Vec::new()
        } else {
            let mut parts = Vec::new();
            conjuncts(expr, &mut parts);
            parts.into_iter().filter_map(compile).collect()
        };
        Ok(CelRule {
            program,
            native,
            prefilter,
            env: env.clone(),
        })
    }

    /// How this rule is evaluated.
    pub(crate) fn path(&self) -> CelPath {
        match (&self.native, self.prefilter.is_empty()) {
            (Some(_), _) => CelPath::Native,
            (None, false) => CelPath::Prefiltered,
            (None, true) => CelPath::Interpreted,
        }
    }

    /// Evaluates the rule on `r`.
    pub(crate) fn eval(&self, r: &AuditRecord) -> Tri {
        if let Some(n) = &self.native {
            return n.eval(r);
        }
        if self.prefilter.iter().any(|p| p.eval(r) == Tri::False) {
            return Tri::False;
        }
        self.interpret(r)
    }

    /// The interpreter's answer (also used by tests to check the native path).
    pub(crate) fn interpret(&self, r: &AuditRecord) -> Tri {
        let resolver = RecordResolver(r);
        let mut ctx = Context::with_env(self.env.clone());
        ctx.set_variable_resolver(&resolver);
        match self.program.execute(&ctx) {
            Ok(Value::Bool(b)) => Tri::of(b),
            _ => Tri::Error,
        }
    }

    /// Evaluates with the interpreter only (benchmarks).
    pub(crate) fn force_interpreter(&mut self) {
        self.native = None;
        self.prefilter.clear();
    }
}

/// The CEL environment rules are compiled in: the standard library.
pub(crate) fn env() -> Arc<Env> {
    Arc::new(Env::stdlib())
}

#[cfg(test)]
mod tests {
    use super::*;
    use genai_audit_core::{DataClassification, Status, Usd};

    fn records() -> Vec<AuditRecord> {
        let base = crate::testutil::record("t1", Some("u1"), 1_000);
        let mut out = vec![base.clone()];
        let mut r = base.clone();
        r.provider = Some("openai".into());
        r.data_classification = DataClassification::Restricted;
        r.pii_detected = true;
        r.pii_types = vec!["CREDIT_CARD".into(), "EMAIL".into()];
        r.input_tokens = Some(120_000);
        r.duration_ms = 31_000.5;
        out.push(r.clone());
        r.provider = None;
        r.input_tokens = None;
        r.user_id = None;
        r.status = Status::Error;
        r.total_cost_usd = Some(Usd::from_raw(2_500_000_000_000));
        r.streaming = Some(true);
        out.push(r.clone());
        r.duration_ms = f64::NAN;
        r.provider = Some("anthropic".into());
        r.streaming = None;
        out.push(r);
        out
    }

    #[test]
    fn the_native_path_agrees_with_the_interpreter() {
        let env = env();
        let exprs = [
            r#"provider == "openai" && data_classification == "restricted""#,
            r#"provider != "openai" || input_tokens > 100000"#,
            r#"input_tokens >= 120000"#,
            r#"120000 <= input_tokens"#,
            r#"duration_ms > 30000"#,
            r#"duration_ms < 30000.5 || duration_ms == 31000.5"#,
            r#"input_tokens > 1.5"#,
            r#"provider == null"#,
            r#"provider != null && !(provider in ["openai", "azure.ai.openai"])"#,
            r#"user_id in ["u1", "u2"]"#,
            r#""EMAIL" in pii_types && pii_detected"#,
            r#"!pii_detected || status == "error""#,
            r#"streaming"#,
            r#"streaming && false"#,
            r#"false && streaming"#,
            r#"streaming || true"#,
            r#"provider > "b""#,
            r#"input_tokens > 100 && provider == "openai""#,
            r#"total_cost_usd > 2 && status == "error""#,
            r#"input_tokens == 120000.0"#,
            r#"true"#,
        ];
        for source in exprs {
            let rule = CelRule::compile(&env, source).expect("compiles");
            assert_eq!(rule.path(), CelPath::Native, "{source} should be native");
            for (i, r) in records().iter().enumerate() {
                assert_eq!(
                    rule.eval(r),
                    rule.interpret(r),
                    "{source} on record {i} differs from the interpreter"
                );
            }
        }
    }

    #[test]
    fn other_expressions_use_the_interpreter_behind_a_prefilter() {
        let env = env();
        let rule = CelRule::compile(
            &env,
            r#"provider == "openai" && user_id.startsWith("u") && size(pii_types) > 1"#,
        )
        .expect("compiles");
        assert_eq!(rule.path(), CelPath::Prefiltered);
        let rs = records();
        assert_eq!(rule.eval(&rs[0]), Tri::False); // prefilter: provider is null
        assert_eq!(rule.eval(&rs[1]), Tri::True);
        let rule = CelRule::compile(&env, "size(pii_types) >= 2").expect("compiles");
        assert_eq!(rule.path(), CelPath::Interpreted);
        assert_eq!(rule.eval(&rs[1]), Tri::True);
        assert_eq!(rule.eval(&rs[0]), Tri::False);
    }

    #[test]
    fn bad_expressions_are_refused_with_the_reason() {
        let env = env();
        let err = CelRule::compile(&env, "provider == ").unwrap_err();
        assert!(!err.is_empty());
        let err = CelRule::compile(&env, r#"provder == "openai""#).unwrap_err();
        assert!(err.contains("unknown field(s) provder"), "{err}");
    }
}
