//! The bulk matcher: many STIX indicators compiled into indexes, observations streamed through them.
//!
//! Each comparison on a plain property path (`TYPE:prop.sub`, no references, list steps or binary
//! properties) is indexed under its (type, path) "slot": `=`/`IN` with strings in a hash table, `ISSUBSET`
//! / `ISSUPERSET` in a prefix table, `LIKE` and `MATCHES` behind one Aho-Corasick automaton of literal
//! atoms per slot (see [`index`]). An indicator whose pattern is one `[ … ]` of such comparisons joined by
//! `OR` is *exact*: an index hit is the answer. Any other single-observation pattern is indexed by one
//! conjunct (or every disjunct) as a candidate filter, falling back to "an SCO of this type is present",
//! and each candidate observation is checked by the general evaluator ([`crate::Pattern::matches_one`]).
//! Patterns of several observation expressions or with qualifiers collect the observations that pass a
//! filter of any of their `[ … ]`; [`Session::finish`] runs [`crate::Pattern::matches`] over them once.
//!
//! Indicators honour `valid_from`/`valid_until` (an observation counts when its time span overlaps the
//! validity window) and `revoked`; of several versions of an indicator, the latest `modified` wins.
//! A compiled [`Matcher`] is immutable; [`SharedMatcher`] swaps in a new one atomically.

pub(crate) mod index;
pub mod indicators;

pub use indicators::{
    read_indicators, read_indicators_from, IndicatorError, IndicatorInput, IndicatorRead,
};

use crate::ast::{
    ComparisonExpr, Literal, ObjectPath, ObservationExpr, Operand, Operator, PathStep,
};
use crate::input::stix::StixObservation;
use crate::input::{canonical_path, is_ipv6_text, Kind, LineFields, Mapping, ScoType};
use crate::{Comparison, Observation, Outcome, Pattern};
use arc_swap::ArcSwap;
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use index::{Arena, EqIndex, Net, NetIndex, Postings, TextIndex};
use std::hash::BuildHasher;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// An index hit is a match.
    Exact,
    /// One `[ … ]`: a hit is a candidate for the evaluator.
    Single,
    /// Several observation expressions or qualifiers: candidates collected, evaluated at the end.
    Multi,
    /// Superseded by a later version, or revoked.
    Dead,
}

#[derive(Debug)]
struct Meta {
    valid_from: i64,
    valid_until: i64,
    mode: Mode,
}

/// `indicator--<lowercase uuid>` as 128 bits, when the id has exactly that form.
fn uuid_of(id: &str) -> Option<u128> {
    let u = id.strip_prefix("indicator--")?;
    let b = u.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut v: u128 = 0;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u128::from(d);
    }
    Some(v)
}

/// The hash of an indicator id: of its 128 bits when it is `indicator--<uuid>`, else of its text.
fn id_hash(hasher: &DefaultHashBuilder, uuid: Option<u128>, text: &[u8]) -> u64 {
    match uuid {
        Some(u) => hasher.hash_one(u),
        None => hasher.hash_one(text),
    }
}

