//! TAXII 2.1 endpoints end to end over the SQLite store: discovery, API root, collections, objects
//! (GET/POST), one object (GET/DELETE), versions, manifest, status; filters and pagination; media
//! types, body limits, bad input and authentication.

mod common;

use common::{indicator, unsigned_all, uuid_n, Auth, Node, TAXII};
use kopa_core::Role;
use kopa_store::Access;
use serde_json::{json, Value};
use std::collections::BTreeSet;

struct World {
    node: Node,
    alice: String,
    alice2: String,
    bob: String,
    carol: String,
    reader: String,
    shared: String,
    a_only: String,
    /// Org A reads; orgs A and B write.
    drop_box: String,
}

async fn world() -> World {
    let node = Node::sqlite().await;
    let a = node.org("Org A").await;
    let b = node.org("Org B").await;
    let c = node.org("Org C").await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let alice2 = node.user("alice2", &a, Role::Analyst).await;
    let bob = node.user("bob", &b, Role::Analyst).await;
    let carol = node.user("carol", &c, Role::Analyst).await;
    let reader = node.user("rita", &a, Role::Reader).await;
    let shared = node.collection("Shared", Access::All, Access::All).await;
    let a_only = node
        .collection(
            "A only",
            Access::Orgs(vec![a.id.clone()]),
            Access::Orgs(vec![a.id.clone()]),
        )
        .await;
    let drop_box = node
        .collection(
            "Drop box",
            Access::Orgs(vec![a.id.clone()]),
            Access::Orgs(vec![a.id.clone(), b.id.clone()]),
        )
        .await;
    World {
        node,
        alice,
        alice2,
        bob,
        carol,
        reader,
        shared,
        a_only,
        drop_box,
    }
}

fn objects_path(c: &str) -> String {
    format!("/kopa/collections/{c}/objects/")
}

fn ids(v: &Value) -> Vec<String> {
    v["objects"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| o["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn discovery_api_root_and_collections() {
    let w = world().await;
    let r = w
        .node
        .call(
            "GET",
            "/taxii2/",
            Auth::Bearer(&w.alice),
            &[("host", "kopa.example:7470")],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(TAXII));
    let d = r.json();
    assert_eq!(d["default"], "http://kopa.example:7470/kopa/");
    assert_eq!(d["api_roots"], json!(["http://kopa.example:7470/kopa/"]));
    assert!(d["title"].is_string());

    let r = w
        .node
        .call(
            "GET",
            "/taxii2/",
            Auth::Basic("alice", &w.alice),
            &[("host", "cti.example"), ("x-forwarded-proto", "https")],
            None,
        )
        .await;
    assert_eq!(r.json()["default"], "https://cti.example/kopa/");
    let r = w.node.call("GET", "/taxii2/", Auth::None, &[], None).await;
    assert_eq!(r.status, 401);

    let r = w.node.get("/kopa/", &w.alice).await;
    assert_eq!(r.status, 200);
    let root = r.json();
    assert_eq!(root["versions"], json!([TAXII]));
    assert_eq!(root["max_content_length"], 64 * 1024);

    // Alice (org A) sees all three; Bob (B) sees shared and the drop box (write only); Carol (C) only shared.
    let r = w.node.get("/kopa/collections/", &w.alice).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["collections"].as_array().unwrap().len(), 3);
    let r = w.node.get("/kopa/collections/", &w.bob).await;
    let cols = r.json()["collections"].as_array().unwrap().clone();
    assert_eq!(cols.len(), 2);
    let drop_box = cols
        .iter()
        .find(|c| c["id"] == w.drop_box.as_str())
        .unwrap();
    assert_eq!(drop_box["can_read"], false);
    assert_eq!(drop_box["can_write"], true);
    assert_eq!(
        drop_box["media_types"],
        json!(["application/stix+json;version=2.1"])
    );

    let r = w
        .node
        .get(&format!("/kopa/collections/{}/", w.shared), &w.carol)
        .await;
    assert_eq!(r.status, 200);
    let c = r.json();
    assert_eq!(c["id"], w.shared.as_str());
    assert_eq!(c["can_read"], true);
    assert_eq!(c["can_write"], true);
    assert!(
        c.get("description").is_none(),
        "absent properties are omitted"
    );

    // A collection Carol may neither read nor write does not exist for her.
    let r = w
        .node
        .get(&format!("/kopa/collections/{}/", w.a_only), &w.carol)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["http_status"], "404");
}

