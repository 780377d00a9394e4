//! The TAXII write path: `POST …/objects/` with an envelope.
//!
//! The body is parsed once; each object is validated by `kopa-stix`, stamped with its stewardship
//! (owner organisation, author, TLP label, named organisations and recipients) and serialised once.
//! The valid objects of an envelope are written in **one** `put_objects` call (one transaction); each
//! invalid one is listed in the status `failures` with its reason. Nothing is half-written.

use std::collections::HashMap;

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use kopa_core::{
    addressed_to, searchable_values, AddressedTo, OrgId, Principal, Stewardship, Tlp, UserId,
};
use kopa_stix::Timestamp;
use kopa_store::{NewObject, PutOutcome, StatusRecord, StoreError};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::auth::{Origin, TaxiiAuth};
use crate::error::TaxiiError;
use crate::taxii::{taxii_body, view};
use crate::AppState;

/// A status detail: id, version, and success or the failure message.
type Detail = (String, String, Result<(), String>);

/// One object of an envelope after validation.
enum Item {
    Invalid {
        id: String,
        version: String,
        message: String,
    },
    Valid(Draft),
}

struct Draft {
    id: String,
    type_: String,
    spec_version: String,
    version: Option<Timestamp>,
    version_text: Option<String>,
    json: String,
    tlp: Option<Tlp>,
    addressed: AddressedTo,
    values: Vec<String>,
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

/// Envelopes smaller than this are validated on one thread.
const PARALLEL_MIN: usize = 256;

/// Parse and validate an envelope (CPU work, run off the async threads). The body is scanned once
/// for its shape; the objects are then parsed and validated in parallel chunks, in order.
fn prepare(body: &[u8]) -> Result<Vec<Item>, TaxiiError> {
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
    let raws = envelope.objects;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(raws.len() / PARALLEL_MIN)
        .max(1);
    if threads == 1 {
        return Ok(raws.iter().map(|r| prepare_raw(r)).collect());
    }
    let chunk = raws.len().div_ceil(threads);
    let mut chunks = raws.chunks(chunk);
    let first = chunks.next().unwrap_or_default();
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .map(|c| scope.spawn(move || c.iter().map(|r| prepare_raw(r)).collect::<Vec<_>>()))
            .collect();
        let mut items: Vec<Item> = first.iter().map(|r| prepare_raw(r)).collect();
        items.reserve(raws.len() - items.len());
        for h in handles {
            items.extend(
                h.join()
                    .map_err(|_| TaxiiError::internal("a validation thread panicked"))?,
            );
        }
        Ok(items)
    })
}

