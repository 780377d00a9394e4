//! The SQLite backend: one file `kopa.db` in the data directory, in WAL mode.
//!
//! Every connection lives on a thread of its own for the life of the store: one writer (SQLite allows
//! one writer at a time anyway) and a fixed number of readers (`OpenOptions::sqlite_readers`), which
//! take jobs from a queue. The async side sends a job and awaits its answer. Statements are prepared
//! once per connection (`prepare_cached`).
//!
//! Fixed threads bound the node's memory: SQLite allocates with the C library's `malloc`, which gives
//! each thread its own arena, and memory freed in an arena stays with it. When connections ran on
//! tokio's blocking threads (up to 512, kept alive while work arrives), a burst of concurrent reads
//! made dozens of threads and reader connections, and every one of them kept its share of page
//! caches and allocator heaps through the writes that followed: the peak of a node grown to
//! 1,000,000 objects varied from 237 to 438 MiB with how many threads that burst happened to make.
//!
//! `busy_timeout` lets another process (the CLI) write while the server runs. WAL with
//! `synchronous=NORMAL`: a committed transaction survives a crash of the process (kill -9); only a
//! power loss may lose the last commits.

mod peers;

use crate::migrations::{self, Migration};
use crate::prelude::*;
use crate::sql::{self, Arg, Dialect};
use crate::{
    Access, AdminAct, Administered, AuditBy, Collection, CollectionView, EnrolmentRecord, NameIds,
    NewCollection, NewObject, NodeInfo, ObjectFilter, ObjectRoute, Org, Page, PutOutcome, Result,
    StatusRecord, StoreError, StoredObject, TokenRecord, User, VersionMatch,
};
use async_trait::async_trait;
use kopa_core::audit::{entry_hash, AuditEntry, NewAuditEntry, GENESIS};
use kopa_core::permission::Rights;
use kopa_core::{Audience, OrgId, Principal, Reader, Role, SharedClock, Tlp, UserId};
use kopa_stix::Timestamp;
use rusqlite::{
    params, params_from_iter, Connection, OpenFlags, OptionalExtension, TransactionBehavior,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

/// The database file inside the data directory.
pub const DB_FILE: &str = "kopa.db";

/// SQLite's own page cache, in KiB, of the one writer connection (index pages of a big batch stay
/// in it between envelopes).
const WRITER_CACHE_KIB: i64 = 64_000;
/// The page cache of each reader (and of the checkpointer). Each cache grows to its limit on a big
/// collection, so theirs is small: pages they read again come from the operating system's file
/// cache, which all connections share and which the node's own memory does not hold. With 64 MB
/// each, a node grown to 1,000,000 objects by `bench/taxii-vs-peers` peaked at 604 MiB.
const READER_CACHE_KIB: i64 = 4_000;

/// A job for a reader thread, run on its connection.
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;
/// A job for the writer thread.
type WriteJob = Box<dyn FnOnce(&mut Connection) + Send>;

pub(crate) struct SqliteStore {
    /// The queue of the reader threads (they stop when it is dropped).
    readers: mpsc::Sender<ReadJob>,
    /// The queue of the writer thread (it stops when this is dropped, and the checkpointer with it).
    writer: mpsc::Sender<WriteJob>,
    /// The node's clock: `date_added`, audit entries, peers' times.
    clock: SharedClock,
}

/// How long the checkpointer lets writes accumulate before copying them into the database. Random
/// index inserts dirty the same pages in successive batches; a longer pause copies each such page
/// once instead of once per batch (the WAL grows meanwhile: at most a few seconds of writes).
const CHECKPOINT_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

/// Copies committed WAL frames into the database on its own thread and connection, so that
/// writers do not pay for checkpoints (a PASSIVE checkpoint never blocks readers or writers).
fn spawn_checkpointer(path: PathBuf) -> std::sync::mpsc::SyncSender<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
    let spawned = std::thread::Builder::new()
        .name("kopa-sqlite-checkpoint".into())
        .spawn(move || {
            let Ok(conn) = open_conn(&path, false, READER_CACHE_KIB) else {
                return;
            };
            while rx.recv().is_ok() {
                // Let a burst of writes accumulate, then copy them in one go.
                std::thread::sleep(CHECKPOINT_PAUSE);
                while rx.try_recv().is_ok() {}
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!("SQLite checkpoint failed: {e}");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("no SQLite checkpoint thread ({e}); writers will checkpoint");
    }
    tx
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::backend_from(e)
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// Map a unique-key violation to `Conflict("{what} already exists")`, anything else to `Backend`.
fn conflict_if_taken(what: String) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!("{what} already exists"))
        } else {
            backend(e)
        }
    }
}

impl rusqlite::ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match self {
            Arg::Int(i) => ToSqlOutput::Owned(Value::Integer(*i)),
            Arg::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Arg::Texts(_) | Arg::Ints(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    "list parameters are PostgreSQL-only".into(),
                ))
            }
        })
    }
}

fn configure(conn: &Connection, cache_kib: i64) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // A negative cache_size is in KiB.
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    // Checkpoints run on the checkpointer thread; this is only the safety net if it falls behind.
    conn.pragma_update(None, "wal_autocheckpoint", 65_536)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

fn open_conn(path: &Path, create: bool, cache_kib: i64) -> rusqlite::Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    configure(&conn, cache_kib)?;
    Ok(conn)
}

fn table_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    if !table_exists(conn, migrations::TABLE)? {
        return Ok(0);
    }
    conn.query_row(
        &format!(
            "SELECT COALESCE(MAX(version), 0) FROM {}",
            migrations::TABLE
        ),
        [],
        |r| r.get(0),
    )
}

