//! Evaluation of patterns over observations (STIX 2.1 §9, conformance level 3).
//!
//! Two layers:
//! - comparison expressions are evaluated per SCO ("root object") of one observation: every
//!   operand of an `AND` inside `[ ]` must hold for the same root; object paths walk the SCO,
//!   dereferencing `*_ref` / `*_refs` through the observation's objects, and decoding `*_hex` /
//!   `*_bin` properties to octets;
//! - observation expressions are evaluated by a backtracking search for a *binding*: an
//!   assignment of observation instances (an observed-data with `number_observed: N` counts as N
//!   instances) to the `[ ]` leaves, where operands of `AND`, `OR`, `FOLLOWEDBY` and the
//!   repetitions of `REPEATS` use different instances. Work is counted in steps; past the budget
//!   the answer is [`Outcome::TooComplex`].

use crate::ast::*;
use crate::observation::Observation;
use crate::timestamp::Timestamp;
use base64::Engine;
use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::net::{Ipv4Addr, Ipv6Addr};
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// Default step budget of [`Pattern::matches`].
pub const DEFAULT_BUDGET: u64 = 1_000_000;

/// The result of matching a pattern against observations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The pattern matched; the indexes (into the slice given) of the observations bound, sorted.
    Match(Vec<usize>),
    /// The pattern does not match.
    NoMatch,
    /// The search for a binding needed more work than the budget allows.
    TooComplex,
}

impl Outcome {
    /// Whether this is a match.
    pub fn is_match(&self) -> bool {
        matches!(self, Outcome::Match(_))
    }
}

// ---------------------------------------------------------------------------------------------
// Compiled operands

/// Operand forms prepared once at parse time so that evaluation does not allocate.
#[derive(Debug, Clone)]
pub(crate) enum Compiled {
    None,
    Like(LikePattern),
    /// The regex for text, and (when every pattern character is below 256) one for octets.
    Regex(Result<regex::Regex, String>, Option<regex::bytes::Regex>),
    Net(Option<IpNet>),
}

impl Compiled {
    pub(crate) fn compile(op: Operator, operand: &Operand) -> Compiled {
        let Operand::Literal(Literal::String(s)) = operand else {
            return Compiled::None;
        };
        match op {
            Operator::Like => Compiled::Like(LikePattern::new(&nfc(s))),
            Operator::Matches => {
                let text = regex::RegexBuilder::new(&nfc(s))
                    .dot_matches_new_line(true)
                    .size_limit(1 << 22)
                    .build()
                    .map_err(|e| e.to_string());
                Compiled::Regex(text, bytes_regex(s))
            }
            Operator::IsSubset | Operator::IsSuperset => Compiled::Net(IpNet::parse(s)),
            _ => Compiled::None,
        }
    }

    pub(crate) fn regex_error(&self) -> Option<&str> {
        match self {
            Compiled::Regex(Err(e), _) => Some(e),
            _ => None,
        }
    }
}

/// A regex over octets for binary values: each pattern character below 256 stands for that
/// octet (so `\\xd4` and a literal `Ô` both match the byte 0xD4).
fn bytes_regex(s: &str) -> Option<regex::bytes::Regex> {
    if s.chars().any(|c| (c as u32) >= 256) {
        return None;
    }
    let mut pat = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            pat.push(c);
        } else {
            pat.push_str(&format!("\\x{:02X}", c as u32));
        }
    }
    regex::bytes::RegexBuilder::new(&pat)
        .unicode(false)
        .dot_matches_new_line(true)
        .size_limit(1 << 22)
        .build()
        .ok()
}

fn nfc(s: &str) -> Cow<'_, str> {
    if s.is_ascii() || is_nfc_quick(s.chars()) == IsNormalized::Yes {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.nfc().collect())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LikeTok {
    Lit(char),
    One,
    Many,
}

/// A compiled `LIKE` pattern: `%` matches any run of characters (newlines included), `_` exactly
/// one character; the whole value must match.
#[derive(Debug, Clone)]
pub(crate) struct LikePattern(Vec<LikeTok>);

