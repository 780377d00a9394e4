//! The indexes of the bulk matcher, one set per (SCO type, property path) "slot":
//! - [`EqIndex`]: a hash table over an arena of values, for `=` and `IN` with string literals;
//! - [`NetIndex`]: IPv4/IPv6 networks: one hash table per prefix length present for `ISSUBSET` (an
//!   address is looked up once per such length) and a sorted array for `ISSUPERSET` (a range query);
//! - [`TextIndex`]: an Aho-Corasick automaton over the literal atoms of `LIKE` patterns and of
//!   `MATCHES` regular expressions (their prefix literals, from `regex-syntax`), each candidate then
//!   checked exactly (the `LIKE` semantics of the evaluator, or the regex, compiled on first use).
//!
//! The equality table, the IPv4 `ISSUBSET` tables and the prefix/suffix tables each sit behind a small
//! [`Filter`] (a blocked Bloom filter over the same hash), so that most values, which are in none of them,
//! are turned away without touching the table itself.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use std::borrow::Cow;
use std::hash::BuildHasher;
use std::sync::OnceLock;
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// Lists of indicator numbers. A posting is either one indicator (high bit clear) or, with the high bit
/// set, an index into `multi`.
#[derive(Debug, Default)]
pub(crate) struct Postings {
    multi: Vec<Vec<u32>>,
}

const MULTI: u32 = 1 << 31;

impl Postings {
    pub(crate) fn add(&mut self, posting: &mut u32, ind: u32) {
        if *posting & MULTI != 0 {
            let v = &mut self.multi[(*posting & !MULTI) as usize];
            if v.last() != Some(&ind) {
                v.push(ind);
            }
        } else if *posting != ind {
            self.multi.push(vec![*posting, ind]);
            *posting = (self.multi.len() as u32 - 1) | MULTI;
        }
    }

    #[inline]
    pub(crate) fn for_each(&self, posting: u32, mut f: impl FnMut(u32)) {
        if posting & MULTI != 0 {
            self.multi[(posting & !MULTI) as usize]
                .iter()
                .for_each(|&i| f(i));
        } else {
            f(posting)
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.multi.capacity() * 24 + self.multi.iter().map(|v| v.capacity() * 4).sum::<usize>()
    }
}

/// Values stored once in a byte arena.
#[derive(Debug, Default)]
pub(crate) struct Arena {
    pub(crate) bytes: Vec<u8>,
}

impl Arena {
    pub(crate) fn push(&mut self, s: &[u8]) -> (u32, u32) {
        let off = self.bytes.len() as u32;
        self.bytes.extend_from_slice(s);
        (off, s.len() as u32)
    }

    #[inline]
    pub(crate) fn get(&self, (off, len): (u32, u32)) -> &[u8] {
        &self.bytes[off as usize..(off + len) as usize]
    }

    pub(crate) fn str(&self, span: (u32, u32)) -> &str {
        std::str::from_utf8(self.get(span)).unwrap_or("")
    }
}

/// A blocked Bloom filter over 64-bit hashes, kept in front of a hash table so that a value that is
/// not there (most of them) is turned away by one load from an array about a tenth of the table's size,
/// which stays in the processor's cache, instead of a cache miss into the table. Two bits per key, both in
/// one 64-bit word; about 12 bits per key, so about 1 in 40 absent keys still reaches the table. Empty
/// (not built yet): lets everything through.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    words: Vec<u64>,
}

impl Filter {
    const BITS_PER_KEY: usize = 12;

    /// Builds the filter for `n` keys whose hashes `hashes` yields.
    pub(crate) fn build(n: usize, hashes: impl Iterator<Item = u64>) -> Self {
        if n == 0 {
            return Self::default();
        }
        let mut f = Self {
            words: vec![0; (n * Self::BITS_PER_KEY).div_ceil(64)],
        };
        for h in hashes {
            let (w, bits) = f.slot(h);
            f.words[w] |= bits;
        }
        f
    }

    #[inline(always)]
    fn slot(&self, h: u64) -> (usize, u64) {
        let w = (((h >> 32) * self.words.len() as u64) >> 32) as usize;
        (w, (1u64 << (h & 63)) | (1u64 << ((h >> 6) & 63)))
    }

    /// False: no key with this hash was added. True: one may have been (or the filter is empty).
    #[inline(always)]
    pub(crate) fn may_contain(&self, h: u64) -> bool {
        if self.words.is_empty() {
            return true;
        }
        let (w, bits) = self.slot(h);
        // `slot` yields w < len, since (h >> 32) < 2^32.
        self.words[w] & bits == bits
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.words.capacity() * 8
    }
}

