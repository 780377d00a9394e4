//! The TAXII 2.1 endpoints (`specs/taxii.md`): discovery, the API root, status, collections, objects,
//! one object, its versions, the manifest and DELETE.
//!
//! Reads build their bodies by concatenating the stored JSON text of each object: stored objects are
//! never parsed again on the way out.

use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use kopa_core::permission::{decide, Action, Actor, Producer, Rights};
use kopa_core::Reader;
use kopa_store::{CollectionView, Page, StoreError};
use serde_json::json;

use crate::auth::{Caller, Origin, TaxiiAuth, TaxiiCaller};
use crate::cursor::Binding;
use crate::error::TaxiiError;
use crate::filters::{self, Endpoint};
use crate::{ingest, AppState, STIX_MEDIA_TYPE, TAXII_MEDIA_TYPE};

/// The TAXII routes, under `/taxii2/` and the configured API root.
pub fn routes(state: &AppState) -> Router<AppState> {
    let root = format!("/{}", state.config().api_root);
    let coll = format!("{root}/collections/{{collection}}");
    Router::new()
        .route("/taxii2/", get(discovery))
        .route(&format!("{root}/"), get(api_root))
        .route(&format!("{root}/status/{{status}}/"), get(status))
        .route(&format!("{root}/collections/"), get(collections))
        .route(&format!("{coll}/"), get(collection))
        .route(&format!("{coll}/manifest/"), get(manifest))
        .route(
            &format!("{coll}/objects/"),
            get(objects).post(ingest::post_objects),
        )
        .route(
            &format!("{coll}/objects/{{object}}/"),
            get(object).delete(delete_object),
        )
        .route(
            &format!("{coll}/objects/{{object}}/versions/"),
            get(versions),
        )
        .route_layer(axum::middleware::from_fn(negotiate))
}

/// Media-type negotiation for every TAXII route: 406 when `Accept` admits no TAXII 2.1 type, 415 when
/// a POST body is not `application/taxii+json;version=2.1`.
async fn negotiate(req: Request, next: Next) -> Response {
    if let Some(accept) = req.headers().get(header::ACCEPT) {
        let ok = accept.to_str().map(accepts_taxii).unwrap_or(false);
        if !ok {
            return TaxiiError::new(
                StatusCode::NOT_ACCEPTABLE,
                "Not acceptable",
                format!("this endpoint only answers with {TAXII_MEDIA_TYPE}; set Accept to it"),
            )
            .into_response();
        }
    }
    if req.method() == Method::POST {
        let ok = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_taxii_content_type);
        if !ok {
            return TaxiiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported media type",
                format!("the request body must be sent as Content-Type: {TAXII_MEDIA_TYPE}"),
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// Split a media type into (lower-case type, [(param, value)]).
fn media_type(s: &str) -> (String, Vec<(String, String)>) {
    let mut parts = s.split(';');
    let mt = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_string(),
            ))
        })
        .collect();
    (mt, params)
}

fn version_ok(params: &[(String, String)]) -> bool {
    params
        .iter()
        .find(|(k, _)| k == "version")
        .is_none_or(|(_, v)| v == "2.1")
}

/// Whether an `Accept` header admits `application/taxii+json;version=2.1`.
pub fn accepts_taxii(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let (mt, params) = media_type(range);
        let refused = params
            .iter()
            .any(|(k, v)| k == "q" && v.parse::<f32>().is_ok_and(|q| q <= 0.0));
        !refused
            && match mt.as_str() {
                "*/*" | "application/*" => true,
                "application/taxii+json" => version_ok(&params),
                _ => false,
            }
    })
}

fn is_taxii_content_type(ct: &str) -> bool {
    let (mt, params) = media_type(ct);
    mt == "application/taxii+json" && version_ok(&params)
}

/// Query parameters as pairs, with TAXII errors for a malformed query string.
pub struct TaxiiQuery(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for TaxiiQuery {
    type Rejection = TaxiiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map(|q| TaxiiQuery(q.0))
            .map_err(|e| TaxiiError::bad_request(format!("malformed query string: {e}")))
    }
}

