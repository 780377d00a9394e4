//! The PostgreSQL backend (sqlx, a connection pool).
//!
//! Object writes lock the one-row `clock` table first, so that writers are serialised and sequence
//! numbers are committed in order (a reader paging by `seq` never misses a row committed late).
//! Batches are written with multi-row `INSERT … SELECT FROM UNNEST(arrays)`. Audit appends lock the
//! audit table against other appenders so that the hash chain cannot fork.

mod peers;
mod warm;

use crate::migrations::{self, Migration};
use crate::prelude::*;
use crate::sql::{self, Arg, Dialect};
use crate::{
    AdminAct, Administered, AuditBy, Collection, CollectionView, EnrolmentRecord, NameIds,
    NewCollection, NewObject, NodeInfo, ObjectFilter, ObjectRoute, Org, Page, PutOutcome, Result,
    StatusRecord, StoreError, StoredObject, TokenRecord, User, VersionMatch,
};
use async_trait::async_trait;
use kopa_core::audit::{entry_hash, AuditEntry, NewAuditEntry, GENESIS};
use kopa_core::permission::Rights;
use kopa_core::{Audience, OrgId, Principal, Reader, Role, SharedClock, Tlp, UserId};
use kopa_stix::Timestamp;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::{Connection, Postgres, Row};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

pub(crate) struct PgStore {
    pool: PgPool,
    /// Connections the request-path reads run on (see `warm`).
    warm: warm::Warm,
    /// Collection keys (`cid`) by collection id. A collection's id and key never change and
    /// collections are never deleted, so a key once read stays right.
    cids: RwLock<HashMap<String, i64>>,
    /// Object versions written since the planner statistics were last refreshed, and how many
    /// there were then (see `after_write`).
    stats: Arc<PlannerStats>,
    /// The node's clock: `date_added`, audit entries, peers' times.
    clock: SharedClock,
}

#[derive(Default)]
struct PlannerStats {
    written: AtomicI64,
    analysed_at: AtomicI64,
}

fn backend(e: sqlx::Error) -> StoreError {
    // PostgreSQL text cannot hold a NUL character (SQLite can): bad input, said as such, never a
    // server error.
    if db_code(&e).as_deref() == Some("22021") {
        return StoreError::Invalid("text must not contain a NUL character (U+0000)".into());
    }
    StoreError::backend_from(e)
}

fn db_code(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(d) => d.code().map(|c| c.to_string()),
        _ => None,
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    db_code(e).as_deref() == Some("23505")
}

/// Map a unique-key violation to `Conflict("{what} already exists")`, anything else to `Backend`.
fn conflict_if_taken(what: String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!("{what} already exists"))
        } else {
            backend(e)
        }
    }
}

pub(crate) fn bind_all<'q>(
    mut q: Query<'q, Postgres, PgArguments>,
    args: &[Arg],
) -> Query<'q, Postgres, PgArguments> {
    for a in args {
        q = match a {
            Arg::Int(i) => q.bind(*i),
            Arg::Text(s) => q.bind(s.clone()),
            Arg::Texts(v) => q.bind(v.clone()),
            Arg::Ints(v) => q.bind(v.clone()),
        };
    }
    q
}

const ENROLMENT_SELECT: &str = "SELECT id, user_id, secret_hash, issued_by, issued_at, \
     expires_at, redeemed_at, redeemed_from FROM enrolments";

fn enrolment_from(r: &PgRow) -> Result<EnrolmentRecord> {
    let get = |e: sqlx::Error| backend(e);
    Ok(EnrolmentRecord {
        id: r.try_get(0).map_err(get)?,
        user: UserId(r.try_get(1).map_err(get)?),
        secret_hash: r.try_get(2).map_err(get)?,
        issued_by: r.try_get(3).map_err(get)?,
        issued_at: Timestamp::from_micros(r.try_get(4).map_err(get)?),
        expires_at: Timestamp::from_micros(r.try_get(5).map_err(get)?),
        redeemed_at: r
            .try_get::<Option<i64>, _>(6)
            .map_err(get)?
            .map(Timestamp::from_micros),
        redeemed_from: r.try_get(7).map_err(get)?,
    })
}

/// `NotFound` unless user `id` exists (checked inside the caller's transaction).
async fn user_exists(tx: &mut sqlx::PgConnection, id: &str) -> Result<()> {
    let known: Option<i32> = sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
    match known {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound(format!("user {id}"))),
    }
}

async fn insert_token_tx(tx: &mut sqlx::PgConnection, token: &TokenRecord) -> Result<()> {
    user_exists(&mut *tx, &token.user.0).await?;
    sqlx::query("INSERT INTO tokens (id, user_id, secret_hash, revoked) VALUES ($1, $2, $3, $4)")
        .bind(&token.id)
        .bind(&token.user.0)
        .bind(&token.secret_hash)
        .bind(i64::from(token.revoked))
        .execute(&mut *tx)
        .await
        .map_err(conflict_if_taken(format!("token {}", token.id)))?;
    Ok(())
}

