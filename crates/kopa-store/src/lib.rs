//! Kopa's storage: the [`Store`] trait and its two backends, SQLite (embedded, the default) and
//! PostgreSQL.
//!
//! [`Store`] is the sum of narrow capability traits, each implemented by both backends:
//! [`NodeStore`] (the node row, its secrets, its clock), [`Directory`] (organisations and users),
//! [`Credentials`] (tokens and enrolment codes), [`Administration`] (acts of administration with
//! their audit entries), [`Collections`], [`Objects`], [`Statuses`] (TAXII status resources),
//! [`Audit`] (the audit log) and [`PeerStore`] (federation peers). Callers hold an
//! `Arc<dyn Store>`; [`prelude`] brings every capability into scope.
//!
//! **Every read of shared objects takes a [`Reader`] (a person's [`Audience`] or a peer node's
//! `PeerAudience`) and applies the visibility rule inside its query** (see
//! `kopa_core::Audience::reference_visible` and `kopa_core::PeerAudience::reference_visible` for the
//! rule in plain code). No caller filters after the fact; there is no administrator bypass.
//!
//! Object versions are keyed by (collection, STIX id, version). Each stored version gets a node-wide
//! sequence number and a `date_added` that both strictly increase, so that paging by cursor (`seq`)
//! and by `added_after` never skips or repeats an object.

// Production code handles every failure; `unwrap` is for tests (clippy.toml allows it there).
#![warn(clippy::unwrap_used)]

pub mod migrations;
mod peers;
#[cfg(test)]
mod plan_tests;
mod postgres;
mod sql;
mod sqlite;
pub mod testing;

pub use peers::{NewPeer, PeerRecord, PeerStore};
pub use sql::redact_url;
pub use sqlite::DB_FILE;

/// The capability traits that make up a [`Store`], for `use kopa_store::prelude::*;`: their
/// methods are callable on an `Arc<dyn Store>` as they are, and on any other store type (a generic
/// `S: Store`, a backend) with the traits in scope.
pub mod prelude {
    pub use crate::{
        Administration, Audit, Collections, Credentials, Directory, NodeStore, Objects, PeerStore,
        Statuses, Store,
    };
}

use async_trait::async_trait;
use kopa_core::audit::{AuditEntry, NewAuditEntry};
use kopa_core::permission::Rights;
use kopa_core::{Audience, OrgId, Principal, Reader, Role, SharedClock, Stewardship, Tlp, UserId};
use kopa_stix::Timestamp;
use std::collections::HashMap;
use std::sync::Arc;

/// Store errors. `NotFound` and `Conflict` are the caller's to report; `Backend` is internal and is
/// logged, never shown to clients.
#[derive(Debug)]
pub enum StoreError {
    NotFound(String),
    Conflict(String),
    Invalid(String),
    /// The permission rule refused the act (`kopa_core::permission`); the message is the refusal's.
    Refused(String),
    /// A failure of the database or of the store's own machinery (a task, a thread). `message` is
    /// what is logged (it includes the underlying error's text); `source` is that underlying error
    /// when there is one (a `sqlx` or `rusqlite` error, a failed task), kept for whoever needs it
    /// ([`StoreError::cause`]). Since the message already says what the source says, the error
    /// chain continues with the source's own cause, so that no text is printed twice.
    Backend {
        message: String,
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::NotFound(what) => write!(f, "{what} not found"),
            StoreError::Conflict(m) | StoreError::Invalid(m) | StoreError::Refused(m) => {
                f.write_str(m)
            }
            StoreError::Backend { message, .. } => write!(f, "database error: {message}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Backend {
                source: Some(s), ..
            } => s.source(),
            _ => None,
        }
    }
}

