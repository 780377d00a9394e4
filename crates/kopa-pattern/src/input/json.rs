//! JSON-lines logs (Elastic Common Schema by default) read through a [`Mapping`].
//!
//! Each line is scanned once by a small hand-written JSON scanner that follows nested objects and dotted
//! keys alike (`{"source":{"ip":…}}` and `{"source.ip":…}` are the same field), decodes string escapes,
//! descends only into objects that can hold a mapped field, and copies out only mapped values: no JSON
//! tree is built per line. Arrays of scalars under a mapped field give one value per element.

use super::{byte_mask, BadRecord, Kind, LineFields, Mapping};
use hashbrown::HashMap;
use std::io::BufRead;

const MAX_DEPTH: usize = 64;

/// Scans JSON lines for the fields of a mapping.
#[derive(Debug, Clone)]
pub struct JsonScanner {
    keys: KeyTable,
}

/// What the scanner knows about a dotted key: its mapping target and timestamp rank, and whether it is
/// the prefix of a wanted key (an object to descend into, whose keys are then looked up under `node`).
#[derive(Debug, Clone, Copy, Default)]
struct KeyInfo {
    want: Want,
    prefix: bool,
    node: u16,
}

/// The dotted keys of a mapping (and their prefixes) in a small open-addressing table. A key is looked up
/// under the object it appears in: `node` 0 is the record, and every prefix of a wanted key is a node, so
/// `{"dns":{"question.name":…}}` finds ("dns" node, "question.name") and `{"dns.question.name":…}`
/// finds (record, "dns.question.name"), both the same field. The hash reads the key's length and first
/// and last eight bytes where they lie in the line; the table is fixed once built and kept at most a
/// half full, so a lookup probes a bounded number of slots whatever the key. Each slot holds what a
/// lookup compares and returns, so a lookup reads one slot (two at a collision) and nothing else, except
/// for the rare wanted key longer than sixteen bytes, whose bytes are compared in `long`.
#[derive(Debug, Clone)]
struct KeyTable {
    slots: Vec<Slot>,
    /// `slots.len() == 1 << bits`
    bits: u32,
    long: Vec<Box<[u8]>>,
}

#[derive(Debug, Clone, Copy)]
#[repr(align(32))]
struct Slot {
    words: (u64, u64),
    /// `node << 16 | length` (the length capped at `u16::MAX - 1`); [`EMPTY`] for a free slot.
    tag: u32,
    /// For a key longer than sixteen bytes, its index in `KeyTable::long`.
    long: u16,
    info: KeyInfo,
}

const EMPTY: u32 = u32::MAX;

#[inline]
fn key_tag(node: u16, n: usize) -> u32 {
    (u32::from(node) << 16) | n.min(0xfffe) as u32
}

/// A key as two words: its first eight bytes (zero-padded) and its last eight (zero when shorter than
/// eight). For keys of at most 16 bytes the words and the length determine the key.
#[inline]
fn key_words(k: &[u8]) -> (u64, u64) {
    let n = k.len();
    if n >= 8 {
        return (word_at(k, 0), word_at(k, n - 8));
    }
    // Shorter keys: two overlapping loads, or-ed into place (the overlap holds the same bytes).
    let a = if n >= 4 {
        let lo = u32::from_le_bytes([k[0], k[1], k[2], k[3]]);
        let hi = u32::from_le_bytes([k[n - 4], k[n - 3], k[n - 2], k[n - 1]]);
        u64::from(lo) | (u64::from(hi) << (8 * (n - 4)))
    } else if n >= 2 {
        let lo = u16::from_le_bytes([k[0], k[1]]);
        let hi = u16::from_le_bytes([k[n - 2], k[n - 1]]);
        u64::from(lo) | (u64::from(hi) << (8 * (n - 2)))
    } else if n == 1 {
        u64::from(k[0])
    } else {
        0
    };
    (a, 0)
}

/// The eight bytes of `s` at `at` as a little-endian word (`at + 8 <= s.len()`).
#[inline]
fn word_at(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(w)
}

/// [`key_words`] of the key `s[ks..ke]`, read in place: the key is followed in the line by at least its
/// closing quote, a colon and a value, so the first word can nearly always be loaded whole and masked.
#[inline(always)]
fn key_words_in(s: &[u8], ks: usize, ke: usize) -> (u64, u64) {
    let n = ke - ks;
    if ks + 8 > s.len() {
        return key_words(&s[ks..ke]);
    }
    let first = word_at(s, ks);
    if n >= 8 {
        (first, word_at(s, ke - 8))
    } else {
        (first & ((1u64 << (8 * n)) - 1), 0)
    }
}

/// The slot of a key in a table of `1 << bits` slots: the words folded together and multiplied, the top
/// bits of the product taken (they depend on every input bit).
#[inline]
fn key_slot(node: u16, n: usize, (a, b): (u64, u64), bits: u32) -> usize {
    let h = (a ^ b.rotate_left(29) ^ ((n as u64) << 58) ^ (u64::from(node) << 40))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> (64 - bits)) as usize
}

