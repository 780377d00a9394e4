//! The TAXII 2.1 client one node uses to call a peer: list its collections, read a page of a
//! collection, post an envelope. Every request is authenticated as this node (`Kopa-Node`, signed
//! with the node key over the target, method, path and time) or, for a peer declared with a token,
//! with `Bearer <token>`. The token and the key never appear in errors or logs.

use std::time::Duration;

use kopa_core::Clock;
use kopa_federation::pull::{encode, objects_url, Envelope, PullCursor};
use kopa_federation::request_auth::{new_nonce, sign_request};
use kopa_federation::{Checkpoint, NodeId, NodeKey};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::Value;

use crate::SyncError;

/// TAXII 2.1 media type, for `Accept` and `Content-Type`.
use kopa_federation::pull::TAXII_MEDIA_TYPE as TAXII;
/// The API root every Kopa node serves.
pub const API_ROOT: &str = "kopa";
/// Longest error body kept in a message.
const BODY_EXCERPT: usize = 300;

/// How this node presents itself to one peer.
#[derive(Clone)]
pub enum PeerAuth {
    /// `Authorization: Kopa-Node …`, signed per request.
    Node,
    /// `Authorization: Bearer <token>`: the peer was declared with a token of one of its users.
    Bearer(String),
}

/// A collection as the peer lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCollection {
    pub id: String,
    pub alias: Option<String>,
    pub can_read: bool,
    pub can_write: bool,
}

/// One page read from a peer.
#[derive(Debug)]
pub struct RemotePage {
    pub envelope: Envelope,
    /// `X-TAXII-Date-Added-Last`: the resume point after this page.
    pub date_added_last: Option<String>,
    /// `X-Kopa-Remaining` when it was asked for and the peer answered it.
    pub remaining: Option<u64>,
}

/// A TAXII 2.1 status resource, as a server answers a POST (or a status request).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TaxiiStatus {
    pub id: String,
    /// `complete` or `pending`.
    pub status: String,
    pub success_count: u64,
    /// Each object the server refused, with its message.
    #[serde(default)]
    pub failures: Vec<StatusDetail>,
    /// Each object still being processed.
    #[serde(default)]
    pub pendings: Vec<StatusDetail>,
    #[serde(default)]
    pub pending_count: u64,
}

/// One object of a status resource's `failures` or `pendings`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StatusDetail {
    pub id: String,
    #[serde(default)]
    pub message: Option<String>,
}

/// How serialised objects are cut into TAXII envelopes for posting.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EnvelopeSplit {
    /// Each envelope's objects, as indexes into the list, in their order.
    pub envelopes: Vec<Vec<usize>>,
    /// Objects too large for any envelope under the byte limit: the server would answer 413, so
    /// they are not sent, and the caller reports them.
    pub too_large: Vec<usize>,
}

/// A client for one peer.
pub struct PeerClient<'a> {
    pub(crate) http: &'a reqwest::Client,
    /// The peer's base URL, without a trailing '/'.
    pub(crate) base: String,
    pub(crate) target: NodeId,
    pub(crate) key: &'a NodeKey,
    pub(crate) auth: PeerAuth,
    /// The node's clock: each request is signed with its time.
    pub(crate) clock: &'a dyn Clock,
}

/// The `/kopa/collections/<id>/objects/` path of a collection.
pub fn objects_path(collection: &str) -> String {
    format!("/{API_ROOT}/collections/{}/objects/", encode(collection))
}

