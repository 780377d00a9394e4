//! Opening the node's store (for `serve`, which may create it, and for the admin commands, which
//! never do), first-start initialisation (node, its organisation, the administrator) and tokens.

use crate::config::{redact, Config};
use anyhow::{bail, Context};
use kopa_core::audit::NewAuditEntry;
use kopa_core::Role;
use kopa_federation::NodeKey;
use kopa_store::{NodeInfo, Store, StoreError, User};
use std::sync::Arc;

/// The SQLite file inside the data directory.
pub const SQLITE_FILE: &str = "kopa.db";

/// Name of the administrator user made at first start.
pub const ADMIN_USER: &str = "admin";

/// Shortest `KOPA_ADMIN_TOKEN` accepted.
pub const ADMIN_TOKEN_MIN_LEN: usize = 16;

/// Where the store is, as a human reads it (passwords hidden).
pub fn describe(config: &Config) -> String {
    match &config.database {
        Some(url) => format!("PostgreSQL database {}", redact(url)),
        None => format!(
            "SQLite database {}",
            config.data.join(SQLITE_FILE).display()
        ),
    }
}

/// Open the store of an existing node (admin commands): never creates a directory or a database.
pub async fn open_existing(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let location = match &config.database {
        Some(url) => url.clone(),
        None => {
            let dir = &config.data;
            if !dir.join(SQLITE_FILE).is_file() {
                bail!(
                    "no Kopa database in {} ({SQLITE_FILE} not found): give the node's data directory \
                     with --data DIR or its database with --database URL, or start a new node with \
                     `kopa serve --data {}`",
                    dir.display(),
                    dir.display()
                );
            }
            dir.to_string_lossy().into_owned()
        }
    };
    let store = kopa_store::open(&location, false)
        .await
        .with_context(|| format!("cannot open the {}", describe(config)))?;
    if store
        .node()
        .await
        .with_context(|| format!("cannot read the {}", describe(config)))?
        .is_none()
    {
        bail!(
            "the {} holds no Kopa node yet: start it once with `kopa serve`",
            describe(config)
        );
    }
    Ok(store)
}

/// Open (and for SQLite create, with its data directory) the store for `kopa serve`. A PostgreSQL
/// database is never created: it must exist.
pub async fn open_for_serve(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let location = match &config.database {
        Some(url) => url.clone(),
        None => {
            let dir = &config.data;
            if dir.exists() && !dir.is_dir() {
                bail!(
                    "data directory {} exists but is not a directory",
                    dir.display()
                );
            }
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create data directory {}", dir.display()))?;
            // Fail early, with a clear message, on a directory we cannot write to.
            let probe = dir.join(".kopa-write-check");
            std::fs::write(&probe, b"")
                .with_context(|| format!("data directory {} is not writable", dir.display()))?;
            let _ = std::fs::remove_file(&probe);
            dir.to_string_lossy().into_owned()
        }
    };
    let options = kopa_store::OpenOptions {
        sqlite_readers: usize::try_from(config.sqlite_readers).unwrap_or(usize::MAX),
    };
    kopa_store::open_with(&kopa_store::Location::parse(&location), true, &options)
        .await
        .with_context(|| format!("cannot open the {}", describe(config)))
}

/// The node's Ed25519 key, kept in the data directory (also for PostgreSQL deployments): made on
/// first start. A node whose id was derived from a key refuses to start without that key, or with
/// another one. Only `serve` makes keys; the admin commands only read them.
pub async fn node_key(store: &dyn Store, config: &Config) -> anyhow::Result<NodeKey> {
    let dir = &config.data;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    let existing = store.node().await?;
    let found = NodeKey::load(dir)?;
    match (existing, found) {
        (Some(n), Some(k)) if n.id.starts_with("node--") && n.id != k.node_id().as_str() => bail!(
            "the node key {} belongs to {}, but this database holds node {}: give the data \
             directory that belongs to this database",
            NodeKey::path_in(dir).display(),
            k.node_id(),
            n.id
        ),
        (Some(n), None) if n.id.starts_with("node--") => bail!(
            "node {} has no key file {}: restore it from a backup (a new key would be a new node)",
            n.id,
            NodeKey::path_in(dir).display()
        ),
        (_, Some(k)) => Ok(k),
        (existing, None) => {
            let (k, _) = NodeKey::load_or_create(dir)?;
            tracing::info!(
                node = %k.node_id(),
                public_key = %k.public_key(),
                file = %NodeKey::path_in(dir).display(),
                "node key created"
            );
            if let Some(n) = existing {
                tracing::warn!(
                    stored_id = %n.id,
                    key_id = %k.node_id(),
                    "this node was created before node keys: its stored id is not derived from its key"
                );
            }
            Ok(k)
        }
    }
}

