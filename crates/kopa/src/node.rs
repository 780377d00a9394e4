//! Opening the node's store (for `serve`, which may create it, and for the admin commands, which
//! never do), the data directory (private, and locked by the one `kopa serve` that runs on it),
//! first-start initialisation (node, its organisation, the administrator) and tokens.

use crate::config::{redact, Config};
use anyhow::{bail, Context};
use kopa_core::audit::NewAuditEntry;
use kopa_core::Role;
use kopa_federation::NodeKey;
use kopa_store::{NodeInfo, Store, StoreError, User};
use std::path::Path;
use std::sync::Arc;

/// The SQLite file inside the data directory.
pub const SQLITE_FILE: &str = "kopa.db";

/// Name of the administrator user made at first start.
pub const ADMIN_USER: &str = "admin";

/// Shortest `KOPA_ADMIN_TOKEN` accepted.
pub const ADMIN_TOKEN_MIN_LEN: usize = 16;

/// The file in the data directory that a running `kopa serve` holds an exclusive lock on.
pub const LOCK_FILE: &str = "kopa.lock";

/// The SQLite files, made readable by their owner only.
const DATABASE_FILES: [&str; 3] = [SQLITE_FILE, "kopa.db-wal", "kopa.db-shm"];

/// The data directory's lock, held by `kopa serve` while it runs (released when dropped, or by
/// the system when the process ends however it ends).
pub struct DataDirLock {
    _file: std::fs::File,
}

/// Why group or others may enter the data directory `dir`, when they may (Unix only).
fn too_open(dir: &Path) -> anyhow::Result<Option<String>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)
            .with_context(|| format!("cannot read data directory {}", dir.display()))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Ok(Some(format!(
                "data directory {} has mode {mode:o}: group or others may read it, and it holds \
                 the node's key and database; make it private with `chmod 700 {}`",
                dir.display(),
                dir.display()
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(None)
}

/// Make the data directory ready for `kopa serve`: create it on first start (mode 0700; missing
/// parents get the usual mode), refuse one that group or others may read (the node would start
/// with its key and database exposed), check that it is writable, take its lock (refused while
/// another `kopa serve` runs on it), and make existing database files readable by their owner only.
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<DataDirLock> {
    if dir.exists() && !dir.is_dir() {
        bail!(
            "data directory {} exists but is not a directory",
            dir.display()
        );
    }
    if !dir.exists() {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create directory {}", parent.display()))?;
        }
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        match builder.create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot create data directory {}", dir.display()))
            }
        }
    }
    if let Some(why) = too_open(dir)? {
        bail!("{why}");
    }
    let lock = lock_data_dir(dir)?;
    #[cfg(unix)]
    for name in DATABASE_FILES {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot make {} private (chmod 600)", path.display()))?;
            tracing::info!(file = %path.display(), was = %format!("{mode:o}"), "database file made private (mode 600)");
        }
    }
    Ok(lock)
}

/// Take the exclusive lock on `DIR/kopa.lock` (also the writability check of the directory) and
/// write this process's id into it.
fn lock_data_dir(dir: &Path) -> anyhow::Result<DataDirLock> {
    use std::io::{Read, Seek, Write};
    let path = dir.join(LOCK_FILE);
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(&path).with_context(|| {
        format!(
            "data directory {} is not writable (cannot open {})",
            dir.display(),
            path.display()
        )
    })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            let by = if pid.is_empty() {
                String::new()
            } else {
                format!(" (process {pid})")
            };
            bail!(
                "another `kopa serve`{by} is running on data directory {}: it holds the lock on {}; \
                 stop it first, or give this node another data directory (the admin commands work \
                 beside a running server)",
                dir.display(),
                path.display()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(DataDirLock { _file: file })
}

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
    if config.data.is_dir() {
        // The admin commands may work on a directory the server would refuse; they say so.
        if let Ok(Some(why)) = too_open(&config.data) {
            eprintln!("warning: {why}");
        }
    }
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

/// Open (and for SQLite create) the store for `kopa serve`, in a data directory made ready by
/// [`prepare_data_dir`]. A PostgreSQL database is never created: it must exist.
pub async fn open_for_serve(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let location = match &config.database {
        Some(url) => url.clone(),
        None => config.data.to_string_lossy().into_owned(),
    };
    let options = kopa_store::OpenOptions {
        sqlite_readers: usize::try_from(config.sqlite_readers).unwrap_or(usize::MAX),
        ..kopa_store::OpenOptions::default()
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

/// The audit entry of an act of the local command line, to be written in the act's own
/// transaction.
pub fn cli_entry(action: &str, target: &str, detail: serde_json::Value) -> NewAuditEntry {
    NewAuditEntry {
        actor: "cli".into(),
        action: action.into(),
        target: target.into(),
        origin: "local".into(),
        detail: detail.to_string(),
    }
}

/// The attribution of an act of administration by the local command line.
pub fn cli_by(detail: serde_json::Value) -> kopa_store::AuditBy {
    kopa_store::AuditBy {
        actor: "cli".into(),
        origin: "local".into(),
        detail,
    }
}
