//! The visibility rule's inputs and its plain statement: who may see one stored object version.
//!
//! The rule is *applied* in exactly one place, the store query (`kopa-store`);
//! [`Audience::reference_visible`] and [`PeerAudience::reference_visible`] state it in plain code,
//! and the tests check the store's SQL against them.

use crate::{OrgId, Tlp, UserId};

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
}
