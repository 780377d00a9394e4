//! Validation of STIX 2.1 objects against the specification's MUST rules.
//!
//! One pass over the object checks every property against the tables in `spec.rs` (value kinds,
//! references, required properties), then the rules that tie properties together (timestamp order,
//! "exactly one of", marking forms). Every problem is collected with the JSON path of the property; paths
//! are rendered only when an error is reported, so a valid object costs no allocation beyond its copy.

use crate::spec::{
    self, type_spec, ObjectCategory, Shape, CUSTOM_COMMON, K, MARKING_COMMON, MARKING_REQUIRED, R,
    SCO_COMMON, SCO_REQUIRED, SDO_COMMON, SDO_REQUIRED, TLP1_ENUM, TLP2_ENUM, TLP2_EXTENSION_ID,
};
use crate::{StixError, StixObject, Timestamp};
use serde_json::{Map, Value};

/// A JSON path built on the stack, rendered only when an error needs it.
#[derive(Clone, Copy)]
struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    seg: Seg<'a>,
}

#[derive(Clone, Copy)]
enum Seg<'a> {
    Root,
    Key(&'a str),
    Idx(usize),
}

impl<'a> Path<'a> {
    const ROOT: Path<'static> = Path {
        parent: None,
        seg: Seg::Root,
    };

    fn key(&'a self, k: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            seg: Seg::Key(k),
        }
    }

    fn idx(&'a self, i: usize) -> Path<'a> {
        Path {
            parent: Some(self),
            seg: Seg::Idx(i),
        }
    }

    fn render(&self) -> String {
        let mut segs = Vec::new();
        let mut cur = Some(self);
        while let Some(p) = cur {
            segs.push(p.seg);
            cur = p.parent;
        }
        let mut out = String::new();
        for seg in segs.iter().rev() {
            match seg {
                Seg::Root => {}
                Seg::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Seg::Idx(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        out
    }
}

/// The validation context of one object: its id (for messages) and the errors found so far.
struct Ctx<'a> {
    id: &'a str,
    errors: Vec<StixError>,
}

impl Ctx<'_> {
    fn err(&mut self, path: &Path<'_>, message: impl Into<String>) {
        self.errors.push(StixError {
            object_id: self.id.to_string(),
            path: path.render(),
            message: message.into(),
        });
    }
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// STIX type name syntax: a–z, 0–9 and hyphen, no two hyphens in a row, starting with a letter and not
/// ending with a hyphen, 3 to 250 characters.
pub(crate) fn is_type_name(t: &str) -> bool {
    let b = t.as_bytes();
    if b.len() < 3 || b.len() > 250 || !b[0].is_ascii_lowercase() || b[b.len() - 1] == b'-' {
        return false;
    }
    let mut prev_hyphen = false;
    for &c in b {
        match c {
            b'a'..=b'z' | b'0'..=b'9' => prev_hyphen = false,
            b'-' => {
                if prev_hyphen {
                    return false;
                }
                prev_hyphen = true;
            }
            _ => return false,
        }
    }
    true
}

/// An RFC 4122 UUID in its hyphenated form (versions 1–5, variant 10xx), either case.
pub(crate) fn is_uuid(u: &str) -> bool {
    let b = u.as_bytes();
    if b.len() != 36 {
        return false;
    }
    for (i, &c) in b.iter().enumerate() {
        let ok = match i {
            8 | 13 | 18 | 23 => c == b'-',
            14 => matches!(c, b'1'..=b'5'),
            19 => matches!(c, b'8' | b'9' | b'a' | b'b' | b'A' | b'B'),
            _ => c.is_ascii_hexdigit(),
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Split a STIX identifier `type--UUID` into its type part, if the form is right.
pub(crate) fn split_identifier(id: &str) -> Option<&str> {
    let (t, u) = id.split_once("--")?;
    (is_type_name(t) && is_uuid(u)).then_some(t)
}

/// Custom property names: `^[a-z0-9_]{3,250}$`.
fn is_property_name(name: &str) -> bool {
    (3..=250).contains(&name.len())
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
}

/// Property names inside an extension: what the STIX 2.1 JSON schemas accept (`^([a-z][a-z0-9_]{2,249})|id$`,
/// read as those schemas' regular-expression engine reads it: a name that starts that way or ends in `id`).
fn is_extension_property_name(name: &str) -> bool {
    let b = name.as_bytes();
    let starts = b.len() >= 3
        && b[0].is_ascii_lowercase()
        && b[1..3]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_');
    starts || name.ends_with("id")
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.len().is_multiple_of(2) && s.bytes().all(|c| c.is_ascii_hexdigit())
}

fn is_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(4) {
        return false;
    }
    let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return false;
    }
    b[..b.len() - pad]
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

fn as_integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
                .map(|f| f as i64)
        }),
        _ => None,
    }
}

/// Expected length in hex digits for the hash algorithms whose format the specification fixes.
fn hash_hex_len(algo: &str) -> Option<usize> {
    Some(match algo {
        "MD5" => 32,
        "SHA-1" | "RIPEMD-160" => 40,
        "SHA-224" | "SHA3-224" => 56,
        "SHA-256" | "SHA3-256" => 64,
        "SHA-384" | "SHA3-384" => 96,
        "SHA-512" | "SHA3-512" | "WHIRLPOOL" => 128,
        _ => return None,
    })
}