impl LikePattern {
    fn new(p: &str) -> Self {
        LikePattern(
            p.chars()
                .map(|c| match c {
                    '%' => LikeTok::Many,
                    '_' => LikeTok::One,
                    c => LikeTok::Lit(c),
                })
                .collect(),
        )
    }

    fn is_match(&self, text: &str) -> bool {
        let pat = &self.0;
        let (mut p, mut t) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            let c = text[t..].chars().next().unwrap_or('\0');
            match pat.get(p) {
                Some(LikeTok::Many) => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                Some(LikeTok::One) => {
                    p += 1;
                    t += c.len_utf8();
                    continue;
                }
                Some(LikeTok::Lit(l)) if *l == c => {
                    p += 1;
                    t += c.len_utf8();
                    continue;
                }
                _ => {}
            }
            match star {
                Some((sp, st)) => {
                    let c0 = text[st..].chars().next().unwrap_or('\0');
                    let nt = st + c0.len_utf8();
                    star = Some((sp, nt));
                    p = sp + 1;
                    t = nt;
                }
                None => return false,
            }
        }
        pat[p..].iter().all(|x| *x == LikeTok::Many)
    }
}

/// An IPv4 or IPv6 network (a single address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpNet {
    pub(crate) v6: bool,
    pub(crate) addr: u128,
    pub(crate) prefix: u8,
}

impl IpNet {
    pub(crate) fn parse(s: &str) -> Option<IpNet> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let (v6, addr, max) = if let Ok(v4) = a.parse::<Ipv4Addr>() {
            (false, u128::from(u32::from(v4)), 32u8)
        } else if let Ok(v6) = a.parse::<Ipv6Addr>() {
            (true, u128::from(v6), 128u8)
        } else {
            return None;
        };
        let prefix = match p {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                let n: u8 = p.parse().ok()?;
                if n > max {
                    return None;
                }
                n
            }
            Some(_) => return None,
        };
        Some(IpNet { v6, addr, prefix })
    }

    fn mask(&self, prefix: u8) -> u128 {
        Self::mask_for(self.v6, prefix)
    }

    /// The network mask of `prefix` bits for an IPv6 (`v6`) or IPv4 address.
    #[inline]
    pub(crate) fn mask_for(v6: bool, prefix: u8) -> u128 {
        let bits = if v6 { 128 } else { 32 };
        if prefix == 0 {
            0
        } else {
            let ones = (!0u128) << (128 - u32::from(prefix));
            ones >> (128 - bits)
        }
    }

    /// Whether `self` lies inside `other`.
    pub(crate) fn is_subset_of(&self, other: &IpNet) -> bool {
        self.v6 == other.v6
            && self.prefix >= other.prefix
            && self.addr & self.mask(other.prefix) == other.addr & self.mask(other.prefix)
    }
}

// ---------------------------------------------------------------------------------------------
// Comparison expressions

/// A value reached by an object path.
enum Node<'a> {
    Json(&'a Value),
    Bytes(Vec<u8>),
    /// The value of a `*_refs` property: references resolved lazily.
    Refs(&'a [Value]),
}

fn deref<'a>(obs: &'a Observation, r: &Value) -> Option<&'a Value> {
    obs.object(r.as_str()?)
}

