//! Input kept exactly or refused: numbers that parsing would round are refused with the object id
//! and the property path; names of organisations and users that hide characters or pass for an
//! existing name are refused.

mod common;

use common::{Auth, Node, PgDb, TAXII};
use kopa_core::Role;
use kopa_store::Access;
use serde_json::{json, Value};

const ID_BIG: &str = "indicator--00000000-0000-4000-8000-000000000001";
const ID_PRECISE: &str = "indicator--00000000-0000-4000-8000-000000000002";
const ID_FINE: &str = "indicator--00000000-0000-4000-8000-000000000003";

/// An indicator with `extra` (JSON members, as text) written into its text.
fn indicator_text(id: &str, extra: &str) -> String {
    format!(
        r#"{{"type": "indicator", "spec_version": "2.1", "id": "{id}",
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
            "pattern": "[ipv4-addr:value = '198.51.100.1']", "pattern_type": "stix",
            "valid_from": "2024-01-01T00:00:00Z", {extra}}}"#
    )
}

async fn numbers_are_kept_exactly_or_refused(node: Node) {
    let a = node.org("Org A").await;
    let alice = node.user("alice", &a, Role::Analyst).await;
    let coll = node.collection("Room", Access::All, Access::All).await;
    // Sent as text: a JSON library on the client side would round these before they left.
    let body = format!(
        r#"{{"objects": [{}, {}, {}]}}"#,
        indicator_text(ID_BIG, r#""x_counts": [1, 12345678901234567890123]"#),
        indicator_text(
            ID_PRECISE,
            r#""x_score": {"value": 0.10000000000000000001, "of": 1}"#
        ),
        indicator_text(
            ID_FINE,
            r#""x_max": 9007199254740991, "x_min": -9007199254740991, "x_ratio": 0.1, "x_half": 0.50"#
        ),
    );
    let r = node
        .call(
            "POST",
            &format!("/kopa/collections/{coll}/objects/"),
            Auth::Bearer(&alice),
            &[("content-type", TAXII)],
            Some(body.into_bytes()),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let status = r.json();
    assert_eq!(status["success_count"], 1, "{status}");
    assert_eq!(status["failure_count"], 2, "{status}");
    let failure = |id: &str| -> String {
        status["failures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .and_then(|f| f["message"].as_str())
            .unwrap_or_else(|| panic!("no failure for {id}: {status}"))
            .to_string()
    };
    let big = failure(ID_BIG);
    assert!(
        big.contains(&format!("{ID_BIG}: x_counts[1]: 12345678901234567890123")),
        "{big}"
    );
    assert!(big.contains("beyond 64 bits"), "{big}");
    let precise = failure(ID_PRECISE);
    assert!(
        precise.contains(&format!(
            "{ID_PRECISE}: x_score.value: 0.10000000000000000001"
        )),
        "{precise}"
    );
    // What was stored is served with the same numbers.
    let r = node
        .get(&format!("/kopa/collections/{coll}/objects/"), &alice)
        .await;
    let text = r.text();
    // (A signed object's integers stay within ±(2^53 − 1): canonical JSON cannot sign larger.)
    assert!(text.contains("\"x_max\":9007199254740991"), "{text}");
    assert!(text.contains("\"x_min\":-9007199254740991"), "{text}");
    assert!(text.contains("\"x_ratio\":0.1,"), "{text}");
    assert_eq!(r.json()["objects"][0]["x_half"], json!(0.5));
    assert_eq!(r.json()["objects"].as_array().unwrap().len(), 1);
}

async fn names_that_pass_for_others_are_refused(node: Node) {
    let home = node.org("Home").await;
    let admin = node.user("root", &home, Role::Admin).await;
    let add_org = |name: &str| json!({ "name": name });
    let r = node
        .api("POST", "/api/orgs", &admin, Some(add_org("Bank A")))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = node
        .api(
            "POST",
            "/api/users",
            &admin,
            Some(json!({"name": "alice", "org": "Bank A"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let long = "n".repeat(201);
    let rows: &[(&str, &str, Value, u16, &str)] = &[
        (
            "Cyrillic А",
            "/api/orgs",
            add_org("Bank \u{0410}"),
            400,
            "too like the existing organisation \"Bank A\"",
        ),
        ("case only", "/api/orgs", add_org("BANK A"), 400, "too like"),
        (
            "RLO in an organisation",
            "/api/orgs",
            add_org("Bank\u{202E}B"),
            400,
            "U+202E",
        ),
        (
            "201 characters",
            "/api/orgs",
            add_org(&long),
            400,
            "at most 200",
        ),
        (
            "same name",
            "/api/orgs",
            add_org("Bank A"),
            409,
            "already exists",
        ),
        (
            "capital I for l",
            "/api/users",
            json!({"name": "aIice", "org": "Bank A"}),
            400,
            "too like the existing user \"alice\"",
        ),
        (
            "zero-width space",
            "/api/users",
            json!({"name": "al\u{200B}ice", "org": "Bank A"}),
            400,
            "U+200B",
        ),
        (
            "not NFC",
            "/api/users",
            json!({"name": "Jose\u{0301}", "org": "Bank A"}),
            400,
            "NFC",
        ),
        (
            "same user",
            "/api/users",
            json!({"name": "alice", "org": "Bank A"}),
            409,
            "already exists",
        ),
    ];
    for (row, path, body, status, needle) in rows {
        let r = node.api("POST", path, &admin, Some(body.clone())).await;
        assert_eq!(r.status, *status, "{row}: {}", r.text());
        let msg = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(msg.contains(needle), "{row}: {msg}");
    }
    let orgs = node.api("GET", "/api/orgs", &admin, None).await.json();
    assert_eq!(orgs["orgs"].as_array().unwrap().len(), 2, "{orgs}");
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                super::$name(Node::sqlite().await).await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(db) = PgDb::create("kopa_server_test").await else {
                    return;
                };
                let url = db.url.clone();
                let result = common::CatchUnwind(Box::pin(async move {
                    let store = kopa_store::open(&url, true).await.unwrap();
                    super::$name(Node::over(store, None, common::config())).await;
                }))
                .await;
                db.drop_db().await;
                if let Err(e) = result {
                    std::panic::resume_unwind(e);
                }
            }
        }
    )*};
}

on_both_backends!(
    numbers_are_kept_exactly_or_refused,
    names_that_pass_for_others_are_refused
);