/// A `200` TAXII response with a JSON body.
pub fn taxii_body(status: StatusCode, body: impl Into<axum::body::Body>) -> Response {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(TAXII_MEDIA_TYPE),
    );
    resp
}

fn add_date_headers(resp: &mut Response, page: &Page) {
    let first = page.objects.iter().map(|o| o.date_added).min();
    let last = page.objects.iter().map(|o| o.date_added).max();
    for (name, ts) in [
        ("x-taxii-date-added-first", first),
        ("x-taxii-date-added-last", last),
    ] {
        if let Some(ts) = ts.and_then(|t| HeaderValue::from_str(&t.to_taxii()).ok()) {
            resp.headers_mut().insert(name, ts);
        }
    }
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// `{"more":…,"next":…,"<key>":[items…]}` or `{}` when there is nothing.
fn listing(
    page: &Page,
    next: Option<&str>,
    key: &str,
    items: impl Iterator<Item = String>,
) -> Vec<u8> {
    if page.objects.is_empty() {
        return b"{}".to_vec();
    }
    let mut out: Vec<u8> =
        Vec::with_capacity(page.objects.iter().map(|o| o.json.len() + 1).sum::<usize>() + 128);
    out.extend_from_slice(b"{\"more\":");
    out.extend_from_slice(if page.more { b"true" } else { b"false" });
    if let Some(next) = next {
        out.extend_from_slice(b",\"next\":\"");
        out.extend_from_slice(next.as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item.as_bytes());
    }
    out.extend_from_slice(b"]}");
    out
}

fn envelope(page: &Page, next: Option<&str>) -> Response {
    // Build directly from the stored text, without copying each object into an intermediate String.
    if page.objects.is_empty() {
        return taxii_body(StatusCode::OK, "{}");
    }
    let mut out: Vec<u8> =
        Vec::with_capacity(page.objects.iter().map(|o| o.json.len() + 1).sum::<usize>() + 128);
    out.extend_from_slice(b"{\"more\":");
    out.extend_from_slice(if page.more { b"true" } else { b"false" });
    if let Some(next) = next {
        out.extend_from_slice(b",\"next\":\"");
        out.extend_from_slice(next.as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b",\"objects\":[");
    for (i, o) in page.objects.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(o.json.as_bytes());
    }
    out.extend_from_slice(b"]}");
    let mut resp = taxii_body(StatusCode::OK, out);
    add_date_headers(&mut resp, page);
    resp
}

/// The collection as the caller sees it; 404 when it may neither read nor write it (or it does not
/// exist: the two are not told apart).
pub async fn view(state: &AppState, who: &Reader, id: &str) -> Result<CollectionView, TaxiiError> {
    match state.store().collection(who, id).await {
        Ok(v) => Ok(v),
        Err(StoreError::NotFound(_)) => Err(TaxiiError::not_found(format!(
            "no collection {id:?} that you may read or write"
        ))),
        Err(e) => Err(e.into()),
    }
}

fn readable(v: &CollectionView) -> Result<(), TaxiiError> {
    if v.can_read {
        Ok(())
    } else {
        Err(TaxiiError::forbidden(format!(
            "you may write to collection {} but not read it",
            v.collection.id
        )))
    }
}

fn api_root_url(state: &AppState, headers: &HeaderMap) -> String {
    let root = &state.config().api_root;
    match headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
    {
        Some(host) => {
            // Behind a TLS-terminating proxy, the proxy says which scheme the client used.
            let https = headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
            let scheme = if https { "https" } else { "http" };
            format!("{scheme}://{host}/{root}/")
        }
        None => format!("/{root}/"),
    }
}

async fn discovery(
    State(state): State<AppState>,
    _auth: TaxiiCaller,
    headers: HeaderMap,
) -> Response {
    let url = api_root_url(&state, &headers);
    let body = json!({
        "title": state.config().title,
        "description": "Kopa node: STIX 2.1 intelligence shared under TLP 2.0",
        "default": url,
        "api_roots": [url],
    });
    taxii_body(StatusCode::OK, body.to_string())
}

async fn api_root(State(state): State<AppState>, _auth: TaxiiCaller) -> Response {
    let body = json!({
        "title": state.config().title,
        "description": "Collections shared on this node",
        "versions": [TAXII_MEDIA_TYPE],
        "max_content_length": state.config().max_content_length,
    });
    taxii_body(StatusCode::OK, body.to_string())
}

async fn status(
    State(state): State<AppState>,
    TaxiiCaller(c): TaxiiCaller,
    Path(id): Path<String>,
) -> Result<Response, TaxiiError> {
    let not_found = || TaxiiError::not_found(format!("no status resource {id:?}"));
    let record = match state.store().status(&id).await {
        Ok(r) => r,
        Err(StoreError::NotFound(_)) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    // Readable by the poster's organisation only; a peer's by that peer only.
    let p = match c {
        Caller::User(p) => p,
        Caller::Peer(peer) if record.owner.0 == peer.node_id.as_str() => {
            return Ok(taxii_body(StatusCode::OK, record.json))
        }
        Caller::Peer(_) => return Err(not_found()),
    };
    if record.owner != p.user {
        let owner = match state.store().user_by_id(&record.owner).await {
            Ok(u) => u,
            Err(StoreError::NotFound(_)) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        };
        if owner.org != p.org {
            return Err(not_found());
        }
    }
    Ok(taxii_body(StatusCode::OK, record.json))
}

fn collection_json(v: &CollectionView) -> serde_json::Value {
    let c = &v.collection;
    let mut m = serde_json::Map::new();
    m.insert("id".into(), json!(c.id));
    m.insert("title".into(), json!(c.title));
    if let Some(d) = &c.description {
        m.insert("description".into(), json!(d));
    }
    if let Some(a) = &c.alias {
        m.insert("alias".into(), json!(a));
    }
    m.insert("can_read".into(), json!(v.can_read));
    m.insert("can_write".into(), json!(v.can_write));
    m.insert("media_types".into(), json!([STIX_MEDIA_TYPE]));
    serde_json::Value::Object(m)
}

async fn collections(
    State(state): State<AppState>,
    TaxiiCaller(c): TaxiiCaller,
) -> Result<Response, TaxiiError> {
    let views = state.store().collections(&c.reader()).await?;
    let body = if views.is_empty() {
        json!({})
    } else {
        json!({ "collections": views.iter().map(collection_json).collect::<Vec<_>>() })
    };
    Ok(taxii_body(StatusCode::OK, body.to_string()))
}

async fn collection(
    State(state): State<AppState>,
    TaxiiCaller(c): TaxiiCaller,
    Path(id): Path<String>,
) -> Result<Response, TaxiiError> {
    let v = view(&state, &c.reader(), &id).await?;
    Ok(taxii_body(StatusCode::OK, collection_json(&v).to_string()))
}

async fn objects(
    State(state): State<AppState>,
    TaxiiCaller(c): TaxiiCaller,
    Path(cid): Path<String>,
    TaxiiQuery(params): TaxiiQuery,
    headers: HeaderMap,
) -> Result<Response, TaxiiError> {
    let who = c.reader();
    let Read {
        page,
        q,
        next,
        collection,
    } = read_page(&state, &who, &cid, None, &params, Endpoint::Objects).await?;
    let mut resp = envelope(&page, next.as_deref());
    let wanted = headers
        .get(COUNT_REMAINING)
        .is_some_and(|v| v.as_bytes().trim_ascii() == b"1");
    if wanted {
        // What the reader would still get after this page: how far behind a puller is.
        let remaining = match page.objects.last() {
            Some(last) if page.more => {
                let mut rest = q.filter.clone();
                rest.after_seq = Some(last.seq);
                state
                    .store()
                    .count_objects(&who, &collection, &rest)
                    .await?
            }
            _ => 0,
        };
        resp.headers_mut()
            .insert(REMAINING, HeaderValue::from(remaining));
    }
    Ok(resp)
}

/// Request header: `1` asks for [`REMAINING`] on a TAXII objects page (used by peers for lag).
pub const COUNT_REMAINING: &str = "x-kopa-count-remaining";
/// Response header: how many objects the reader would still get after this page, same filters.
pub const REMAINING: &str = "x-kopa-remaining";

/// One page of a read, the parsed request, and the `next` cursor when more follows.
struct Read {
    page: Page,
    q: filters::Query,
    next: Option<String>,
    /// The collection's id (the path may have named it by its alias).
    collection: String,
}

/// One page of a collection read (objects, manifest; one object's versions when `oid` is given)
/// as `who` may see it: the collection must be readable, the filters are those of `endpoint`.
/// Cursors are bound to `who` and the collection's id.
async fn read_page(
    state: &AppState,
    who: &Reader,
    cid: &str,
    oid: Option<&str>,
    params: &[(String, String)],
    endpoint: Endpoint,
) -> Result<Read, TaxiiError> {
    let v = view(state, who, cid).await?;
    readable(&v)?;
    // The path may name the collection by its alias; cursors and the store use its id.
    let cid = v.collection.id.as_str();
    let cfg = state.config();
    let path = match oid {
        Some(oid) => format!("{cid}/{oid}"),
        None => cid.to_string(),
    };
    let key = state.cursor_key().await?;
    let mut q = filters::parse(
        params,
        endpoint,
        filters::Scope {
            binding: Binding::new(who, cid),
            path: &path,
            key,
        },
        cfg.default_page_size,
        cfg.max_page_size,
    )?;
    if let Some(oid) = oid {
        q.filter.ids = vec![oid.to_string()];
    }
    let page = state.store().objects(who, cid, &q.filter).await?;
    let next = match page.objects.last() {
        Some(last) if page.more => Some(q.next_cursor(key, last.seq)),
        _ => None,
    };
    Ok(Read {
        page,
        q,
        next,
        collection: cid.to_string(),
    })
}

/// A page of one object's versions, for the object and versions endpoints: 404 when the reader
/// may see none of it (unless the request continues a listing).
async fn one_object(
    state: &AppState,
    who: &Reader,
    cid: &str,
    oid: &str,
    params: &[(String, String)],
    endpoint: Endpoint,
) -> Result<Read, TaxiiError> {
    let read = read_page(state, who, cid, Some(oid), params, endpoint).await?;
    if read.page.objects.is_empty() && !read.q.continued {
        return Err(TaxiiError::not_found(format!(
            "no object {oid:?} in collection {cid} that you may see"
        )));
    }
    Ok(read)
}

async fn object(
    State(state): State<AppState>,
    TaxiiCaller(c): TaxiiCaller,
    Path((cid, oid)): Path<(String, String)>,
    TaxiiQuery(params): TaxiiQuery,
) -> Result<Response, TaxiiError> {
    let r = one_object(&state, &c.reader(), &cid, &oid, &params, Endpoint::Object).await?;
    Ok(envelope(&r.page, r.next.as_deref()))
}

async fn versions(
    State(state): State<AppState>,
    TaxiiCaller(c): TaxiiCaller,
    Path((cid, oid)): Path<(String, String)>,
    TaxiiQuery(params): TaxiiQuery,
) -> Result<Response, TaxiiError> {
    let r = one_object(&state, &c.reader(), &cid, &oid, &params, Endpoint::Versions).await?;
    let body = listing(
        &r.page,
        r.next.as_deref(),
        "versions",
        r.page
            .objects
            .iter()
            .map(|o| json_str(&o.version.to_taxii())),
    );
    let mut resp = taxii_body(StatusCode::OK, body);
    add_date_headers(&mut resp, &r.page);
    Ok(resp)
}

async fn manifest(
    State(state): State<AppState>,
    TaxiiCaller(c): TaxiiCaller,
    Path(cid): Path<String>,
    TaxiiQuery(params): TaxiiQuery,
) -> Result<Response, TaxiiError> {
    let Read { page, next, .. } =
        read_page(&state, &c.reader(), &cid, None, &params, Endpoint::Manifest).await?;
    let body = listing(
        &page,
        next.as_deref(),
        "objects",
        page.objects.iter().map(|o| {
            format!(
                "{{\"id\":{},\"date_added\":\"{}\",\"version\":\"{}\",\"media_type\":\"{}\"}}",
                json_str(&o.id),
                o.date_added.to_taxii(),
                o.version.to_taxii(),
                STIX_MEDIA_TYPE
            )
        }),
    );
    let mut resp = taxii_body(StatusCode::OK, body);
    add_date_headers(&mut resp, &page);
    Ok(resp)
}

async fn delete_object(
    State(state): State<AppState>,
    TaxiiAuth(p): TaxiiAuth,
    Origin(origin): Origin,
    Path((cid, oid)): Path<(String, String)>,
    TaxiiQuery(params): TaxiiQuery,
) -> Result<Response, TaxiiError> {
    let v = view(&state, &p.reader(), &cid).await?;
    let cid = v.collection.id.clone();
    let rights = Rights {
        can_read: v.can_read,
        can_write: v.can_write,
    };
    // The rights and the role are checked here once (the refusal needs no object); the ownership
    // of each version is checked by the same rule inside the store's delete transaction.
    let anyone = Producer {
        org: p.org.clone(),
        node: None,
    };
    decide(
        &Actor::Person(&p),
        &Action::DeleteObject {
            rights,
            owner: &anyone,
            author: &p.user,
        },
    )
    .map_err(|r| TaxiiError::forbidden(format!("collection {cid}: {r}")))?;
    let cfg = state.config();
    let path = format!("{cid}/{oid}");
    let q = filters::parse(
        &params,
        Endpoint::Delete,
        filters::Scope {
            binding: Binding::new(&p.reader(), &cid),
            path: &path,
            key: state.cursor_key().await?,
        },
        cfg.default_page_size,
        cfg.max_page_size,
    )?;
    // Audited in the delete's own transaction.
    let entry = kopa_core::audit::NewAuditEntry {
        actor: p.user_name.clone(),
        action: "object.delete".into(),
        target: format!("{cid}/{oid}"),
        origin,
        detail: "{}".into(),
    };
    let n = state
        .store()
        .delete_object_audited(
            &p,
            rights,
            &cid,
            &oid,
            &q.filter.versions,
            &q.filter.spec_versions,
            Some(entry),
        )
        .await?;
    if n == 0 {
        return Err(TaxiiError::not_found(format!(
            "no object {oid:?} in collection {cid} that you may see"
        )));
    }
    let mut resp = taxii_body(StatusCode::OK, axum::body::Body::empty());
    resp.headers_mut().remove(header::CONTENT_TYPE);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        for ok in [
            "application/taxii+json;version=2.1",
            "application/taxii+json",
            "application/taxii+json; version=2.1",
            "*/*",
            "application/*",
            "text/html, application/taxii+json;version=2.1;q=0.9",
        ] {
            assert!(accepts_taxii(ok), "{ok}");
        }
        for bad in [
            "application/json",
            "application/taxii+json;version=2.0",
            "text/html",
            "application/stix+json;version=2.1",
            "application/taxii+json;q=0",
        ] {
            assert!(!accepts_taxii(bad), "{bad}");
        }
        assert!(is_taxii_content_type("application/taxii+json;version=2.1"));
        assert!(is_taxii_content_type("application/taxii+json"));
        assert!(!is_taxii_content_type("application/json"));
        assert!(!is_taxii_content_type("application/taxii+json;version=2.0"));
    }
}