/// Spreads an integer key's bits over a 64-bit hash for [`Filter`] (the finaliser of SplitMix64).
#[inline(always)]
pub(crate) fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Exact string values → postings.
#[derive(Debug, Default)]
pub(crate) struct EqIndex {
    table: HashTable<(u32, u32, u32)>,
    hasher: DefaultHashBuilder,
    filter: Filter,
}

impl EqIndex {
    pub(crate) fn insert(
        &mut self,
        arena: &mut Arena,
        postings: &mut Postings,
        value: &str,
        ind: u32,
    ) {
        let h = self.hasher.hash_one(value.as_bytes());
        if let Some(e) = self
            .table
            .find_mut(h, |&(o, l, _)| arena.get((o, l)) == value.as_bytes())
        {
            postings.add(&mut e.2, ind);
            return;
        }
        let (o, l) = arena.push(value.as_bytes());
        let hasher = &self.hasher;
        self.table.insert_unique(h, (o, l, ind), |&(o, l, _)| {
            hasher.hash_one(arena.get((o, l)))
        });
    }

    /// The postings of `value` (the two halves below in one; the matcher calls them apart).
    #[cfg(test)]
    pub(crate) fn get(&self, arena: &Arena, value: &str) -> Option<u32> {
        let (h, maybe) = self.prepare(value);
        if maybe {
            self.get_prepared(arena, value, h)
        } else {
            None
        }
    }

    /// The first half of [`EqIndex::get`]: the value's hash, and whether its filter lets it through.
    /// Computing this for every value of a record before any [`EqIndex::get_prepared`] lets the
    /// processor wait for the filters' cache misses together instead of one after another.
    #[inline(always)]
    pub(crate) fn prepare(&self, value: &str) -> (u64, bool) {
        if self.table.is_empty() {
            return (0, false);
        }
        let h = self.hasher.hash_one(value.as_bytes());
        (h, self.filter.may_contain(h))
    }

    /// The second half of [`EqIndex::get`], for a value that [`EqIndex::prepare`] let through.
    #[inline]
    pub(crate) fn get_prepared(&self, arena: &Arena, value: &str, h: u64) -> Option<u32> {
        self.table
            .find(h, |&(o, l, _)| arena.get((o, l)) == value.as_bytes())
            .map(|e| e.2)
    }

    /// Builds the filter once all values are in.
    pub(crate) fn finish(&mut self, arena: &Arena) {
        let hasher = &self.hasher;
        self.filter = Filter::build(
            self.table.len(),
            self.table
                .iter()
                .map(|&(o, l, _)| hasher.hash_one(arena.get((o, l)))),
        );
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.table.capacity() * 13 + self.filter.heap_bytes()
    }
}

/// An IPv4 or IPv6 network as the evaluator reads it: an address with an optional `/prefix`.
pub(crate) use crate::eval::IpNet as Net;

/// The networks of one (IP version, prefix length), masked, → posting. IPv4 networks are kept in 32 bits.
#[derive(Debug)]
enum NetTable {
    V4(HashMap<u32, u32>, Filter),
    V6(HashMap<u128, u32>),
}

/// [`Net::parse`], with a fast path for the common plain dotted quad (the form Rust's own parser accepts:
/// four decimal octets of at most three digits, no leading zeros, each at most 255).
#[inline]
pub(crate) fn parse_net(s: &str) -> Option<Net> {
    let b = s.as_bytes();
    let mut addr: u32 = 0;
    let mut i = 0;
    for octet in 0..4 {
        if octet > 0 {
            if b.get(i) != Some(&b'.') {
                return Net::parse(s);
            }
            i += 1;
        }
        let start = i;
        let mut v: u32 = 0;
        while let Some(&c) = b.get(i) {
            if !c.is_ascii_digit() || i - start == 3 {
                break;
            }
            v = v * 10 + u32::from(c - b'0');
            i += 1;
        }
        let len = i - start;
        if len == 0 || v > 255 || (len > 1 && b[start] == b'0') {
            return Net::parse(s);
        }
        addr = (addr << 8) | v;
    }
    if i != b.len() {
        return Net::parse(s);
    }
    Some(Net {
        v6: false,
        addr: u128::from(addr),
        prefix: 32,
    })
}

/// A value prepared for [`NetIndex::probe_prepared`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct NetProbe {
    net: Net,
    tables: u64,
}