fn migrate(conn: &mut Connection, list: &[Migration], now: Timestamp) -> Result<()> {
    for m in list {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, \
             applied_at INTEGER NOT NULL)",
            migrations::TABLE
        ))
        .map_err(backend)?;
        let current = schema_version(&tx).map_err(backend)?;
        migrations::check_not_newer(current, list)?;
        if m.version <= current {
            continue;
        }
        tx.execute_batch(m.sql).map_err(|e| {
            StoreError::backend_with(format!("migration {} failed: {e}", m.name), e)
        })?;
        tx.execute(
            &format!(
                "INSERT INTO {} (version, name, applied_at) VALUES (?1, ?2, ?3)",
                migrations::TABLE
            ),
            params![m.version, m.name, now.micros()],
        )
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
}

/// Create the data directory `dir` (mode 0700; missing parents get the usual mode) if it is
/// missing, and an empty database file `path` in it with mode 0600, for SQLite to fill. SQLite gives
/// the `-wal` and `-shm` files it makes beside a database the database file's mode.
fn create_private(dir: &Path, path: &Path) -> std::io::Result<()> {
    if !dir.is_dir() {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        match builder.create(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

impl SqliteStore {
    /// Open (or with `create`, create) the database in directory `dir`, with `readers` reader
    /// connections (at least one). Blocking.
    pub(crate) fn open(
        dir: &Path,
        create: bool,
        readers: usize,
        clock: SharedClock,
    ) -> Result<SqliteStore> {
        let shown = dir.display();
        if dir.exists() && !dir.is_dir() {
            return Err(StoreError::Invalid(format!(
                "data directory {shown} is not a directory"
            )));
        }
        let path = dir.join(DB_FILE);
        let missing = || {
            StoreError::Invalid(format!(
                "no Kopa database at {}; run `kopa serve` first or check --data",
                path.display()
            ))
        };
        if !path.exists() {
            if !create {
                return Err(missing());
            }
            create_private(dir, &path).map_err(|e| {
                StoreError::Invalid(format!("cannot create database {}: {e}", path.display()))
            })?;
        }
        let mut writer = open_conn(&path, create, WRITER_CACHE_KIB).map_err(|e| {
            StoreError::Invalid(format!(
                "cannot open database {} (is the data directory writable?): {e}",
                path.display()
            ))
        })?;
        let mode: String = writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(|e| {
                StoreError::Invalid(format!(
                    "cannot use database {} (is it a Kopa database in a writable directory?): {e}",
                    path.display()
                ))
            })?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Invalid(format!(
                "cannot put database {} in WAL mode (got {mode})",
                path.display()
            )));
        }
        let current = schema_version(&writer).map_err(|e| {
            StoreError::Invalid(format!(
                "{} is not a usable Kopa database: {e}",
                path.display()
            ))
        })?;
        if current == 0 && !create {
            return Err(missing());
        }
        migrations::check_not_newer(current, migrations::SQLITE)?;
        migrate(&mut writer, migrations::SQLITE, clock.now())?;
        // The readers are opened here, so that a database they cannot open fails `open`.
        let mut conns = Vec::with_capacity(readers);
        for _ in 0..readers.max(1) {
            conns.push(open_conn(&path, false, READER_CACHE_KIB).map_err(backend)?);
        }
        let checkpoint = spawn_checkpointer(path.clone());
        Ok(SqliteStore {
            writer: spawn_writer(writer, checkpoint)?,
            readers: spawn_readers(conns)?,
            clock,
        })
    }

    /// Run `f` on a reader connection (on its thread) and return its result.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.readers
            .send(Box::new(move |c: &Connection| {
                let _ = tx.send(f(c));
            }))
            .map_err(|_| StoreError::backend("the SQLite reader threads have stopped"))?;
        rx.await
            .map_err(|_| StoreError::backend("store task failed: a read panicked"))?
    }

    /// Run `f` on the writer connection (on its thread) and return its result.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer
            .send(Box::new(move |c: &mut Connection| {
                let _ = tx.send(f(c));
            }))
            .map_err(|_| StoreError::backend("the SQLite writer thread has stopped"))?;
        rx.await
            .map_err(|_| StoreError::backend("store task failed: a write panicked"))?
    }
}

fn thread_error(e: std::io::Error) -> StoreError {
    StoreError::backend_with(format!("cannot start a SQLite connection thread: {e}"), e)
}

/// The writer thread: runs write jobs in order on `conn`, then wakes the checkpointer. A job that
/// panics loses only its own answer (its transaction rolls back as it unwinds).
fn spawn_writer(
    mut conn: Connection,
    checkpoint: mpsc::SyncSender<()>,
) -> Result<mpsc::Sender<WriteJob>> {
    let (tx, rx) = mpsc::channel::<WriteJob>();
    std::thread::Builder::new()
        .name("kopa-sqlite-writer".into())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut conn)));
                // Full channel: a checkpoint is already due.
                let _ = checkpoint.try_send(());
            }
        })
        .map_err(thread_error)?;
    Ok(tx)
}

/// One thread per reader connection, all taking jobs from one queue.
fn spawn_readers(conns: Vec<Connection>) -> Result<mpsc::Sender<ReadJob>> {
    let (tx, rx) = mpsc::channel::<ReadJob>();
    let rx = Arc::new(Mutex::new(rx));
    for (i, conn) in conns.into_iter().enumerate() {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("kopa-sqlite-reader-{i}"))
            .spawn(move || loop {
                // The lock is held only while waiting for a job, not while running it.
                let job = match rx.lock() {
                    Ok(q) => q.recv(),
                    Err(_) => return,
                };
                let Ok(job) = job else { return };
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&conn)));
            })
            .map_err(thread_error)?;
    }
    Ok(tx)
}

