//! Field mappings: which log field becomes which STIX Cyber-observable property.
//!
//! A mapping is written in TOML (see `ecs.toml`, shipped as the default for JSON lines and CSV, and
//! `zeek.toml` for Zeek logs):
//!
//! ```toml
//! name = "my-firewall"
//! timestamp = ["@timestamp"]          # fields holding the record's time, first present wins
//! [fields]
//! "src" = "ip:value"                  # "ip" = ipv4-addr or ipv6-addr, by the value's form
//! "sha256" = "file:hashes.'SHA-256'"  # fields of the same SCO type form one object…
//! "from" = { path = "email-addr:value", object = "from" }  # …or name the object explicitly
//! ```
//!
//! Fields mapped to a `…:value` property make one object each unless `object` is given.

use hashbrown::HashMap;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The Elastic Common Schema mapping shipped with Kopa (the default for JSON lines and CSV).
pub const ECS_TOML: &str = include_str!("ecs.toml");
/// The Zeek mapping shipped with Kopa (the default for Zeek TSV logs).
pub const ZEEK_TOML: &str = include_str!("zeek.toml");

/// The most fields a mapping may name, and the most dot-separated segments in one field's name: the
/// JSON scanner enters each field under every object that can hold it, and keeps its tables small.
pub const MAX_FIELDS: usize = 1000;
pub const MAX_SEGMENTS: usize = 8;

/// A mapping file that cannot be used: what is wrong, and where (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mapping line {line}, column {column}: {message}")]
pub struct MappingError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The SCO type of a mapped field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScoType {
    /// A fixed type, e.g. `domain-name`.
    Fixed(String),
    /// `ipv4-addr` or `ipv6-addr`, chosen by each value's form (a `:` makes it IPv6).
    Ip,
}

impl ScoType {
    /// The concrete type for one value.
    pub fn resolve<'a>(&'a self, value: &str) -> &'a str {
        match self {
            ScoType::Fixed(t) => t,
            ScoType::Ip if is_ipv6_text(value) => "ipv6-addr",
            ScoType::Ip => "ipv4-addr",
        }
    }
}

/// Whether the text of an address field is read as an IPv6 address (it holds a colon) rather than an
/// IPv4 one: the one rule for the matcher's lookups and for the observed-data built from a record.
/// Addresses are short, so up to sixteen bytes are tested as two words instead of byte by byte.
#[inline]
pub fn is_ipv6_text(value: &str) -> bool {
    let b = value.as_bytes();
    let colon = |w: [u8; 8]| super::byte_mask(u64::from_le_bytes(w), b':') != 0;
    match (b.first_chunk::<8>(), b.last_chunk::<8>()) {
        (Some(&head), Some(&tail)) if b.len() <= 16 => colon(head) || colon(tail),
        (Some(_), Some(_)) => memchr::memchr(b':', b).is_some(),
        _ => b.contains(&b':'),
    }
}

/// Where one log field goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The log field (dotted name, or column name).
    pub field: String,
    pub sco_type: ScoType,
    /// Property path segments, unquoted: `hashes.'SHA-256'` is `["hashes", "SHA-256"]`.
    pub path: Vec<String>,
    /// Fields with the same object label become one SCO.
    pub object: String,
}

impl Target {
    /// The property path in pattern syntax, segments quoted where needed: `hashes.'SHA-256'`.
    pub fn path_text(&self) -> String {
        canonical_path(&self.path)
    }
}

/// Property path segments joined the way patterns write them (quoting segments that are not plain
/// identifiers). The bulk matcher keys its indexes by `TYPE:` + this text.
pub fn canonical_path<S: AsRef<str>>(segments: &[S]) -> String {
    let mut out = String::new();
    for (i, s) in segments.iter().enumerate() {
        let s = s.as_ref();
        if i > 0 {
            out.push('.');
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            out.push_str(s);
        } else {
            out.push('\'');
            out.push_str(&s.replace('\\', "\\\\").replace('\'', "\\'"));
            out.push('\'');
        }
    }
    out
}

