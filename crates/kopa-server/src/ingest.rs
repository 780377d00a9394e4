//! The TAXII write path over HTTP: `POST …/objects/` with an envelope, by a user of this node or a
//! declared peer. The body is read within `max_content_length`; the objects go through the write
//! pipeline of `kopa-ingest` (validate, stewardship, sign or verify, one transaction, a report per
//! object); the report becomes the TAXII status resource.

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use kopa_core::audit::NewAuditEntry;
use kopa_core::permission::{decide, Action, Actor, Rights};
use kopa_core::{Reader, UserId};
use kopa_ingest::{
    prepare_batch, receive_batch, write_items, Batch, Detail, Failure, Provenancing, Refusal,
};
use kopa_stix::Timestamp;
use kopa_store::StatusRecord;
use serde_json::{json, Value};

use crate::auth::{Caller, Origin, PeerCaller, TaxiiCaller};
use crate::error::TaxiiError;
use crate::taxii::{taxii_body, view};
use crate::AppState;

fn payload_too_large(limit: usize) -> TaxiiError {
    TaxiiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Payload too large",
        format!(
            "the request body exceeds max_content_length ({limit} bytes); send smaller envelopes"
        ),
    )
}

impl From<Refusal> for TaxiiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NotJson(m) => TaxiiError::bad_request(m),
            Refusal::NotEnvelope(m) => {
                TaxiiError::new(StatusCode::UNPROCESSABLE_ENTITY, "Unprocessable entity", m)
            }
            Refusal::Internal(m) => TaxiiError::internal(m),
        }
    }
}

impl From<Failure> for TaxiiError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Refused(e) => e.into(),
            Failure::Store(e) => e.into(),
        }
    }
}

/// `POST {api-root}/collections/{id}/objects/`: a user's objects are signed as originated here; a
/// peer's are received (verified, stored with their provenance, see [`kopa_ingest::receive`]).
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
    kopa_ingest::log_rejections(&peer.name, &report);
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