#[tokio::test]
async fn authentication_bearer_basic_wrong_and_revoked() {
    let w = world().await;
    let path = format!("/kopa/collections/{}/", w.shared);
    // Bearer and Basic (user name + token).
    assert_eq!(
        w.node
            .call("GET", &path, Auth::Bearer(&w.alice), &[], None)
            .await
            .status,
        200
    );
    assert_eq!(
        w.node
            .call("GET", &path, Auth::Basic("alice", &w.alice), &[], None)
            .await
            .status,
        200
    );
    let unauthorized = [
        Auth::None,
        Auth::Bearer("kopa_0123456789abcdef_00"),
        Auth::Bearer("not a token at all"),
        Auth::Basic("bob", &w.alice),
        Auth::Basic("alice", "wrong"),
    ];
    for auth in unauthorized {
        let r = w.node.call("GET", &path, auth, &[], None).await;
        assert_eq!(r.status, 401);
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"kopa\", Bearer")
        );
        assert_eq!(r.header("content-type"), Some(TAXII));
        assert_eq!(r.json()["http_status"], "401");
    }
    // A wrong secret with a real token id.
    let (id, _) = kopa_server::token::token_parts(&w.alice);
    let forged = format!("kopa_{id}_{}", "0".repeat(64));
    assert_eq!(
        w.node
            .call("GET", &path, Auth::Bearer(&forged), &[], None)
            .await
            .status,
        401
    );
    // Revoked.
    w.node.store.revoke_token(&id).await.unwrap();
    let r = w
        .node
        .call("GET", &path, Auth::Bearer(&w.alice), &[], None)
        .await;
    assert_eq!(r.status, 401);
    assert!(r.json()["description"]
        .as_str()
        .unwrap()
        .contains("invalid credentials"));
}

#[tokio::test]
async fn media_types_406_and_415() {
    let w = world().await;
    let path = objects_path(&w.shared);
    for (accept, want) in [
        ("application/taxii+json;version=2.1", 200),
        ("application/taxii+json", 200),
        ("*/*", 200),
        ("application/json", 406),
        ("application/taxii+json;version=2.0", 406),
        ("text/html", 406),
    ] {
        let r = w
            .node
            .call(
                "GET",
                &path,
                Auth::Bearer(&w.alice),
                &[("accept", accept)],
                None,
            )
            .await;
        assert_eq!(r.status, want, "Accept: {accept}");
        assert_eq!(r.header("content-type"), Some(TAXII), "Accept: {accept}");
    }
    let body = serde_json::to_vec(&json!({"objects": [indicator(1, json!({}))]})).unwrap();
    for (ct, want) in [
        (Some("application/json"), 415),
        (Some("application/taxii+json;version=2.0"), 415),
        (None, 415),
        (Some("application/taxii+json"), 202),
    ] {
        let headers: Vec<(&str, &str)> = ct.map(|c| vec![("content-type", c)]).unwrap_or_default();
        let r = w
            .node
            .call(
                "POST",
                &path,
                Auth::Bearer(&w.alice),
                &headers,
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, want, "Content-Type: {ct:?}");
        if want == 415 {
            assert_eq!(r.json()["http_status"], "415");
        }
    }
}

