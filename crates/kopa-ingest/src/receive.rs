//! The node side of federation: receiving objects from peers, and knowing who the peers are.
//!
//! [`receive`] is the one way objects of other nodes enter this node: a peer's TAXII POST (push,
//! sightings home) and the pull loop (`kopa-sync`) both call it. Each object is validated, its
//! provenance verified (a valid signature by the node it names as origin, with a key this node knows),
//! this node's own objects are skipped (nothing comes back to its origin), and the rest are stored in
//! one transaction with their origin and the delivering peer recorded. Invalid, unsigned or wrongly
//! signed objects are rejected with their reason and never stored.
//!

use std::collections::BTreeMap;
use std::sync::Arc;

use kopa_core::audit::NewAuditEntry;
use kopa_core::Tlp;
use kopa_federation::{NodeId, VerifyError};
use kopa_store::{Store, StoreError};
use serde_json::Value;

use crate::peers::Peers;
use crate::prepare::{prepare_batch, Batch, Failure, Item, Provenancing};
use crate::write::{write_items, Written};
use crate::{Detail, INVALID};

/// What [`receive`] did with one batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReceiveReport {
    /// New versions stored.
    pub stored: u64,
    /// Versions already held: no-ops (loop prevention).
    pub duplicates: u64,
    /// Objects this node originated, come back: skipped.
    pub own: u64,
    /// Objects not stored, in the order received.
    pub rejected: Vec<Rejected>,
    /// Signatures checked (valid or not).
    pub verified: u64,
}

/// One object that was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The object's id (empty when it has none).
    pub id: String,
    /// A short label for counting: `unsigned`, `malformed`, `unknown_node`, `bad_signature`,
    /// `tampered` (provenance), or `invalid` (not valid STIX, or refused by the store).
    pub reason: &'static str,
    /// What is wrong, for logs and status.
    pub message: String,
}

impl ReceiveReport {
    /// Rejections counted by reason label.
    pub fn rejected_by_reason(&self) -> BTreeMap<&'static str, u64> {
        let mut m = BTreeMap::new();
        for r in &self.rejected {
            *m.entry(r.reason).or_insert(0) += 1;
        }
        m
    }
}

/// The label of a provenance failure, as counted in metrics and peer status.
pub fn reason_label(e: &VerifyError) -> &'static str {
    match e {
        VerifyError::Unsigned { .. } => "unsigned",
        VerifyError::NotAnObject
        | VerifyError::Malformed { .. }
        | VerifyError::InexactNumber { .. } => "malformed",
        VerifyError::UnknownNode { .. } => "unknown_node",
        VerifyError::BadSignature { .. } => "bad_signature",
        VerifyError::Tampered { .. } => "tampered",
    }
}

/// Everything [`receive`] needs besides the objects: this node, the peers (whose cached keys it
/// trusts), and the TLP of unmarked objects (`ServerConfig::default_tlp`; they are then narrowed to
/// their owner).
#[derive(Clone)]
pub struct Receiver {
    pub store: Arc<dyn Store>,
    pub this_node: NodeId,
    pub peers: Arc<Peers>,
    pub default_tlp: Tlp,
}

/// Store `objects` received from the peer whose node id is `via` into local collection
/// `collection`: verify each, skip this node's own, reject the rest with their reason, and store the
/// valid ones in one transaction with origin (the verified origin node) and via recorded.
///
/// Stewardship of a received object: owner = its origin organisation, author = its origin node, TLP
/// the narrowest of all its TLP signs as for a local post (none: the node default, narrowed), audience
/// names resolved against this node's organisations and users (local and directory); a name that
/// does not resolve never widens it.
pub async fn receive(
    r: &Receiver,
    collection: &str,
    objects: Vec<Value>,
    via: &str,
) -> Result<ReceiveReport, StoreError> {
    match receive_batch(r, collection, Batch::Objects(objects), via, None).await {
        Ok((report, _)) => Ok(report),
        Err(Failure::Refused(e)) => Err(StoreError::backend(e.to_string())),
        Err(Failure::Store(e)) => Err(e),
    }
}

/// The one receive step, of [`receive`] (a pulled page) and of a peer's TAXII POST (an envelope as
/// posted): prepare (validate, verify), write in one transaction, report. Also returns the status
/// detail of each object, in order.
pub async fn receive_batch(
    r: &Receiver,
    collection: &str,
    batch: Batch,
    via: &str,
    audit: Option<NewAuditEntry>,
) -> Result<(ReceiveReport, Vec<Detail>), Failure> {
    let prov = Provenancing::Received {
        this_node: r.this_node.clone(),
        known: r.peers.known_keys().await?,
    };
    let items = prepare_batch(&r.peers, batch, prov.clone()).await?;
    let count = items.len() as u64;
    let verified = verified(&items);
    let written = write_items(
        r.store.as_ref(),
        collection,
        items,
        None,
        Some(via),
        r.default_tlp,
        &prov,
        audit,
    )
    .await?;
    let report = report(&written, verified);
    debug_assert_eq!(
        report.stored + report.duplicates + report.own + report.rejected.len() as u64,
        count
    );
    Ok((report, written.details))
}

/// How many of `items` had their signature checked (valid or not): all but those refused before.
fn verified(items: &[Item]) -> u64 {
    items
        .iter()
        .filter(|i| !matches!(i, Item::Invalid { reason, .. } if *reason == INVALID))
        .count() as u64
}

/// The report of a write of received objects.
fn report(written: &Written, verified: u64) -> ReceiveReport {
    ReceiveReport {
        stored: written.stored,
        duplicates: written.duplicates,
        own: written.own,
        rejected: written
            .details
            .iter()
            .filter_map(|(id, _, result)| {
                result.as_ref().err().map(|(message, reason)| Rejected {
                    id: id.clone(),
                    reason,
                    message: message.clone(),
                })
            })
            .collect(),
        verified,
    }
}

/// Log the objects a peer delivered that were not stored (the first few one by one, then a count).
pub fn log_rejections(peer: &str, report: &ReceiveReport) {
    const EACH: usize = 10;
    for r in report.rejected.iter().take(EACH) {
        tracing::warn!(peer, id = %r.id, reason = r.reason, message = %r.message, "received object rejected");
    }
    if report.rejected.len() > EACH {
        tracing::warn!(
            peer,
            more = report.rejected.len() - EACH,
            by_reason = ?report.rejected_by_reason(),
            "more received objects rejected"
        );
    }
}