impl StoreError {
    /// The underlying error of a backend failure, when there is one (to tell its kind apart).
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            StoreError::Backend { source, .. } => source.as_deref(),
            _ => None,
        }
    }

    /// A backend failure described by `message` alone.
    pub fn backend(message: impl Into<String>) -> StoreError {
        StoreError::Backend {
            message: message.into(),
            source: None,
        }
    }

    /// A backend failure caused by `source` and described by it (the message is its text).
    pub fn backend_from<E>(source: E) -> StoreError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        StoreError::Backend {
            message: source.to_string(),
            source: Some(Box::new(source)),
        }
    }

    /// A backend failure caused by `source`, described by `message`.
    pub fn backend_with<E>(message: impl Into<String>, source: E) -> StoreError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        StoreError::Backend {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The node's own identity row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    /// The node id of the organisation's home node when it is hosted on a peer (a directory entry);
    /// `None` for an organisation hosted on this node.
    pub node: Option<String>,
}

/// The ids of named organisations and users ([`Directory::ids_by_name`]); names not found are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameIds {
    pub orgs: HashMap<String, OrgId>,
    pub users: HashMap<String, UserId>,
    /// The home node of each named organisation that is a directory entry (hosted on another
    /// node); organisations hosted here are absent.
    pub org_homes: HashMap<String, String>,
    /// The home node of each named user of such an organisation.
    pub user_homes: HashMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub org: OrgId,
    pub org_name: String,
    pub role: Role,
}

/// A stored API token. The secret itself is never stored: only a hash of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Public token id (part of the token string, used to look it up).
    pub id: String,
    pub user: UserId,
    /// The hash of the secret part, as the authenticating layer made it (kopa-server: hex SHA-256
    /// for the random secrets it generates, an argon2id PHC string `$argon2id$…` for secrets an
    /// operator chose); the caller compares in constant time.
    pub secret_hash: String,
    pub revoked: bool,
}

/// A one-time enrolment code as stored (the code itself is never stored: only the SHA-256 of its
/// secret part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentRecord {
    /// Public id of the code (part of the code string, used to look it up).
    pub id: String,
    pub user: UserId,
    /// Hex SHA-256 of the secret part; the caller compares in constant time.
    pub secret_hash: String,
    /// Who issued it: a user name, or `cli` for the operator at the command line.
    pub issued_by: String,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    pub redeemed_at: Option<Timestamp>,
    /// The client address it was redeemed from.
    pub redeemed_from: Option<String>,
}

/// The `detail` of an audit entry with counts added: each `(key, n)` is set, and `success` and
/// `failure` are increased by `success` and `failure` (a detail that is not a JSON object is kept
/// under `"note"`).
pub fn audit_counts(detail: &str, set: &[(&str, u64)], success: u64, failure: u64) -> String {
    let mut m = match serde_json::from_str::<serde_json::Value>(detail) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => {
            let mut m = serde_json::Map::new();
            m.insert("note".into(), serde_json::Value::String(detail.to_string()));
            m
        }
    };
    for (k, n) in set {
        m.insert((*k).into(), (*n).into());
    }
    for (k, n) in [("success", success), ("failure", failure)] {
        if n > 0 || m.contains_key(k) {
            let was = m.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
            m.insert(k.into(), (was + n).into());
        }
    }
    serde_json::Value::Object(m).to_string()
}

/// The counts of a batch's outcomes, for its audit entry: (stored, duplicates, failed).
pub(crate) fn outcome_counts(outcomes: &[PutOutcome]) -> (u64, u64, u64) {
    let mut c = (0, 0, 0);
    for o in outcomes {
        match o {
            PutOutcome::Stored { .. } => c.0 += 1,
            PutOutcome::Duplicate { .. } => c.1 += 1,
            PutOutcome::Failed { .. } => c.2 += 1,
        }
    }
    c
}

/// The audit entry of a batch write, its counts added.
pub(crate) fn batch_entry(mut e: NewAuditEntry, outcomes: &[PutOutcome]) -> NewAuditEntry {
    let (stored, duplicates, failed) = outcome_counts(outcomes);
    e.detail = audit_counts(
        &e.detail,
        &[
            ("stored", stored),
            ("duplicates", duplicates),
            ("failed", failed),
        ],
        stored + duplicates,
        failed,
    );
    e
}