fn ref_allowed(r: R, t: &str) -> Result<(), String> {
    let cat = spec::category(t);
    let ok = match r {
        R::Any => true,
        R::Types(ts) => ts.contains(&t),
        R::Sdo => matches!(cat, ObjectCategory::Sdo | ObjectCategory::Custom),
        R::Sco => matches!(cat, ObjectCategory::Sco | ObjectCategory::Custom),
        R::ScoOrSro => matches!(
            cat,
            ObjectCategory::Sco | ObjectCategory::Sro | ObjectCategory::Custom
        ),
        R::RelEnd => {
            matches!(
                cat,
                ObjectCategory::Sdo | ObjectCategory::Sco | ObjectCategory::Custom
            ) && t != "bundle"
        }
    };
    if ok {
        return Ok(());
    }
    Err(match r {
        R::Any => String::new(),
        R::Types(ts) => format!(
            "must refer to {} but refers to a {t}",
            ts.iter()
                .map(|t| format!("a {t}"))
                .collect::<Vec<_>>()
                .join(" or ")
        ),
        R::Sdo => format!("must refer to a STIX Domain Object but refers to a {t}"),
        R::Sco => format!("must refer to a Cyber-observable Object but refers to a {t}"),
        R::ScoOrSro => {
            format!("must refer to a Cyber-observable Object or a relationship but refers to a {t}")
        }
        R::RelEnd => format!(
            "must refer to a STIX Domain Object or a Cyber-observable Object but refers to a {t}"
        ),
    })
}

fn check_ref(cx: &mut Ctx<'_>, path: &Path<'_>, v: &Value, r: R) {
    let Some(s) = v.as_str() else {
        cx.err(
            path,
            format!("must be a STIX identifier (a string), not {}", kind_name(v)),
        );
        return;
    };
    let Some(t) = split_identifier(s) else {
        cx.err(
            path,
            format!("{s:?} is not a STIX identifier of the form type--UUID (an RFC 4122 UUID)"),
        );
        return;
    };
    if let Err(m) = ref_allowed(r, t) {
        cx.err(path, m);
    }
}

fn check_list<'v>(cx: &mut Ctx<'_>, path: &Path<'_>, v: &'v Value) -> Option<&'v [Value]> {
    match v {
        Value::Array(a) if a.is_empty() => {
            cx.err(path, "must not be an empty list; omit the property instead");
            None
        }
        Value::Array(a) => Some(a),
        other => {
            cx.err(path, format!("must be a list, not {}", kind_name(other)));
            None
        }
    }
}

fn check_object<'v>(
    cx: &mut Ctx<'_>,
    path: &Path<'_>,
    v: &'v Value,
) -> Option<&'v Map<String, Value>> {
    match v {
        Value::Object(m) => Some(m),
        other => {
            cx.err(path, format!("must be an object, not {}", kind_name(other)));
            None
        }
    }
}

fn check_ts(cx: &mut Ctx<'_>, path: &Path<'_>, v: &Value) -> Option<Timestamp> {
    match v {
        Value::String(s) => match Timestamp::parse(s) {
            Ok(t) => Some(t),
            Err(_) => {
                cx.err(
                    path,
                    format!(
                        "{s:?} is not a valid STIX timestamp (YYYY-MM-DDTHH:MM:SS[.s+]Z, in UTC)"
                    ),
                );
                None
            }
        },
        other => {
            cx.err(
                path,
                format!("must be a timestamp string, not {}", kind_name(other)),
            );
            None
        }
    }
}

/// Whether a (valid) timestamp has at least three fractional digits.
fn has_millis(s: &str) -> bool {
    s.len() >= 24 && s.as_bytes().get(19) == Some(&b'.')
}

fn check_str(cx: &mut Ctx<'_>, path: &Path<'_>, v: &Value) {
    if !v.is_string() {
        cx.err(path, format!("must be a string, not {}", kind_name(v)));
    }
}