/// Add an organisation inside the caller's transaction.
async fn insert_org_tx(
    tx: &mut sqlx::PgConnection,
    name: String,
    node: Option<String>,
) -> Result<Org> {
    let org = Org {
        id: OrgId::new(),
        name,
        node,
    };
    sqlx::query("INSERT INTO orgs (id, name, node) VALUES ($1, $2, $3)")
        .bind(&org.id.0)
        .bind(&org.name)
        .bind(&org.node)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("organisation {:?} already exists", org.name))
            } else {
                backend(e)
            }
        })?;
    Ok(org)
}

/// Add a user, and its first token, inside the caller's transaction.
async fn insert_user_tx(
    tx: &mut sqlx::PgConnection,
    id: UserId,
    name: String,
    org: OrgId,
    role: Role,
    token: Option<TokenRecord>,
) -> Result<User> {
    let org_name: String = sqlx::query_scalar("SELECT name FROM orgs WHERE id = $1")
        .bind(&org.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?
        .ok_or_else(|| StoreError::NotFound(format!("organisation {}", org.0)))?;
    sqlx::query("INSERT INTO users (id, name, org_id, role) VALUES ($1, $2, $3, $4)")
        .bind(&id.0)
        .bind(&name)
        .bind(&org.0)
        .bind(role.as_str())
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("user {name:?} already exists"))
            } else {
                backend(e)
            }
        })?;
    if let Some(t) = token {
        insert_token_tx(tx, &t).await?;
    }
    Ok(User {
        id,
        name,
        org,
        org_name,
        role,
    })
}

/// Add a collection inside the caller's transaction.
async fn insert_collection_tx(
    tx: &mut sqlx::PgConnection,
    nc: NewCollection,
) -> Result<Collection> {
    let readers = sql::access_orgs(&nc.read);
    let writers = sql::access_orgs(&nc.write);
    for org in readers.iter().chain(writers.iter()) {
        let known: Option<i32> = sqlx::query_scalar("SELECT 1 FROM orgs WHERE id = $1")
            .bind(org)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        if known.is_none() {
            return Err(StoreError::NotFound(format!("organisation {org}")));
        }
    }
    let id = sql::collection_id(nc.id.as_deref())?;
    sql::check_alias(nc.alias.as_deref())?;
    // An id or alias is never another collection's id or alias: a path names either.
    for (what, name) in std::iter::once(("id", &id)).chain(nc.alias.iter().map(|a| ("alias", a))) {
        let holder: Option<String> =
            sqlx::query_scalar("SELECT id FROM collections WHERE id = $1 OR alias = $1 LIMIT 1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        match holder {
            Some(h) if what == "id" && h == id => return Err(sql::collection_id_taken(&id)),
            Some(h) => return Err(sql::collection_name_taken(what, name, &h)),
            None => {}
        }
    }
    let cid: i64 = sqlx::query_scalar(
        "INSERT INTO collections (id, title, description, alias, read_all, write_all) VALUES \
         ($1, $2, $3, $4, $5, $6) RETURNING cid",
    )
    .bind(&id)
    .bind(&nc.title)
    .bind(&nc.description)
    .bind(&nc.alias)
    .bind(sql::access_all(&nc.read))
    .bind(sql::access_all(&nc.write))
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!(
                "a collection with alias {:?} already exists",
                nc.alias.clone().unwrap_or_default()
            ))
        } else {
            backend(e)
        }
    })?;
    for (table, orgs) in [
        ("collection_readers", &readers),
        ("collection_writers", &writers),
    ] {
        if orgs.is_empty() {
            continue;
        }
        sqlx::query(&format!(
            "INSERT INTO {table} (cid, org_id) SELECT $1, o FROM UNNEST($2::text[]) AS o"
        ))
        .bind(cid)
        .bind(orgs)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    }
    Ok(Collection {
        id,
        title: nc.title,
        description: nc.description,
        alias: nc.alias,
        read: crate::sqlite::normalize_access(nc.read),
        write: crate::sqlite::normalize_access(nc.write),
    })
}

