//! A small TAXII 2.1 client for `kopa match --node`: find a node's API root, read a collection's
//! indicators page by page (`match[type]=indicator`, following `next`), and post objects (sightings)
//! back in envelopes, checking the status resource the node answers with.
//!
//! Every failure names the URL it happened at. The token is sent as `Authorization: Bearer` (marked
//! sensitive) and never appears in a message.

use anyhow::{anyhow, bail, Context};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use std::time::Duration;

/// The TAXII 2.1 media type, for `Accept` and for POST bodies.
pub const TAXII_MEDIA_TYPE: &str = "application/taxii+json;version=2.1";

/// The most objects put in one envelope when posting.
const MAX_ENVELOPE_OBJECTS: usize = 1000;
/// The largest envelope when the API root names no `max_content_length`.
const DEFAULT_MAX_CONTENT_LENGTH: u64 = 10 * 1024 * 1024;
/// How long a status that stays `pending` is polled before its objects are reported as not confirmed.
const PENDING_WAIT: Duration = Duration::from_secs(30);

/// A blocking TAXII 2.1 client (its own single-threaded runtime under a synchronous API).
pub struct TaxiiClient {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

/// A collection on a TAXII server, as found through its API root.
#[derive(Debug, Clone)]
pub struct Collection {
    /// The API root URL (ends with `/`).
    pub api_root: Url,
    /// The collection URL, `API-ROOT/collections/ID/`.
    pub url: Url,
    /// The API root's `max_content_length`, the largest request body it accepts.
    pub max_content_length: u64,
    /// Whether the token may post to the collection (the collection resource's `can_write`).
    pub can_write: bool,
}

/// What posting objects found.
#[derive(Debug, Default)]
pub struct PostOutcome {
    /// Envelopes posted (each answered with a status).
    pub envelopes: u64,
    /// Objects the node accepted.
    pub accepted: u64,
    /// Objects refused or not confirmed: (object id, reason).
    pub failures: Vec<(String, String)>,
    /// Why posting stopped early, if it did.
    pub aborted: Option<String>,
    /// Objects not sent, or sent without an answer, because posting stopped early.
    pub not_sent: u64,
}

#[derive(Deserialize)]
struct PageHead {
    #[serde(default)]
    more: bool,
    next: Option<String>,
}

#[derive(Deserialize)]
struct StatusResource {
    id: String,
    status: String,
    #[serde(default)]
    success_count: u64,
    #[serde(default)]
    failures: Vec<StatusDetail>,
    #[serde(default)]
    pendings: Vec<StatusDetail>,
    #[serde(default)]
    pending_count: u64,
}

#[derive(Deserialize)]
struct StatusDetail {
    id: String,
    message: Option<String>,
}

/// The description of a TAXII error resource (or the start of whatever the body was).
fn error_detail(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct TaxiiErr {
        title: Option<String>,
        description: Option<String>,
    }
    match serde_json::from_slice::<TaxiiErr>(body) {
        Ok(TaxiiErr {
            description: Some(d),
            ..
        }) => format!(": {d}"),
        Ok(TaxiiErr { title: Some(t), .. }) => format!(": {t}"),
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                String::new()
            } else {
                let cut: String = text.chars().take(200).collect();
                format!(": {cut}")
            }
        }
    }
}

/// The message for a refused request: the status, what it usually means, and the server's words.
fn http_error(url: &Url, status: StatusCode, body: &[u8]) -> anyhow::Error {
    let detail = error_detail(body);
    let meaning = match status {
        StatusCode::UNAUTHORIZED => " (the node did not accept the token)",
        StatusCode::FORBIDDEN => " (the token's user may not do this)",
        StatusCode::NOT_FOUND => {
            " (no such API root or collection, or none this token may read or write)"
        }
        StatusCode::PAYLOAD_TOO_LARGE => " (the envelope is larger than the node accepts)",
        _ => "",
    };
    anyhow!("{url}: HTTP {status}{meaning}{detail}")
}

/// A transport error with its causes ("connection refused"), without repeating the URL.
fn transport_error(url: &Url, e: reqwest::Error) -> anyhow::Error {
    let mut msg = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let e = e.without_url();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    anyhow!("cannot reach {url}: {msg}")
}

/// `base` with `segments` appended as path segments (each percent-encoded), ending with `/`.
fn join_segments(base: &Url, segments: &[&str]) -> anyhow::Result<Url> {
    let mut u = base.clone();
    u.set_query(None);
    u.set_fragment(None);
    {
        let mut path = u
            .path_segments_mut()
            .map_err(|_| anyhow!("{base} cannot hold a path"))?;
        path.pop_if_empty();
        for s in segments {
            path.push(s);
        }
        path.push("");
    }
    Ok(u)
}