impl PeerClient<'_> {
    /// The path as the peer's server sees it (the base URL may carry a path prefix).
    fn full_path(&self, path_and_query: &str) -> String {
        let prefix = self
            .base
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .unwrap_or("");
        format!("{prefix}{path_and_query}")
    }

    /// Signed over the body too, with a fresh nonce: a captured request cannot be replayed.
    fn authorization(&self, method: &str, path_and_query: &str, body: &[u8]) -> String {
        match &self.auth {
            PeerAuth::Bearer(t) => format!("Bearer {t}"),
            PeerAuth::Node => sign_request(
                self.key,
                &self.target,
                method,
                &self.full_path(path_and_query),
                self.clock.unix_seconds(),
                &new_nonce(),
                body,
            ),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<(HeaderMap, Vec<u8>), SyncError> {
        let url = format!("{}{}", self.base, path_and_query);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .header(ACCEPT, TAXII)
            .header(
                AUTHORIZATION,
                self.authorization(
                    method.as_str(),
                    path_and_query,
                    body.as_deref().unwrap_or_default(),
                ),
            );
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.header(CONTENT_TYPE, TAXII).body(b);
        }
        let what = format!("{method} {}{}", self.base, path_and_query);
        let resp = req.send().await.map_err(|e| SyncError::Http {
            what: what.clone(),
            message: describe(&e),
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|e| SyncError::Http {
            what: what.clone(),
            message: describe(&e),
        })?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let excerpt: String = text.chars().take(BODY_EXCERPT).collect();
            return Err(SyncError::Status {
                what,
                status: status.as_u16(),
                body: excerpt,
            });
        }
        Ok((headers, body.to_vec()))
    }

    /// The collections the peer shows this node.
    pub async fn collections(&self) -> Result<Vec<RemoteCollection>, SyncError> {
        let path = format!("/{API_ROOT}/collections/");
        let (_, body) = self.send(reqwest::Method::GET, &path, &[], None).await?;
        parse_collections(&body)
    }

    /// The peer's signed audit checkpoint (`None` while its audit log is empty).
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>, SyncError> {
        #[derive(Deserialize)]
        struct Answer {
            checkpoint: Option<Checkpoint>,
        }
        let (_, body) = self
            .send(reqwest::Method::GET, "/api/checkpoint", &[], None)
            .await?;
        serde_json::from_slice::<Answer>(&body)
            .map(|a| a.checkpoint)
            .map_err(|e| SyncError::Protocol(format!("the audit checkpoint answer: {e}")))
    }

    /// The peer's largest accepted request body (`max_content_length` of its API root).
    pub async fn max_content_length(&self) -> Result<usize, SyncError> {
        let path = format!("/{API_ROOT}/");
        let (_, body) = self.send(reqwest::Method::GET, &path, &[], None).await?;
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| SyncError::Protocol(format!("API root is not JSON: {e}")))?;
        v.get("max_content_length")
            .and_then(Value::as_u64)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            .ok_or_else(|| SyncError::Protocol("API root has no max_content_length".into()))
    }

    /// One page of a collection after `cursor`. With `count`, the peer is asked how many objects
    /// remain after the page (`X-Kopa-Remaining`).
    pub async fn page(
        &self,
        collection: &str,
        cursor: &PullCursor,
        limit: usize,
        count: bool,
    ) -> Result<RemotePage, SyncError> {
        let path = objects_url("", API_ROOT, collection, cursor, limit);
        let extra: &[(&str, &str)] = if count {
            &[("x-kopa-count-remaining", "1")]
        } else {
            &[]
        };
        let (headers, body) = self.send(reqwest::Method::GET, &path, extra, None).await?;
        let envelope = Envelope::parse(&body)
            .map_err(|e| SyncError::Protocol(format!("collection {collection}: {e}")))?;
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Ok(RemotePage {
            envelope,
            date_added_last: header("x-taxii-date-added-last"),
            remaining: header("x-kopa-remaining").and_then(|v| v.trim().parse().ok()),
        })
    }

    /// POST an envelope already written as JSON (`{"objects":[…]}`) to a collection of the peer.
    pub async fn post(
        &self,
        collection: &str,
        envelope: Vec<u8>,
    ) -> Result<TaxiiStatus, SyncError> {
        let path = objects_path(collection);
        let (_, body) = self
            .send(reqwest::Method::POST, &path, &[], Some(envelope))
            .await?;
        parse_status(&body)
    }
}

/// The error of a request without the URL (reqwest's messages name it; ours already does) and
/// with its cause ("connection refused"). Also used by `kopa match --node`.
pub fn describe(e: &reqwest::Error) -> String {
    let mut msg = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    let mut last = String::new();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    if !last.is_empty() {
        msg.push_str(": ");
        msg.push_str(&last);
    }
    msg
}

/// `{"collections": [...]}` (or `{}`) as the peer answers it.
pub fn parse_collections(body: &[u8]) -> Result<Vec<RemoteCollection>, SyncError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| SyncError::Protocol(format!("collections answer is not JSON: {e}")))?;
    let list = match v.get("collections") {
        None => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(SyncError::Protocol(
                "collections answer: 'collections' is not a list".into(),
            ))
        }
    };
    list.iter()
        .map(|c| {
            let id = c.get("id").and_then(Value::as_str).ok_or_else(|| {
                SyncError::Protocol("collections answer: a collection has no 'id'".into())
            })?;
            Ok(RemoteCollection {
                id: id.to_string(),
                alias: c.get("alias").and_then(Value::as_str).map(str::to_string),
                can_read: c.get("can_read").and_then(Value::as_bool).unwrap_or(false),
                can_write: c.get("can_write").and_then(Value::as_bool).unwrap_or(false),
            })
        })
        .collect()
}

/// A TAXII status resource as a server answers it.
pub fn parse_status(body: &[u8]) -> Result<TaxiiStatus, SyncError> {
    serde_json::from_slice(body)
        .map_err(|e| SyncError::Protocol(format!("the answer is not a TAXII status resource: {e}")))
}