/// Append an audit entry inside the transaction of the change it records.
async fn append_audit_tx(
    tx: &mut sqlx::PgConnection,
    e: NewAuditEntry,
    now: Timestamp,
) -> Result<AuditEntry> {
    // Self-conflicting lock: one appender at a time; readers are not blocked.
    sqlx::query("LOCK TABLE audit IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let last: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
    let (seq, prev_hash) = match last {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_string()),
    };
    let at = now.to_taxii();
    let hash = entry_hash(&prev_hash, seq, &at, &e);
    sqlx::query(
        "INSERT INTO audit (seq, at, actor, action, target, origin, detail, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(seq)
    .bind(&at)
    .bind(&e.actor)
    .bind(&e.action)
    .bind(&e.target)
    .bind(&e.origin)
    .bind(&e.detail)
    .bind(&prev_hash)
    .bind(&hash)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    Ok(AuditEntry {
        seq,
        at,
        actor: e.actor,
        action: e.action,
        target: e.target,
        origin: e.origin,
        detail: e.detail,
        prev_hash,
        hash,
    })
}

fn object_row(r: &PgRow) -> Result<StoredObject> {
    Ok(sql::stored_object(
        r.try_get(0).map_err(backend)?,
        r.try_get(1).map_err(backend)?,
        r.try_get(2).map_err(backend)?,
        r.try_get(3).map_err(backend)?,
        r.try_get(4).map_err(backend)?,
        r.try_get(5).map_err(backend)?,
        r.try_get(6).map_err(backend)?,
        r.try_get(7).map_err(backend)?,
    ))
}

fn org_from(r: &PgRow) -> Result<Org> {
    Ok(Org {
        id: OrgId(r.try_get(0).map_err(backend)?),
        name: r.try_get(1).map_err(backend)?,
        node: r.try_get(2).map_err(backend)?,
    })
}

fn user_from(r: &PgRow) -> Result<User> {
    let role: String = r.try_get(4).map_err(backend)?;
    let role = Role::parse(&role)
        .ok_or_else(|| StoreError::backend(format!("unknown role {role:?} stored")))?;
    Ok(User {
        id: UserId(r.try_get(0).map_err(backend)?),
        name: r.try_get(1).map_err(backend)?,
        org: OrgId(r.try_get(2).map_err(backend)?),
        org_name: r.try_get(3).map_err(backend)?,
        role,
    })
}

/// A token from the columns id, user_id, secret_hash, revoked of `r`, starting at column `at`.
fn token_from(r: &PgRow, at: usize) -> Result<TokenRecord> {
    Ok(TokenRecord {
        id: r.try_get(at).map_err(backend)?,
        user: UserId(r.try_get(at + 1).map_err(backend)?),
        secret_hash: r.try_get(at + 2).map_err(backend)?,
        revoked: r.try_get::<i64, _>(at + 3).map_err(backend)? != 0,
    })
}

const USER_SELECT: &str =
    "SELECT u.id, u.name, u.org_id, g.name, u.role FROM users u JOIN orgs g ON g.id = u.org_id";

async fn schema_version(conn: &mut sqlx::PgConnection) -> Result<Option<i64>> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = \
         current_schema() AND table_name = $1)",
    )
    .bind(migrations::TABLE)
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)?;
    if !exists {
        return Ok(None);
    }
    let v: i64 = sqlx::query_scalar(&format!(
        "SELECT COALESCE(MAX(version), 0) FROM {}",
        migrations::TABLE
    ))
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(Some(v))
}

async fn migrate(pool: &PgPool, list: &[Migration], now: Timestamp) -> Result<()> {
    for m in list {
        let mut tx = pool.begin().await.map_err(backend)?;
        // One migrator at a time (the server and the CLI may start together).
        sqlx::query("SELECT pg_advisory_xact_lock(7470001)")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {} (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
             applied_at BIGINT NOT NULL)",
            migrations::TABLE
        ))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let current = schema_version(&mut tx).await?.unwrap_or(0);
        migrations::check_not_newer(current, list)?;
        if m.version <= current {
            continue;
        }
        sqlx::raw_sql(m.sql).execute(&mut *tx).await.map_err(|e| {
            StoreError::backend_with(format!("migration {} failed: {e}", m.name), e)
        })?;
        sqlx::query(&format!(
            "INSERT INTO {} (version, name, applied_at) VALUES ($1, $2, $3)",
            migrations::TABLE
        ))
        .bind(m.version)
        .bind(m.name)
        .bind(now.micros())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
    }
    Ok(())
}

impl PgStore {
    /// Refresh the planner statistics of the object tables in the background once the writes since
    /// the last refresh reach a fifth of the table (at least 1,000 rows). Autovacuum would do it only
    /// a minute or more later; until then PostgreSQL plans page reads on a freshly filled collection
    /// as if it were nearly empty (a scan and sort of the whole collection for every page).
    fn after_write(&self, n: i64) {
        let written = self.stats.written.fetch_add(n, Ordering::Relaxed) + n;
        let before = self.stats.analysed_at.load(Ordering::Relaxed);
        if written < (before / 5).max(1_000) {
            return;
        }
        self.stats.written.fetch_sub(written, Ordering::Relaxed);
        self.stats.analysed_at.fetch_add(written, Ordering::Relaxed);
        let pool = self.pool.clone();
        tokio::spawn(async move {
            // Every column but `json`: its statistics serve no query, and reading and sorting the
            // sample of the largest column made up most of the work (it overlaps the reads that
            // follow a big import).
            if let Err(e) = sqlx::query(
                "ANALYZE objects (seq, collection, stix_id, type, spec_version, version, \
                 date_added, owner_org, author, tlp, narrowed, origin, via), object_values",
            )
            .execute(&pool)
            .await
            {
                tracing::warn!("refreshing PostgreSQL planner statistics failed: {e}");
            }
        });
    }

