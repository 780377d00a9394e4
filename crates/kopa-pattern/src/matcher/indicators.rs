//! Reading STIX indicators for the bulk matcher: from a bundle (or one object, or an array) or from JSON
//! lines, keeping only what matching needs (id, modified, pattern, validity, revoked). Indicators whose
//! `pattern_type` is not `stix` are skipped and counted.

use chrono::DateTime;
use serde::Deserialize;

/// One indicator as the matcher needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorInput {
    pub id: String,
    /// `modified` as milliseconds since the epoch (0 when absent): the latest version wins.
    pub modified: i64,
    pub pattern: String,
    /// Milliseconds since the epoch; `None` = unbounded.
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
    pub revoked: bool,
}

/// An indicator that cannot be used, with where it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct IndicatorError {
    /// "line N" or the indicator id.
    pub location: String,
    pub message: String,
}

#[derive(Deserialize)]
struct Lite {
    #[serde(rename = "type")]
    ty: Option<String>,
    id: Option<String>,
    modified: Option<String>,
    pattern: Option<String>,
    pattern_type: Option<String>,
    valid_from: Option<String>,
    valid_until: Option<String>,
    #[serde(default)]
    revoked: bool,
    #[serde(default, deserialize_with = "objects_list")]
    objects: Option<Vec<Lite>>,
}

/// A bundle's `objects` list; any other value (observed-data's inline `objects` dictionary) is skipped.
fn objects_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<Lite>>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<Vec<Lite>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of objects")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut v = Vec::new();
            while let Some(x) = seq.next_element::<Lite>()? {
                if x.ty.as_deref() == Some("indicator") || x.objects.is_some() {
                    v.push(x);
                }
            }
            Ok(Some(v))
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

fn millis(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp_millis())
}

/// What reading indicators found.
#[derive(Debug, Default)]
pub struct IndicatorRead {
    pub errors: Vec<IndicatorError>,
    /// Indicators with another `pattern_type`.
    pub skipped: u64,
}

fn visit(
    lite: Lite,
    loc: &dyn Fn() -> String,
    out: &mut dyn FnMut(IndicatorInput),
    read: &mut IndicatorRead,
) {
    if let Some(objs) = lite.objects {
        for o in objs {
            visit(o, loc, out, read);
        }
        return;
    }
    if lite.ty.as_deref() != Some("indicator") {
        return;
    }
    let id = lite.id.unwrap_or_default();
    let err = |m: String| IndicatorError {
        location: if id.is_empty() { loc() } else { id.clone() },
        message: m,
    };
    if lite.pattern_type.as_deref().is_some_and(|t| t != "stix") {
        read.skipped += 1;
        return;
    }
    let Some(pattern) = lite.pattern else {
        read.errors.push(err("indicator without a pattern".into()));
        return;
    };
    if id.is_empty() {
        read.errors.push(err("indicator without an id".into()));
        return;
    }
    let time = |s: Option<String>, name: &str| -> Result<Option<i64>, IndicatorError> {
        match s {
            None => Ok(None),
            Some(s) => millis(&s)
                .map(Some)
                .ok_or_else(|| err(format!("{name} {s:?} is not a timestamp"))),
        }
    };
    let r = (|| {
        Ok::<_, IndicatorError>(IndicatorInput {
            modified: time(lite.modified, "modified")?.unwrap_or(0),
            valid_from: time(lite.valid_from, "valid_from")?,
            valid_until: time(lite.valid_until, "valid_until")?,
            id: id.clone(),
            pattern,
            revoked: lite.revoked,
        })
    })();
    match r {
        Ok(i) => out(i),
        Err(e) => read.errors.push(e),
    }
}