fn check_hashes(cx: &mut Ctx<'_>, path: &Path<'_>, v: &Value) {
    let Some(m) = check_object(cx, path, v) else {
        return;
    };
    for (k, hv) in m {
        let p = path.key(k);
        let Some(s) = hv.as_str() else {
            cx.err(
                &p,
                format!("a hash value must be a string, not {}", kind_name(hv)),
            );
            continue;
        };
        if let Some(len) = hash_hex_len(k) {
            if s.len() != len || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
                cx.err(
                    &p,
                    format!(
                        "a {k} hash must be {len} hexadecimal digits, got {:?}",
                        truncate(s)
                    ),
                );
            }
        } else if !(3..=256).contains(&k.len())
            || !k
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        {
            cx.err(
                &p,
                format!("{k:?} is not a valid hash algorithm name (3 to 250 characters: letters, digits, - and _)"),
            );
        }
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(80) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn check_kind(cx: &mut Ctx<'_>, path: &Path<'_>, v: &Value, kind: K, type_: &str) {
    if v.is_null() {
        if !matches!(kind, K::Skip) {
            cx.err(path, "must not be null; omit the property instead");
        }
        return;
    }
    match kind {
        K::Skip => {}
        K::Str => check_str(cx, path, v),
        K::StrList => {
            if let Some(a) = check_list(cx, path, v) {
                for (i, x) in a.iter().enumerate() {
                    if !x.is_string() {
                        cx.err(
                            &path.idx(i),
                            format!("must be a string, not {}", kind_name(x)),
                        );
                    }
                }
            }
        }
        K::Ts => {
            check_ts(cx, path, v);
        }
        K::TsMillis => {
            if check_ts(cx, path, v).is_some() && !has_millis(v.as_str().unwrap_or("")) {
                cx.err(
                    path,
                    "timestamp must be precise to the millisecond at least (three or more fractional digits, e.g. 2016-04-06T20:03:48.000Z)",
                );
            }
        }
        K::Bool => {
            if !v.is_boolean() {
                cx.err(
                    path,
                    format!("must be a boolean (true or false), not {}", kind_name(v)),
                );
            }
        }
        K::Int(lo, hi) => match as_integer(v) {
            Some(n) if n < lo || n > hi => {
                let range = match (lo, hi) {
                    (i64::MIN, _) => String::new(),
                    (lo, i64::MAX) => format!(" (at least {lo})"),
                    (lo, hi) => format!(" (from {lo} to {hi})"),
                };
                cx.err(path, format!("{n} is out of range{range}"));
            }
            Some(_) => {}
            None => cx.err(path, format!("must be an integer, not {v}")),
        },
        K::Num(lo, hi) => match v.as_f64() {
            Some(n) if n < lo || n > hi => {
                cx.err(
                    path,
                    format!("{n} is out of range (from {lo} to {})", fmt_max(hi)),
                );
            }
            Some(_) => {}
            None => cx.err(path, format!("must be a number, not {}", kind_name(v))),
        },
        K::Enum(vals) => check_enum(cx, path, v, vals),
        K::EnumList(vals) => {
            if let Some(a) = check_list(cx, path, v) {
                for (i, x) in a.iter().enumerate() {
                    check_enum(cx, &path.idx(i), x, vals);
                }
            }
        }
        K::Ref(r) => check_ref(cx, path, v, r),
        K::Refs(r) => {
            if let Some(a) = check_list(cx, path, v) {
                for (i, x) in a.iter().enumerate() {
                    check_ref(cx, &path.idx(i), x, r);
                }
            }
        }
        K::Hashes => check_hashes(cx, path, v),
        K::Dict => {
            check_object(cx, path, v);
        }
        K::Hex => match v.as_str() {
            Some(s) if is_hex(s) => {}
            Some(s) => cx.err(
                path,
                format!(
                    "{:?} is not hexadecimal (pairs of digits 0-9, a-f)",
                    truncate(s)
                ),
            ),
            None => cx.err(
                path,
                format!("must be a hexadecimal string, not {}", kind_name(v)),
            ),
        },
        K::Bin => match v.as_str() {
            Some(s) if is_base64(s) => {}
            Some(_) => cx.err(path, "is not valid base64"),
            None => cx.err(
                path,
                format!("must be a base64 string, not {}", kind_name(v)),
            ),
        },
        K::ExtRefs => {
            if let Some(a) = check_list(cx, path, v) {
                for (i, x) in a.iter().enumerate() {
                    check_external_reference(cx, &path.idx(i), x);
                }
            }
        }
        K::KillChain => {
            if let Some(a) = check_list(cx, path, v) {
                for (i, x) in a.iter().enumerate() {
                    let p = path.idx(i);
                    if let Some(m) = check_object(cx, &p, x) {
                        for name in ["kill_chain_name", "phase_name"] {
                            match m.get(name) {
                                Some(s) => check_str(cx, &p.key(name), s),
                                None => cx.err(&p.key(name), "required property is missing"),
                            }
                        }
                    }
                }
            }
        }
        K::Granular => {
            if let Some(a) = check_list(cx, path, v) {
                for (i, x) in a.iter().enumerate() {
                    check_granular_marking(cx, &path.idx(i), x);
                }
            }
        }
        K::Extensions => check_extensions(cx, path, v, type_),
        K::Obj(shape) => {
            if let Some(m) = check_object(cx, path, v) {
                check_shape(cx, path, m, shape, type_);
            }
        }
        K::ObjList(shape) => {
            if let Some(a) = check_list(cx, path, v) {
                for (i, x) in a.iter().enumerate() {
                    let p = path.idx(i);
                    if let Some(m) = check_object(cx, &p, x) {
                        check_shape(cx, &p, m, shape, type_);
                    }
                }
            }
        }
        K::Observables => {
            if let Some(m) = check_object(cx, path, v) {
                if m.is_empty() {
                    cx.err(path, "must contain at least one observable");
                }
                for (k, o) in m {
                    let p = path.key(k);
                    if let Some(om) = check_object(cx, &p, o) {
                        match om.get("type") {
                            Some(Value::String(_)) => {}
                            Some(_) => cx.err(&p.key("type"), "must be a string"),
                            None => cx.err(&p.key("type"), "required property is missing"),
                        }
                        check_local_refs(cx, &p, om, m);
                    }
                }
            }
        }
        K::Contents => {
            if let Some(m) = check_object(cx, path, v) {
                if m.is_empty() {
                    cx.err(path, "must contain at least one language");
                }
                for (k, o) in m {
                    check_object(cx, &path.key(k), o);
                }
            }
        }
    }
}

/// In the deprecated observed-data `objects`, references between embedded observables name their keys
/// (`"src_ref": "0"`); each must resolve.
fn check_local_refs(
    cx: &mut Ctx<'_>,
    path: &Path<'_>,
    obj: &Map<String, Value>,
    all: &Map<String, Value>,
) {
    for (k, v) in obj {
        let refs: &[Value] = if k.ends_with("_ref") {
            std::slice::from_ref(v)
        } else if k.ends_with("_refs") {
            match v.as_array() {
                Some(a) => a,
                None => continue,
            }
        } else {
            continue;
        };
        for (i, r) in refs.iter().enumerate() {
            let resolved = r.as_str().is_some_and(|key| all.contains_key(key));
            if !resolved {
                let p = path.key(k);
                let p = if k.ends_with("_refs") { p.idx(i) } else { p };
                cx.err(
                    &p,
                    format!("{r} does not name another object in this observed-data's objects"),
                );
            }
        }
    }
}

fn fmt_max(hi: f64) -> String {
    if hi == f64::MAX {
        "any".to_string()
    } else {
        hi.to_string()
    }
}

fn check_enum(cx: &mut Ctx<'_>, path: &Path<'_>, v: &Value, vals: &[&str]) {
    match v.as_str() {
        Some(s) if vals.contains(&s) => {}
        Some(s) => cx.err(
            path,
            format!("{:?} is not one of {}", truncate(s), vals.join(", ")),
        ),
        None => cx.err(path, format!("must be a string, not {}", kind_name(v))),
    }
}

/// Check a property whose name the specification does not define for this type.
fn check_custom_property(cx: &mut Ctx<'_>, path: &Path<'_>, name: &str, v: &Value) {
    if !is_property_name(name) {
        cx.err(
            path,
            format!(
                "{:?} is not a valid property name: custom property names use only a-z, 0-9 and _ and are 3 to 250 characters long",
                truncate(name)
            ),
        );
    }
    if v.is_null() {
        cx.err(path, "must not be null; omit the property instead");
        return;
    }
    if let Value::Array(a) = v {
        if a.is_empty() {
            cx.err(path, "must not be an empty list; omit the property instead");
            return;
        }
    }
    if name.ends_with("_ref") {
        check_ref(cx, path, v, R::Any);
    } else if name.ends_with("_refs") {
        check_kind(cx, path, v, K::Refs(R::Any), "");
    } else if name.ends_with("_hex") {
        check_kind(cx, path, v, K::Hex, "");
    } else if name.ends_with("_bin") {
        check_kind(cx, path, v, K::Bin, "");
    }
}

fn lookup(props: &[(&str, K)], name: &str) -> Option<K> {
    props.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

/// Check the properties of a nested object of a known shape. Properties the shape does not define are
/// left alone (beyond null checks): predefined nested objects may carry custom properties.
fn check_shape(
    cx: &mut Ctx<'_>,
    path: &Path<'_>,
    m: &Map<String, Value>,
    shape: &Shape,
    type_: &str,
) {
    for (k, v) in m {
        let p = path.key(k);
        match lookup(shape.props, k) {
            Some(kind) => check_kind(cx, &p, v, kind, type_),
            None => {
                if v.is_null() {
                    cx.err(&p, "must not be null; omit the property instead");
                }
            }
        }
    }
    for r in shape.required {
        if !m.contains_key(*r) {
            cx.err(&path.key(r), "required property is missing");
        }
    }
}

fn check_external_reference(cx: &mut Ctx<'_>, path: &Path<'_>, v: &Value) {
    let Some(m) = check_object(cx, path, v) else {
        return;
    };
    let source = match m.get("source_name") {
        Some(Value::String(s)) => Some(s.as_str()),
        Some(other) => {
            cx.err(
                &path.key("source_name"),
                format!("must be a string, not {}", kind_name(other)),
            );
            None
        }
        None => {
            cx.err(&path.key("source_name"), "required property is missing");
            None
        }
    };
    for (k, x) in m {
        let p = path.key(k);
        match k.as_str() {
            "source_name" => {}
            "description" | "url" | "external_id" => check_str(cx, &p, x),
            "hashes" => check_hashes(cx, &p, x),
            _ => {
                if x.is_null() {
                    cx.err(&p, "must not be null; omit the property instead");
                }
            }
        }
    }
    if !["description", "url", "external_id"]
        .iter()
        .any(|k| m.contains_key(*k))
    {
        cx.err(
            path,
            "an external reference needs at least one of description, url or external_id",
        );
    }
    let ext_id = m.get("external_id").and_then(Value::as_str);
    match source {
        Some("cve") => match ext_id {
            Some(e) if is_cve_id(e) => {}
            Some(e) => cx.err(
                &path.key("external_id"),
                format!("{:?} is not a CVE id (CVE-YYYY-NNNN)", truncate(e)),
            ),
            None => cx.err(
                &path.key("external_id"),
                "a reference with source_name \"cve\" needs the CVE id in external_id",
            ),
        },
        Some("capec") => match ext_id {
            Some(e) if is_capec_id(e) => {}
            Some(e) => cx.err(
                &path.key("external_id"),
                format!("{:?} is not a CAPEC id (CAPEC-N)", truncate(e)),
            ),
            None => cx.err(
                &path.key("external_id"),
                "a reference with source_name \"capec\" needs the CAPEC id in external_id",
            ),
        },
        _ => {}
    }
}

fn is_cve_id(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("CVE-") else {
        return false;
    };
    let Some((year, num)) = rest.split_once('-') else {
        return false;
    };
    year.len() == 4
        && year.bytes().all(|c| c.is_ascii_digit())
        && num.len() >= 4
        && num.bytes().all(|c| c.is_ascii_digit())
        && (!num.starts_with('0') || num.len() == 4)
}

fn is_capec_id(s: &str) -> bool {
    s.strip_prefix("CAPEC-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
}

fn check_granular_marking(cx: &mut Ctx<'_>, path: &Path<'_>, v: &Value) {
    let Some(m) = check_object(cx, path, v) else {
        return;
    };
    match m.get("selectors") {
        Some(sel) => check_kind(cx, &path.key("selectors"), sel, K::StrList, ""),
        None => cx.err(&path.key("selectors"), "required property is missing"),
    }
    match (m.get("marking_ref"), m.get("lang")) {
        (Some(r), None) => check_ref(
            cx,
            &path.key("marking_ref"),
            r,
            R::Types(&["marking-definition"]),
        ),
        (None, Some(l)) => check_str(cx, &path.key("lang"), l),
        (Some(_), Some(_)) => cx.err(
            &path.key("lang"),
            "a granular marking has either marking_ref or lang, not both",
        ),
        (None, None) => cx.err(
            &path.key("marking_ref"),
            "a granular marking needs marking_ref or lang",
        ),
    }
}

/// Follow a granular-marking selector (`description`, `labels.[1]`, `external_references.[0].url`)
/// through the object; `Err` says why it does not resolve.
fn resolve_selector(obj: &Map<String, Value>, selector: &str) -> Result<(), String> {
    if selector.is_empty() {
        return Err("an empty selector selects nothing".to_string());
    }
    let mut cur: Option<&Value> = None;
    for seg in selector.split('.') {
        let idx = seg
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .map(|s| s.parse::<usize>());
        let next = match (cur, idx) {
            (None, Some(_)) => return Err(format!("{seg} cannot index the object itself")),
            (None, None) => obj.get(seg),
            (Some(_), Some(Err(_))) => return Err(format!("{seg:?} is not a valid list index")),
            (Some(Value::Array(a)), Some(Ok(i))) => match a.get(i) {
                Some(x) => Some(x),
                None => return Err(format!("index {i} is past the end of the list")),
            },
            (Some(_), Some(Ok(_))) => {
                return Err(format!("{seg} indexes something that is not a list"))
            }
            (Some(Value::Object(m)), None) => m.get(seg),
            (Some(_), None) => {
                return Err(format!(
                    "{seg:?} selects into something that is not an object"
                ))
            }
        };
        match next {
            Some(n) => cur = Some(n),
            None => return Err(format!("there is no property {seg:?}")),
        }
    }
    Ok(())
}

fn check_selectors(cx: &mut Ctx<'_>, obj: &Map<String, Value>) {
    let Some(Value::Array(gms)) = obj.get("granular_markings") else {
        return;
    };
    let root = Path::ROOT;
    let gp = root.key("granular_markings");
    for (i, gm) in gms.iter().enumerate() {
        let Some(Value::Array(sels)) = gm.get("selectors") else {
            continue;
        };
        let p = gp.idx(i);
        let sp = p.key("selectors");
        for (j, s) in sels.iter().enumerate() {
            if let Some(s) = s.as_str() {
                if let Err(why) = resolve_selector(obj, s) {
                    cx.err(
                        &sp.idx(j),
                        format!(
                            "selector {:?} does not select anything in this object: {why}",
                            truncate(s)
                        ),
                    );
                }
            }
        }
    }
}

fn check_extensions(cx: &mut Ctx<'_>, path: &Path<'_>, v: &Value, type_: &str) {
    let Some(m) = check_object(cx, path, v) else {
        return;
    };
    if m.is_empty() {
        cx.err(
            path,
            "must not be an empty object; omit the property instead",
        );
    }
    let predefined = type_spec(type_).map_or(&[][..], |s| s.extensions);
    for (k, x) in m {
        let p = path.key(k);
        let Some(em) = check_object(cx, &p, x) else {
            continue;
        };
        if k.starts_with("extension-definition--") {
            if split_identifier(k).is_none() {
                cx.err(
                    &p,
                    format!(
                        "{:?} is not a valid extension-definition identifier",
                        truncate(k)
                    ),
                );
            }
            match em.get("extension_type") {
                Some(et) => {
                    check_enum(cx, &p.key("extension_type"), et, spec::EXTENSION_TYPE_ENUM)
                }
                None => cx.err(
                    &p.key("extension_type"),
                    "required property is missing (an extension named by its extension-definition must say its extension_type)",
                ),
            }
            if k == TLP2_EXTENSION_ID {
                if let Some(t) = em.get("tlp_2_0") {
                    check_enum(cx, &p.key("tlp_2_0"), t, TLP2_ENUM);
                }
            }
            for (ek, ev) in em {
                if ek == "extension_type" {
                    continue;
                }
                if ev.is_null() {
                    cx.err(&p.key(ek), "must not be null; omit the property instead");
                }
                if !is_extension_property_name(ek) {
                    cx.err(
                        &p.key(ek),
                        format!(
                            "{:?} is not a valid property name: extension properties use lowercase a-z, 0-9 and _ and start with a letter",
                            truncate(ek)
                        ),
                    );
                }
            }
        } else if let Some((_, shape)) = predefined.iter().find(|(n, _)| n == k) {
            check_shape(cx, &p, em, shape, type_);
        } else if spec::is_predefined_extension_name(k) {
            cx.err(
                &p,
                format!("the predefined extension {k} does not apply to {type_} objects"),
            );
        } else if !is_type_name(k) && !is_property_name(k) {
            cx.err(
                &p,
                format!(
                    "{:?} is not a valid extension name (an extension-definition identifier or a predefined extension name)",
                    truncate(k)
                ),
            );
        }
    }
}

struct Parsed<'a> {
    id: Option<&'a str>,
    type_: Option<&'a str>,
}

/// Check `id`, `type` and `spec_version`; returns what could be read.
fn check_header<'a>(
    cx: &mut Ctx<'_>,
    obj: &'a Map<String, Value>,
    category: Option<ObjectCategory>,
) -> Parsed<'a> {
    let root = Path::ROOT;
    let type_ = match obj.get("type") {
        Some(Value::String(t)) => {
            if t == "bundle" {
                cx.err(
                    &root.key("type"),
                    "a bundle is not a STIX object: send the objects it contains",
                );
            } else if !is_type_name(t) {
                cx.err(
                    &root.key("type"),
                    format!(
                        "{:?} is not a valid type name: a-z, 0-9 and single hyphens, starting with a letter, 3 to 250 characters",
                        truncate(t)
                    ),
                );
            }
            Some(t.as_str())
        }
        Some(other) => {
            cx.err(
                &root.key("type"),
                format!("must be a string, not {}", kind_name(other)),
            );
            None
        }
        None => {
            cx.err(&root.key("type"), "required property is missing");
            None
        }
    };
    let id = match obj.get("id") {
        Some(Value::String(id)) => {
            match id.split_once("--") {
                Some((t, u)) if is_uuid(u) => {
                    if let Some(ty) = type_ {
                        if t != ty {
                            cx.err(
                                &root.key("id"),
                                format!("the id's type part {t:?} does not match the object's type {ty:?}"),
                            );
                        }
                    }
                }
                Some((_, u)) => cx.err(
                    &root.key("id"),
                    format!(
                        "{:?} is not an RFC 4122 UUID (8-4-4-4-12 hex digits, version 1 to 5)",
                        truncate(u)
                    ),
                ),
                None => cx.err(
                    &root.key("id"),
                    format!(
                        "{:?} is not a STIX identifier of the form type--UUID",
                        truncate(id)
                    ),
                ),
            }
            Some(id.as_str())
        }
        Some(other) => {
            cx.err(
                &root.key("id"),
                format!("must be a string, not {}", kind_name(other)),
            );
            None
        }
        None => None, // reported with the other required properties
    };
    match obj.get("spec_version") {
        Some(Value::String(s)) if s == "2.1" => {}
        Some(Value::String(s)) if s == "2.0" => cx.err(
            &root.key("spec_version"),
            "STIX 2.0 is not accepted: this node takes STIX 2.1 objects only (spec_version \"2.1\")",
        ),
        Some(Value::String(s)) => cx.err(
            &root.key("spec_version"),
            format!("{:?} is not accepted: spec_version must be \"2.1\"", truncate(s)),
        ),
        Some(other) => cx.err(
            &root.key("spec_version"),
            format!("must be the string \"2.1\", not {}", kind_name(other)),
        ),
        None => {
            let needs = match category {
                Some(ObjectCategory::Sco) => false,
                // A custom object with `created` is SDO-like and needs spec_version.
                Some(ObjectCategory::Custom) | None => obj.contains_key("created"),
                _ => true,
            };
            if needs {
                cx.err(
                    &root.key("spec_version"),
                    "required property is missing: STIX 2.1 objects carry spec_version \"2.1\" (STIX 2.0 objects, which have none, are not accepted)",
                );
            }
        }
    }
    Parsed { id, type_ }
}

