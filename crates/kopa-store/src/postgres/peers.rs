//! [`PeerStore`] on PostgreSQL.

use super::{backend, is_unique_violation, PgStore};
use crate::peers::{NewPeer, PeerRecord, PeerStore};
use crate::{AdminAct, Administration, Result, StoreError};
use async_trait::async_trait;
use kopa_stix::Timestamp;
use sqlx::postgres::PgRow;
use sqlx::Row;

const COLUMNS: &str = "name, node_id, url, public_key, token, policy, added_at, last_sync_at, \
                       last_error, last_error_at, error_count, push, status";

fn row(r: &PgRow) -> Result<PeerRecord> {
    let get = |e: sqlx::Error| backend(e);
    Ok(PeerRecord {
        peer: NewPeer {
            name: r.try_get(0).map_err(get)?,
            node_id: r.try_get(1).map_err(get)?,
            url: r.try_get(2).map_err(get)?,
            public_key: r.try_get(3).map_err(get)?,
            token: r.try_get(4).map_err(get)?,
            policy: r.try_get(5).map_err(get)?,
        },
        added_at: Timestamp::from_micros(r.try_get(6).map_err(get)?),
        last_sync_at: r
            .try_get::<Option<i64>, _>(7)
            .map_err(get)?
            .map(Timestamp::from_micros),
        last_error: r.try_get(8).map_err(get)?,
        last_error_at: r
            .try_get::<Option<i64>, _>(9)
            .map_err(get)?
            .map(Timestamp::from_micros),
        error_count: r.try_get(10).map_err(get)?,
        push: r.try_get::<i64, _>(11).map_err(get)? != 0,
        status: r
            .try_get::<Option<String>, _>(12)
            .map_err(get)?
            .map(|t| crate::peers::parse_status(&t)),
    })
}

fn unknown(name: &str) -> StoreError {
    StoreError::NotFound(format!("peer {name:?}"))
}

/// An update of one peer's row: `NotFound` when it touched none.
fn one_peer(rows: u64, name: &str) -> Result<()> {
    if rows == 0 {
        return Err(unknown(name));
    }
    Ok(())
}

/// Declare a peer inside the caller's transaction.
pub(super) async fn insert_peer_tx(
    tx: &mut sqlx::PgConnection,
    p: NewPeer,
    push: bool,
    now: Timestamp,
) -> Result<PeerRecord> {
    sqlx::query(
        "INSERT INTO peers (name, node_id, url, public_key, token, policy, added_at, push) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&p.name)
    .bind(&p.node_id)
    .bind(&p.url)
    .bind(&p.public_key)
    .bind(&p.token)
    .bind(&p.policy)
    .bind(now.micros())
    .bind(i64::from(push))
    .execute(&mut *tx)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!(
                "a peer named {:?} or with node id {} is already declared",
                p.name, p.node_id
            ))
        } else {
            backend(e)
        }
    })?;
    let r = sqlx::query(&format!("SELECT {COLUMNS} FROM peers WHERE name = $1"))
        .bind(&p.name)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
    row(&r)
}

/// Remove a peer and its cursors inside the caller's transaction.
pub(super) async fn delete_peer_tx(tx: &mut sqlx::PgConnection, name: &str) -> Result<()> {
    sqlx::query("DELETE FROM peer_cursors WHERE peer = $1")
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let n = sqlx::query("DELETE FROM peers WHERE name = $1")
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
    one_peer(n, name)
}

#[async_trait]
impl PeerStore for PgStore {
    async fn add_peer(&self, peer: &NewPeer) -> Result<PeerRecord> {
        let act = AdminAct::AddPeer {
            peer: peer.clone(),
            push: false,
        };
        self.administer(act, None).await?.peer()
    }

    async fn peers(&self) -> Result<Vec<PeerRecord>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM peers ORDER BY name"))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(row).collect()
    }

    async fn peer(&self, name: &str) -> Result<PeerRecord> {
        let r = sqlx::query(&format!("SELECT {COLUMNS} FROM peers WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .ok_or_else(|| unknown(name))?;
        row(&r)
    }

    async fn remove_peer(&self, name: &str) -> Result<()> {
        let act = AdminAct::RemovePeer { name: name.into() };
        self.administer(act, None).await.map(drop)
    }

    async fn set_peer_cursor(&self, peer: &str, collection: &str, cursor: &str) -> Result<()> {
        let n = sqlx::query(
            "INSERT INTO peer_cursors (peer, collection, cursor, updated_at) \
             SELECT name, $2, $3, $4 FROM peers WHERE name = $1 \
             ON CONFLICT (peer, collection) DO UPDATE SET cursor = excluded.cursor, \
             updated_at = excluded.updated_at",
        )
        .bind(peer)
        .bind(collection)
        .bind(cursor)
        .bind(self.clock.now().micros())
        .execute(&self.pool)
        .await
        .map_err(backend)?
        .rows_affected();
        if n == 0 {
            return Err(unknown(peer));
        }
        Ok(())
    }

    async fn peer_cursors(&self, peer: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT collection, cursor FROM peer_cursors WHERE peer = $1 ORDER BY collection",
        )
        .bind(peer)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(backend)?,
                    r.try_get(1).map_err(backend)?,
                ))
            })
            .collect()
    }

    async fn record_peer_sync(&self, peer: &str, at: Timestamp, error: Option<&str>) -> Result<()> {
        let q = match error {
            None => sqlx::query(
                "UPDATE peers SET last_sync_at = $2, last_error = NULL, last_error_at = NULL \
                 WHERE name = $1",
            )
            .bind(peer)
            .bind(at.micros()),
            Some(e) => sqlx::query(
                "UPDATE peers SET last_error = $3, last_error_at = $2, \
                 error_count = error_count + 1 WHERE name = $1",
            )
            .bind(peer)
            .bind(at.micros())
            .bind(e),
        };
        let n = q
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected();
        if n == 0 {
            return Err(unknown(peer));
        }
        Ok(())
    }

    async fn set_peer_status(&self, peer: &str, status: &serde_json::Value) -> Result<()> {
        let n = sqlx::query("UPDATE peers SET status = $2 WHERE name = $1")
            .bind(peer)
            .bind(status.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected();
        one_peer(n, peer)
    }

    async fn set_peer_push(&self, peer: &str, push: bool) -> Result<()> {
        let n = sqlx::query("UPDATE peers SET push = $2 WHERE name = $1")
            .bind(peer)
            .bind(i64::from(push))
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected();
        one_peer(n, peer)
    }
}
