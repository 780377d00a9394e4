//! Writing a prepared batch: stewardship (owner, author, TLP, audience resolved to qualified
//! identities), the signature of a local post that names an audience, and one store transaction
//! per batch with its audit entry; a per-object report.

use std::collections::HashMap;

use kopa_core::audience::{self, QualifiedName, Refs};
use kopa_core::audit::NewAuditEntry;
use kopa_core::{OrgId, Principal, Stewardship, Tlp, UserId};
use kopa_federation::{sign, NodeIdentity, Provenance};
use kopa_store::{NameIds, NewObject, PutOutcome, Store, StoreError};
use serde_json::{json, Value};

use crate::prepare::{Draft, Item, Provenancing};
use crate::receive::reason_label;
use crate::{Detail, INVALID};

/// Write the qualified identities `refs` into a local post's audience extension and sign it as
/// originated here by `org`: its JSON text as served.
fn sign_addressed(
    mut raw: serde_json::Map<String, Value>,
    refs: &Refs,
    node: &NodeIdentity,
    org: &str,
) -> Result<String, String> {
    if let Some(Value::Object(ext)) = raw
        .get_mut("extensions")
        .and_then(|e| e.get_mut(kopa_core::AUDIENCE_EXTENSION_ID))
    {
        refs.write(ext);
    }
    match sign(&Value::Object(raw), node.key(), org) {
        Ok(v @ Value::Object(_)) => serde_json::to_string(&v).map_err(|e| e.to_string()),
        Ok(_) => Err("cannot be signed".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Resolve the organisation and user names an envelope (or a pulled page) addresses, in one store
/// query (none when it names nobody).
async fn resolve_names(store: &dyn Store, items: &[Item]) -> Result<NameIds, StoreError> {
    let mut orgs: Vec<String> = Vec::new();
    let mut users: Vec<String> = Vec::new();
    for item in items {
        let Item::Valid(d) = item else { continue };
        match (&d.origin, &d.addressed.refs) {
            (Some(_), Some(refs)) => {
                orgs.extend(refs.organisations.iter().map(|q| q.name.clone()));
                users.extend(refs.recipients.iter().map(|q| q.name.clone()));
            }
            _ => {
                orgs.extend(d.addressed.organisations.iter().cloned());
                users.extend(d.addressed.recipients.iter().cloned());
            }
        }
    }
    if orgs.is_empty() && users.is_empty() {
        return Ok(NameIds::default());
    }
    for names in [&mut orgs, &mut users] {
        names.sort_unstable();
        names.dedup();
    }
    store.ids_by_name(&orgs, &users).await
}

/// The TLP labels of the custom marking definitions the objects of an envelope (or a pulled page)
/// name, keyed by lower-cased id: those defined by the envelope itself and those stored on the node,
/// in one store query (none when no object names a custom marking). Where both define an id, the
/// narrower label wins; an id neither defines is absent (it is no TLP sign).
async fn resolve_markings(
    store: &dyn Store,
    items: &[Item],
) -> Result<HashMap<String, Tlp>, StoreError> {
    let drafts = || {
        items.iter().filter_map(|item| match item {
            Item::Valid(d) => Some(d),
            _ => None,
        })
    };
    let mut ids: Vec<String> = drafts()
        .flat_map(|d| d.signs.custom.iter().cloned())
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    ids.sort_unstable();
    ids.dedup();
    let mut labels = store.marking_labels(&ids).await?;
    for d in drafts() {
        if let Some(t) = d.defines {
            let label = labels.entry(d.id.to_ascii_lowercase()).or_insert(t);
            *label = (*label).max(t);
        }
    }
    Ok(labels)
}

/// Reason label of a received object whose signed origin names an organisation its origin node does
/// not host.
pub(crate) const FORGED: &str = "forged_origin";

/// The home of every organisation this node knows (`None`: hosted here), read only when a batch
/// holds received objects (one store read).
async fn org_homes(
    store: &dyn Store,
    items: &[Item],
) -> Result<HashMap<String, Option<String>>, StoreError> {
    let received = items
        .iter()
        .any(|item| matches!(item, Item::Valid(d) if d.origin.is_some()));
    if !received {
        return Ok(HashMap::new());
    }
    Ok(store
        .orgs()
        .await?
        .into_iter()
        .map(|o| (o.id.0, o.node))
        .collect())
}

/// Whether a received object's signed origin is forged: its origin organisation is known here to be
/// hosted by another node than its origin node (one of this node's own organisations, or a
/// directory entry of another peer). The origin node's own organisations are not known here by id:
/// an unknown id is the origin's to vouch for with its signature.
fn forged(homes: &HashMap<String, Option<String>>, p: &Provenance) -> bool {
    homes
        .get(&p.origin_org)
        .is_some_and(|home| home.as_deref() != Some(p.origin_node.as_str()))
}

/// What writing an envelope's items did.
pub struct Written {
    /// One detail per item, in order.
    pub details: Vec<Detail>,
    /// New versions stored.
    pub stored: u64,
    /// Versions already held (no-ops).
    pub duplicates: u64,
    /// This node's own objects come back (skipped).
    pub own: u64,
}

/// Write the valid items in **one** `put_objects` call (one transaction). `writer` is the local
/// principal who posted (`None` for objects received from a peer); `via` the node id of the peer
/// that delivered them. Each object's TLP label is the narrowest of its signs, the custom marking
/// definitions it names resolved against the batch and the node ([`resolve_markings`]).
///
/// `prov` says where the objects come from: a local post's objects that name an audience are
/// signed here, once their names are resolved to qualified identities (see [`kopa_core::audience`]);
/// received objects grant access only to the identities their origin named.
#[allow(clippy::too_many_arguments)]
pub async fn write_items(
    store: &dyn Store,
    cid: &str,
    items: Vec<Item>,
    writer: Option<&Principal>,
    via: Option<&str>,
    default_tlp: Tlp,
    prov: &Provenancing,
    audit: Option<NewAuditEntry>,
) -> Result<Written, StoreError> {
    let this_node = match prov {
        Provenancing::Off => None,
        Provenancing::Local { node, .. } => Some(node.id().as_str()),
        Provenancing::Received { this_node, .. } => Some(this_node.as_str()),
    };
    let names = resolve_names(store, &items).await?;
    let markings = resolve_markings(store, &items).await?;
    let homes = org_homes(store, &items).await?;
    // Build the batch; remember where each stored object's outcome goes.
    let mut details: Vec<Option<Detail>> = Vec::with_capacity(items.len());
    let mut batch: Vec<NewObject> = Vec::new();
    let mut batch_pos: Vec<(usize, Option<String>)> = Vec::new();
    let mut own = 0u64;
    for item in items {
        match item {
            Item::Invalid {
                id,
                version,
                message,
                reason,
            } => details.push(Some((id, version, Err((message, reason))))),
            Item::UnknownOrigin {
                id, version, error, ..
            } => details.push(Some((
                id,
                version,
                Err((error.to_string(), reason_label(&error))),
            ))),
            Item::Own { id, version } => {
                own += 1;
                details.push(Some((id, version, Ok(()))));
            }
            Item::Valid(d) if d.origin.as_ref().is_some_and(|p| forged(&homes, p)) => {
                let origin = d
                    .origin
                    .as_ref()
                    .map(|p| (p.origin_org.clone(), p.origin_node.to_string()));
                let (org, node) = origin.unwrap_or_default();
                details.push(Some((
                    d.id,
                    d.version_text.unwrap_or_default(),
                    Err((
                        format!("forged origin: organisation {org} is not hosted by node {node}"),
                        FORGED,
                    )),
                )))
            }
            Item::Valid(mut d) => match stewardship(
                writer,
                &d,
                d.signs.label(|id| markings.get(id).copied()),
                default_tlp,
                &names,
                this_node.unwrap_or_default(),
            )
            .and_then(|(steward, refs)| match (d.unsigned.take(), prov) {
                (Some(raw), Provenancing::Local { node, org, .. }) => {
                    d.json = sign_addressed(*raw, &refs, node, org)
                        .map_err(|e| format!("{}: {e}", d.id))?;
                    Ok(steward)
                }
                _ => Ok(steward),
            }) {
                Err(message) => details.push(Some((
                    d.id,
                    d.version_text.unwrap_or_default(),
                    Err((message, INVALID)),
                ))),
                Ok(steward) => {
                    batch_pos.push((details.len(), d.version_text));
                    details.push(None);
                    batch.push(NewObject {
                        id: d.id,
                        type_: d.type_,
                        spec_version: d.spec_version,
                        version: d.version,
                        json: d.json,
                        steward,
                        values: d.values,
                        origin: d.origin.map(|p| p.origin_node.to_string()),
                        via: via.map(str::to_string),
                    });
                }
            },
        }
    }
    let ids: Vec<String> = batch.iter().map(|o| o.id.clone()).collect();
    // The audit entry goes into the batch's transaction, with what was refused before the store.
    let audit = audit.map(|mut e| {
        let done = details.iter().flatten();
        let ok = done.clone().filter(|d| d.2.is_ok()).count() as u64;
        let mut rejected: std::collections::BTreeMap<&str, u64> = Default::default();
        for (_, _, r) in done {
            if let Err((_, reason)) = r {
                *rejected.entry(reason).or_default() += 1;
            }
        }
        let failed: u64 = rejected.values().sum();
        e.detail = kopa_store::audit_counts(&e.detail, &[], ok, failed);
        if let Ok(Value::Object(mut m)) = serde_json::from_str::<Value>(&e.detail) {
            m.insert("rejected".into(), json!(rejected));
            e.detail = Value::Object(m).to_string();
        }
        e
    });
    let outcomes = if batch.is_empty() {
        if let Some(mut e) = audit {
            e.detail = kopa_store::audit_counts(
                &e.detail,
                &[("stored", 0), ("duplicates", 0), ("failed", 0)],
                0,
                0,
            );
            store.audit(e).await?;
        }
        Vec::new()
    } else {
        store.put_objects_audited(cid, batch, audit).await?
    };
    if outcomes.len() != ids.len() {
        return Err(StoreError::backend(format!(
            "store returned {} outcomes for {} objects",
            outcomes.len(),
            ids.len()
        )));
    }
    let (mut stored, mut duplicates) = (0u64, 0u64);
    for (((pos, version_text), id), outcome) in batch_pos.into_iter().zip(ids).zip(outcomes) {
        let (result, version) = match outcome {
            PutOutcome::Stored { version } => {
                stored += 1;
                (Ok(()), version_text.unwrap_or_else(|| version.to_taxii()))
            }
            PutOutcome::Duplicate { version } => {
                duplicates += 1;
                (Ok(()), version_text.unwrap_or_else(|| version.to_taxii()))
            }
            PutOutcome::Failed { message } => {
                (Err((message, INVALID)), version_text.unwrap_or_default())
            }
        };
        details[pos] = Some((id, version, result));
    }
    Ok(Written {
        details: details.into_iter().flatten().collect(),
        stored,
        duplicates,
        own,
    })
}

/// Organisation and user ids for the names a local post addresses, and the qualified identities
/// they stand for (this node's own, or a directory entry's home node); an unknown name is an error.
fn resolve_local(
    d: &Draft,
    names: &NameIds,
    this_node: &str,
) -> Result<(Vec<OrgId>, Vec<UserId>, Refs), String> {
    let (org_ids, organisations) = qualify(
        d,
        "organisations",
        "organisation",
        &d.addressed.organisations,
        &names.orgs,
        &names.org_homes,
        this_node,
    )?;
    let (user_ids, recipients) = qualify(
        d,
        "recipients",
        "user",
        &d.addressed.recipients,
        &names.users,
        &names.user_homes,
        this_node,
    )?;
    let refs = Refs {
        organisations,
        recipients,
    };
    Ok((org_ids, user_ids, refs))
}

/// The ids of `list` (the names of property `key` of the audience extension, each a `what` on this
/// node) and the qualified identity of each.
fn qualify<T: Clone + PartialEq>(
    d: &Draft,
    key: &str,
    what: &str,
    list: &[String],
    ids: &std::collections::HashMap<String, T>,
    homes: &std::collections::HashMap<String, String>,
    this_node: &str,
) -> Result<(Vec<T>, Vec<QualifiedName>), String> {
    let ext = kopa_core::AUDIENCE_EXTENSION_ID;
    let mut out = Vec::new();
    let mut refs = Vec::new();
    for name in list {
        let id = ids.get(name).ok_or_else(|| {
            format!(
                "{}: extensions.'{ext}'.{key}: no {what} named {name:?} on this node",
                d.id
            )
        })?;
        if !out.contains(id) {
            out.push(id.clone());
            refs.push(QualifiedName {
                node: homes
                    .get(name)
                    .map_or(this_node, String::as_str)
                    .to_string(),
                name: name.clone(),
            });
        }
    }
    Ok((out, refs))
}

/// Organisation and user ids on this node for the identities a received object's origin named:
/// only the very identity named (this node's own when the reference names this node, a directory
/// entry whose home is the named node otherwise; see `audience::grant`). An object whose origin
/// wrote no references names its origin's identities. The third value says whether some
/// reference found no identity here.
fn resolve_received(
    d: &Draft,
    origin: &str,
    names: &NameIds,
    this_node: &str,
) -> (Vec<OrgId>, Vec<UserId>, bool) {
    let refs = d.addressed.refs.clone().unwrap_or_else(|| Refs {
        organisations: audience::in_origin_namespace(&d.addressed.organisations, origin),
        recipients: audience::in_origin_namespace(&d.addressed.recipients, origin),
    });
    let mut unresolved = false;
    let orgs = granted(
        &refs.organisations,
        &names.orgs,
        &names.org_homes,
        this_node,
        &mut unresolved,
    );
    let users = granted(
        &refs.recipients,
        &names.users,
        &names.user_homes,
        this_node,
        &mut unresolved,
    );
    (orgs, users, unresolved)
}

/// The local ids of the identities `list` names that this node holds as the very identity named;
/// `unresolved` is set when one is not held.
fn granted<T: Clone + PartialEq>(
    list: &[QualifiedName],
    ids: &std::collections::HashMap<String, T>,
    homes: &std::collections::HashMap<String, String>,
    this_node: &str,
    unresolved: &mut bool,
) -> Vec<T> {
    let mut out = Vec::new();
    for q in list {
        match ids.get(&q.name) {
            Some(id) if audience::grant(q, this_node, homes.get(&q.name).map(String::as_str)) => {
                if !out.contains(id) {
                    out.push(id.clone());
                }
            }
            _ => *unresolved = true,
        }
    }
    out
}

/// The stewardship of one object labelled `tlp` (`None`: it carries no TLP sign): written by local
/// principal `writer`, or received (its verified provenance in `d.origin`); or why it cannot be
/// stored. Also the qualified identities of a local post's audience, to write into it.
///
/// A received object is owned by its origin organisation and authored by its origin node (never a
/// local user); its audience is resolved here, and when a reference does not resolve the object
/// stays narrowed to those that do (to its remote owner alone when none does): received objects
/// never widen.
fn stewardship(
    writer: Option<&Principal>,
    d: &Draft,
    tlp: Option<Tlp>,
    default_tlp: Tlp,
    names: &NameIds,
    this_node: &str,
) -> Result<(Stewardship, Refs), String> {
    let label = tlp.unwrap_or(default_tlp);
    match (&d.origin, writer) {
        (Some(origin), _) => {
            let (org_ids, user_ids, unresolved) =
                resolve_received(d, origin.origin_node.as_str(), names, this_node);
            let addressed_orgs = d
                .addressed
                .refs
                .as_ref()
                .map_or(!d.addressed.organisations.is_empty(), |r| {
                    !r.organisations.is_empty()
                });
            Ok((
                Stewardship {
                    owner_org: OrgId(origin.origin_org.clone()),
                    author: UserId(origin.origin_node.to_string()),
                    tlp: label,
                    defaulted: tlp.is_none()
                        || (unresolved && addressed_orgs && org_ids.is_empty()),
                    orgs: org_ids,
                    users: user_ids,
                },
                Refs::default(),
            ))
        }
        (None, Some(p)) => {
            let (org_ids, user_ids, refs) = resolve_local(d, names, this_node)?;
            Ok((
                Stewardship {
                    owner_org: p.org.clone(),
                    author: p.user.clone(),
                    tlp: label,
                    orgs: org_ids,
                    users: user_ids,
                    defaulted: tlp.is_none(),
                },
                refs,
            ))
        }
        (None, None) => Err(format!("{}: received without a verified provenance", d.id)),
    }
}
