//! PostgreSQL databases for tests of the Kopa crates: each test makes its own, randomly named
//! database on the server named by `KOPA_TEST_PG_URL` and drops it afterwards, so tests run in
//! parallel. When the variable is unset or empty, PostgreSQL tests are skipped with a message.

/// The environment variable naming the PostgreSQL server tests use (an admin URL).
pub const PG_URL_VAR: &str = "KOPA_TEST_PG_URL";

/// The admin URL from the environment, or `None` (with a message) when PostgreSQL tests are off.
pub fn pg_admin_url() -> Option<String> {
    match std::env::var(PG_URL_VAR) {
        Ok(u) if !u.trim().is_empty() => Some(u.trim().to_string()),
        _ => {
            println!("skipping PostgreSQL: {PG_URL_VAR} is not set");
            None
        }
    }
}

/// `url` with its database name replaced by `db` (query parameters kept).
pub fn with_database(url: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let mut out = format!("{scheme}://{authority}/{db}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A fresh PostgreSQL database for one test; drop it with [`PgDb::drop_db`].
#[derive(Debug, Clone)]
pub struct PgDb {
    pub admin_url: String,
    pub name: String,
    /// The URL of the new database.
    pub url: String,
}

impl PgDb {
    /// A new database named `<prefix>_<random>`, or `None` when PostgreSQL tests are off. Panics
    /// (failing the test) when the server named by the environment cannot be used.
    pub async fn create(prefix: &str) -> Option<PgDb> {
        Some(Self::create_on(&pg_admin_url()?, prefix).await)
    }

    /// A new database named `<prefix>_<random>` on the server of `admin_url` (an account that may
    /// create databases). Panics when the server cannot be used.
    pub async fn create_on(admin_url: &str, prefix: &str) -> PgDb {
        use sqlx::Connection;
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the PostgreSQL server: {e}"));
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        PgDb {
            url: with_database(admin_url, &name),
            admin_url: admin_url.to_string(),
            name,
        }
    }

    /// Drop the database (closing what still uses it); a failure is reported on stderr.
    pub async fn drop_db(&self) {
        use sqlx::Connection;
        let dropped = match sqlx::PgConnection::connect(&self.admin_url).await {
            Ok(mut conn) => {
                let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
                sqlx::raw_sql(&drop).execute(&mut conn).await.map(|_| ())
            }
            Err(e) => Err(e),
        };
        if let Err(e) = dropped {
            eprintln!("could not drop database {}: {e}", self.name);
        }
    }
}

/// The opening of a script that builds a database at schema `version` with the shipped migration
/// files (`migrations`, SQLite's or PostgreSQL's; `int` the dialect's integer type), for tests of
/// upgrades from that version. The caller appends the rows the old schema holds.
pub fn schema_script(
    migrations: &[crate::migrations::Migration],
    version: usize,
    int: &str,
) -> String {
    let mut sql = format!(
        "CREATE TABLE kopa_schema_migrations (version {int} PRIMARY KEY, name TEXT NOT NULL, \
         applied_at {int} NOT NULL);\n"
    );
    for m in &migrations[..version] {
        sql.push_str(m.sql);
        sql.push_str(&format!(
            "\nINSERT INTO kopa_schema_migrations (version, name, applied_at) VALUES ({}, '{}', 0);\n",
            m.version, m.name
        ));
    }
    sql
}

/// The SQLite database of data directory `data`, opened as an attacker holding the file would:
/// with the audit log's guarding triggers dropped, so that its rows can be changed or removed.
pub fn open_sqlite_for_tampering(data: &std::path::Path) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(data.join(crate::DB_FILE)).expect("open the database");
    let triggers: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit'")
        .and_then(|mut st| {
            st.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .expect("list the audit triggers");
    for t in triggers {
        db.execute_batch(&format!("DROP TRIGGER \"{t}\""))
            .expect("drop an audit trigger");
    }
    db
}