/// `ISSUBSET` and `ISSUPERSET` operands of one slot.
#[derive(Debug, Default)]
pub(crate) struct NetIndex {
    /// (v6, prefix) → masked network → posting.
    subset: Vec<((bool, u8), NetTable)>,
    /// (v6, address, prefix, indicator), sorted.
    superset: Vec<(bool, u128, u8, u32)>,
}

impl NetIndex {
    pub(crate) fn add_subset(&mut self, postings: &mut Postings, net: Net, ind: u32) {
        let key = (net.v6, net.prefix);
        let pos = match self.subset.iter().position(|(k, _)| *k == key) {
            Some(p) => p,
            None => {
                let t = if net.v6 {
                    NetTable::V6(HashMap::new())
                } else {
                    NetTable::V4(HashMap::new(), Filter::default())
                };
                self.subset.push((key, t));
                self.subset.len() - 1
            }
        };
        let masked = net.addr & Net::mask_for(net.v6, net.prefix);
        let posting = match &mut self.subset[pos].1 {
            NetTable::V4(m, _) => match m.entry(masked as u32) {
                hashbrown::hash_map::Entry::Occupied(e) => e.into_mut(),
                hashbrown::hash_map::Entry::Vacant(e) => {
                    e.insert(ind);
                    return;
                }
            },
            NetTable::V6(m) => match m.entry(masked) {
                hashbrown::hash_map::Entry::Occupied(e) => e.into_mut(),
                hashbrown::hash_map::Entry::Vacant(e) => {
                    e.insert(ind);
                    return;
                }
            },
        };
        postings.add(posting, ind);
    }

    pub(crate) fn add_superset(&mut self, net: Net, ind: u32) {
        self.superset.push((net.v6, net.addr, net.prefix, ind));
    }