fn format_uuid_id(v: u128) -> String {
    let h = format!("{v:032x}");
    format!(
        "indicator--{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[derive(Debug, Default)]
struct Slot {
    eq: EqIndex,
    net: NetIndex,
    text: TextIndex,
}

/// What compiling found.
#[derive(Debug, Default, Clone)]
pub struct CompileStats {
    /// Indicators given.
    pub indicators: u64,
    /// Usable indicators (alive, latest versions, not revoked).
    pub active: u64,
    /// Answered by the indexes alone.
    pub exact: u64,
    /// Single-observation patterns checked by the evaluator on candidates.
    pub verified: u64,
    /// Patterns over several observations.
    pub multi: u64,
    pub revoked: u64,
    /// Older versions dropped.
    pub superseded: u64,
    /// Indicators whose pattern does not parse (listed in `errors`).
    pub invalid: u64,
    /// Approximate heap bytes of the compiled matcher.
    pub heap_bytes: u64,
}

/// A compiled, immutable set of indicators.
#[derive(Debug)]
pub struct Matcher {
    slot_ids: HashMap<String, u32>,
    slots: Vec<Slot>,
    type_ids: HashMap<String, u32>,
    type_present: Vec<Vec<u32>>,
    arena: Arena,
    postings: Postings,
    meta: Vec<Meta>,
    /// Indicator ids as 128 bits (`indicator--<uuid>`); other forms are in `other_ids`.
    ids: Vec<u128>,
    other_ids: HashMap<u32, (u32, u32)>,
    /// Pattern text of the indicators the evaluator may need (not the exact ones).
    sources: HashMap<u32, (u32, u32)>,
    stats: CompileStats,
}

/// Builds a [`Matcher`], one indicator at a time (nothing but the compiled form is kept).
#[derive(Debug)]
pub struct MatcherBuilder {
    m: Matcher,
    /// Indicator numbers by id (hashed through [`Matcher::id_hash`]).
    by_id: HashTable<u32>,
    modified: Vec<i64>,
    hasher: DefaultHashBuilder,
    errors: Vec<IndicatorError>,
}

enum Probe<'a> {
    Eq(String, &'a str),
    Net(String, bool, Net),
    Like(String, &'a str),
    Regex(String, &'a str),
    Type(&'a str),
}

impl Probe<'_> {
    fn rank(&self) -> u8 {
        match self {
            Probe::Eq(..) => 0,
            Probe::Net(..) => 1,
            Probe::Like(..) | Probe::Regex(..) => 2,
            Probe::Type(_) => 3,
        }
    }
}

/// The index slot of a plain property path, `TYPE:prop.sub`; `None` when the path dereferences,
/// indexes a list or reaches a binary (`_hex`/`_bin`) property.
pub fn slot_key(path: &ObjectPath) -> Option<String> {
    let mut keys = Vec::with_capacity(path.steps.len());
    for s in &path.steps {
        match s {
            PathStep::Key(k)
                if !(k.ends_with("_ref")
                    || k.ends_with("_refs")
                    || k.ends_with("_hex")
                    || k.ends_with("_bin")) =>
            {
                keys.push(k.as_str())
            }
            _ => return None,
        }
    }
    Some(format!("{}:{}", path.object_type, canonical_path(&keys)))
}

/// Probes that find exactly the observations where `c` holds (`Some(vec![])`: it never holds).
fn exact_probes(c: &Comparison) -> Option<Vec<Probe<'_>>> {
    if c.negated {
        return None;
    }
    let key = slot_key(&c.path)?;
    match (c.op, &c.operand) {
        (Operator::Eq, Operand::Literal(Literal::String(s))) => Some(vec![Probe::Eq(key, s)]),
        (Operator::In, Operand::Set(items)) => items
            .iter()
            .map(|l| match l {
                Literal::String(s) => Some(Probe::Eq(key.clone(), s.as_str())),
                _ => None,
            })
            .collect(),
        (Operator::Like, Operand::Literal(Literal::String(s))) => Some(vec![Probe::Like(key, s)]),
        (Operator::Matches, Operand::Literal(Literal::String(s))) => {
            Some(vec![Probe::Regex(key, s)])
        }
        (Operator::IsSubset | Operator::IsSuperset, Operand::Literal(Literal::String(s))) => {
            match Net::parse(s) {
                Some(n) => Some(vec![Probe::Net(key, c.op == Operator::IsSubset, n)]),
                None => Some(vec![]),
            }
        }
        _ => None,
    }
}

fn exact_expr(e: &ComparisonExpr) -> Option<Vec<Probe<'_>>> {
    match e {
        ComparisonExpr::Test(c) => exact_probes(c),
        ComparisonExpr::Or(v) => {
            let mut out = Vec::new();
            for x in v {
                out.extend(exact_expr(x)?);
            }
            Some(out)
        }
        ComparisonExpr::And(_) => None,
    }
}

/// Probes that find a superset of the observations where `e` holds.
fn filter_expr(e: &ComparisonExpr) -> Vec<Probe<'_>> {
    match e {
        ComparisonExpr::Test(c) => {
            exact_probes(c).unwrap_or_else(|| vec![Probe::Type(&c.path.object_type)])
        }
        ComparisonExpr::Or(v) => v.iter().flat_map(filter_expr).collect(),
        ComparisonExpr::And(v) => v
            .iter()
            .map(filter_expr)
            .min_by_key(|f| f.iter().map(Probe::rank).max().unwrap_or(0))
            .unwrap_or_default(),
    }
}

fn leaves<'a>(e: &'a ObservationExpr, out: &mut Vec<&'a ComparisonExpr>) {
    match e {
        ObservationExpr::Observation(c) => out.push(c),
        ObservationExpr::And(v) | ObservationExpr::Or(v) | ObservationExpr::FollowedBy(v) => {
            v.iter().for_each(|x| leaves(x, out))
        }
        ObservationExpr::Qualified(x, _) => leaves(x, out),
    }
}

