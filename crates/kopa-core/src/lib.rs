//! Kopa's domain, without I/O: who is who ([`Principal`]), how shared objects are marked ([`Tlp`],
//! [`Stewardship`]) and whom a reader may see ([`Audience`] for a person, [`PeerAudience`] for a peer
//! node, either as a [`Reader`]).
//!
//! The visibility rule is *applied* in exactly one place, the store query (`kopa-store`). This crate
//! defines the inputs of that rule and [`Audience::reference_visible`] / [`PeerAudience::reference_visible`],
//! plain statements of the rule that tests use as the oracle the store's SQL is checked against.

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

use serde::{Deserialize, Serialize};

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

/// Organisation id (a UUID string).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrgId(pub String);

/// User id (a UUID string).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub String);

impl OrgId {
    pub fn new() -> Self {
        OrgId(uuid::Uuid::new_v4().to_string())
    }
}
impl Default for OrgId {
    fn default() -> Self {
        Self::new()
    }
}
impl UserId {
    pub fn new() -> Self {
        UserId(uuid::Uuid::new_v4().to_string())
    }
}
impl Default for UserId {
    fn default() -> Self {
        Self::new()
    }
}

/// What a user may do. Administrators manage people and collections, never read past TLP. Ordered
/// from the least to the most (`Reader < Analyst < OrgAdmin < Admin`); what each may do is decided by
/// [`permission::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Reads intelligence.
    Reader,
    /// Reads and writes intelligence.
    Analyst,
    /// An analyst who also manages the users of its organisation.
    OrgAdmin,
    /// The node administrator: manages organisations, users, tokens and collections.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Analyst => "analyst",
            Role::OrgAdmin => "org-admin",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "reader" => Role::Reader,
            "analyst" => Role::Analyst,
            "org-admin" => Role::OrgAdmin,
            "admin" => Role::Admin,
            _ => return None,
        })
    }

    /// May write intelligence (still only where a collection's write list allows).
    pub fn writes_intelligence(self) -> bool {
        !matches!(self, Role::Reader)
    }

    /// May manage users of its own organisation.
    pub fn manages_org_users(self) -> bool {
        matches!(self, Role::OrgAdmin | Role::Admin)
    }

    /// May manage the whole node (organisations, collections, any user).
    pub fn manages_node(self) -> bool {
        matches!(self, Role::Admin)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: UserId,
    pub user_name: String,
    pub org: OrgId,
    pub org_name: String,
    pub role: Role,
}

impl Principal {
    /// The audience this principal reads as.
    pub fn audience(&self) -> Audience {
        Audience {
            org: self.org.clone(),
            user: self.user.clone(),
        }
    }

    /// The reader this principal reads as (a person).
    pub fn reader(&self) -> Reader {
        Reader::Person(self.audience())
    }
}

/// Whom a read is for. The store turns this into the `WHERE` clause of every read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience {
    pub org: OrgId,
    pub user: UserId,
}

/// Who may see one stored object version: computed at write time from the writer and the object's
/// markings, stored beside the object, and matched against an [`Audience`] by the store query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stewardship {
    /// The organisation that wrote the object into this node.
    pub owner_org: OrgId,
    /// The user who wrote it.
    pub author: UserId,
    pub tlp: Tlp,
    /// Organisations the object is narrowed to (besides the owner). Empty = not narrowed.
    pub orgs: Vec<OrgId>,
    /// Named recipients (TLP:RED), besides the author.
    pub users: Vec<UserId>,
    /// True when the object carried no TLP marking and took the node default; it is then narrowed to
    /// the owner organisation (the safe side).
    pub defaulted: bool,
}

impl Stewardship {
    /// Whether reads are narrowed to the owner and `orgs`.
    pub fn narrowed(&self) -> bool {
        self.defaulted || !self.orgs.is_empty()
    }
}