/// Add an organisation inside the caller's transaction.
fn insert_org_tx(tx: &rusqlite::Transaction<'_>, name: &str, node: Option<String>) -> Result<Org> {
    let org = Org {
        id: OrgId::new(),
        name: name.to_string(),
        node,
    };
    tx.execute(
        "INSERT INTO orgs (id, name, node) VALUES (?1, ?2, ?3)",
        params![org.id.0, org.name, org.node],
    )
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
fn insert_user_tx(
    tx: &rusqlite::Transaction<'_>,
    id: UserId,
    name: String,
    org: OrgId,
    role: Role,
    token: Option<TokenRecord>,
) -> Result<User> {
    let org_name: String = tx
        .query_row("SELECT name FROM orgs WHERE id = ?1", [&org.0], |r| {
            r.get(0)
        })
        .optional()
        .map_err(backend)?
        .ok_or_else(|| StoreError::NotFound(format!("organisation {}", org.0)))?;
    tx.execute(
        "INSERT INTO users (id, name, org_id, role) VALUES (?1, ?2, ?3, ?4)",
        params![id.0, name, org.0, role.as_str()],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!("user {name:?} already exists"))
        } else {
            backend(e)
        }
    })?;
    if let Some(t) = token {
        insert_token_tx(tx, &t)?;
    }
    Ok(User {
        id,
        name,
        org,
        org_name,
        role,
    })
}

fn insert_token_tx(tx: &rusqlite::Transaction<'_>, t: &TokenRecord) -> Result<()> {
    user_exists(tx, &t.user.0)?;
    tx.execute(
        "INSERT INTO tokens (id, user_id, secret_hash, revoked) VALUES (?1, ?2, ?3, ?4)",
        params![t.id, t.user.0, t.secret_hash, i64::from(t.revoked)],
    )
    .map_err(conflict_if_taken(format!("token {}", t.id)))?;
    Ok(())
}

/// Add a collection inside the caller's transaction.
fn insert_collection_tx(tx: &rusqlite::Transaction<'_>, nc: NewCollection) -> Result<Collection> {
    for org in sql::access_orgs(&nc.read)
        .iter()
        .chain(sql::access_orgs(&nc.write).iter())
    {
        let known: Option<i64> = tx
            .query_row("SELECT 1 FROM orgs WHERE id = ?1", [org], |r| r.get(0))
            .optional()
            .map_err(backend)?;
        if known.is_none() {
            return Err(StoreError::NotFound(format!("organisation {org}")));
        }
    }
    let id = sql::collection_id(nc.id.as_deref())?;
    sql::check_alias(nc.alias.as_deref())?;
    // An id or alias is never another collection's id or alias: a path names either.
    let holder = |name: &str| -> Result<Option<String>> {
        tx.query_row(
            "SELECT id FROM collections WHERE id = ?1 OR alias = ?1 LIMIT 1",
            [name],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)
    };
    if let Some(h) = holder(&id)? {
        return Err(if h == id {
            sql::collection_id_taken(&id)
        } else {
            sql::collection_name_taken("id", &id, &h)
        });
    }
    if let Some(alias) = &nc.alias {
        if let Some(h) = holder(alias)? {
            return Err(sql::collection_name_taken("alias", alias, &h));
        }
    }
    let cid: i64 = tx
        .query_row(
            "INSERT INTO collections (id, title, description, alias, read_all, \
             write_all) VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING cid",
            params![
                id,
                nc.title,
                nc.description,
                nc.alias,
                sql::access_all(&nc.read),
                sql::access_all(&nc.write)
            ],
            |r| r.get(0),
        )
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
    for (table, access) in [
        ("collection_readers", &nc.read),
        ("collection_writers", &nc.write),
    ] {
        for org in sql::access_orgs(access) {
            tx.execute(
                &format!("INSERT INTO {table} (cid, org_id) VALUES (?1, ?2)"),
                params![cid, org],
            )
            .map_err(backend)?;
        }
    }
    Ok(Collection {
        id,
        title: nc.title,
        description: nc.description,
        alias: nc.alias,
        read: normalize_access(nc.read),
        write: normalize_access(nc.write),
    })
}

fn org_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Org> {
    Ok(Org {
        id: OrgId(r.get(0)?),
        name: r.get(1)?,
        node: r.get(2)?,
    })
}

fn immediate(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)
}

const USER_COLUMNS: &str = "u.id, u.name, u.org_id, g.name, u.role";

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn to_user(row: (String, String, String, String, String)) -> Result<User> {
    let role = Role::parse(&row.4)
        .ok_or_else(|| StoreError::backend(format!("unknown role {:?} stored", row.4)))?;
    Ok(User {
        id: UserId(row.0),
        name: row.1,
        org: OrgId(row.2),
        org_name: row.3,
        role,
    })
}