    pub(crate) fn finish(&mut self) {
        self.superset.sort_unstable();
        for (_, t) in &mut self.subset {
            match t {
                NetTable::V4(m, f) => {
                    m.shrink_to_fit();
                    *f = Filter::build(m.len(), m.keys().map(|&k| mix64(k.into())));
                }
                NetTable::V6(m) => m.shrink_to_fit(),
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.subset.is_empty() && self.superset.is_empty()
    }

    /// Calls `f` for every indicator whose network test holds for the value `v` (the two halves below
    /// in one; the matcher calls them apart).
    #[cfg(test)]
    pub(crate) fn probe(&self, postings: &Postings, value: &str, f: impl FnMut(u32)) {
        if let Some(p) = self.prepare(value) {
            self.probe_prepared(postings, p, f);
        }
    }

    /// The first half of [`NetIndex::probe`] (as [`EqIndex::prepare`]): the value as a network, and
    /// which of the `ISSUBSET` tables may hold one of its networks (bit `i` for table `i`; tables past
    /// the 64th are always looked at). `None`: the value is no address.
    #[inline]
    pub(crate) fn prepare(&self, value: &str) -> Option<NetProbe> {
        let v = parse_net(value)?;
        let mut tables = 0u64;
        for (i, &((v6, q), ref m)) in self.subset.iter().enumerate().take(64) {
            let maybe = v6 == v.v6
                && v.prefix >= q
                && match m {
                    NetTable::V4(_, f) => {
                        f.may_contain(mix64(u64::from((v.addr & Net::mask_for(v6, q)) as u32)))
                    }
                    NetTable::V6(_) => true,
                };
            tables |= u64::from(maybe) << i;
        }
        Some(NetProbe { net: v, tables })
    }

    /// The second half of [`NetIndex::probe`].
    #[inline]
    pub(crate) fn probe_prepared(&self, postings: &Postings, p: NetProbe, mut f: impl FnMut(u32)) {
        let v = p.net;
        for (i, &((v6, q), ref m)) in self.subset.iter().enumerate() {
            if i < 64 {
                if p.tables & (1 << i) == 0 {
                    continue;
                }
            } else if v6 != v.v6 || v.prefix < q {
                continue;
            }
            let key = v.addr & Net::mask_for(v6, q);
            let found = match m {
                NetTable::V4(m, f) => {
                    let k = key as u32;
                    if i < 64 || f.may_contain(mix64(k.into())) {
                        m.get(&k)
                    } else {
                        None
                    }
                }
                NetTable::V6(m) => m.get(&key),
            };
            if let Some(&posting) = found {
                postings.for_each(posting, &mut f);
            }
        }
        if !self.superset.is_empty() {
            let mask = Net::mask_for(v.v6, v.prefix);
            let lo = v.addr & mask;
            let hi = lo | (!mask & Net::mask_for(v.v6, if v.v6 { 128 } else { 32 }));
            let start = self.superset.partition_point(|e| (e.0, e.1) < (v.v6, lo));
            for e in &self.superset[start..] {
                if (e.0, e.1) > (v.v6, hi) {
                    break;
                }
                if e.2 >= v.prefix {
                    f(e.3);
                }
            }
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.subset
            .iter()
            .map(|(_, t)| match t {
                NetTable::V4(m, f) => m.capacity() * 9 + f.heap_bytes(),
                NetTable::V6(m) => m.capacity() * 33,
            })
            .sum::<usize>()
            + self.superset.capacity() * 32
    }
}

const NOT_REGEX: u32 = u32::MAX;

/// One `LIKE` or `MATCHES` operand.
#[derive(Debug)]
pub(crate) struct TextEntry {
    pub(crate) ind: u32,
    /// The LIKE pattern or the regex source (NFC-normalised), in the arena.
    pub(crate) text: (u32, u32),
    /// For MATCHES: the index of its regex in [`TextIndex::regexes`]; `NOT_REGEX` for LIKE.
    pub(crate) regex: u32,
}

/// Literals that a value must start with (or end with), each leading to text entries. A value is looked
/// up once per literal length present: its prefix (suffix) of that length in one hash table.
#[derive(Debug, Default)]
struct Anchored {
    /// (literal span in the arena, posting of entries).
    table: HashTable<(u32, u32, u32)>,
    hasher: DefaultHashBuilder,
    /// The distinct literal lengths, ascending.
    lens: Vec<u32>,
    filter: Filter,
}

impl Anchored {
    fn add(&mut self, arena: &mut Arena, postings: &mut Postings, span: (u32, u32), entry: u32) {
        let lit = arena.get(span);
        let h = self.hasher.hash_one(lit);
        if let Some(e) = self
            .table
            .find_mut(h, |&(o, l, _)| arena.get((o, l)) == lit)
        {
            postings.add(&mut e.2, entry);
            return;
        }
        let hasher = &self.hasher;
        self.table
            .insert_unique(h, (span.0, span.1, entry), |&(o, l, _)| {
                hasher.hash_one(arena.get((o, l)))
            });
        if let Err(p) = self.lens.binary_search(&span.1) {
            self.lens.insert(p, span.1);
        }
    }

    fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Calls `f` for the entries of every literal that `value` starts with (`suffix`: ends with).
    #[inline]
    fn probe(
        &self,
        arena: &Arena,
        postings: &Postings,
        value: &[u8],
        suffix: bool,
        f: &mut impl FnMut(u32),
    ) {
        for &l in &self.lens {
            let l = l as usize;
            if l > value.len() {
                break;
            }
            let part = if suffix {
                &value[value.len() - l..]
            } else {
                &value[..l]
            };
            let h = self.hasher.hash_one(part);
            if !self.filter.may_contain(h) {
                continue;
            }
            if let Some(e) = self.table.find(h, |&(o, l, _)| arena.get((o, l)) == part) {
                postings.for_each(e.2, &mut *f);
            }
        }
    }

    fn finish(&mut self, arena: &Arena) {
        self.lens.shrink_to_fit();
        let hasher = &self.hasher;
        self.filter = Filter::build(
            self.table.len(),
            self.table
                .iter()
                .map(|&(o, l, _)| hasher.hash_one(arena.get((o, l)))),
        );
    }

    fn heap_bytes(&self) -> usize {
        self.table.capacity() * 13 + self.lens.capacity() * 4 + self.filter.heap_bytes()
    }
}

/// `LIKE` and `MATCHES` operands of one slot. An operand anchored at the start of the value (`'lit%'`,
/// `'^lit…'`) is found through a table of prefixes, one anchored at the end (`'%lit'`, `'…lit$'`) through
/// a table of suffixes; the others behind an Aho-Corasick automaton of literal atoms, or tried on every
/// value when they have no literal at all.
#[derive(Debug, Default)]
pub(crate) struct TextIndex {
    entries: Vec<TextEntry>,
    /// The MATCHES regexes, each compiled on first use (`None`: it does not compile, never matches).
    regexes: Vec<OnceLock<Option<regex::Regex>>>,
    prefix: Anchored,
    suffix: Anchored,
    /// Entry lists of the anchored literals.
    postings: Postings,
    atom_ids: HashMap<String, u32>,
    atom_entries: Vec<Vec<u32>>,
    always: Vec<u32>,
    ac: Option<AhoCorasick>,
}

pub(crate) fn nfc(s: &str) -> Cow<'_, str> {
    if s.is_ascii() || is_nfc_quick(s.chars()) == IsNormalized::Yes {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.nfc().collect())
    }
}

/// The longest run of literal characters of a LIKE pattern.
fn like_atom(p: &str) -> &str {
    p.split(['%', '_']).max_by_key(|s| s.len()).unwrap_or("")
}

/// Where a text operand is looked for.
#[derive(Debug, PartialEq, Eq)]
enum Atoms {
    /// Every matching value starts with one of these.
    Prefix(Vec<String>),
    /// Every matching value ends with one of these.
    Suffix(Vec<String>),
    /// Every matching value contains one of these.
    Inside(Vec<String>),
    /// No literal: try every value.
    None,
}

/// The literal a LIKE pattern anchors: its leading or trailing run of literal characters (the longer),
/// else its longest inner run.
fn like_atoms(p: &str) -> Atoms {
    let lead = p.split(['%', '_']).next().unwrap_or("");
    let trail = p.rsplit(['%', '_']).next().unwrap_or("");
    if !lead.is_empty() && lead.len() >= trail.len() {
        Atoms::Prefix(vec![lead.to_string()])
    } else if !trail.is_empty() {
        Atoms::Suffix(vec![trail.to_string()])
    } else {
        match like_atom(p) {
            "" => Atoms::None,
            a => Atoms::Inside(vec![a.to_string()]),
        }
    }
}

/// Literal atoms of a regex: prefixes when every match starts at the start of the value (`^`), suffixes
/// when every match ends at its end (`$`), else prefix or suffix literals one of which every match contains.
fn regex_atoms(src: &str) -> Atoms {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    use regex_syntax::hir::Look;
    let Ok(hir) = regex_syntax::ParserBuilder::new()
        .dot_matches_new_line(true)
        .build()
        .parse(src)
    else {
        return Atoms::None;
    };
    let extract = |kind: ExtractKind| -> Option<Vec<String>> {
        let mut ex = Extractor::new();
        ex.kind(kind);
        let seq = ex.extract(&hir);
        let lits = seq.literals()?;
        if lits.is_empty() || lits.iter().any(|l| l.as_bytes().is_empty()) {
            return None;
        }
        lits.iter()
            .map(|l| String::from_utf8(l.as_bytes().to_vec()).ok())
            .collect()
    };
    let props = hir.properties();
    if props.look_set_prefix().contains(Look::Start) {
        if let Some(a) = extract(ExtractKind::Prefix) {
            return Atoms::Prefix(a);
        }
    }
    if props.look_set_suffix().contains(Look::End) {
        if let Some(a) = extract(ExtractKind::Suffix) {
            return Atoms::Suffix(a);
        }
    }
    let mut best: Option<Vec<String>> = None;
    for kind in [ExtractKind::Prefix, ExtractKind::Suffix] {
        let Some(atoms) = extract(kind) else { continue };
        let score = |a: &Vec<String>| a.iter().map(String::len).min().unwrap_or(0);
        if best.as_ref().is_none_or(|b| score(&atoms) > score(b)) {
            best = Some(atoms);
        }
    }
    best.map_or(Atoms::None, Atoms::Inside)
}

impl TextIndex {
    fn add_atom(&mut self, atom: &str, entry: u32) {
        let id = match self.atom_ids.get(atom) {
            Some(&id) => id,
            None => {
                let id = self.atom_entries.len() as u32;
                self.atom_ids.insert(atom.to_string(), id);
                self.atom_entries.push(Vec::new());
                id
            }
        };
        let v = &mut self.atom_entries[id as usize];
        if v.last() != Some(&entry) {
            v.push(entry);
        }
    }