impl KeyTable {
    fn build(keys: Vec<(u16, Box<[u8]>, KeyInfo)>) -> Self {
        // At most half full, in slots of 32 bytes: a mapping such as ECS (about 200 keys under their
        // objects) takes 16 KB, which stays in the first-level cache beside the line being read.
        let size = (keys.len() * 2).next_power_of_two().max(16);
        let bits = size.trailing_zeros();
        // Mappings are bounded (`mapping::MAX_FIELDS`, `MAX_SEGMENTS`), so that the long keys are
        // far fewer than a u16 counts.
        debug_assert!(keys.iter().filter(|k| k.1.len() > 16).count() < usize::from(u16::MAX));
        let free = Slot {
            words: (0, 0),
            tag: EMPTY,
            long: 0,
            info: KeyInfo::default(),
        };
        let mut slots = vec![free; size];
        let mut long = Vec::new();
        for (node, key, info) in keys {
            let words = key_words(&key);
            let mut i = key_slot(node, key.len(), words, bits);
            while slots[i].tag != EMPTY {
                i = (i + 1) & (size - 1);
            }
            slots[i] = Slot {
                words,
                tag: key_tag(node, key.len()),
                long: long.len() as u16,
                info,
            };
            if key.len() > 16 {
                long.push(key);
            }
        }
        KeyTable { slots, bits, long }
    }

    /// Looks up the key `s[ks..ke]` (as it lies in the line, with no escapes) under `node`.
    #[inline(always)]
    fn get_in(&self, node: u16, s: &[u8], ks: usize, ke: usize) -> KeyInfo {
        self.find(node, &s[ks..ke], key_words_in(s, ks, ke))
    }

    /// Looks up a key held on its own (an unescaped copy).
    fn get(&self, node: u16, k: &[u8]) -> KeyInfo {
        self.find(node, k, key_words(k))
    }

    #[inline(always)]
    fn find(&self, node: u16, k: &[u8], words: (u64, u64)) -> KeyInfo {
        let mask = self.slots.len() - 1;
        let tag = key_tag(node, k.len());
        let mut i = key_slot(node, k.len(), words, self.bits);
        loop {
            let e = &self.slots[i];
            if e.tag == tag
                && e.words == words
                && (k.len() <= 16 || &self.long[e.long as usize][..] == k)
            {
                return e.info;
            }
            if e.tag == EMPTY {
                return KeyInfo::default();
            }
            i = (i + 1) & mask;
        }
    }
}

/// A line that is not a JSON object: why, and at which byte column (1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct JsonError {
    pub column: usize,
    pub message: &'static str,
}

impl JsonScanner {
    pub fn new(mapping: &Mapping) -> Self {
        // Every wanted dotted key and every prefix of one (at a dot), with what it means.
        let mut keys: HashMap<String, KeyInfo> = HashMap::new();
        let add_prefixes = |keys: &mut HashMap<String, KeyInfo>, k: &str| {
            for (i, b) in k.bytes().enumerate() {
                if b == b'.' {
                    keys.entry(k[..i].to_string()).or_default().prefix = true;
                }
            }
        };
        for (i, t) in mapping.targets.iter().enumerate() {
            keys.entry(t.field.clone()).or_default().want.target = Some(i as u16);
            add_prefixes(&mut keys, &t.field);
        }
        for (i, k) in mapping.timestamp.iter().enumerate() {
            let w = &mut keys.entry(k.clone()).or_default().want;
            if w.time.is_none() {
                w.time = Some(i.min(250) as u8);
            }
            add_prefixes(&mut keys, k);
        }
        // Nodes: the record (0) and each prefix.
        let mut names: Vec<&String> = keys
            .iter()
            .filter(|(_, v)| v.prefix)
            .map(|(k, _)| k)
            .collect();
        names.sort();
        let node_of: HashMap<String, u16> = names
            .iter()
            .enumerate()
            .map(|(i, k)| ((*k).clone(), i as u16 + 1))
            .collect();
        // Each key is entered under the record and under each of its prefixes, with the rest of the key.
        let mut entries = Vec::new();
        for (k, info) in &keys {
            let mut info = *info;
            info.node = node_of.get(k).copied().unwrap_or(0);
            entries.push((0u16, k.as_bytes().into(), info));
            for (i, b) in k.bytes().enumerate() {
                if b == b'.' {
                    if let Some(&node) = node_of.get(&k[..i]) {
                        entries.push((node, k.as_bytes()[i + 1..].into(), info));
                    }
                }
            }
        }
        JsonScanner {
            keys: KeyTable::build(entries),
        }
    }

    /// Scans one line into `out` (cleared first). Returns `Ok(false)` for a blank line.
    pub fn scan(&self, line: &[u8], out: &mut LineFields) -> Result<bool, JsonError> {
        out.clear();
        if self.scan_compact(line, out).is_some() {
            return Ok(true);
        }
        self.scan_general(line, out)
    }

