//! A peer's export policy: what this node lets a peer node read.
//!
//! A peer reads as a principal whose audience is its policy (DESIGN.md, "Sharing model"). The policy
//! names the collections the peer may read, the highest TLP label that may go to it (default
//! TLP:GREEN), the object types (empty = all) and the communities it belongs to. Whatever the policy,
//! TLP:AMBER+STRICT goes only to a node hosting one of the organisations the object was addressed to,
//! and TLP:RED only to a node hosting one of its named recipients; objects narrowed to named
//! organisations (TLP:AMBER with an explicit list, or unmarked objects that took the node default) go
//! only to a node hosting one of them.
//!
//! [`ExportPolicy::reference_exportable`] states the rule plainly. It is the oracle that the store's
//! query for a peer principal must agree with (see this crate's README for the planned `Audience`
//! variant); it is not a second filter to apply on top of the store.

use kopa_core::{OrgId, PeerAudience, Stewardship, Tlp, UserId};
use serde::{Deserialize, Serialize};

fn default_max_tlp() -> Tlp {
    Tlp::Green
}

/// What this node exports to one peer. Serialized as JSON in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportPolicy {
    /// Ids of the collections the peer may read. Empty: nothing is exported.
    #[serde(default)]
    pub collections: Vec<String>,
    /// The highest TLP label that may go to the peer.
    #[serde(default = "default_max_tlp")]
    pub max_tlp: Tlp,
    /// STIX object types exported; empty means every type.
    #[serde(default)]
    pub object_types: Vec<String>,
    /// Communities the peer belongs to (names). Recorded now; enforced once stored objects carry a
    /// community audience.
    #[serde(default)]
    pub communities: Vec<String>,
}

impl Default for ExportPolicy {
    fn default() -> Self {
        ExportPolicy {
            collections: Vec::new(),
            max_tlp: default_max_tlp(),
            object_types: Vec::new(),
            communities: Vec::new(),
        }
    }
}

/// What the peer node hosts, as far as named audiences go: the organisations and users whose home is
/// that node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerHosts {
    pub orgs: Vec<OrgId>,
    pub users: Vec<UserId>,
}

impl ExportPolicy {
    /// The export rule, stated plainly: may an object of `object_type` in `collection`, stewarded as `s`,
    /// go to a peer with this policy that hosts `hosts`?
    pub fn reference_exportable(
        &self,
        collection: &str,
        object_type: &str,
        s: &Stewardship,
        hosts: &PeerHosts,
    ) -> bool {
        // The rule lives in kopa-core, next to the person rule; the origin check does not apply
        // to a policy alone (`None`: as if originated here).
        self.peer_audience("").reference_visible(
            collection,
            object_type,
            s,
            None,
            &hosts.orgs,
            &hosts.users,
        )
    }

    /// The audience a peer with node id `node` and this policy reads as (`kopa_core::Reader::Peer`).
    pub fn peer_audience(&self, node: &str) -> PeerAudience {
        PeerAudience {
            node: node.to_string(),
            collections: self.collections.clone(),
            max_tlp: self.max_tlp,
            object_types: self.object_types.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steward(tlp: Tlp, orgs: &[&str], users: &[&str]) -> Stewardship {
        Stewardship {
            owner_org: OrgId("owner".into()),
            author: UserId("author".into()),
            tlp,
            orgs: orgs.iter().map(|o| OrgId(o.to_string())).collect(),
            users: users.iter().map(|u| UserId(u.to_string())).collect(),
            defaulted: false,
        }
    }

    fn hosts() -> PeerHosts {
        PeerHosts {
            orgs: vec![OrgId("remote-org".into())],
            users: vec![UserId("remote-user".into())],
        }
    }

    #[test]
    fn default_policy_is_green_and_parses_from_empty_json() {
        let p: ExportPolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(p, ExportPolicy::default());
        assert_eq!(p.max_tlp, Tlp::Green);
        let back: ExportPolicy = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn table() {
        let green = ExportPolicy {
            collections: vec!["c1".into()],
            ..ExportPolicy::default()
        };
        let red = ExportPolicy {
            max_tlp: Tlp::Red,
            ..green.clone()
        };
        let only_ind = ExportPolicy {
            object_types: vec!["indicator".into()],
            ..red.clone()
        };
        let h = hosts();
        let cases: &[(&str, &ExportPolicy, &str, &str, Stewardship, bool)] = &[
            (
                "clear in collection",
                &green,
                "c1",
                "indicator",
                steward(Tlp::Clear, &[], &[]),
                true,
            ),
            (
                "other collection",
                &green,
                "c2",
                "indicator",
                steward(Tlp::Clear, &[], &[]),
                false,
            ),
            (
                "green at green",
                &green,
                "c1",
                "indicator",
                steward(Tlp::Green, &[], &[]),
                true,
            ),
            (
                "amber above green cap",
                &green,
                "c1",
                "indicator",
                steward(Tlp::Amber, &[], &[]),
                false,
            ),
            (
                "amber to readers under red cap",
                &red,
                "c1",
                "indicator",
                steward(Tlp::Amber, &[], &[]),
                true,
            ),
            (
                "amber narrowed, not hosted",
                &red,
                "c1",
                "indicator",
                steward(Tlp::Amber, &["x"], &[]),
                false,
            ),
            (
                "amber narrowed, hosted",
                &red,
                "c1",
                "indicator",
                steward(Tlp::Amber, &["remote-org"], &[]),
                true,
            ),
            (
                "strict without names",
                &red,
                "c1",
                "indicator",
                steward(Tlp::AmberStrict, &[], &[]),
                false,
            ),
            (
                "strict hosted",
                &red,
                "c1",
                "indicator",
                steward(Tlp::AmberStrict, &["remote-org"], &[]),
                true,
            ),
            (
                "strict hosted but capped",
                &green,
                "c1",
                "indicator",
                steward(Tlp::AmberStrict, &["remote-org"], &[]),
                false,
            ),
            (
                "red without recipient there",
                &red,
                "c1",
                "indicator",
                steward(Tlp::Red, &[], &["u"]),
                false,
            ),
            (
                "red with recipient there",
                &red,
                "c1",
                "indicator",
                steward(Tlp::Red, &[], &["remote-user"]),
                true,
            ),
            (
                "type filtered out",
                &only_ind,
                "c1",
                "malware",
                steward(Tlp::Clear, &[], &[]),
                false,
            ),
            (
                "type allowed",
                &only_ind,
                "c1",
                "indicator",
                steward(Tlp::Clear, &[], &[]),
                true,
            ),
        ];
        for (name, policy, coll, ty, s, want) in cases {
            assert_eq!(
                policy.reference_exportable(coll, ty, s, &h),
                *want,
                "{name}"
            );
        }
        let mut defaulted = steward(Tlp::Amber, &[], &[]);
        defaulted.defaulted = true;
        assert!(!red.reference_exportable("c1", "indicator", &defaulted, &h));
    }
}
