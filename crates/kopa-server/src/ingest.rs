//! The TAXII write path: `POST …/objects/` with an envelope.
//!
//! The body is parsed once; each object is validated by `kopa-stix`, stamped with its stewardship
//! (owner organisation, author, TLP label, named organisations and recipients) and serialised once.
//! The valid objects of an envelope are written in **one** `put_objects` call (one transaction); each
//! invalid one is listed in the status `failures` with its reason. Nothing is half-written.
//!
//! An object's TLP label is the narrowest of all its TLP signs (`kopa_core::TlpSigns`). The custom
//! marking definitions the objects name are resolved once per envelope, against the definitions the
//! envelope itself carries and those stored on the node (one store query).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use kopa_core::audience::{self, QualifiedName, Refs};
use kopa_core::audit::NewAuditEntry;
use kopa_core::permission::{decide, Action, Actor, Rights};
use kopa_core::{
    addressed_to, searchable_values, AddressedTo, OrgId, Principal, Reader, Stewardship, Tlp,
    TlpSigns, UserId,
};
use kopa_federation::{
    sign, verify, KnownKeys, NodeId, NodeIdentity, Provenance, VerifyError, PROVENANCE_EXTENSION_ID,
};
use kopa_stix::Timestamp;
use kopa_store::{NameIds, NewObject, PutOutcome, StatusRecord, Store, StoreError};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::auth::{Caller, Origin, PeerCaller, TaxiiCaller};
use crate::error::TaxiiError;
use crate::federation::{reason_label, receive_batch, Peers};
use crate::taxii::{taxii_body, view};
use crate::AppState;

/// A status detail: id, version, and success or the failure message with its reason label.
pub(crate) type Detail = (String, String, Result<(), (String, &'static str)>);

/// Reason label of an object refused for anything but its provenance (not valid STIX, an unknown
/// audience name, refused by the store).
pub(crate) const INVALID: &str = "invalid";

/// How the objects of an envelope get their provenance (federation).
#[derive(Clone)]
pub(crate) enum Provenancing {
    /// The server runs without a node identity: objects are stored as sent.
    Off,
    /// A local user's post: each object is signed as originated by this node and organisation `org`.
    /// An object that already names another origin node is kept as received when its signature
    /// verifies with `known`, and refused with the reason when it does not.
    Local {
        node: Arc<NodeIdentity>,
        org: String,
        known: Arc<KnownKeys>,
    },
    /// Objects received from a peer: each must verify; this node's own objects are skipped.
    Received {
        this_node: NodeId,
        known: Arc<KnownKeys>,
    },
}

/// One object of an envelope after validation.
pub(crate) enum Item {
    Invalid {
        id: String,
        version: String,
        message: String,
        /// [`INVALID`], or the label of the provenance failure (`federation::reason_label`).
        reason: &'static str,
    },
    /// An object whose provenance names an origin node that the keys it was checked with do not
    /// know (`VerifyError::UnknownNode`): kept whole, to be verified again once the peers are
    /// reloaded ([`prepare_batch`]); refused with the error if the node stays unknown.
    UnknownOrigin {
        id: String,
        version: String,
        error: VerifyError,
        object: Value,
    },
    /// An object this node originated, come back from a peer: nothing to store.
    Own {
        id: String,
        version: String,
    },
    Valid(Draft),
}

pub(crate) struct Draft {
    id: String,
    type_: String,
    spec_version: String,
    version: Option<Timestamp>,
    version_text: Option<String>,
    json: String,
    /// Its TLP signs; the custom marking definitions they name are resolved in [`write_items`].
    signs: TlpSigns,
    /// The TLP it defines when it is a marking definition (see [`Tlp::defined_by`]).
    defines: Option<Tlp>,
    addressed: AddressedTo,
    values: Vec<String>,
    /// The verified provenance of an object originated by another node; `None` for this node's own.
    origin: Option<Provenance>,
    /// A local post that names an audience: the object, signed only once its node has resolved
    /// the names to qualified identities ([`write_items`]); `json` is empty until then.
    unsigned: Option<Box<serde_json::Map<String, Value>>>,
}

fn payload_too_large(limit: usize) -> TaxiiError {
    TaxiiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Payload too large",
        format!(
            "the request body exceeds max_content_length ({limit} bytes); send smaller envelopes"
        ),
    )
}

/// The envelope as sent: each object kept as its raw JSON text until it is validated.
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    objects: Vec<&'a RawValue>,
}