/// The `--node` argument as a URL whose path ends with `/`.
pub fn parse_node_url(node: &str) -> anyhow::Result<Url> {
    let mut url = Url::parse(node)
        .with_context(|| format!("--node {node:?} is not a URL (http://host:port/…)"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("--node {node:?}: only http:// and https:// URLs are supported");
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        bail!("--node {node:?} names no host");
    }
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    url.set_fragment(None);
    Ok(url)
}

/// Whether the URL's host is this machine (a plain-HTTP token does not leave it).
pub fn is_loopback(url: &Url) -> bool {
    let Some(h) = url.host_str() else {
        return false;
    };
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// Splits serialised objects into envelopes of at most `max_bytes` (the envelope text included) and
/// `MAX_ENVELOPE_OBJECTS` objects. An object too large for any envelope is returned apart.
pub fn envelopes(objects: &[String], max_bytes: u64) -> (Vec<Vec<usize>>, Vec<usize>) {
    const FRAME: u64 = b"{\"objects\":[]}".len() as u64;
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut too_large = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    let mut size = FRAME;
    for (i, o) in objects.iter().enumerate() {
        let len = o.len() as u64;
        if FRAME + len > max_bytes {
            too_large.push(i);
            continue;
        }
        let add = len + u64::from(!cur.is_empty());
        if !cur.is_empty() && (size + add > max_bytes || cur.len() == MAX_ENVELOPE_OBJECTS) {
            out.push(std::mem::take(&mut cur));
            size = FRAME;
        }
        size += len + u64::from(!cur.is_empty());
        cur.push(i);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    (out, too_large)
}

impl TaxiiClient {
    /// A client that sends `token` as a Bearer token with every request.
    pub fn new(token: &str) -> anyhow::Result<Self> {
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .map_err(|_| anyhow!("the token holds characters that cannot be sent in a header"))?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        headers.insert(ACCEPT, HeaderValue::from_static(TAXII_MEDIA_TYPE));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("kopa-match/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build()
            .context("cannot set up the HTTP client")?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the HTTP runtime")?;
        Ok(TaxiiClient { rt, http })
    }

    /// Sends a request; a non-2xx answer becomes an error naming the URL. Returns the headers and body.
    fn send(
        &self,
        method: Method,
        url: &Url,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<(HeaderMap, Vec<u8>)> {
        self.rt.block_on(async {
            let mut req = self.http.request(method, url.clone());
            if let Some(b) = body {
                req = req
                    .header(CONTENT_TYPE, HeaderValue::from_static(TAXII_MEDIA_TYPE))
                    .body(b);
            }
            let resp = req.send().await.map_err(|e| transport_error(url, e))?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = resp.bytes().await.map_err(|e| transport_error(url, e))?;
            if !status.is_success() {
                return Err(http_error(url, status, &bytes));
            }
            Ok((headers, bytes.to_vec()))
        })
    }

    fn get_json(&self, url: &Url) -> anyhow::Result<serde_json::Value> {
        let (_, body) = self.send(Method::GET, url, None)?;
        serde_json::from_slice(&body).with_context(|| format!("{url}: the answer is not JSON"))
    }

    /// Finds the collection `id` from `node`: the node's base URL (discovery at `/taxii2/`), a
    /// discovery URL, or an API root URL. Checks that the collection exists for this token.
    pub fn open(&self, node: &Url, id: &str) -> anyhow::Result<Collection> {
        if id.is_empty() {
            bail!("--collection is empty");
        }
        let first = if node.path() == "/" {
            node.join("taxii2/")?
        } else {
            node.clone()
        };
        let doc = self.get_json(&first)?;
        let (api_root, root_doc) = if doc.get("versions").is_some() {
            (first, doc)
        } else if doc.get("api_roots").is_some() || doc.get("default").is_some() {
            let named = doc
                .get("default")
                .and_then(|d| d.as_str())
                .or_else(|| {
                    doc.get("api_roots")
                        .and_then(|r| r.as_array())
                        .and_then(|r| r.first())
                        .and_then(|r| r.as_str())
                })
                .ok_or_else(|| anyhow!("{first}: the TAXII discovery names no API root"))?;
            let mut root = first
                .join(named)
                .with_context(|| format!("{first}: API root {named:?} is not a URL"))?;
            if !root.path().ends_with('/') {
                let p = format!("{}/", root.path());
                root.set_path(&p);
            }
            let root_doc = self.get_json(&root)?;
            (root, root_doc)
        } else {
            bail!("{first}: neither a TAXII 2.1 discovery nor an API root answers there");
        };
        let max_content_length = root_doc
            .get("max_content_length")
            .and_then(|m| m.as_u64())
            .filter(|&m| m > 0)
            .unwrap_or(DEFAULT_MAX_CONTENT_LENGTH);
        let url = join_segments(&api_root, &["collections", id])?;
        let c = self.get_json(&url)?;
        let flag = |k: &str| c.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
        Ok(Collection {
            max_content_length,
            can_write: flag("can_write"),
            api_root,
            url,
        })
    }

    /// Reads the collection's indicators, calling `page` with each envelope's body (its URL too) and
    /// following `next` (or, from servers that give none, `X-TAXII-Date-Added-Last`). Returns the
    /// number of pages.
    pub fn indicator_pages(
        &self,
        coll: &Collection,
        mut page: impl FnMut(&Url, &[u8]),
    ) -> anyhow::Result<u64> {
        let objects = join_segments(&coll.url, &["objects"])?;
        let mut next: Option<String> = None;
        let mut added_after: Option<String> = None;
        let mut pages = 0u64;
        loop {
            let mut url = objects.clone();
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("match[type]", "indicator");
                if let Some(n) = &next {
                    q.append_pair("next", n);
                } else if let Some(a) = &added_after {
                    q.append_pair("added_after", a);
                }
            }
            let (headers, body) = self.send(Method::GET, &url, None)?;
            let head: PageHead = serde_json::from_slice(&body)
                .with_context(|| format!("{url}: the answer is not a TAXII envelope"))?;
            page(&url, &body);
            pages += 1;
            if !head.more {
                return Ok(pages);
            }
            match head.next {
                Some(n) if next.as_ref() != Some(&n) => next = Some(n),
                Some(_) => bail!("{url}: the server gave the same `next` twice; stopping"),
                None => {
                    let last = headers
                        .get("x-taxii-date-added-last")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    match last {
                        Some(l) if added_after.as_ref() != Some(&l) => {
                            next = None;
                            added_after = Some(l);
                        }
                        _ => bail!(
                            "{url}: the server says more objects follow but gives no `next` \
                             (nor a new X-TAXII-Date-Added-Last) to fetch them"
                        ),
                    }
                }
            }
        }
    }

    /// Posts `objects` (serialised STIX objects with their ids) to the collection in envelopes and
    /// checks each status resource. A refused envelope stops posting.
    pub fn post_objects(&self, coll: &Collection, objects: &[(String, String)]) -> PostOutcome {
        let mut out = PostOutcome::default();
        let texts: Vec<String> = objects.iter().map(|(_, t)| t.clone()).collect();
        let (batches, too_large) = envelopes(&texts, coll.max_content_length);
        for i in too_large {
            out.failures.push((
                objects[i].0.clone(),
                format!(
                    "not sent: larger than the node's max_content_length ({} bytes)",
                    coll.max_content_length
                ),
            ));
        }
        let url = match join_segments(&coll.url, &["objects"]) {
            Ok(u) => u,
            Err(e) => {
                out.aborted = Some(e.to_string());
                out.not_sent = batches.iter().map(|b| b.len() as u64).sum();
                return out;
            }
        };
        for (k, batch) in batches.iter().enumerate() {
            let mut body =
                Vec::with_capacity(batch.iter().map(|&i| texts[i].len() + 1).sum::<usize>() + 16);
            body.extend_from_slice(b"{\"objects\":[");
            for (j, &i) in batch.iter().enumerate() {
                if j > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(texts[i].as_bytes());
            }
            body.extend_from_slice(b"]}");
            let status = self
                .send(Method::POST, &url, Some(body))
                .and_then(|(_, b)| {
                    serde_json::from_slice::<StatusResource>(&b).with_context(|| {
                        format!("{url}: the answer is not a TAXII status resource")
                    })
                })
                .and_then(|s| self.settle(coll, s));
            match status {
                Ok(s) => {
                    out.envelopes += 1;
                    out.accepted += s.success_count;
                    for f in &s.failures {
                        out.failures.push((
                            f.id.clone(),
                            f.message.clone().unwrap_or_else(|| "refused".into()),
                        ));
                    }
                    for p in &s.pendings {
                        out.failures.push((
                            p.id.clone(),
                            format!(
                                "still pending after {} s (status {})",
                                PENDING_WAIT.as_secs(),
                                s.id
                            ),
                        ));
                    }
                    // A status that does not account for every object sent is reported too.
                    let pending = (s.pendings.len() as u64).max(s.pending_count);
                    let accounted = s.success_count + s.failures.len() as u64 + pending;
                    if accounted < batch.len() as u64 {
                        out.failures.push((
                            format!("status {}", s.id),
                            format!(
                                "accounts for {accounted} of the {} objects sent",
                                batch.len()
                            ),
                        ));
                    }
                }
                Err(e) => {
                    out.aborted = Some(format!("{e:#}"));
                    out.not_sent = batches[k..].iter().map(|b| b.len() as u64).sum();
                    return out;
                }
            }
        }
        out
    }

    /// Polls a `pending` status until it completes or `PENDING_WAIT` passes.
    fn settle(&self, coll: &Collection, mut s: StatusResource) -> anyhow::Result<StatusResource> {
        let start = std::time::Instant::now();
        let mut pause = Duration::from_millis(100);
        while s.status == "pending" && start.elapsed() < PENDING_WAIT {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(2));
            let url = join_segments(&coll.api_root, &["status", &s.id])?;
            let (_, b) = self.send(Method::GET, &url, None)?;
            s = serde_json::from_slice(&b)
                .with_context(|| format!("{url}: the answer is not a TAXII status resource"))?;
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_urls() {
        let cases = [
            ("http://127.0.0.1:7470", "http://127.0.0.1:7470/"),
            ("http://h:1/taxii2", "http://h:1/taxii2/"),
            ("https://kopa.example/kopa/", "https://kopa.example/kopa/"),
        ];
        for (given, want) in cases {
            assert_eq!(parse_node_url(given).unwrap().as_str(), want, "{given}");
        }
        for bad in ["127.0.0.1:7470", "ftp://h/", "not a url", "mailto:x@y"] {
            let e = parse_node_url(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn loopback_hosts() {
        for (u, want) in [
            ("http://127.0.0.1:7470/", true),
            ("http://127.8.0.1/", true),
            ("http://[::1]:80/", true),
            ("http://LocalHost/", true),
            ("http://kopa.example/", false),
            ("http://10.0.0.1/", false),
        ] {
            assert_eq!(is_loopback(&Url::parse(u).unwrap()), want, "{u}");
        }
    }

    #[test]
    fn collection_url_encodes_the_id() {
        let root = Url::parse("http://h:1/kopa/").unwrap();
        assert_eq!(
            join_segments(&root, &["collections", "abc-1"])
                .unwrap()
                .as_str(),
            "http://h:1/kopa/collections/abc-1/"
        );
        assert_eq!(
            join_segments(&root, &["collections", "a/b?c"])
                .unwrap()
                .as_str(),
            "http://h:1/kopa/collections/a%2Fb%3Fc/"
        );
        let coll = Url::parse("http://h:1/kopa/collections/x/").unwrap();
        assert_eq!(
            join_segments(&coll, &["objects"]).unwrap().as_str(),
            "http://h:1/kopa/collections/x/objects/"
        );
    }

    #[test]
    fn envelopes_respect_size_and_count() {
        let objs: Vec<String> = (0..5).map(|i| format!("{{\"n\":{i:04}}}")).collect(); // 10 bytes each
                                                                                       // Frame 14 bytes; two objects + comma = 21: 35 fits, three = 46 does not fit in 40.
        let (b, big) = envelopes(&objs, 40);
        assert_eq!(b, vec![vec![0, 1], vec![2, 3], vec![4]]);
        assert!(big.is_empty());
        let (b, big) = envelopes(&objs, 1 << 20);
        assert_eq!(b, vec![vec![0, 1, 2, 3, 4]]);
        assert!(big.is_empty());
        // An object larger than any envelope is set apart, the others still go.
        let mut objs = objs;
        objs.insert(2, "x".repeat(100));
        let (b, big) = envelopes(&objs, 40);
        assert_eq!(big, vec![2]);
        assert_eq!(b, vec![vec![0, 1], vec![3, 4], vec![5]]);
        // The object count limit.
        let many: Vec<String> = (0..2500).map(|_| "{}".to_string()).collect();
        let (b, _) = envelopes(&many, u64::MAX);
        assert_eq!(
            b.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1000, 1000, 500]
        );
    }

    #[test]
    fn error_messages_name_url_and_meaning() {
        let url = Url::parse("http://h:1/kopa/collections/c/").unwrap();
        let body = br#"{"title":"Not found","description":"no collection \"c\" that you may read or write"}"#;
        let e = http_error(&url, StatusCode::NOT_FOUND, body).to_string();
        assert!(
            e.starts_with("http://h:1/kopa/collections/c/: HTTP 404 Not Found"),
            "{e}"
        );
        assert!(
            e.contains("no collection \"c\" that you may read or write"),
            "{e}"
        );
        let e = http_error(&url, StatusCode::UNAUTHORIZED, b"").to_string();
        assert!(e.contains("did not accept the token"), "{e}");
        let e = http_error(&url, StatusCode::FORBIDDEN, b"plain words").to_string();
        assert!(
            e.contains("may not do this") && e.ends_with(": plain words"),
            "{e}"
        );
    }
}