impl Default for MatcherBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl MatcherBuilder {
    pub fn new() -> Self {
        MatcherBuilder {
            m: Matcher {
                slot_ids: HashMap::new(),
                slots: Vec::new(),
                type_ids: HashMap::new(),
                type_present: Vec::new(),
                arena: Arena::default(),
                postings: Postings::default(),
                meta: Vec::new(),
                ids: Vec::new(),
                other_ids: HashMap::new(),
                sources: HashMap::new(),
                stats: CompileStats::default(),
            },
            by_id: HashTable::new(),
            modified: Vec::new(),
            hasher: DefaultHashBuilder::default(),
            errors: Vec::new(),
        }
    }

    fn slot(&mut self, key: String) -> u32 {
        if let Some(&s) = self.m.slot_ids.get(&key) {
            return s;
        }
        let s = self.m.slots.len() as u32;
        self.m.slots.push(Slot::default());
        self.m.slot_ids.insert(key, s);
        s
    }

    fn add_probe(&mut self, p: Probe<'_>, ind: u32) {
        match p {
            Probe::Eq(k, v) => {
                let s = self.slot(k) as usize;
                let m = &mut self.m;
                m.slots[s].eq.insert(&mut m.arena, &mut m.postings, v, ind);
            }
            Probe::Net(k, subset, net) => {
                let s = self.slot(k) as usize;
                let m = &mut self.m;
                if subset {
                    m.slots[s].net.add_subset(&mut m.postings, net, ind);
                } else {
                    m.slots[s].net.add_superset(net, ind);
                }
            }
            Probe::Like(k, v) => {
                let s = self.slot(k) as usize;
                let m = &mut self.m;
                m.slots[s].text.add_like(&mut m.arena, v, ind);
            }
            Probe::Regex(k, v) => {
                let s = self.slot(k) as usize;
                let m = &mut self.m;
                m.slots[s].text.add_regex(&mut m.arena, v, ind);
            }
            Probe::Type(t) => {
                let id = match self.m.type_ids.get(t) {
                    Some(&id) => id,
                    None => {
                        let id = self.m.type_present.len() as u32;
                        self.m.type_ids.insert(t.to_string(), id);
                        self.m.type_present.push(Vec::new());
                        id
                    }
                };
                let v = &mut self.m.type_present[id as usize];
                if v.last() != Some(&ind) {
                    v.push(ind);
                }
            }
        }
    }

