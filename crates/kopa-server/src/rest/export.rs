//! `GET /api/export/{collection}`: a collection as one STIX 2.1 bundle, streamed.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use kopa_store::{ObjectFilter, StoreError, VersionMatch};

use crate::auth::ApiAuth;
use crate::error::ApiError;
use crate::AppState;

/// `GET /api/export/{collection}` (by id or alias): every version of every object the caller may
/// see in a collection, as one STIX 2.1 bundle, streamed page by page.
///
/// The first page is read before the response starts, so a failure there is a plain error
/// response. A failure after that ends the body with an error: the connection is cut before the
/// end of the chunked body and the bundle is never closed, so no client takes a truncated export
/// for a complete one.
pub(super) async fn export(
    State(state): State<AppState>,
    ApiAuth(p): ApiAuth,
    Path(cid): Path<String>,
) -> Result<Response, ApiError> {
    let who = p.reader();
    let view = match state.store().collection(&who, &cid).await {
        Ok(v) => v,
        Err(StoreError::NotFound(_)) => {
            return Err(ApiError::not_found(format!(
                "no collection {cid:?} that you may read"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    if !view.can_read {
        return Err(ApiError::forbidden(format!(
            "you may not read collection {cid}"
        )));
    }
    let page_size = state.config().max_page_size.min(5000);
    let header = format!(
        "{{\"type\":\"bundle\",\"id\":\"bundle--{}\",\"objects\":[",
        uuid::Uuid::new_v4()
    );
    // The path may name the collection by its alias; the store keys objects by its id.
    let pages = ExportPages {
        store: state.store().clone(),
        who,
        cid: view.collection.id,
        page_size,
    };
    let first = pages.page(None).await?;
    let stream = bundle_stream(header, first, move |after| {
        let pages = pages.clone();
        async move { pages.page(Some(after)).await }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/stix+json;version=2.1")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The pages of one export: every version the reader may see, in order.
#[derive(Clone)]
struct ExportPages {
    store: std::sync::Arc<dyn kopa_store::Store>,
    who: kopa_core::Reader,
    cid: String,
    page_size: usize,
}

impl ExportPages {
    async fn page(&self, after: Option<i64>) -> Result<kopa_store::Page, StoreError> {
        let filter = ObjectFilter {
            added_after: None,
            after_seq: after,
            limit: self.page_size,
            ids: Vec::new(),
            types: Vec::new(),
            versions: VersionMatch {
                all: true,
                ..Default::default()
            },
            spec_versions: Vec::new(),
        };
        let page = self.store.objects(&self.who, &self.cid, &filter).await;
        if let Err(e) = &page {
            tracing::error!(error = %e, collection = %self.cid, "export failed");
        }
        page
    }
}

/// A bundle's body: `header`, the objects of `first` and of each page `next(after)` gives while
/// the last said there is more, and the closing `]}`. A failed page ends the stream with an error
/// and without the closing: what was sent is not a bundle.
fn bundle_stream<F, Fut>(
    header: String,
    first: kopa_store::Page,
    next: F,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>>
where
    F: Fn(i64) -> Fut,
    Fut: std::future::Future<Output = Result<kopa_store::Page, StoreError>>,
{
    struct State<F> {
        next: F,
        header: Option<String>,
        page: Option<kopa_store::Page>,
        after: Option<i64>,
        emitted: bool,
        done: bool,
    }
    let state = State {
        next,
        header: Some(header),
        page: Some(first),
        after: None,
        emitted: false,
        done: false,
    };
    futures_util::stream::unfold(state, |mut c| async move {
        if c.done {
            return None;
        }
        let page = match c.page.take() {
            Some(p) => p,
            None => match (c.next)(c.after.unwrap_or_default()).await {
                Ok(p) => p,
                Err(_) => {
                    c.done = true;
                    return Some((Err(std::io::Error::other("export failed")), c));
                }
            },
        };
        let mut out =
            Vec::with_capacity(page.objects.iter().map(|o| o.json.len() + 1).sum::<usize>() + 64);
        if let Some(h) = c.header.take() {
            out.extend_from_slice(h.as_bytes());
        }
        for o in &page.objects {
            if c.emitted {
                out.push(b',');
            }
            c.emitted = true;
            out.extend_from_slice(o.json.as_bytes());
        }
        match page.objects.last() {
            Some(last) if page.more => c.after = Some(last.seq),
            _ => {
                out.extend_from_slice(b"]}");
                c.done = true;
            }
        }
        Some((Ok(Bytes::from(out)), c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use serde_json::Value;

    fn page(seqs: &[i64], more: bool) -> kopa_store::Page {
        let ts = kopa_stix::Timestamp::from_micros(0);
        kopa_store::Page {
            objects: seqs
                .iter()
                .map(|&seq| kopa_store::StoredObject {
                    seq,
                    id: format!("x-thing--{seq}"),
                    type_: "x-thing".into(),
                    spec_version: "2.1".into(),
                    version: ts,
                    date_added: ts,
                    json: format!("{{\"n\":{seq}}}"),
                    origin: None,
                })
                .collect(),
            more,
        }
    }

    /// The bundle's chunks until the stream ends, and whether it ended with an error.
    async fn drain(
        s: impl futures_util::Stream<Item = Result<Bytes, std::io::Error>>,
    ) -> (String, bool) {
        let mut s = std::pin::pin!(s);
        let mut text = String::new();
        while let Some(chunk) = s.next().await {
            match chunk {
                Ok(b) => text.push_str(std::str::from_utf8(&b).unwrap()),
                Err(_) => return (text, true),
            }
        }
        (text, false)
    }

    #[tokio::test]
    async fn an_export_that_fails_midway_ends_in_an_error_not_a_bundle() {
        // Three pages; the second read fails after the first page was sent.
        let (text, failed) = drain(bundle_stream(
            "[".into(),
            page(&[1], true),
            |after| async move {
                assert_eq!(after, 1);
                Err(StoreError::backend("disk gone"))
            },
        ))
        .await;
        assert!(failed, "the body must end with an error");
        assert_eq!(text, "[{\"n\":1}");
        assert!(serde_json::from_str::<Value>(&format!("{{\"o\":{text}")).is_err());

        // The same pages without a failure make the whole bundle.
        let (text, failed) = drain(bundle_stream(
            "{\"objects\":[".into(),
            page(&[1], true),
            |after| async move {
                Ok(match after {
                    1 => page(&[2, 3], true),
                    _ => page(&[4], false),
                })
            },
        ))
        .await;
        assert!(!failed);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["objects"].as_array().unwrap().len(), 4);
        // An empty collection is an empty bundle.
        let (text, _) = drain(bundle_stream(
            "{\"objects\":[".into(),
            page(&[], false),
            |_| async { Ok(page(&[], false)) },
        ))
        .await;
        assert_eq!(text, "{\"objects\":[]}");
    }
}
