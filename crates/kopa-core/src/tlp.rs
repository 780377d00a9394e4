//! Traffic Light Protocol 2.0 labels, and how an object's label is read from all its TLP signs:
//! object and granular markings (the OASIS TLP 2.0 and 1.0 marking definitions, and custom marking
//! definitions that carry a TLP), MISP-style `tlp:` labels, and the TLP a marking definition itself
//! defines. The narrowest sign wins.

use kopa_stix::TLP2_EXTENSION_ID;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// A TLP 2.0 label. The order is from widest to narrowest audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tlp {
    #[serde(rename = "TLP:CLEAR")]
    Clear,
    #[serde(rename = "TLP:GREEN")]
    Green,
    #[serde(rename = "TLP:AMBER")]
    Amber,
    #[serde(rename = "TLP:AMBER+STRICT")]
    AmberStrict,
    #[serde(rename = "TLP:RED")]
    Red,
}

/// TLP 2.0 marking definitions published by OASIS, with their labels.
pub const TLP2_MARKINGS: [(&str, Tlp); 5] = [
    (
        "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
        Tlp::Clear,
    ),
    (
        "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
        Tlp::Green,
    ),
    (
        "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
        Tlp::Amber,
    ),
    (
        "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
        Tlp::AmberStrict,
    ),
    (
        "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        Tlp::Red,
    ),
];

/// TLP 1.0 marking definitions predefined in STIX 2.1, mapped to TLP 2.0.
pub const TLP1_MARKINGS: [(&str, Tlp); 4] = [
    (
        "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
        Tlp::Clear,
    ),
    (
        "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
        Tlp::Green,
    ),
    (
        "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
        Tlp::Amber,
    ),
    (
        "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
        Tlp::Red,
    ),
];

impl Tlp {
    pub const ALL: [Tlp; 5] = [
        Tlp::Clear,
        Tlp::Green,
        Tlp::Amber,
        Tlp::AmberStrict,
        Tlp::Red,
    ];

    /// The label as written: `TLP:AMBER+STRICT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tlp::Clear => "TLP:CLEAR",
            Tlp::Green => "TLP:GREEN",
            Tlp::Amber => "TLP:AMBER",
            Tlp::AmberStrict => "TLP:AMBER+STRICT",
            Tlp::Red => "TLP:RED",
        }
    }

    /// A small integer for storage (0 = CLEAR … 4 = RED).
    pub fn rank(self) -> i64 {
        self as i64
    }

    pub fn from_rank(rank: i64) -> Option<Tlp> {
        Tlp::ALL.get(usize::try_from(rank).ok()?).copied()
    }

    /// The TLP 2.0 marking-definition id of this label.
    pub fn marking_id(self) -> &'static str {
        TLP2_MARKINGS[self as usize].0
    }

    /// Parse `TLP:AMBER`, `amber`, `tlp:amber+strict`, TLP 1.0's `white`, case-insensitively.
    pub fn parse(s: &str) -> Option<Tlp> {
        let lower = s.trim().to_ascii_lowercase();
        let name = lower.strip_prefix("tlp:").unwrap_or(&lower);
        Some(match name {
            "clear" | "white" => Tlp::Clear,
            "green" => Tlp::Green,
            "amber" => Tlp::Amber,
            "amber+strict" => Tlp::AmberStrict,
            "red" => Tlp::Red,
            _ => return None,
        })
    }

    /// The label of a TLP marking-definition id published by OASIS (2.0 or 1.0), compared
    /// case-insensitively.
    pub fn from_marking_id(id: &str) -> Option<Tlp> {
        TLP2_MARKINGS
            .iter()
            .chain(TLP1_MARKINGS.iter())
            .find(|(m, _)| m.eq_ignore_ascii_case(id))
            .map(|&(_, t)| t)
    }

    /// The label an object defines as a marking definition: the `tlp_2_0` value of the OASIS TLP 2.0
    /// extension, or the `tlp` of a TLP 1.0 `definition` (`definition_type: "tlp"`); the narrower
    /// when it carries both. `None` when it carries neither (a statement marking, an indicator).
    pub fn defined_by(raw: &Map<String, Value>) -> Option<Tlp> {
        let tlp2 = raw
            .get("extensions")
            .and_then(|e| e.get(TLP2_EXTENSION_ID))
            .and_then(|e| e.get("tlp_2_0"))
            .and_then(Value::as_str)
            .and_then(Tlp::parse);
        let tlp1 = raw
            .get("definition_type")
            .and_then(Value::as_str)
            .filter(|t| t.eq_ignore_ascii_case("tlp"))
            .and_then(|_| raw.get("definition")?.as_object())
            .and_then(|d| d.iter().find(|(k, _)| k.eq_ignore_ascii_case("tlp")))
            .and_then(|(_, v)| v.as_str())
            .and_then(Tlp::parse);
        tlp2.max(tlp1)
    }

    /// The label of an object: the narrowest of all its TLP signs (see [`TlpSigns`]), where
    /// `resolve` gives the label of a marking-definition id that OASIS did not publish (passed
    /// lower-cased; `None` when it is not known as a TLP marking). `None` when the object carries no
    /// TLP sign at all: it then takes the node default, narrowed to its owner organisation.
    pub fn of_object_with(
        raw: &Map<String, Value>,
        resolve: impl Fn(&str) -> Option<Tlp>,
    ) -> Option<Tlp> {
        TlpSigns::of_object(raw).label(resolve)
    }
}