fn object_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredObject> {
    Ok(sql::stored_object(
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn query_objects(conn: &Connection, q: &sql::Sql) -> Result<Vec<StoredObject>> {
    let mut stmt = conn.prepare_cached(&q.text).map_err(backend)?;
    let rows = stmt
        .query_map(params_from_iter(q.args.iter()), object_row)
        .map_err(backend)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
}

/// The internal key of a collection and whether `who` may read it; `None` if unknown.
fn collection_key(conn: &Connection, id: &str, who: &Reader) -> Result<Option<(i64, bool)>> {
    let org = match who {
        Reader::Person(a) => a.org.0.as_str(),
        // No organisation has an empty id: the read list never matches; the policy decides.
        Reader::Peer(_) => "",
    };
    let key: Option<(i64, bool)> = conn
        .prepare_cached(
            "SELECT c.cid, (c.read_all = 1 OR EXISTS (SELECT 1 FROM collection_readers r WHERE \
             r.cid = c.cid AND r.org_id = ?2)) FROM collections c WHERE c.id = ?1",
        )
        .map_err(backend)?
        .query_row(params![id, org], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(backend)?;
    Ok(key.map(|(cid, readable)| (cid, sql::reader_may_read(who, id, readable))))
}

fn load_collections(conn: &Connection, only: Option<&str>) -> Result<Vec<Collection>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT cid, id, title, description, alias, read_all, write_all FROM collections \
             WHERE ?1 IS NULL OR id = ?1 OR alias = ?1 ORDER BY cid",
        )
        .map_err(backend)?;
    type CRow = (
        i64,
        String,
        String,
        Option<String>,
        Option<String>,
        i64,
        i64,
    );
    let rows: Vec<CRow> = stmt
        .query_map([only], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .map_err(backend)?
        .collect::<rusqlite::Result<_>>()
        .map_err(backend)?;
    let lists = |table: &str, cid: i64| -> Result<Vec<String>> {
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT org_id FROM {table} WHERE cid = ?1 ORDER BY org_id"
            ))
            .map_err(backend)?;
        let v = stmt
            .query_map([cid], |r| r.get(0))
            .map_err(backend)?
            .collect::<rusqlite::Result<Vec<String>>>()
            .map_err(backend)?;
        Ok(v)
    };
    let mut out = Vec::with_capacity(rows.len());
    for (cid, id, title, description, alias, read_all, write_all) in rows {
        let read = sql::access_from(read_all == 1, lists("collection_readers", cid)?);
        let write = sql::access_from(write_all == 1, lists("collection_writers", cid)?);
        out.push(Collection {
            id,
            title,
            description,
            alias,
            read,
            write,
        });
    }
    Ok(out)
}

fn put_batch(
    conn: &mut Connection,
    collection: &str,
    objects: &[NewObject],
    audit: Option<NewAuditEntry>,
    now: Timestamp,
) -> Result<Vec<PutOutcome>> {
    let tx = immediate(conn)?;
    let cid: i64 = tx
        .prepare_cached("SELECT cid FROM collections WHERE id = ?1")
        .map_err(backend)?
        .query_row([collection], |r| r.get(0))
        .optional()
        .map_err(backend)?
        .ok_or_else(|| StoreError::NotFound(format!("collection {collection}")))?;
    let ids = sql::batch_ids(objects);
    let ids_json = serde_json::to_string(&ids).map_err(StoreError::backend_from)?;
    let existing: sql::Existing = tx
        .prepare_cached(
            "SELECT stix_id, version, json FROM objects WHERE collection = ?1 AND stix_id IN \
             (SELECT value FROM json_each(?2))",
        )
        .map_err(backend)?
        .query_map(params![cid, ids_json], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(backend)?
        .collect::<rusqlite::Result<_>>()
        .map_err(backend)?;
    let producers = query_rows(&tx, &sql::producers_query(Dialect::Sqlite, &ids), |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    let (mut outcomes, new, stored) = sql::plan(objects, existing, sql::producers(producers));
    let n = sql::count_new(objects, &new);
    if n > 0 {
        let (last_seq, last_added): (i64, i64) = tx
            .prepare_cached(
                "UPDATE clock SET last_seq = last_seq + ?1, last_added = max(last_added + 1, ?2) \
                 + ?1 - 1 WHERE singleton = 1 RETURNING last_seq, last_added",
            )
            .map_err(backend)?
            .query_row(params![n, now.micros()], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(backend)?;
        let rows = sql::assign(
            objects,
            &mut outcomes,
            &new,
            last_seq - n + 1,
            last_added - n + 1,
        );
        let mut ins = tx
            .prepare_cached(
                "INSERT INTO objects (seq, collection, stix_id, type, spec_version, version, \
                 date_added, owner_org, author, tlp, narrowed, json, origin, via) VALUES (?1, ?2, \
                 ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )
            .map_err(backend)?;
        let mut ins_org = tx
            .prepare_cached("INSERT INTO object_orgs (seq, org_id) VALUES (?1, ?2)")
            .map_err(backend)?;
        let mut ins_user = tx
            .prepare_cached("INSERT INTO object_users (seq, user_id) VALUES (?1, ?2)")
            .map_err(backend)?;
        let mut ins_value = tx
            .prepare_cached("INSERT INTO object_values (value, seq) VALUES (?1, ?2)")
            .map_err(backend)?;
        for r in &rows {
            ins.execute(params![
                r.seq,
                cid,
                r.stix_id,
                r.type_,
                r.spec_version,
                r.version,
                r.date_added,
                r.owner_org,
                r.author,
                r.tlp,
                r.narrowed,
                r.json,
                r.origin,
                r.via
            ])
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!(
                        "object {} version {} is already stored",
                        r.stix_id,
                        Timestamp::from_micros(r.version).to_taxii()
                    ))
                } else {
                    backend(e)
                }
            })?;
            for o in &r.orgs {
                ins_org.execute(params![r.seq, o]).map_err(backend)?;
            }
            for u in &r.users {
                ins_user.execute(params![r.seq, u]).map_err(backend)?;
            }
            for v in &r.values {
                ins_value.execute(params![v, r.seq]).map_err(backend)?;
            }
        }
        drop((ins, ins_org, ins_user, ins_value));
        let versioned = sql::supersede_ids(&stored, &rows);
        if !versioned.is_empty() {
            execute(&tx, &sql::supersede_query(Dialect::Sqlite, cid, &versioned))?;
        }
    }
    let outcomes = outcomes
        .into_iter()
        .map(|o| o.ok_or_else(|| StoreError::backend("an object of the batch has no outcome")))
        .collect::<Result<Vec<_>>>()?;
    if let Some(e) = audit {
        append_audit_tx(&tx, crate::batch_entry(e, &outcomes), now)?;
    }
    tx.commit().map_err(backend)?;
    Ok(outcomes)
}

/// Run a query built in `sql` and read each row with `f`.
fn query_rows<T>(
    conn: &Connection,
    q: &sql::Sql,
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(&q.text).map_err(backend)?;
    let rows = stmt
        .query_map(params_from_iter(q.args.iter()), f)
        .map_err(backend)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
}

const ENROLMENT_SELECT: &str = "SELECT id, user_id, secret_hash, issued_by, issued_at, \
     expires_at, redeemed_at, redeemed_from FROM enrolments";

fn enrolment_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EnrolmentRecord> {
    Ok(EnrolmentRecord {
        id: r.get(0)?,
        user: UserId(r.get(1)?),
        secret_hash: r.get(2)?,
        issued_by: r.get(3)?,
        issued_at: Timestamp::from_micros(r.get(4)?),
        expires_at: Timestamp::from_micros(r.get(5)?),
        redeemed_at: r.get::<_, Option<i64>>(6)?.map(Timestamp::from_micros),
        redeemed_from: r.get(7)?,
    })
}

fn execute(conn: &Connection, q: &sql::Sql) -> Result<usize> {
    conn.prepare_cached(&q.text)
        .map_err(backend)?
        .execute(params_from_iter(q.args.iter()))
        .map_err(backend)
}

fn append_audit(conn: &mut Connection, e: NewAuditEntry, now: Timestamp) -> Result<AuditEntry> {
    let tx = immediate(conn)?;
    let entry = append_audit_tx(&tx, e, now)?;
    tx.commit().map_err(backend)?;
    Ok(entry)
}

/// `NotFound` unless user `id` exists (checked inside the caller's transaction).
fn user_exists(tx: &rusqlite::Transaction<'_>, id: &str) -> Result<()> {
    let known: Option<i64> = tx
        .query_row("SELECT 1 FROM users WHERE id = ?1", [id], |r| r.get(0))
        .optional()
        .map_err(backend)?;
    match known {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound(format!("user {id}"))),
    }
}