/// Splits serialised objects into envelopes of at most `max_objects` objects and `max_bytes` bytes,
/// the envelope's own text (`{"objects":[…]}`) included. Used for every POST a node or the CLI makes.
pub fn split_envelopes(objects: &[String], max_objects: usize, max_bytes: u64) -> EnvelopeSplit {
    const FRAME: u64 = br#"{"objects":[]}"#.len() as u64;
    let max_objects = max_objects.max(1);
    let mut split = EnvelopeSplit::default();
    let mut cur: Vec<usize> = Vec::new();
    let mut size = FRAME;
    for (i, o) in objects.iter().enumerate() {
        let len = o.len() as u64;
        if FRAME.saturating_add(len) > max_bytes {
            split.too_large.push(i);
            continue;
        }
        let grows = len + u64::from(!cur.is_empty());
        if !cur.is_empty() && (size + grows > max_bytes || cur.len() == max_objects) {
            split.envelopes.push(std::mem::take(&mut cur));
            size = FRAME;
        }
        size += len + u64::from(!cur.is_empty());
        cur.push(i);
    }
    if !cur.is_empty() {
        split.envelopes.push(cur);
    }
    split
}

/// The body of one envelope: `{"objects":[…]}` with the objects of `batch`, in order.
pub fn envelope_body(objects: &[String], batch: &[usize]) -> Vec<u8> {
    let len: usize = batch.iter().map(|&i| objects[i].len() + 1).sum();
    let mut body = Vec::with_capacity(len + 16);
    body.extend_from_slice(br#"{"objects":["#);
    for (j, &i) in batch.iter().enumerate() {
        if j > 0 {
            body.push(b',');
        }
        body.extend_from_slice(objects[i].as_bytes());
    }
    body.extend_from_slice(b"]}");
    body
}

/// The HTTP client shared by every peer.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, SyncError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10).min(timeout))
        .timeout(timeout)
        .user_agent(concat!("kopa/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SyncError::Http {
            what: "HTTP client".into(),
            message: describe(&e),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_respect_size_and_count_and_keep_order() {
        let objs: Vec<String> = (0..5).map(|i| format!("{{\"n\":\"{i:02}\"}}")).collect(); // 10 bytes each
                                                                                           // The frame is 14 bytes; two objects and a comma make 35, three make 46: over 40.
        let split = split_envelopes(&objs, 1000, 40);
        assert_eq!(split.envelopes, vec![vec![0, 1], vec![2, 3], vec![4]]);
        assert!(split.too_large.is_empty());
        for batch in &split.envelopes {
            let body = envelope_body(&objs, batch);
            assert!(body.len() <= 40, "{}", String::from_utf8_lossy(&body));
            let v: Value = serde_json::from_slice(&body).unwrap();
            let ns: Vec<u64> = v["objects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["n"].as_str().unwrap().parse().unwrap())
                .collect();
            assert_eq!(ns, batch.iter().map(|&i| i as u64).collect::<Vec<_>>());
        }
        // Exactly at the limit still fits: 35 bytes for two objects.
        assert_eq!(split_envelopes(&objs, 1000, 35).envelopes[0], vec![0, 1]);
        let split = split_envelopes(&objs, 1000, 1 << 20);
        assert_eq!(split.envelopes, vec![vec![0, 1, 2, 3, 4]]);
        // An object larger than any envelope is set apart; the others still go, in order.
        let mut with_big = objs.clone();
        with_big.insert(2, "x".repeat(100));
        let split = split_envelopes(&with_big, 1000, 40);
        assert_eq!(split.too_large, vec![2]);
        assert_eq!(split.envelopes, vec![vec![0, 1], vec![3, 4], vec![5]]);
        // The object count limit.
        let many: Vec<String> = (0..2500).map(|_| "{}".to_string()).collect();
        let split = split_envelopes(&many, 1000, u64::MAX);
        assert_eq!(
            split.envelopes.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1000, 1000, 500]
        );
        assert_eq!(split_envelopes(&[], 10, 10), EnvelopeSplit::default());
    }

    #[test]
    fn answers_are_checked() {
        let cs = parse_collections(
            br#"{"collections":[{"id":"a","alias":"x","can_read":true,"can_write":false},{"id":"b"}]}"#,
        )
        .unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0].alias.as_deref(), Some("x"));
        assert!(cs[0].can_read && !cs[1].can_read && !cs[1].can_write);
        assert!(parse_collections(b"{}").unwrap().is_empty());
        for bad in [
            &b"nope"[..],
            br#"{"collections":{}}"#,
            br#"{"collections":[{}]}"#,
        ] {
            assert!(matches!(
                parse_collections(bad),
                Err(SyncError::Protocol(_))
            ));
        }
        let st = parse_status(
            br#"{"id":"s1","status":"complete","success_count":2,"failures":[{"id":"indicator--1","message":"tampered"}]}"#,
        )
        .unwrap();
        assert_eq!((st.id.as_str(), st.status.as_str()), ("s1", "complete"));
        assert_eq!(st.success_count, 2);
        assert_eq!(
            st.failures,
            vec![StatusDetail {
                id: "indicator--1".into(),
                message: Some("tampered".into())
            }]
        );
        assert!(st.pendings.is_empty() && st.pending_count == 0);
        let e = parse_status(br#"{"id":"s1","status":"complete"}"#).unwrap_err();
        assert!(e.to_string().contains("success_count"), "{e}");
        assert!(parse_status(b"{}").is_err());
    }
}