    pub(crate) async fn open(url: &str, create: bool, clock: SharedClock) -> Result<PgStore> {
        let shown = sql::redact_url(url);
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Invalid(format!("invalid PostgreSQL URL {shown}: {e}")))?
            // Page queries are cheap index walks whose cost the planner overestimates; JIT
            // compiling them took ~300 ms a page (measured with EXPLAIN ANALYZE on 30,000 objects),
            // 60 times the query itself.
            .options([("jit", "off")]);
        let dbname = opts.get_database().unwrap_or("").to_string();
        // One direct connection first: it fails fast and with the server's own reason (the pool
        // would retry until its timeout).
        let first = sqlx::PgConnection::connect_with(&opts).await.map_err(|e| {
            if db_code(&e).as_deref() == Some("3D000") {
                StoreError::Invalid(format!(
                    "PostgreSQL database {dbname:?} does not exist ({shown}); create it first or \
                     check --database"
                ))
            } else {
                StoreError::Invalid(format!("cannot connect to PostgreSQL at {shown}: {e}"))
            }
        })?;
        first.close().await.map_err(backend)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(30))
            .connect_with(opts)
            .await
            .map_err(|e| {
                StoreError::Invalid(format!("cannot connect to PostgreSQL at {shown}: {e}"))
            })?;
        let mut conn = pool.acquire().await.map_err(backend)?;
        let current = schema_version(&mut conn).await?;
        drop(conn);
        match current {
            None | Some(0) if !create => {
                return Err(StoreError::Invalid(format!(
                    "no Kopa database at {shown}; run `kopa serve` first or check --database"
                )))
            }
            Some(v) => migrations::check_not_newer(v, migrations::POSTGRES)?,
            None => {}
        }
        migrate(&pool, migrations::POSTGRES, clock.now()).await?;
        Ok(PgStore {
            warm: warm::Warm::new(pool.clone()),
            pool,
            cids: RwLock::default(),
            stats: Arc::default(),
            clock,
        })
    }

    async fn fetch_objects(&self, q: &sql::Sql) -> Result<Vec<StoredObject>> {
        let mut c = self.warm.get().await.map_err(backend)?;
        let r = bind_all(sqlx::query(&q.text), &q.args)
            .fetch_all(c.conn())
            .await;
        let rows = c.check(r).map_err(backend)?;
        rows.iter().map(object_row).collect()
    }

    /// The key of the collection with id `id` (not its alias), or `NotFound`.
    ///
    /// Only the key: whether the reader may read the collection is part of every object query's
    /// rule (`sql::readable`), so a reader who may not gets nothing from it.
    async fn cid(&self, id: &str) -> Result<i64> {
        if let Some(&cid) = self.cids.read().unwrap_or_else(|p| p.into_inner()).get(id) {
            return Ok(cid);
        }
        let mut c = self.warm.get().await.map_err(backend)?;
        let r = sqlx::query_scalar("SELECT cid FROM collections WHERE id = $1")
            .bind(id)
            .fetch_optional(c.conn())
            .await;
        let cid: i64 = c
            .check(r)
            .map_err(backend)?
            .ok_or_else(|| StoreError::NotFound(format!("collection {id}")))?;
        self.cids
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), cid);
        Ok(cid)
    }

    /// Collections with their read and write lists, in one query (every TAXII request reads its
    /// collection).
    async fn load_collections(&self, only: Option<&str>) -> Result<Vec<Collection>> {
        let mut c = self.warm.get().await.map_err(backend)?;
        let r = sqlx::query(
            "SELECT c.cid, c.id, c.title, c.description, c.alias, c.read_all, c.write_all, \
             ARRAY(SELECT r.org_id FROM collection_readers r WHERE r.cid = c.cid ORDER BY \
             r.org_id), ARRAY(SELECT w.org_id FROM collection_writers w WHERE w.cid = c.cid \
             ORDER BY w.org_id) FROM collections c WHERE $1::text IS NULL OR c.id = $1 OR \
             c.alias = $1 ORDER BY c.cid",
        )
        .bind(only)
        .fetch_all(c.conn())
        .await;
        let rows = c.check(r).map_err(backend)?;
        drop(c);
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let readers: Vec<String> = r.try_get(7).map_err(backend)?;
            let writers: Vec<String> = r.try_get(8).map_err(backend)?;
            out.push(Collection {
                id: r.try_get(1).map_err(backend)?,
                title: r.try_get(2).map_err(backend)?,
                description: r.try_get(3).map_err(backend)?,
                alias: r.try_get(4).map_err(backend)?,
                read: sql::access_from(r.try_get::<i64, _>(5).map_err(backend)? == 1, readers),
                write: sql::access_from(r.try_get::<i64, _>(6).map_err(backend)? == 1, writers),
            });
        }
        Ok(out)
    }
}

#[async_trait]
impl NodeStore for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn clock(&self) -> SharedClock {
        self.clock.clone()
    }

    async fn node(&self) -> Result<Option<NodeInfo>> {
        let row = sqlx::query("SELECT id, name FROM node WHERE singleton = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| {
            Ok(NodeInfo {
                id: r.try_get(0).map_err(backend)?,
                name: r.try_get(1).map_err(backend)?,
            })
        })
        .transpose()
    }

    async fn init_node(&self, node: &NodeInfo) -> Result<()> {
        sqlx::query("INSERT INTO node (singleton, id, name) VALUES (1, $1, $2)")
            .bind(&node.id)
            .bind(&node.name)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict("the node is already initialised".into())
                } else {
                    backend(e)
                }
            })?;
        Ok(())
    }

    async fn node_secret(&self, purpose: &str) -> Result<[u8; 32]> {
        // Drawn once: of two processes racing, the first row written is kept by both.
        sqlx::query(
            "INSERT INTO node_secrets (purpose, secret, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (purpose) DO NOTHING",
        )
        .bind(purpose)
        .bind(sql::new_secret())
        .bind(self.clock.now().micros())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        let text: String = sqlx::query_scalar("SELECT secret FROM node_secrets WHERE purpose = $1")
            .bind(purpose)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        sql::secret_bytes(purpose, &text)
    }
}

