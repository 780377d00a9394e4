//! Traffic Light Protocol 2.0 labels, and how they are read from STIX markings (TLP 2.0 and 1.0
//! marking-definition ids) and MISP-style `tlp:` labels.

use serde::{Deserialize, Serialize};
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

    /// The label of a TLP marking-definition id (2.0 or 1.0).
    pub fn from_marking_id(id: &str) -> Option<Tlp> {
        TLP2_MARKINGS
            .iter()
            .chain(TLP1_MARKINGS.iter())
            .find(|(m, _)| *m == id)
            .map(|&(_, t)| t)
    }

    /// The label of an object: the narrowest TLP among its `object_marking_refs`, else the narrowest
    /// MISP-style `tlp:` entry in `labels`; `None` when it carries no TLP at all.
    pub fn of_object(raw: &serde_json::Map<String, serde_json::Value>) -> Option<Tlp> {
        let strings = |key: &str| {
            raw.get(key)
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str())
        };
        strings("object_marking_refs")
            .filter_map(Tlp::from_marking_id)
            .max()
            .or_else(|| {
                strings("labels")
                    .filter(|l| l.len() > 4 && l[..4].eq_ignore_ascii_case("tlp:"))
                    .filter_map(Tlp::parse)
                    .max()
            })
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

    #[test]
    fn reads_markings_and_labels() {
        let cases = [
            (json!({}), None),
            (
                json!({"object_marking_refs": [TLP2_MARKINGS[1].0]}),
                Some(Tlp::Green),
            ),
            (
                json!({"object_marking_refs": [TLP1_MARKINGS[0].0]}),
                Some(Tlp::Clear),
            ),
            (
                json!({"object_marking_refs": [TLP1_MARKINGS[3].0]}),
                Some(Tlp::Red),
            ),
            // The narrowest marking wins.
            (
                json!({"object_marking_refs": [TLP2_MARKINGS[0].0, TLP2_MARKINGS[3].0]}),
                Some(Tlp::AmberStrict),
            ),
            (
                json!({"labels": ["tlp:amber+strict", "malicious"]}),
                Some(Tlp::AmberStrict),
            ),
            (json!({"labels": ["TLP:WHITE"]}), Some(Tlp::Clear)),
            (json!({"labels": ["tlp:purple"]}), None),
            (
                json!({"object_marking_refs": ["marking-definition--00000000-0000-4000-8000-000000000000"]}),
                None,
            ),
        ];
        for (i, (obj, want)) in cases.into_iter().enumerate() {
            assert_eq!(Tlp::of_object(obj.as_object().unwrap()), want, "case {i}");
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
