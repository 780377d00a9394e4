//! The syntax tree of a STIX 2.1 pattern.
//!
//! A [`Pattern`] is an [`ObservationExpr`]: observation expressions `[ … ]` joined by `AND`, `OR`
//! and `FOLLOWEDBY` (each kept as an n-ary, left-to-right list) and qualified by `WITHIN`,
//! `START … STOP` and `REPEATS`. Inside the brackets a [`ComparisonExpr`] joins [`Comparison`]s
//! with `AND`/`OR`. Parentheses only group; they leave no node of their own.

use crate::eval::Compiled;
use crate::timestamp::Timestamp;
use std::fmt;

/// A parsed (and, through [`crate::validate`], validated) STIX pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub(crate) root: ObservationExpr,
    pub(crate) source: String,
}

impl Pattern {
    /// The top observation expression.
    pub fn root(&self) -> &ObservationExpr {
        &self.root
    }

    /// The pattern text it was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The comparison expression when the pattern is a single observation expression without
    /// qualifiers (`[ … ]`, possibly in parentheses): the patterns [`Pattern::matches_one`] handles.
    pub fn single_observation(&self) -> Option<&ComparisonExpr> {
        match &self.root {
            ObservationExpr::Observation(c) => Some(c),
            _ => None,
        }
    }

    /// Every comparison in the pattern, in source order.
    pub fn comparisons(&self) -> Vec<&Comparison> {
        let mut out = Vec::new();
        self.root.collect_comparisons(&mut out);
        out
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// An observation expression.
#[derive(Debug, Clone)]
pub enum ObservationExpr {
    /// `[ comparison-expression ]`: matched by one SCO of one observation.
    Observation(ComparisonExpr),
    /// `a AND b AND …`: every operand, each bound to different observations.
    And(Vec<ObservationExpr>),
    /// `a OR b OR …`: any operand.
    Or(Vec<ObservationExpr>),
    /// `a FOLLOWEDBY b FOLLOWEDBY …`: each operand bound to different observations, in time order.
    FollowedBy(Vec<ObservationExpr>),
    /// An expression with one qualifier (several qualifiers nest, innermost first).
    Qualified(Box<ObservationExpr>, Qualifier),
}

impl ObservationExpr {
    fn collect_comparisons<'a>(&'a self, out: &mut Vec<&'a Comparison>) {
        match self {
            ObservationExpr::Observation(c) => c.collect_comparisons(out),
            ObservationExpr::And(v) | ObservationExpr::Or(v) | ObservationExpr::FollowedBy(v) => {
                v.iter().for_each(|e| e.collect_comparisons(out))
            }
            ObservationExpr::Qualified(e, _) => e.collect_comparisons(out),
        }
    }
}

/// A qualifier of an observation expression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Qualifier {
    /// `WITHIN n SECONDS`: all bound observations fit in a window shorter than `n` seconds.
    Within(f64),
    /// `START t'…' STOP t'…'`: bound observations lie in `[start, stop)`.
    StartStop(Timestamp, Timestamp),
    /// `REPEATS n TIMES`: the expression matches `n` times over disjoint observations.
    Repeats(u64),
}

/// A comparison expression (inside `[ ]`).
#[derive(Debug, Clone)]
pub enum ComparisonExpr {
    /// All operands hold for the same SCO.
    And(Vec<ComparisonExpr>),
    /// Any operand holds.
    Or(Vec<ComparisonExpr>),
    /// One comparison.
    Test(Comparison),
}

impl ComparisonExpr {
    fn collect_comparisons<'a>(&'a self, out: &mut Vec<&'a Comparison>) {
        match self {
            ComparisonExpr::And(v) | ComparisonExpr::Or(v) => {
                v.iter().for_each(|e| e.collect_comparisons(out))
            }
            ComparisonExpr::Test(c) => out.push(c),
        }
    }
}

/// Comparison operators. Each but [`Operator::Exists`] takes an operand; each may be negated
/// with a `NOT` prefix ([`Comparison::negated`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `=` or `==`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `IN ( … )`
    In,
    /// `LIKE 'pattern'` (`%` any run, `_` one character)
    Like,
    /// `MATCHES 'regex'`
    Matches,
    /// `ISSUBSET 'cidr'`: the property's address or network lies inside the operand.
    IsSubset,
    /// `ISSUPERSET 'cidr'`: the property's network contains the operand.
    IsSuperset,
    /// `EXISTS path`
    Exists,
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `EXISTS` has none.
    None,
    /// A single literal.
    Literal(Literal),
    /// The set of `IN ( … )`.
    Set(Vec<Literal>),
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// An integer (`5`, `+5`, `-5`).
    Int(i64),
    /// A float (`1.5`, `.5`, `-0.5`), also an integer too large for `i64`.
    Float(f64),
    /// A string, escapes resolved.
    String(String),
    /// `true` / `false`
    Bool(bool),
    /// `b'base64'`, decoded.
    Binary(Vec<u8>),
    /// `h'hex'`, decoded.
    Hex(Vec<u8>),
    /// `t'…'`
    Timestamp(Timestamp),
}

/// One step of an object path after the first property.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathStep {
    /// `.name` or `.'quoted name'` (also the first property after `type:`).
    Key(String),
    /// `[n]` (negative indexes parse but never select anything).
    Index(i64),
    /// `[*]`
    AnyIndex,
}

/// `type:prop.sub[0].…`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectPath {
    /// The SCO type before the colon.
    pub object_type: String,
    /// The property steps; the first is always a [`PathStep::Key`].
    pub steps: Vec<PathStep>,
}

/// One comparison: `path [NOT] op operand` or `[NOT] EXISTS path`.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The object path on the left.
    pub path: ObjectPath,
    /// Whether `NOT` prefixes the operator.
    pub negated: bool,
    /// The operator.
    pub op: Operator,
    /// The operand.
    pub operand: Operand,
    /// 1-based column of the comparison in the pattern.
    pub column: usize,
    pub(crate) compiled: Compiled,
}

impl Comparison {
    /// For `MATCHES`: why the regular expression cannot be evaluated (a PCRE feature the `regex`
    /// crate lacks, such as look-around or back-references). Such a comparison is always false.
    pub fn regex_error(&self) -> Option<&str> {
        self.compiled.regex_error()
    }
}