/// Walk `steps` from `node`, calling `f` on every value reached; stops at the first `true`.
fn walk<'a>(
    obs: &'a Observation,
    node: Node<'a>,
    steps: &[PathStep],
    f: &mut dyn FnMut(&Node<'a>) -> bool,
) -> bool {
    let Some((step, rest)) = steps.split_first() else {
        return f(&node);
    };
    match step {
        PathStep::Key(k) => {
            let Node::Json(Value::Object(map)) = node else {
                return false;
            };
            let Some(v) = map.get(k.as_str()) else {
                return false;
            };
            let next = if k.ends_with("_ref") {
                match deref(obs, v) {
                    Some(o) => Node::Json(o),
                    None => return false,
                }
            } else if k.ends_with("_refs") {
                match v {
                    Value::Array(a) => Node::Refs(a),
                    _ => return false,
                }
            } else if k.ends_with("_hex") {
                match v.as_str().and_then(|s| hex::decode(s).ok()) {
                    Some(b) => Node::Bytes(b),
                    None => return false,
                }
            } else if k.ends_with("_bin") {
                match v
                    .as_str()
                    .and_then(|s| crate::parser::BASE64.decode(s).ok())
                {
                    Some(b) => Node::Bytes(b),
                    None => return false,
                }
            } else {
                Node::Json(v)
            };
            walk(obs, next, rest, f)
        }
        PathStep::Index(i) => {
            let Ok(i) = usize::try_from(*i) else {
                return false;
            };
            match node {
                Node::Json(Value::Array(a)) => match a.get(i) {
                    Some(v) => walk(obs, Node::Json(v), rest, f),
                    None => false,
                },
                Node::Refs(a) => match a.iter().filter_map(|r| deref(obs, r)).nth(i) {
                    Some(o) => walk(obs, Node::Json(o), rest, f),
                    None => false,
                },
                _ => false,
            }
        }
        PathStep::AnyIndex => match node {
            Node::Json(Value::Array(a)) => a.iter().any(|v| walk(obs, Node::Json(v), rest, f)),
            Node::Refs(a) => a
                .iter()
                .filter_map(|r| deref(obs, r))
                .any(|o| walk(obs, Node::Json(o), rest, f)),
            _ => false,
        },
    }
}

/// Code points of `s` as octets, when all are below 256 (the spec's string↔binary rule).
fn str_as_octets(s: &str) -> Option<impl Iterator<Item = u8> + Clone + '_> {
    if s.chars().all(|c| (c as u32) < 256) {
        Some(s.chars().map(|c| c as u8))
    } else {
        None
    }
}

fn cmp_str_bytes(s: &str, b: &[u8]) -> Option<Ordering> {
    Some(str_as_octets(s)?.cmp(b.iter().copied()))
}

/// Compare a value with a literal: `None` when the types are not comparable.
fn compare(node: &Node<'_>, lit: &Literal) -> Option<Ordering> {
    match (node, lit) {
        (Node::Json(Value::Number(n)), Literal::Int(i)) => {
            if let Some(v) = n.as_i64() {
                Some(v.cmp(i))
            } else if n.as_u64().is_some() {
                Some(Ordering::Greater)
            } else {
                n.as_f64()?.partial_cmp(&(*i as f64))
            }
        }
        (Node::Json(Value::Number(n)), Literal::Float(f)) => n.as_f64()?.partial_cmp(f),
        (Node::Json(Value::String(s)), Literal::String(l)) => Some(s.as_str().cmp(l.as_str())),
        (Node::Bytes(b), Literal::String(l)) => cmp_str_bytes(l, b).map(Ordering::reverse),
        (Node::Bytes(b), Literal::Binary(l) | Literal::Hex(l)) => Some(b.as_slice().cmp(l)),
        (Node::Json(Value::String(s)), Literal::Binary(l) | Literal::Hex(l)) => cmp_str_bytes(s, l),
        (Node::Json(Value::String(s)), Literal::Timestamp(t)) => Some(Timestamp::parse(s)?.cmp(t)),
        _ => None,
    }
}

fn equals(node: &Node<'_>, lit: &Literal) -> bool {
    match (node, lit) {
        (Node::Json(Value::Bool(b)), Literal::Bool(l)) => b == l,
        (Node::Json(Value::String(s)), Literal::String(l)) => s == l,
        _ => compare(node, lit) == Some(Ordering::Equal),
    }
}

fn text_of<'n>(node: &'n Node<'_>) -> Option<Cow<'n, str>> {
    match node {
        Node::Json(Value::String(s)) => Some(nfc(s)),
        Node::Bytes(b) => std::str::from_utf8(b).ok().map(nfc),
        _ => None,
    }
}