    /// Files entry `entry` (whose text is at `text` in the arena) under its atoms.
    fn file(&mut self, arena: &mut Arena, text: (u32, u32), atoms: Atoms, entry: u32) {
        match atoms {
            Atoms::Prefix(lits) => {
                for lit in lits {
                    // A LIKE prefix is the start of the pattern text, already in the arena.
                    let span = if arena.get(text).starts_with(lit.as_bytes()) {
                        (text.0, lit.len() as u32)
                    } else {
                        arena.push(lit.as_bytes())
                    };
                    self.prefix.add(arena, &mut self.postings, span, entry);
                }
            }
            Atoms::Suffix(lits) => {
                for lit in lits {
                    let span = if arena.get(text).ends_with(lit.as_bytes()) {
                        (text.0 + text.1 - lit.len() as u32, lit.len() as u32)
                    } else {
                        arena.push(lit.as_bytes())
                    };
                    self.suffix.add(arena, &mut self.postings, span, entry);
                }
            }
            Atoms::Inside(lits) => {
                for a in lits {
                    self.add_atom(&a, entry);
                }
            }
            Atoms::None => self.always.push(entry),
        }
    }

    pub(crate) fn add_like(&mut self, arena: &mut Arena, pattern: &str, ind: u32) {
        let p = nfc(pattern);
        let entry = self.entries.len() as u32;
        let text = arena.push(p.as_bytes());
        self.entries.push(TextEntry {
            ind,
            text,
            regex: NOT_REGEX,
        });
        self.file(arena, text, like_atoms(&p), entry);
    }