/// Every TLP sign an object carries, read from the object alone (no I/O). Its label is the narrowest
/// of them all, so that no sign is ever overruled by a wider one:
///
/// - the marking definitions its `object_marking_refs` name, ids compared case-insensitively;
/// - the marking definitions its `granular_markings` name (a TLP:RED marking on one property makes
///   the whole object TLP:RED: Kopa shares objects whole);
/// - MISP-style `tlp:` entries in its `labels`;
/// - the TLP the object itself defines ([`Tlp::defined_by`]): a TLP marking definition is labelled by
///   its own TLP.
///
/// A named marking definition is either one of the nine OASIS ones (TLP 2.0 and 1.0), read here, or
/// a custom one, left in [`TlpSigns::custom`] for the caller to resolve against the marking
/// definitions it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlpSigns {
    /// The narrowest label read from the object alone.
    pub known: Option<Tlp>,
    /// The ids of the other marking definitions it names, lower-cased, sorted and without
    /// duplicates.
    pub custom: Vec<String>,
}

impl TlpSigns {
    /// The TLP signs of an object as parsed (its JSON properties).
    pub fn of_object(raw: &Map<String, Value>) -> TlpSigns {
        let strings = |key: &str| {
            raw.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
        };
        let granular = raw
            .get("granular_markings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|g| g.get("marking_ref")?.as_str());
        let mut known = Tlp::defined_by(raw);
        let mut custom = Vec::new();
        for id in strings("object_marking_refs").chain(granular) {
            match Tlp::from_marking_id(id) {
                Some(t) => known = known.max(Some(t)),
                None => custom.push(id.to_ascii_lowercase()),
            }
        }
        custom.sort_unstable();
        custom.dedup();
        let labels = strings("labels")
            .map(str::trim)
            .filter(|l| l.len() > 4 && l.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("tlp:")))
            .filter_map(Tlp::parse)
            .max();
        TlpSigns {
            known: known.max(labels),
            custom,
        }
    }

    /// The narrowest of the known label and the labels `resolve` gives the custom ids.
    pub fn label(&self, resolve: impl Fn(&str) -> Option<Tlp>) -> Option<Tlp> {
        self.custom
            .iter()
            .filter_map(|id| resolve(id))
            .fold(self.known, |a, b| a.max(Some(b)))
    }
}