/// The comparison on one value, `NOT` included.
fn test_value(c: &Comparison, node: &Node<'_>) -> bool {
    let positive = match (c.op, &c.operand) {
        (Operator::Eq, Operand::Literal(l)) => equals(node, l),
        (Operator::Ne, Operand::Literal(l)) => !equals(node, l),
        (Operator::Lt | Operator::Le | Operator::Gt | Operator::Ge, Operand::Literal(l)) => {
            // Incomparable types are false, with or without NOT.
            let Some(ord) = compare(node, l) else {
                return false;
            };
            match c.op {
                Operator::Lt => ord == Ordering::Less,
                Operator::Le => ord != Ordering::Greater,
                Operator::Gt => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            }
        }
        (Operator::In, Operand::Set(items)) => items.iter().any(|l| equals(node, l)),
        (Operator::Like, _) => match (&c.compiled, text_of(node)) {
            (Compiled::Like(p), Some(t)) => p.is_match(&t),
            _ => false,
        },
        (Operator::Matches, _) => match (&c.compiled, node) {
            (Compiled::Regex(_, Some(re)), Node::Bytes(b)) => re.is_match(b),
            (Compiled::Regex(Ok(re), _), Node::Json(Value::String(s))) => re.is_match(&nfc(s)),
            _ => false,
        },
        (Operator::IsSubset | Operator::IsSuperset, _) => match (&c.compiled, node) {
            (Compiled::Net(Some(lit)), Node::Json(Value::String(s))) => match IpNet::parse(s) {
                Some(v) if c.op == Operator::IsSubset => v.is_subset_of(lit),
                Some(v) => lit.is_subset_of(&v),
                None => false,
            },
            _ => false,
        },
        _ => false,
    };
    positive != c.negated
}

/// Whether `c` holds for the root object `root` of `obs`.
fn eval_comparison(c: &Comparison, obs: &Observation, root: &Value, root_type: &str) -> bool {
    if root_type != c.path.object_type {
        return false;
    }
    if c.op == Operator::Exists {
        let found = walk(obs, Node::Json(root), &c.path.steps, &mut |_| true);
        return found != c.negated;
    }
    walk(obs, Node::Json(root), &c.path.steps, &mut |n| {
        test_value(c, n)
    })
}

fn eval_expr(e: &ComparisonExpr, obs: &Observation, root: &Value, root_type: &str) -> bool {
    match e {
        ComparisonExpr::Test(c) => eval_comparison(c, obs, root, root_type),
        ComparisonExpr::And(v) => v.iter().all(|x| eval_expr(x, obs, root, root_type)),
        ComparisonExpr::Or(v) => v.iter().any(|x| eval_expr(x, obs, root, root_type)),
    }
}

impl ComparisonExpr {
    /// Whether some SCO of `obs` satisfies this comparison expression.
    pub fn matches(&self, obs: &Observation) -> bool {
        obs.objects.iter().any(|(_, root)| {
            let Some(root_type) = root.get("type").and_then(Value::as_str) else {
                return false;
            };
            eval_expr(self, obs, root, root_type)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Observation expressions

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Found,
    Exhausted,
}

struct Search<'a> {
    obs: &'a [Observation],
    /// Per leaf (in traversal order), the indexes of matching observations.
    leaves: Vec<Vec<usize>>,
    /// How many instances of each observation are bound so far.
    used_count: Vec<u64>,
    steps: u64,
    budget: u64,
    depth: usize,
}

/// Deepest recursion of the binding search (e.g. `REPEATS n` nests n levels); deeper searches are
/// reported as too complex rather than risking the stack.
const MAX_SEARCH_DEPTH: usize = 1000;

/// Index of the next leaf when walking the expression in order.
fn collect_leaves(e: &ObservationExpr, obs: &[Observation], out: &mut Vec<Vec<usize>>) {
    match e {
        ObservationExpr::Observation(c) => out.push(
            obs.iter()
                .enumerate()
                .filter(|(_, o)| c.matches(o))
                .map(|(i, _)| i)
                .collect(),
        ),
        ObservationExpr::And(v) | ObservationExpr::Or(v) | ObservationExpr::FollowedBy(v) => {
            v.iter().for_each(|x| collect_leaves(x, obs, out))
        }
        ObservationExpr::Qualified(x, _) => collect_leaves(x, obs, out),
    }
}

fn count_leaves(e: &ObservationExpr) -> usize {
    match e {
        ObservationExpr::Observation(_) => 1,
        ObservationExpr::And(v) | ObservationExpr::Or(v) | ObservationExpr::FollowedBy(v) => {
            v.iter().map(count_leaves).sum()
        }
        ObservationExpr::Qualified(x, _) => count_leaves(x),
    }
}

type Cont<'c> = dyn FnMut(&mut Search<'_>, &mut Vec<usize>) -> Flow + 'c;

impl Search<'_> {
    fn tick(&mut self) -> bool {
        self.steps += 1;
        self.steps > self.budget
    }