/// Append an audit entry inside the transaction of the change it records.
fn append_audit_tx(
    tx: &rusqlite::Transaction<'_>,
    e: NewAuditEntry,
    now: Timestamp,
) -> Result<AuditEntry> {
    let last: Option<(i64, String)> = tx
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .map_err(backend)?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(backend)?;
    let (seq, prev_hash) = match last {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_string()),
    };
    let at = now.to_taxii();
    let hash = entry_hash(&prev_hash, seq, &at, &e);
    tx.prepare_cached(
        "INSERT INTO audit (seq, at, actor, action, target, origin, detail, prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .map_err(backend)?
    .execute(params![
        seq, at, e.actor, e.action, e.target, e.origin, e.detail, prev_hash, hash
    ])
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

#[async_trait]
impl NodeStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn clock(&self) -> SharedClock {
        self.clock.clone()
    }

    async fn node(&self) -> Result<Option<NodeInfo>> {
        self.read(|c| {
            c.query_row("SELECT id, name FROM node WHERE singleton = 1", [], |r| {
                Ok(NodeInfo {
                    id: r.get(0)?,
                    name: r.get(1)?,
                })
            })
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn init_node(&self, node: &NodeInfo) -> Result<()> {
        let node = node.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO node (singleton, id, name) VALUES (1, ?1, ?2)",
                params![node.id, node.name],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict("the node is already initialised".into())
                } else {
                    backend(e)
                }
            })?;
            Ok(())
        })
        .await
    }

    async fn node_secret(&self, purpose_name: &str) -> Result<[u8; 32]> {
        let purpose = purpose_name.to_string();
        let known: Option<String> = {
            let purpose = purpose.clone();
            self.read(move |c| {
                c.query_row(
                    "SELECT secret FROM node_secrets WHERE purpose = ?1",
                    [&purpose],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)
            })
            .await?
        };
        let text = match known {
            Some(t) => t,
            // Drawn once: a second process racing this one keeps the first row written.
            None => {
                let now = self.clock.now();
                self.write(move |c| {
                    c.execute(
                        "INSERT INTO node_secrets (purpose, secret, created_at) \
                         VALUES (?1, ?2, ?3) ON CONFLICT (purpose) DO NOTHING",
                        params![purpose, sql::new_secret(), now.micros()],
                    )
                    .map_err(backend)?;
                    c.query_row(
                        "SELECT secret FROM node_secrets WHERE purpose = ?1",
                        [&purpose],
                        |r| r.get(0),
                    )
                    .map_err(backend)
                })
                .await?
            }
        };
        sql::secret_bytes(purpose_name, &text)
    }
}

#[async_trait]
impl Directory for SqliteStore {
    async fn org_by_name(&self, name: &str) -> Result<Org> {
        let name = name.to_string();
        self.read(move |c| {
            c.prepare_cached("SELECT id, name, node FROM orgs WHERE name = ?1")
                .map_err(backend)?
                .query_row([&name], org_row)
                .optional()
                .map_err(backend)?
                .ok_or_else(|| StoreError::NotFound(format!("organisation {name:?}")))
        })
        .await
    }