impl Audience {
    /// The visibility rule, stated plainly for tests. `collection_readable` says whether the reader's
    /// organisation is on the collection's read list. The store's query must agree with this function
    /// on every input.
    pub fn reference_visible(&self, collection_readable: bool, s: &Stewardship) -> bool {
        if !collection_readable {
            return false;
        }
        match s.tlp {
            Tlp::Red => s.author == self.user || s.users.contains(&self.user),
            _ => !s.narrowed() || s.owner_org == self.org || s.orgs.contains(&self.org),
        }
    }
}

/// What a peer node may read here: its export policy, seen as an audience. A peer reads through
/// the same store query as a person (the one visibility rule, with a peer branch); there is no
/// second filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAudience {
    /// The peer's node id.
    pub node: String,
    /// Ids of the collections the peer may read (empty: nothing).
    pub collections: Vec<String>,
    /// The highest TLP label that may go to the peer.
    pub max_tlp: Tlp,
    /// STIX object types the peer may read; empty means every type.
    pub object_types: Vec<String>,
}

impl PeerAudience {
    /// The peer rule, stated plainly for tests: may an object of `object_type` in the collection
    /// with id `collection_id`, stewarded as `s`, received from `origin` (`None` = originated
    /// here), go to this peer, which hosts the organisations `hosts_orgs` and the users
    /// `hosts_users` (organisations and users of the directory whose home is the peer's node)?
    ///
    /// Within the policy (collection, type, TLP cap) and never back to the object's origin node:
    /// below AMBER+STRICT, an object that is not narrowed, or one narrowed to an organisation the
    /// peer hosts; AMBER+STRICT, only when the peer hosts an addressed organisation; RED, only
    /// when it hosts a named recipient.
    pub fn reference_visible(
        &self,
        collection_id: &str,
        object_type: &str,
        s: &Stewardship,
        origin: Option<&str>,
        hosts_orgs: &[OrgId],
        hosts_users: &[UserId],
    ) -> bool {
        if !self.collections.iter().any(|c| c == collection_id)
            || (!self.object_types.is_empty()
                && !self.object_types.iter().any(|t| t == object_type))
            || s.tlp > self.max_tlp
            || origin == Some(self.node.as_str())
        {
            return false;
        }
        let hosts_addressed_org = s.orgs.iter().any(|o| hosts_orgs.contains(o));
        match s.tlp {
            Tlp::Red => s.users.iter().any(|u| hosts_users.contains(u)),
            Tlp::AmberStrict => hosts_addressed_org,
            _ => !s.narrowed() || hosts_addressed_org,
        }
    }
}

/// Who reads: a person of this node (through its organisation and user) or a peer node (through
/// its export policy). Every read of shared objects in the store takes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reader {
    Person(Audience),
    Peer(PeerAudience),
}

impl From<Audience> for Reader {
    fn from(a: Audience) -> Self {
        Reader::Person(a)
    }
}

