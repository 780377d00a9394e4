//! The values an analyst searches shared intelligence by ("which objects mention 203.0.113.7 or
//! evil.example?"): extracted once at write time and stored beside each object, so that search is an
//! exact index lookup.

use serde_json::{Map, Value};

/// String values of an object that REST search finds it by: an observable's `value`, its `hashes`,
/// the `name` of a file, the `path` of a directory, and the string literals of an indicator's
/// pattern. Duplicates and empty strings are dropped; order follows the object.
pub fn searchable_values(raw: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        let s = s.trim();
        if !s.is_empty() && !out.iter().any(|v| v == s) {
            out.push(s.to_string());
        }
    };
    if let Some(Value::String(v)) = raw.get("value") {
        push(v);
    }
    if let Some(Value::Object(hashes)) = raw.get("hashes") {
        for h in hashes.values() {
            if let Value::String(h) = h {
                push(h);
            }
        }
    }
    let type_ = raw.get("type").and_then(Value::as_str).unwrap_or("");
    match type_ {
        "file" | "domain-name" => {
            if let Some(Value::String(n)) = raw.get("name") {
                push(n);
            }
        }
        "directory" => {
            if let Some(Value::String(p)) = raw.get("path") {
                push(p);
            }
        }
        "indicator" => {
            if let Some(Value::String(p)) = raw.get("pattern") {
                for lit in pattern_literals(p) {
                    push(&lit);
                }
            }
        }
        _ => {}
    }
    out
}

/// The quoted string literals of a STIX pattern (`'…'`, with `\'` and `\\` unescaped), leaving out
/// timestamp literals (`t'…'`).
pub fn pattern_literals(pattern: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = pattern.char_indices().peekable();
    let bytes = pattern.as_bytes();
    while let Some((i, c)) = chars.next() {
        if c != '\'' {
            continue;
        }
        let is_timestamp = i > 0 && bytes[i - 1] == b't';
        let mut lit = String::new();
        let mut closed = false;
        while let Some((_, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        lit.push(escaped);
                    }
                }
                '\'' => {
                    closed = true;
                    break;
                }
                other => lit.push(other),
            }
        }
        if closed && !is_timestamp {
            out.push(lit);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(v: Value) -> Vec<String> {
        searchable_values(v.as_object().unwrap())
    }

    #[test]
    fn observables_and_hashes() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                json!({"type": "ipv4-addr", "value": "203.0.113.7"}),
                vec!["203.0.113.7"],
            ),
            (
                json!({"type": "domain-name", "value": "evil.example"}),
                vec!["evil.example"],
            ),
            (
                json!({"type": "file", "name": "dropper.exe",
                       "hashes": {"MD5": "d41d8cd98f00b204e9800998ecf8427e", "SHA-256": "aa"}}),
                vec!["d41d8cd98f00b204e9800998ecf8427e", "aa", "dropper.exe"],
            ),
            (
                json!({"type": "directory", "path": "C:\\tmp"}),
                vec!["C:\\tmp"],
            ),
            // An SDO's name is not a searchable value.
            (json!({"type": "malware", "name": "Emotet"}), vec![]),
            (json!({"type": "ipv4-addr", "value": ""}), vec![]),
        ];
        for (i, (obj, want)) in cases.into_iter().enumerate() {
            assert_eq!(values(obj), want, "case {i}");
        }
    }

    #[test]
    fn indicator_pattern_literals() {
        let ind = json!({"type": "indicator",
            "pattern": "[ipv4-addr:value = '203.0.113.7'] OR [domain-name:value = 'evil.example'] \
                        OR [file:name = 'it\\'s.exe'] OR [ipv4-addr:value = '203.0.113.7'] \
                        START t'2020-01-01T00:00:00Z' STOP t'2021-01-01T00:00:00Z'"});
        assert_eq!(values(ind), vec!["203.0.113.7", "evil.example", "it's.exe"]);
        // An unterminated literal yields nothing rather than garbage.
        assert_eq!(pattern_literals("[x:y = 'abc"), Vec::<String>::new());
        assert_eq!(pattern_literals("[x:y = 'a\\\\b']"), vec!["a\\b"]);
    }
}
