//! The permission rule: who may *do* what. Every act that changes something on a node — administer
//! it, add a user, make or revoke a token, enrol a user who lost every token, write, version or
//! delete a shared object, post as a peer — is decided here, by [`decide`], over (actor, action,
//! target). The REST API, TAXII, the command line and federation ask it; none decides for itself.
//! (Who may *see* what is the other rule, applied inside the store's queries; see [`crate::Audience`].)
//!
//! The rules, stated plainly:
//!
//! 1. **The node** (organisations, collections, the audit log, peers) is administered by the node
//!    administrator (`admin`) and by the operator at the command line, nobody else.
//! 2. **Accounts.** The administrator and the operator manage every account of this node. An
//!    org-admin manages the accounts of its own organisation whose role is *below* its own (readers
//!    and analysts): never an administrator, never another org-admin. Managing means adding the
//!    account, revoking its tokens and enrolling it again. Directory entries (users of organisations
//!    hosted on other nodes) are added by the administrator or the operator only, and never get a
//!    credential here.
//! 3. **Credentials are never handed to someone else.** A token is made only by its own user, for
//!    themselves. A user who lost every token is recovered with a one-time enrolment code from whoever
//!    manages the account: issuing it revokes the user's remaining tokens, is written to the audit
//!    log and is shown to the user at their next sign-in.
//! 4. **Writing** needs a role that writes intelligence (analyst and up) and the collection's write
//!    list; a peer node writes only into the collections its export policy names.
//! 5. **A STIX object's versions belong to its producer** (STIX 2.1 §3.6): a new version of an
//!    object already held here is accepted only from the organisation that produced it — the same
//!    owner organisation and, for an object received from another node, the same origin node.
//! 6. **Deleting** an object version needs a role that writes, read and write access to the
//!    collection, and the version's ownership: the owner organisation of an object written here, or
//!    the author. Objects received from other nodes are deleted by no one here. Peers never delete.
//! 7. **The node's signed audit checkpoint** (its statement of how long its audit log is) is given
//!    to its declared peers, which keep it as a witness, and to the node administrator.

use crate::{OrgId, PeerAudience, Principal, Role, UserId};

/// Who acts.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// A person of this node, authenticated by a token.
    Person(&'a Principal),
    /// The node's operator at the command line: whoever can open the node's database.
    Operator,
    /// A declared peer node, within its export policy.
    Peer(&'a PeerAudience),
}

/// A user account as the target of an act.
#[derive(Debug, Clone, Copy)]
pub struct Account<'a> {
    pub user: &'a UserId,
    pub org: &'a OrgId,
    pub role: Role,
    /// A directory entry: a user of an organisation hosted on another node. It never signs in here.
    pub directory: bool,
}

/// Who produced an object version: its owner organisation and, for an object received from another
/// node, that origin node (`None` for an object written on this node).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Producer {
    pub org: OrgId,
    pub node: Option<String>,
}

/// A collection's rights for the actor, as its read and write lists (or a peer's policy) grant them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rights {
    pub can_read: bool,
    pub can_write: bool,
}

