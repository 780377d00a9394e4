//! STIX 2.1 observed-data, from one JSON document (a bundle, one object, or an array of objects) or
//! from JSON lines (each line a bundle or an object). observed-data may use `object_refs` with the SCOs
//! elsewhere in the input, or the deprecated inline `objects`.

use super::{canonical_path, BadRecord, Kind};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;

/// One observed-data with the SCOs it refers to.
#[derive(Debug, Clone)]
pub struct StixObservation {
    /// The observed-data id.
    pub id: String,
    /// The line it came from (1 for a single JSON document).
    pub line: u64,
    pub observed_data: Value,
    /// The SCOs named by `object_refs` (empty for the inline `objects` form).
    pub scos: Vec<Value>,
}

impl StixObservation {
    /// The observation's time span (first_observed, last_observed), when readable.
    pub fn span(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let t = |k: &str| {
            self.observed_data
                .get(k)
                .and_then(Value::as_str)
                .and_then(super::parse_time)
        };
        Some((t("first_observed")?, t("last_observed")?))
    }

    /// Every scalar property of its SCOs that is not inside a list, as (`TYPE:PATH`, kind, text): what
    /// the bulk matcher looks up in its indexes.
    pub fn fields(&self) -> Vec<(String, Kind, String)> {
        let mut out = Vec::new();
        let mut visit = |sco: &Value| {
            if let Some(ty) = sco.get("type").and_then(Value::as_str) {
                if let Value::Object(m) = sco {
                    let mut path = Vec::new();
                    flatten(ty, m, &mut path, &mut out);
                }
            }
        };
        for s in &self.scos {
            visit(s);
        }
        if let Some(Value::Object(objs)) = self.observed_data.get("objects") {
            for s in objs.values() {
                visit(s);
            }
        }
        out
    }
}

fn flatten(
    ty: &str,
    m: &serde_json::Map<String, Value>,
    path: &mut Vec<String>,
    out: &mut Vec<(String, Kind, String)>,
) {
    for (k, v) in m {
        path.push(k.clone());
        let key = || format!("{ty}:{}", canonical_path(path));
        match v {
            Value::String(s) => out.push((key(), Kind::Str, s.clone())),
            Value::Number(n) if n.is_i64() || n.is_u64() => {
                out.push((key(), Kind::Int, n.to_string()))
            }
            Value::Number(n) => out.push((key(), Kind::Float, n.to_string())),
            Value::Bool(b) => out.push((key(), Kind::Bool, b.to_string())),
            Value::Object(inner) => flatten(ty, inner, path, out),
            _ => {}
        }
        path.pop();
    }
}

fn objects_of(v: Value, into: &mut Vec<Value>) {
    match v {
        Value::Array(a) => into.extend(a),
        Value::Object(ref m) if m.get("type").and_then(Value::as_str) == Some("bundle") => {
            if let Value::Object(mut m) = v {
                if let Some(Value::Array(a)) = m.remove("objects") {
                    into.extend(a);
                }
            }
        }
        other => into.push(other),
    }
}

/// Reads observed-data from `bytes`. Returns the observations and the records that could not be used.
pub fn read_stix(bytes: &[u8]) -> (Vec<StixObservation>, Vec<BadRecord>) {
    let mut bad = Vec::new();
    // (line, object)
    let mut objects: Vec<(u64, Value)> = Vec::new();
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => {
            let mut all = Vec::new();
            objects_of(v, &mut all);
            objects.extend(all.into_iter().map(|o| (1, o)));
        }
        Err(_) => {
            for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
                let n = i as u64 + 1;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice::<Value>(line) {
                    Ok(v) => {
                        let mut all = Vec::new();
                        objects_of(v, &mut all);
                        objects.extend(all.into_iter().map(|o| (n, o)));
                    }
                    Err(e) => bad.push(BadRecord {
                        line: n,
                        message: format!("not JSON: {e}"),
                    }),
                }
            }
        }
    }
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for (i, (_, o)) in objects.iter().enumerate() {
        if let Some(id) = o.get("id").and_then(Value::as_str) {
            by_id.insert(id.to_string(), i);
        }
    }
    let mut out = Vec::new();
    for (line, o) in &objects {
        if o.get("type").and_then(Value::as_str) != Some("observed-data") {
            continue;
        }
        let Some(id) = o.get("id").and_then(Value::as_str) else {
            bad.push(BadRecord {
                line: *line,
                message: "observed-data without an id".into(),
            });
            continue;
        };
        let mut scos = Vec::new();
        let mut missing = None;
        match (o.get("object_refs"), o.get("objects")) {
            (Some(Value::Array(refs)), _) => {
                for r in refs {
                    match r.as_str().and_then(|r| by_id.get(r)) {
                        Some(&i) => scos.push(objects[i].1.clone()),
                        None => {
                            missing = Some(r.to_string());
                            break;
                        }
                    }
                }
            }
            (None, Some(Value::Object(_))) => {}
            _ => {
                bad.push(BadRecord {
                    line: *line,
                    message: format!("{id}: observed-data needs object_refs or objects"),
                });
                continue;
            }
        }
        if let Some(m) = missing {
            bad.push(BadRecord {
                line: *line,
                message: format!("{id}: object_refs names {m}, which is not in the input"),
            });
            continue;
        }
        // SCOs referenced from the SCOs (`*_ref`, `*_refs`) come along, so dereferencing works.
        let mut k = 0;
        while k < scos.len() {
            let refs: Vec<String> = sco_refs(&scos[k]);
            for r in refs {
                if let Some(&i) = by_id.get(&r) {
                    if !scos
                        .iter()
                        .any(|s| s.get("id").and_then(Value::as_str) == Some(&r))
                    {
                        scos.push(objects[i].1.clone());
                    }
                }
            }
            k += 1;
            if scos.len() > 10_000 {
                break;
            }
        }
        out.push(StixObservation {
            id: id.to_string(),
            line: *line,
            observed_data: o.clone(),
            scos,
        });
    }
    (out, bad)
}