fn ts_of(obj: &Map<String, Value>, k: &str) -> Option<Timestamp> {
    obj.get(k)
        .and_then(Value::as_str)
        .and_then(|s| Timestamp::parse(s).ok())
}

/// `later` must be at or after (or, when `strict`, after) `earlier` when both are present and valid.
fn check_order(
    cx: &mut Ctx<'_>,
    obj: &Map<String, Value>,
    earlier: &str,
    later: &str,
    strict: bool,
) {
    if let (Some(a), Some(b)) = (ts_of(obj, earlier), ts_of(obj, later)) {
        let bad = if strict { b <= a } else { b < a };
        if bad {
            let how = if strict {
                "later than"
            } else {
                "equal to or later than"
            };
            cx.err(
                &Path::ROOT.key(later),
                format!("{later} must be {how} {earlier}"),
            );
        }
    }
}

/// Rules that tie several properties of one object type together.
fn check_type_rules(cx: &mut Ctx<'_>, obj: &Map<String, Value>, type_: &str) {
    let root = Path::ROOT;
    let has = |k: &str| obj.contains_key(k);
    check_order(cx, obj, "created", "modified", false);
    if matches!(
        type_,
        "campaign" | "intrusion-set" | "malware" | "threat-actor" | "infrastructure" | "sighting"
    ) {
        check_order(cx, obj, "first_seen", "last_seen", false);
    }
    match type_ {
        "indicator" => check_order(cx, obj, "valid_from", "valid_until", true),
        "relationship" => {
            check_order(cx, obj, "start_time", "stop_time", true);
            if let Some(Value::String(rt)) = obj.get("relationship_type") {
                let ok = !rt.is_empty()
                    && rt
                        .bytes()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
                if !ok {
                    cx.err(
                        &root.key("relationship_type"),
                        format!(
                            "{:?} is not a valid relationship type: use only a-z, 0-9 and hyphens",
                            truncate(rt)
                        ),
                    );
                }
            }
        }
        "observed-data" => {
            check_order(cx, obj, "first_observed", "last_observed", false);
            match (has("objects"), has("object_refs")) {
                (true, true) => cx.err(
                    &root.key("objects"),
                    "observed-data has either objects or object_refs, not both",
                ),
                (false, false) => cx.err(
                    &root.key("object_refs"),
                    "observed-data needs exactly one of object_refs or objects",
                ),
                _ => {}
            }
        }
        "location" => {
            if has("latitude") != has("longitude") {
                let missing = if has("latitude") { "longitude" } else { "latitude" };
                cx.err(
                    &root.key(missing),
                    "latitude and longitude must be given together",
                );
            }
            if has("precision") && !(has("latitude") && has("longitude")) {
                cx.err(
                    &root.key("precision"),
                    "precision needs latitude and longitude",
                );
            }
            if !(has("region") || has("country") || (has("latitude") && has("longitude"))) {
                cx.err(
                    &root.key("region"),
                    "a location needs at least one of region, country, or latitude and longitude",
                );
            }
        }
        "malware" if obj.get("is_family") == Some(&Value::Bool(true)) && !has("name") => {
                cx.err(
                    &root.key("name"),
                    "required property is missing: a malware family (is_family true) must have a name",
                );
        }
        "malware-analysis" if !has("result") && !has("analysis_sco_refs") => {
                cx.err(
                    &root.key("result"),
                    "a malware analysis needs result or analysis_sco_refs",
                );
        }
        "artifact" => {
            if !has("payload_bin") && !has("url") {
                cx.err(
                    &root.key("payload_bin"),
                    "an artifact needs its content: payload_bin or url",
                );
            }
            if has("payload_bin") && has("url") {
                cx.err(
                    &root.key("url"),
                    "an artifact has either payload_bin or url, not both",
                );
            }
            if has("url") && !has("hashes") {
                cx.err(
                    &root.key("hashes"),
                    "required property is missing: an artifact given by url must have hashes",
                );
            }
        }
        "network-traffic" => {
            if !has("src_ref") && !has("dst_ref") {
                cx.err(
                    &root.key("src_ref"),
                    "network traffic needs at least one of src_ref or dst_ref",
                );
            }
            check_order(cx, obj, "start", "end", false);
            if obj.get("is_active") == Some(&Value::Bool(true)) && has("end") {
                cx.err(
                    &root.key("end"),
                    "active network traffic (is_active true) must not have an end",
                );
            }
        }
        "email-message" => match obj.get("is_multipart") {
            Some(Value::Bool(true)) if has("body") => cx.err(
                &root.key("body"),
                "a multipart message (is_multipart true) carries its body in body_multipart, not body",
            ),
            Some(Value::Bool(false)) if has("body_multipart") => cx.err(
                &root.key("body_multipart"),
                "body_multipart is only allowed when is_multipart is true",
            ),
            _ => {}
        },
        "marking-definition" => check_marking_definition(cx, obj),
        _ => {}
    }
}

