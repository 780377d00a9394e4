//! `kopa peer add|list|remove`: the federation peers of this node and the export policy towards each.
//!
//! Like the other admin commands these work against `--data DIR` or `--database URL`, also while the
//! server runs, write an audit entry for each change, and with `--json` print one JSON object. The
//! token given with `--token` (what this node presents to the peer) is stored as given and never
//! printed again.

use crate::cmd_admin::{run_admin, Output};
use crate::{node, StoreArgs};
use anyhow::Context;
use clap::Subcommand;
use kopa_core::Tlp;
use kopa_federation::{ExportPolicy, Peer};
use kopa_store::{AdminAct, Administered, NewPeer, PeerRecord, StoreError};
use serde_json::{json, Value};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum PeerCommand {
    /// Declare a peer node and the export policy towards it.
    Add {
        /// Local name of the peer (letters, digits, '-', '_', '.').
        name: String,
        /// The peer's base URL (http:// or https://).
        #[arg(long)]
        url: String,
        /// The peer's Ed25519 public key, as its `kopa node show` prints it (a key may begin with
        /// '-': base64url uses it).
        #[arg(long, allow_hyphen_values = true)]
        key: String,
        /// The token this node presents to the peer (stored as given: a secret at rest).
        #[arg(long)]
        token: Option<String>,
        /// Highest TLP label exported to the peer [default: TLP:GREEN].
        #[arg(long, value_name = "TLP")]
        max_tlp: Option<String>,
        /// Collections (ids) the peer may read, comma-separated. None: nothing is exported.
        #[arg(long, value_delimiter = ',', value_name = "ID,…")]
        collections: Vec<String>,
        /// STIX object types exported, comma-separated. None: every type.
        #[arg(long = "types", value_delimiter = ',', value_name = "TYPE,…")]
        object_types: Vec<String>,
        /// Communities the peer belongs to, comma-separated.
        #[arg(long, value_delimiter = ',', value_name = "NAME,…")]
        communities: Vec<String>,
        /// Also push new objects to the peer as they are written here (the peer pulls in any case).
        #[arg(long)]
        push: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the peers with their policy and sync status.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove a peer (and its sync cursors).
    Remove {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn ok(json: Value, human: String) -> Output {
    Output {
        json,
        human,
        ok: true,
    }
}

fn ts(t: Option<kopa_stix::Timestamp>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_string()))
}

fn describe(p: &PeerRecord) -> anyhow::Result<Value> {
    let policy: Value = serde_json::from_str(&p.peer.policy)
        .with_context(|| format!("peer {}: stored policy is not JSON", p.peer.name))?;
    Ok(json!({
        "name": p.peer.name,
        "node_id": p.peer.node_id,
        "url": p.peer.url,
        "public_key": p.peer.public_key,
        "token_set": p.peer.token.is_some(),
        "policy": policy,
        "added_at": p.added_at.to_string(),
        "last_sync_at": ts(p.last_sync_at),
        "last_error": p.last_error,
        "last_error_at": ts(p.last_error_at),
        "error_count": p.error_count,
        "push": p.push,
        "status": p.status,
    }))
}

pub fn run(cmd: PeerCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PeerCommand::Add {
            name,
            url,
            key,
            token,
            max_tlp,
            collections,
            object_types,
            communities,
            push,
            store,
        } => {
            // Checked before the store is opened: bad input is reported as such.
            let checked = (|| -> anyhow::Result<Peer> {
                let max_tlp = match max_tlp {
                    None => Tlp::Green,
                    Some(s) => Tlp::parse(&s).with_context(|| {
                        format!(
                            "--max-tlp {s:?}: expected CLEAR, GREEN, AMBER, AMBER+STRICT or RED"
                        )
                    })?,
                };
                let clean = |v: Vec<String>| -> Vec<String> {
                    v.into_iter()
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                };
                let policy = ExportPolicy {
                    collections: clean(collections),
                    max_tlp,
                    object_types: clean(object_types),
                    communities: clean(communities),
                };
                Ok(Peer::new(&name, &url, &key, token, policy)?)
            })();
            run_admin(&store, |s| async move {
                let peer = checked?;
                let policy = serde_json::to_string(&peer.policy)?;
                let detail = json!({"node_id": peer.node_id(), "url": peer.url,
                                    "policy": peer.policy, "push": push});
                let act = AdminAct::AddPeer {
                    peer: NewPeer {
                        name: peer.name.clone(),
                        node_id: peer.node_id().to_string(),
                        url: peer.url.clone(),
                        public_key: peer.public_key.encode(),
                        token: peer.token.clone(),
                        policy,
                    },
                    push,
                };
                let record = s
                    .administer(act, Some(node::cli_by(detail)))
                    .await
                    .and_then(Administered::peer)
                    .map_err(|e| match e {
                        StoreError::Conflict(m) => anyhow::anyhow!("cannot add the peer: {m}"),
                        e => anyhow::Error::new(e).context("cannot add the peer"),
                    })?;
                let out = describe(&record)?;
                let human = format!(
                    "peer {} added (node {}, {}), exports up to {}{}",
                    peer.name,
                    peer.node_id(),
                    peer.url,
                    peer.policy.max_tlp,
                    if push {
                        "; new objects are pushed to it"
                    } else {
                        ""
                    }
                );
                Ok(ok(out, human))
            })
        }
        PeerCommand::List { store } => run_admin(&store, |s| async move {
            let peers = s.peers().await.context("cannot list the peers")?;
            let list = peers
                .iter()
                .map(describe)
                .collect::<anyhow::Result<Vec<_>>>()?;
            let human = list
                .iter()
                .map(|p| {
                    let mut line = format!(
                        "{}\t{}\t{}\t{}\tlast sync: {}\terrors: {}",
                        p["name"].as_str().unwrap_or(""),
                        p["node_id"].as_str().unwrap_or(""),
                        p["url"].as_str().unwrap_or(""),
                        if p["push"] == true {
                            "pull+push"
                        } else {
                            "pull"
                        },
                        p["last_sync_at"].as_str().unwrap_or("never"),
                        p["error_count"]
                    );
                    if let Some(e) = p["last_error"].as_str() {
                        line.push_str(&format!("\tlast error: {e}"));
                    }
                    if !p["status"].is_null() {
                        line.push_str(&format!("\tstatus: {}", p["status"]));
                    }
                    line
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(ok(json!({ "peers": list }), human))
        }),
        PeerCommand::Remove { name, store } => run_admin(&store, |s| async move {
            let act = AdminAct::RemovePeer { name: name.clone() };
            s.administer(act, Some(node::cli_by(json!({}))))
                .await
                .map_err(|e| match e {
                    StoreError::NotFound(_) => anyhow::anyhow!("no peer named {name:?}"),
                    e => anyhow::Error::new(e).context("cannot remove the peer"),
                })?;
            Ok(ok(
                json!({ "removed": name }),
                format!("peer {name} removed"),
            ))
        }),
    }
}