#[tokio::test]
async fn mixed_envelope_stores_valid_and_lists_invalid() {
    let w = world().await;
    let good: Vec<Value> = (1..=3).map(|n| indicator(n, json!({}))).collect();
    let mut no_pattern = indicator(10, json!({}));
    no_pattern.as_object_mut().unwrap().remove("pattern");
    let bad_id = indicator(11, json!({"id": "indicator--not-a-uuid"}));
    let bad_time = indicator(12, json!({"modified": "yesterday"}));
    let wrong_order = indicator(13, json!({"created": "2025-01-01T00:00:00.000Z"}));
    let bad_spec = indicator(14, json!({"spec_version": "9.9"}));
    let unknown_org = indicator(
        15,
        json!({"extensions": {kopa_core::AUDIENCE_EXTENSION_ID: {
            "extension_type": "property-extension", "organisations": ["No Such Org"]}}}),
    );
    let unknown_user = indicator(
        16,
        json!({"extensions": {kopa_core::AUDIENCE_EXTENSION_ID: {
            "extension_type": "property-extension", "recipients": ["nobody"]}}}),
    );
    let mut objects = good.clone();
    let invalid = [
        no_pattern,
        bad_id,
        bad_time,
        wrong_order,
        bad_spec,
        unknown_org,
        unknown_user,
        json!(42),
    ];
    objects.extend(invalid.iter().cloned());
    let r = w.node.post_envelope(&w.shared, &w.alice, &objects).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.header("content-type"), Some(TAXII));
    let s = r.json();
    assert_eq!(s["status"], "complete");
    assert_eq!(s["total_count"], 11);
    assert_eq!(s["success_count"], 3);
    assert_eq!(s["failure_count"], 8);
    assert_eq!(s["pending_count"], 0);
    assert!(s["request_timestamp"].as_str().unwrap().ends_with('Z'));
    let failures = s["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 8);
    for f in failures {
        assert!(!f["message"].as_str().unwrap().is_empty(), "{f}");
    }
    let failed_ids: BTreeSet<&str> = failures.iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert!(failed_ids.contains(format!("indicator--{}", uuid_n(10)).as_str()));
    assert!(failed_ids.contains("indicator--not-a-uuid"));
    let unknown = failures
        .iter()
        .find(|f| f["id"] == format!("indicator--{}", uuid_n(15)).as_str())
        .unwrap();
    assert!(unknown["message"].as_str().unwrap().contains("No Such Org"));
    let succeeded: Vec<&str> = s["successes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(succeeded.len(), 3);
    for x in s["successes"].as_array().unwrap() {
        assert_eq!(x["version"], "2024-01-01T00:00:00.000Z");
    }

    // Exactly the valid ones are stored, byte-for-byte as sent (property order kept).
    let r = w.node.get(&objects_path(&w.shared), &w.alice).await;
    let env = r.json();
    assert_eq!(env["more"], false);
    assert_eq!(unsigned_all(&env["objects"]), json!(good));

    // The status is readable by the poster and its organisation, not by others.
    let status_path = format!("/kopa/status/{}/", s["id"].as_str().unwrap());
    let r = w.node.get(&status_path, &w.alice).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), s);
    assert_eq!(w.node.get(&status_path, &w.alice2).await.status, 200);
    assert_eq!(w.node.get(&status_path, &w.bob).await.status, 404);
    assert_eq!(
        w.node
            .get(
                "/kopa/status/00000000-0000-4000-8000-000000000000/",
                &w.alice
            )
            .await
            .status,
        404
    );

    // Re-posting exact duplicates is a success.
    let r = w.node.post_envelope(&w.shared, &w.alice, &good).await;
    let s = r.json();
    assert_eq!(s["success_count"], 3);
    assert_eq!(s["failure_count"], 0);
    assert!(s.get("failures").is_none(), "empty lists are omitted");
    let r = w.node.get(&objects_path(&w.shared), &w.alice).await;
    assert_eq!(ids(&r.json()).len(), 3);
}