/// Envelopes smaller than this are validated (and signed or verified) on one thread.
const PARALLEL_MIN: usize = 128;

/// Run `f` over `inputs` on up to all cores in order-preserving chunks (CPU work: call it off the
/// async threads). Small inputs stay on the calling thread.
pub(crate) fn par_map<T: Send, R: Send>(
    inputs: Vec<T>,
    f: impl Fn(T) -> R + Sync,
) -> Result<Vec<R>, TaxiiError> {
    let n = inputs.len();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(n / PARALLEL_MIN)
        .max(1);
    if threads == 1 {
        return Ok(inputs.into_iter().map(f).collect());
    }
    let chunk = n.div_ceil(threads);
    let mut rest = inputs;
    let mut chunks = Vec::with_capacity(threads);
    while rest.len() > chunk {
        let tail = rest.split_off(chunk);
        chunks.push(std::mem::replace(&mut rest, tail));
    }
    chunks.push(rest);
    let mut chunks = chunks.into_iter();
    let first = chunks.next().unwrap_or_default();
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .map(|c| scope.spawn(move || c.into_iter().map(f).collect::<Vec<_>>()))
            .collect();
        let mut out: Vec<R> = first.into_iter().map(f).collect();
        out.reserve(n - out.len());
        for h in handles {
            out.extend(
                h.join()
                    .map_err(|_| TaxiiError::internal("a validation thread panicked"))?,
            );
        }
        Ok(out)
    })
}

/// Parse, validate and sign or verify an envelope (CPU work, run off the async threads). The body is
/// scanned once for its shape; the objects are then handled in parallel chunks, in order.
pub(crate) fn prepare(body: &[u8], prov: &Provenancing) -> Result<Vec<Item>, TaxiiError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => TaxiiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unprocessable entity",
            format!(
                "the body must be a TAXII envelope, a JSON object with an \"objects\" list: {e}"
            ),
        ),
        _ => TaxiiError::bad_request(format!("the body is not valid JSON: {e}")),
    })?;
    par_map(envelope.objects, |raw| {
        let text = raw.get();
        // Numbers parsing would round are refused, read from the text as sent (kopa_stix).
        if !kopa_stix::numbers_exact(text) {
            return inexact(text);
        }
        match serde_json::from_str::<Value>(text) {
            Ok(v) => prepare_one(v, prov),
            Err(e) => Item::Invalid {
                id: String::new(),
                version: String::new(),
                message: format!("unreadable object: {e}"),
                reason: INVALID,
            },
        }
    })
}

/// The refusal of an object some of whose numbers would not be kept exactly: each is named by its
/// property path.
fn inexact(text: &str) -> Item {
    /// Only what names the object; other members are skipped unparsed (a number beyond a double's
    /// range stops a full parse, not this one).
    #[derive(serde::Deserialize)]
    struct Names {
        id: Option<String>,
        modified: Option<String>,
        created: Option<String>,
    }
    let names = serde_json::from_str::<Names>(text).ok();
    let field = |f: fn(&Names) -> Option<String>| names.as_ref().and_then(f);
    let id = field(|n| n.id.clone()).unwrap_or_default();
    let version = field(|n| n.modified.clone().or_else(|| n.created.clone())).unwrap_or_default();
    let shown = if id.is_empty() { "<unknown>" } else { &id };
    let message = kopa_stix::inexact_numbers(text, shown)
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    Item::Invalid {
        id,
        version,
        message,
        reason: INVALID,
    }
}

/// Objects to prepare: a TAXII envelope as posted, or objects already parsed (a pulled page).
pub(crate) enum Batch {
    Body(axum::body::Bytes),
    Objects(Vec<Value>),
}