fn prepare_raw(raw: &RawValue) -> Item {
    match serde_json::from_str::<Value>(raw.get()) {
        Ok(v) => prepare_one(v, raw.get()),
        Err(e) => Item::Invalid {
            id: String::new(),
            version: String::new(),
            message: format!("unreadable object: {e}"),
        },
    }
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn map_str(m: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    m.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Validate one object. The value is consumed by the parser (no copy of its properties); on the
/// (rare) error paths the id and version for the status are read again from `text`, the object's
/// JSON as sent.
fn prepare_one(v: Value, text: &str) -> Item {
    let invalid = |message: String| {
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        Item::Invalid {
            id: str_field(&v, "id").unwrap_or_default(),
            version: str_field(&v, "modified")
                .or_else(|| str_field(&v, "created"))
                .unwrap_or_default(),
            message,
        }
    };
    let obj = match kopa_stix::parse_object_owned(v) {
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
            return invalid(message);
        }
    };
    let addressed = match addressed_to(&obj.raw) {
        Ok(a) => a,
        Err(e) => return invalid(format!("{}: {e}", obj.id)),
    };
    let json = match serde_json::to_string(&obj.raw) {
        Ok(j) => j,
        Err(e) => return invalid(format!("{}: cannot be serialised: {e}", obj.id)),
    };
    let version_text = map_str(&obj.raw, "modified").or_else(|| map_str(&obj.raw, "created"));
    Item::Valid(Draft {
        version: obj.version(),
        version_text,
        tlp: Tlp::of_object(&obj.raw),
        values: searchable_values(&obj.raw),
        addressed,
        json,
        id: obj.id,
        type_: obj.type_,
        spec_version: obj.spec_version,
    })
}

/// Resolve the organisation and user names an envelope addresses, each once.
async fn resolve_names(
    state: &AppState,
    items: &[Item],
) -> Result<
    (
        HashMap<String, Option<OrgId>>,
        HashMap<String, Option<UserId>>,
    ),
    TaxiiError,
> {
    let mut orgs: HashMap<String, Option<OrgId>> = HashMap::new();
    let mut users: HashMap<String, Option<UserId>> = HashMap::new();
    for item in items {
        let Item::Valid(d) = item else { continue };
        for name in &d.addressed.organisations {
            if !orgs.contains_key(name) {
                let id = match state.store().org_by_name(name).await {
                    Ok(o) => Some(o.id),
                    Err(StoreError::NotFound(_)) => None,
                    Err(e) => return Err(e.into()),
                };
                orgs.insert(name.clone(), id);
            }
        }
        for name in &d.addressed.recipients {
            if !users.contains_key(name) {
                let id = match state.store().user_by_name(name).await {
                    Ok(u) => Some(u.id),
                    Err(StoreError::NotFound(_)) => None,
                    Err(e) => return Err(e.into()),
                };
                users.insert(name.clone(), id);
            }
        }
    }
    Ok((orgs, users))
}

/// `POST {api-root}/collections/{id}/objects/`.
pub async fn post_objects(
    State(state): State<AppState>,
    TaxiiAuth(p): TaxiiAuth,
    Origin(origin): Origin,
    Path(cid): Path<String>,
    req: Request,
) -> Result<Response, TaxiiError> {
    let v = view(&state, &p, &cid).await?;
    if !v.can_write {
        return Err(TaxiiError::forbidden(format!(
            "you may read collection {cid} but not write to it"
        )));
    }
    if !p.role.writes_intelligence() {
        return Err(TaxiiError::forbidden(
            "your role (reader) may not add objects; an analyst or administrator can",
        ));
    }
    let limit = state.config().max_content_length;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(payload_too_large(limit));
    }
    let body = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| payload_too_large(limit))?;
    let request_timestamp = Timestamp::now();
    let items = tokio::task::spawn_blocking(move || prepare(&body))
        .await
        .map_err(TaxiiError::internal)??;

    let (orgs, users) = resolve_names(&state, &items).await?;
    let default_tlp = state.config().default_tlp;

    // Build the batch; remember where each stored object's outcome goes.
    let mut details: Vec<Option<Detail>> = Vec::with_capacity(items.len());
    let mut batch: Vec<NewObject> = Vec::new();
    let mut batch_pos: Vec<(usize, Option<String>)> = Vec::new();
    for item in items {
        match item {
            Item::Invalid {
                id,
                version,
                message,
            } => details.push(Some((id, version, Err(message)))),
            Item::Valid(d) => match stewardship(&p, &d, default_tlp, &orgs, &users) {
                Err(message) => details.push(Some((
                    d.id,
                    d.version_text.unwrap_or_default(),
                    Err(message),
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
                        origin: None,
                        via: None,
                    });
                }
            },
        }
    }
    let ids: Vec<String> = batch.iter().map(|o| o.id.clone()).collect();
    let outcomes = if batch.is_empty() {
        Vec::new()
    } else {
        state.store().put_objects(&cid, batch).await?
    };
    if outcomes.len() != ids.len() {
        return Err(TaxiiError::internal(format!(
            "store returned {} outcomes for {} objects",
            outcomes.len(),
            ids.len()
        )));
    }
    let mut stored = 0u64;
    for (((pos, version_text), id), outcome) in batch_pos.into_iter().zip(ids).zip(outcomes) {
        let (result, version) = match outcome {
            PutOutcome::Stored { version } => {
                stored += 1;
                (Ok(()), version_text.unwrap_or_else(|| version.to_taxii()))
            }
            PutOutcome::Duplicate { version } => {
                (Ok(()), version_text.unwrap_or_else(|| version.to_taxii()))
            }
            PutOutcome::Failed { message } => (Err(message), version_text.unwrap_or_default()),
        };
        details[pos] = Some((id, version, result));
    }

    let status_id = uuid::Uuid::new_v4().to_string();
    let mut successes = Vec::new();
    let mut failures = Vec::new();
    for (id, version, result) in details.into_iter().flatten() {
        match result {
            Ok(()) => successes.push(json!({"id": id, "version": version})),
            Err(message) => {
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

    state
        .metrics()
        .objects_written(stored, failure_count as u64);
    if let Err(e) = state
        .store()
        .put_status(&StatusRecord {
            id: status_id.clone(),
            owner: p.user.clone(),
            request_timestamp,
            json: status_json.clone(),
        })
        .await
    {
        // The objects are committed: report the outcome even if the status could not be kept.
        tracing::error!(error = %e, status = %status_id, "could not store a TAXII status resource");
    }
    crate::rest::audit(
        &state,
        &p,
        &origin,
        "objects.add",
        &cid,
        json!({
            "status": status_id,
            "total": success_count + failure_count,
            "stored": stored,
            "success": success_count,
            "failure": failure_count,
        }),
    )
    .await;
    Ok(taxii_body(StatusCode::ACCEPTED, status_json))
}

/// The stewardship of one object written by `p`, or why it cannot be stored.
fn stewardship(
    p: &Principal,
    d: &Draft,
    default_tlp: Tlp,
    orgs: &HashMap<String, Option<OrgId>>,
    users: &HashMap<String, Option<UserId>>,
) -> Result<Stewardship, String> {
    let ext = kopa_core::AUDIENCE_EXTENSION_ID;
    let mut org_ids = Vec::new();
    for name in &d.addressed.organisations {
        match orgs.get(name) {
            Some(Some(id)) => {
                if !org_ids.contains(id) {
                    org_ids.push(id.clone());
                }
            }
            _ => {
                return Err(format!(
                "{}: extensions.'{ext}'.organisations: no organisation named {name:?} on this node",
                d.id
            ))
            }
        }
    }
    let mut user_ids = Vec::new();
    for name in &d.addressed.recipients {
        match users.get(name) {
            Some(Some(id)) => {
                if !user_ids.contains(id) {
                    user_ids.push(id.clone());
                }
            }
            _ => {
                return Err(format!(
                    "{}: extensions.'{ext}'.recipients: no user named {name:?} on this node",
                    d.id
                ))
            }
        }
    }
    Ok(Stewardship {
        owner_org: p.org.clone(),
        author: p.user.clone(),
        tlp: d.tlp.unwrap_or(default_tlp),
        orgs: org_ids,
        users: user_ids,
        defaulted: d.tlp.is_none(),
    })
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
            let e = prepare(body).err().unwrap();
            assert_eq!(e.status.as_u16(), *status);
            assert!(e.description.contains(needle), "{}", e.description);
        }
        assert!(prepare(b"{\"objects\": []}").unwrap().is_empty());
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
        let items = prepare(&body).unwrap();
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
            }
        }
    }
}