/// A parsed mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub name: String,
    /// Fields holding the record's time, in order of preference.
    pub timestamp: Vec<String>,
    /// Mapped fields, in the file's order (sorted by field name).
    pub targets: Vec<Target>,
    by_field: HashMap<String, usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    name: Option<String>,
    #[serde(default)]
    timestamp: RawTimestamp,
    fields: BTreeMap<String, toml::Spanned<RawTarget>>,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum RawTimestamp {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawTarget {
    Path(String),
    Table {
        path: String,
        object: Option<String>,
    },
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Mapping {
    /// The shipped ECS mapping.
    pub fn ecs() -> Mapping {
        Mapping::from_toml(ECS_TOML).expect("the shipped ECS mapping parses")
    }

    /// The shipped Zeek mapping.
    pub fn zeek() -> Mapping {
        Mapping::from_toml(ZEEK_TOML).expect("the shipped Zeek mapping parses")
    }

    /// Parses a mapping from TOML text.
    pub fn from_toml(text: &str) -> Result<Mapping, MappingError> {
        let raw: RawMapping = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            MappingError {
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        let mut targets = Vec::new();
        for (field, spanned) in raw.fields {
            let at = line_col(text, spanned.span().start);
            let err = |message: String| MappingError {
                line: at.0,
                column: at.1,
                message,
            };
            if field.is_empty() {
                return Err(err("empty field name".into()));
            }
            if targets.len() == MAX_FIELDS {
                return Err(err(format!("more than {MAX_FIELDS} fields")));
            }
            if field.split('.').count() > MAX_SEGMENTS {
                return Err(err(format!(
                    "field {field:?} has more than {MAX_SEGMENTS} dot-separated parts"
                )));
            }
            let (path_text, object) = match spanned.into_inner() {
                RawTarget::Path(p) => (p, None),
                RawTarget::Table { path, object } => (path, object),
            };
            let (sco_type, path) = parse_object_path(&path_text)
                .map_err(|m| err(format!("field {field:?}: {m} in {path_text:?}")))?;
            let object = match object {
                Some(o) => o,
                None if path.len() == 1 && path[0] == "value" => format!("field:{field}"),
                None => match &sco_type {
                    ScoType::Fixed(t) => format!("type:{t}"),
                    ScoType::Ip => format!("field:{field}"),
                },
            };
            targets.push(Target {
                field,
                sco_type,
                path,
                object,
            });
        }
        let timestamp = match raw.timestamp {
            RawTimestamp::None => Vec::new(),
            RawTimestamp::One(t) => vec![t],
            RawTimestamp::Many(v) => v,
        };
        if timestamp.len() > MAX_SEGMENTS
            || timestamp
                .iter()
                .any(|t| t.split('.').count() > MAX_SEGMENTS)
        {
            return Err(MappingError {
                line: 1,
                column: 1,
                message: format!(
                    "timestamp: at most {MAX_SEGMENTS} fields of at most {MAX_SEGMENTS} dot-separated parts"
                ),
            });
        }
        let by_field = targets
            .iter()
            .enumerate()
            .map(|(i, t)| (t.field.clone(), i))
            .collect();
        Ok(Mapping {
            name: raw.name.unwrap_or_else(|| "custom".into()),
            timestamp,
            targets,
            by_field,
        })
    }

    /// The index of the target for a field name.
    pub fn target_of(&self, field: &str) -> Option<usize> {
        self.by_field.get(field).copied()
    }
}

/// Parses `type:prop.sub.'quoted'` into its type and unquoted segments.
pub fn parse_object_path(text: &str) -> Result<(ScoType, Vec<String>), String> {
    let (ty, rest) = text
        .split_once(':')
        .ok_or_else(|| "expected TYPE:PROPERTY".to_string())?;
    if ty.is_empty()
        || !ty
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!("bad object type {ty:?}"));
    }
    let sco_type = if ty == "ip" {
        ScoType::Ip
    } else {
        ScoType::Fixed(ty.to_string())
    };
    let mut segments = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        let mut seg = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some(c) => seg.push(c),
                        None => break,
                    },
                    '\'' => {
                        closed = true;
                        break;
                    }
                    c => seg.push(c),
                }
            }
            if !closed {
                return Err("unclosed quote".into());
            }
            if seg.is_empty() {
                return Err("empty property name".into());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    seg.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            if seg.is_empty() {
                return Err("empty or invalid property name".into());
            }
        }
        segments.push(seg);
        match chars.next() {
            None => break,
            Some('.') => continue,
            Some(c) => return Err(format!("unexpected {c:?}")),
        }
    }
    Ok((sco_type, segments))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_mappings_parse() {
        let ecs = Mapping::ecs();
        let t = &ecs.targets[ecs.target_of("file.hash.sha256").unwrap()];
        assert_eq!(t.sco_type, ScoType::Fixed("file".into()));
        assert_eq!(t.path, vec!["hashes", "SHA-256"]);
        assert_eq!(t.path_text(), "hashes.'SHA-256'");
        let ip = &ecs.targets[ecs.target_of("source.ip").unwrap()];
        assert_eq!(ip.sco_type.resolve("10.0.0.1"), "ipv4-addr");
        assert_eq!(ip.sco_type.resolve("::1"), "ipv6-addr");
        assert_ne!(
            ip.object,
            ecs.targets[ecs.target_of("destination.ip").unwrap()].object
        );
        assert_eq!(
            ecs.targets[ecs.target_of("file.hash.md5").unwrap()].object,
            t.object
        );
        assert_eq!(ecs.timestamp[0], "@timestamp");
        assert!(Mapping::zeek().target_of("id.orig_h").is_some());
    }

    #[test]
    fn syntax_error_has_line() {
        let e = Mapping::from_toml("name = \"x\"\n[fields]\n\"a\" = \n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
    }

    #[test]
    fn bad_path_names_field_and_line() {
        let e = Mapping::from_toml("[fields]\n\"a\" = \"ip:value\"\n\"b\" = \"nocolon\"\n")
            .unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("\"b\""), "{e}");
        let e = Mapping::from_toml("[fields]\n\"a\" = \"Bad_Type:value\"\n").unwrap_err();
        assert!(e.message.contains("bad object type"), "{e}");
        let e = Mapping::from_toml("[fields]\n\"a\" = \"file:hashes.'SHA\"\n").unwrap_err();
        assert!(e.message.contains("unclosed"), "{e}");
    }

    #[test]
    fn mappings_are_bounded() {
        let deep = "[fields]\n\"a.b.c.d.e.f.g.h.i\" = \"ip:value\"\n";
        let e = Mapping::from_toml(deep).unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("more than 8 dot-separated parts"), "{e}");
        assert!(Mapping::from_toml("[fields]\n\"a.b.c.d.e.f.g.h\" = \"ip:value\"\n").is_ok());
        let many: String = (0..=MAX_FIELDS)
            .map(|i| format!("\"f{i}\" = \"ip:value\"\n"))
            .collect();
        let e = Mapping::from_toml(&format!("[fields]\n{many}")).unwrap_err();
        assert!(e.message.contains("more than 1000 fields"), "{e}");
        let e = Mapping::from_toml("timestamp = [\"a.b.c.d.e.f.g.h.i\"]\n[fields]\n").unwrap_err();
        assert!(e.message.starts_with("timestamp"), "{e}");
    }

    #[test]
    fn unknown_key_is_rejected() {
        let e = Mapping::from_toml("fieldz = 1\n[fields]\n").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
    }

    #[test]
    fn ipv6_text_is_any_text_with_a_colon() {
        // Every length around the two-word test (0 to 40 bytes), a colon at every place or none,
        // and bytes that differ from a colon by one bit.
        for n in 0..=40usize {
            let plain: String = (0..n).map(|i| if i % 2 == 0 { '1' } else { '.' }).collect();
            assert!(!is_ipv6_text(&plain), "{plain:?}");
            assert!(!is_ipv6_text(&";".repeat(n)), "{n} semicolons");
            for at in 0..n {
                let mut b = plain.clone().into_bytes();
                b[at] = b':';
                let text = String::from_utf8(b).unwrap();
                assert!(is_ipv6_text(&text), "{text:?}");
            }
        }
        assert!(is_ipv6_text("2001:db8::1"));
        assert!(is_ipv6_text("::ffff:192.0.2.1"));
        assert!(!is_ipv6_text("203.0.113.7"));
        assert!(!is_ipv6_text("é1.2.3.4"));
    }

    #[test]
    fn canonical_path_quotes() {
        assert_eq!(canonical_path(&["hashes", "SHA-256"]), "hashes.'SHA-256'");
        assert_eq!(canonical_path(&["value"]), "value");
    }
}