fn sco_refs(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Value::Object(m) = v {
        for (k, val) in m {
            if k.ends_with("_ref") {
                if let Some(s) = val.as_str() {
                    out.push(s.to_string());
                }
            } else if k.ends_with("_refs") {
                if let Some(a) = val.as_array() {
                    out.extend(a.iter().filter_map(Value::as_str).map(str::to_string));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OD: &str = r#"{"type":"observed-data","spec_version":"2.1","id":"observed-data--b67d30ff-02ac-498a-92f9-32f845f448cf","created":"2016-04-06T19:58:16.000Z","modified":"2016-04-06T19:58:16.000Z","first_observed":"2015-12-21T19:00:00Z","last_observed":"2015-12-21T19:00:00Z","number_observed":1,"object_refs":["ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd"]}"#;
    const IP: &str = r#"{"type":"ipv4-addr","spec_version":"2.1","id":"ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd","value":"198.51.100.3"}"#;

    #[test]
    fn bundle_with_refs() {
        let bundle = format!(
            r#"{{"type":"bundle","id":"bundle--6e5d4e45-8b2a-4c0e-9b57-6b7d7cf0a1a2","objects":[{OD},{IP}]}}"#
        );
        let (obs, bad) = read_stix(bundle.as_bytes());
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(obs.len(), 1);
        assert_eq!(obs[0].scos.len(), 1);
        assert_eq!(
            obs[0].fields(),
            vec![
                ("ipv4-addr:type".into(), Kind::Str, "ipv4-addr".into()),
                ("ipv4-addr:spec_version".into(), Kind::Str, "2.1".into()),
                (
                    "ipv4-addr:id".into(),
                    Kind::Str,
                    "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd".into()
                ),
                ("ipv4-addr:value".into(), Kind::Str, "198.51.100.3".into()),
            ]
        );
        assert!(obs[0].span().is_some());
    }

    #[test]
    fn json_lines_inline_and_bad_lines() {
        let inline = r#"{"type":"observed-data","id":"observed-data--1","first_observed":"2015-12-21T19:00:00Z","last_observed":"2015-12-21T19:00:00Z","number_observed":2,"objects":{"0":{"type":"file","hashes":{"SHA-256":"aa"}}}}"#;
        let dangling = OD.replace("ff26c055", "00000000");
        let text = format!("{inline}\nnot json\n{IP}\n{OD}\n{dangling}\n{{\"type\":\"observed-data\",\"id\":\"observed-data--2\"}}\n");
        let (obs, bad) = read_stix(text.as_bytes());
        assert_eq!(obs.len(), 2);
        assert_eq!(obs[0].line, 1);
        assert_eq!(
            obs[0].fields(),
            vec![
                ("file:type".into(), Kind::Str, "file".into()),
                ("file:hashes.'SHA-256'".into(), Kind::Str, "aa".into())
            ]
        );
        assert_eq!(obs[1].line, 4);
        let lines: Vec<u64> = bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![2, 5, 6]);
        assert!(bad[1].message.contains("not in the input"));
    }
}