/// What first start made (or found).
pub struct Init {
    pub node: NodeInfo,
    /// The administrator's token when this start generated one (to print once).
    pub generated_token: Option<String>,
    pub created: bool,
}

/// Make the node, its organisation and the administrator on first start. Each step tolerates a
/// previous start that stopped half-way; the node row is written last.
pub async fn init(
    store: &dyn Store,
    config: &Config,
    admin_token: Option<&str>,
    key: &NodeKey,
) -> anyhow::Result<Init> {
    if let Some(node) = store.node().await? {
        return Ok(Init {
            node,
            generated_token: None,
            created: false,
        });
    }
    if let Some(t) = admin_token {
        if t.chars().count() < ADMIN_TOKEN_MIN_LEN {
            bail!("KOPA_ADMIN_TOKEN must be at least {ADMIN_TOKEN_MIN_LEN} characters long");
        }
    }
    let name = config
        .node_name
        .clone()
        .unwrap_or_else(crate::config::host_name);
    let org = match store.add_org(&name).await {
        Ok(org) => org,
        Err(StoreError::Conflict(_)) => store.org_by_name(&name).await?,
        Err(e) => return Err(e.into()),
    };
    let admin = match store.add_user(ADMIN_USER, &org.id, Role::Admin).await {
        Ok(u) => u,
        Err(StoreError::Conflict(_)) => store.user_by_name(ADMIN_USER).await?,
        Err(e) => return Err(e.into()),
    };
    let generated_token = match admin_token {
        Some(t)
            if kopa_server::authenticate(store, t, Some(ADMIN_USER))
                .await
                .is_ok() =>
        {
            // Stored by a previous start that stopped half-way.
            None
        }
        Some(t) => {
            // Chosen by the operator: stored as argon2id (slow by design, so off the async threads).
            let (user, token) = (admin.id.clone(), t.to_string());
            let record = tokio::task::spawn_blocking(move || {
                kopa_server::token::token_record(&user, &token)
            })
            .await
            .context("hashing the administrator token failed")?;
            match store.add_token(&record).await {
                Ok(()) => tracing::info!(
                    token_id = %record.id,
                    "KOPA_ADMIN_TOKEN stored (argon2id) as the administrator's token"
                ),
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
            None
        }
        None => Some(issue_token(store, &admin).await?.1),
    };
    let node = NodeInfo {
        id: key.node_id().to_string(),
        name: name.clone(),
    };
    store.init_node(&node).await?;
    store
        .audit(NewAuditEntry {
            actor: "node".into(),
            action: "node.init".into(),
            target: node.id.clone(),
            origin: "local".into(),
            detail:
                serde_json::json!({"name": name, "organisation": org.name, "admin": ADMIN_USER})
                    .to_string(),
        })
        .await?;
    Ok(Init {
        node,
        generated_token,
        created: true,
    })
}

/// Make a new token for `user`: returns (token id, the token string shown once).
pub async fn issue_token(store: &dyn Store, user: &User) -> anyhow::Result<(String, String)> {
    let (record, token) = kopa_server::new_token(&user.id);
    let id = record.id.clone();
    store.add_token(&record).await?;
    Ok((id, token))
}

/// Append an audit entry for an act of the local command line.
pub async fn audit_cli(
    store: &dyn Store,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    store
        .audit(NewAuditEntry {
            actor: "cli".into(),
            action: action.into(),
            target: target.into(),
            origin: "local".into(),
            detail: detail.to_string(),
        })
        .await
        .context("cannot write the audit log")?;
    Ok(())
}
