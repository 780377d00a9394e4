//! A small TAXII 2.1 client for `kopa match --node`: find a node's API root, read a collection's
//! indicators page by page (`match[type]=indicator`, following `next`), and post objects (sightings)
//! back in envelopes, checking the status resource the node answers with.
//!
//! Every failure names the URL it happened at. The token is sent as `Authorization: Bearer` (marked
//! sensitive) and never appears in a message.

use anyhow::{anyhow, bail, Context};
use kopa_sync::client::{
    envelope_body, parse_collections, parse_status, split_envelopes, TaxiiStatus,
};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use std::time::Duration;

pub use kopa_server::TAXII_MEDIA_TYPE;

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

/// A refused request: the HTTP status, and the message (the URL, what the status usually means, and the
/// server's words).
#[derive(Debug)]
struct HttpError {
    status: StatusCode,
    message: String,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

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
    anyhow::Error::new(HttpError {
        status,
        message: format!("{url}: HTTP {status}{meaning}{detail}"),
    })
}

fn is_status(e: &anyhow::Error, status: StatusCode) -> bool {
    e.downcast_ref::<HttpError>()
        .is_some_and(|h| h.status == status)
}

/// A transport error with its cause ("connection refused"), naming the URL once.
fn transport_error(url: &Url, e: reqwest::Error) -> anyhow::Error {
    anyhow!(
        "cannot reach {url}: {}",
        kopa_sync::describe_request_error(&e)
    )
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
        let mut url = join_segments(&api_root, &["collections", id])?;
        let c = match self.get_json(&url) {
            Ok(c) => c,
            Err(e) if is_status(&e, StatusCode::NOT_FOUND) => {
                // Not an id: perhaps the collection's alias.
                let Some(real) = self.collection_by_alias(&api_root, id) else {
                    return Err(e);
                };
                url = join_segments(&api_root, &["collections", &real])?;
                self.get_json(&url)?
            }
            Err(e) => return Err(e),
        };
        // The collection's own id from here on (a server may have found it by its alias).
        if let Some(real) = c.get("id").and_then(|i| i.as_str()).filter(|r| *r != id) {
            url = join_segments(&api_root, &["collections", real])?;
        }
        let flag = |k: &str| c.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
        Ok(Collection {
            max_content_length,
            can_write: flag("can_write"),
            api_root,
            url,
        })
    }

    /// The id of the one collection whose `alias` is `alias`, if the API root lists one.
    fn collection_by_alias(&self, api_root: &Url, alias: &str) -> Option<String> {
        let url = join_segments(api_root, &["collections"]).ok()?;
        let (_, body) = self.send(Method::GET, &url, None).ok()?;
        let list = parse_collections(&body).ok()?;
        let mut found = list.iter().filter(|c| c.alias.as_deref() == Some(alias));
        let id = found.next()?.id.clone();
        found.next().is_none().then_some(id)
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
        let split = split_envelopes(&texts, MAX_ENVELOPE_OBJECTS, coll.max_content_length);
        let (batches, too_large) = (split.envelopes, split.too_large);
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
            let body = envelope_body(&texts, batch);
            let status = self
                .send(Method::POST, &url, Some(body))
                .and_then(|(_, b)| parse_status(&b).map_err(|e| anyhow!("{url}: {e}")))
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
    fn settle(&self, coll: &Collection, mut s: TaxiiStatus) -> anyhow::Result<TaxiiStatus> {
        let start = std::time::Instant::now();
        let mut pause = Duration::from_millis(100);
        while s.status == "pending" && start.elapsed() < PENDING_WAIT {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(2));
            let url = join_segments(&coll.api_root, &["status", &s.id])?;
            let (_, b) = self.send(Method::GET, &url, None)?;
            s = parse_status(&b).map_err(|e| anyhow!("{url}: {e}"))?;
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

    /// One request as the fake server saw it.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        target: String,
        headers: Vec<(String, String)>,
        body: String,
    }

    type Answer = (u16, Vec<(&'static str, String)>, String);

    /// A plain HTTP/1.1 server on a loopback port (one connection at a time, `Connection: close`),
    /// answering each request with `route(method, target, body)`; returns its base URL and the log.
    fn fake(
        route: impl Fn(&str, &str, &str) -> Answer + Send + 'static,
    ) -> (Url, std::sync::Arc<std::sync::Mutex<Vec<Seen>>>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&log);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let target = parts.next().unwrap_or("").to_string();
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    let (k, v) = h.split_once(':').unwrap();
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
                let len = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .map_or(0, |(_, v)| v.parse().unwrap());
                let mut body = vec![0u8; len];
                r.read_exact(&mut body).unwrap();
                let body = String::from_utf8(body).unwrap();
                let (status, extra, answer) = route(&method, &target, &body);
                seen.lock().unwrap().push(Seen {
                    method,
                    target,
                    headers,
                    body,
                });
                let mut resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: {TAXII_MEDIA_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n",
                    answer.len()
                );
                for (k, v) in extra {
                    resp.push_str(&format!("{k}: {v}\r\n"));
                }
                resp.push_str("\r\n");
                resp.push_str(&answer);
                conn.write_all(resp.as_bytes()).unwrap();
            }
        });
        (url, log)
    }

    fn ok(body: &str) -> Answer {
        (200, vec![], body.to_string())
    }

    fn collection_at(base: &Url) -> Collection {
        Collection {
            api_root: base.join("api/").unwrap(),
            url: base.join("api/collections/c1/").unwrap(),
            max_content_length: 1 << 20,
            can_write: true,
        }
    }

    #[test]
    fn discovery_with_a_relative_api_root() {
        let (base, log) = fake(|_, target, _| match target {
            "/taxii2/" => ok(r#"{"title":"t","api_roots":["/api1/"]}"#),
            "/api1/" => ok(r#"{"title":"r","versions":[],"max_content_length":2048}"#),
            "/api1/collections/c1/" | "/api1/collections/own-alias/" => {
                ok(r#"{"id":"c1","can_read":true,"can_write":false}"#)
            }
            "/api1/collections/" => ok(
                r#"{"collections":[{"id":"c1","alias":"feed"},{"id":"c2","alias":"twin"},{"id":"c3","alias":"twin"}]}"#,
            ),
            _ => (404, vec![], "{}".into()),
        });
        let client = TaxiiClient::new("tok-123").unwrap();
        let c = client.open(&base, "c1").unwrap();
        assert_eq!(c.api_root, base.join("api1/").unwrap());
        assert_eq!(c.url, base.join("api1/collections/c1/").unwrap());
        assert_eq!(c.max_content_length, 2048);
        assert!(!c.can_write);
        for s in log.lock().unwrap().iter() {
            let h = |k: &str| {
                s.headers
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
            };
            assert_eq!(
                h("authorization").as_deref(),
                Some("Bearer tok-123"),
                "{s:?}"
            );
            assert_eq!(h("accept").as_deref(), Some(TAXII_MEDIA_TYPE));
        }
        // An alias names the collection too (when exactly one collection has it).
        let c = client.open(&base, "feed").unwrap();
        assert_eq!(c.url, base.join("api1/collections/c1/").unwrap());
        let c = client.open(&base, "own-alias").unwrap();
        assert_eq!(c.url, base.join("api1/collections/c1/").unwrap());
        for missing in ["twin", "nothing"] {
            let e = client.open(&base, missing).unwrap_err();
            assert!(
                e.to_string()
                    .contains(&format!("/api1/collections/{missing}/: HTTP 404")),
                "{e}"
            );
        }
        // An API root URL is used as it is.
        let c = client.open(&base.join("api1/").unwrap(), "c1").unwrap();
        assert_eq!(c.api_root, base.join("api1/").unwrap());
        // Something else there is refused, naming the URL.
        let e = client
            .open(&base.join("elsewhere/").unwrap(), "c1")
            .unwrap_err();
        assert!(format!("{e:#}").contains("/elsewhere/: HTTP 404"), "{e:#}");
    }

    #[test]
    fn pages_follow_next_then_date_added_last() {
        let (base, log) = fake(|_, target, _| {
            let q = target.split_once('?').map_or("", |(_, q)| q);
            if !q.starts_with("match%5Btype%5D=indicator") {
                return (400, vec![], "{}".into());
            }
            if q.ends_with("&next=n+1") {
                // No `next`: the client goes on from the date header.
                (
                    200,
                    vec![(
                        "X-TAXII-Date-Added-Last",
                        "2024-01-01T00:00:00.000001Z".into(),
                    )],
                    r#"{"more":true,"objects":[{"id":"p2"}]}"#.into(),
                )
            } else if q.ends_with("&added_after=2024-01-01T00%3A00%3A00.000001Z") {
                ok(r#"{"more":false,"objects":[{"id":"p3"}]}"#)
            } else {
                ok(r#"{"more":true,"next":"n 1","objects":[{"id":"p1"}]}"#)
            }
        });
        let client = TaxiiClient::new("t").unwrap();
        let mut bodies = Vec::new();
        let pages = client
            .indicator_pages(&collection_at(&base), |_, b| {
                bodies.push(String::from_utf8(b.to_vec()).unwrap())
            })
            .unwrap();
        assert_eq!(pages, 3);
        for (b, id) in bodies.iter().zip(["p1", "p2", "p3"]) {
            assert!(b.contains(id), "{b}");
        }
        let log = log.lock().unwrap();
        assert!(log
            .iter()
            .all(|s| s.method == "GET" && s.target.starts_with("/api/collections/c1/objects/?")));
    }

    #[test]
    fn paging_that_does_not_advance_stops() {
        let (base, _) = fake(|_, _, _| ok(r#"{"more":true,"next":"same","objects":[]}"#));
        let client = TaxiiClient::new("t").unwrap();
        let e = client
            .indicator_pages(&collection_at(&base), |_, _| {})
            .unwrap_err();
        assert!(e.to_string().contains("same `next` twice"), "{e}");
        let (base, _) = fake(|_, _, _| ok(r#"{"more":true,"objects":[]}"#));
        let e = client
            .indicator_pages(&collection_at(&base), |_, _| {})
            .unwrap_err();
        assert!(e.to_string().contains("gives no `next`"), "{e}");
    }

    fn objects(ids: &[&str]) -> Vec<(String, String)> {
        ids.iter()
            .map(|id| (id.to_string(), format!(r#"{{"id":"{id}"}}"#)))
            .collect()
    }

    #[test]
    fn a_pending_status_is_polled_until_complete() {
        let polls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let p = std::sync::Arc::clone(&polls);
        let (base, log) = fake(move |method, target, _| {
            match (method, target) {
            ("POST", "/api/collections/c1/objects/") => {
                (202, vec![], r#"{"id":"s1","status":"pending","total_count":2,"success_count":0,"failure_count":0,"pending_count":2}"#.into())
            }
            ("GET", "/api/status/s1/") => {
                if p.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    ok(r#"{"id":"s1","status":"pending","success_count":1,"pending_count":1}"#)
                } else {
                    ok(r#"{"id":"s1","status":"complete","success_count":1,"failure_count":1,"failures":[{"id":"b","version":"v","message":"bad sighting"}],"pending_count":0}"#)
                }
            }
            _ => (404, vec![], "{}".into()),
        }
        });
        let client = TaxiiClient::new("t").unwrap();
        let o = client.post_objects(&collection_at(&base), &objects(&["a", "b"]));
        assert_eq!(o.envelopes, 1);
        assert_eq!(o.accepted, 1);
        assert_eq!(
            o.failures,
            vec![("b".to_string(), "bad sighting".to_string())]
        );
        assert!(o.aborted.is_none());
        assert_eq!(polls.load(std::sync::atomic::Ordering::SeqCst), 2);
        let log = log.lock().unwrap();
        let post = &log[0];
        assert_eq!(post.body, r#"{"objects":[{"id":"a"},{"id":"b"}]}"#);
        assert!(post
            .headers
            .contains(&("content-type".into(), TAXII_MEDIA_TYPE.into())));
    }

    #[test]
    fn a_status_that_does_not_account_for_every_object_is_a_failure() {
        let (base, _) = fake(|_, _, _| {
            (
                202,
                vec![],
                r#"{"id":"s2","status":"complete","success_count":1,"failure_count":0,"pending_count":0}"#
                    .into(),
            )
        });
        let client = TaxiiClient::new("t").unwrap();
        let o = client.post_objects(&collection_at(&base), &objects(&["a", "b"]));
        assert_eq!(o.accepted, 1);
        assert_eq!(
            o.failures,
            vec![(
                "status s2".to_string(),
                "accounts for 1 of the 2 objects sent".to_string()
            )]
        );
    }

    #[test]
    fn a_refused_envelope_stops_posting() {
        let (base, log) = fake(|_, _, _| {
            (
                413,
                vec![],
                r#"{"title":"Payload too large","description":"send smaller envelopes"}"#.into(),
            )
        });
        let client = TaxiiClient::new("t").unwrap();
        let mut coll = collection_at(&base);
        coll.max_content_length = 40; // two envelopes of two objects
        let o = client.post_objects(&coll, &objects(&["a", "b", "c", "d"]));
        assert_eq!(o.envelopes, 0);
        assert_eq!(o.accepted, 0);
        assert_eq!(o.not_sent, 4);
        let why = o.aborted.unwrap();
        assert!(
            why.contains("/api/collections/c1/objects/: HTTP 413")
                && why.ends_with("send smaller envelopes"),
            "{why}"
        );
        assert_eq!(log.lock().unwrap().len(), 1);
    }
}