#[tokio::test]
async fn bad_bodies_store_nothing() {
    let w = world().await;
    let path = objects_path(&w.shared);
    let post = |body: Vec<u8>| {
        let node = &w.node;
        let path = path.clone();
        let token = w.alice.clone();
        async move {
            node.call(
                "POST",
                &path,
                Auth::Bearer(&token),
                &[("content-type", TAXII)],
                Some(body),
            )
            .await
        }
    };
    // Larger than max_content_length (64 KiB here).
    let big: Vec<Value> = (0..400)
        .map(|n| indicator(n, json!({"description": "x".repeat(200)})))
        .collect();
    let r = post(serde_json::to_vec(&json!({"objects": big})).unwrap()).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["http_status"], "413");
    assert!(r.json()["description"]
        .as_str()
        .unwrap()
        .contains("max_content_length"));

    let r = post(b"{\"objects\": [".to_vec()).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["description"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));

    for body in [&b"[]"[..], b"{\"objects\": {}}", b"{}"] {
        let r = post(body.to_vec()).await;
        assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(body));
        assert_eq!(r.json()["http_status"], "422");
    }
    let r = w.node.get(&path, &w.alice).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({}),
        "nothing stored, and an empty result is {{}}"
    );
    assert!(r.header("x-taxii-date-added-first").is_none());
}

#[tokio::test]
async fn pagination_by_next_has_no_gaps_and_cursor_is_bound_to_filters() {
    let w = world().await;
    let objs: Vec<Value> = (0..25).map(|n| indicator(n, json!({}))).collect();
    for chunk in objs.chunks(10) {
        assert_eq!(
            w.node
                .post_envelope(&w.shared, &w.alice, chunk)
                .await
                .status,
            202
        );
    }
    let base = objects_path(&w.shared);
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    let mut last_added = String::new();
    loop {
        let url = match &next {
            Some(n) => format!("{base}?limit=7&next={n}"),
            None => format!("{base}?limit=7"),
        };
        let r = w.node.get(&url, &w.alice).await;
        assert_eq!(r.status, 200);
        let first = r.header("x-taxii-date-added-first").unwrap().to_string();
        assert!(first >= last_added, "ascending by date_added across pages");
        last_added = r.header("x-taxii-date-added-last").unwrap().to_string();
        let env = r.json();
        let page = ids(&env);
        assert!(page.len() <= 7);
        seen.extend(page);
        pages += 1;
        if env["more"] == true {
            next = Some(
                env["next"]
                    .as_str()
                    .expect("next whenever more")
                    .to_string(),
            );
        } else {
            assert!(env.get("next").is_none());
            break;
        }
    }
    assert_eq!(pages, 4);
    let want: Vec<String> = (0..25)
        .map(|n| format!("indicator--{}", uuid_n(n)))
        .collect();
    assert_eq!(seen, want, "every object once, in order");

    // A cursor resent with other filters is refused.
    let r = w.node.get(&format!("{base}?limit=7"), &w.alice).await;
    let n = r.json()["next"].as_str().unwrap().to_string();
    let r = w
        .node
        .get(
            &format!("{base}?limit=7&match[type]=malware&next={n}"),
            &w.alice,
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["description"]
        .as_str()
        .unwrap()
        .contains("different filters"));

    // Paging by added_after = the last X-TAXII-Date-Added-Last also walks everything.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let url = match &after {
            Some(a) => format!("{base}?limit=10&added_after={a}"),
            None => format!("{base}?limit=10"),
        };
        let r = w.node.get(&url, &w.alice).await;
        let env = r.json();
        if env == json!({}) {
            break;
        }
        seen.extend(ids(&env));
        after = Some(r.header("x-taxii-date-added-last").unwrap().to_string());
        if env["more"] == false {
            break;
        }
    }
    assert_eq!(seen, want);
}

