//! Preparing a batch: parse, validate with `kopa-stix`, and sign (a local post) or verify (an object
//! of another node) each object — CPU work, run off the async threads, in order-preserving parallel
//! chunks for large batches.

use std::sync::Arc;

use kopa_core::Tlp;
use kopa_core::{addressed_to, searchable_values, AddressedTo, TlpSigns};
use kopa_federation::{
    sign, verify, KnownKeys, NodeId, NodeIdentity, Provenance, VerifyError, PROVENANCE_EXTENSION_ID,
};
use kopa_stix::Timestamp;
use kopa_store::StoreError;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::peers::Peers;
use crate::receive::reason_label;
use crate::{Refusal, INVALID};

/// How the objects of an envelope get their provenance (federation).
#[derive(Clone)]
pub enum Provenancing {
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
pub enum Item {
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

pub struct Draft {
    pub(crate) id: String,
    pub(crate) type_: String,
    pub(crate) spec_version: String,
    pub(crate) version: Option<Timestamp>,
    pub(crate) version_text: Option<String>,
    pub(crate) json: String,
    /// Its TLP signs; the custom marking definitions they name are resolved in [`write_items`].
    pub(crate) signs: TlpSigns,
    /// The TLP it defines when it is a marking definition (see [`Tlp::defined_by`]).
    pub(crate) defines: Option<Tlp>,
    pub(crate) addressed: AddressedTo,
    pub(crate) values: Vec<String>,
    /// The verified provenance of an object originated by another node; `None` for this node's own.
    pub(crate) origin: Option<Provenance>,
    /// A local post that names an audience: the object, signed only once its node has resolved
    /// the names to qualified identities ([`write_items`]); `json` is empty until then.
    pub(crate) unsigned: Option<Box<serde_json::Map<String, Value>>>,
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
) -> Result<Vec<R>, Refusal> {
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
                    .map_err(|_| Refusal::Internal("a validation thread panicked".into()))?,
            );
        }
        Ok(out)
    })
}

/// Parse, validate and sign or verify an envelope (CPU work, run off the async threads). The body is
/// scanned once for its shape; the objects are then handled in parallel chunks, in order.
pub fn prepare(body: &[u8], prov: &Provenancing) -> Result<Vec<Item>, Refusal> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => Refusal::NotEnvelope(format!(
            "the body must be a TAXII envelope, a JSON object with an \"objects\" list: {e}"
        )),
        _ => Refusal::NotJson(format!("the body is not valid JSON: {e}")),
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

/// Objects to prepare: a TAXII envelope as posted (its body), or objects already parsed (a pulled
/// page, an imported file's batch).
pub enum Batch {
    Body(bytes::Bytes),
    Objects(Vec<Value>),
}

/// Why a batch was not prepared or written: refused as a whole (not an envelope; a failed
/// preparation), or the store failed.
#[derive(Debug)]
pub enum Failure {
    Refused(Refusal),
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl From<Refusal> for Failure {
    fn from(e: Refusal) -> Self {
        Failure::Refused(e)
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
pub async fn prepare_batch(
    peers: &Peers,
    batch: Batch,
    prov: Provenancing,
) -> Result<Vec<Item>, Failure> {
    let task_failed = |e: tokio::task::JoinError| {
        StoreError::backend_with(format!("verification task failed: {e}"), e)
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_shape_errors() {
        let cases: &[(&[u8], bool, &str)] = &[
            (b"{not json", false, "not valid JSON"),
            (b"[1,2]", true, "envelope"),
            (b"{\"objects\": 3}", true, "envelope"),
            (b"{\"more\": false}", true, "objects"),
        ];
        for (body, json, needle) in cases {
            let e = prepare(body, &Provenancing::Off).err().unwrap();
            assert_eq!(matches!(e, Refusal::NotEnvelope(_)), *json, "{e:?}");
            assert_eq!(matches!(e, Refusal::NotJson(_)), !*json, "{e:?}");
            assert!(e.to_string().contains(needle), "{e}");
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