/// An act of administration. [`Administration::administer`] writes it in one transaction with the audit
/// entry that records it, so that no organisation, user, collection or peer ever exists, or
/// disappears, without its entry in the log.
#[derive(Debug, Clone)]
pub enum AdminAct {
    /// An organisation of this node (`node: None`), or a directory entry for one hosted on the
    /// peer node `node`. `Conflict` when the name is taken.
    AddOrg {
        name: String,
        node: Option<String>,
    },
    /// A user with id `id` (drawn by the caller, so that its first token can name it), and that
    /// token when the user signs in here (never for a directory entry). `NotFound` for an unknown
    /// organisation, `Conflict` when the name is taken.
    AddUser {
        id: UserId,
        name: String,
        org: OrgId,
        role: Role,
        token: Option<TokenRecord>,
    },
    AddCollection(NewCollection),
    /// Declare a peer, pushing to it when `push`. `Conflict` when the name or node id is declared.
    AddPeer {
        peer: NewPeer,
        push: bool,
    },
    /// Remove a peer and its cursors. `NotFound` when there is none.
    RemovePeer {
        name: String,
    },
}

/// What an [`AdminAct`] made.
#[derive(Debug, Clone)]
pub enum Administered {
    Org(Org),
    User(User),
    Collection(Collection),
    Peer(PeerRecord),
    PeerRemoved(String),
}

/// Who did an [`AdminAct`], from where, with what to record beside it. The store makes the audit
/// entry ([`Administered::audit_entry`]): its action and target come from the act, and its detail
/// gets the id of what the act made.
#[derive(Debug, Clone)]
pub struct AuditBy {
    /// A user name, `cli` for the local command line.
    pub actor: String,
    /// The client address, or `local`.
    pub origin: String,
    /// A JSON object of facts to record (an organisation's name, a role, a token id, …).
    pub detail: serde_json::Value,
}

impl Administered {
    /// The audit action of the act that made this: `org.add`, `user.add`, `collection.add`,
    /// `peer.add` or `peer.remove`.
    pub fn action(&self) -> &'static str {
        match self {
            Administered::Org(_) => "org.add",
            Administered::User(_) => "user.add",
            Administered::Collection(_) => "collection.add",
            Administered::Peer(_) => "peer.add",
            Administered::PeerRemoved(_) => "peer.remove",
        }
    }

    /// The audit entry that records this act by `by`: targets are names, except a collection's,
    /// which is its id; the detail gets `id` (the organisation's, the user's, the peer's node id).
    pub fn audit_entry(&self, by: AuditBy) -> NewAuditEntry {
        let (target, id) = match self {
            Administered::Org(o) => (o.name.as_str(), Some(o.id.0.as_str())),
            Administered::User(u) => (u.name.as_str(), Some(u.id.0.as_str())),
            Administered::Collection(c) => (c.id.as_str(), None),
            Administered::Peer(p) => (p.peer.name.as_str(), Some(p.peer.node_id.as_str())),
            Administered::PeerRemoved(name) => (name.as_str(), None),
        };
        let mut detail = match by.detail {
            serde_json::Value::Object(m) => m,
            serde_json::Value::Null => serde_json::Map::new(),
            other => serde_json::Map::from_iter([("detail".to_string(), other)]),
        };
        if let Some(id) = id {
            detail.insert("id".into(), id.into());
        }
        NewAuditEntry {
            actor: by.actor,
            action: self.action().into(),
            target: target.into(),
            origin: by.origin,
            detail: serde_json::Value::Object(detail).to_string(),
        }
    }

    fn unexpected(self, wanted: &str) -> StoreError {
        StoreError::backend(format!(
            "an act of administration made {self:?}, not {wanted}"
        ))
    }
    pub fn org(self) -> Result<Org> {
        match self {
            Administered::Org(o) => Ok(o),
            other => Err(other.unexpected("an organisation")),
        }
    }
    pub fn user(self) -> Result<User> {
        match self {
            Administered::User(u) => Ok(u),
            other => Err(other.unexpected("a user")),
        }
    }
    pub fn collection(self) -> Result<Collection> {
        match self {
            Administered::Collection(c) => Ok(c),
            other => Err(other.unexpected("a collection")),
        }
    }
    pub fn peer(self) -> Result<PeerRecord> {
        match self {
            Administered::Peer(p) => Ok(p),
            other => Err(other.unexpected("a peer")),
        }
    }
}

