//! STIX 2.1 for Kopa: identifiers, timestamps, objects, their validation, and canonical JSON.
//!
//! This crate does no I/O. Everything a node accepts passes through [`parse_object`] (or
//! [`parse_object_owned`]), which checks an object against the STIX 2.1 rules and returns it with no
//! property lost or changed: [`StixObject::raw`] is the input map itself.
//!
//! # STIX validation
//!
//! Every predefined object type is known (all SDOs, SCOs, SROs, marking-definition, language-content,
//! extension-definition, with the predefined SCO extensions); any other well-formed type is a custom
//! object. For each object the validator checks:
//!
//! - `id` is `type--UUID` (an RFC 4122 UUID) and its type part equals `type`; `type` is a valid type name;
//! - `spec_version` is `"2.1"` (required except on SCOs; STIX 2.0 objects are refused with a clear message);
//! - timestamps have the STIX form `YYYY-MM-DDTHH:MM:SS[.s+]Z` (`created`/`modified` of SDOs and SROs to the
//!   millisecond at least) and their order (`modified >= created`,
//!   `valid_until > valid_from`, `last_seen >= first_seen`, `last_observed >= first_observed`,
//!   `stop_time > start_time`, network-traffic `end >= start`);
//! - required properties per type, and the rules that tie properties together (observed-data has exactly one
//!   of `objects`/`object_refs`; a location has region, country or coordinates; an artifact given by url has hashes; …);
//! - value kinds: strings, non-empty lists, booleans, integers in range (`confidence` 0–100,
//!   `number_observed` 1–999,999,999, ports 0–65535, …), hex and base64 properties, closed enumerations;
//! - references: every `*_ref`/`*_refs` (custom ones too) holds identifiers, and predefined ones point to the
//!   right types (`created_by_ref` → identity, `object_marking_refs` → marking-definition,
//!   `sighting_of_ref` → an SDO, …);
//! - hashes (MD5, SHA-1, SHA-256, SHA-512, SHA3 and others with a fixed length are checked as hex of that
//!   length; custom algorithm names by syntax), external references (`source_name` plus one of
//!   `description`/`url`/`external_id`; CVE and CAPEC ids), kill-chain phases, granular markings (selectors
//!   must select something in the object), extensions (an `extension-definition--…` key needs
//!   `extension_type`; predefined SCO extensions are checked property by property), marking definitions
//!   (statement, TLP 1.0 as the specification defines those objects, TLP 2.0 levels; no self-reference);
//! - custom property names (`^[a-z0-9_]{3,250}$`; the `x_` prefix is only recommended and not required),
//!   and that no property is `null` or an empty list.
//!
//! Numbers are kept exactly or refused: [`numbers_exact`] and [`inexact_numbers`] scan an object's
//! JSON text as sent for integers beyond 64 bits and decimals with more precision than a 64-bit
//! floating-point number holds, which parsing would otherwise round silently.
//!
//! Every error names the object id and the JSON path of the property (`external_references[0].source_name`)
//! and says what is wrong; all errors of an object are reported, not only the first. Indicator patterns are
//! checked for presence and type only; their grammar is the business of `kopa-pattern`.

// Production code handles every failure; `unwrap` is for tests (clippy.toml allows it there).
#![warn(clippy::unwrap_used)]

mod numbers;
mod spec;
pub mod timestamp;
mod validate;

pub use numbers::{inexact_numbers, numbers_exact};
pub use spec::{category, ObjectCategory, PREDEFINED_TYPES, TLP2_EXTENSION_ID};
pub use timestamp::Timestamp;

use serde_json::{Map, Value};

/// One validation problem: which object, which property (a JSON path such as `external_references[0].url`),
/// and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object_id}: {}{message}", path_prefix(.path))]
pub struct StixError {
    /// The object's `id`, or `<unknown>` when it has none.
    pub object_id: String,
    /// JSON path of the offending property, empty for the object itself.
    pub path: String,
    pub message: String,
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// A validated STIX object. The properties the node uses are typed; the whole object is kept in `raw`
/// exactly as it came, so that it round-trips without loss.
#[derive(Debug, Clone, PartialEq)]
pub struct StixObject {
    pub id: String,
    pub type_: String,
    /// `"2.1"`; SCOs may omit the property, and then this still says `"2.1"` (`raw` is not changed).
    pub spec_version: String,
    pub created: Option<Timestamp>,
    pub modified: Option<Timestamp>,
    pub object_marking_refs: Vec<String>,
    pub raw: Map<String, Value>,
}

impl StixObject {
    /// The TAXII version of the object: `modified`, else `created`, else `None` (SCOs and other
    /// unversioned objects take their `date_added`).
    pub fn version(&self) -> Option<Timestamp> {
        self.modified.or(self.created)
    }

    /// The object's category (SDO, SCO, SRO, meta object or custom).
    pub fn category(&self) -> ObjectCategory {
        spec::category(&self.type_)
    }
}

/// Parse and validate one STIX 2.1 object. All problems found are returned, not only the first.
///
/// ```
/// let v = serde_json::json!({
///     "type": "indicator", "spec_version": "2.1",
///     "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
///     "created": "2016-04-06T20:03:48.000Z", "modified": "2016-04-06T20:03:48.000Z",
///     "pattern": "[ipv4-addr:value = '203.0.113.7']", "pattern_type": "stix",
///     "valid_from": "2016-01-01T00:00:00Z",
/// });
/// let obj = kopa_stix::parse_object(&v).unwrap();
/// assert_eq!(serde_json::Value::Object(obj.raw), v);
/// ```
pub fn parse_object(value: &Value) -> Result<StixObject, Vec<StixError>> {
    validate::parse_object(value)
}

/// Like [`parse_object`], but takes the value by ownership and so avoids copying it.
pub fn parse_object_owned(value: Value) -> Result<StixObject, Vec<StixError>> {
    validate::parse_object_owned(value)
}

/// Validate an object without building a [`StixObject`]: the list of problems, empty when valid.
pub fn validate(value: &Value) -> Vec<StixError> {
    match value.as_object() {
        Some(m) => validate::validate_map(m),
        None => match validate::parse_object(value) {
            Ok(_) => Vec::new(),
            Err(e) => e,
        },
    }
}

/// Whether `s` is a STIX identifier: `type--UUID` with a valid type name and an RFC 4122 UUID.
pub fn is_identifier(s: &str) -> bool {
    validate::split_identifier(s).is_some()
}

/// The type part of a STIX identifier, if `s` is one.
pub fn identifier_type(s: &str) -> Option<&str> {
    validate::split_identifier(s)
}

/// RFC 8785 (JSON Canonicalization Scheme) serialization of a JSON value: object keys sorted by UTF-16 code
/// units, no whitespace, numbers in their shortest ECMAScript form, minimal string escaping. Signatures over
/// objects (federation provenance) are computed over this form.
///
/// ```
/// let v = serde_json::json!({"b": [1.0, 2e-7, "é"], "a": {"z": null, "y": true}});
/// assert_eq!(kopa_stix::canonical_json(&v), r#"{"a":{"y":true,"z":null},"b":[1,2e-7,"é"]}"#);
/// ```
pub fn canonical_json(value: &Value) -> String {
    // Serializing a `serde_json::Value` cannot fail: it holds no non-finite numbers and all its keys are
    // strings. The fallback is unreachable in practice and keeps this function total.
    serde_json_canonicalizer::to_string(value).unwrap_or_else(|_| value.to_string())
}