    async fn orgs(&self) -> Result<Vec<Org>> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached("SELECT id, name, node FROM orgs ORDER BY name")
                .map_err(backend)?;
            let v = stmt
                .query_map([], org_row)
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            Ok(v)
        })
        .await
    }

    async fn user_by_name(&self, name: &str) -> Result<User> {
        let name = name.to_string();
        self.read(move |c| {
            let row = c
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM users u JOIN orgs g ON g.id = u.org_id WHERE \
                     u.name = ?1"
                ))
                .map_err(backend)?
                .query_row([&name], user_row)
                .optional()
                .map_err(backend)?
                .ok_or_else(|| StoreError::NotFound(format!("user {name:?}")))?;
            to_user(row)
        })
        .await
    }

    async fn user_by_id(&self, id: &UserId) -> Result<User> {
        let id = id.clone();
        self.read(move |c| {
            let row = c
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM users u JOIN orgs g ON g.id = u.org_id WHERE \
                     u.id = ?1"
                ))
                .map_err(backend)?
                .query_row([&id.0], user_row)
                .optional()
                .map_err(backend)?
                .ok_or_else(|| StoreError::NotFound(format!("user {}", id.0)))?;
            to_user(row)
        })
        .await
    }

    async fn users(&self) -> Result<Vec<User>> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM users u JOIN orgs g ON g.id = u.org_id ORDER BY \
                     u.name"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map([], user_row)
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            rows.into_iter().map(to_user).collect()
        })
        .await
    }

    async fn users_of(&self, org: &OrgId) -> Result<Vec<User>> {
        let org = org.0.clone();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM users u JOIN orgs g ON g.id = u.org_id WHERE \
                     u.org_id = ?1 ORDER BY u.name"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map([&org], user_row)
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            rows.into_iter().map(to_user).collect()
        })
        .await
    }

    async fn ids_by_name(&self, orgs: &[String], users: &[String]) -> Result<NameIds> {
        if orgs.is_empty() && users.is_empty() {
            return Ok(NameIds::default());
        }
        let q = sql::names_query(Dialect::Sqlite, orgs, users);
        let rows = self
            .read(move |c| {
                let mut stmt = c.prepare_cached(&q.text).map_err(backend)?;
                let rows = stmt
                    .query_map(params_from_iter(q.args.iter()), |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })
                    .map_err(backend)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
            })
            .await?;
        Ok(sql::name_ids(rows))
    }
}

#[async_trait]
impl Credentials for SqliteStore {
    async fn add_token_audited(
        &self,
        token: &TokenRecord,
        audit: Option<NewAuditEntry>,
    ) -> Result<()> {
        let t = token.clone();
        let now = self.clock.now();
        self.write(move |c| {
            let tx = immediate(c)?;
            insert_token_tx(&tx, &t)?;
            if let Some(e) = audit {
                append_audit_tx(&tx, e, now)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn token(&self, id: &str) -> Result<TokenRecord> {
        let id = id.to_string();
        self.read(move |c| {
            c.prepare_cached("SELECT id, user_id, secret_hash, revoked FROM tokens WHERE id = ?1")
                .map_err(backend)?
                .query_row([&id], |r| {
                    Ok(TokenRecord {
                        id: r.get(0)?,
                        user: UserId(r.get(1)?),
                        secret_hash: r.get(2)?,
                        revoked: r.get::<_, i64>(3)? != 0,
                    })
                })
                .optional()
                .map_err(backend)?
                .ok_or_else(|| StoreError::NotFound(format!("token {id}")))
        })
        .await
    }

    async fn revoke_token_audited(&self, id: &str, audit: Option<NewAuditEntry>) -> Result<()> {
        let id = id.to_string();
        let now = self.clock.now();
        self.write(move |c| {
            let tx = immediate(c)?;
            let n = tx
                .execute("UPDATE tokens SET revoked = 1 WHERE id = ?1", [&id])
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("token {id}")));
            }
            if let Some(e) = audit {
                append_audit_tx(&tx, e, now)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn add_enrolment_audited(
        &self,
        e: &EnrolmentRecord,
        audit: Option<NewAuditEntry>,
    ) -> Result<u64> {
        let e = e.clone();
        let now = self.clock.now();
        self.write(move |c| {
            let tx = immediate(c)?;
            user_exists(&tx, &e.user.0)?;
            let revoked = tx
                .execute(
                    "UPDATE tokens SET revoked = 1 WHERE user_id = ?1 AND revoked = 0",
                    [&e.user.0],
                )
                .map_err(backend)?;
            tx.execute(
                "INSERT INTO enrolments (id, user_id, secret_hash, issued_by, issued_at, \
                 expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    e.id,
                    e.user.0,
                    e.secret_hash,
                    e.issued_by,
                    e.issued_at.micros(),
                    e.expires_at.micros()
                ],
            )
            .map_err(conflict_if_taken(format!("enrolment {}", e.id)))?;
            if let Some(mut a) = audit {
                a.detail =
                    crate::audit_counts(&a.detail, &[("tokens_revoked", revoked as u64)], 0, 0);
                append_audit_tx(&tx, a, now)?;
            }
            tx.commit().map_err(backend)?;
            Ok(revoked as u64)
        })
        .await
    }

    async fn enrolment(&self, id: &str) -> Result<EnrolmentRecord> {
        let id = id.to_string();
        self.read(move |c| {
            c.prepare_cached(&format!("{ENROLMENT_SELECT} WHERE id = ?1"))
                .map_err(backend)?
                .query_row([&id], enrolment_row)
                .optional()
                .map_err(backend)?
                .ok_or_else(|| StoreError::NotFound(format!("enrolment {id}")))
        })
        .await
    }

    async fn redeem_enrolment_audited(
        &self,
        id: &str,
        token: &TokenRecord,
        at: Timestamp,
        from: &str,
        audit: Option<NewAuditEntry>,
    ) -> Result<()> {
        let (id, t, from) = (id.to_string(), token.clone(), from.to_string());
        let now = self.clock.now();
        self.write(move |c| {
            let tx = immediate(c)?;
            let n = tx
                .execute(
                    "UPDATE enrolments SET redeemed_at = ?1, redeemed_from = ?2 WHERE id = ?3 AND \
                     user_id = ?4 AND redeemed_at IS NULL",
                    params![at.micros(), from, id, t.user.0],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "enrolment {id} was used already"
                )));
            }
            tx.execute(
                "INSERT INTO tokens (id, user_id, secret_hash, revoked) VALUES (?1, ?2, ?3, 0)",
                params![t.id, t.user.0, t.secret_hash],
            )
            .map_err(backend)?;
            if let Some(e) = audit {
                append_audit_tx(&tx, e, now)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn enrolments(&self, user: &UserId) -> Result<Vec<EnrolmentRecord>> {
        let user = user.0.clone();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "{ENROLMENT_SELECT} WHERE user_id = ?1 ORDER BY issued_at, id"
                ))
                .map_err(backend)?;
            let rows = stmt.query_map([&user], enrolment_row).map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }

    async fn tokens_with_id_prefix(&self, prefix: &str) -> Result<Vec<TokenRecord>> {
        let prefix = prefix.to_string();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT id, user_id, secret_hash, revoked FROM tokens WHERE substr(id, 1, \
                     length(?1)) = ?1 ORDER BY id",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([&prefix], |r| {
                    Ok(TokenRecord {
                        id: r.get(0)?,
                        user: UserId(r.get(1)?),
                        secret_hash: r.get(2)?,
                        revoked: r.get::<_, i64>(3)? != 0,
                    })
                })
                .map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }

    async fn replace_token(
        &self,
        id: &str,
        old_hash: &str,
        new_id: &str,
        new_hash: &str,
    ) -> Result<bool> {
        let args = [id, old_hash, new_id, new_hash].map(str::to_string);
        self.write(move |c| {
            let [id, ..] = &args;
            let n = c
                .execute(
                    "UPDATE tokens SET id = ?3, secret_hash = ?4 WHERE id = ?1 AND secret_hash = ?2",
                    rusqlite::params_from_iter(args.iter()),
                )
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Conflict(format!("token {} exists", args[2]))
                    } else {
                        backend(e)
                    }
                })?;
            if n == 0 {
                let known: i64 = c
                    .query_row("SELECT count(*) FROM tokens WHERE id = ?1", [id], |r| {
                        r.get(0)
                    })
                    .map_err(backend)?;
                if known == 0 {
                    return Err(StoreError::NotFound(format!("token {id}")));
                }
            }
            Ok(n > 0)
        })
        .await
    }
}