    /// Adds one indicator. A pattern that does not parse is recorded in [`MatcherBuilder::errors`].
    pub fn add(&mut self, ind: IndicatorInput) {
        self.m.stats.indicators += 1;
        let pattern = match crate::parse(&ind.pattern) {
            Ok(p) => p,
            Err(e) => {
                self.m.stats.invalid += 1;
                self.errors.push(IndicatorError {
                    location: ind.id,
                    message: format!("pattern: {e}"),
                });
                return;
            }
        };
        // Versions: the latest `modified` wins.
        let uuid = uuid_of(&ind.id);
        let h = id_hash(&self.hasher, uuid, ind.id.as_bytes());
        let m = &self.m;
        if let Some(&prev) = self.by_id.find(h, |&i| m.id_is(i, &ind.id)) {
            if self.modified[prev as usize] >= ind.modified {
                self.m.stats.superseded += 1;
                return;
            }
            self.m.stats.superseded += 1;
            self.m.meta[prev as usize].mode = Mode::Dead;
            self.by_id
                .find_entry(h, |&i| i == prev)
                .map(|e| e.remove())
                .ok();
        }
        let n = self.m.meta.len() as u32;
        match uuid {
            Some(u) => self.m.ids.push(u),
            None => {
                self.m.ids.push(0);
                let span = self.m.arena.push(ind.id.as_bytes());
                self.m.other_ids.insert(n, span);
            }
        }
        let (m, hasher) = (&self.m, &self.hasher);
        self.by_id
            .insert_unique(h, n, |&i| match m.other_ids.get(&i) {
                Some(&span) => id_hash(hasher, None, m.arena.get(span)),
                None => id_hash(hasher, Some(m.ids[i as usize]), &[]),
            });
        self.modified.push(ind.modified);
        let mut meta = Meta {
            valid_from: ind.valid_from.unwrap_or(i64::MIN),
            valid_until: ind.valid_until.unwrap_or(i64::MAX),
            mode: Mode::Dead,
        };
        if ind.revoked {
            self.m.stats.revoked += 1;
            self.m.meta.push(meta);
            return;
        }
        let probes;
        if let Some(ce) = pattern.single_observation() {
            if let Some(p) = exact_expr(ce) {
                meta.mode = Mode::Exact;
                probes = p;
            } else {
                meta.mode = Mode::Single;
                probes = filter_expr(ce);
            }
        } else {
            meta.mode = Mode::Multi;
            let mut ls = Vec::new();
            leaves(pattern.root(), &mut ls);
            probes = ls.into_iter().flat_map(filter_expr).collect();
        }
        if meta.mode != Mode::Exact {
            let span = self.m.arena.push(ind.pattern.as_bytes());
            self.m.sources.insert(n, span);
        }
        self.m.meta.push(meta);
        for p in probes {
            self.add_probe(p, n);
        }
    }

    /// Indicators that could not be compiled so far.
    pub fn errors(&self) -> &[IndicatorError] {
        &self.errors
    }

    /// Finishes the indexes.
    pub fn build(mut self) -> (Matcher, Vec<IndicatorError>) {
        for s in &mut self.m.slots {
            s.net.finish();
            s.eq.finish(&self.m.arena);
            if let Err(e) = s.text.finish(&self.m.arena) {
                self.errors.push(IndicatorError {
                    location: "LIKE/MATCHES index".into(),
                    message: e.to_string(),
                });
            }
        }
        for v in &mut self.m.type_present {
            v.shrink_to_fit();
        }
        self.m.arena.bytes.shrink_to_fit();
        self.m.meta.shrink_to_fit();
        self.m.ids.shrink_to_fit();
        let st = &mut self.m.stats;
        for meta in &self.m.meta {
            match meta.mode {
                Mode::Exact => st.exact += 1,
                Mode::Single => st.verified += 1,
                Mode::Multi => st.multi += 1,
                Mode::Dead => {}
            }
        }
        st.active = st.exact + st.verified + st.multi;
        let m = &self.m;
        let heap = m.arena.bytes.capacity()
            + m.postings.heap_bytes()
            + m.meta.capacity() * std::mem::size_of::<Meta>()
            + m.ids.capacity() * 16
            + (m.other_ids.capacity() + m.sources.capacity()) * 13
            + m.slots
                .iter()
                .map(|s| s.eq.heap_bytes() + s.net.heap_bytes() + s.text.heap_bytes())
                .sum::<usize>()
            + m.type_present
                .iter()
                .map(|v| v.capacity() * 4)
                .sum::<usize>();
        self.m.stats.heap_bytes = heap as u64;
        (self.m, self.errors)
    }
}

