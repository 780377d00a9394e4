//! Zeek TSV logs (conn, dns, http, files, ssl, …) read through their `#fields` header.
//!
//! The header lines (`#separator`, `#set_separator`, `#empty_field`, `#unset_field`, `#fields`,
//! `#types`) are honoured; unset (`-`) and empty (`(empty)`) values are skipped; `set[…]`/`vector[…]`
//! columns give one value per element. For http.log records that have `host` and `uri`, the reader adds
//! the field `kopa.url` = `http://HOST URI` so a mapping can map it to `url:value`.

use super::{BadRecord, Kind, LineFields, Mapping};
use std::io::BufRead;

struct Header {
    sep: Vec<u8>,
    set_sep: Vec<u8>,
    empty: Vec<u8>,
    unset: Vec<u8>,
    /// Per column: (mapping target, is a set/vector, time rank).
    columns: Vec<(Option<u16>, bool, Option<u8>)>,
    host: Option<usize>,
    uri: Option<usize>,
    url_target: Option<u16>,
    names: Vec<String>,
    types: Vec<String>,
}

fn unescape_sep(s: &[u8]) -> Vec<u8> {
    // "\x09" → tab
    if s.len() == 4 && s.starts_with(b"\\x") {
        if let Ok(v) = u8::from_str_radix(&String::from_utf8_lossy(&s[2..]), 16) {
            return vec![v];
        }
    }
    s.to_vec()
}

fn split<'a>(s: &'a [u8], sep: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        if sep.is_empty() {
            rest = None;
            return Some(r);
        }
        match memchr::memmem::find(r, sep) {
            Some(p) => {
                rest = Some(&r[p + sep.len()..]);
                Some(&r[..p])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

impl Header {
    fn new() -> Header {
        Header {
            sep: b"\t".to_vec(),
            set_sep: b",".to_vec(),
            empty: b"(empty)".to_vec(),
            unset: b"-".to_vec(),
            columns: Vec::new(),
            host: None,
            uri: None,
            url_target: None,
            names: Vec::new(),
            types: Vec::new(),
        }
    }

    fn resolve(&mut self, mapping: &Mapping) {
        self.columns = self
            .names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let is_set = self
                    .types
                    .get(i)
                    .is_some_and(|t| t.starts_with("set[") || t.starts_with("vector["));
                let rank = mapping
                    .timestamp
                    .iter()
                    .position(|t| t == n)
                    .map(|p| p.min(250) as u8);
                (mapping.target_of(n).map(|t| t as u16), is_set, rank)
            })
            .collect();
        self.host = self.names.iter().position(|n| n == "host");
        self.uri = self.names.iter().position(|n| n == "uri");
        self.url_target = mapping.target_of("kopa.url").map(|t| t as u16);
    }
}