    /// The fast path of [`JsonScanner::scan`], for a record written as logs are: compact JSON (no
    /// whitespace between tokens), no escapes in keys or wanted strings, no array under a wanted key.
    /// One loop with the position in a local and the open objects on a small stack, instead of the
    /// general scanner's recursion. `None`: the line is not of that form (or is malformed); `out` may
    /// then hold part of the line and the general scanner reads it again from the start, so that
    /// every line this path accepts gives exactly what the general scanner gives.
    fn scan_compact(&self, s: &[u8], out: &mut LineFields) -> Option<()> {
        if s.first() != Some(&b'{') {
            return None;
        }
        let keys = &self.keys;
        // One check of the whole line (fast for ASCII) lets each wanted value be taken as a slice of it.
        let line = std::str::from_utf8(s).ok()?;
        // The nodes of the open objects that are being read (skipped ones are not pushed).
        let mut nodes = [0u16; MAX_DEPTH];
        let mut depth = 0usize;
        let mut node = 0u16;
        let mut i = 1;
        if *s.get(i)? == b'}' {
            i += 1;
            return only_ws(&s[i..]).then_some(());
        }
        loop {
            // A key.
            if *s.get(i)? != b'"' {
                return None;
            }
            let ks = i + 1;
            let (ke, esc) = string_end(s, ks)?;
            if esc || *s.get(ke + 1)? != b':' {
                return None;
            }
            let info = keys.get_in(node, s, ks, ke);
            i = ke + 2;
            let want = info.want;
            // Its value.
            match *s.get(i)? {
                b'"' => {
                    let (ve, esc) = string_end(s, i + 1)?;
                    if want.any() {
                        if esc {
                            return None;
                        }
                        emit_to(out, want, Kind::Str, line.get(i + 1..ve)?);
                    }
                    i = ve + 1;
                }
                b'{' => {
                    if info.prefix {
                        if depth + 1 >= MAX_DEPTH {
                            return None;
                        }
                        i += 1;
                        if *s.get(i)? != b'}' {
                            nodes[depth] = node;
                            depth += 1;
                            node = info.node;
                            continue;
                        }
                        i += 1;
                    } else {
                        i = skip_container_at(s, i, depth).ok()?;
                    }
                }
                b'[' => {
                    if want.any() || info.prefix {
                        return None;
                    }
                    i = skip_container_at(s, i, depth).ok()?;
                }
                b'-' | b'0'..=b'9' => {
                    let start = i;
                    let mut float = false;
                    while let Some(&b) = s.get(i) {
                        match b {
                            b'0'..=b'9' | b'-' | b'+' => {}
                            b'.' | b'e' | b'E' => float = true,
                            _ => break,
                        }
                        i += 1;
                    }
                    if &s[start..i] == b"-" {
                        return None;
                    }
                    if want.any() {
                        let kind = if float { Kind::Float } else { Kind::Int };
                        emit_to(out, want, kind, line.get(start..i)?);
                    }
                }
                b't' | b'f' | b'n' => {
                    let word: &[u8] = match s[i] {
                        b't' => b"true",
                        b'f' => b"false",
                        _ => b"null",
                    };
                    if !s[i..].starts_with(word) {
                        return None;
                    }
                    if want.any() && word != b"null" {
                        emit_to(out, want, Kind::Bool, line.get(i..i + word.len())?);
                    }
                    i += word.len();
                }
                _ => return None,
            }
            // What follows the value: the next key, or the end of one or more objects.
            loop {
                match *s.get(i)? {
                    b',' => {
                        i += 1;
                        break;
                    }
                    b'}' => {
                        i += 1;
                        if depth == 0 {
                            return only_ws(&s[i..]).then_some(());
                        }
                        depth -= 1;
                        node = nodes[depth];
                    }
                    _ => return None,
                }
            }
        }
    }

    /// The general scanner: any JSON whitespace, escapes, arrays; the error of a malformed line.
    fn scan_general(&self, line: &[u8], out: &mut LineFields) -> Result<bool, JsonError> {
        out.clear();
        let mut scratch = std::mem::take(&mut out.scratch);
        let mut c = Cursor {
            s: line,
            // One check of the whole line (fast for ASCII) lets each value be taken as a slice of it;
            // a line that is not UTF-8 throughout checks each value it gives instead.
            text: std::str::from_utf8(line).ok(),
            i: 0,
            sc: self,
            scratch: &mut scratch,
            out,
            error: None,
        };
        c.ws();
        let r = if c.i == c.s.len() {
            Ok(false)
        } else if c.peek() != Some(b'{') {
            Err(c.fail("a record must be a JSON object"))
        } else {
            c.object(0, 0).and_then(|()| {
                c.ws();
                if c.i == c.s.len() {
                    Ok(true)
                } else {
                    Err(c.fail("text after the JSON object"))
                }
            })
        };
        let error = c.error.take();
        out.scratch = scratch;
        match r {
            Ok(blank) => Ok(blank),
            Err(Fail) => {
                out.clear();
                Err(error.unwrap_or(JsonError {
                    column: line.len() + 1,
                    message: "malformed record",
                }))
            }
        }
    }
}

/// A scan that failed; what and where is kept in [`Cursor::error`], so that the scanner's functions
/// return a one-bit result in a register.
#[derive(Debug, Clone, Copy)]
struct Fail;

type Step<T = ()> = Result<T, Fail>;