/// Which organisations a collection's read or write list names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Every organisation of the node.
    All,
    Orgs(Vec<OrgId>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCollection {
    /// The collection id to use (a UUID, so that the same sharing room can exist on several nodes);
    /// `None` draws a new one. `Conflict` when taken, `Invalid` when not a UUID.
    pub id: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub alias: Option<String>,
    pub read: Access,
    pub write: Access,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    /// A UUIDv4 string.
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub alias: Option<String>,
    pub read: Access,
    pub write: Access,
}

/// A collection as one principal sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionView {
    pub collection: Collection,
    pub can_read: bool,
    pub can_write: bool,
}

/// One object version to write.
#[derive(Debug, Clone, PartialEq)]
pub struct NewObject {
    pub id: String,
    pub type_: String,
    pub spec_version: String,
    /// `modified`, else `created`; `None` for unversioned objects (the store then uses `date_added`).
    pub version: Option<Timestamp>,
    /// The object's JSON text as it will be served.
    pub json: String,
    pub steward: Stewardship,
    /// Values that REST search finds this object by (IP addresses, domains, hashes, URLs, …).
    pub values: Vec<String>,
    /// The node id of the object's origin when it was received from a peer; `None` when it
    /// originated here.
    pub origin: Option<String>,
    /// The node id of the peer that delivered it; `None` when written locally.
    pub via: Option<String>,
}

/// What happened to one object of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// Stored as a new version.
    Stored { version: Timestamp },
    /// The same version with the same content was already there: a success, nothing written.
    Duplicate { version: Timestamp },
    /// Not stored, with the reason.
    Failed { message: String },
}

/// One stored object version, as reads return it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    pub seq: i64,
    pub id: String,
    pub type_: String,
    pub spec_version: String,
    pub version: Timestamp,
    pub date_added: Timestamp,
    pub json: String,
    /// The origin node id of a received object; `None` when it originated here.
    pub origin: Option<String>,
}

/// Where a stored object came from: routing metadata only (never content), for sending sightings
/// home.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRoute {
    /// The STIX id.
    pub id: String,
    /// The origin node id; `None` when it originated here.
    pub origin: Option<String>,
    /// The peer node that delivered it; `None` when written locally.
    pub via: Option<String>,
}

/// `match[version]` of TAXII.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionMatch {
    pub all: bool,
    pub first: bool,
    pub last: bool,
    pub at: Vec<Timestamp>,
}

impl VersionMatch {
    /// The TAXII default: the latest version only.
    pub fn last() -> Self {
        VersionMatch {
            last: true,
            ..Default::default()
        }
    }
}

/// Filters of a TAXII read. Empty lists mean "no filter on this field".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFilter {
    pub added_after: Option<Timestamp>,
    /// Resume after this sequence number (decoded from the opaque `next` cursor).
    pub after_seq: Option<i64>,
    /// Maximum number of results (≥ 1).
    pub limit: usize,
    pub ids: Vec<String>,
    pub types: Vec<String>,
    pub versions: VersionMatch,
    /// Empty = the latest spec version only (TAXII default; Kopa stores 2.1).
    pub spec_versions: Vec<String>,
}

/// One page of a read, ascending by `date_added`.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub objects: Vec<StoredObject>,
    /// True when more results follow; `StoredObject::seq` of the last item is the cursor.
    pub more: bool,
}

/// A TAXII status resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRecord {
    pub id: String,
    /// The principal who posted; only they (and their organisation) may read it.
    pub owner: UserId,
    pub request_timestamp: Timestamp,
    /// The status resource body as served (JSON text).
    pub json: String,
}

/// The node itself: its identity row, its secrets, its clock, and which backend keeps it.
#[async_trait]
pub trait NodeStore: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// The clock this store was opened with ([`OpenOptions::clock`]): the node's one clock, which
    /// the server and the sync loop read too.
    fn clock(&self) -> SharedClock;
    /// The node row; `None` before first start.
    async fn node(&self) -> Result<Option<NodeInfo>>;
    async fn init_node(&self, node: &NodeInfo) -> Result<()>;
    /// The node's secret for `purpose` (32 random bytes): drawn from the operating system's
    /// generator the first time it is asked for, then kept in the store and the same for every
    /// process on this database. Never shown by any interface.
    async fn node_secret(&self, purpose: &str) -> Result<[u8; 32]>;
}