/// Reads a Zeek TSV log, calling `f(line_number, fields)` per record and `bad` per malformed one.
/// Returns the number of lines read.
pub fn read_zeek<R: BufRead>(
    mut r: R,
    mapping: &Mapping,
    mut f: impl FnMut(u64, &LineFields),
    mut bad: impl FnMut(BadRecord),
) -> std::io::Result<u64> {
    let mut h = Header::new();
    let mut line = Vec::new();
    let mut n = 0u64;
    let mut fields = LineFields::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Ok(n);
        }
        n += 1;
        let mut l: &[u8] = &line;
        while let Some((b'\n' | b'\r', rest)) = l.split_last() {
            l = rest;
        }
        if l.is_empty() {
            continue;
        }
        if l[0] == b'#' {
            let (key, rest) = match memchr::memchr2(b' ', b'\t', l) {
                Some(p) => (&l[1..p], &l[p + 1..]),
                None => (&l[1..], &b""[..]),
            };
            match key {
                b"separator" => h.sep = unescape_sep(rest),
                b"set_separator" => h.set_sep = split(rest, &h.sep).next().unwrap_or(b",").to_vec(),
                b"empty_field" => h.empty = split(rest, &h.sep).next().unwrap_or(b"").to_vec(),
                b"unset_field" => h.unset = split(rest, &h.sep).next().unwrap_or(b"").to_vec(),
                b"fields" => {
                    h.names = split(rest, &h.sep)
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect();
                    h.resolve(mapping);
                }
                b"types" => {
                    h.types = split(rest, &h.sep)
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect();
                    h.resolve(mapping);
                }
                _ => {}
            }
            continue;
        }
        if h.names.is_empty() {
            bad(BadRecord {
                line: n,
                message: "record before the #fields header".into(),
            });
            continue;
        }
        let parts: Vec<&[u8]> = split(l, &h.sep).collect();
        if parts.len() != h.names.len() {
            bad(BadRecord {
                line: n,
                message: format!(
                    "{} columns where #fields names {}",
                    parts.len(),
                    h.names.len()
                ),
            });
            continue;
        }
        fields.clear();
        let mut ok = true;
        for (i, p) in parts.iter().enumerate() {
            let (target, is_set, rank) = h.columns[i];
            if *p == h.unset.as_slice() || *p == h.empty.as_slice() {
                continue;
            }
            let Ok(text) = std::str::from_utf8(p) else {
                ok = false;
                bad(BadRecord {
                    line: n,
                    message: format!("column {} ({}) is not UTF-8", i + 1, h.names[i]),
                });
                break;
            };
            if let Some(r) = rank {
                fields.offer_time(r, text);
            }
            if let Some(t) = target {
                if is_set {
                    for v in text.split(std::str::from_utf8(&h.set_sep).unwrap_or(",")) {
                        if !v.is_empty() {
                            fields.push(t, Kind::Str, &unescape_zeek(v));
                        }
                    }
                } else {
                    fields.push(t, kind_of(h.types.get(i)), &unescape_zeek(text));
                }
            }
        }
        if !ok {
            continue;
        }
        if let (Some(hi), Some(ui), Some(t)) = (h.host, h.uri, h.url_target) {
            let (host, uri) = (parts[hi], parts[ui]);
            if host != h.unset.as_slice() && uri != h.unset.as_slice() {
                if let (Ok(host), Ok(uri)) = (std::str::from_utf8(host), std::str::from_utf8(uri)) {
                    let url = format!("http://{}{}", unescape_zeek(host), unescape_zeek(uri));
                    fields.push(t, Kind::Str, &url);
                }
            }
        }
        f(n, &fields);
    }
}

fn kind_of(t: Option<&String>) -> Kind {
    match t.map(String::as_str) {
        Some("count" | "int" | "port") => Kind::Int,
        Some("double" | "interval") => Kind::Float,
        Some("bool") => Kind::Bool,
        _ => Kind::Str,
    }
}

/// Zeek escapes non-printable bytes as `\xHH`.
fn unescape_zeek(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains("\\x") {
        return s.into();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') && i + 4 <= b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 2..i + 4], 16) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HTTP: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\thttp\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\thost\turi\n#types\ttime\tstring\taddr\tport\taddr\tport\tstring\tstring\n1700000000.123456\tC1\t10.0.0.1\t5555\t2001:db8::2\t80\tevil.example\t/x?a=\\x41\nbroken\tline\n1700000001.0\tC2\t10.0.0.3\t1\t-\t80\t-\t(empty)\n";

    #[test]
    fn http_log() {
        let m = Mapping::zeek();
        let mut recs = vec![];
        let mut bad = vec![];
        read_zeek(
            HTTP.as_bytes(),
            &m,
            |line, f| {
                let v: Vec<(String, String)> = f
                    .iter()
                    .map(|(t, _, x)| (m.targets[t as usize].field.clone(), x.to_string()))
                    .collect();
                recs.push((line, v, f.time().map(|t| t.timestamp_millis())));
            },
            |b| bad.push(b),
        )
        .unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].0, 8);
        assert_eq!(recs[0].2, Some(1_700_000_000_123));
        let fields: Vec<&str> = recs[0].1.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, vec!["id.orig_h", "id.resp_h", "host", "kopa.url"]);
        assert_eq!(recs[0].1[3].1, "http://evil.example/x?a=A");
        assert_eq!(recs[1].1, vec![("id.orig_h".into(), "10.0.0.3".into())]);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 9);
    }

    #[test]
    fn sets_and_missing_header() {
        let m = Mapping::zeek();
        let text = "1\t2\n#fields\tts\ttx_hosts\n#types\ttime\tset[addr]\n1.0\t1.1.1.1,2.2.2.2\n";
        let mut vals = vec![];
        let mut bad = vec![];
        read_zeek(
            text.as_bytes(),
            &m,
            |_, f| vals.extend(f.iter().map(|(_, _, x)| x.to_string())),
            |b| bad.push(b.line),
        )
        .unwrap();
        assert_eq!(vals, vec!["1.1.1.1", "2.2.2.2"]);
        assert_eq!(bad, vec![1]);
    }
}