/// How the fields of one [`Mapping`] reach the matcher's slots.
#[derive(Debug, Clone)]
pub struct FieldPlan {
    /// Per mapping target: (slot, type id) for the fixed type, or for IPv4 and IPv6.
    targets: Vec<[(Option<u32>, Option<u32>); 2]>,
    /// Per mapping target: an address field whose IPv4 and IPv6 plans differ, so that its text must
    /// say which one it is.
    ip: Vec<bool>,
}

impl Matcher {
    /// Compiles indicators.
    pub fn compile(
        indicators: impl IntoIterator<Item = IndicatorInput>,
    ) -> (Matcher, Vec<IndicatorError>) {
        let mut b = MatcherBuilder::new();
        for i in indicators {
            b.add(i);
        }
        b.build()
    }

    pub fn stats(&self) -> &CompileStats {
        &self.stats
    }

    /// Number of indicators (all versions given, alive or not).
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// The id of indicator number `i`.
    pub fn indicator_id(&self, i: u32) -> String {
        match self.other_ids.get(&i) {
            Some(&span) => self.arena.str(span).to_string(),
            None => format_uuid_id(self.ids[i as usize]),
        }
    }

    fn id_is(&self, i: u32, id: &str) -> bool {
        match self.other_ids.get(&i) {
            Some(&span) => self.arena.get(span) == id.as_bytes(),
            None => uuid_of(id) == Some(self.ids[i as usize]),
        }
    }

    /// Prepares the lookups of a mapping's fields.
    pub fn plan(&self, mapping: &Mapping) -> FieldPlan {
        let look = |ty: &str, t: &crate::input::Target| {
            (
                self.slot_ids
                    .get(&format!("{ty}:{}", t.path_text()))
                    .copied(),
                self.type_ids.get(ty).copied(),
            )
        };
        let mut targets = Vec::new();
        let mut ip = Vec::new();
        for t in &mapping.targets {
            match &t.sco_type {
                ScoType::Fixed(ty) => {
                    targets.push([look(ty, t), (None, None)]);
                    ip.push(false);
                }
                ScoType::Ip => {
                    let (v4, v6) = (look("ipv4-addr", t), look("ipv6-addr", t));
                    targets.push([v4, v6]);
                    ip.push(v4 != v6);
                }
            }
        }
        FieldPlan { targets, ip }
    }
}

/// A matcher that can be replaced while in use: readers take a snapshot ([`SharedMatcher::load`]);
/// [`SharedMatcher::store`] swaps in a matcher compiled aside, atomically.
#[derive(Debug)]
pub struct SharedMatcher(ArcSwap<Matcher>);

impl SharedMatcher {
    pub fn new(m: Matcher) -> Self {
        SharedMatcher(ArcSwap::from_pointee(m))
    }

    pub fn load(&self) -> Arc<Matcher> {
        self.0.load_full()
    }

    /// Replaces the matcher; sessions already running keep the one they started with.
    pub fn store(&self, m: Matcher) {
        self.0.store(Arc::new(m));
    }
}

/// What an indicator matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchResult {
    pub indicator: String,
    /// Observation labels (observed-data id, or "FILE:LINE"), in input order.
    pub observations: Vec<String>,
    /// Sum of `number_observed` of those observations.
    pub count: u64,
    /// Earliest first time and latest last time of those observations (ms since the epoch).
    pub first_seen: i64,
    pub last_seen: i64,
}

/// What a session found besides matches.
#[derive(Debug, Default, Clone)]
pub struct SessionStats {
    /// Observations checked by the general evaluator.
    pub evaluated: u64,
    /// Indicators whose binding search exceeded its budget (ids).
    pub too_complex: Vec<String>,
    /// Observations that could not be turned into evaluator input.
    pub unusable: u64,
}

/// Where a record's lookups put the indicators they find: those decided by the lookup itself
/// (`exact`) and those still to be evaluated (`cand`).
struct Found<'a> {
    exact: &'a mut Vec<u32>,
    cand: &'a mut Vec<u32>,
    scratch: &'a mut Vec<u32>,
}

