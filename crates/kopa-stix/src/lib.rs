//! STIX 2.1 for Kopa: identifiers, timestamps, objects and their validation.
//!
//! This crate does no I/O. Everything a node accepts passes through [`parse_object`], which
//! checks an object against the STIX 2.1 rules and returns it with no property lost or changed.

pub mod timestamp;

pub use timestamp::Timestamp;

use serde_json::{Map, Value};

/// One validation problem: which object, which property (a JSON path such as `external_references[0].url`),
/// and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object_id}: {path}: {message}")]
pub struct StixError {
    /// The object's `id`, or `<unknown>` when it has none.
    pub object_id: String,
    /// JSON path of the offending property, empty for the object itself.
    pub path: String,
    pub message: String,
}

/// A validated STIX object. The properties the node uses are typed; the whole object is kept in `raw`
/// exactly as it came, so that it round-trips without loss.
#[derive(Debug, Clone, PartialEq)]
pub struct StixObject {
    pub id: String,
    pub type_: String,
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
}

/// Parse and validate one STIX 2.1 object. All problems found are returned, not only the first.
pub fn parse_object(value: &Value) -> Result<StixObject, Vec<StixError>> {
    validate::parse_object(value)
}

mod validate;
