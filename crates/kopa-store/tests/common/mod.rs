//! Test harness: runs one generic test body against a fresh SQLite store (temporary directory) and,
//! when `KOPA_TEST_PG_URL` is set, against a fresh PostgreSQL database created for the test and
//! dropped after it.

#![allow(dead_code)]

use kopa_core::{Audience, OrgId, Stewardship, Tlp, UserId};
use kopa_stix::Timestamp;
use kopa_store::{NewObject, ObjectFilter, Store, VersionMatch};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A store under test and a way to reach its database behind its back (to tamper with it).
pub struct Harness {
    pub store: Arc<dyn Store>,
    pub raw: Raw,
}

pub enum Raw {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Harness {
    /// Run SQL statements directly on the database.
    pub async fn exec(&self, sql: &str) {
        match &self.raw {
            Raw::Sqlite(dir) => {
                let conn = rusqlite::Connection::open(dir.join(kopa_store::DB_FILE)).unwrap();
                conn.execute_batch(sql).unwrap();
            }
            Raw::Postgres(url) => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
            }
        }
    }

    /// The location string `kopa_store::open` takes.
    pub fn location(&self) -> String {
        match &self.raw {
            Raw::Sqlite(dir) => dir.display().to_string(),
            Raw::Postgres(url) => url.clone(),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.raw, Raw::Postgres(_))
    }
}

/// Polls a future, turning a panic into an error so that clean-up still runs.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let f = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| f.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

/// Await `f`, turning a panic into an error (so that the caller can clean up, then resume it).
pub async fn catch_panic<F: Future>(f: F) -> std::thread::Result<F::Output> {
    CatchUnwind(Box::pin(f)).await
}

/// Run `body` against a new SQLite store.
pub async fn with_sqlite<F, Fut>(body: F)
where
    F: FnOnce(Arc<Harness>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let store = kopa_store::open(path.to_str().unwrap(), true)
        .await
        .unwrap();
    assert_eq!(store.backend(), "sqlite");
    let h = Arc::new(Harness {
        store,
        raw: Raw::Sqlite(path),
    });
    let result = CatchUnwind(Box::pin(body(h))).await;
    drop(dir);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[allow(unused_imports)]
pub use kopa_store::testing::{pg_admin_url, with_database, PgDb};

/// Run `body` against a new PostgreSQL store (skipped when `KOPA_TEST_PG_URL` is empty or unset).
pub async fn with_postgres<F, Fut>(body: F)
where
    F: FnOnce(Arc<Harness>) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = PgDb::create("kopa_test").await else {
        return;
    };
    let url = db.url.clone();
    let result = match kopa_store::open(&url, true).await {
        Ok(store) => {
            assert_eq!(store.backend(), "postgres");
            let h = Arc::new(Harness {
                store,
                raw: Raw::Postgres(url),
            });
            CatchUnwind(Box::pin(body(h))).await
        }
        Err(e) => {
            db.drop_db().await;
            panic!("cannot open the PostgreSQL test database: {e}");
        }
    };
    db.drop_db().await;
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// Generate a `#[tokio::test]` per backend for each named generic test body.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    $crate::common::with_sqlite(super::$name).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    $crate::common::with_postgres(super::$name).await;
                }
            )*
        }
    };
}

pub fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// A stewardship with the given owner, author and label; not narrowed.
pub fn steward(owner: &OrgId, author: &UserId, tlp: Tlp) -> Stewardship {
    Stewardship {
        owner_org: owner.clone(),
        author: author.clone(),
        tlp,
        orgs: Vec::new(),
        users: Vec::new(),
        defaulted: false,
    }
}

/// An indicator version with a given id and `modified` time, its JSON text built from them and
/// `note` (so that two calls with the same arguments give byte-identical JSON).
pub fn indicator(id: &str, modified: &str, note: &str, s: &Stewardship) -> NewObject {
    typed("indicator", id, Some(modified), note, s)
}

pub fn typed(
    type_: &str,
    id: &str,
    modified: Option<&str>,
    note: &str,
    s: &Stewardship,
) -> NewObject {
    let mut json = serde_json::json!({
        "type": type_,
        "spec_version": "2.1",
        "id": id,
        "note": note,
    });
    if let Some(m) = modified {
        json["created"] = "2020-01-01T00:00:00.000Z".into();
        json["modified"] = m.into();
    }
    NewObject {
        id: id.to_string(),
        type_: type_.to_string(),
        spec_version: "2.1".to_string(),
        version: modified.map(ts),
        json: json.to_string(),
        steward: s.clone(),
        values: Vec::new(),
        origin: None,
        via: None,
    }
}

/// A person of organisation `org` with role `role` (names are the ids).
pub fn principal(org: &OrgId, user: &UserId, role: kopa_core::Role) -> kopa_core::Principal {
    kopa_core::Principal {
        user: user.clone(),
        user_name: user.0.clone(),
        org: org.clone(),
        org_name: org.0.clone(),
        role,
    }
}

/// Read and write access to a collection.
pub const RW: kopa_core::permission::Rights = kopa_core::permission::Rights {
    can_read: true,
    can_write: true,
};

pub fn audience(org: &OrgId, user: &UserId) -> Audience {
    Audience {
        org: org.clone(),
        user: user.clone(),
    }
}

/// A read of up to `limit` objects per page with `versions` and no other filter.
pub fn object_filter(limit: usize, versions: VersionMatch) -> ObjectFilter {
    ObjectFilter {
        added_after: None,
        after_seq: None,
        limit,
        ids: Vec::new(),
        types: Vec::new(),
        versions,
        spec_versions: Vec::new(),
    }
}

/// A STIX-like id of the given type from a number.
pub fn sid(type_: &str, n: u64) -> String {
    format!("{type_}--00000000-0000-4000-8000-{n:012}")
}

/// A fresh SQLite data directory whose database was built by `script` (an old schema and its rows,
/// for upgrade tests).
pub fn sqlite_from_script(script: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join(kopa_store::DB_FILE)).unwrap();
    conn.execute_batch(script).unwrap();
    dir
}

/// Runs `check` with the URL of a fresh PostgreSQL database built by `script`, and drops the
/// database afterwards, also when the check fails. Nothing when PostgreSQL tests are off.
pub async fn on_postgres_from_script<F, Fut>(script: &str, check: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    use sqlx::Connection;
    let Some(db) = kopa_store::testing::PgDb::create("kopa_test").await else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql(script).execute(&mut conn).await.unwrap();
    drop(conn);
    let result = catch_panic(check(db.url.clone())).await;
    db.drop_db().await;
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
