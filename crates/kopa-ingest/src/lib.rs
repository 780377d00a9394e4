//! Kopa's write pipeline, below every transport: a TAXII POST, a peer's push, a pulled page and an
//! imported file all enter a node through it, and nothing here knows HTTP.
//!
//! 1. **Prepare** ([`prepare_batch`]): parse once, validate each object with `kopa-stix`, keep its
//!    numbers exact or refuse it, and either sign it as originated here (a local post) or verify the
//!    signature of the node it names as origin (an object of another node). CPU work, off the async
//!    threads, in parallel chunks for large batches.
//! 2. **Stewardship** ([`write_items`]): owner organisation and author, the TLP label (the
//!    narrowest of all its signs, custom marking definitions resolved against the batch and the
//!    node), the audience: a local post's names resolved to identities qualified by node and
//!    written into the object before it is signed; a received object granting only the very
//!    identities its origin named. A received object never widens.
//! 3. **One transaction per batch**, with its audit entry: the store decides versions (only the
//!    producer versions an object) inside it.
//! 4. **A report per object** ([`Detail`]), in order: stored, already held, this node's own come
//!    back, or refused with its reason.
//!
//! [`receive`] is that pipeline for objects of other nodes; [`Peers`] caches the declared peers'
//! keys and policies it verifies with.

// Production code handles every failure; `unwrap` is for tests (clippy.toml allows it there).
#![warn(clippy::unwrap_used)]

mod peers;
mod prepare;
mod receive;
mod write;

pub use peers::{PeerEntry, Peers};
pub use prepare::{prepare, prepare_batch, Batch, Draft, Failure, Item, Provenancing};
pub use receive::{
    log_rejections, reason_label, receive, receive_batch, ReceiveReport, Receiver, Rejected,
};
pub use write::{write_items, Written};

/// The outcome of one object: its id, its version, and success or the failure message with its
/// reason label.
pub type Detail = (String, String, Result<(), (String, &'static str)>);

/// Reason label of an object refused for anything but its provenance (not valid STIX, an unknown
/// audience name, refused by the store).
pub const INVALID: &str = "invalid";

/// Why a whole batch was refused before any object was looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The body is not JSON.
    NotJson(String),
    /// JSON, but not a TAXII envelope (an object with an `objects` list).
    NotEnvelope(String),
    /// Kopa failed (a validation thread panicked).
    Internal(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotJson(m) | Refusal::NotEnvelope(m) | Refusal::Internal(m) => f.write_str(m),
        }
    }
}

/// What receiving objects and syncing with peers count, for the node's metrics (the server's
/// `/metrics` implements it; the sync loop and the receive step only report to it).
pub trait FederationMetrics: Send + Sync {
    /// What [`receive`] did with objects delivered by `peer`.
    fn peer_received(&self, peer: &str, report: &ReceiveReport);
    /// A sync round with `peer` ended successfully at `unix_seconds`.
    fn peer_synced(&self, peer: &str, unix_seconds: f64);
    /// What `peer` still has for this node after the last round, and how old the oldest of it is.
    fn peer_lag(&self, peer: &str, objects: u64, seconds: f64);
    /// A sync round with `peer` failed.
    fn peer_sync_error(&self, peer: &str);
}
