//! Inputs for the bulk matcher: STIX observed-data, JSON-lines logs (Elastic Common Schema by default),
//! Zeek TSV logs and CSV, all read from a `BufRead` or bytes the caller gives (no I/O of its own).
//!
//! A log record is read into [`LineFields`]: the mapped field values of one record (by [`Mapping`] target)
//! and its time, without building any STIX object. Only when the general evaluator is needed does
//! [`LineFields::to_observed_data`] build the STIX observed-data with its SCOs. A malformed record is
//! reported as a [`BadRecord`] (line number and reason) and the reader goes on with the next one.

pub mod csv;
pub mod json;
pub mod mapping;
pub mod stix;
pub mod zeek;

pub use mapping::{canonical_path, is_ipv6_text, Mapping, MappingError, ScoType, Target};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

/// The eight bytes of `w` (little-endian) tested for `byte` at once: the high bit is set in the lowest
/// byte that equals it (higher bits may be set spuriously, so only the lowest counts; the word is
/// non-zero exactly when some byte equals it). Shared by the readers' word-at-a-time scans.
#[inline(always)]
pub(crate) fn byte_mask(w: u64, byte: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let v = w ^ (ONES * u64::from(byte));
    v.wrapping_sub(ONES) & !v & HIGH
}

/// The kind of a scalar field value (as written in the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
    Float,
    Bool,
}

/// One mapped value in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldRef {
    /// Index into [`Mapping::targets`].
    pub target: u16,
    pub kind: Kind,
    start: u32,
    end: u32,
}

/// The mapped fields of one log record, kept in one reusable buffer.
#[derive(Debug, Default, Clone)]
pub struct LineFields {
    buf: String,
    fields: Vec<FieldRef>,
    time: Option<(u32, u32)>,
    time_rank: u8,
    pub(crate) scratch: Vec<u8>,
}

impl LineFields {
    pub fn new() -> Self {
        LineFields {
            time_rank: u8::MAX,
            ..Self::default()
        }
    }

    /// Empties the record for reuse.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.fields.clear();
        self.time = None;
        self.time_rank = u8::MAX;
    }

    /// Adds one mapped value.
    pub fn push(&mut self, target: u16, kind: Kind, value: &str) {
        let start = self.buf.len() as u32;
        self.buf.push_str(value);
        self.fields.push(FieldRef {
            target,
            kind,
            start,
            end: self.buf.len() as u32,
        });
    }

    /// Offers a time value with a preference rank (lower wins).
    pub fn offer_time(&mut self, rank: u8, value: &str) {
        if rank < self.time_rank {
            let start = self.buf.len() as u32;
            self.buf.push_str(value);
            self.time = Some((start, self.buf.len() as u32));
            self.time_rank = rank;
        }
    }

    /// The mapped values: (target index, kind, text).
    pub fn iter(&self) -> impl Iterator<Item = (u16, Kind, &str)> + '_ {
        self.fields.iter().map(|f| {
            (
                f.target,
                f.kind,
                &self.buf[f.start as usize..f.end as usize],
            )
        })
    }

    /// The text of the `i`th value (in the order of [`LineFields::iter`]).
    pub fn value(&self, i: usize) -> &str {
        let f = &self.fields[i];
        &self.buf[f.start as usize..f.end as usize]
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The record's time as written, if a timestamp field was present.
    pub fn time_text(&self) -> Option<&str> {
        self.time.map(|(s, e)| &self.buf[s as usize..e as usize])
    }

    /// The record's time, if present and readable.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        self.time_text().and_then(parse_time)
    }

    /// Builds the STIX 2.1 observed-data for this record, with its SCOs inline (`objects`, keys "0",
    /// "1", …) and `number_observed` 1; `time` is used for first/last_observed.
    pub fn to_observed_data(&self, mapping: &Mapping, id: &str, time: DateTime<Utc>) -> Value {
        let mut labels: Vec<&str> = Vec::new();
        let mut objects: Vec<Map<String, Value>> = Vec::new();
        for (target, kind, text) in self.iter() {
            let Some(t) = mapping.targets.get(target as usize) else {
                continue;
            };
            let ty = t.sco_type.resolve(text);
            // Objects are keyed by label and resolved type (an "ip" label may hold v4 and v6).
            let pos = labels.iter().zip(objects.iter()).position(|(l, o)| {
                *l == t.object && o.get("type").and_then(Value::as_str) == Some(ty)
            });
            let obj = match pos {
                Some(p) if !has_path(&objects[p], &t.path) => &mut objects[p],
                _ => {
                    labels.push(&t.object);
                    let mut m = Map::new();
                    m.insert("type".into(), Value::String(ty.to_string()));
                    objects.push(m);
                    objects.last_mut().expect("just pushed")
                }
            };
            set_path(obj, &t.path, scalar(kind, text));
        }
        let ts = time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut objs = Map::new();
        for (i, o) in objects.into_iter().enumerate() {
            objs.insert(i.to_string(), Value::Object(o));
        }
        serde_json::json!({
            "type": "observed-data",
            "spec_version": "2.1",
            "id": observed_data_id(id),
            "created": ts,
            "modified": ts,
            "first_observed": ts,
            "last_observed": ts,
            "number_observed": 1,
            "objects": objs,
        })
    }
}

