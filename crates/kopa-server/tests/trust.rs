//! Who may *do* what, attacked through the HTTP API on both backends: administration that would
//! escalate, credentials obtained for another user, recovery by enrolment code, directory entries,
//! versions of another producer's object (and what a refusal reveals), and deletes across
//! organisations. Each attack here worked before the permission rule (`kopa_core::permission`).

#[macro_use]
mod common;

use common::{indicator, Auth, Node};
use kopa_core::Role;
use kopa_store::Access;
use serde_json::{json, Value};

const RED: &str = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1";
const GREEN: &str = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb";

/// Every version of one object in a collection, as `token` sees them.
async fn versions(node: &Node, coll: &str, id: &str, token: &str) -> Vec<Value> {
    let r = node
        .get(
            &format!("/kopa/collections/{coll}/objects/?match[id]={id}&match[version]=all"),
            token,
        )
        .await;
    r.json()["objects"].as_array().cloned().unwrap_or_default()
}

async fn administration(node: Node) {
    let home = node.org("Home").await;
    let bank = node.org("Bank").await;
    let admin = node.user("admin", &home, Role::Admin).await;
    let oa = node.user("oa", &home, Role::OrgAdmin).await;
    let oa2 = node.user("oa2", &home, Role::OrgAdmin).await;
    let alice = node.user("alice", &bank, Role::Analyst).await;
    let andy = node.user("andy", &home, Role::Analyst).await;

    // The takeover: an org-admin of the node's own organisation mints a token for `admin`, makes
    // an administrator, enrols `admin`, or revokes another org-admin's token.
    for (path, body) in [
        ("/api/users/admin/tokens", None),
        ("/api/users/admin/enrolment", None),
        ("/api/users/oa2/enrolment", None),
        (
            "/api/users",
            Some(json!({"name": "boss", "org": "Home", "role": "admin"})),
        ),
        (
            "/api/users",
            Some(json!({"name": "peer-admin", "org": "Home", "role": "org-admin"})),
        ),
    ] {
        let r = node.api("POST", path, &oa, body).await;
        assert_eq!(r.status, 403, "{path}: {}", r.text());
    }
    let oa2_token_id = oa2.split('_').nth(1).unwrap();
    let r = node
        .api("DELETE", &format!("/api/tokens/{oa2_token_id}"), &oa, None)
        .await;
    assert_eq!(r.status, 404, "another org-admin's token is not even named");
    assert_eq!(node.api("GET", "/api/me", &oa2, None).await.status, 200);
    assert_eq!(node.api("GET", "/api/me", &admin, None).await.status, 200);

    // Alice writes a RED object only she may read; no one obtains a credential of hers.
    let coll = node.collection("Shared", Access::All, Access::All).await;
    let secret = indicator(1, json!({"object_marking_refs": [RED]}));
    let r = node
        .post_envelope(&coll, &alice, std::slice::from_ref(&secret))
        .await;
    assert_eq!(r.json()["success_count"], 1, "{}", r.text());
    for who in [&admin, &oa] {
        let r = node.api("POST", "/api/users/alice/tokens", who, None).await;
        assert_eq!(r.status, 403, "{}", r.text());
    }
    // The org-admin of another organisation cannot enrol her either.
    let r = node
        .api("POST", "/api/users/alice/enrolment", &oa, None)
        .await;
    assert_eq!(r.status, 403);

    // Alice lost her token: the administrator enrols her. Her token stops working at once; the
    // code works once, for her name only; she sees who enrolled her.
    let r = node
        .api("POST", "/api/users/alice/enrolment", &admin, None)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let e = r.json();
    assert_eq!(e["tokens_revoked"], 1);
    let code = e["code"].as_str().unwrap().to_string();
    assert_eq!(node.api("GET", "/api/me", &alice, None).await.status, 401);
    let redeem = |user: &str, code: &str| {
        let body = serde_json::to_vec(&json!({"user": user, "code": code})).unwrap();
        node.call(
            "POST",
            "/api/enrol",
            Auth::None,
            &[
                ("accept", "application/json"),
                ("content-type", "application/json"),
            ],
            Some(body),
        )
    };
    assert_eq!(redeem("andy", &code).await.status, 401, "another name");
    let mut forged = code.clone();
    forged.pop();
    forged.push(if code.ends_with('0') { '1' } else { '0' });
    assert_eq!(redeem("alice", &forged).await.status, 401, "a changed code");
    let r = redeem("alice", &code).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let alice2 = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(redeem("alice", &code).await.status, 401, "used once");
    let me = node.api("GET", "/api/me", &alice2, None).await.json();
    let enrolments = me["enrolments"].as_array().unwrap();
    assert_eq!(enrolments.len(), 1);
    assert_eq!(enrolments[0]["issued_by"], "admin");
    assert!(enrolments[0]["redeemed_at"].is_string());
    assert_eq!(
        versions(&node, &coll, secret["id"].as_str().unwrap(), &alice2)
            .await
            .len(),
        1
    );
    // Alice makes her own tokens.
    let r = node
        .api("POST", "/api/users/alice/tokens", &alice2, None)
        .await;
    assert_eq!(r.status, 201);

    // The org-admin manages its analysts: enrols andy, revokes his tokens.
    let r = node
        .api("POST", "/api/users/andy/enrolment", &oa, None)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(node.api("GET", "/api/me", &andy, None).await.status, 401);

    // The audit log names every enrolment.
    let log = node.api("GET", "/api/audit", &admin, None).await.json();
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in ["user.enrol", "user.enrolled"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }

    // Directory entries (users of organisations on other nodes) get no credential here.
    node.store
        .add_remote_org("Bank Z", "node--000000000000000000000000000000a0")
        .await
        .unwrap();
    let r = node
        .api(
            "POST",
            "/api/users",
            &admin,
            Some(json!({"name": "zed", "org": "Bank Z", "role": "analyst"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["token"], Value::Null);
    for path in ["/api/users/zed/tokens", "/api/users/zed/enrolment"] {
        assert_eq!(
            node.api("POST", path, &admin, None).await.status,
            403,
            "{path}"
        );
    }
    let r = node
        .api(
            "POST",
            "/api/users",
            &oa,
            Some(json!({"name": "zoe", "org": "Bank Z", "role": "reader"})),
        )
        .await;
    assert_eq!(
        r.status, 403,
        "only the administrator adds directory entries"
    );
}

async fn objects(node: Node) {
    let a = node.org("Bank A").await;
    let b = node.org("Bank B").await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let amy = node.user("amy", &a, Role::Analyst).await;
    let bob = node.user("bob", &b, Role::Analyst).await;
    let shared = node.collection("Shared", Access::All, Access::All).await;
    let bobs = node
        .collection("Bob's room", Access::All, Access::Orgs(vec![b.id.clone()]))
        .await;

    // Alice shares an indicator; Bob publishes `revoked: true` over it, in the same collection
    // and in one only his organisation writes. Both are refused, and readers still see hers.
    let original = indicator(1, json!({"object_marking_refs": [GREEN]}));
    let id = original["id"].as_str().unwrap().to_string();
    let r = node
        .post_envelope(&shared, &alice, std::slice::from_ref(&original))
        .await;
    assert_eq!(r.json()["success_count"], 1, "{}", r.text());
    let revoked = indicator(
        1,
        json!({"object_marking_refs": [GREEN], "revoked": true,
               "modified": "2024-06-01T00:00:00.000Z"}),
    );
    for coll in [&shared, &bobs] {
        let r = node
            .post_envelope(coll, &bob, std::slice::from_ref(&revoked))
            .await;
        let status = r.json();
        assert_eq!(status["failure_count"], 1, "{status}");
        let message = status["failures"][0]["message"].as_str().unwrap();
        assert!(message.contains("belongs to another producer"), "{message}");
    }
    let seen = versions(&node, &shared, &id, &bob).await;
    assert_eq!(seen.len(), 1);
    assert!(seen[0].get("revoked").is_none());
    assert!(versions(&node, &bobs, &id, &bob).await.is_empty());
    // Her colleague versions it for their organisation.
    let r = node
        .post_envelope(&shared, &amy, std::slice::from_ref(&revoked))
        .await;
    assert_eq!(r.json()["success_count"], 1, "{}", r.text());

    // The POST oracle: Bob reposts, byte for byte, the id and version of a RED object he cannot
    // see. The answer is the same as for any other producer's id: nothing about the hidden
    // version, its content or whether his copy matches it.
    let hidden = indicator(2, json!({"object_marking_refs": [RED]}));
    let r = node
        .post_envelope(&shared, &alice, std::slice::from_ref(&hidden))
        .await;
    assert_eq!(r.json()["success_count"], 1);
    let mut changed = hidden.clone();
    changed["name"] = json!("a guess");
    let mut answers = Vec::new();
    for guess in [&hidden, &changed] {
        let r = node
            .post_envelope(&shared, &bob, std::slice::from_ref(guess))
            .await;
        let status = r.json();
        assert_eq!(status["failure_count"], 1, "{status}");
        answers.push(status["failures"][0]["message"].clone());
    }
    assert_eq!(answers[0], answers[1], "same answer whatever the content");
    let visible = indicator(3, json!({"object_marking_refs": [GREEN]}));
    node.post_envelope(&shared, &alice, std::slice::from_ref(&visible))
        .await;
    let r = node
        .post_envelope(&shared, &bob, std::slice::from_ref(&visible))
        .await;
    let m = r.json()["failures"][0]["message"].clone();
    assert_eq!(
        m.as_str()
            .unwrap()
            .replace(visible["id"].as_str().unwrap(), "ID"),
        answers[0]
            .as_str()
            .unwrap()
            .replace(hidden["id"].as_str().unwrap(), "ID"),
        "a hidden id answers like a visible one of another producer"
    );

    // Deletes: Bob (read and write on the collection, sees the object) cannot delete Alice's
    // organisation's object; Amy, of her organisation, can.
    let path = format!("/kopa/collections/{shared}/objects/{id}/?match[version]=all");
    let r = node
        .call("DELETE", &path, Auth::Bearer(&bob), &[], None)
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(versions(&node, &shared, &id, &alice).await.len(), 2);
    let r = node
        .call("DELETE", &path, Auth::Bearer(&amy), &[], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(versions(&node, &shared, &id, &alice).await.is_empty());
}

on_both_backends!(administration, objects);