struct Cursor<'a, 'b> {
    s: &'a [u8],
    /// The line itself when it is valid UTF-8.
    text: Option<&'a str>,
    i: usize,
    sc: &'b JsonScanner,
    scratch: &'b mut Vec<u8>,
    out: &'b mut LineFields,
    /// The first failure of the line.
    error: Option<JsonError>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Want {
    target: Option<u16>,
    time: Option<u8>,
}

impl Want {
    #[inline]
    fn any(self) -> bool {
        self.target.is_some() || self.time.is_some()
    }
}

impl Cursor<'_, '_> {
    /// Records why the line is bad, at the current column.
    #[cold]
    #[inline(never)]
    fn fail(&mut self, message: &'static str) -> Fail {
        self.error.get_or_insert(JsonError {
            column: self.i + 1,
            message,
        });
        Fail
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    /// Steps over a string whose opening quote is at the cursor; returns the end of its content (the
    /// closing quote's index) and whether it holds escapes. The content starts at the old cursor + 1.
    #[inline(always)]
    fn string(&mut self) -> Step<(usize, bool)> {
        match string_end(self.s, self.i + 1) {
            Some((end, esc)) => {
                self.i = end + 1;
                Ok((end, esc))
            }
            None => {
                self.i = self.s.len();
                Err(self.fail("unterminated string"))
            }
        }
    }

    /// Decodes the escapes of `s[start..end]` into `scratch`.
    fn unescape(&mut self, start: usize, end: usize) -> Step {
        self.scratch.clear();
        let s = self.s;
        let mut i = start;
        while i < end {
            let b = s[i];
            if b != b'\\' {
                self.scratch.push(b);
                i += 1;
                continue;
            }
            let e = s.get(i + 1).copied().unwrap_or(0);
            i += 2;
            let ch = match e {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let Some(hi) = hex4(s, i, end) else {
                        return Err(self.fail("bad \\u escape"));
                    };
                    i += 4;
                    let cp = if (0xD800..0xDC00).contains(&hi) {
                        if s.get(i) == Some(&b'\\') && s.get(i + 1) == Some(&b'u') {
                            let Some(lo) =
                                hex4(s, i + 2, end).filter(|lo| (0xDC00..0xE000).contains(lo))
                            else {
                                return Err(self.fail("bad surrogate pair"));
                            };
                            i += 6;
                            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                        } else {
                            return Err(self.fail("lone surrogate"));
                        }
                    } else {
                        hi
                    };
                    match char::from_u32(cp) {
                        Some(c) => c,
                        None => return Err(self.fail("bad \\u escape")),
                    }
                }
                _ => return Err(self.fail("bad escape")),
            };
            let mut buf = [0u8; 4];
            self.scratch
                .extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        }
        Ok(())
    }

    fn emit(&mut self, want: Want, kind: Kind, start: usize, end: usize, esc: bool) -> Step {
        // Values start and end at ASCII bytes (quotes, digits, letters), so slicing a valid line there
        // is on character boundaries.
        let text: &str = if esc {
            self.unescape(start, end)?;
            match std::str::from_utf8(self.scratch) {
                Ok(t) => t,
                Err(_) => return Err(self.fail("invalid UTF-8")),
            }
        } else if let Some(v) = self.text.and_then(|t| t.get(start..end)) {
            v
        } else {
            match std::str::from_utf8(&self.s[start..end]) {
                Ok(t) => t,
                Err(_) => return Err(self.fail("invalid UTF-8")),
            }
        };
        if let Some(t) = want.target {
            self.out.push(t, kind, text);
        }
        if let Some(r) = want.time {
            self.out.offer_time(r, text);
        }
        Ok(())
    }

    /// The next byte that is not whitespace (the cursor moved onto it). Compact JSON, as logs are
    /// written, has none, so the first test nearly always answers.
    #[inline(always)]
    fn next_token(&mut self) -> Option<u8> {
        match self.s.get(self.i) {
            Some(&b) if b > b' ' => Some(b),
            _ => {
                self.ws();
                self.peek()
            }
        }
    }