#[async_trait]
impl Administration for SqliteStore {
    async fn administer(&self, act: AdminAct, by: Option<AuditBy>) -> Result<Administered> {
        let now = self.clock.now();
        self.write(move |c| {
            let tx = immediate(c)?;
            let done = match act {
                AdminAct::AddOrg { name, node } => {
                    Administered::Org(insert_org_tx(&tx, &name, node)?)
                }
                AdminAct::AddUser {
                    id,
                    name,
                    org,
                    role,
                    token,
                } => Administered::User(insert_user_tx(&tx, id, name, org, role, token)?),
                AdminAct::AddCollection(nc) => {
                    Administered::Collection(insert_collection_tx(&tx, nc)?)
                }
                AdminAct::AddPeer { peer, push } => {
                    Administered::Peer(peers::insert_peer_tx(&tx, peer, push, now)?)
                }
                AdminAct::RemovePeer { name } => {
                    peers::delete_peer_tx(&tx, &name)?;
                    Administered::PeerRemoved(name)
                }
            };
            if let Some(by) = by {
                append_audit_tx(&tx, done.audit_entry(by), now)?;
            }
            tx.commit().map_err(backend)?;
            Ok(done)
        })
        .await
    }
}

#[async_trait]
impl Collections for SqliteStore {
    async fn collections(&self, who: &Reader) -> Result<Vec<CollectionView>> {
        let who = who.clone();
        self.read(move |c| {
            Ok(load_collections(c, None)?
                .into_iter()
                .map(|c| sql::view(c, &who))
                .filter(|v| v.can_read || v.can_write)
                .collect())
        })
        .await
    }

    async fn all_collections(&self) -> Result<Vec<Collection>> {
        self.read(|c| load_collections(c, None)).await
    }

    async fn collection(&self, who: &Reader, id: &str) -> Result<CollectionView> {
        let who = who.clone();
        let id = id.to_string();
        self.read(move |c| {
            load_collections(c, Some(&id))?
                .into_iter()
                .map(|c| sql::view(c, &who))
                .find(|v| v.can_read || v.can_write)
                .ok_or_else(|| StoreError::NotFound(format!("collection {id}")))
        })
        .await
    }
}

#[async_trait]
impl Objects for SqliteStore {
    async fn put_objects_audited(
        &self,
        collection: &str,
        objects: Vec<NewObject>,
        audit: Option<NewAuditEntry>,
    ) -> Result<Vec<PutOutcome>> {
        if objects.is_empty() {
            return Ok(Vec::new());
        }
        let collection = collection.to_string();
        let now = self.clock.now();
        self.write(move |c| put_batch(c, &collection, &objects, audit, now))
            .await
    }

    async fn objects(&self, who: &Reader, collection: &str, filter: &ObjectFilter) -> Result<Page> {
        let who = who.clone();
        let collection = collection.to_string();
        let filter = filter.clone();
        self.read(move |c| {
            let (cid, readable) = collection_key(c, &collection, &who)?
                .ok_or_else(|| StoreError::NotFound(format!("collection {collection}")))?;
            if !readable {
                return Ok(Page {
                    objects: Vec::new(),
                    more: false,
                });
            }
            let q = sql::objects_query(Dialect::Sqlite, &who, cid, &filter);
            Ok(sql::page(query_objects(c, &q)?, filter.limit))
        })
        .await
    }