impl fmt::Display for Tlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A custom marking definition the resolver in the tests below knows as TLP:RED.
    const CUSTOM_RED: &str = "marking-definition--0f5a5a3e-2b8e-4c7d-9a43-6b1d2c3e4f50";
    /// A custom marking definition the resolver does not know (a statement marking, say).
    const UNKNOWN: &str = "marking-definition--00000000-0000-4000-8000-000000000000";

    fn resolve(id: &str) -> Option<Tlp> {
        (id == CUSTOM_RED).then_some(Tlp::Red)
    }

    #[test]
    fn the_narrowest_sign_wins() {
        let red = TLP2_MARKINGS[4].0;
        let amber = TLP2_MARKINGS[2].0;
        let green = TLP2_MARKINGS[1].0;
        let granular =
            |id: &str, selector: &str| json!([{"marking_ref": id, "selectors": [selector]}]);
        let cases: Vec<(&str, Value, Option<Tlp>)> = vec![
            ("no sign at all", json!({}), None),
            (
                "TLP 2.0 marking",
                json!({"object_marking_refs": [green]}),
                Some(Tlp::Green),
            ),
            (
                "TLP 1.0 WHITE marking",
                json!({"object_marking_refs": [TLP1_MARKINGS[0].0]}),
                Some(Tlp::Clear),
            ),
            (
                "TLP 1.0 RED marking",
                json!({"object_marking_refs": [TLP1_MARKINGS[3].0]}),
                Some(Tlp::Red),
            ),
            (
                "the narrowest of two markings",
                json!({"object_marking_refs": [TLP2_MARKINGS[0].0, TLP2_MARKINGS[3].0]}),
                Some(Tlp::AmberStrict),
            ),
            (
                "upper-case OASIS RED id",
                json!({"object_marking_refs": [red.to_ascii_uppercase()]}),
                Some(Tlp::Red),
            ),
            (
                "upper-case UUID of the OASIS GREEN id",
                json!({"object_marking_refs": ["marking-definition--BAB4A63C-AED9-4CF5-A766-DFCA5ABAC2BB"]}),
                Some(Tlp::Green),
            ),
            (
                "upper-case TLP 1.0 RED id",
                json!({"object_marking_refs": [TLP1_MARKINGS[3].0.to_ascii_uppercase()]}),
                Some(Tlp::Red),
            ),
            (
                "MISP label alone",
                json!({"labels": ["tlp:amber+strict", "malicious"]}),
                Some(Tlp::AmberStrict),
            ),
            (
                "TLP 1.0 label",
                json!({"labels": ["TLP:WHITE"]}),
                Some(Tlp::Clear),
            ),
            (
                "unknown colour in a label",
                json!({"labels": ["tlp:purple"]}),
                None,
            ),
            (
                "a label whose fourth byte is inside a character",
                json!({"labels": ["abc\u{20ac}def"]}),
                None,
            ),
            (
                "GREEN marking beside a tlp:red label",
                json!({"object_marking_refs": [green], "labels": ["tlp:red"]}),
                Some(Tlp::Red),
            ),
            (
                "RED marking beside a tlp:clear label",
                json!({"object_marking_refs": [red], "labels": ["tlp:clear"]}),
                Some(Tlp::Red),
            ),
            (
                "RED granular marking on description",
                json!({"granular_markings": granular(red, "description")}),
                Some(Tlp::Red),
            ),
            (
                "AMBER object marking and RED granular marking",
                json!({"object_marking_refs": [amber], "granular_markings": granular(red, "name")}),
                Some(Tlp::Red),
            ),
            (
                "GREEN granular marking under an AMBER object marking",
                json!({"object_marking_refs": [amber], "granular_markings": granular(green, "name")}),
                Some(Tlp::Amber),
            ),
            (
                "language granular marking",
                json!({"granular_markings": [{"lang": "en", "selectors": ["description"]}]}),
                None,
            ),
            (
                "custom marking resolved to RED",
                json!({"object_marking_refs": [CUSTOM_RED]}),
                Some(Tlp::Red),
            ),
            (
                "custom RED marking in upper case beside GREEN",
                json!({"object_marking_refs": [green, CUSTOM_RED.to_ascii_uppercase()]}),
                Some(Tlp::Red),
            ),
            (
                "custom RED granular marking",
                json!({"granular_markings": granular(CUSTOM_RED, "pattern")}),
                Some(Tlp::Red),
            ),
            (
                "unknown custom marking: unmarked, the node default applies",
                json!({"object_marking_refs": [UNKNOWN]}),
                None,
            ),
            (
                "unknown custom marking beside GREEN",
                json!({"object_marking_refs": [UNKNOWN, green]}),
                Some(Tlp::Green),
            ),
            (
                "a marking definition carrying the TLP 2.0 extension",
                json!({"type": "marking-definition", "extensions": {TLP2_EXTENSION_ID:
                    {"extension_type": "property-extension", "tlp_2_0": "amber+strict"}}}),
                Some(Tlp::AmberStrict),
            ),
            (
                "a TLP 1.0 marking definition",
                json!({"type": "marking-definition", "definition_type": "tlp",
                       "definition": {"tlp": "red"}}),
                Some(Tlp::Red),
            ),
            (
                "a statement marking definition",
                json!({"type": "marking-definition", "definition_type": "statement",
                       "definition": {"statement": "tlp red"}}),
                None,
            ),
        ];
        for (name, obj, want) in cases {
            assert_eq!(
                Tlp::of_object_with(obj.as_object().unwrap(), resolve),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn custom_ids_are_left_to_resolve_lower_cased_once() {
        let upper = CUSTOM_RED.to_ascii_uppercase();
        let obj = json!({
            "object_marking_refs": [TLP2_MARKINGS[1].0, upper, UNKNOWN],
            "granular_markings": [{"marking_ref": CUSTOM_RED, "selectors": ["name"]}],
        });
        let signs = TlpSigns::of_object(obj.as_object().unwrap());
        assert_eq!(signs.known, Some(Tlp::Green));
        assert_eq!(
            signs.custom,
            vec![UNKNOWN.to_string(), CUSTOM_RED.to_string()]
        );
        assert_eq!(signs.label(|_| None), Some(Tlp::Green));
        assert_eq!(signs.label(resolve), Some(Tlp::Red));
    }

    #[test]
    fn the_shipped_marking_definitions_define_their_own_labels() {
        let bundle: Value =
            serde_json::from_str(include_str!("../data/tlp-2.0-marking-definitions.json")).unwrap();
        let objects = bundle["objects"].as_array().unwrap();
        assert_eq!(objects.len(), 5);
        for o in objects {
            let raw = o.as_object().unwrap();
            let id = o["id"].as_str().unwrap();
            assert_eq!(Tlp::defined_by(raw), Tlp::from_marking_id(id), "{id}");
            assert_eq!(Tlp::defined_by(raw).map(Tlp::as_str), o["name"].as_str());
        }
    }

    #[test]
    fn rank_round_trips() {
        for t in Tlp::ALL {
            assert_eq!(Tlp::from_rank(t.rank()), Some(t));
            assert_eq!(Tlp::parse(t.as_str()), Some(t));
            assert_eq!(Tlp::from_marking_id(t.marking_id()), Some(t));
        }
        assert_eq!(Tlp::from_rank(5), None);
    }
}