/// What is done.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// Add organisations or collections, read the audit log, list peers.
    AdministerNode,
    /// Obtain a signed checkpoint of the node's audit log (rule 7).
    ReadCheckpoint,
    /// List (see) the accounts of an organisation.
    ListUsers { org: &'a OrgId },
    /// Add an account with this role to organisation `org` (`directory`: hosted on another node).
    AddUser {
        org: &'a OrgId,
        role: Role,
        directory: bool,
    },
    /// Make a new API token for an existing account.
    AddToken(Account<'a>),
    /// Revoke a token of an account.
    RevokeToken(Account<'a>),
    /// Issue a one-time enrolment code for an account (recovery).
    Enrol(Account<'a>),
    /// Write objects into a collection.
    WriteObjects(Rights),
    /// Store a new version of an object `existing` produced, as `poster`.
    VersionObject {
        existing: &'a Producer,
        poster: &'a Producer,
    },
    /// Delete a version of an object produced by `owner` and written by `author`, in a collection
    /// with these rights.
    DeleteObject {
        rights: Rights,
        owner: &'a Producer,
        author: &'a UserId,
    },
}

/// Whose accounts an actor may list: every organisation's, or one organisation's. The store reads
/// exactly that list (filtered in its query); [`user_list_scope`] agrees with
/// [`Action::ListUsers`] for every organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserScope {
    All,
    Org(OrgId),
}

impl UserScope {
    /// Whether the accounts of `org` are in this scope.
    pub fn includes(&self, org: &OrgId) -> bool {
        match self {
            UserScope::All => true,
            UserScope::Org(o) => o == org,
        }
    }
}

/// The accounts `actor` may list (rule 2), or why it may list none.
pub fn user_list_scope(actor: &Actor<'_>) -> Result<UserScope, Refusal> {
    match actor {
        Actor::Operator => Ok(UserScope::All),
        Actor::Person(p) if p.role == Role::Admin => Ok(UserScope::All),
        Actor::Person(p) => {
            decide(actor, &Action::ListUsers { org: &p.org })?;
            Ok(UserScope::Org(p.org.clone()))
        }
        Actor::Peer(_) => refuse("a peer node may only read and post objects"),
    }
}

/// Why an act is refused: a message for the actor that reveals nothing it may not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

fn refuse<T>(message: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(message.into()))
}

/// Whether `actor` manages `account` (rule 2).
fn manages(actor: &Actor<'_>, account: &Account<'_>) -> bool {
    if account.directory {
        return false;
    }
    match actor {
        Actor::Operator => true,
        Actor::Person(p) => match p.role {
            Role::Admin => true,
            Role::OrgAdmin => account.org == &p.org && account.role < Role::OrgAdmin,
            Role::Reader | Role::Analyst => false,
        },
        Actor::Peer(_) => false,
    }
}

/// Rule 5, for the store's write transaction: may `poster` add a version to an object `existing`
/// produced? The refusal says only that the id belongs to another producer.
pub fn may_version(existing: &Producer, poster: &Producer) -> Result<(), Refusal> {
    if existing == poster {
        Ok(())
    } else {
        refuse(
            "this id belongs to another producer: only its producer may version it; publish your \
             own object, a sighting, an opinion or a derived-from relationship instead",
        )
    }
}

/// The permission rule: `Ok` when `actor` may do `action`, else the refusal with its reason.
pub fn decide(actor: &Actor<'_>, action: &Action<'_>) -> Result<(), Refusal> {
    match (actor, action) {
        (Actor::Peer(peer), Action::WriteObjects(rights)) => {
            if rights.can_write {
                Ok(())
            } else {
                refuse(format!(
                    "node {} may write only into the collections this node's export policy names",
                    peer.node
                ))
            }
        }
        (_, Action::VersionObject { existing, poster }) => may_version(existing, poster),
        (actor, Action::ReadCheckpoint) => match actor {
            Actor::Peer(_) | Actor::Operator => Ok(()),
            Actor::Person(p) if p.role == Role::Admin => Ok(()),
            _ => refuse("the audit checkpoint is for this node's peers and its administrator"),
        },
        (Actor::Peer(_), _) => refuse("a peer node may only read and post objects"),
        (actor, Action::AdministerNode) => match actor {
            Actor::Operator => Ok(()),
            Actor::Person(p) if p.role == Role::Admin => Ok(()),
            _ => refuse("this needs the node administrator role"),
        },
        (actor, Action::ListUsers { org }) => match actor {
            Actor::Operator => Ok(()),
            Actor::Person(p)
                if p.role == Role::Admin || (p.role == Role::OrgAdmin && &p.org == *org) =>
            {
                Ok(())
            }
            _ => refuse("listing users needs the org-admin or admin role"),
        },
        (
            actor,
            Action::AddUser {
                org,
                role,
                directory,
            },
        ) => match actor {
            Actor::Operator => Ok(()),
            Actor::Person(p) if p.role == Role::Admin => Ok(()),
            Actor::Person(p) if p.role == Role::OrgAdmin => {
                if *directory {
                    refuse("only a node administrator adds users of organisations on other nodes")
                } else if &p.org != *org {
                    refuse("an org-admin manages the users of its own organisation only")
                } else if *role >= Role::OrgAdmin {
                    refuse("an org-admin adds readers and analysts only")
                } else {
                    Ok(())
                }
            }
            _ => refuse("managing users needs the org-admin or admin role"),
        },
        (actor, Action::AddToken(account)) => match actor {
            _ if account.directory => {
                refuse("a user of an organisation on another node signs in on its own node")
            }
            Actor::Person(p) if &p.user == account.user => Ok(()),
            _ => refuse(
                "a token is made only by its own user; a user who lost every token is enrolled \
                 again with a one-time enrolment code",
            ),
        },
        (actor, Action::RevokeToken(account)) => match actor {
            Actor::Person(p) if &p.user == account.user => Ok(()),
            _ if manages(actor, account) => Ok(()),
            _ => refuse("you may revoke your own tokens, or those of users you manage"),
        },
        (actor, Action::Enrol(account)) => {
            if account.directory {
                refuse("a user of an organisation on another node signs in on its own node")
            } else if manages(actor, account) {
                Ok(())
            } else {
                refuse(
                    "an enrolment code is issued by the administrator, or by an org-admin for \
                     the readers and analysts of its organisation",
                )
            }
        }
        (actor, Action::WriteObjects(rights)) => match actor {
            Actor::Person(p) if !p.role.writes_intelligence() => {
                refuse("your role (reader) may not add objects; an analyst or administrator can")
            }
            _ if !rights.can_write => refuse("you may not write to this collection"),
            _ => Ok(()),
        },
        (
            actor,
            Action::DeleteObject {
                rights,
                owner,
                author,
            },
        ) => match actor {
            Actor::Person(p) => {
                if !p.role.writes_intelligence() {
                    refuse("readers cannot delete objects")
                } else if !(rights.can_read && rights.can_write) {
                    refuse("deleting from a collection needs both read and write access")
                } else if (owner.node.is_none() && owner.org == p.org) || **author == p.user {
                    Ok(())
                } else {
                    refuse("only the organisation that owns an object (or its author) deletes it")
                }
            }
            _ => refuse("objects are deleted by the people of their owner organisation"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn person(user: &str, org: &str, role: Role) -> Principal {
        Principal {
            user: UserId(user.into()),
            user_name: user.into(),
            org: OrgId(org.into()),
            org_name: org.into(),
            role,
        }
    }

    fn role() -> impl Strategy<Value = Role> {
        prop_oneof![
            Just(Role::Reader),
            Just(Role::Analyst),
            Just(Role::OrgAdmin),
            Just(Role::Admin)
        ]
    }

    /// A small world: users u0..u5 in organisations o0..o2, any roles, some of them directory
    /// entries. Small so that actors and targets collide often (self, same organisation).
    fn world() -> impl Strategy<Value = Vec<(usize, Role, bool)>> {
        prop::collection::vec((0usize..3, role(), prop::bool::weighted(0.2)), 6)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Administration never escalates, and no one obtains another user's credential.
        #[test]
        fn administration_never_escalates(w in world(), a in 0usize..6, t in 0usize..6, new_role in role(), new_org in 0usize..3) {
            let (a_org, a_role, a_dir) = w[a];
            prop_assume!(!a_dir);
            let p = person(&format!("u{a}"), &format!("o{a_org}"), a_role);
            let actor = Actor::Person(&p);
            let (t_org, t_role, t_dir) = w[t];
            let (tu, to) = (UserId(format!("u{t}")), OrgId(format!("o{t_org}")));
            let account = Account { user: &tu, org: &to, role: t_role, directory: t_dir };

            // Tokens: only one's own, never a directory entry's.
            let minted = decide(&actor, &Action::AddToken(account)).is_ok();
            prop_assert_eq!(minted, a == t && !t_dir);

            // Every act on another account needs a role strictly above it (or admin), in the same
            // organisation for an org-admin; never a directory entry.
            for action in [Action::Enrol(account), Action::RevokeToken(account)] {
                let ok = decide(&actor, &action).is_ok();
                let self_revoke = matches!(action, Action::RevokeToken(_)) && a == t;
                if ok && !self_revoke {
                    prop_assert!(!t_dir);
                    prop_assert!(a_role == Role::Admin || (a_role == Role::OrgAdmin && a_org == t_org && t_role < Role::OrgAdmin));
                }
            }

            // Adding a user never makes a role at or above an org-admin's own, nor in another org.
            let no = OrgId(format!("o{new_org}"));
            let added = decide(&actor, &Action::AddUser { org: &no, role: new_role, directory: false }).is_ok();
            let expect = a_role == Role::Admin || (a_role == Role::OrgAdmin && new_org == a_org && new_role < Role::OrgAdmin);
            prop_assert_eq!(added, expect);
            let node = decide(&actor, &Action::AdministerNode).is_ok();
            prop_assert_eq!(node, a_role == Role::Admin);
            let checkpoint = decide(&actor, &Action::ReadCheckpoint).is_ok();
            prop_assert_eq!(checkpoint, a_role == Role::Admin);
            // The list of accounts read agrees with the rule, organisation by organisation.
            let scope = user_list_scope(&actor);
            for o in 0..3usize {
                let org = OrgId(format!("o{o}"));
                let may = decide(&actor, &Action::ListUsers { org: &org }).is_ok();
                prop_assert_eq!(scope.as_ref().is_ok_and(|s| s.includes(&org)), may);
            }
        }

        /// Versions and deletes belong to the producer; peers write only within their policy.
        #[test]
        fn objects_belong_to_their_producer(a_org in 0usize..3, role in role(), owner in 0usize..3, remote in prop::option::of(0usize..2),
                                             author_is_actor: bool, can_read: bool, can_write: bool) {
            let p = person("actor", &format!("o{a_org}"), role);
            let producer = Producer { org: OrgId(format!("o{owner}")), node: remote.map(|n| format!("node--{n}")) };
            let poster = Producer { org: p.org.clone(), node: None };
            let versioned = decide(&Actor::Person(&p), &Action::VersionObject { existing: &producer, poster: &poster }).is_ok();
            prop_assert_eq!(versioned, producer == poster);
            let author = if author_is_actor { p.user.clone() } else { UserId("someone".into()) };
            let rights = Rights { can_read, can_write };
            let deleted = decide(&Actor::Person(&p), &Action::DeleteObject { rights, owner: &producer, author: &author }).is_ok();
            let owns = (remote.is_none() && owner == a_org) || author_is_actor;
            prop_assert_eq!(deleted, role != Role::Reader && can_read && can_write && owns);
            let delete = Action::DeleteObject { rights, owner: &producer, author: &author };
            prop_assert!(decide(&Actor::Operator, &delete).is_err());
            let peer = PeerAudience { node: "node--p".into(), collections: vec![], max_tlp: crate::Tlp::Red, object_types: vec![] };
            prop_assert_eq!(decide(&Actor::Peer(&peer), &Action::WriteObjects(rights)).is_ok(), can_write);
            prop_assert!(decide(&Actor::Peer(&peer), &delete).is_err());
            prop_assert!(decide(&Actor::Peer(&peer), &Action::ReadCheckpoint).is_ok());
            prop_assert!(decide(&Actor::Peer(&peer), &Action::AdministerNode).is_err());
        }
    }

    #[test]
    fn named_cases() {
        let admin = person("admin", "home", Role::Admin);
        let oa = person("oa", "home", Role::OrgAdmin);
        let (admin_id, home) = (UserId("admin".into()), OrgId("home".into()));
        let admin_account = Account {
            user: &admin_id,
            org: &home,
            role: Role::Admin,
            directory: false,
        };
        // The takeover of the attacker's review: an org-admin of the node's own organisation
        // minting a token for `admin`.
        assert!(decide(&Actor::Person(&oa), &Action::AddToken(admin_account)).is_err());
        assert!(decide(&Actor::Person(&oa), &Action::Enrol(admin_account)).is_err());
        assert!(decide(&Actor::Person(&oa), &Action::RevokeToken(admin_account)).is_err());
        // The administrator may not mint for others either, nor the operator.
        let (alice, bank) = (UserId("alice".into()), OrgId("bank".into()));
        let alice_account = Account {
            user: &alice,
            org: &bank,
            role: Role::Analyst,
            directory: false,
        };
        assert!(decide(&Actor::Person(&admin), &Action::AddToken(alice_account)).is_err());
        assert!(decide(&Actor::Operator, &Action::AddToken(alice_account)).is_err());
        // …but enrols her again.
        assert!(decide(&Actor::Person(&admin), &Action::Enrol(alice_account)).is_ok());
        assert!(decide(&Actor::Operator, &Action::Enrol(alice_account)).is_ok());
        // Directory entries never get credentials.
        let remote = Account {
            directory: true,
            ..alice_account
        };
        assert!(decide(&Actor::Operator, &Action::Enrol(remote)).is_err());
        assert!(decide(&Actor::Person(&admin), &Action::Enrol(remote)).is_err());
        assert!(decide(&Actor::Person(&admin), &Action::AddToken(remote)).is_err());
        // Another org-admin's tokens are out of an org-admin's reach.
        let (oa2, _) = (UserId("oa2".into()), ());
        let oa2_account = Account {
            user: &oa2,
            org: &home,
            role: Role::OrgAdmin,
            directory: false,
        };
        assert!(decide(&Actor::Person(&oa), &Action::RevokeToken(oa2_account)).is_err());
    }
}