    fn object(&mut self, depth: usize, node: u16) -> Step {
        if depth >= MAX_DEPTH {
            return Err(self.fail("nested too deeply"));
        }
        self.i += 1; // '{'
        if self.next_token() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            if self.next_token() != Some(b'"') {
                return Err(self.fail("expected a key"));
            }
            let ks = self.i + 1;
            let (ke, kesc) = self.string()?;
            let info = if kesc {
                self.unescape(ks, ke)?;
                self.sc.keys.get(node, self.scratch)
            } else {
                self.sc.keys.get_in(node, self.s, ks, ke)
            };
            if self.next_token() != Some(b':') {
                return Err(self.fail("expected ':'"));
            }
            self.i += 1;
            self.next_token();
            self.value(depth, info)?;
            match self.next_token() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.fail("expected ',' or '}'")),
            }
        }
    }

    fn value(&mut self, depth: usize, info: KeyInfo) -> Step {
        let want = info.want;
        match self.peek() {
            Some(b'"') => {
                let start = self.i + 1;
                let (end, esc) = self.string()?;
                if want.any() {
                    self.emit(want, Kind::Str, start, end, esc)?;
                }
                Ok(())
            }
            Some(b'{') => {
                if info.prefix {
                    self.object(depth + 1, info.node)
                } else {
                    self.skip_container(depth)
                }
            }
            Some(b'[') => {
                if depth >= MAX_DEPTH {
                    return Err(self.fail("nested too deeply"));
                }
                if !want.any() && !info.prefix {
                    return self.skip_container(depth);
                }
                self.i += 1;
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.value(depth + 1, info)?;
                    self.ws();
                    match self.peek() {
                        Some(b',') => {
                            self.i += 1;
                            self.ws();
                        }
                        Some(b']') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(self.fail("expected ',' or ']'")),
                    }
                }
            }
            Some(b't') => self.literal(b"true", want, Kind::Bool),
            Some(b'f') => self.literal(b"false", want, Kind::Bool),
            Some(b'n') => self.literal(b"null", Want::default(), Kind::Bool),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.i;
                let mut float = false;
                while let Some(&b) = self.s.get(self.i) {
                    match b {
                        b'0'..=b'9' | b'-' | b'+' => {}
                        b'.' | b'e' | b'E' => float = true,
                        _ => break,
                    }
                    self.i += 1;
                }
                if &self.s[start..self.i] == b"-" {
                    return Err(self.fail("bad number"));
                }
                if want.any() {
                    let kind = if float { Kind::Float } else { Kind::Int };
                    self.emit(want, kind, start, self.i, false)?;
                }
                Ok(())
            }
            _ => Err(self.fail("expected a value")),
        }
    }

    fn literal(&mut self, word: &[u8], want: Want, kind: Kind) -> Step {
        if self.s[self.i..].starts_with(word) {
            let start = self.i;
            self.i += word.len();
            if want.any() {
                self.emit(want, kind, start, self.i, false)?;
            }
            Ok(())
        } else {
            Err(self.fail("bad literal"))
        }
    }

    /// Skips an object or array without looking at its keys (strings are still stepped over whole).
    fn skip_container(&mut self, depth: usize) -> Step {
        match skip_container_at(self.s, self.i, depth) {
            Ok(end) => {
                self.i = end;
                Ok(())
            }
            Err((at, message)) => {
                self.i = at;
                Err(self.fail(message))
            }
        }
    }
}

/// The end of the string whose content starts at `from` (the index of its closing quote), and whether
/// it holds escapes. Eight bytes are tested at a time for a quote or a backslash. `None`: unterminated.
#[inline(always)]
fn string_end(s: &[u8], from: usize) -> Option<(usize, bool)> {
    let mut rest = s.get(from..)?;
    let mut esc = false;
    loop {
        let k = loop {
            match rest.split_first_chunk::<8>() {
                Some((w, tail)) => {
                    let m = quote_or_backslash(u64::from_le_bytes(*w));
                    if m != 0 {
                        break (m.trailing_zeros() / 8) as usize;
                    }
                    rest = tail;
                }
                None => break rest.iter().position(|&b| b == b'"' || b == b'\\')?,
            }
        };
        if rest[k] == b'"' {
            return Some((s.len() - rest.len() + k, esc));
        }
        esc = true;
        rest = rest.get(k + 2..)?;
    }
}

