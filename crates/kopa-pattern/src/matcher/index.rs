//! The indexes of the bulk matcher, one set per (SCO type, property path) "slot":
//! - [`EqIndex`]: a hash table over an arena of values, for `=` and `IN` with string literals;
//! - [`NetIndex`]: IPv4/IPv6 networks: one hash table per prefix length present for `ISSUBSET` (an
//!   address is looked up once per such length) and a sorted array for `ISSUPERSET` (a range query);
//! - [`TextIndex`]: an Aho-Corasick automaton over the literal atoms of `LIKE` patterns and of
//!   `MATCHES` regular expressions (their prefix literals, from `regex-syntax`), each candidate then
//!   checked exactly (the `LIKE` semantics of the evaluator, or the regex, compiled on first use).

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

/// Exact string values → postings.
#[derive(Debug, Default)]
pub(crate) struct EqIndex {
    table: HashTable<(u32, u32, u32)>,
    hasher: DefaultHashBuilder,
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

    #[inline]
    pub(crate) fn get(&self, arena: &Arena, value: &str) -> Option<u32> {
        if self.table.is_empty() {
            return None;
        }
        let h = self.hasher.hash_one(value.as_bytes());
        self.table
            .find(h, |&(o, l, _)| arena.get((o, l)) == value.as_bytes())
            .map(|e| e.2)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.table.capacity() * 13
    }
}

/// An IPv4 or IPv6 network as the evaluator reads it: an address with an optional `/prefix`.
pub(crate) use crate::eval::IpNet as Net;

/// `ISSUBSET` and `ISSUPERSET` operands of one slot.
#[derive(Debug, Default)]
pub(crate) struct NetIndex {
    /// (v6, prefix) → masked network → posting.
    subset: Vec<((bool, u8), HashMap<u128, u32>)>,
    /// (v6, address, prefix, indicator), sorted.
    superset: Vec<(bool, u128, u8, u32)>,
}

impl NetIndex {
    pub(crate) fn add_subset(&mut self, postings: &mut Postings, net: Net, ind: u32) {
        let key = (net.v6, net.prefix);
        let pos = match self.subset.iter().position(|(k, _)| *k == key) {
            Some(p) => p,
            None => {
                self.subset.push((key, HashMap::new()));
                self.subset.len() - 1
            }
        };
        let masked = net.addr & Net::mask_for(net.v6, net.prefix);
        match self.subset[pos].1.entry(masked) {
            hashbrown::hash_map::Entry::Occupied(mut e) => postings.add(e.get_mut(), ind),
            hashbrown::hash_map::Entry::Vacant(e) => {
                e.insert(ind);
            }
        }
    }

    pub(crate) fn add_superset(&mut self, net: Net, ind: u32) {
        self.superset.push((net.v6, net.addr, net.prefix, ind));
    }

    pub(crate) fn finish(&mut self) {
        self.superset.sort_unstable();
        for (_, m) in &mut self.subset {
            m.shrink_to_fit();
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.subset.is_empty() && self.superset.is_empty()
    }

    /// Calls `f` for every indicator whose network test holds for the value `v`.
    pub(crate) fn probe(&self, postings: &Postings, value: &str, mut f: impl FnMut(u32)) {
        let Some(v) = Net::parse(value) else {
            return;
        };
        for &((v6, q), ref m) in &self.subset {
            if v6 == v.v6 && v.prefix >= q {
                if let Some(&p) = m.get(&(v.addr & Net::mask_for(v6, q))) {
                    postings.for_each(p, &mut f);
                }
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
            .map(|(_, m)| m.capacity() * 21)
            .sum::<usize>()
            + self.superset.capacity() * 32
    }
}

/// One `LIKE` or `MATCHES` operand.
#[derive(Debug)]
pub(crate) struct TextEntry {
    pub(crate) ind: u32,
    /// The LIKE pattern or the regex source (NFC-normalised), in the arena.
    pub(crate) text: (u32, u32),
    /// For MATCHES: the regex, compiled on first use (`None`: it does not compile, never matches).
    pub(crate) regex: Option<OnceLock<Option<regex::Regex>>>,
}

/// `LIKE` and `MATCHES` operands of one slot, behind an Aho-Corasick automaton of literal atoms.
#[derive(Debug, Default)]
pub(crate) struct TextIndex {
    entries: Vec<TextEntry>,
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

/// Literal atoms one of which every match of the regex contains; `None` when there is no such set.
fn regex_atoms(src: &str) -> Option<Vec<String>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::ParserBuilder::new()
        .dot_matches_new_line(true)
        .build()
        .parse(src)
        .ok()?;
    let mut best: Option<Vec<String>> = None;
    for kind in [ExtractKind::Prefix, ExtractKind::Suffix] {
        let mut ex = Extractor::new();
        ex.kind(kind);
        let seq = ex.extract(&hir);
        let lits = seq.literals()?;
        if lits.is_empty() || lits.iter().any(|l| l.as_bytes().is_empty()) {
            continue;
        }
        let atoms: Option<Vec<String>> = lits
            .iter()
            .map(|l| String::from_utf8(l.as_bytes().to_vec()).ok())
            .collect();
        let Some(atoms) = atoms else { continue };
        let score = |a: &Vec<String>| a.iter().map(String::len).min().unwrap_or(0);
        if best.as_ref().is_none_or(|b| score(&atoms) > score(b)) {
            best = Some(atoms);
        }
    }
    best
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

    pub(crate) fn add_like(&mut self, arena: &mut Arena, pattern: &str, ind: u32) {
        let p = nfc(pattern);
        let entry = self.entries.len() as u32;
        self.entries.push(TextEntry {
            ind,
            text: arena.push(p.as_bytes()),
            regex: None,
        });
        let atom = like_atom(&p);
        if atom.is_empty() {
            self.always.push(entry);
        } else {
            self.add_atom(atom, entry);
        }
    }

    pub(crate) fn add_regex(&mut self, arena: &mut Arena, src: &str, ind: u32) {
        let p = nfc(src);
        let entry = self.entries.len() as u32;
        self.entries.push(TextEntry {
            ind,
            text: arena.push(p.as_bytes()),
            regex: Some(OnceLock::new()),
        });
        match regex_atoms(&p) {
            Some(atoms) => {
                for a in atoms {
                    self.add_atom(&a, entry);
                }
            }
            None => self.always.push(entry),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn finish(&mut self) -> Result<(), aho_corasick::BuildError> {
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
            let ok = match &entry.regex {
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
            + self.atom_entries.capacity() * 24
            + self
                .atom_entries
                .iter()
                .map(|v| v.capacity() * 4)
                .sum::<usize>()
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
        let a = regex_atoms("^https?://evil[0-9]+\\.example/").unwrap();
        assert!(a.iter().all(|s| s.contains("http")), "{a:?}");
        assert!(regex_atoms(".*").is_none());
        let a = regex_atoms("(foo|bar)baz").unwrap();
        assert_eq!(a.len(), 2, "{a:?}");
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
        let probe = |v: &str| {
            let mut out = vec![];
            n.probe(&postings, v, |i| out.push(i));
            out.sort();
            out
        };
        assert_eq!(probe("10.1.2.3"), vec![1, 2, 4]);
        assert_eq!(probe("10.1.0.0/16"), vec![1, 2, 4, 5]);
        assert_eq!(probe("10.0.0.0/7"), vec![4, 5]);
        assert_eq!(probe("11.0.0.0/8"), Vec::<u32>::new());
        assert_eq!(probe("2001:db8::1"), vec![3]);
        assert_eq!(probe("nonsense"), Vec::<u32>::new());
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