/// The TLP 1.0 marking definitions of the STIX 2.1 specification (section 7.2.1.4).
const TLP1_WHITE: &str = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9";
const TLP1_GREEN: &str = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da";
const TLP1_AMBER: &str = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82";
const TLP1_RED: &str = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed";

fn check_marking_definition(cx: &mut Ctx<'_>, obj: &Map<String, Value>) {
    let root = Path::ROOT;
    let dt = obj.get("definition_type");
    let def = obj.get("definition");
    match (dt, def) {
        (None, None) if !obj.contains_key("extensions") => cx.err(
            &root.key("definition_type"),
            "required property is missing: a marking definition needs definition_type and definition, or an extension that defines it",
        ),
        (Some(_), None) => cx.err(
            &root.key("definition"),
            "required property is missing: definition_type is given without definition",
        ),
        (None, Some(_)) => cx.err(
            &root.key("definition_type"),
            "required property is missing: definition is given without definition_type",
        ),
        (Some(Value::String(t)), Some(Value::Object(d))) => {
            let dp = root.key("definition");
            match t.as_str() {
                "tlp" => match d.get("tlp") {
                    Some(v) => {
                        check_enum(cx, &dp.key("tlp"), v, TLP1_ENUM);
                        let canonical = match v.as_str() {
                            Some("white") => Some(TLP1_WHITE),
                            Some("green") => Some(TLP1_GREEN),
                            Some("amber") => Some(TLP1_AMBER),
                            Some("red") => Some(TLP1_RED),
                            _ => None,
                        };
                        let own = obj.get("id").and_then(Value::as_str);
                        if canonical.is_some()
                            && obj.get("created").and_then(Value::as_str)
                                != Some("2017-01-20T00:00:00.000Z")
                        {
                            cx.err(
                                &root.key("created"),
                                "a TLP 1.0 marking definition must be the one the STIX specification defines, created 2017-01-20T00:00:00.000Z",
                            );
                        }
                        if let (Some(c), Some(own)) = (canonical, own) {
                            if own != c {
                                cx.err(
                                    &root.key("id"),
                                    format!("a TLP 1.0 marking definition must be the one the STIX specification defines: TLP:{} is {c}", v.as_str().unwrap_or("").to_uppercase()),
                                );
                            }
                        }
                    }
                    None => cx.err(&dp.key("tlp"), "required property is missing"),
                },
                "statement" => match d.get("statement") {
                    Some(v) => check_str(cx, &dp.key("statement"), v),
                    None => cx.err(&dp.key("statement"), "required property is missing"),
                },
                _ => {}
            }
        }
        _ => {}
    }
    let own = obj.get("id").and_then(Value::as_str);
    if let (Some(own), Some(Value::Array(refs))) = (own, obj.get("object_marking_refs")) {
        for (i, r) in refs.iter().enumerate() {
            if r.as_str() == Some(own) {
                cx.err(
                    &root.key("object_marking_refs").idx(i),
                    "a marking definition must not mark itself (circular reference)",
                );
            }
        }
    }
    if let (Some(own), Some(Value::Array(gms))) = (own, obj.get("granular_markings")) {
        for (i, gm) in gms.iter().enumerate() {
            if gm.get("marking_ref").and_then(Value::as_str) == Some(own) {
                cx.err(
                    &root.key("granular_markings").idx(i).key("marking_ref"),
                    "a marking definition must not mark itself (circular reference)",
                );
            }
        }
    }
}

