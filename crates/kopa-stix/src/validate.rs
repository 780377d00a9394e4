//! Validation of STIX 2.1 objects. (Placeholder: replaced by the full validator.)

use crate::{StixError, StixObject, Timestamp};
use serde_json::Value;

pub(crate) fn parse_object(value: &Value) -> Result<StixObject, Vec<StixError>> {
    let err = |id: &str, path: &str, msg: &str| StixError {
        object_id: id.to_string(),
        path: path.to_string(),
        message: msg.to_string(),
    };
    let Some(map) = value.as_object() else {
        return Err(vec![err(
            "<unknown>",
            "",
            "a STIX object must be a JSON object",
        )]);
    };
    let id = map
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("<unknown>")
        .to_string();
    let type_ = map
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let ts = |k: &str| {
        map.get(k)
            .and_then(Value::as_str)
            .and_then(|s| Timestamp::parse(s).ok())
    };
    Ok(StixObject {
        spec_version: map
            .get("spec_version")
            .and_then(Value::as_str)
            .unwrap_or("2.1")
            .to_string(),
        created: ts("created"),
        modified: ts("modified"),
        object_marking_refs: map
            .get("object_marking_refs")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        raw: map.clone(),
        id,
        type_,
    })
}