impl Found<'_> {
    /// The second pass of a value's lookups (the first is in [`Session::match_record`]).
    #[inline]
    fn probe(&mut self, m: &Matcher, p: Prepared, value: &str) {
        let s = &m.slots[p.slot as usize];
        let (exact, cand) = (&mut *self.exact, &mut *self.cand);
        let mut push = |i: u32| match m.meta[i as usize].mode {
            Mode::Exact => exact.push(i),
            Mode::Dead => {}
            _ => cand.push(i),
        };
        if p.eq {
            if let Some(posting) = s.eq.get_prepared(&m.arena, value, p.eq_hash) {
                m.postings.for_each(posting, &mut push);
            }
        }
        if let Some(net) = p.net {
            s.net.probe_prepared(&m.postings, net, &mut push);
        }
        if !s.text.is_empty() {
            s.text.probe(&m.arena, value, self.scratch, &mut push);
        }
    }
}

/// One pass of observations through a matcher.
pub struct Session {
    m: Arc<Matcher>,
    now_ms: i64,
    exact: Vec<u32>,
    cand: Vec<u32>,
    types: Vec<u32>,
    scratch: Vec<u32>,
    /// The record's values to look up: (index among the record's values, first pass done).
    prepared: Vec<(u32, Prepared)>,
    labels: Vec<(String, u64, Span)>,
    hits: Vec<(u32, u32)>,
    patterns: HashMap<u32, Option<Pattern>>,
    multi_obs: Vec<(Observation, u32)>,
    multi_cands: HashMap<u32, Vec<u32>>,
    stats: SessionStats,
}

/// A record's value after the first pass of its lookups: its slot, its equality hash and whether the
/// equality filter let it through, and its network lookups.
#[derive(Debug, Clone, Copy)]
struct Prepared {
    slot: u32,
    eq_hash: u64,
    eq: bool,
    net: Option<index::NetProbe>,
}

impl Prepared {
    /// The first pass of the lookups of `value` in `slot`.
    #[inline]
    fn of(m: &Matcher, slot: u32, value: &str) -> Prepared {
        let s = &m.slots[slot as usize];
        let (eq_hash, eq) = s.eq.prepare(value);
        Prepared {
            slot,
            eq_hash,
            eq,
            net: if s.net.is_empty() {
                None
            } else {
                s.net.prepare(value)
            },
        }
    }
}

/// Time of an observation for validity checks: (first, last) in milliseconds.
type Span = (i64, i64);

impl Session {
    /// A session on `m`; `now_ms` is the time given to records without a timestamp.
    pub fn new(m: Arc<Matcher>, now_ms: i64) -> Self {
        Session {
            m,
            now_ms,
            exact: Vec::new(),
            cand: Vec::new(),
            types: Vec::new(),
            scratch: Vec::new(),
            prepared: Vec::new(),
            labels: Vec::new(),
            hits: Vec::new(),
            patterns: HashMap::new(),
            multi_obs: Vec::new(),
            multi_cands: HashMap::new(),
            stats: SessionStats::default(),
        }
    }

    fn add_types(&mut self) {
        let m = &*self.m;
        self.types.sort_unstable();
        self.types.dedup();
        for &t in &self.types {
            for &i in &m.type_present[t as usize] {
                if m.meta[i as usize].mode != Mode::Dead {
                    self.cand.push(i);
                }
            }
        }
    }

