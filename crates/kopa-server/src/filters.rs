//! TAXII query parameters: `added_after`, `limit`, `next` and `match[…]`, parsed once into a store
//! [`ObjectFilter`], with a 400 naming the parameter for anything malformed.
//!
//! `next` is an opaque cursor sealed by [`crate::cursor`]: it resumes after a sequence number, for
//! the caller and the collection it was issued to, and for the filters of the request that got it
//! (a cursor resent with different filters is refused rather than silently skipping or repeating
//! objects).

use kopa_stix::Timestamp;
use kopa_store::{ObjectFilter, VersionMatch};
use sha2::{Digest, Sha256};

use crate::cursor::{Binding, CursorKey, Refusal};
use crate::error::TaxiiError;

/// Which TAXII endpoint the parameters are for: each accepts a different set of filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Objects,
    Manifest,
    Object,
    Versions,
    Delete,
}

impl Endpoint {
    fn accepts(self, field: &str) -> bool {
        use Endpoint::*;
        match field {
            "added_after" | "limit" | "next" => self != Delete,
            "match[id]" | "match[type]" => matches!(self, Objects | Manifest),
            "match[version]" => matches!(self, Objects | Manifest | Object | Delete),
            "match[spec_version]" => true,
            _ => false,
        }
    }
}

/// A parsed request: the store filter, and what the cursors of its pages are bound to.
#[derive(Debug, Clone)]
pub struct Query {
    pub filter: ObjectFilter,
    /// Of the endpoint, the scope and the filters.
    fingerprint: [u8; 8],
    /// The caller and the collection.
    binding: Binding,
    /// True when the request carried `next` or `added_after` (an empty result is then no 404).
    pub continued: bool,
}

impl Query {
    /// The `next` cursor that resumes this request after `seq`.
    pub fn next_cursor(&self, key: &CursorKey, seq: i64) -> String {
        key.seal(seq, self.fingerprint, &self.binding)
    }
}

/// Where a read happens and who reads: what its cursors are bound to.
pub struct Scope<'a> {
    /// The caller and the collection (by id).
    pub binding: Binding,
    /// The collection id and, for one object's endpoints, the object id: mixed into the filter
    /// fingerprint.
    pub path: &'a str,
    pub key: &'a CursorKey,
}

/// Parse the query parameters of `endpoint` read in `scope`. Parameters the endpoint does not
/// define are ignored.
pub fn parse(
    params: &[(String, String)],
    endpoint: Endpoint,
    scope: Scope<'_>,
    default_limit: usize,
    max_limit: usize,
) -> Result<Query, TaxiiError> {
    let mut seen: Vec<&str> = Vec::new();
    let mut filter = ObjectFilter {
        added_after: None,
        after_seq: None,
        limit: default_limit,
        ids: Vec::new(),
        types: Vec::new(),
        versions: VersionMatch::last(),
        spec_versions: Vec::new(),
    };
    // The versions endpoint lists every version; a DELETE without match[version] removes every
    // version of the object (TAXII 2.1 §5.7: "all versions ... are deleted" by default).
    if matches!(endpoint, Endpoint::Versions | Endpoint::Delete) {
        filter.versions = VersionMatch {
            all: true,
            ..Default::default()
        };
    }
    let mut next: Option<&str> = None;
    for (key, value) in params {
        if !endpoint.accepts(key) {
            continue;
        }
        if seen.contains(&key.as_str()) {
            return Err(TaxiiError::bad_request(format!(
                "parameter {key} given more than once (list several values separated by commas)"
            )));
        }
        seen.push(key);
        match key.as_str() {
            "added_after" => {
                filter.added_after = Some(Timestamp::parse(value).map_err(|_| {
                    TaxiiError::bad_request(format!(
                        "added_after: {value:?} is not a timestamp (YYYY-MM-DDTHH:MM:SS[.ssssss]Z)"
                    ))
                })?);
            }
            "limit" => {
                let n: usize = value.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                    TaxiiError::bad_request(format!("limit: {value:?} is not a positive integer"))
                })?;
                filter.limit = n.min(max_limit);
            }
            "next" => next = Some(value),
            "match[id]" => {
                filter.ids = list(key, value, |v| {
                    let ok = v
                        .split_once("--")
                        .is_some_and(|(t, u)| valid_type(t) && uuid::Uuid::parse_str(u).is_ok());
                    ok.then_some(v.to_string())
                        .ok_or("not a STIX identifier (type--UUID)")
                })?
            }
            "match[type]" => {
                filter.types = list(key, value, |v| {
                    valid_type(v)
                        .then_some(v.to_string())
                        .ok_or("not a STIX type name")
                })?
            }
            "match[version]" => filter.versions = versions(value)?,
            "match[spec_version]" => {
                filter.spec_versions = list(key, value, |v| {
                    let ok = v.split_once('.').is_some_and(|(a, b)| {
                        !a.is_empty()
                            && !b.is_empty()
                            && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
                    });
                    ok.then_some(v.to_string())
                        .ok_or("not a spec version such as 2.1")
                })?
            }
            _ => {}
        }
    }
    let fingerprint = fingerprint(endpoint, scope.path, &filter);
    if let Some(cursor) = next {
        filter.after_seq = Some(
            scope
                .key
                .open(cursor, fingerprint, &scope.binding)
                .map_err(|r| match r {
                    Refusal::NotIssued => TaxiiError::bad_request(
                        "next: not a cursor this server issued to you for this collection",
                    ),
                    Refusal::OtherFilters => TaxiiError::bad_request(
                        "next: this cursor was issued for different filters; resend it with the \
                         same added_after and match parameters",
                    ),
                })?,
        );
    }
    Ok(Query {
        continued: next.is_some() || filter.added_after.is_some(),
        filter,
        fingerprint,
        binding: scope.binding,
    })
}