/// The directory of organisations and users, local ones and directory entries for those hosted
/// on peer nodes. Adding either is an act of [`Administration`].
#[async_trait]
pub trait Directory: Send + Sync {
    async fn org_by_name(&self, name: &str) -> Result<Org>;
    async fn orgs(&self) -> Result<Vec<Org>>;
    async fn user_by_name(&self, name: &str) -> Result<User>;
    async fn user_by_id(&self, id: &UserId) -> Result<User>;
    async fn users(&self) -> Result<Vec<User>>;
    /// The users of organisation `org` (a list an org-admin may see), by name; filtered in the query.
    async fn users_of(&self, org: &OrgId) -> Result<Vec<User>>;
    /// The ids of the organisations named `orgs` and of the users named `users` (local and
    /// directory entries alike), in one query; a name not found is absent from the answer.
    async fn ids_by_name(&self, orgs: &[String], users: &[String]) -> Result<NameIds>;
}

/// API tokens and one-time enrolment codes (hashes only, never the secrets). Needs the
/// [`Directory`], since a token is authenticated together with its user.
#[async_trait]
pub trait Credentials: Directory + Send + Sync {
    async fn add_token(&self, token: &TokenRecord) -> Result<()> {
        self.add_token_audited(token, None).await
    }
    /// [`Credentials::add_token`] with the audit entry that records it, in the same transaction.
    async fn add_token_audited(
        &self,
        token: &TokenRecord,
        audit: Option<NewAuditEntry>,
    ) -> Result<()>;
    async fn token(&self, id: &str) -> Result<TokenRecord>;
    /// The token with id `id` and its user, as `token` and `user_by_id` give them (the
    /// authentication of every request: a backend may read both at once). `NotFound` when either
    /// is missing.
    async fn token_with_user(&self, id: &str) -> Result<(TokenRecord, User)> {
        let token = self.token(id).await?;
        let user = self.user_by_id(&token.user).await?;
        Ok((token, user))
    }
    async fn revoke_token(&self, id: &str) -> Result<()> {
        self.revoke_token_audited(id, None).await
    }
    /// [`Credentials::revoke_token`] with the audit entry that records it, in the same transaction.
    async fn revoke_token_audited(&self, id: &str, audit: Option<NewAuditEntry>) -> Result<()>;
    /// Issue an enrolment code: in one transaction, revoke every token of its user and keep the
    /// code. Returns how many tokens were revoked. `NotFound` for an unknown user.
    async fn add_enrolment(&self, e: &EnrolmentRecord) -> Result<u64> {
        self.add_enrolment_audited(e, None).await
    }
    /// [`Credentials::add_enrolment`] with the audit entry that records it, in the same transaction (its
    /// `detail` gets `tokens_revoked`).
    async fn add_enrolment_audited(
        &self,
        e: &EnrolmentRecord,
        audit: Option<NewAuditEntry>,
    ) -> Result<u64>;
    async fn enrolment(&self, id: &str) -> Result<EnrolmentRecord>;
    /// Redeem enrolment code `id` for `token` (of the code's user), in one transaction: the code is
    /// marked redeemed at `at` from `from` and the token stored. `Conflict` when the code was
    /// redeemed already (it is used once), `NotFound` when there is none.
    async fn redeem_enrolment(
        &self,
        id: &str,
        token: &TokenRecord,
        at: Timestamp,
        from: &str,
    ) -> Result<()> {
        self.redeem_enrolment_audited(id, token, at, from, None)
            .await
    }
    /// [`Credentials::redeem_enrolment`] with the audit entry that records it, in the same transaction.
    async fn redeem_enrolment_audited(
        &self,
        id: &str,
        token: &TokenRecord,
        at: Timestamp,
        from: &str,
        audit: Option<NewAuditEntry>,
    ) -> Result<()>;
    /// Every enrolment code issued for `user`, oldest first (shown to the user).
    async fn enrolments(&self, user: &UserId) -> Result<Vec<EnrolmentRecord>>;
    /// The tokens whose id starts with `prefix` (tokens looked up by their secret rather than by an
    /// id in the token string), ordered by id.
    async fn tokens_with_id_prefix(&self, prefix: &str) -> Result<Vec<TokenRecord>>;
    /// Store token `id` as `new_id` with secret hash `new_hash` (a stronger hash of the same
    /// secret), if its hash is still `old_hash`; returns whether it was replaced. `NotFound` for an
    /// unknown token, `Conflict` when `new_id` is another token's.
    async fn replace_token(
        &self,
        id: &str,
        old_hash: &str,
        new_id: &str,
        new_hash: &str,
    ) -> Result<bool>;
}