    /// Matches one log record read through `mapping` (planned with [`Matcher::plan`]).
    pub fn match_record(
        &mut self,
        plan: &FieldPlan,
        mapping: &Mapping,
        fields: &LineFields,
        label: &dyn Fn() -> String,
    ) {
        self.exact.clear();
        self.cand.clear();
        self.types.clear();
        // Two passes over the record's values. The first computes every lookup's hash and reads its
        // filter word: these loads are independent, so the processor waits for their cache misses
        // together. The second does the rest of each lookup (a value nearly always stops at a filter).
        let m = &*self.m;
        self.prepared.clear();
        for (i, (t, kind, text)) in fields.iter().enumerate() {
            let Some(&[v4, v6]) = plan.targets.get(t as usize) else {
                continue;
            };
            // An address field is read as IPv6 or IPv4 by its text (looked at only where the two
            // plans differ).
            let (slot, ty) = if plan.ip[t as usize] && is_ipv6_text(text) {
                v6
            } else {
                v4
            };
            if let Some(ty) = ty {
                self.types.push(ty);
            }
            if let (Some(slot), Kind::Str) = (slot, kind) {
                self.prepared.push((i as u32, Prepared::of(m, slot, text)));
            }
        }
        let mut found = Found {
            exact: &mut self.exact,
            cand: &mut self.cand,
            scratch: &mut self.scratch,
        };
        for &(i, p) in &self.prepared {
            found.probe(m, p, fields.value(i as usize));
        }
        if !self.types.is_empty() {
            self.add_types();
        }
        if self.exact.is_empty() && self.cand.is_empty() {
            return;
        }
        let t = fields.time().map_or(self.now_ms, |d| d.timestamp_millis());
        let now = self.now_ms;
        let label = label();
        self.settle(&label, 1, (t, t), &|| {
            let time = chrono::DateTime::from_timestamp_millis(t)
                .or_else(|| chrono::DateTime::from_timestamp_millis(now))
                .unwrap_or_default();
            let od = fields.to_observed_data(mapping, &label, time);
            Observation::from_observed_data(&od, |_| None).ok()
        });
    }

    /// Matches one STIX observed-data.
    pub fn match_stix(&mut self, obs: &StixObservation) {
        self.exact.clear();
        self.cand.clear();
        self.types.clear();
        let m = Arc::clone(&self.m);
        for (key, kind, value) in obs.fields() {
            if let Some(ty) = key.split(':').next().and_then(|t| m.type_ids.get(t)) {
                self.types.push(*ty);
            }
            if kind == Kind::Str {
                if let Some(&slot) = m.slot_ids.get(&key) {
                    Found {
                        exact: &mut self.exact,
                        cand: &mut self.cand,
                        scratch: &mut self.scratch,
                    }
                    .probe(&m, Prepared::of(&m, slot, &value), &value);
                }
            }
        }
        // SCO types without scalar properties still count as present.
        for s in obs.scos.iter().chain(
            obs.observed_data
                .get("objects")
                .and_then(serde_json::Value::as_object)
                .into_iter()
                .flat_map(|o| o.values()),
        ) {
            if let Some(ty) = s
                .get("type")
                .and_then(|t| t.as_str())
                .and_then(|t| m.type_ids.get(t))
            {
                self.types.push(*ty);
            }
        }
        if !self.types.is_empty() {
            self.add_types();
        }
        if self.exact.is_empty() && self.cand.is_empty() {
            return;
        }
        let n = obs
            .observed_data
            .get("number_observed")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(1);
        let span = obs.span().map_or((self.now_ms, self.now_ms), |(a, b)| {
            (a.timestamp_millis(), b.timestamp_millis())
        });
        self.settle(&obs.id.clone(), n, span, &|| {
            Observation::from_observed_data(&obs.observed_data, |r| {
                obs.scos
                    .iter()
                    .find(|s| s.get("id").and_then(|i| i.as_str()) == Some(r))
            })
            .ok()
        });
    }