/// Why a batch was not prepared or written: refused as a whole (not an envelope; a failed
/// preparation), or the store failed.
#[derive(Debug)]
pub(crate) enum Failure {
    Refused(TaxiiError),
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl From<TaxiiError> for Failure {
    fn from(e: TaxiiError) -> Self {
        Failure::Refused(e)
    }
}

impl From<Failure> for TaxiiError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Refused(e) => e,
            Failure::Store(e) => e.into(),
        }
    }
}

impl Provenancing {
    /// The same provenancing with other trusted keys.
    fn with_known(&self, keys: Arc<KnownKeys>) -> Provenancing {
        match self {
            Provenancing::Off => Provenancing::Off,
            Provenancing::Local { node, org, .. } => Provenancing::Local {
                node: node.clone(),
                org: org.clone(),
                known: keys,
            },
            Provenancing::Received { this_node, .. } => Provenancing::Received {
                this_node: this_node.clone(),
                known: keys,
            },
        }
    }
}

/// Validate and sign or verify `batch` off the async threads, with the keys in `prov` (the peers
/// cache's). Objects naming an origin node those keys do not know are verified again after the
/// peers are reloaded from the store — only then, and once per batch — so a peer declared a moment
/// ago is trusted at once.
pub(crate) async fn prepare_batch(
    peers: &Peers,
    batch: Batch,
    prov: Provenancing,
) -> Result<Vec<Item>, Failure> {
    let task_failed = |e| StoreError::Backend(format!("verification task failed: {e}"));
    let first = prov.clone();
    let items = tokio::task::spawn_blocking(move || match batch {
        Batch::Body(body) => prepare(&body, &first),
        Batch::Objects(objects) => par_map(objects, |v| prepare_one(v, &first)),
    })
    .await
    .map_err(task_failed)??;
    let mut unknown: Vec<&str> = items.iter().filter_map(Item::unknown_origin).collect();
    if unknown.is_empty() {
        return Ok(items);
    }
    unknown.sort_unstable();
    unknown.dedup();
    let Some(keys) = peers.reload_for(&unknown).await? else {
        return Ok(items);
    };
    let prov = prov.with_known(keys);
    let items = tokio::task::spawn_blocking(move || {
        par_map(items, |item| match item {
            Item::UnknownOrigin { object, .. } => prepare_one(object, &prov),
            done => done,
        })
    })
    .await
    .map_err(task_failed)??;
    Ok(items)
}