/// Validate an object map; returns the errors (empty when valid).
pub(crate) fn validate_map(obj: &Map<String, Value>) -> Vec<StixError> {
    let id_for_msgs = obj
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("<unknown>");
    let mut cx = Ctx {
        id: id_for_msgs,
        errors: Vec::new(),
    };
    let type_str = obj.get("type").and_then(Value::as_str);
    let tspec = type_str.and_then(type_spec);
    let category = type_str.map(spec::category);
    let parsed = check_header(&mut cx, obj, category);
    let type_ = parsed.type_.unwrap_or("");
    let _ = parsed.id;

    let (common, common_required): (&[(&str, K)], &[&str]) = match category {
        Some(ObjectCategory::Sco) => (SCO_COMMON, SCO_REQUIRED),
        Some(ObjectCategory::Meta) if type_ == "marking-definition" => {
            (MARKING_COMMON, MARKING_REQUIRED)
        }
        Some(ObjectCategory::Custom) | None => (CUSTOM_COMMON, &["type", "id"]),
        _ => (SDO_COMMON, SDO_REQUIRED),
    };
    let own: &[(&str, K)] = tspec.map_or(&[], |s| s.shape.props);
    let root = Path::ROOT;
    for (k, v) in obj {
        let p = root.key(k);
        match lookup(own, k).or_else(|| lookup(common, k)) {
            Some(kind) => check_kind(&mut cx, &p, v, kind, type_),
            None => check_custom_property(&mut cx, &p, k, v),
        }
    }
    for r in common_required
        .iter()
        .chain(tspec.map_or(&[][..], |s| s.shape.required))
    {
        if !obj.contains_key(*r) {
            cx.err(&root.key(r), "required property is missing");
        }
    }
    check_type_rules(&mut cx, obj, type_);
    check_selectors(&mut cx, obj);
    cx.errors
}

