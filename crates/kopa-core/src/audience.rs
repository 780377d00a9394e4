//! Audiences across nodes: identities qualified by node, so that a name never grants access on a
//! node where it means someone else.
//!
//! A producer names organisations and recipients in the Kopa audience extension by their names,
//! as people do. Its node resolves each name (to one of its own organisations or users, or to a
//! directory entry of another node's) and writes beside the names what they resolved to: the
//! identity's home node and its name there (`organisation_refs`, `recipient_refs`, each a list of
//! `{"node", "name"}`; names are unique on a node, so the pair names one identity). The node then
//! signs the object, so what travels is the origin's own statement.
//!
//! A receiving node grants access only to the very identity named ([`grant`]): its own
//! organisation or user when the reference names this node, a directory entry whose home is the
//! named node otherwise — never a local organisation or user that merely has the same name. An
//! object from a node that wrote no references is read in its origin's namespace: a name means the
//! origin's identity, so it can only match a directory entry whose home is the origin.

use crate::AudienceError;
use serde_json::{json, Map, Value};

/// An organisation or user named by its home node and its name there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QualifiedName {
    pub node: String,
    pub name: String,
}

/// The qualified identities an origin node resolved an object's audience names to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refs {
    pub organisations: Vec<QualifiedName>,
    pub recipients: Vec<QualifiedName>,
}

impl Refs {
    /// Read `organisation_refs` and `recipient_refs` from the extension object; `None` when it
    /// has neither.
    pub fn read(ext: &Map<String, Value>) -> Result<Option<Refs>, AudienceError> {
        let list = |key: &'static str| -> Result<Option<Vec<QualifiedName>>, AudienceError> {
            let Some(v) = ext.get(key) else {
                return Ok(None);
            };
            let items = v.as_array().ok_or(AudienceError::NotRefList(key))?;
            items
                .iter()
                .map(|item| {
                    let field = |f: &str| item.get(f).and_then(Value::as_str).map(str::to_string);
                    match (field("node"), field("name")) {
                        (Some(node), Some(name)) => Ok(QualifiedName { node, name }),
                        _ => Err(AudienceError::NotRefList(key)),
                    }
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        };
        let (orgs, users) = (list("organisation_refs")?, list("recipient_refs")?);
        if orgs.is_none() && users.is_none() {
            return Ok(None);
        }
        Ok(Some(Refs {
            organisations: orgs.unwrap_or_default(),
            recipients: users.unwrap_or_default(),
        }))
    }

    /// Write them into the extension object (replacing what a client may have put there); an
    /// empty list is left out.
    pub fn write(&self, ext: &mut Map<String, Value>) {
        for (key, list) in [
            ("organisation_refs", &self.organisations),
            ("recipient_refs", &self.recipients),
        ] {
            ext.remove(key);
            if !list.is_empty() {
                let items: Vec<Value> = list
                    .iter()
                    .map(|q| json!({"node": q.node, "name": q.name}))
                    .collect();
                ext.insert(key.to_string(), Value::Array(items));
            }
        }
    }
}

/// Whether an identity held on this node (`this_node`) under a name is the one `r` names. `home`
/// is where the local entry lives: `None` for this node's own organisation or user, the peer's
/// node id for a directory entry.
pub fn grant(r: &QualifiedName, this_node: &str, home: Option<&str>) -> bool {
    match home {
        None => r.node == this_node,
        Some(home) => r.node == home,
    }
}

/// The references an object's audience names stand for when its origin node wrote none: the
/// origin's own identities.
pub fn in_origin_namespace(names: &[String], origin: &str) -> Vec<QualifiedName> {
    names
        .iter()
        .map(|name| QualifiedName {
            node: origin.to_string(),
            name: name.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(node: &str, name: &str) -> QualifiedName {
        QualifiedName {
            node: node.into(),
            name: name.into(),
        }
    }

    #[test]
    fn named_cases() {
        // (reference, this node, home of the local entry with that name, granted)
        let cases = [
            (
                "A's bob, read on B, B's own bob",
                q("node-a", "bob"),
                "node-b",
                None,
                false,
            ),
            (
                "A's bob, read on B, B's directory entry for A's bob",
                q("node-a", "bob"),
                "node-b",
                Some("node-a"),
                true,
            ),
            (
                "A's bob, read on B, B's directory entry for C's bob",
                q("node-a", "bob"),
                "node-b",
                Some("node-c"),
                false,
            ),
            (
                "B's bob named by A, read on B, B's own bob",
                q("node-b", "bob"),
                "node-b",
                None,
                true,
            ),
            (
                "B's bob named by A, read on B, a directory entry",
                q("node-b", "bob"),
                "node-b",
                Some("node-a"),
                false,
            ),
            (
                "A's admin, read on B, B's admin",
                q("node-a", "admin"),
                "node-b",
                None,
                false,
            ),
        ];
        for (name, r, this, home, want) in cases {
            assert_eq!(grant(&r, this, home), want, "{name}");
        }
    }

    #[test]
    fn refs_round_trip_and_replace_what_a_client_wrote() {
        let refs = Refs {
            organisations: vec![q("node-a", "Bank A")],
            recipients: vec![q("node-b", "bob"), q("node-a", "al/ice")],
        };
        let mut ext = Map::new();
        ext.insert(
            "recipient_refs".into(),
            json!([{"node": "forged", "name": "x"}]),
        );
        ext.insert("organisation_refs".into(), json!("junk"));
        refs.write(&mut ext);
        assert_eq!(Refs::read(&ext).unwrap(), Some(refs));
        Refs::default().write(&mut ext);
        assert_eq!(Refs::read(&ext).unwrap(), None);
        let mut bad = Map::new();
        bad.insert("recipient_refs".into(), json!([{"node": "n"}]));
        assert_eq!(
            Refs::read(&bad),
            Err(AudienceError::NotRefList("recipient_refs"))
        );
    }

    proptest! {
        /// Over worlds of nodes whose organisations and users share names, a reference is granted
        /// to exactly one local entry: the one whose home is the named node.
        #[test]
        fn colliding_names_never_cross_nodes(nodes in 2usize..5, this in 0usize..5, named in 0usize..5, entries in prop::collection::vec(prop::option::of(0usize..5), 1..6)) {
            let node = |i: usize| format!("node-{}", i % nodes);
            let this_node = node(this);
            let r = q(&node(named), "bob");
            // Several local entries could be called "bob" across the directory of other nodes (at
            // most one per home, and one local); each is granted only when it is the one named.
            for home in &entries {
                let home = home.map(node).filter(|h| *h != this_node);
                let granted = grant(&r, &this_node, home.as_deref());
                let is_named = home.as_deref().unwrap_or(&this_node) == r.node;
                prop_assert_eq!(granted, is_named);
            }
        }
    }
}