impl Item {
    /// The origin node named by an object whose origin was not known (see [`Item::UnknownOrigin`]).
    fn unknown_origin(&self) -> Option<&str> {
        match self {
            Item::UnknownOrigin {
                error: VerifyError::UnknownNode { node, .. },
                ..
            } => Some(node),
            _ => None,
        }
    }
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn map_str(m: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    m.get(key).and_then(Value::as_str).map(str::to_string)
}

/// The origin node an object names in its provenance extension, if any.
fn named_origin(raw: &serde_json::Map<String, Value>) -> Option<&str> {
    raw.get("extensions")?
        .get(PROVENANCE_EXTENSION_ID)?
        .get("origin_node")?
        .as_str()
}

/// Validate one object, then sign it (a local post) or verify it (received, or a local post of an
/// object originated elsewhere). The value is consumed by the parser (no copy of its properties).
pub(crate) fn prepare_one(v: Value, prov: &Provenancing) -> Item {
    let id = str_field(&v, "id").unwrap_or_default();
    let version = str_field(&v, "modified")
        .or_else(|| str_field(&v, "created"))
        .unwrap_or_default();
    let invalid = |message: String, reason: &'static str| Item::Invalid {
        id: id.clone(),
        version: version.clone(),
        message,
        reason,
    };
    let refused = |e: VerifyError, raw: serde_json::Map<String, Value>| match e {
        VerifyError::UnknownNode { .. } => Item::UnknownOrigin {
            id: id.clone(),
            version: version.clone(),
            error: e,
            object: Value::Object(raw),
        },
        e => Item::Invalid {
            id: id.clone(),
            version: version.clone(),
            message: e.to_string(),
            reason: reason_label(&e),
        },
    };
    let mut obj = match kopa_stix::parse_object_owned(v) {
        Ok(o) => o,
        Err(errors) => {
            let message = if errors.is_empty() {
                "invalid STIX object".to_string()
            } else {
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            return invalid(message, INVALID);
        }
    };
    let addressed = match addressed_to(&obj.raw) {
        Ok(a) => a,
        Err(e) => return invalid(format!("{}: {e}", obj.id), INVALID),
    };
    let verify_raw = |raw: serde_json::Map<String, Value>, known: &KnownKeys| {
        let value = Value::Object(raw);
        let checked = verify(&value, known);
        let Value::Object(raw) = value else {
            unreachable!("a JSON object stays one")
        };
        (raw, checked)
    };
    let origin = match prov {
        Provenancing::Off => None,
        Provenancing::Local { node, org, known } => {
            if named_origin(&obj.raw).is_some_and(|n| n != node.id().as_str()) {
                let (raw, checked) = verify_raw(std::mem::take(&mut obj.raw), known);
                match checked {
                    Ok(p) => {
                        obj.raw = raw;
                        Some(p)
                    }
                    Err(e) => return refused(e, raw),
                }
            } else if addressed.present {
                // Signed after its audience names are resolved (see `write_items`).
                None
            } else {
                match sign(
                    &Value::Object(std::mem::take(&mut obj.raw)),
                    node.key(),
                    org,
                ) {
                    Ok(Value::Object(raw)) => obj.raw = raw,
                    Ok(_) => return invalid(format!("{}: cannot be signed", obj.id), INVALID),
                    Err(e) => return invalid(e.to_string(), INVALID),
                }
                None
            }
        }
        Provenancing::Received { this_node, known } => {
            let (raw, checked) = verify_raw(std::mem::take(&mut obj.raw), known);
            match checked {
                Ok(p) if &p.origin_node == this_node => return Item::Own { id, version },
                Ok(p) => {
                    obj.raw = raw;
                    Some(p)
                }
                Err(e) => return refused(e, raw),
            }
        }
    };
    let pending =
        origin.is_none() && addressed.present && matches!(prov, Provenancing::Local { .. });
    let json = if pending {
        String::new()
    } else {
        match serde_json::to_string(&obj.raw) {
            Ok(j) => j,
            Err(e) => return invalid(format!("{}: cannot be serialised: {e}", obj.id), INVALID),
        }
    };
    let version_text = map_str(&obj.raw, "modified").or_else(|| map_str(&obj.raw, "created"));
    Item::Valid(Draft {
        version: obj.version(),
        version_text,
        signs: TlpSigns::of_object(&obj.raw),
        defines: (obj.type_ == "marking-definition")
            .then(|| Tlp::defined_by(&obj.raw))
            .flatten(),
        values: searchable_values(&obj.raw),
        addressed,
        json,
        unsigned: pending.then(|| Box::new(std::mem::take(&mut obj.raw))),
        id: obj.id,
        type_: obj.type_,
        spec_version: obj.spec_version,
        origin,
    })
}

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
pub(crate) struct Written {
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
pub(crate) async fn write_items(
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
        return Err(StoreError::Backend(format!(
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

/// `POST {api-root}/collections/{id}/objects/`: a user's objects are signed as originated here; a
/// peer's are received (verified, stored with their provenance, see [`crate::federation::receive`]).
pub async fn post_objects(
    State(state): State<AppState>,
    TaxiiCaller(caller): TaxiiCaller,
    Origin(origin): Origin,
    Path(cid): Path<String>,
    req: Request,
) -> Result<Response, TaxiiError> {
    let reader = caller.reader();
    let v = match view(&state, &reader, &cid).await {
        Ok(v) => v,
        Err(e) => {
            // A peer posting outside its policy does not see the collection: refused, counted.
            if let Caller::Peer(peer) = &caller {
                state.metrics().peer_post_refused(&peer.name);
                tracing::warn!(peer = %peer.name, collection = %cid, "peer post outside its export policy refused");
            }
            return Err(e);
        }
    };
    // The path may name the collection by its alias; the store keys objects by its id.
    let cid = v.collection.id.clone();
    let rights = Rights {
        can_read: v.can_read,
        can_write: v.can_write,
    };
    let actor = match (&caller, &reader) {
        (Caller::User(p), _) => Actor::Person(p),
        (Caller::Peer(_), Reader::Peer(audience)) => Actor::Peer(audience),
        (Caller::Peer(_), Reader::Person(_)) => {
            return Err(TaxiiError::internal("a peer read as a person"))
        }
    };
    if let Err(refusal) = decide(&actor, &Action::WriteObjects(rights)) {
        if let Caller::Peer(peer) = &caller {
            state.metrics().peer_post_refused(&peer.name);
        }
        return Err(TaxiiError::forbidden(format!(
            "collection {cid}: {refusal}"
        )));
    }
    let p = match caller {
        Caller::User(p) => p,
        Caller::Peer(peer) => return post_from_peer(state, peer, origin, cid, req).await,
    };
    let body = read_body(&state, req).await?;
    let request_timestamp = state.now();
    let prov = match state.node() {
        Some(node) => Provenancing::Local {
            node: node.clone(),
            org: p.org.0.clone(),
            known: state.peers().known_keys().await?,
        },
        None => Provenancing::Off,
    };
    let items = prepare_batch(state.peers(), Batch::Body(body), prov.clone()).await?;
    let status_id = uuid::Uuid::new_v4().to_string();
    let entry = NewAuditEntry {
        actor: p.user_name.clone(),
        action: "objects.add".into(),
        target: cid.clone(),
        origin: origin.clone(),
        detail: json!({"status": status_id, "total": items.len(), "success": 0, "failure": 0})
            .to_string(),
    };
    let written = write_items(
        state.store().as_ref(),
        &cid,
        items,
        Some(&p),
        None,
        state.config().default_tlp,
        &prov,
        Some(entry),
    )
    .await?;
    let (status_json, counts) = status_resource(
        &state,
        &status_id,
        request_timestamp,
        p.user.clone(),
        written.details,
    )
    .await;
    state
        .metrics()
        .objects_written(written.stored, counts.1 as u64);
    Ok(taxii_body(StatusCode::ACCEPTED, status_json))
}

/// A peer's POST (push, sightings home): received by the one receive step of the pull too
/// ([`receive_batch`]): every object must verify; this node's own are skipped.
async fn post_from_peer(
    state: AppState,
    peer: PeerCaller,
    origin: String,
    cid: String,
    req: Request,
) -> Result<Response, TaxiiError> {
    let Some(receiver) = state.receiver() else {
        return Err(TaxiiError::internal(
            "a peer was authenticated on a server without a node identity",
        ));
    };
    let body = read_body(&state, req).await?;
    if let Err(e) = peer.signed.check_body(&body) {
        tracing::info!(peer = %peer.name, reason = %e, "peer request refused");
        return Err(TaxiiError::unauthorized(e.to_string()));
    }
    let request_timestamp = state.now();
    let status_id = uuid::Uuid::new_v4().to_string();
    let entry = NewAuditEntry {
        actor: format!("peer:{}", peer.name),
        action: "objects.receive".into(),
        target: cid.clone(),
        origin,
        detail: json!({"status": status_id, "node": peer.node_id, "success": 0, "failure": 0})
            .to_string(),
    };
    let (report, details) = receive_batch(
        &receiver,
        &cid,
        Batch::Body(body),
        peer.node_id.as_str(),
        Some(entry),
    )
    .await?;
    crate::federation::log_rejections(&peer.name, &report);
    state.metrics().peer_received(&peer.name, &report);
    let (status_json, counts) = status_resource(
        &state,
        &status_id,
        request_timestamp,
        UserId(peer.node_id.to_string()),
        details,
    )
    .await;
    state
        .metrics()
        .objects_written(report.stored, counts.1 as u64);
    Ok(taxii_body(StatusCode::ACCEPTED, status_json))
}

/// The request body, refused early when it exceeds `max_content_length`.
pub(crate) async fn read_body(
    state: &AppState,
    req: Request,
) -> Result<axum::body::Bytes, TaxiiError> {
    let limit = state.config().max_content_length;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(payload_too_large(limit));
    }
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(req.into_body(), limit)
        .collect()
        .await
    {
        Ok(body) => Ok(body.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(payload_too_large(limit)),
        // A body that breaks off or is malformed (a bad chunk) is no oversized one.
        Err(e) => Err(TaxiiError::bad_request(format!(
            "the request body could not be read: {e}"
        ))),
    }
}

/// Build and keep the TAXII status resource `status_id` of a write; returns its JSON text and the
/// (success, failure) counts.
pub(crate) async fn status_resource(
    state: &AppState,
    status_id: &str,
    request_timestamp: Timestamp,
    owner: UserId,
    details: Vec<Detail>,
) -> (String, (usize, usize)) {
    let status_id = status_id.to_string();
    let mut successes = Vec::new();
    let mut failures = Vec::new();
    for (id, version, result) in details {
        match result {
            Ok(()) => successes.push(json!({"id": id, "version": version})),
            Err((message, _)) => {
                failures.push(json!({"id": id, "version": version, "message": message}))
            }
        }
    }
    let (success_count, failure_count) = (successes.len(), failures.len());
    let mut status = serde_json::Map::new();
    status.insert("id".into(), json!(status_id));
    status.insert("status".into(), json!("complete"));
    status.insert(
        "request_timestamp".into(),
        json!(request_timestamp.to_taxii()),
    );
    status.insert("total_count".into(), json!(success_count + failure_count));
    status.insert("success_count".into(), json!(success_count));
    if !successes.is_empty() {
        status.insert("successes".into(), Value::Array(successes));
    }
    status.insert("failure_count".into(), json!(failure_count));
    if !failures.is_empty() {
        status.insert("failures".into(), Value::Array(failures));
    }
    status.insert("pending_count".into(), json!(0));
    let status_json = Value::Object(status).to_string();
    if let Err(e) = state
        .store()
        .put_status(&StatusRecord {
            id: status_id.clone(),
            owner,
            request_timestamp,
            json: status_json.clone(),
        })
        .await
    {
        // The objects are committed: report the outcome even if the status could not be kept.
        tracing::error!(error = %e, status = %status_id, "could not store a TAXII status resource");
    }
    (status_json, (success_count, failure_count))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_shape_errors() {
        let cases: &[(&[u8], u16, &str)] = &[
            (b"{not json", 400, "not valid JSON"),
            (b"[1,2]", 422, "envelope"),
            (b"{\"objects\": 3}", 422, "envelope"),
            (b"{\"more\": false}", 422, "objects"),
        ];
        for (body, status, needle) in cases {
            let e = prepare(body, &Provenancing::Off).err().unwrap();
            assert_eq!(e.status.as_u16(), *status);
            assert!(e.description.contains(needle), "{}", e.description);
        }
        assert!(prepare(b"{\"objects\": []}", &Provenancing::Off)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn large_envelopes_keep_their_order() {
        // Above PARALLEL_MIN the objects are validated on several threads; outcomes stay in order.
        let objects: Vec<Value> = (0..1000)
            .map(|i| {
                if i % 7 == 0 {
                    json!({"type": "indicator", "id": format!("indicator--bad-{i}")})
                } else {
                    json!({"type": "ipv4-addr", "spec_version": "2.1",
                           "id": format!("ipv4-addr--00000000-0000-4000-8000-{i:012}"),
                           "value": format!("10.0.{}.{}", i / 256, i % 256)})
                }
            })
            .collect();
        let body = serde_json::to_vec(&json!({"objects": objects})).unwrap();
        let items = prepare(&body, &Provenancing::Off).unwrap();
        assert_eq!(items.len(), 1000);
        for (i, item) in items.iter().enumerate() {
            match item {
                Item::Invalid { id, .. } => {
                    assert_eq!(i % 7, 0, "object {i}");
                    assert_eq!(id, &format!("indicator--bad-{i}"));
                }
                Item::Valid(d) => {
                    assert_ne!(i % 7, 0, "object {i}");
                    assert_eq!(d.values, vec![format!("10.0.{}.{}", i / 256, i % 256)]);
                }
                Item::Own { .. } => panic!("object {i} taken for this node's own"),
                Item::UnknownOrigin { .. } => panic!("object {i} verified without provenancing"),
            }
        }
    }
}