    fn max_first(&self, bound: &[usize]) -> Option<Timestamp> {
        bound.iter().map(|i| self.obs[*i].first_observed).max()
    }

    fn min_last(&self, bound: &[usize]) -> Option<Timestamp> {
        bound.iter().map(|i| self.obs[*i].last_observed).min()
    }

    /// Find bindings of `e` (its first leaf has index `leaf`), appending bound observations to
    /// `bound` and calling `k` for each; undoes its changes before returning.
    fn search(
        &mut self,
        e: &ObservationExpr,
        leaf: usize,
        bound: &mut Vec<usize>,
        k: &mut Cont<'_>,
    ) -> Flow {
        if self.tick() || self.depth >= MAX_SEARCH_DEPTH {
            return Flow::Exhausted;
        }
        self.depth += 1;
        let r = self.search_inner(e, leaf, bound, k);
        self.depth -= 1;
        r
    }

    fn search_inner(
        &mut self,
        e: &ObservationExpr,
        leaf: usize,
        bound: &mut Vec<usize>,
        k: &mut Cont<'_>,
    ) -> Flow {
        match e {
            ObservationExpr::Observation(_) => {
                let n = self.leaves[leaf].len();
                for j in 0..n {
                    let i = self.leaves[leaf][j];
                    if self.used_count[i] >= self.obs[i].number_observed {
                        continue;
                    }
                    if self.tick() {
                        return Flow::Exhausted;
                    }
                    self.used_count[i] += 1;
                    bound.push(i);
                    let r = k(self, bound);
                    bound.pop();
                    self.used_count[i] -= 1;
                    if r != Flow::Continue {
                        return r;
                    }
                }
                Flow::Continue
            }
            ObservationExpr::Or(v) => {
                let mut l = leaf;
                for x in v {
                    let r = self.search(x, l, bound, k);
                    if r != Flow::Continue {
                        return r;
                    }
                    l += count_leaves(x);
                }
                Flow::Continue
            }
            ObservationExpr::And(v) => self.seq(v, leaf, bound, false, None, k),
            ObservationExpr::FollowedBy(v) => self.seq(v, leaf, bound, true, None, k),
            ObservationExpr::Qualified(x, q) => {
                let start = bound.len();
                match q {
                    Qualifier::Within(secs) => {
                        let secs = *secs;
                        self.search(x, leaf, bound, &mut |s, b| {
                            let part = &b[start..];
                            let (Some(mf), Some(ml)) = (s.max_first(part), s.min_last(part)) else {
                                return k(s, b);
                            };
                            let span = mf.seconds_since(&ml).max(0.0);
                            if span < secs {
                                k(s, b)
                            } else {
                                Flow::Continue
                            }
                        })
                    }
                    Qualifier::StartStop(start_t, stop_t) => {
                        let (a, z) = (*start_t, *stop_t);
                        self.search(x, leaf, bound, &mut |s, b| {
                            let ok = b[start..].iter().all(|i| {
                                let o = &s.obs[*i];
                                // Some instant of [first, last] lies in [start, stop).
                                o.first_observed < z && o.last_observed >= a && a < z
                            });
                            if ok {
                                k(s, b)
                            } else {
                                Flow::Continue
                            }
                        })
                    }
                    Qualifier::Repeats(n) => {
                        let n = *n;
                        if n == 0 {
                            return Flow::Continue;
                        }
                        // Repetitions must use disjoint instances; a cap keeps absurd counts cheap:
                        // each repetition binds at least one instance.
                        let total: u64 = self.obs.iter().map(|o| o.number_observed).sum();
                        if n > total {
                            return Flow::Continue;
                        }
                        self.repeat(x, leaf, bound, n, None, k)
                    }
                }
            }
        }
    }

