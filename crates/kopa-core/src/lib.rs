//! Kopa's domain, without I/O, in modules by concept:
//!
//! - [`identity`]: organisations, users, roles, the principal an act is done as;
//! - [`permission`]: who may *do* what, the one rule every interface asks;
//! - [`visibility`]: who may *see* an object version (the rule's inputs and its plain statement) and
//!   [`audience`]: audiences qualified by node;
//! - [`tlp`]: labels and the narrowest of an object's signs; [`values`]: what search matches;
//! - [`audit`]: the hash-chained log's entries; [`clock`]: the one place that reads the time;
//! - [`names`]: rules for the names of organisations and users.
//!
//! The visibility rule is *applied* in exactly one place, the store query (`kopa-store`).

// Production code handles every failure; `unwrap` is for tests (clippy.toml allows it there).
#![warn(clippy::unwrap_used)]

pub mod audience;
pub mod audit;
pub mod clock;
pub mod names;
pub mod permission;
pub mod tlp;
pub mod values;

pub use clock::{Clock, SharedClock, SystemClock, TestClock};
pub use tlp::{Tlp, TlpSigns};
pub use values::searchable_values;

/// Id of the Kopa audience extension (a STIX 2.1 property extension) with which a producer names the
/// organisations and users an object is addressed to.
pub const AUDIENCE_EXTENSION_ID: &str =
    "extension-definition--5c2b9a4e-7d1f-4a63-9e0b-8f3c1d2a6b75";

/// The extension-definition object of the Kopa audience extension, as Kopa ships it (STIX JSON).
pub const AUDIENCE_EXTENSION_DEFINITION: &str =
    include_str!("../data/audience-extension-definition.json");

/// The five TLP 2.0 marking-definition objects as OASIS publishes them (a STIX bundle), shipped with
/// every node so that objects referencing them can be resolved.
pub const TLP2_MARKING_DEFINITIONS: &str = include_str!("../data/tlp-2.0-marking-definitions.json");
pub mod identity;
pub mod visibility;

pub use identity::{OrgId, Principal, Role, UserId};
pub use visibility::{Audience, PeerAudience, Reader, Stewardship};

/// Names of organisations and users a producer addressed an object to, read from the Kopa audience
/// extension (see [`AUDIENCE_EXTENSION_ID`]). The names are for people; what grants access is
/// [`AddressedTo::refs`], the identities the origin node resolved them to (see [`audience`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressedTo {
    pub organisations: Vec<String>,
    pub recipients: Vec<String>,
    /// The qualified identities the origin node wrote beside the names (`organisation_refs`,
    /// `recipient_refs`); `None` when the object carries none (a local post before its node
    /// resolves the names, or an object from a node that does not qualify them).
    pub refs: Option<audience::Refs>,
    /// Whether the object carries the audience extension at all.
    pub present: bool,
}

/// Problems with the Kopa audience extension on an object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudienceError {
    #[error("extensions.'{AUDIENCE_EXTENSION_ID}'.{0} must be a list of strings")]
    NotStringList(&'static str),
    #[error(
        "extensions.'{AUDIENCE_EXTENSION_ID}'.{0} must be a list of {{\"node\", \"name\"}} objects"
    )]
    NotRefList(&'static str),
    #[error("extensions.'{AUDIENCE_EXTENSION_ID}' must be an object")]
    NotObject,
}

/// Read the Kopa audience extension of an object, if present.
pub fn addressed_to(
    raw: &serde_json::Map<String, serde_json::Value>,
) -> Result<AddressedTo, AudienceError> {
    let Some(ext) = raw
        .get("extensions")
        .and_then(|e| e.get(AUDIENCE_EXTENSION_ID))
    else {
        return Ok(AddressedTo::default());
    };
    let ext = ext.as_object().ok_or(AudienceError::NotObject)?;
    let list = |key: &'static str| -> Result<Vec<String>, AudienceError> {
        match ext.get(key) {
            None => Ok(Vec::new()),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or(AudienceError::NotStringList(key))
                })
                .collect(),
            Some(_) => Err(AudienceError::NotStringList(key)),
        }
    };
    Ok(AddressedTo {
        organisations: list("organisations")?,
        recipients: list("recipients")?,
        refs: audience::Refs::read(ext)?,
        present: true,
    })
}
#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn shipped_definitions_are_valid_stix() {
        let ext: serde_json::Value = serde_json::from_str(AUDIENCE_EXTENSION_DEFINITION).unwrap();
        let parsed =
            kopa_stix::parse_object(&ext).expect("the audience extension-definition is valid");
        assert_eq!(parsed.id, AUDIENCE_EXTENSION_ID);

        let bundle: serde_json::Value = serde_json::from_str(TLP2_MARKING_DEFINITIONS).unwrap();
        let objects = bundle["objects"].as_array().unwrap();
        assert_eq!(objects.len(), 5);
        for (obj, (id, tlp)) in objects.iter().zip(tlp::TLP2_MARKINGS) {
            let parsed = kopa_stix::parse_object(obj).expect("OASIS TLP marking is valid");
            assert_eq!(parsed.id, id);
            assert_eq!(obj["name"], tlp.as_str());
        }
    }

    #[test]
    fn reads_audience_extension() {
        let obj: serde_json::Value = serde_json::json!({
            "extensions": { AUDIENCE_EXTENSION_ID: {
                "extension_type": "property-extension",
                "organisations": ["Bank A"], "recipients": ["alice"] } }
        });
        let a = addressed_to(obj.as_object().unwrap()).unwrap();
        assert_eq!(a.organisations, vec!["Bank A"]);
        assert_eq!(a.recipients, vec!["alice"]);
        let bad =
            serde_json::json!({"extensions": { AUDIENCE_EXTENSION_ID: {"recipients": "alice"}}});
        assert_eq!(
            addressed_to(bad.as_object().unwrap()),
            Err(AudienceError::NotStringList("recipients"))
        );
    }
}