    pub(crate) fn add_regex(&mut self, arena: &mut Arena, src: &str, ind: u32) {
        let p = nfc(src);
        let entry = self.entries.len() as u32;
        let text = arena.push(p.as_bytes());
        self.entries.push(TextEntry {
            ind,
            text,
            regex: self.regexes.len() as u32,
        });
        self.regexes.push(OnceLock::new());
        self.file(arena, text, regex_atoms(&p), entry);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn finish(&mut self, arena: &Arena) -> Result<(), aho_corasick::BuildError> {
        let mut atoms: Vec<(&String, &u32)> = self.atom_ids.iter().collect();
        atoms.sort_by_key(|(_, id)| **id);
        let pats: Vec<&str> = atoms.iter().map(|(a, _)| a.as_str()).collect();
        if !pats.is_empty() {
            self.ac = Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .kind(Some(AhoCorasickKind::ContiguousNFA))
                    .build(&pats)?,
            );
        }
        self.atom_ids = HashMap::new();
        self.atom_entries.shrink_to_fit();
        self.entries.shrink_to_fit();
        self.regexes.shrink_to_fit();
        self.prefix.finish(arena);
        self.suffix.finish(arena);
        Ok(())
    }

    /// Calls `f` for every indicator whose LIKE/MATCHES operand matches `value`; `scratch` is reused.
    pub(crate) fn probe(
        &self,
        arena: &Arena,
        value: &str,
        scratch: &mut Vec<u32>,
        mut f: impl FnMut(u32),
    ) {
        let text = nfc(value);
        scratch.clear();
        scratch.extend_from_slice(&self.always);
        let mut add = |e: u32| scratch.push(e);
        if !self.prefix.is_empty() {
            self.prefix
                .probe(arena, &self.postings, text.as_bytes(), false, &mut add);
        }
        if !self.suffix.is_empty() {
            self.suffix
                .probe(arena, &self.postings, text.as_bytes(), true, &mut add);
        }
        if let Some(ac) = &self.ac {
            for m in ac.find_overlapping_iter(text.as_bytes()) {
                scratch.extend_from_slice(&self.atom_entries[m.pattern().as_usize()]);
            }
        }
        if scratch.is_empty() {
            return;
        }
        scratch.sort_unstable();
        scratch.dedup();
        for &e in scratch.iter() {
            let entry = &self.entries[e as usize];
            let pat = arena.str(entry.text);
            let ok = match self.regexes.get(entry.regex as usize) {
                None => like_match(pat, &text),
                Some(cell) => cell
                    .get_or_init(|| {
                        regex::RegexBuilder::new(pat)
                            .dot_matches_new_line(true)
                            .size_limit(1 << 22)
                            .build()
                            .ok()
                    })
                    .as_ref()
                    .is_some_and(|re| re.is_match(&text)),
            };
            if ok {
                f(entry.ind);
            }
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<TextEntry>()
            + self.regexes.capacity() * std::mem::size_of::<OnceLock<Option<regex::Regex>>>()
            + self.atom_entries.capacity() * 24
            + self
                .atom_entries
                .iter()
                .map(|v| v.capacity() * 4)
                .sum::<usize>()
            + self.prefix.heap_bytes()
            + self.suffix.heap_bytes()
            + self.postings.heap_bytes()
            + self.ac.as_ref().map_or(0, AhoCorasick::memory_usage)
    }
}

/// `LIKE`: `%` any run of characters (newlines too), `_` exactly one, the whole value must match.
pub(crate) fn like_match(pat: &str, text: &str) -> bool {
    let pat: Vec<char> = pat.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some('%') => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some('_') => {
                p += 1;
                t += 1;
                continue;
            }
            Some(c) if *c == text[t] => {
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, st)) => {
                star = Some((sp, st + 1));
                p = sp + 1;
                t = st + 1;
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|c| *c == '%')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like() {
        assert!(like_match("a%c", "abbbc"));
        assert!(like_match("a%c", "a\nc"));
        assert!(!like_match("a_c", "ac"));
        assert!(like_match("%ab%abc", "ababcabc"));
        assert!(like_match("_", "é"));
        assert!(!like_match("abc", "xabc"));
        assert_eq!(like_atom("%.evil.%_x"), ".evil.");
    }