    /// Bind `v` in order, each on further instances; with `ordered`, each operand's earliest
    /// possible time must not precede the previous operands' latest first time (FOLLOWEDBY).
    fn seq(
        &mut self,
        v: &[ObservationExpr],
        leaf: usize,
        bound: &mut Vec<usize>,
        ordered: bool,
        prev_start: Option<usize>,
        k: &mut Cont<'_>,
    ) -> Flow {
        let Some((first, rest)) = v.split_first() else {
            return k(self, bound);
        };
        let start = bound.len();
        let group_start = prev_start.unwrap_or(start);
        let next_leaf = leaf + count_leaves(first);
        self.search(first, leaf, bound, &mut |s, b| {
            if ordered && prev_start.is_some() {
                let before = &b[group_start..start];
                let now = &b[start..];
                if let (Some(mf), Some(ml)) = (s.max_first(before), s.min_last(now)) {
                    if mf > ml {
                        return Flow::Continue;
                    }
                }
            }
            s.seq(rest, next_leaf, b, ordered, Some(group_start), k)
        })
    }

    /// `n` more repetitions of `x`, each binding sorted no lower than the previous (so that the
    /// same set of repetitions is not tried in every order).
    fn repeat(
        &mut self,
        x: &ObservationExpr,
        leaf: usize,
        bound: &mut Vec<usize>,
        n: u64,
        prev: Option<Vec<usize>>,
        k: &mut Cont<'_>,
    ) -> Flow {
        if n == 0 {
            return k(self, bound);
        }
        let start = bound.len();
        self.search(x, leaf, bound, &mut |s, b| {
            let mut this: Vec<usize> = b[start..].to_vec();
            this.sort_unstable();
            if let Some(p) = &prev {
                if this < *p {
                    return Flow::Continue;
                }
            }
            s.repeat(x, leaf, b, n - 1, Some(this), k)
        })
    }
}

/// A necessary condition for a binding, checked before searching: every leaf an operand needs
/// has candidates (and enough instances for `REPEATS`). Returns the number of leaves in `e`.
fn possible(
    e: &ObservationExpr,
    leaves: &[Vec<usize>],
    obs: &[Observation],
    leaf: usize,
) -> (bool, usize) {
    match e {
        ObservationExpr::Observation(_) => (!leaves[leaf].is_empty(), 1),
        ObservationExpr::And(v) | ObservationExpr::FollowedBy(v) | ObservationExpr::Or(v) => {
            let any = matches!(e, ObservationExpr::Or(_));
            let (mut ok, mut n) = (!any, 0);
            for x in v {
                let (p, k) = possible(x, leaves, obs, leaf + n);
                ok = if any { ok || p } else { ok && p };
                n += k;
            }
            (ok, n)
        }
        ObservationExpr::Qualified(x, q) => {
            let (p, n) = possible(x, leaves, obs, leaf);
            let enough = match q {
                Qualifier::Repeats(r) => {
                    let instances: u64 = leaves[leaf..leaf + n]
                        .iter()
                        .flatten()
                        .map(|i| obs[*i].number_observed)
                        .fold(0u64, u64::saturating_add);
                    *r >= 1 && instances >= *r
                }
                _ => true,
            };
            (p && enough, n)
        }
    }
}

