//! The schema migrations of both backends, embedded in the binary.
//!
//! Each backend has its own directory (`migrations/sqlite`, `migrations/postgres`) holding files of
//! the **same names**; a test fails when they drift. Migrations apply forward only, each in one
//! transaction together with the bump of the recorded version; a database whose version is newer
//! than this binary knows is refused.

/// One schema migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// 1, 2, … in order.
    pub version: i64,
    /// The file name without `.sql`, e.g. `0001_init`.
    pub name: &'static str,
    pub sql: &'static str,
}

/// SQLite migrations, in order.
pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_federation",
        sql: include_str!("../migrations/sqlite/0002_federation.sql"),
    },
    Migration {
        version: 3,
        name: "0003_federation_sync",
        sql: include_str!("../migrations/sqlite/0003_federation_sync.sql"),
    },
    Migration {
        version: 4,
        name: "0004_superseded",
        sql: include_str!("../migrations/sqlite/0004_superseded.sql"),
    },
    Migration {
        version: 5,
        name: "0005_trust",
        sql: include_str!("../migrations/sqlite/0005_trust.sql"),
    },
    Migration {
        version: 6,
        name: "0006_marking_definitions",
        sql: include_str!("../migrations/sqlite/0006_marking_definitions.sql"),
    },
    Migration {
        version: 7,
        name: "0007_node_secrets",
        sql: include_str!("../migrations/sqlite/0007_node_secrets.sql"),
    },
];

/// PostgreSQL migrations, in order.
pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init",
        sql: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_federation",
        sql: include_str!("../migrations/postgres/0002_federation.sql"),
    },
    Migration {
        version: 3,
        name: "0003_federation_sync",
        sql: include_str!("../migrations/postgres/0003_federation_sync.sql"),
    },
    Migration {
        version: 4,
        name: "0004_superseded",
        sql: include_str!("../migrations/postgres/0004_superseded.sql"),
    },
    Migration {
        version: 5,
        name: "0005_trust",
        sql: include_str!("../migrations/postgres/0005_trust.sql"),
    },
    Migration {
        version: 6,
        name: "0006_marking_definitions",
        sql: include_str!("../migrations/postgres/0006_marking_definitions.sql"),
    },
    Migration {
        version: 7,
        name: "0007_node_secrets",
        sql: include_str!("../migrations/postgres/0007_node_secrets.sql"),
    },
];

/// The table that records applied migrations (created before the first migration).
pub(crate) const TABLE: &str = "kopa_schema_migrations";

/// The newest version this binary knows.
pub(crate) fn latest(list: &[Migration]) -> i64 {
    list.last().map_or(0, |m| m.version)
}

/// Refuse a database newer than this binary.
pub(crate) fn check_not_newer(current: i64, list: &[Migration]) -> crate::Result<()> {
    let known = latest(list);
    if current > known {
        return Err(crate::StoreError::Invalid(format!(
            "the database schema is at version {current}, newer than this Kopa knows ({known}); \
             upgrade Kopa to open it"
        )));
    }
    Ok(())
}