    #[test]
    fn regex_atoms_found() {
        let Atoms::Prefix(a) = regex_atoms("^https?://evil[0-9]+\\.example/") else {
            panic!("anchored regex without prefixes");
        };
        assert_eq!(a.len(), 20, "{a:?}");
        assert!(
            a.iter()
                .all(|s| s.starts_with("http://evil") || s.starts_with("https://evil")),
            "{a:?}"
        );
        assert_eq!(
            regex_atoms("[a-z]*\\.exe$"),
            Atoms::Suffix(vec![".exe".into()])
        );
        assert_eq!(regex_atoms(".*"), Atoms::None);
        assert_eq!(regex_atoms("^.*x"), Atoms::Inside(vec!["x".into()]));
        let Atoms::Inside(a) = regex_atoms("(foo|bar)baz") else {
            panic!("no inner atoms");
        };
        assert_eq!(a.len(), 2, "{a:?}");
        // `^` in one branch only does not anchor the whole regex.
        assert!(matches!(regex_atoms("^ab|cd"), Atoms::Inside(_)));
    }

    #[test]
    fn like_atoms_anchor() {
        assert_eq!(
            like_atoms("http://x/%"),
            Atoms::Prefix(vec!["http://x/".into()])
        );
        assert_eq!(
            like_atoms("%.evil.example"),
            Atoms::Suffix(vec![".evil.example".into()])
        );
        assert_eq!(
            like_atoms("a%.evil.example"),
            Atoms::Suffix(vec![".evil.example".into()])
        );
        assert_eq!(like_atoms("abc"), Atoms::Prefix(vec!["abc".into()]));
        assert_eq!(
            like_atoms("%middle_x%"),
            Atoms::Inside(vec!["middle".into()])
        );
        assert_eq!(like_atoms("%_%"), Atoms::None);
    }

    #[test]
    fn filter_keeps_every_key_and_turns_most_others_away() {
        let f = Filter::build(10_000, (0..10_000u64).map(mix64));
        assert!((0..10_000u64).all(|k| f.may_contain(mix64(k))));
        let passed = (10_000..110_000u64)
            .filter(|&k| f.may_contain(mix64(k)))
            .count();
        // Two bits of one word out of 12 bits per key: about 4 % of absent keys pass.
        assert!(passed < 8_000, "{passed} of 100000 absent keys passed");
        assert!(passed > 0, "a 12-bit-per-key filter cannot be exact");
        assert!(Filter::default().may_contain(1));
        assert!(Filter::build(0, std::iter::empty()).may_contain(1));
    }

    #[test]
    fn eq_index_with_its_filter_built_finds_every_value() {
        let mut arena = Arena::default();
        let mut postings = Postings::default();
        let mut e = EqIndex::default();
        for i in 0..5_000u32 {
            e.insert(&mut arena, &mut postings, &format!("v{i}"), i);
        }
        e.finish(&arena);
        for i in 0..5_000u32 {
            assert_eq!(e.get(&arena, &format!("v{i}")), Some(i));
        }
        assert!((5_000..10_000).all(|i| e.get(&arena, &format!("v{i}")).is_none()));
    }

    #[test]
    fn text_index_finds_anchored_and_inner_operands() {
        let mut arena = Arena::default();
        let mut t = TextIndex::default();
        t.add_like(&mut arena, "http://a.example/%", 1);
        t.add_like(&mut arena, "%.b.example", 2);
        t.add_like(&mut arena, "%evil%", 3);
        t.add_like(&mut arena, "%", 4);
        t.add_regex(&mut arena, "^https?://c\\.example/[0-9]+$", 5);
        t.add_regex(&mut arena, "[0-9]\\.exe$", 6);
        t.add_like(&mut arena, "http://a.example/x", 7);
        t.add_like(&mut arena, "é%", 8);
        t.finish(&arena).unwrap();
        let probe = |v: &str| {
            let mut out = vec![];
            t.probe(&arena, v, &mut Vec::new(), |i| out.push(i));
            out.sort();
            out
        };
        assert_eq!(probe("http://a.example/x"), vec![1, 4, 7]);
        assert_eq!(probe("http://a.example/evil"), vec![1, 3, 4]);
        assert_eq!(probe("x.b.example"), vec![2, 4]);
        assert_eq!(probe(".b.example.org"), vec![4]);
        assert_eq!(probe("https://c.example/12"), vec![4, 5]);
        assert_eq!(probe("https://c.example/12x"), vec![4]);
        assert_eq!(probe("xhttps://c.example/12"), vec![4]);
        assert_eq!(probe("setup1.exe"), vec![4, 6]);
        assert_eq!(probe("e\u{301}t\u{e9}"), vec![4, 8]);
        assert_eq!(probe(""), vec![4]);
    }