impl Pattern {
    /// Match against a set of observations with the default step budget.
    ///
    /// ```
    /// use kopa_pattern::{parse, Observation, Outcome};
    /// let bundle = serde_json::json!({"type": "bundle", "objects": [
    ///   {"type": "observed-data", "id": "observed-data--1", "first_observed": "2020-01-01T00:00:00Z",
    ///    "last_observed": "2020-01-01T00:00:00Z", "number_observed": 1, "object_refs": ["ipv4-addr--1"]},
    ///   {"type": "ipv4-addr", "id": "ipv4-addr--1", "value": "198.51.100.7"}]});
    /// let obs = Observation::from_json(&bundle).unwrap();
    /// let p = parse("[ipv4-addr:value ISSUBSET '198.51.100.0/24']").unwrap();
    /// assert_eq!(p.matches(&obs), Outcome::Match(vec![0]));
    /// ```
    pub fn matches(&self, observations: &[Observation]) -> Outcome {
        self.matches_with_budget(observations, DEFAULT_BUDGET)
    }

    /// Match with an explicit step budget (each candidate binding step counts one).
    pub fn matches_with_budget(&self, observations: &[Observation], budget: u64) -> Outcome {
        let mut leaves = Vec::new();
        collect_leaves(&self.root, observations, &mut leaves);
        if !possible(&self.root, &leaves, observations, 0).0 {
            return Outcome::NoMatch;
        }
        let work: u64 = leaves.iter().map(|l| l.len() as u64).sum();
        let mut s = Search {
            obs: observations,
            leaves,
            used_count: vec![0; observations.len()],
            steps: work,
            budget: budget.max(work),
            depth: 0,
        };
        let mut found: Option<Vec<usize>> = None;
        let r = s.search(&self.root, 0, &mut Vec::new(), &mut |_, b| {
            found = Some(b.clone());
            Flow::Found
        });
        match (r, found) {
            (Flow::Found, Some(mut b)) => {
                b.sort_unstable();
                b.dedup();
                Outcome::Match(b)
            }
            (Flow::Exhausted, _) => Outcome::TooComplex,
            _ => Outcome::NoMatch,
        }
    }

    /// Whether one observation matches a pattern that is a single observation expression without
    /// qualifiers (see [`Pattern::single_observation`]); `None` for other patterns. This is the
    /// cheap check the bulk matcher falls back to: no search, no allocation for most operators.
    pub fn matches_one(&self, observation: &Observation) -> Option<bool> {
        self.single_observation().map(|c| c.matches(observation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns() {
        let cases = [
            ("percent any run", "a%c", "abbbc", true),
            ("percent empty", "a%c", "ac", true),
            ("underscore one", "a_c", "abc", true),
            ("underscore not zero", "a_c", "ac", false),
            ("newline in run", "a%c", "a\nc", true),
            ("whole value", "abc", "xabc", false),
            ("trailing percent", "ab%", "abzzz", true),
            ("unicode one char", "_", "é", true),
            ("backtracking", "%ab%abc", "ababcabc", true),
        ];
        for (name, p, t, want) in cases {
            assert_eq!(LikePattern::new(p).is_match(t), want, "{name}");
        }
    }

    #[test]
    fn ip_networks() {
        let n = |s: &str| IpNet::parse(s).unwrap();
        assert!(n("10.1.2.3").is_subset_of(&n("10.0.0.0/8")));
        assert!(!n("11.1.2.3").is_subset_of(&n("10.0.0.0/8")));
        assert!(n("10.1.0.0/16").is_subset_of(&n("10.0.0.0/8")));
        assert!(!n("10.0.0.0/8").is_subset_of(&n("10.1.0.0/16")));
        assert!(n("2001:db8::1").is_subset_of(&n("2001:db8::/32")));
        assert!(!n("2001:db9::1").is_subset_of(&n("2001:db8::/32")));
        assert!(n("1.2.3.4").is_subset_of(&n("0.0.0.0/0")));
        assert!(!n("::1").is_subset_of(&n("0.0.0.0/0")));
        assert!(IpNet::parse("1.2.3.4/33").is_none());
        assert!(IpNet::parse("1.2.3").is_none());
    }
}