    async fn count_objects(
        &self,
        who: &Reader,
        collection: &str,
        filter: &ObjectFilter,
    ) -> Result<u64> {
        let who = who.clone();
        let collection = collection.to_string();
        let filter = filter.clone();
        self.read(move |c| {
            let (cid, readable) = collection_key(c, &collection, &who)?
                .ok_or_else(|| StoreError::NotFound(format!("collection {collection}")))?;
            if !readable {
                return Ok(0);
            }
            let q = sql::count_query(Dialect::Sqlite, &who, cid, &filter);
            let n: i64 = c
                .prepare_cached(&q.text)
                .map_err(backend)?
                .query_row(params_from_iter(q.args.iter()), |r| r.get(0))
                .map_err(backend)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn object_routes(&self, ids: &[String]) -> Result<Vec<ObjectRoute>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let q = sql::routes_query(Dialect::Sqlite, ids);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&q.text).map_err(backend)?;
            let rows = stmt
                .query_map(params_from_iter(q.args.iter()), |r| {
                    Ok(ObjectRoute {
                        id: r.get(0)?,
                        origin: r.get(1)?,
                        via: r.get(2)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
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
        let who = who.clone();
        let collection = collection.to_string();
        let id = id.to_string();
        let versions = versions.clone();
        let spec_versions = spec_versions.to_vec();
        let now = self.clock.now();
        self.write(move |c| {
            let tx = immediate(c)?;
            let (cid, _) = collection_key(&tx, &collection, &who.reader())?
                .ok_or_else(|| StoreError::NotFound(format!("collection {collection}")))?;
            let q = sql::delete_query(
                Dialect::Sqlite,
                &who.audience(),
                cid,
                &id,
                &versions,
                &spec_versions,
            );
            let rows = query_rows(&tx, &q, |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            let seqs = sql::may_delete(&who, rights, rows)?;
            if seqs.is_empty() {
                return Ok(0);
            }
            let n = execute(&tx, &sql::delete_seqs_query(Dialect::Sqlite, &seqs))?;
            let ids = [id];
            execute(&tx, &sql::supersede_query(Dialect::Sqlite, cid, &ids))?;
            if let Some(mut e) = audit {
                e.detail = crate::audit_counts(&e.detail, &[("versions_deleted", n as u64)], 0, 0);
                append_audit_tx(&tx, e, now)?;
            }
            tx.commit().map_err(backend)?;
            Ok(n as u64)
        })
        .await
    }

    async fn search(&self, who: &Audience, value: &str, limit: usize) -> Result<Vec<StoredObject>> {
        let q = sql::search_query(Dialect::Sqlite, who, value, limit);
        self.read(move |c| query_objects(c, &q)).await
    }

    async fn marking_labels(&self, ids: &[String]) -> Result<HashMap<String, Tlp>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let q = sql::marking_query(Dialect::Sqlite, ids);
        let rows = self
            .read(move |c| {
                let mut stmt = c.prepare_cached(&q.text).map_err(backend)?;
                let rows = stmt
                    .query_map(params_from_iter(q.args.iter()), |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .map_err(backend)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
            })
            .await?;
        Ok(sql::marking_labels(rows))
    }
}

#[async_trait]
impl Statuses for SqliteStore {
    async fn put_status(&self, status: &StatusRecord) -> Result<()> {
        let s = status.clone();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO statuses (id, owner, request_timestamp, json) VALUES (?1, ?2, ?3, \
                 ?4) ON CONFLICT (id) DO UPDATE SET json = excluded.json",
            )
            .map_err(backend)?
            .execute(params![
                s.id,
                s.owner.0,
                s.request_timestamp.micros(),
                s.json
            ])
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn status(&self, who: &Reader, id: &str) -> Result<StatusRecord> {
        let q = sql::status_query(Dialect::Sqlite, who, id);
        let id = id.to_string();
        self.read(move |c| {
            query_rows(c, &q, |r| {
                Ok(StatusRecord {
                    id: r.get(0)?,
                    owner: UserId(r.get(1)?),
                    request_timestamp: Timestamp::from_micros(r.get(2)?),
                    json: r.get(3)?,
                })
            })?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::NotFound(format!("status {id}")))
        })
        .await
    }

    async fn purge_statuses(&self, before: Timestamp) -> Result<u64> {
        self.write(move |c| {
            let n = c
                .execute(
                    "DELETE FROM statuses WHERE request_timestamp < ?1",
                    [before.micros()],
                )
                .map_err(backend)?;
            Ok(n as u64)
        })
        .await
    }
}

#[async_trait]
impl Audit for SqliteStore {
    async fn audit(&self, entry: NewAuditEntry) -> Result<AuditEntry> {
        let now = self.clock.now();
        self.write(move |c| append_audit(c, entry, now)).await
    }

    async fn audit_head(&self) -> Result<Option<(i64, String)>> {
        self.read(|c| {
            c.prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
                .map_err(backend)?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn audit_entries(&self, after: i64, limit: usize) -> Result<Vec<AuditEntry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT seq, at, actor, action, target, origin, detail, prev_hash, hash FROM \
                     audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )
                .map_err(backend)?;
            let v = stmt
                .query_map(params![after, limit], |r| {
                    Ok(AuditEntry {
                        seq: r.get(0)?,
                        at: r.get(1)?,
                        actor: r.get(2)?,
                        action: r.get(3)?,
                        target: r.get(4)?,
                        origin: r.get(5)?,
                        detail: r.get(6)?,
                        prev_hash: r.get(7)?,
                        hash: r.get(8)?,
                    })
                })
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            Ok(v)
        })
        .await
    }
}

/// Orgs lists as stored (sorted, deduplicated).
pub(crate) fn normalize_access(a: Access) -> Access {
    match a {
        Access::All => Access::All,
        Access::Orgs(_) => sql::access_from(false, sql::access_orgs(&a)),
    }
}