    #[test]
    fn fast_dotted_quad_agrees_with_the_evaluator() {
        for v in [
            "10.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "1.2.3.4/24",
            "01.2.3.4",
            "1.2.3.04",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.",
            "1.2.3.4 ",
            "1..3.4",
            "1234.1.1.1",
            "::1",
            "2001:db8::1/64",
            "::ffff:1.2.3.4",
            "",
            "a.b.c.d",
            "1.2.3.4x",
            "+1.2.3.4",
        ] {
            let fast = parse_net(v).map(|n| (n.v6, n.addr, n.prefix));
            let slow = Net::parse(v).map(|n| (n.v6, n.addr, n.prefix));
            assert_eq!(fast, slow, "{v:?}");
        }
    }

    /// The indicators `n` finds for `v`, sorted.
    fn probe_sorted(n: &NetIndex, postings: &Postings, v: &str) -> Vec<u32> {
        let mut out = vec![];
        n.probe(postings, v, |i| out.push(i));
        out.sort();
        out
    }

    #[test]
    fn nets() {
        let mut postings = Postings::default();
        let mut n = NetIndex::default();
        n.add_subset(&mut postings, Net::parse("10.0.0.0/8").unwrap(), 1);
        n.add_subset(&mut postings, Net::parse("10.1.0.0/16").unwrap(), 2);
        n.add_subset(&mut postings, Net::parse("2001:db8::/32").unwrap(), 3);
        n.add_superset(Net::parse("10.1.2.3").unwrap(), 4);
        n.add_superset(Net::parse("10.1.2.0/24").unwrap(), 5);
        n.finish();
        let probe = |v: &str| probe_sorted(&n, &postings, v);
        assert_eq!(probe("10.1.2.3"), vec![1, 2, 4]);
        assert_eq!(probe("10.1.0.0/16"), vec![1, 2, 4, 5]);
        assert_eq!(probe("10.0.0.0/7"), vec![4, 5]);
        assert_eq!(probe("11.0.0.0/8"), Vec::<u32>::new());
        assert_eq!(probe("2001:db8::1"), vec![3]);
        assert_eq!(probe("nonsense"), Vec::<u32>::new());
    }

    #[test]
    fn nets_in_more_tables_than_the_first_pass_marks() {
        // One table per (version, prefix length): 128 IPv6 and 32 IPv4 tables, more than the 64 that
        // `NetIndex::prepare` marks; the later ones are looked at in the second pass.
        let mut postings = Postings::default();
        let mut n = NetIndex::default();
        for q in 1..=128u32 {
            let net = Net::parse(&format!("2001:db8::1/{q}")).unwrap();
            n.add_subset(&mut postings, net, q);
        }
        for q in 1..=32u32 {
            let net = Net::parse(&format!("10.1.2.3/{q}")).unwrap();
            n.add_subset(&mut postings, net, 1000 + q);
        }
        n.finish();
        let probe = |v: &str| probe_sorted(&n, &postings, v);
        assert_eq!(probe("2001:db8::1"), (1..=128).collect::<Vec<_>>());
        assert_eq!(probe("2001:db8::/64"), (1..=64).collect::<Vec<_>>());
        assert_eq!(probe("10.1.2.3"), (1001..=1032).collect::<Vec<_>>());
        assert_eq!(probe("10.1.2.4"), (1001..=1029).collect::<Vec<_>>());
    }

    #[test]
    fn eq_postings() {
        let mut arena = Arena::default();
        let mut postings = Postings::default();
        let mut e = EqIndex::default();
        e.insert(&mut arena, &mut postings, "a", 1);
        e.insert(&mut arena, &mut postings, "a", 2);
        e.insert(&mut arena, &mut postings, "b", 3);
        let get = |v: &str| {
            let mut out = vec![];
            if let Some(p) = e.get(&arena, v) {
                postings.for_each(p, |i| out.push(i));
            }
            out
        };
        assert_eq!(get("a"), vec![1, 2]);
        assert_eq!(get("b"), vec![3]);
        assert!(get("c").is_empty());
    }
}