/// Skips the object or array opening at `s[i]` (inside `depth` open objects), for both scanners;
/// returns the index after it, or where and why the line is bad.
fn skip_container_at(s: &[u8], mut i: usize, depth: usize) -> Result<usize, (usize, &'static str)> {
    let mut level = 0usize;
    loop {
        match s.get(i) {
            None => return Err((i, "unterminated object or array")),
            Some(b'"') => match string_end(s, i + 1) {
                Some((end, _)) => {
                    i = end + 1;
                    continue;
                }
                None => return Err((s.len(), "unterminated string")),
            },
            Some(b'{' | b'[') => {
                level += 1;
                if depth + level > MAX_DEPTH {
                    return Err((i, "nested too deeply"));
                }
            }
            Some(b'}' | b']') => {
                level -= 1;
                if level == 0 {
                    return Ok(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
}

/// Whether `s` holds nothing but the whitespace JSON allows.
fn only_ws(s: &[u8]) -> bool {
    s.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// Hands a value to the record: as a mapped field, as a time, or both.
#[inline]
fn emit_to(out: &mut LineFields, want: Want, kind: Kind, text: &str) {
    if let Some(t) = want.target {
        out.push(t, kind, text);
    }
    if let Some(r) = want.time {
        out.offer_time(r, text);
    }
}

/// A word with the high bit set in the lowest byte of `w` that is a quote or a backslash (higher bits may
/// be set spuriously; only the lowest one counts).
#[inline]
fn quote_or_backslash(w: u64) -> u64 {
    byte_mask(w, b'"') | byte_mask(w, b'\\')
}

fn hex4(s: &[u8], i: usize, end: usize) -> Option<u32> {
    if i + 4 > end {
        return None;
    }
    let t = std::str::from_utf8(&s[i..i + 4]).ok()?;
    u32::from_str_radix(t, 16).ok()
}

/// Reads JSON lines from `r`, calling `f(line_number, fields)` for each record and `bad` for each
/// malformed one. Blank lines are skipped. Returns the number of lines read.
///
/// Lines are scanned where they lie in the reader's buffer (give it a large one, e.g. a `BufReader` of a
/// megabyte); only a line that straddles two fills of the buffer is copied.
pub fn read_json_lines<R: BufRead>(
    mut r: R,
    scanner: &JsonScanner,
    mut f: impl FnMut(u64, &LineFields),
    mut bad: impl FnMut(BadRecord),
) -> std::io::Result<u64> {
    let mut carry: Vec<u8> = Vec::new();
    let mut fields = LineFields::new();
    let mut n = 0u64;
    let mut one = |line: &[u8], n: u64| match scanner.scan(line, &mut fields) {
        Ok(true) => f(n, &fields),
        Ok(false) => {}
        Err(e) => bad(BadRecord {
            line: n,
            message: e.to_string(),
        }),
    };
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            if !carry.is_empty() {
                n += 1;
                one(&carry, n);
            }
            return Ok(n);
        }
        let len = buf.len();
        let mut pos = 0;
        if !carry.is_empty() {
            match memchr::memchr(b'\n', buf) {
                Some(k) => {
                    carry.extend_from_slice(&buf[..=k]);
                    n += 1;
                    one(&carry, n);
                    carry.clear();
                    pos = k + 1;
                }
                None => {
                    carry.extend_from_slice(buf);
                    r.consume(len);
                    continue;
                }
            }
        }
        let base = pos;
        for k in memchr::memchr_iter(b'\n', &buf[base..]) {
            let end = base + k + 1;
            n += 1;
            one(&buf[pos..end], n);
            pos = end;
        }
        carry.extend_from_slice(&buf[pos..]);
        r.consume(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(line: &str) -> Result<Vec<(String, String)>, JsonError> {
        let m = Mapping::ecs();
        let s = JsonScanner::new(&m);
        let mut lf = LineFields::new();
        s.scan(line.as_bytes(), &mut lf)?;
        let mut v: Vec<(String, String)> = lf
            .iter()
            .map(|(t, _, x)| (m.targets[t as usize].field.clone(), x.to_string()))
            .collect();
        if let Some(t) = lf.time_text() {
            v.push(("@time".into(), t.into()));
        }
        Ok(v)
    }

    #[test]
    fn nested_and_dotted_keys() {
        let v = scan(r#"{"@timestamp":"2024-01-01T00:00:00Z","source":{"ip":"10.0.0.1","port":5},"destination.ip":"::1","dns":{"question":{"name":"a.example","type":"A"}},"other":{"source":{"ip":"9.9.9.9"}},"x":[1,{"y":2}]}"#).unwrap();
        assert_eq!(
            v,
            vec![
                ("source.ip".into(), "10.0.0.1".into()),
                ("destination.ip".into(), "::1".into()),
                ("dns.question.name".into(), "a.example".into()),
                ("@time".into(), "2024-01-01T00:00:00Z".into()),
            ]
        );
    }

    #[test]
    fn partly_dotted_keys_and_escaped_keys() {
        for line in [
            r#"{"dns":{"question.name":"a.example"}}"#,
            r#"{"dns.question":{"name":"a.example"}}"#,
            r#"{"dns":{"question":{"name":"a.example"}}}"#,
            r#"{"dns.question.name":"a.example"}"#,
            r#"{"d\u006es":{"quest\u0069on":{"name":"a.example"}}}"#,
            r#"{"dns":[{"question":[{"name":"a.example"}]}]}"#,
        ] {
            assert_eq!(
                scan(line).unwrap(),
                vec![("dns.question.name".to_string(), "a.example".to_string())],
                "{line}"
            );
        }
        for line in [
            r#"{"question":{"name":"a.example"}}"#,
            r#"{"x":{"dns.question.name":"a.example"}}"#,
            r#"{"dns":{"dns.question.name":"a.example"}}"#,
            r#"{"dnsquestion.name":"a.example"}"#,
        ] {
            assert_eq!(scan(line).unwrap(), vec![], "{line}");
        }
    }

    #[test]
    fn log_lines_take_the_compact_path_and_unusual_ones_the_general() {
        let m = Mapping::ecs();
        let s = JsonScanner::new(&m);
        let mut lf = LineFields::new();
        for line in [
            r#"{"@timestamp":"2026-03-01T00:00:00.000Z","event":{"kind":"event"},"source":{"ip":"10.0.0.1","port":5},"x":[1,{"y":"a\"b"}],"ok":true,"n":null}"#,
            "{\"dns\":{\"question\":{\"name\":\"a.example\"}}}\r\n",
            "{}",
        ] {
            assert!(s.scan_compact(line.as_bytes(), &mut lf).is_some(), "{line}");
        }
        for line in [
            r#"{ "source":{"ip":"10.0.0.1"}}"#,
            r#"{"source":{"ip":"10.0.\u0030.1"}}"#,
            r#"{"so\u0075rce":{"ip":"10.0.0.1"}}"#,
            r#"{"related":{"ip":["1.1.1.1"]}}"#,
            r#"{"source":{"ip":"10.0.0.1"}} x"#,
            r#"{"source":{"ip":"10.0.0.1"}"#,
            "",
        ] {
            lf.clear();
            assert!(s.scan_compact(line.as_bytes(), &mut lf).is_none(), "{line}");
        }
    }

    #[test]
    fn escapes_arrays_numbers() {
        let v = scan(r#"{"url":{"full":"http://x.example/a\"b\u00e9\ud83d\ude00"},"related":{"ip":["1.1.1.1","2.2.2.2"]},"file":{"size":12}}"#).unwrap();
        assert_eq!(v[0].1, "http://x.example/a\"b\u{e9}\u{1F600}");
        assert_eq!(v[1], ("related.ip".into(), "1.1.1.1".into()));
        assert_eq!(v[2], ("related.ip".into(), "2.2.2.2".into()));
        assert_eq!(v[3], ("file.size".into(), "12".into()));
    }

    #[test]
    fn first_timestamp_field_wins() {
        let v = scan(
            r#"{"event":{"created":"2020-01-01T00:00:00Z"},"@timestamp":"2021-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(v, vec![("@time".into(), "2021-01-01T00:00:00Z".into())]);
    }

    #[test]
    fn malformed_lines() {
        for bad in [
            "{",
            "[1]",
            r#"{"a":}"#,
            r#"{"a":"x"} tail"#,
            r#"{"source":{"ip":"1.1.1.1"}"#,
            r#"{"url":{"full":"\uZZZZ"}}"#,
            r#"{"url":{"full":"\ud800"}}"#,
            r#"{"a" 1}"#,
            r#"{"skip":{"q":"unterminated}}"#,
        ] {
            assert!(scan(bad).is_err(), "{bad}");
        }
        let deep = format!("{}{}", "{\"a\":".repeat(100), "1");
        assert!(scan(&deep).is_err());
        assert_eq!(scan("   ").unwrap(), vec![]);
    }

    #[test]
    fn reader_counts_bad_lines() {
        let m = Mapping::ecs();
        let s = JsonScanner::new(&m);
        let text = "{\"source\":{\"ip\":\"1.2.3.4\"}}\nnot json\n\n{\"a\":1}\n{bad\n";
        let mut good = vec![];
        let mut bad = vec![];
        let n = read_json_lines(
            text.as_bytes(),
            &s,
            |line, f| good.push((line, f.len())),
            |b| bad.push(b.line),
        )
        .unwrap();
        assert_eq!(n, 5);
        assert_eq!(good, vec![(1, 1), (4, 0)]);
        assert_eq!(bad, vec![2, 5]);
    }

    #[test]
    fn lines_across_buffer_fills() {
        let m = Mapping::ecs();
        let s = JsonScanner::new(&m);
        let mut text = String::new();
        for i in 0..50 {
            text.push_str(&format!("{{\"source\":{{\"ip\":\"10.0.0.{i}\"}}}}\n"));
            if i % 7 == 0 {
                text.push_str("{broken\n");
            }
        }
        text.push_str("{\"url\":{\"full\":\"http://last.example/\"}}");
        let expected: Vec<String> = (0..50)
            .map(|i| format!("10.0.0.{i}"))
            .chain(["http://last.example/".to_string()])
            .collect();
        for cap in [1, 2, 3, 7, 16, 64, 4096] {
            let reader = std::io::BufReader::with_capacity(cap, text.as_bytes());
            let mut got = vec![];
            let mut bad = vec![];
            let n = read_json_lines(
                reader,
                &s,
                |line, f| {
                    got.push((
                        line,
                        f.iter().map(|(_, _, v)| v.to_string()).collect::<Vec<_>>(),
                    ))
                },
                |b| bad.push(b.line),
            )
            .unwrap();
            assert_eq!(n, 59, "buffer of {cap}");
            let values: Vec<String> = got.iter().flat_map(|(_, v)| v.clone()).collect();
            assert_eq!(values, expected, "buffer of {cap}");
            assert_eq!(bad, vec![2, 10, 18, 26, 34, 42, 50, 58], "buffer of {cap}");
            assert_eq!(got.last().map(|g| g.0), Some(59));
        }
    }
}

/// The scanner against a plain reference: the record parsed whole by serde_json and walked, a field's
/// name being the keys on its path joined with dots (so nested objects and dotted keys name the same
/// field), arrays passed through, and the first timestamp field of the best rank kept.
#[cfg(test)]
mod reference {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    fn walk(
        m: &Mapping,
        path: Option<&str>,
        v: &Value,
        out: &mut Vec<(u16, String)>,
        time: &mut Option<(usize, String)>,
    ) {
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    let p = match path {
                        None => k.clone(),
                        Some(path) => format!("{path}.{k}"),
                    };
                    walk(m, Some(&p), v, out, time);
                }
            }
            Value::Array(a) => {
                for v in a {
                    walk(m, path, v, out, time);
                }
            }
            Value::Null => {}
            scalar => {
                let text = match scalar {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let path = path.unwrap_or_default();
                if let Some(t) = m.targets.iter().position(|t| t.field == path) {
                    out.push((t as u16, text.clone()));
                }
                if let Some(r) = m.timestamp.iter().position(|k| k == path) {
                    if time.as_ref().is_none_or(|(best, _)| r < *best) {
                        *time = Some((r, text));
                    }
                }
            }
        }
    }

    /// Keys drawn from the ECS mapping's names, their segments and a few others, so that generated
    /// records hit mapped fields by nesting and by dotted keys alike.
    fn key() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "source",
            "ip",
            "source.ip",
            "destination",
            "destination.ip",
            "dns",
            "question",
            "name",
            "question.name",
            "dns.question.name",
            "url",
            "full",
            "url.full",
            "domain",
            "file",
            "hash",
            "sha256",
            "hash.sha256",
            "@timestamp",
            "event",
            "created",
            "event.created",
            "port",
            "host",
            "message",
            "related",
            "related.ip",
            "x",
            "",
            "é",
            "q\"k",
            "a\\b",
        ])
        .prop_map(str::to_string)
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            "[a-z0-9.:/é\"\\\\\u{1F600}-]{0,40}".prop_map(Value::String),
            any::<i64>().prop_map(Value::from),
            (-1000i32..1000, 1u8..99)
                .prop_map(|(a, b)| Value::from(format!("{a}.{b}").parse::<f64>().unwrap())),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..6).prop_map(|kv| {
                    // Unique keys: the reference (a JSON map) keeps one value per key.
                    let mut m = Map::new();
                    for (k, v) in kv {
                        m.entry(k).or_insert(v);
                    }
                    Value::Object(m)
                }),
            ]
        })
    }

    fn record() -> impl Strategy<Value = Value> {
        prop::collection::vec((key(), value()), 0..8).prop_map(|kv| {
            let mut m = Map::new();
            for (k, v) in kv {
                m.entry(k).or_insert(v);
            }
            Value::Object(m)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn scanner_finds_what_a_full_parse_finds(rec in record(), pretty in any::<bool>()) {
            let m = Mapping::ecs();
            let line = if pretty {
                serde_json::to_string_pretty(&rec).unwrap().replace('\n', " ")
            } else {
                serde_json::to_string(&rec).unwrap()
            };
            let mut want = Vec::new();
            let mut time = None;
            walk(&m, None, &rec, &mut want, &mut time);
            let s = JsonScanner::new(&m);
            let mut lf = LineFields::new();
            prop_assert_eq!(s.scan(line.as_bytes(), &mut lf), Ok(true), "{}", line);
            let got: Vec<(u16, String)> = lf.iter().map(|(t, _, v)| (t, v.to_string())).collect();
            prop_assert_eq!(got, want, "{}", line);
            prop_assert_eq!(lf.time_text().map(str::to_string), time.map(|t| t.1), "{}", line);
        }

        #[test]
        fn compact_path_gives_what_the_general_scanner_gives(rec in record(), pretty in any::<bool>(), cut in any::<prop::sample::Index>(), byte in any::<u8>(), change in 0u8..3) {
            let m = Mapping::ecs();
            let mut line = if pretty {
                serde_json::to_string_pretty(&rec).unwrap().replace('\n', " ")
            } else {
                serde_json::to_string(&rec).unwrap()
            }
            .into_bytes();
            let at = cut.index(line.len() + 1);
            match change {
                1 if at < line.len() => line[at] = byte,
                2 => line.truncate(at),
                _ => {}
            }
            let s = JsonScanner::new(&m);
            let mut fast = LineFields::new();
            let mut general = LineFields::new();
            let taken = s.scan_compact(&line, &mut fast).is_some();
            let r = s.scan_general(&line, &mut general);
            // A compact record with no escape and no array anywhere is always read by the fast path.
            if !pretty && change == 0 && !line.iter().any(|&b| b == b'\\' || b == b'[') {
                prop_assert!(taken, "{}", String::from_utf8_lossy(&line));
            }
            if taken {
                prop_assert_eq!(r.clone(), Ok(true), "{}", String::from_utf8_lossy(&line));
                let f: Vec<_> = fast.iter().map(|(t, k, v)| (t, k, v.to_string())).collect();
                let g: Vec<_> = general.iter().map(|(t, k, v)| (t, k, v.to_string())).collect();
                prop_assert_eq!(f, g, "{}", String::from_utf8_lossy(&line));
                prop_assert_eq!(fast.time_text(), general.time_text());
            }
            // `scan` is the two together.
            let mut both = LineFields::new();
            prop_assert_eq!(s.scan(&line, &mut both), r);
            let b: Vec<_> = both.iter().map(|(t, k, v)| (t, k, v.to_string())).collect();
            let g: Vec<_> = general.iter().map(|(t, k, v)| (t, k, v.to_string())).collect();
            prop_assert_eq!(b, g);
        }

        #[test]
        fn scanner_never_panics_on_cut_or_changed_lines(rec in record(), cut in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let m = Mapping::ecs();
            let mut line = serde_json::to_string(&rec).unwrap().into_bytes();
            let at = cut.index(line.len() + 1);
            if at < line.len() && byte % 2 == 0 {
                line[at] = byte;
            } else {
                line.truncate(at);
            }
            let s = JsonScanner::new(&m);
            let mut lf = LineFields::new();
            let ok = s.scan(&line, &mut lf).is_ok();
            // A failed line leaves no fields behind; a JSON parser agrees that a line it rejects is bad.
            if !ok {
                prop_assert!(lf.is_empty());
            }
            if serde_json::from_slice::<Value>(&line).map(|v| v.is_object()).unwrap_or(false) {
                prop_assert!(ok, "{}", String::from_utf8_lossy(&line));
            }
        }
    }
}