/// Acts of administration ([`AdminAct`]), each written in one transaction with its audit entry,
/// and the shorthands built on them.
#[async_trait]
pub trait Administration: Send + Sync {
    /// Do `act` and append its audit entry ([`Administered::audit_entry`] by `by`), in one
    /// transaction.
    async fn administer(&self, act: AdminAct, by: Option<AuditBy>) -> Result<Administered>;
    /// An organisation of this node, without an audit entry (the node's own set-up and tests;
    /// every act of a person or the command line goes through [`Administration::administer`]).
    async fn add_org(&self, name: &str) -> Result<Org> {
        let act = AdminAct::AddOrg {
            name: name.into(),
            node: None,
        };
        self.administer(act, None).await?.org()
    }
    /// Record an organisation hosted on the peer node `node_id` (a directory entry: its users can
    /// be named in audiences but never authenticate here). `Conflict` when the name is taken.
    async fn add_remote_org(&self, name: &str, node_id: &str) -> Result<Org> {
        let act = AdminAct::AddOrg {
            name: name.into(),
            node: Some(node_id.into()),
        };
        self.administer(act, None).await?.org()
    }
    async fn add_user(&self, name: &str, org: &OrgId, role: Role) -> Result<User> {
        let act = AdminAct::AddUser {
            id: UserId::new(),
            name: name.into(),
            org: org.clone(),
            role,
            token: None,
        };
        self.administer(act, None).await?.user()
    }
    async fn add_collection(&self, c: &NewCollection) -> Result<Collection> {
        self.administer(AdminAct::AddCollection(c.clone()), None)
            .await?
            .collection()
    }
}

/// Collections and what each reader may do with them. Adding one is an act of [`Administration`].
#[async_trait]
pub trait Collections: Send + Sync {
    /// Collections the reader may read or write, with its rights. A person reads and writes as
    /// the collection's lists say; a peer reads and writes the collections of its policy only (it
    /// pushes, and sends sightings home, into them; what it sends is verified on receipt).
    async fn collections(&self, who: &Reader) -> Result<Vec<CollectionView>>;
    /// Every collection of the node, for the node's own processes (the sync loop stores what it
    /// pulls from a peer into the local collection of the same id or alias): never for a request,
    /// which sees collections through [`Collections::collections`].
    async fn all_collections(&self) -> Result<Vec<Collection>>;
    /// One collection (by id or alias) as `who` sees it; `NotFound` when it may neither read nor
    /// write it.
    async fn collection(&self, who: &Reader, id: &str) -> Result<CollectionView>;
}