/// A stable observed-data id for a record id such as "FILE:LINE" (a name-based, UUIDv5-shaped id).
pub fn observed_data_id(record: &str) -> String {
    // FNV-1a 128 over the record id, shaped as a version-5 UUID.
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in record.bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    let mut bytes = h.to_be_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "observed-data--{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn scalar(kind: Kind, text: &str) -> Value {
    match kind {
        Kind::Str => Value::String(text.to_string()),
        Kind::Int => text
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(text.to_string())),
        Kind::Float => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(text.to_string())),
        Kind::Bool => Value::Bool(text == "true"),
    }
}

fn has_path(obj: &Map<String, Value>, path: &[String]) -> bool {
    let mut cur = obj;
    for (i, seg) in path.iter().enumerate() {
        match cur.get(seg) {
            None => return false,
            Some(Value::Object(m)) if i + 1 < path.len() => cur = m,
            Some(_) => return true,
        }
    }
    true
}

fn set_path(obj: &mut Map<String, Value>, path: &[String], v: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for seg in parents {
        let entry = cur
            .entry(seg.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        match entry {
            Value::Object(m) => cur = m,
            _ => return,
        }
    }
    cur.insert(last.clone(), v);
}

/// Reads a record time: RFC 3339, or seconds since the epoch (Zeek's `ts`, possibly fractional).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') && !t.is_empty() {
        let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
        let secs: i64 = secs.parse().ok()?;
        let mut nanos = 0u32;
        let digits: String = frac.chars().take(9).collect();
        if !digits.is_empty() {
            nanos = format!("{digits:0<9}").parse().ok()?;
        }
        return Utc.timestamp_opt(secs, nanos).single();
    }
    None
}

/// A record that could not be read: its 1-based line number and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct BadRecord {
    pub line: u64,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_data_groups_fields() {
        let m = Mapping::ecs();
        let mut lf = LineFields::new();
        lf.clear();
        let t = |f: &str| m.target_of(f).unwrap() as u16;
        lf.push(t("source.ip"), Kind::Str, "10.0.0.1");
        lf.push(t("destination.ip"), Kind::Str, "2001:db8::1");
        lf.push(t("file.hash.md5"), Kind::Str, "aa");
        lf.push(t("file.hash.sha256"), Kind::Str, "bb");
        lf.push(t("file.size"), Kind::Int, "42");
        lf.offer_time(0, "2024-01-02T03:04:05Z");
        let time = lf.time().unwrap();
        let od = lf.to_observed_data(&m, "f.json:3", time);
        let objs = od["objects"].as_object().unwrap();
        assert_eq!(objs.len(), 3, "{od}");
        assert_eq!(objs["0"]["type"], "ipv4-addr");
        assert_eq!(objs["1"]["type"], "ipv6-addr");
        assert_eq!(objs["2"]["hashes"]["SHA-256"], "bb");
        assert_eq!(objs["2"]["hashes"]["MD5"], "aa");
        assert_eq!(objs["2"]["size"], 42);
        assert_eq!(od["first_observed"], "2024-01-02T03:04:05.000Z");
        assert_eq!(od["id"], observed_data_id("f.json:3"));
    }

    #[test]
    fn times() {
        assert_eq!(
            parse_time("1700000000.5").unwrap().timestamp_millis(),
            1_700_000_000_500
        );
        assert!(parse_time("2024-01-01T00:00:00+02:00").is_some());
        assert!(parse_time("yesterday").is_none());
    }
}