#[tokio::test]
async fn filters_versions_manifest_get_and_delete() {
    let w = world().await;
    let v1 = indicator(1, json!({}));
    let v2 = indicator(
        1,
        json!({"modified": "2024-02-01T00:00:00.000Z", "name": "v2"}),
    );
    let v3 = indicator(
        1,
        json!({"modified": "2024-03-01T00:00:00.000Z", "name": "v3"}),
    );
    let other = indicator(2, json!({}));
    let malware = json!({"type": "malware", "spec_version": "2.1", "id": format!("malware--{}", uuid_n(3)),
        "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
        "name": "Badness", "is_family": false});
    let r = w
        .node
        .post_envelope(
            &w.shared,
            &w.alice,
            &[
                v1.clone(),
                v2.clone(),
                v3.clone(),
                other.clone(),
                malware.clone(),
            ],
        )
        .await;
    assert_eq!(r.json()["success_count"], 5, "{}", r.text());
    let base = objects_path(&w.shared);
    let id1 = format!("indicator--{}", uuid_n(1));
    let get = |q: String| {
        let node = &w.node;
        let token = w.alice.clone();
        async move { node.get(&q, &token).await }
    };

    // Default: latest versions only.
    let env = get(base.clone()).await.json();
    assert_eq!(env["objects"].as_array().unwrap().len(), 3);
    assert!(unsigned_all(&env["objects"])
        .as_array()
        .unwrap()
        .contains(&v3));
    // match[type], match[id] (comma lists OR), combined fields AND.
    assert_eq!(
        ids(&get(format!("{base}?match[type]=malware")).await.json()),
        vec![malware["id"].as_str().unwrap()]
    );
    assert_eq!(
        get(format!("{base}?match[type]=malware,indicator"))
            .await
            .json()["objects"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        unsigned_all(
            &get(format!(
                "{base}?match[id]={id1},{}&match[type]=indicator",
                malware["id"].as_str().unwrap()
            ))
            .await
            .json()["objects"]
        ),
        json!([v3])
    );
    // match[version]
    assert_eq!(
        unsigned_all(
            &get(format!("{base}?match[id]={id1}&match[version]=first"))
                .await
                .json()["objects"]
        ),
        json!([v1])
    );
    assert_eq!(
        unsigned_all(
            &get(format!("{base}?match[id]={id1}&match[version]=all"))
                .await
                .json()["objects"]
        ),
        json!([v1, v2, v3])
    );
    assert_eq!(
        unsigned_all(
            &get(format!(
                "{base}?match[id]={id1}&match[version]=2024-02-01T00:00:00.000Z"
            ))
            .await
            .json()["objects"]
        ),
        json!([v2])
    );
    assert_eq!(
        unsigned_all(
            &get(format!("{base}?match[id]={id1}&match[version]=first,last"))
                .await
                .json()["objects"]
        ),
        json!([v1, v3])
    );
    // match[spec_version]
    assert_eq!(
        get(format!("{base}?match[spec_version]=2.1")).await.json()["objects"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        get(format!("{base}?match[spec_version]=2.0")).await.json(),
        json!({})
    );
    // added_after in the future: nothing.
    assert_eq!(
        get(format!("{base}?added_after=2999-01-01T00:00:00Z"))
            .await
            .json(),
        json!({})
    );

    // One object: latest by default, all with match[version]=all, date headers set.
    let r = get(format!("{base}{id1}/")).await;
    assert_eq!(r.status, 200);
    assert_eq!(unsigned_all(&r.json()["objects"]), json!([v3]));
    assert!(r.header("x-taxii-date-added-first").is_some());
    assert_eq!(
        unsigned_all(&get(format!("{base}{id1}/?match[version]=all")).await.json()["objects"]),
        json!([v1, v2, v3])
    );
    assert_eq!(
        get(format!("{base}indicator--{}/", uuid_n(99)))
            .await
            .status,
        404
    );

    // Versions.
    let r = get(format!("{base}{id1}/versions/")).await;
    assert_eq!(r.status, 200);
    assert!(r.header("x-taxii-date-added-last").is_some());
    let vs = r.json();
    assert_eq!(vs["more"], false);
    assert_eq!(
        vs["versions"],
        json!([
            "2024-01-01T00:00:00.000000Z",
            "2024-02-01T00:00:00.000000Z",
            "2024-03-01T00:00:00.000000Z"
        ])
    );
    let r = get(format!("{base}{id1}/versions/?limit=2")).await;
    assert_eq!(r.json()["more"], true);
    assert_eq!(r.json()["versions"].as_array().unwrap().len(), 2);

    // Manifest.
    let r = get(format!(
        "/kopa/collections/{}/manifest/?match[type]=indicator",
        w.shared
    ))
    .await;
    assert_eq!(r.status, 200);
    assert!(r.header("x-taxii-date-added-first").is_some());
    let m = r.json();
    let recs = m["objects"].as_array().unwrap();
    assert_eq!(recs.len(), 2);
    for rec in recs {
        assert_eq!(rec["media_type"], "application/stix+json;version=2.1");
        assert!(rec["date_added"].as_str().unwrap().ends_with('Z'));
        assert!(rec["version"].is_string());
    }

    // DELETE one version, then the whole object; it is gone from every read.
    let del = |q: String, token: String| {
        let node = &w.node;
        async move {
            node.call("DELETE", &q, Auth::Bearer(&token), &[], None)
                .await
        }
    };
    let r = del(
        format!("{base}{id1}/?match[version]=2024-01-01T00:00:00.000Z"),
        w.alice.clone(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        get(format!("{base}{id1}/versions/")).await.json()["versions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        del(format!("{base}{id1}/?match[version]=all"), w.alice.clone())
            .await
            .status,
        200
    );
    assert_eq!(get(format!("{base}{id1}/")).await.status, 404);
    assert_eq!(get(format!("{base}{id1}/versions/")).await.status, 404);
    assert_eq!(
        get(format!("{base}?match[id]={id1}")).await.json(),
        json!({})
    );
    assert_eq!(
        get(format!(
            "/kopa/collections/{}/manifest/?match[id]={id1}",
            w.shared
        ))
        .await
        .json(),
        json!({})
    );
    assert_eq!(
        del(format!("{base}{id1}/"), w.alice.clone()).await.status,
        404
    );
    // Readers may not delete.
    let oid = other["id"].as_str().unwrap();
    assert_eq!(
        del(format!("{base}{oid}/"), w.reader.clone()).await.status,
        403
    );
}

#[tokio::test]
async fn plain_delete_removes_every_version() {
    // TAXII 2.1: a DELETE without match[version] deletes all versions of the object.
    let w = world().await;
    let versions = [
        indicator(7, json!({})),
        indicator(
            7,
            json!({"modified": "2024-02-01T00:00:00.000Z", "name": "v2"}),
        ),
        indicator(
            7,
            json!({"modified": "2024-03-01T00:00:00.000Z", "name": "v3"}),
        ),
    ];
    let kept = indicator(8, json!({}));
    let mut all = versions.to_vec();
    all.push(kept.clone());
    let r = w.node.post_envelope(&w.shared, &w.alice, &all).await;
    assert_eq!(r.json()["success_count"], 4, "{}", r.text());
    let base = objects_path(&w.shared);
    let id = format!("indicator--{}", uuid_n(7));
    let r = w.node.get(&format!("{base}{id}/versions/"), &w.alice).await;
    assert_eq!(r.json()["versions"].as_array().map(Vec::len), Some(3));

    let r = w
        .node
        .call(
            "DELETE",
            &format!("{base}{id}/"),
            Auth::Bearer(&w.alice),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    let r = w.node.get(&format!("{base}{id}/versions/"), &w.alice).await;
    assert_eq!(r.status, 404, "versions after DELETE: {}", r.text());
    assert_eq!(
        w.node.get(&format!("{base}{id}/"), &w.alice).await.status,
        404
    );
    let r = w
        .node
        .get(
            &format!("{base}?match[id]={id}&match[version]=all"),
            &w.alice,
        )
        .await;
    assert_eq!(r.json(), json!({}), "objects after DELETE");
    let r = w
        .node
        .get(
            &format!(
                "/kopa/collections/{}/manifest/?match[id]={id}&match[version]=all",
                w.shared
            ),
            &w.alice,
        )
        .await;
    assert_eq!(r.json(), json!({}), "manifest after DELETE");
    // The other object is untouched.
    let kid = kept["id"].as_str().unwrap();
    assert_eq!(
        w.node.get(&format!("{base}{kid}/"), &w.alice).await.status,
        200
    );
}

#[tokio::test]
async fn bad_filter_values_are_400() {
    let w = world().await;
    let base = objects_path(&w.shared);
    for q in [
        "added_after=yesterday",
        "limit=0",
        "limit=abc",
        "match[id]=indicator--xyz",
        "match[type]=Bad%20Type",
        "match[version]=all,last",
        "match[version]=tomorrow",
        "match[spec_version]=latest",
        "match[type]=indicator&match[type]=malware",
        "next=%%%",
        "next=bm90IGEgY3Vyc29y",
    ] {
        let r = w.node.get(&format!("{base}?{q}"), &w.alice).await;
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        let e = r.json();
        assert_eq!(e["http_status"], "400", "{q}");
        assert!(!e["description"].as_str().unwrap().is_empty(), "{q}");
    }
    let r = w
        .node
        .get(
            &format!("/kopa/collections/{}/manifest/?limit=-1", w.shared),
            &w.alice,
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn unknown_collection_and_permissions() {
    let w = world().await;
    let unknown = "11111111-1111-4111-8111-111111111111";
    let oid = format!("indicator--{}", uuid_n(1));
    for path in [
        format!("/kopa/collections/{unknown}/"),
        format!("/kopa/collections/{unknown}/objects/"),
        format!("/kopa/collections/{unknown}/manifest/"),
        format!("/kopa/collections/{unknown}/objects/{oid}/"),
        format!("/kopa/collections/{unknown}/objects/{oid}/versions/"),
    ] {
        let r = w.node.get(&path, &w.alice).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json()["http_status"], "404");
    }
    let r = w
        .node
        .post_envelope(unknown, &w.alice, &[indicator(1, json!({}))])
        .await;
    assert_eq!(r.status, 404);
    // Unknown paths, including a TAXII path without its trailing slash, are TAXII 404s; REST paths
    // answer in the REST format; a method a path does not serve is 405 in the route's format.
    let r = w
        .node
        .get(&format!("/kopa/collections/{}", w.shared), &w.alice)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some(TAXII));
    assert!(r.json()["description"]
        .as_str()
        .unwrap()
        .contains("end in '/'"));
    let r = w
        .node
        .call(
            "PUT",
            &objects_path(&w.shared),
            Auth::Bearer(&w.alice),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["http_status"], "405");
    let r = w.node.api("GET", "/api/nothing", &w.alice, None).await;
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("/api/nothing"));
    let r = w.node.api("DELETE", "/api/orgs", &w.alice, None).await;
    assert_eq!(r.status, 405);
    assert!(r.json()["error"].is_string());
    // Carol cannot see A's collection at all: 404 everywhere, including POST.
    assert_eq!(
        w.node.get(&objects_path(&w.a_only), &w.carol).await.status,
        404
    );
    assert_eq!(
        w.node
            .post_envelope(&w.a_only, &w.carol, &[indicator(1, json!({}))])
            .await
            .status,
        404
    );
    // Bob may write the drop box but not read it: 403 on reads, POST accepted.
    assert_eq!(
        w.node.get(&objects_path(&w.drop_box), &w.bob).await.status,
        403
    );
    assert_eq!(
        w.node
            .get(
                &format!("/kopa/collections/{}/manifest/", w.drop_box),
                &w.bob
            )
            .await
            .status,
        403
    );
    let r = w
        .node
        .post_envelope(
            &w.drop_box,
            &w.bob,
            &[indicator(
                1,
                json!({"object_marking_refs": [kopa_core::Tlp::Green.marking_id()]}),
            )],
        )
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(r.json()["success_count"], 1);
    // DELETE with exactly one of read/write: 403.
    let r = w
        .node
        .call(
            "DELETE",
            &format!("{}{oid}/", objects_path(&w.drop_box)),
            Auth::Bearer(&w.bob),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    // Alice (org A) reads what Bob dropped.
    assert_eq!(
        ids(&w
            .node
            .get(&objects_path(&w.drop_box), &w.alice)
            .await
            .json()),
        vec![oid.clone()]
    );
    // Readers cannot POST.
    let r = w
        .node
        .post_envelope(&w.shared, &w.reader, &[indicator(5, json!({}))])
        .await;
    assert_eq!(r.status, 403);
    assert!(r.json()["description"].as_str().unwrap().contains("reader"));
}

#[tokio::test]
async fn limit_is_capped_at_the_server_maximum_and_defaults_apply() {
    let node = Node::sqlite_with(kopa_server::ServerConfig {
        default_page_size: 3,
        max_page_size: 5,
        ..common::config()
    })
    .await;
    let a = node.org("Org A").await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let coll = node.collection("Shared", Access::All, Access::All).await;
    let objs: Vec<Value> = (0..8).map(|n| indicator(n, json!({}))).collect();
    assert_eq!(node.post_envelope(&coll, &alice, &objs).await.status, 202);
    let base = objects_path(&coll);
    let env = node.get(&base, &alice).await.json();
    assert_eq!(ids(&env).len(), 3, "default page size");
    assert_eq!(env["more"], true);
    let env = node.get(&format!("{base}?limit=100"), &alice).await.json();
    assert_eq!(ids(&env).len(), 5, "limit capped at max_page_size");
    assert_eq!(env["more"], true);
    let next = env["next"].as_str().unwrap();
    let env = node
        .get(&format!("{base}?limit=100&next={next}"), &alice)
        .await
        .json();
    assert_eq!(ids(&env).len(), 3);
    assert_eq!(env["more"], false);
    let m = node
        .get(
            &format!("/kopa/collections/{coll}/manifest/?limit=2"),
            &alice,
        )
        .await
        .json();
    assert_eq!(m["objects"].as_array().unwrap().len(), 2);
    assert_eq!(m["more"], true);
    assert!(
        m["next"].is_string(),
        "next whenever more, on the manifest too"
    );
}

/// A collection may be named by its alias in every TAXII path, not only in the collection resource:
/// objects posted, listed, fetched and deleted through the alias are those of the collection.
#[tokio::test]
async fn collection_alias_works_on_every_endpoint() {
    let node = Node::sqlite().await;
    let a = node.org("Org A").await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let id = node
        .store
        .add_collection(&kopa_store::NewCollection {
            id: None,
            title: "National feed".into(),
            description: None,
            alias: Some("national-feed".into()),
            read: Access::All,
            write: Access::All,
        })
        .await
        .unwrap()
        .id;
    let posted = node
        .post_envelope("national-feed", &alice, &[indicator(1, json!({}))])
        .await;
    assert_eq!(posted.status, 202);
    let status = posted.json();
    assert_eq!(status["success_count"], 1, "{status}");
    let oid = indicator(1, json!({}))["id"].as_str().unwrap().to_string();

    for c in ["national-feed", id.as_str()] {
        let r = node.get(&objects_path(c), &alice).await;
        assert_eq!(r.status, 200, "{c}");
        assert_eq!(ids(&r.json()), vec![oid.clone()], "{c}");
        let r = node
            .get(&format!("{}{oid}/", objects_path(c)), &alice)
            .await;
        assert_eq!(ids(&r.json()), vec![oid.clone()], "{c}");
        let manifest = node
            .get(&format!("/kopa/collections/{c}/manifest/"), &alice)
            .await
            .json();
        assert_eq!(
            manifest["objects"][0]["id"],
            oid.as_str(),
            "{c}: {manifest}"
        );
    }

    let r = node
        .call(
            "DELETE",
            &format!("{}{oid}/", objects_path("national-feed")),
            Auth::Bearer(&alice),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let left = node.get(&objects_path(&id), &alice).await.json();
    assert!(ids(&left).is_empty(), "deleted through the alias: {left}");
}
