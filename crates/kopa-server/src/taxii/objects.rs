//! A collection's contents: its objects, one object, that object's versions, the manifest, and
//! DELETE of an object. Every read goes through [`read_page`]: one page as the caller may see it,
//! with its `next` cursor.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use kopa_core::permission::{decide, Action, Actor, Producer, Rights};
use kopa_core::Reader;
use kopa_store::{CollectionView, Page};

use super::{taxii_body, view, TaxiiQuery};
use crate::auth::{Origin, TaxiiAuth, TaxiiCaller};
use crate::cursor::Binding;
use crate::error::TaxiiError;
use crate::filters::{self, Endpoint};
use crate::{AppState, STIX_MEDIA_TYPE};

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
    items: impl Iterator<Item = impl AsRef<[u8]>>,
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
        out.extend_from_slice(item.as_ref());
    }
    out.extend_from_slice(b"]}");
    out
}

fn envelope(page: &Page, next: Option<&str>) -> Response {
    // Built directly from the stored text, without copying each object into an intermediate String.
    if page.objects.is_empty() {
        return taxii_body(StatusCode::OK, "{}");
    }
    let out = listing(
        page,
        next,
        "objects",
        page.objects.iter().map(|o| o.json.as_bytes()),
    );
    let mut resp = taxii_body(StatusCode::OK, out);
    add_date_headers(&mut resp, page);
    resp
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

pub(super) async fn objects(
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

pub(super) async fn object(
    State(state): State<AppState>,
    TaxiiCaller(c): TaxiiCaller,
    Path((cid, oid)): Path<(String, String)>,
    TaxiiQuery(params): TaxiiQuery,
) -> Result<Response, TaxiiError> {
    let r = one_object(&state, &c.reader(), &cid, &oid, &params, Endpoint::Object).await?;
    Ok(envelope(&r.page, r.next.as_deref()))
}

pub(super) async fn versions(
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

pub(super) async fn manifest(
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

pub(super) async fn delete_object(
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