/// Object versions: writes in batches, reads through a [`Reader`] with the visibility rule
/// applied inside the query, deletes checked with the permission rule, search by value, routes
/// and marking labels.
#[async_trait]
pub trait Objects: Send + Sync {
    /// Write a batch in one transaction. One outcome per input, in order.
    async fn put_objects(
        &self,
        collection: &str,
        objects: Vec<NewObject>,
    ) -> Result<Vec<PutOutcome>> {
        self.put_objects_audited(collection, objects, None).await
    }
    /// [`Objects::put_objects`], with the audit entry that records the write appended in the same
    /// transaction (so a write is never committed without it). The entry's `detail` (a JSON
    /// object) gets the batch's counts added: `stored`, `duplicates` and `failed`, and `success` and
    /// `failure` increased by them ([`audit_counts`]). No entry is written for an empty batch.
    async fn put_objects_audited(
        &self,
        collection: &str,
        objects: Vec<NewObject>,
        audit: Option<NewAuditEntry>,
    ) -> Result<Vec<PutOutcome>>;
    /// Objects of a collection visible to `who`, filtered and paged, ascending by `seq` (and so by
    /// `date_added`). `match[version]` first/last are taken among the versions `who` can see; an
    /// empty `VersionMatch` means `last`. `NotFound` for an unknown collection; an empty page when
    /// `who` may not read it (the caller checks rights with `collection` for 403/404).
    async fn objects(&self, who: &Reader, collection: &str, filter: &ObjectFilter) -> Result<Page>;
    /// How many object versions `objects` would return, over all pages, for this filter (its
    /// cursor included, its limit ignored): the lag of a reader that stopped there. `NotFound` for
    /// an unknown collection; 0 when `who` may not read it.
    async fn count_objects(
        &self,
        who: &Reader,
        collection: &str,
        filter: &ObjectFilter,
    ) -> Result<u64>;
    /// Where the objects with these STIX ids came from (any collection): one entry per distinct
    /// (id, origin, via), ordered. Routing metadata only, never content; unknown ids are absent.
    async fn object_routes(&self, ids: &[String]) -> Result<Vec<ObjectRoute>>;
    /// Delete the versions of one object that match `versions`/`spec_versions`, among those `who` can
    /// see (an empty `VersionMatch` means `last`; pass `all: true` to delete every version).
    /// Returns how many were deleted. `NotFound` for an unknown collection. Each version is checked
    /// with the permission rule (`Action::DeleteObject`, with the caller's `rights` on the
    /// collection) in the transaction; when any is refused nothing is deleted and the refusal is
    /// returned as `Refused`.
    async fn delete_object(
        &self,
        who: &Principal,
        rights: Rights,
        collection: &str,
        id: &str,
        versions: &VersionMatch,
        spec_versions: &[String],
    ) -> Result<u64> {
        self.delete_object_audited(who, rights, collection, id, versions, spec_versions, None)
            .await
    }
    /// [`Objects::delete_object`], with the audit entry that records the delete appended in the same
    /// transaction when anything is deleted (its `detail` gets `versions_deleted`).
    #[allow(clippy::too_many_arguments)]
    async fn delete_object_audited(
        &self,
        who: &Principal,
        rights: Rights,
        collection: &str,
        id: &str,
        versions: &VersionMatch,
        spec_versions: &[String],
        audit: Option<NewAuditEntry>,
    ) -> Result<u64>;
    /// Objects in any collection `who` can read that mention `value` (exact match on extracted
    /// values, trimmed and case-insensitive): the latest visible version of each, ascending by `seq`.
    async fn search(&self, who: &Audience, value: &str, limit: usize) -> Result<Vec<StoredObject>>;
    /// The TLP labels that the stored marking definitions with these ids define
    /// (`kopa_core::Tlp::defined_by`: the OASIS TLP 2.0 extension, or a TLP 1.0 definition), in one
    /// query. `ids` are lower-case; stored ids match whatever their case, in any collection, and the
    /// answer is keyed by the lower-cased id. When several stored versions define different labels,
    /// the narrowest wins. An id with no stored definition that carries a TLP is absent. Labels
    /// only, never content: read without a reader, since a label can only narrow the objects that
    /// name it.
    async fn marking_labels(&self, ids: &[String]) -> Result<HashMap<String, Tlp>>;
}

/// TAXII status resources.
#[async_trait]
pub trait Statuses: Send + Sync {
    async fn put_status(&self, status: &StatusRecord) -> Result<()>;
    /// The status resource `id` if `who` may read it: its poster's organisation (a peer: the peer
    /// that posted). `NotFound` otherwise, the same as for a status that does not exist.
    async fn status(&self, who: &Reader, id: &str) -> Result<StatusRecord>;
    /// Drop status resources older than `before`.
    async fn purge_statuses(&self, before: Timestamp) -> Result<u64>;
}

/// The audit log: an append-only hash chain.
#[async_trait]
pub trait Audit: Send + Sync {
    /// Append an entry; the store assigns seq, time and the hash chain atomically.
    async fn audit(&self, entry: NewAuditEntry) -> Result<AuditEntry>;
    /// The last entry of the audit log as (seq, hash); `None` when the log is empty.
    async fn audit_head(&self) -> Result<Option<(i64, String)>>;
    /// Entries with seq > `after`, at most `limit`, in order.
    async fn audit_entries(&self, after: i64, limit: usize) -> Result<Vec<AuditEntry>>;
}

