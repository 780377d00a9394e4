//! Observations: what patterns are matched against.
//!
//! One [`Observation`] is one STIX 2.1 `observed-data` object with the cyber-observable objects
//! (SCOs) it refers to. Both forms of STIX 2.1 are read: `object_refs` with the SCOs beside it
//! (keyed by their ids), and the deprecated inline `objects` dictionary (keyed by its keys).
//! References (`*_ref`, `*_refs`) are resolved against these keys.

use crate::error::ObservationError;
use crate::timestamp::Timestamp;
use serde_json::Value;
use std::collections::HashMap;

/// One observed-data object with its SCOs.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The observed-data id (or any label the caller chooses).
    pub id: String,
    /// Start of the observation window.
    pub first_observed: Timestamp,
    /// End of the observation window.
    pub last_observed: Timestamp,
    /// How many times it was observed; counts as that many observations for binding (≥ 1).
    pub number_observed: u64,
    /// The SCOs, keyed by reference id (an SCO id, or the inline dictionary key).
    pub objects: Vec<(String, Value)>,
}

fn id_of(od: &Value) -> String {
    od.get("id")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string()
}

fn timestamp_prop(od: &Value, property: &'static str) -> Result<Timestamp, ObservationError> {
    let s = od
        .get(property)
        .and_then(Value::as_str)
        .ok_or_else(|| ObservationError::Property {
            id: id_of(od),
            property,
            expected: "a timestamp string",
        })?;
    Timestamp::parse(s).ok_or_else(|| ObservationError::Timestamp {
        id: id_of(od),
        property,
        value: s.to_string(),
    })
}

impl Observation {
    /// Build an observation from one observed-data object, resolving `object_refs` through
    /// `lookup` (SCO id → SCO). Refs that do not resolve are skipped. Without `object_refs`, the
    /// inline `objects` dictionary is used.
    pub fn from_observed_data<'a>(
        od: &Value,
        lookup: impl Fn(&str) -> Option<&'a Value>,
    ) -> Result<Observation, ObservationError> {
        let first_observed = timestamp_prop(od, "first_observed")?;
        let last_observed = timestamp_prop(od, "last_observed")?;
        let number_observed = od
            .get("number_observed")
            .and_then(Value::as_u64)
            .filter(|n| *n >= 1)
            .ok_or_else(|| ObservationError::Property {
                id: id_of(od),
                property: "number_observed",
                expected: "an integer of at least 1",
            })?;
        let mut objects = Vec::new();
        if let Some(refs) = od.get("object_refs") {
            let refs = refs.as_array().ok_or_else(|| ObservationError::Property {
                id: id_of(od),
                property: "object_refs",
                expected: "a list of ids",
            })?;
            for r in refs.iter().filter_map(Value::as_str) {
                if let Some(obj) = lookup(r) {
                    objects.push((r.to_string(), obj.clone()));
                }
            }
        } else if let Some(inline) = od.get("objects") {
            let map = inline
                .as_object()
                .ok_or_else(|| ObservationError::Property {
                    id: id_of(od),
                    property: "objects",
                    expected: "a dictionary of objects",
                })?;
            for (k, v) in map {
                objects.push((k.clone(), v.clone()));
            }
        } else {
            return Err(ObservationError::Property {
                id: id_of(od),
                property: "object_refs",
                expected: "present (or the deprecated 'objects')",
            });
        }
        Ok(Observation {
            id: id_of(od),
            first_observed,
            last_observed,
            number_observed,
            objects,
        })
    }

    /// Every observed-data in a list of STIX objects, with SCOs resolved among those objects.
    pub fn from_objects(objects: &[Value]) -> Result<Vec<Observation>, ObservationError> {
        let by_id: HashMap<&str, &Value> = objects
            .iter()
            .filter_map(|o| Some((o.get("id")?.as_str()?, o)))
            .collect();
        objects
            .iter()
            .filter(|o| o.get("type").and_then(Value::as_str) == Some("observed-data"))
            .map(|od| Observation::from_observed_data(od, |r| by_id.get(r).copied()))
            .collect()
    }

    /// Observations from a bundle (`{"type": "bundle", "objects": […]}`), a JSON list of objects,
    /// or a single observed-data object (inline `objects` form).
    pub fn from_json(value: &Value) -> Result<Vec<Observation>, ObservationError> {
        match value {
            Value::Array(items) => Observation::from_objects(items),
            Value::Object(map) => match map.get("type").and_then(Value::as_str) {
                Some("observed-data") => {
                    Ok(vec![Observation::from_observed_data(value, |_| None)?])
                }
                _ => match map.get("objects").and_then(Value::as_array) {
                    Some(items) => Observation::from_objects(items),
                    None => Err(ObservationError::NotABundle),
                },
            },
            _ => Err(ObservationError::NotABundle),
        }
    }

    /// The SCO with this reference id.
    pub fn object(&self, key: &str) -> Option<&Value> {
        self.objects.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_forms() {
        let bundle = json!({"type": "bundle", "objects": [
            {"type": "observed-data", "id": "observed-data--1", "first_observed": "2020-01-01T00:00:00Z",
             "last_observed": "2020-01-01T00:00:00Z", "number_observed": 2, "object_refs": ["ipv4-addr--1", "ipv4-addr--missing"]},
            {"type": "ipv4-addr", "id": "ipv4-addr--1", "value": "1.2.3.4"}
        ]});
        let obs = Observation::from_json(&bundle).unwrap();
        assert_eq!(obs.len(), 1);
        assert_eq!(obs[0].number_observed, 2);
        assert_eq!(obs[0].objects.len(), 1);
        assert!(obs[0].object("ipv4-addr--1").is_some());

        let inline = json!({"type": "observed-data", "id": "observed-data--2", "first_observed": "2020-01-01T00:00:00Z",
            "last_observed": "2020-01-01T00:00:01Z", "number_observed": 1, "objects": {"0": {"type": "file", "name": "a"}}});
        let obs = Observation::from_json(&inline).unwrap();
        assert!(obs[0].object("0").is_some());
    }

    #[test]
    fn errors_name_the_object_and_property() {
        let bad = json!({"type": "observed-data", "id": "observed-data--3", "first_observed": "yesterday",
            "last_observed": "2020-01-01T00:00:00Z", "number_observed": 1, "objects": {}});
        let err = Observation::from_json(&bad).unwrap_err().to_string();
        assert!(
            err.contains("observed-data--3") && err.contains("first_observed"),
            "{err}"
        );
        let zero = json!({"type": "observed-data", "id": "observed-data--4", "first_observed": "2020-01-01T00:00:00Z",
            "last_observed": "2020-01-01T00:00:00Z", "number_observed": 0, "objects": {}});
        assert!(Observation::from_json(&zero)
            .unwrap_err()
            .to_string()
            .contains("number_observed"));
    }
}