/// Build the typed view of a map that passed validation.
fn typed(raw: Map<String, Value>) -> StixObject {
    let s = |k: &str| raw.get(k).and_then(Value::as_str).map(str::to_string);
    StixObject {
        id: s("id").unwrap_or_default(),
        type_: s("type").unwrap_or_default(),
        spec_version: s("spec_version").unwrap_or_else(|| "2.1".to_string()),
        created: ts_of(&raw, "created"),
        modified: ts_of(&raw, "modified"),
        object_marking_refs: raw
            .get("object_marking_refs")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        raw,
    }
}

fn not_an_object(v: &Value) -> Vec<StixError> {
    vec![StixError {
        object_id: "<unknown>".to_string(),
        path: String::new(),
        message: format!("a STIX object must be a JSON object, not {}", kind_name(v)),
    }]
}

pub(crate) fn parse_object(value: &Value) -> Result<StixObject, Vec<StixError>> {
    let Some(map) = value.as_object() else {
        return Err(not_an_object(value));
    };
    let errors = validate_map(map);
    if errors.is_empty() {
        Ok(typed(map.clone()))
    } else {
        Err(errors)
    }
}

pub(crate) fn parse_object_owned(value: Value) -> Result<StixObject, Vec<StixError>> {
    let Value::Object(map) = value else {
        return Err(not_an_object(&value));
    };
    let errors = validate_map(&map);
    if errors.is_empty() {
        Ok(typed(map))
    } else {
        Err(errors)
    }
}