#[async_trait]
impl Directory for PgStore {
    async fn org_by_name(&self, name: &str) -> Result<Org> {
        let row = sqlx::query("SELECT id, name, node FROM orgs WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .ok_or_else(|| StoreError::NotFound(format!("organisation {name:?}")))?;
        org_from(&row)
    }

    async fn orgs(&self) -> Result<Vec<Org>> {
        let rows = sqlx::query("SELECT id, name, node FROM orgs ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(org_from).collect()
    }

    async fn user_by_name(&self, name: &str) -> Result<User> {
        let row = sqlx::query(&format!("{USER_SELECT} WHERE u.name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .ok_or_else(|| StoreError::NotFound(format!("user {name:?}")))?;
        user_from(&row)
    }

    async fn user_by_id(&self, id: &UserId) -> Result<User> {
        let mut c = self.warm.get().await.map_err(backend)?;
        let r = sqlx::query(&format!("{USER_SELECT} WHERE u.id = $1"))
            .bind(&id.0)
            .fetch_optional(c.conn())
            .await;
        let row = c
            .check(r)
            .map_err(backend)?
            .ok_or_else(|| StoreError::NotFound(format!("user {}", id.0)))?;
        user_from(&row)
    }

    async fn users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(&format!("{USER_SELECT} ORDER BY u.name"))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(user_from).collect()
    }

    async fn users_of(&self, org: &OrgId) -> Result<Vec<User>> {
        let rows = sqlx::query(&format!(
            "{USER_SELECT} WHERE u.org_id = $1 ORDER BY u.name"
        ))
        .bind(&org.0)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(user_from).collect()
    }

    async fn ids_by_name(&self, orgs: &[String], users: &[String]) -> Result<NameIds> {
        if orgs.is_empty() && users.is_empty() {
            return Ok(NameIds::default());
        }
        let q = sql::names_query(Dialect::Postgres, orgs, users);
        let rows = bind_all(sqlx::query(&q.text), &q.args)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(backend)?,
                    r.try_get(1).map_err(backend)?,
                    r.try_get(2).map_err(backend)?,
                    r.try_get(3).map_err(backend)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(sql::name_ids(rows))
    }
}

#[async_trait]
impl Credentials for PgStore {
    async fn add_token_audited(
        &self,
        token: &TokenRecord,
        audit: Option<NewAuditEntry>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        insert_token_tx(&mut tx, token).await?;
        if let Some(e) = audit {
            append_audit_tx(&mut tx, e, self.clock.now()).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn token(&self, id: &str) -> Result<TokenRecord> {
        let mut c = self.warm.get().await.map_err(backend)?;
        let r = sqlx::query("SELECT id, user_id, secret_hash, revoked FROM tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(c.conn())
            .await;
        let r = c
            .check(r)
            .map_err(backend)?
            .ok_or_else(|| StoreError::NotFound(format!("token {id}")))?;
        token_from(&r, 0)
    }

    async fn token_with_user(&self, id: &str) -> Result<(TokenRecord, User)> {
        let mut c = self.warm.get().await.map_err(backend)?;
        let r = sqlx::query(
            "SELECT u.id, u.name, u.org_id, g.name, u.role, t.id, t.user_id, t.secret_hash, \
             t.revoked FROM tokens t JOIN users u ON u.id = t.user_id JOIN orgs g ON g.id = \
             u.org_id WHERE t.id = $1",
        )
        .bind(id)
        .fetch_optional(c.conn())
        .await;
        let r = c
            .check(r)
            .map_err(backend)?
            .ok_or_else(|| StoreError::NotFound(format!("token {id}")))?;
        let user = user_from(&r)?;
        let token = token_from(&r, 5)?;
        Ok((token, user))
    }

    async fn revoke_token_audited(&self, id: &str, audit: Option<NewAuditEntry>) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let n = sqlx::query("UPDATE tokens SET revoked = 1 WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("token {id}")));
        }
        if let Some(e) = audit {
            append_audit_tx(&mut tx, e, self.clock.now()).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn add_enrolment_audited(
        &self,
        e: &EnrolmentRecord,
        audit: Option<NewAuditEntry>,
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        user_exists(&mut tx, &e.user.0).await?;
        let revoked =
            sqlx::query("UPDATE tokens SET revoked = 1 WHERE user_id = $1 AND revoked = 0")
                .bind(&e.user.0)
                .execute(&mut *tx)
                .await
                .map_err(backend)?
                .rows_affected();
        sqlx::query(
            "INSERT INTO enrolments (id, user_id, secret_hash, issued_by, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&e.id)
        .bind(&e.user.0)
        .bind(&e.secret_hash)
        .bind(&e.issued_by)
        .bind(e.issued_at.micros())
        .bind(e.expires_at.micros())
        .execute(&mut *tx)
        .await
        .map_err(conflict_if_taken(format!("enrolment {}", e.id)))?;
        if let Some(mut a) = audit {
            a.detail = crate::audit_counts(&a.detail, &[("tokens_revoked", revoked)], 0, 0);
            append_audit_tx(&mut tx, a, self.clock.now()).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(revoked)
    }

    async fn enrolment(&self, id: &str) -> Result<EnrolmentRecord> {
        let r = sqlx::query(&format!("{ENROLMENT_SELECT} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .ok_or_else(|| StoreError::NotFound(format!("enrolment {id}")))?;
        enrolment_from(&r)
    }

    async fn redeem_enrolment_audited(
        &self,
        id: &str,
        token: &TokenRecord,
        at: Timestamp,
        from: &str,
        audit: Option<NewAuditEntry>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let n = sqlx::query(
            "UPDATE enrolments SET redeemed_at = $1, redeemed_from = $2 WHERE id = $3 AND \
             user_id = $4 AND redeemed_at IS NULL",
        )
        .bind(at.micros())
        .bind(from)
        .bind(id)
        .bind(&token.user.0)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::Conflict(format!(
                "enrolment {id} was used already"
            )));
        }
        sqlx::query(
            "INSERT INTO tokens (id, user_id, secret_hash, revoked) VALUES ($1, $2, $3, 0)",
        )
        .bind(&token.id)
        .bind(&token.user.0)
        .bind(&token.secret_hash)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if let Some(e) = audit {
            append_audit_tx(&mut tx, e, self.clock.now()).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn enrolments(&self, user: &UserId) -> Result<Vec<EnrolmentRecord>> {
        sqlx::query(&format!(
            "{ENROLMENT_SELECT} WHERE user_id = $1 ORDER BY issued_at, id"
        ))
        .bind(&user.0)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(enrolment_from)
        .collect()
    }

    async fn tokens_with_id_prefix(&self, prefix: &str) -> Result<Vec<TokenRecord>> {
        sqlx::query(
            "SELECT id, user_id, secret_hash, revoked FROM tokens WHERE substr(id, 1, \
             length($1)) = $1 ORDER BY id",
        )
        .bind(prefix)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(|r| token_from(r, 0))
        .collect()
    }

    async fn replace_token(
        &self,
        id: &str,
        old_hash: &str,
        new_id: &str,
        new_hash: &str,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE tokens SET id = $3, secret_hash = $4 WHERE id = $1 AND secret_hash = $2",
        )
        .bind(id)
        .bind(old_hash)
        .bind(new_id)
        .bind(new_hash)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("token {new_id} exists"))
            } else {
                backend(e)
            }
        })?
        .rows_affected();
        if n == 0 {
            let known: Option<i32> = sqlx::query_scalar("SELECT 1 FROM tokens WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
            if known.is_none() {
                return Err(StoreError::NotFound(format!("token {id}")));
            }
        }
        Ok(n > 0)
    }
}

#[async_trait]
impl Administration for PgStore {
    async fn administer(&self, act: AdminAct, by: Option<AuditBy>) -> Result<Administered> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let done = match act {
            AdminAct::AddOrg { name, node } => {
                Administered::Org(insert_org_tx(&mut tx, name, node).await?)
            }
            AdminAct::AddUser {
                id,
                name,
                org,
                role,
                token,
            } => Administered::User(insert_user_tx(&mut tx, id, name, org, role, token).await?),
            AdminAct::AddCollection(nc) => {
                Administered::Collection(insert_collection_tx(&mut tx, nc).await?)
            }
            AdminAct::AddPeer { peer, push } => Administered::Peer(
                peers::insert_peer_tx(&mut tx, peer, push, self.clock.now()).await?,
            ),
            AdminAct::RemovePeer { name } => {
                peers::delete_peer_tx(&mut tx, &name).await?;
                Administered::PeerRemoved(name)
            }
        };
        if let Some(by) = by {
            append_audit_tx(&mut tx, done.audit_entry(by), self.clock.now()).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(done)
    }
}

#[async_trait]
impl Collections for PgStore {
    async fn collections(&self, who: &Reader) -> Result<Vec<CollectionView>> {
        Ok(self
            .load_collections(None)
            .await?
            .into_iter()
            .map(|c| sql::view(c, who))
            .filter(|v| v.can_read || v.can_write)
            .collect())
    }

    async fn all_collections(&self) -> Result<Vec<Collection>> {
        self.load_collections(None).await
    }

    async fn collection(&self, who: &Reader, id: &str) -> Result<CollectionView> {
        self.load_collections(Some(id))
            .await?
            .into_iter()
            .map(|c| sql::view(c, who))
            .find(|v| v.can_read || v.can_write)
            .ok_or_else(|| StoreError::NotFound(format!("collection {id}")))
    }
}

#[async_trait]
impl Objects for PgStore {
    async fn put_objects_audited(
        &self,
        collection: &str,
        objects: Vec<NewObject>,
        audit: Option<NewAuditEntry>,
    ) -> Result<Vec<PutOutcome>> {
        if objects.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // Serialise object writers: sequence numbers commit in order.
        sqlx::query("SELECT last_seq FROM clock WHERE singleton = 1 FOR UPDATE")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let cid: i64 = sqlx::query_scalar("SELECT cid FROM collections WHERE id = $1")
            .bind(collection)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
            .ok_or_else(|| StoreError::NotFound(format!("collection {collection}")))?;
        let ids = sql::batch_ids(&objects);
        let existing: sql::Existing = sqlx::query(
            "SELECT stix_id, version, json FROM objects WHERE collection = $1 AND stix_id = \
             ANY($2)",
        )
        .bind(cid)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<std::result::Result<_, sqlx::Error>>()
        .map_err(backend)?;
        let q = sql::producers_query(Dialect::Postgres, &ids);
        let producers: Vec<sql::ProducerRow> = bind_all(sqlx::query(&q.text), &q.args)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(backend)?;
        let (mut outcomes, new, stored) = sql::plan(&objects, existing, sql::producers(producers));
        let n = sql::count_new(&objects, &new);
        if n > 0 {
            let (last_seq, last_added): (i64, i64) = sqlx::query_as(
                "UPDATE clock SET last_seq = last_seq + $1, last_added = GREATEST(last_added + \
                 1, $2) + $1 - 1 WHERE singleton = 1 RETURNING last_seq, last_added",
            )
            .bind(n)
            .bind(self.clock.now().micros())
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
            let rows = sql::assign(
                &objects,
                &mut outcomes,
                &new,
                last_seq - n + 1,
                last_added - n + 1,
            );
            let mut cols: (
                Vec<i64>,
                Vec<String>,
                Vec<String>,
                Vec<String>,
                Vec<i64>,
                Vec<i64>,
                Vec<String>,
                Vec<String>,
                Vec<i64>,
                Vec<i64>,
                Vec<String>,
            ) = Default::default();
            // origin, via
            let mut provenance: (Vec<Option<String>>, Vec<Option<String>>) = Default::default();
            let mut orgs: (Vec<i64>, Vec<String>) = Default::default();
            let mut users: (Vec<i64>, Vec<String>) = Default::default();
            let mut values: (Vec<i64>, Vec<String>) = Default::default();
            let versioned = sql::supersede_ids(&stored, &rows);
            for r in rows {
                for o in r.orgs {
                    orgs.0.push(r.seq);
                    orgs.1.push(o);
                }
                for u in r.users {
                    users.0.push(r.seq);
                    users.1.push(u);
                }
                for v in r.values {
                    values.0.push(r.seq);
                    values.1.push(v);
                }
                cols.0.push(r.seq);
                cols.1.push(r.stix_id);
                cols.2.push(r.type_);
                cols.3.push(r.spec_version);
                cols.4.push(r.version);
                cols.5.push(r.date_added);
                cols.6.push(r.owner_org);
                cols.7.push(r.author);
                cols.8.push(r.tlp);
                cols.9.push(r.narrowed);
                cols.10.push(r.json);
                provenance.0.push(r.origin);
                provenance.1.push(r.via);
            }
            sqlx::query(
                "INSERT INTO objects (seq, collection, stix_id, type, spec_version, version, \
                 date_added, owner_org, author, tlp, narrowed, json, origin, via) SELECT u.seq, \
                 $1, u.stix_id, u.type, u.spec_version, u.version, u.date_added, u.owner_org, \
                 u.author, u.tlp, u.narrowed, u.json, u.origin, u.via FROM UNNEST($2::bigint[], \
                 $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::text[], \
                 $9::text[], $10::bigint[], $11::bigint[], $12::text[], $13::text[], $14::text[]) \
                 AS u(seq, stix_id, type, spec_version, version, date_added, owner_org, author, \
                 tlp, narrowed, json, origin, via)",
            )
            .bind(cid)
            .bind(cols.0)
            .bind(cols.1)
            .bind(cols.2)
            .bind(cols.3)
            .bind(cols.4)
            .bind(cols.5)
            .bind(cols.6)
            .bind(cols.7)
            .bind(cols.8)
            .bind(cols.9)
            .bind(cols.10)
            .bind(provenance.0)
            .bind(provenance.1)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("an object version is already stored: {e}"))
                } else {
                    backend(e)
                }
            })?;
            for (table, col, (seqs, vals)) in [
                ("object_orgs", "org_id", orgs),
                ("object_users", "user_id", users),
                ("object_values", "value", values),
            ] {
                if seqs.is_empty() {
                    continue;
                }
                sqlx::query(&format!(
                    "INSERT INTO {table} (seq, {col}) SELECT * FROM UNNEST($1::bigint[], \
                     $2::text[])"
                ))
                .bind(seqs)
                .bind(vals)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            }
            if !versioned.is_empty() {
                let q = sql::supersede_query(Dialect::Postgres, cid, &versioned);
                bind_all(sqlx::query(&q.text), &q.args)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
            }
        }
        let outcomes = outcomes
            .into_iter()
            .map(|o| o.ok_or_else(|| StoreError::backend("an object of the batch has no outcome")))
            .collect::<Result<Vec<_>>>()?;
        if let Some(e) = audit {
            append_audit_tx(&mut tx, crate::batch_entry(e, &outcomes), self.clock.now()).await?;
        }
        tx.commit().await.map_err(backend)?;
        self.after_write(n);
        Ok(outcomes)
    }

    async fn objects(&self, who: &Reader, collection: &str, filter: &ObjectFilter) -> Result<Page> {
        let cid = self.cid(collection).await?;
        let q = sql::objects_query(Dialect::Postgres, who, cid, filter);
        Ok(sql::page(self.fetch_objects(&q).await?, filter.limit))
    }

    async fn count_objects(
        &self,
        who: &Reader,
        collection: &str,
        filter: &ObjectFilter,
    ) -> Result<u64> {
        let cid = self.cid(collection).await?;
        let q = sql::count_query(Dialect::Postgres, who, cid, filter);
        let mut c = self.warm.get().await.map_err(backend)?;
        let r = bind_all(sqlx::query(&q.text), &q.args)
            .fetch_one(c.conn())
            .await;
        let n: i64 = c.check(r).map_err(backend)?.try_get(0).map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn object_routes(&self, ids: &[String]) -> Result<Vec<ObjectRoute>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let q = sql::routes_query(Dialect::Postgres, ids);
        bind_all(sqlx::query(&q.text), &q.args)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(|r| {
                Ok(ObjectRoute {
                    id: r.try_get(0).map_err(backend)?,
                    origin: r.try_get(1).map_err(backend)?,
                    via: r.try_get(2).map_err(backend)?,
                })
            })
            .collect()
    }

    async fn delete_object_audited(
        &self,
        who: &Principal,
        rights: Rights,
        collection: &str,
        id: &str,
        versions: &VersionMatch,
        spec_versions: &[String],
        audit: Option<NewAuditEntry>,
    ) -> Result<u64> {
        let cid = self.cid(collection).await?;
        let q = sql::delete_query(
            Dialect::Postgres,
            &who.audience(),
            cid,
            id,
            versions,
            spec_versions,
        );
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // Not concurrently with a batch that may be writing versions of the same object.
        sqlx::query("SELECT last_seq FROM clock WHERE singleton = 1 FOR UPDATE")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let rows: Vec<sql::DeleteRow> = bind_all(sqlx::query(&q.text), &q.args)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(backend)?;
        let seqs = sql::may_delete(who, rights, rows)?;
        if seqs.is_empty() {
            return Ok(0);
        }
        let q = sql::delete_seqs_query(Dialect::Postgres, &seqs);
        let n = bind_all(sqlx::query(&q.text), &q.args)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        let q = sql::supersede_query(Dialect::Postgres, cid, &[id.to_string()]);
        bind_all(sqlx::query(&q.text), &q.args)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if let Some(mut e) = audit {
            e.detail = crate::audit_counts(&e.detail, &[("versions_deleted", n)], 0, 0);
            append_audit_tx(&mut tx, e, self.clock.now()).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(n)
    }

    async fn search(&self, who: &Audience, value: &str, limit: usize) -> Result<Vec<StoredObject>> {
        let q = sql::search_query(Dialect::Postgres, who, value, limit);
        self.fetch_objects(&q).await
    }

    async fn marking_labels(&self, ids: &[String]) -> Result<HashMap<String, Tlp>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let q = sql::marking_query(Dialect::Postgres, ids);
        let rows = bind_all(sqlx::query(&q.text), &q.args)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(backend)?,
                    r.try_get(1).map_err(backend)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(sql::marking_labels(rows))
    }
}

#[async_trait]
impl Statuses for PgStore {
    async fn put_status(&self, status: &StatusRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO statuses (id, owner, request_timestamp, json) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET json = excluded.json",
        )
        .bind(&status.id)
        .bind(&status.owner.0)
        .bind(status.request_timestamp.micros())
        .bind(&status.json)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn status(&self, who: &Reader, id: &str) -> Result<StatusRecord> {
        let q = sql::status_query(Dialect::Postgres, who, id);
        let r = bind_all(sqlx::query(&q.text), &q.args)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .ok_or_else(|| StoreError::NotFound(format!("status {id}")))?;
        Ok(StatusRecord {
            id: r.try_get(0).map_err(backend)?,
            owner: UserId(r.try_get(1).map_err(backend)?),
            request_timestamp: Timestamp::from_micros(r.try_get(2).map_err(backend)?),
            json: r.try_get(3).map_err(backend)?,
        })
    }

    async fn purge_statuses(&self, before: Timestamp) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM statuses WHERE request_timestamp < $1")
                .bind(before.micros())
                .execute(&self.pool)
                .await
                .map_err(backend)?
                .rows_affected(),
        )
    }
}

#[async_trait]
impl Audit for PgStore {
    async fn audit(&self, e: NewAuditEntry) -> Result<AuditEntry> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let entry = append_audit_tx(&mut tx, e, self.clock.now()).await?;
        tx.commit().await.map_err(backend)?;
        Ok(entry)
    }

    async fn audit_head(&self) -> Result<Option<(i64, String)>> {
        sqlx::query_as("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)
    }

    async fn audit_entries(&self, after: i64, limit: usize) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, target, origin, detail, prev_hash, hash FROM audit \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    seq: r.try_get(0).map_err(backend)?,
                    at: r.try_get(1).map_err(backend)?,
                    actor: r.try_get(2).map_err(backend)?,
                    action: r.try_get(3).map_err(backend)?,
                    target: r.try_get(4).map_err(backend)?,
                    origin: r.try_get(5).map_err(backend)?,
                    detail: r.try_get(6).map_err(backend)?,
                    prev_hash: r.try_get(7).map_err(backend)?,
                    hash: r.try_get(8).map_err(backend)?,
                })
            })
            .collect()
    }
}