fn valid_type(t: &str) -> bool {
    (3..=250).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn list(
    key: &str,
    value: &str,
    check: impl Fn(&str) -> Result<String, &'static str>,
) -> Result<Vec<String>, TaxiiError> {
    value
        .split(',')
        .map(|v| {
            let v = v.trim();
            check(v).map_err(|why| TaxiiError::bad_request(format!("{key}: {v:?} is {why}")))
        })
        .collect()
}

fn versions(value: &str) -> Result<VersionMatch, TaxiiError> {
    let mut m = VersionMatch::default();
    for v in value.split(',').map(str::trim) {
        match v {
            "all" => m.all = true,
            "first" => m.first = true,
            "last" => m.last = true,
            ts => m.at.push(Timestamp::parse(ts).map_err(|_| {
                TaxiiError::bad_request(format!(
                    "match[version]: {ts:?} is not 'all', 'first', 'last' or a timestamp"
                ))
            })?),
        }
    }
    if m.all && (m.first || m.last || !m.at.is_empty()) {
        return Err(TaxiiError::bad_request(
            "match[version]: 'all' cannot be combined with other values",
        ));
    }
    Ok(m)
}

fn fingerprint(endpoint: Endpoint, scope: &str, f: &ObjectFilter) -> [u8; 8] {
    let mut h = Sha256::new();
    let v = &f.versions;
    let text = format!(
        "{endpoint:?}\n{scope}\n{:?}\n{:?}\n{:?}\n{} {} {} {:?}\n{:?}",
        f.added_after.map(Timestamp::micros),
        f.ids,
        f.types,
        v.all,
        v.first,
        v.last,
        v.at.iter().map(|t| t.micros()).collect::<Vec<_>>(),
        f.spec_versions
    );
    h.update(text.as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&h.finalize()[..8]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn key() -> CursorKey {
        CursorKey::new(&[3; 32])
    }

    fn scope<'a>(key: &'a CursorKey, path: &'a str) -> Scope<'a> {
        let who = kopa_core::Reader::Person(kopa_core::Audience {
            org: kopa_core::OrgId("o".into()),
            user: kopa_core::UserId("u".into()),
        });
        Scope {
            binding: Binding::new(&who, "c"),
            path,
            key,
        }
    }

    fn parse_objects(pairs: &[(&str, &str)]) -> Result<Query, TaxiiError> {
        parse(
            &p(pairs),
            Endpoint::Objects,
            scope(&key(), "c"),
            1000,
            10_000,
        )
    }

    #[test]
    fn good_filters() {
        let q = parse_objects(&[
            ("added_after", "2020-01-01T00:00:00Z"),
            ("limit", "50000"),
            ("match[type]", "indicator,malware"),
            ("match[version]", "first,last"),
            ("match[spec_version]", "2.1"),
            ("match[foo]", "ignored"),
        ])
        .unwrap();
        assert_eq!(q.filter.limit, 10_000, "limit capped at the server maximum");
        assert_eq!(q.filter.types, vec!["indicator", "malware"]);
        assert!(q.filter.versions.first && q.filter.versions.last);
        assert_eq!(q.filter.spec_versions, vec!["2.1"]);
        assert!(q.continued);
        let q = parse_objects(&[]).unwrap();
        assert_eq!(q.filter.versions, VersionMatch::last());
        assert_eq!(q.filter.limit, 1000);
        assert!(!q.continued);
    }

    #[test]
    fn bad_filters_are_400_with_the_parameter_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("added_after", "yesterday")], "added_after"),
            (&[("limit", "0")], "limit"),
            (&[("limit", "-3")], "limit"),
            (&[("limit", "ten")], "limit"),
            (&[("match[id]", "indicator--nope")], "match[id]"),
            (&[("match[type]", "Not A Type")], "match[type]"),
            (&[("match[version]", "all,first")], "match[version]"),
            (&[("match[version]", "sometime")], "match[version]"),
            (&[("match[spec_version]", "two")], "match[spec_version]"),
            (
                &[("match[type]", "indicator"), ("match[type]", "malware")],
                "more than once",
            ),
            (&[("next", "garbage!")], "next"),
        ];
        for (pairs, needle) in cases {
            let e = parse_objects(pairs).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{pairs:?}");
            assert!(
                e.description.contains(needle),
                "{pairs:?}: {}",
                e.description
            );
        }
    }

    #[test]
    fn cursor_is_bound_to_filters() {
        let q = parse_objects(&[("match[type]", "indicator")]).unwrap();
        let next = q.next_cursor(&key(), 42);
        let q2 = parse_objects(&[
            ("match[type]", "indicator"),
            ("next", &next),
            ("limit", "5"),
        ])
        .unwrap();
        assert_eq!(q2.filter.after_seq, Some(42));
        let e = parse_objects(&[("match[type]", "malware"), ("next", &next)]).unwrap_err();
        assert!(e.description.contains("different filters"));
        // Endpoint-specific fields are ignored where not defined.
        let k = key();
        let q = parse(
            &p(&[("match[type]", "x y")]),
            Endpoint::Versions,
            scope(&k, "c"),
            10,
            10,
        )
        .unwrap();
        assert!(q.filter.types.is_empty() && q.filter.versions.all);
        // DELETE without match[version] removes every version.
        let q = parse(&p(&[]), Endpoint::Delete, scope(&k, "c"), 10, 10).unwrap();
        assert_eq!(
            q.filter.versions,
            VersionMatch {
                all: true,
                ..Default::default()
            }
        );
    }
}