/// Reads indicators from STIX JSON (one document) or JSON lines, calling `out` for each.
pub fn read_indicators(bytes: &[u8], mut out: impl FnMut(IndicatorInput)) -> IndicatorRead {
    let mut read = IndicatorRead::default();
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if first == Some(b'[') {
        match serde_json::from_slice::<Vec<Lite>>(bytes) {
            Ok(v) => {
                for l in v {
                    visit(l, &|| "array".into(), &mut out, &mut read);
                }
            }
            Err(e) => read.errors.push(IndicatorError {
                location: format!("line {}", e.line()),
                message: format!("not JSON: {e}"),
            }),
        }
        return read;
    }
    // One document spanning the whole input?
    let mut de = serde_json::Deserializer::from_slice(bytes).into_iter::<Lite>();
    if let Some(Ok(l)) = de.next() {
        if de.next().is_none() {
            visit(l, &|| "line 1".into(), &mut out, &mut read);
            return read;
        }
    }
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let n = i + 1;
        match serde_json::from_slice::<Lite>(line) {
            Ok(l) => visit(l, &|| format!("line {n}"), &mut out, &mut read),
            Err(e) => read.errors.push(IndicatorError {
                location: format!("line {n}"),
                message: format!("not JSON: {e}"),
            }),
        }
    }
    read
}

/// Reads indicators from a reader: JSON lines are streamed one line at a time (only the compiled form of
/// each indicator is kept); a document spanning several lines (a pretty-printed bundle) is read whole.
pub fn read_indicators_from<R: std::io::BufRead>(
    mut r: R,
    mut out: impl FnMut(IndicatorInput),
) -> std::io::Result<IndicatorRead> {
    let mut read = IndicatorRead::default();
    let mut line = Vec::new();
    let mut n = 0usize;
    // The first non-blank line decides.
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Ok(read);
        }
        n += 1;
        if !line.iter().all(u8::is_ascii_whitespace) {
            break;
        }
    }
    match serde_json::from_slice::<Lite>(&line) {
        Ok(l) => visit(l, &|| format!("line {n}"), &mut out, &mut read),
        Err(_) => {
            let mut all = std::mem::take(&mut line);
            r.read_to_end(&mut all)?;
            let mut inner = read_indicators(&all, out);
            // Line numbers are relative to the first non-blank line.
            if n > 1 {
                for e in &mut inner.errors {
                    if let Some(k) = e
                        .location
                        .strip_prefix("line ")
                        .and_then(|k| k.parse::<usize>().ok())
                    {
                        e.location = format!("line {}", k + n - 1);
                    }
                }
            }
            return Ok(inner);
        }
    }
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Ok(read);
        }
        n += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Lite>(&line) {
            Ok(l) => visit(l, &|| format!("line {n}"), &mut out, &mut read),
            Err(e) => read.errors.push(IndicatorError {
                location: format!("line {n}"),
                message: format!("not JSON: {e}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_and_lines() {
        let b = r#"{"type":"bundle","id":"bundle--1","objects":[
          {"type":"indicator","id":"indicator--1","pattern":"[ipv4-addr:value = '1.2.3.4']","pattern_type":"stix","valid_from":"2020-01-01T00:00:00Z","modified":"2020-01-01T00:00:00.000Z"},
          {"type":"indicator","id":"indicator--2","pattern":"alert tcp any any","pattern_type":"snort","valid_from":"2020-01-01T00:00:00Z"},
          {"type":"malware","id":"malware--1","name":"x"}]}"#;
        let mut got = vec![];
        let r = read_indicators(b.as_bytes(), |i| got.push(i));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].valid_from, Some(1_577_836_800_000));
        assert_eq!(r.skipped, 1);
        assert!(r.errors.is_empty());

        let lines = "{\"type\":\"indicator\",\"id\":\"indicator--3\",\"pattern\":\"[x:y = 1]\",\"revoked\":true}\nnope\n{\"type\":\"indicator\",\"id\":\"indicator--4\",\"pattern\":\"[x:y = 1]\",\"valid_until\":\"soon\"}\n";
        let mut got = vec![];
        let r = read_indicators(lines.as_bytes(), |i| got.push(i));
        assert_eq!(got.len(), 1);
        assert!(got[0].revoked);
        let locs: Vec<&str> = r.errors.iter().map(|e| e.location.as_str()).collect();
        assert_eq!(locs, vec!["line 2", "indicator--4"]);

        let mut streamed = vec![];
        let r2 = read_indicators_from(lines.as_bytes(), |i| streamed.push(i)).unwrap();
        assert_eq!(streamed, got);
        assert_eq!(r2.errors, r.errors);
        let pretty = format!(
            "\n{}",
            serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(b).unwrap())
                .unwrap()
        );
        let mut from_pretty = vec![];
        read_indicators_from(pretty.as_bytes(), |i| from_pretty.push(i)).unwrap();
        assert_eq!(from_pretty.len(), 1);
    }
}
