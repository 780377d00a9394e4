//! The TAXII side of a pull, without the HTTP client: the request URL for the next page of a peer's
//! collection, the parsing of the envelope it answers, and the cursor kept between pages and across
//! restarts (stored as JSON text in the store's `peer_cursors`).
//!
//! Resumption uses `added_after` with the last page's `X-TAXII-Date-Added-Last`, not only the
//! server's `next` token (which a restarted or different server may no longer know). Objects at the
//! boundary may come twice; a version already held is a no-op in the store, so there are neither
//! gaps nor duplicates.

/// Media type of every TAXII 2.1 body.
pub const TAXII_MEDIA_TYPE: &str = "application/taxii+json;version=2.1";
/// Media type of STIX 2.1 content, as listed in collections and manifests.
pub const STIX_MEDIA_TYPE: &str = "application/stix+json;version=2.1";

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a pull of one collection stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullCursor {
    /// `added_after` for the next request: the `date_added` of the last object received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_after: Option<String>,
    /// The server's `next` token while a paged read is in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A page that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PullError {
    #[error("peer answer is not JSON: {0}")]
    NotJson(String),
    #[error("peer answer is not a TAXII envelope: {0}")]
    NotEnvelope(&'static str),
    #[error("stored pull cursor {0:?} is not valid")]
    BadCursor(String),
}

impl PullCursor {
    /// Read a cursor stored with [`PullCursor::to_text`].
    pub fn from_text(text: &str) -> Result<PullCursor, PullError> {
        serde_json::from_str(text).map_err(|_| PullError::BadCursor(text.to_string()))
    }

    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// The cursor after a page: follow `next` while the server says there is more; otherwise
    /// continue after the last `date_added` the page reported (or stay where we were on an empty
    /// page).
    pub fn advance(&self, page: &Envelope, date_added_last: Option<&str>) -> PullCursor {
        let added_after = date_added_last
            .map(str::to_string)
            .or_else(|| self.added_after.clone());
        match (&page.next, page.more) {
            (Some(next), true) => PullCursor {
                // Keep the start of this paged read: the `next` token belongs to it.
                added_after: self.added_after.clone(),
                next: Some(next.clone()),
            },
            _ => PullCursor {
                added_after,
                next: None,
            },
        }
    }
}

/// One TAXII 2.1 envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub objects: Vec<Value>,
    pub more: bool,
    pub next: Option<String>,
}

impl Envelope {
    /// Parse a TAXII 2.1 envelope (`{"more": …, "next": …, "objects": […]}`; every member optional).
    pub fn parse(body: &[u8]) -> Result<Envelope, PullError> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| PullError::NotJson(e.to_string()))?;
        let Value::Object(mut m) = v else {
            return Err(PullError::NotEnvelope("not a JSON object"));
        };
        // Taken out of the parsed body, not copied: a page holds up to thousands of objects.
        let objects = match m.remove("objects") {
            None => Vec::new(),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(PullError::NotEnvelope("'objects' is not a list")),
        };
        let more = match m.get("more") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(PullError::NotEnvelope("'more' is not a boolean")),
        };
        let next = match m.get("next") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(PullError::NotEnvelope("'next' is not a string")),
        };
        if more && next.is_none() {
            return Err(PullError::NotEnvelope(
                "'more' is true but there is no 'next'",
            ));
        }
        Ok(Envelope {
            objects,
            more,
            next,
        })
    }
}

/// Percent-encode a path segment or query value (everything but RFC 3986 unreserved characters).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URL of the next page: `GET {base}/{api_root}/collections/{collection}/objects/` (Kopa serves
/// its API root at `/{api_root}/`), asking for every version (`match[version]=all`) so that a pull
/// copies each version, not only the latest. With `base = ""` this is the path and query.
pub fn objects_url(
    base: &str,
    api_root: &str,
    collection: &str,
    cursor: &PullCursor,
    limit: usize,
) -> String {
    let mut url = format!(
        "{}/{}/collections/{}/objects/?limit={limit}&match%5Bversion%5D=all",
        base.trim_end_matches('/'),
        encode(api_root),
        encode(collection)
    );
    if let Some(a) = &cursor.added_after {
        url.push_str("&added_after=");
        url.push_str(&encode(a));
    }
    if let Some(n) = &cursor.next {
        url.push_str("&next=");
        url.push_str(&encode(n));
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_the_cursor_encoded() {
        let c = PullCursor {
            added_after: Some("2026-01-01T00:00:00.000001Z".into()),
            next: Some("a b+c/=".into()),
        };
        assert_eq!(
            objects_url("https://b.example/", "kopa", "c-1", &c, 1000),
            "https://b.example/kopa/collections/c-1/objects/?limit=1000&match%5Bversion%5D=all\
             &added_after=2026-01-01T00%3A00%3A00.000001Z&next=a%20b%2Bc%2F%3D"
        );
        assert_eq!(
            objects_url("http://x", "kopa", "c", &PullCursor::default(), 5),
            "http://x/kopa/collections/c/objects/?limit=5&match%5Bversion%5D=all"
        );
    }

    #[test]
    fn envelopes_are_checked() {
        let e = Envelope::parse(br#"{"more": true, "next": "n1", "objects": [{"a": 1}]}"#).unwrap();
        assert_eq!(
            (e.objects.len(), e.more, e.next.as_deref()),
            (1, true, Some("n1"))
        );
        assert_eq!(Envelope::parse(b"{}").unwrap().objects.len(), 0);
        for (bad, why) in [
            (&b"[1]"[..], "object"),
            (br#"{"objects": {}}"#, "'objects'"),
            (br#"{"more": "yes"}"#, "'more'"),
            (br#"{"more": true}"#, "no 'next'"),
            (b"{", "JSON"),
        ] {
            let err = Envelope::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn the_cursor_follows_next_then_resumes_after_the_last_date() {
        let start = PullCursor::default();
        let p1 = Envelope::parse(br#"{"more": true, "next": "n1", "objects": [{}]}"#).unwrap();
        let c1 = start.advance(&p1, Some("2026-01-01T00:00:01Z"));
        assert_eq!(
            c1,
            PullCursor {
                added_after: None,
                next: Some("n1".into())
            }
        );
        let p2 = Envelope::parse(br#"{"more": false, "objects": [{}]}"#).unwrap();
        let c2 = c1.advance(&p2, Some("2026-01-01T00:00:02Z"));
        assert_eq!(
            c2,
            PullCursor {
                added_after: Some("2026-01-01T00:00:02Z".into()),
                next: None
            }
        );
        // An empty page keeps the position.
        let empty = Envelope::parse(b"{}").unwrap();
        assert_eq!(c2.advance(&empty, None), c2);
        // Stored and read back.
        assert_eq!(PullCursor::from_text(&c2.to_text()).unwrap(), c2);
        assert_eq!(PullCursor::from_text("{}").unwrap(), PullCursor::default());
        assert!(PullCursor::from_text("nope").is_err());
    }
}
