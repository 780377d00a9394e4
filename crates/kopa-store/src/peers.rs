//! Federation peers as the store keeps them: the declaration (URL, public key, the token this node
//! presents, the export policy as JSON), whether this node pushes to it, its cursors (pull cursors per
//! peer collection; the sync loop may keep push cursors there too under keys of its own, e.g.
//! `push:<collection>`), and sync status.
//!
//! [`PeerStore`] is a narrow capability trait; every [`crate::Store`] implements it (SQLite in
//! `sqlite/peers.rs`, PostgreSQL in `postgres/peers.rs`). The store does not interpret the policy:
//! `kopa-federation` parses and checks it at the edge.

use async_trait::async_trait;
use kopa_stix::Timestamp;
use std::fmt;

use crate::Result;

/// A peer to declare.
#[derive(Clone, PartialEq, Eq)]
pub struct NewPeer {
    /// Unique local name of the peer.
    pub name: String,
    /// The peer's node id (derived from its public key by the caller); unique.
    pub node_id: String,
    pub url: String,
    /// The peer's Ed25519 public key, as the caller encodes it.
    pub public_key: String,
    /// The token this node presents to the peer. A secret, stored as given so it can be used.
    pub token: Option<String>,
    /// The export policy, JSON.
    pub policy: String,
}

/// A stored peer with its sync status.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerRecord {
    pub peer: NewPeer,
    pub added_at: Timestamp,
    /// End of the last sync round that completed without error.
    pub last_sync_at: Option<Timestamp>,
    /// The last error and when it happened (cleared by a successful round).
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    /// Errors since the peer was added.
    pub error_count: i64,
    /// Whether this node pushes its new objects to the peer (besides the peer pulling them).
    pub push: bool,
    /// The sync loop's last status report for the peer (its own JSON shape); `None` before the first.
    pub status: Option<serde_json::Value>,
}

/// A stored status report; text that is not JSON (never written by Kopa) is kept as a JSON string.
pub(crate) fn parse_status(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_string()))
}

fn mask(t: &Option<String>) -> Option<&'static str> {
    t.as_ref().map(|_| "<secret>")
}

impl fmt::Debug for NewPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewPeer")
            .field("name", &self.name)
            .field("node_id", &self.node_id)
            .field("url", &self.url)
            .field("public_key", &self.public_key)
            .field("token", &mask(&self.token))
            .field("policy", &self.policy)
            .finish()
    }
}

impl fmt::Debug for PeerRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerRecord")
            .field("peer", &self.peer)
            .field("added_at", &self.added_at)
            .field("last_sync_at", &self.last_sync_at)
            .field("last_error", &self.last_error)
            .field("last_error_at", &self.last_error_at)
            .field("error_count", &self.error_count)
            .field("push", &self.push)
            .field("status", &self.status)
            .finish()
    }
}

/// Peers, their cursors and their sync status.
#[async_trait]
pub trait PeerStore: Send + Sync {
    /// Declare a peer. `Conflict` when the name or the node id is already declared.
    async fn add_peer(&self, peer: &NewPeer) -> Result<PeerRecord>;
    /// Every peer, by name.
    async fn peers(&self) -> Result<Vec<PeerRecord>>;
    /// One peer by name; `NotFound` when there is none.
    async fn peer(&self, name: &str) -> Result<PeerRecord>;
    /// Remove a peer and its cursors; `NotFound` when there is none.
    async fn remove_peer(&self, name: &str) -> Result<()>;
    /// Set the pull cursor of one of the peer's collections. `NotFound` for an unknown peer.
    async fn set_peer_cursor(&self, peer: &str, collection: &str, cursor: &str) -> Result<()>;
    /// The peer's pull cursors as (collection, cursor), by collection.
    async fn peer_cursors(&self, peer: &str) -> Result<Vec<(String, String)>>;
    /// Record the end of a sync round at `at`: `error = None` is a success (sets `last_sync_at`,
    /// clears the last error); `Some` records the error and counts it. `NotFound` for an unknown peer.
    async fn record_peer_sync(&self, peer: &str, at: Timestamp, error: Option<&str>) -> Result<()>;
    /// Replace the peer's status report (written by the sync loop). `NotFound` for an unknown peer.
    async fn set_peer_status(&self, peer: &str, status: &serde_json::Value) -> Result<()>;
    /// Turn pushing to the peer on or off. `NotFound` for an unknown peer.
    async fn set_peer_push(&self, peer: &str, push: bool) -> Result<()>;
}