/// Everything Kopa keeps: every capability above and the federation peers ([`PeerStore`]).
/// Implemented by the SQLite and the PostgreSQL backend, one `impl` block per capability; callers
/// hold an `Arc<dyn Store>`. Generic code calls a capability's methods with the trait in scope
/// (`use kopa_store::prelude::*;`).
pub trait Store:
    NodeStore
    + Directory
    + Credentials
    + Administration
    + Collections
    + Objects
    + Statuses
    + Audit
    + PeerStore
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: NodeStore
        + Directory
        + Credentials
        + Administration
        + Collections
        + Objects
        + Statuses
        + Audit
        + PeerStore
        + Send
        + Sync
        + 'static
{
}

/// Where the store lives, as given on the command line (`--data DIR` or `--database URL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite database `kopa.db` inside this directory.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database URL (`postgres://…` or `postgresql://…`).
    Postgres(String),
}

impl Location {
    /// A `postgres://` or `postgresql://` URL is PostgreSQL; anything else is a data directory.
    pub fn parse(location: &str) -> Location {
        let lower = location.trim_start().to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Location::Postgres(location.trim().to_string())
        } else {
            Location::Sqlite(std::path::PathBuf::from(location))
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(dir) => write!(f, "{}", dir.join(DB_FILE).display()),
            Location::Postgres(url) => f.write_str(&sql::redact_url(url)),
        }
    }
}

/// Open the store at `location` (see [`Location::parse`]) and bring its schema up to date.
///
/// With `create = false` a database that does not exist yet is an error ("no Kopa database at …"),
/// so that a mistyped path or URL never silently makes an empty database. A PostgreSQL database
/// must exist in both cases (Kopa creates its tables, not the database).
pub async fn open(location: &str, create: bool) -> Result<Arc<dyn Store>> {
    open_location(&Location::parse(location), create).await
}

/// [`open`] with a parsed location.
pub async fn open_location(location: &Location, create: bool) -> Result<Arc<dyn Store>> {
    open_with(location, create, &OpenOptions::default()).await
}

/// SQLite reader connections when none are configured: enough to keep two cores busy while one
/// read waits on the disk.
pub const DEFAULT_SQLITE_READERS: usize = 4;
/// The most SQLite reader connections a store takes.
pub const MAX_SQLITE_READERS: usize = 64;

/// How a store is opened, beside its location.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// SQLite: reader connections, each on a thread of its own for the life of the store (1 to
    /// [`MAX_SQLITE_READERS`]; values outside are clamped). More reads at once than this wait for a
    /// free connection. This bounds the node's memory: each reader keeps a page cache of about
    /// 4 MB, prepared statements and its thread's allocator arena. Not used by PostgreSQL, whose
    /// pool has its own bound.
    pub sqlite_readers: usize,
    /// The node's clock (`date_added`, audit entries, peers' times); the system clock by default,
    /// a test clock in tests of time.
    pub clock: SharedClock,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            sqlite_readers: DEFAULT_SQLITE_READERS,
            clock: kopa_core::clock::system(),
        }
    }
}

/// [`open_location`] with options.
pub async fn open_with(
    location: &Location,
    create: bool,
    options: &OpenOptions,
) -> Result<Arc<dyn Store>> {
    match location {
        Location::Sqlite(dir) => {
            let dir = dir.clone();
            let readers = options.sqlite_readers.clamp(1, MAX_SQLITE_READERS);
            let clock = options.clock.clone();
            let store = tokio::task::spawn_blocking(move || {
                sqlite::SqliteStore::open(&dir, create, readers, clock)
            })
            .await
            .map_err(|e| StoreError::backend_with(format!("store task failed: {e}"), e))??;
            Ok(Arc::new(store))
        }
        Location::Postgres(url) => Ok(Arc::new(
            postgres::PgStore::open(url, create, options.clock.clone()).await?,
        )),
    }
}