impl From<PeerAudience> for Reader {
    fn from(p: PeerAudience) -> Self {
        Reader::Peer(p)
    }
}

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

    fn steward(tlp: Tlp, orgs: &[&str], users: &[&str], defaulted: bool) -> Stewardship {
        Stewardship {
            owner_org: OrgId("owner".into()),
            author: UserId("author".into()),
            tlp,
            orgs: orgs.iter().map(|o| OrgId(o.to_string())).collect(),
            users: users.iter().map(|u| UserId(u.to_string())).collect(),
            defaulted,
        }
    }

    fn reader(org: &str, user: &str) -> Audience {
        Audience {
            org: OrgId(org.into()),
            user: UserId(user.into()),
        }
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn visibility_table() {
        use Tlp::*;
        // (tlp, narrowed orgs, named users, defaulted, reader org, reader user, collection readable, visible)
        let cases: &[(Tlp, &[&str], &[&str], bool, &str, &str, bool, bool)] = &[
            (Clear, &[], &[], false, "other", "u", true, true),
            (Clear, &[], &[], false, "other", "u", false, false),
            (Green, &[], &[], false, "other", "u", true, true),
            (Amber, &[], &[], false, "other", "u", true, true),
            (Amber, &["b"], &[], false, "other", "u", true, false),
            (Amber, &["b"], &[], false, "b", "u", true, true),
            (Amber, &["b"], &[], false, "owner", "u", true, true),
            (AmberStrict, &["b"], &[], false, "c", "u", true, false),
            (Amber, &[], &[], true, "other", "u", true, false),
            (Amber, &[], &[], true, "owner", "u", true, true),
            (Red, &[], &[], false, "owner", "u", true, false),
            (Red, &[], &[], false, "owner", "author", true, true),
            (Red, &[], &["alice"], false, "other", "alice", true, true),
            (Red, &[], &["alice"], false, "other", "alice", false, false),
            (Red, &["other"], &[], false, "other", "bob", true, false),
        ];
        for (i, &(tlp, orgs, users, defaulted, org, user, readable, want)) in
            cases.iter().enumerate()
        {
            let got = reader(org, user)
                .reference_visible(readable, &steward(tlp, orgs, users, defaulted));
            assert_eq!(got, want, "case {i}");
        }
    }

    /// (peer, collection, type, tlp, orgs, users, defaulted, origin, visible)
    type PeerCase<'a> = (
        &'a PeerAudience,
        &'a str,
        &'a str,
        Tlp,
        &'a [&'a str],
        &'a [&'a str],
        bool,
        Option<&'a str>,
        bool,
    );

    #[test]
    fn peer_table() {
        use Tlp::*;
        let r = PeerAudience {
            node: "node--p".into(),
            collections: vec!["c1".into()],
            max_tlp: Red,
            object_types: vec![],
        };
        let g = PeerAudience {
            max_tlp: Green,
            ..r.clone()
        };
        let ind = PeerAudience {
            object_types: vec!["indicator".into()],
            ..r.clone()
        };
        let hosts_orgs = [OrgId("hosted".into())];
        let hosts_users = [UserId("remote-user".into())];
        let (p, q) = (Some("node--p"), Some("node--q"));
        let (i, m) = ("indicator", "malware");
        let h: &[&str] = &["hosted"];
        let cases: &[PeerCase] = &[
            (&r, "c1", i, Clear, &[], &[], false, None, true),
            (&r, "c2", i, Clear, &[], &[], false, None, false),
            (&g, "c1", i, Green, &[], &[], false, None, true),
            (&g, "c1", i, Amber, &[], &[], false, None, false),
            (&r, "c1", i, Amber, &[], &[], false, None, true),
            (&r, "c1", i, Amber, &["x"], &[], false, None, false),
            (&r, "c1", i, Amber, &["x", "hosted"], &[], false, None, true),
            (&r, "c1", i, Amber, &[], &[], true, None, false),
            (&r, "c1", i, AmberStrict, &[], &[], false, None, false),
            (&r, "c1", i, AmberStrict, h, &[], false, None, true),
            (&g, "c1", i, AmberStrict, h, &[], false, None, false),
            (&r, "c1", i, Red, h, &["u"], false, None, false),
            (&r, "c1", i, Red, &[], &["remote-user"], false, None, true),
            (&ind, "c1", m, Clear, &[], &[], false, None, false),
            (&ind, "c1", i, Clear, &[], &[], false, None, true),
            // Never back to its origin; from a third node it may go on.
            (&r, "c1", i, Clear, &[], &[], false, p, false),
            (&r, "c1", i, Clear, &[], &[], false, q, true),
        ];
        for (n, &(peer, coll, ty, tlp, orgs, users, defaulted, origin, want)) in
            cases.iter().enumerate()
        {
            let s = steward(tlp, orgs, users, defaulted);
            let got = peer.reference_visible(coll, ty, &s, origin, &hosts_orgs, &hosts_users);
            assert_eq!(got, want, "case {n}");
        }
    }

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