    fn settle(
        &mut self,
        label: &str,
        number: u64,
        span: Span,
        build: &dyn Fn() -> Option<Observation>,
    ) {
        let m = Arc::clone(&self.m);
        let valid = |i: u32| {
            let meta = &m.meta[i as usize];
            span.1 >= meta.valid_from && span.0 < meta.valid_until
        };
        let mut label_idx: Option<u32> = None;
        let mut hit = |s: &mut Self, i: u32| {
            let l = *label_idx.get_or_insert_with(|| {
                s.labels.push((label.to_string(), number, span));
                s.labels.len() as u32 - 1
            });
            s.hits.push((i, l));
            l
        };
        self.exact.sort_unstable();
        self.exact.dedup();
        let exact = std::mem::take(&mut self.exact);
        for &i in &exact {
            if valid(i) {
                hit(self, i);
            }
        }
        self.exact = exact;
        if self.cand.is_empty() {
            return;
        }
        self.cand.sort_unstable();
        self.cand.dedup();
        let cand = std::mem::take(&mut self.cand);
        let mut obs: Option<Option<Observation>> = None;
        let mut multi_idx: Option<u32> = None;
        for &i in &cand {
            if !valid(i) {
                continue;
            }
            let o = obs.get_or_insert_with(build);
            let Some(o) = o.as_ref() else {
                self.stats.unusable += 1;
                break;
            };
            let meta = &m.meta[i as usize];
            let pat = self.patterns.entry(i).or_insert_with(|| {
                m.sources
                    .get(&i)
                    .and_then(|&src| crate::parse(m.arena.str(src)).ok())
            });
            let Some(pat) = pat.as_ref() else { continue };
            self.stats.evaluated += 1;
            let ok = match meta.mode {
                Mode::Single => pat.matches_one(o) == Some(true),
                Mode::Multi => {
                    let mut ls = Vec::new();
                    leaves(pat.root(), &mut ls);
                    ls.iter().any(|c| c.matches(o))
                }
                _ => false,
            };
            if !ok {
                continue;
            }
            if meta.mode == Mode::Single {
                hit(self, i);
            } else {
                let l = hit(self, u32::MAX);
                let k = match multi_idx {
                    Some(k) => k,
                    None => {
                        self.multi_obs.push((o.clone(), l));
                        let k = self.multi_obs.len() as u32 - 1;
                        multi_idx = Some(k);
                        k
                    }
                };
                self.multi_cands.entry(i).or_default().push(k);
            }
        }
        self.cand = cand;
    }

    /// Evaluates the patterns over several observations and returns every indicator that matched, in
    /// the order the indicators were given.
    pub fn finish(mut self) -> (Vec<MatchResult>, SessionStats) {
        let m = Arc::clone(&self.m);
        let mut by_ind: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
        for &(i, l) in &self.hits {
            if i != u32::MAX {
                by_ind.entry(i).or_default().push(l);
            }
        }
        let mut multi: Vec<(u32, Vec<u32>)> = self.multi_cands.drain().collect();
        multi.sort_unstable_by_key(|(i, _)| *i);
        for (i, cands) in multi {
            let Some(Some(pat)) = self.patterns.get(&i) else {
                continue;
            };
            let obs: Vec<Observation> = cands
                .iter()
                .map(|&k| self.multi_obs[k as usize].0.clone())
                .collect();
            self.stats.evaluated += 1;
            match pat.matches(&obs) {
                Outcome::Match(bound) => {
                    by_ind
                        .entry(i)
                        .or_default()
                        .extend(bound.iter().map(|&b| self.multi_obs[cands[b] as usize].1));
                }
                Outcome::TooComplex => self.stats.too_complex.push(m.indicator_id(i)),
                Outcome::NoMatch => {}
            }
        }
        let results = by_ind
            .into_iter()
            .map(|(i, mut ls)| {
                ls.sort_unstable();
                ls.dedup();
                MatchResult {
                    indicator: m.indicator_id(i),
                    count: ls.iter().map(|&l| self.labels[l as usize].1).sum(),
                    first_seen: ls
                        .iter()
                        .map(|&l| self.labels[l as usize].2 .0)
                        .min()
                        .unwrap_or(0),
                    last_seen: ls
                        .iter()
                        .map(|&l| self.labels[l as usize].2 .1)
                        .max()
                        .unwrap_or(0),
                    observations: ls
                        .iter()
                        .map(|&l| self.labels[l as usize].0.clone())
                        .collect(),
                }
            })
            .collect();
        (results, self.stats)
    }
}

#[cfg(test)]
mod tests;
