//! [`PeerStore`] on SQLite.

use super::{backend, immediate, is_unique_violation, SqliteStore};
use crate::peers::{NewPeer, PeerRecord, PeerStore};
use crate::{AdminAct, Administration, Result, StoreError};
use async_trait::async_trait;
use kopa_stix::Timestamp;
use rusqlite::{params, OptionalExtension};

const COLUMNS: &str = "name, node_id, url, public_key, token, policy, added_at, last_sync_at, \
                       last_error, last_error_at, error_count, push, status";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PeerRecord> {
    Ok(PeerRecord {
        peer: NewPeer {
            name: r.get(0)?,
            node_id: r.get(1)?,
            url: r.get(2)?,
            public_key: r.get(3)?,
            token: r.get(4)?,
            policy: r.get(5)?,
        },
        added_at: Timestamp::from_micros(r.get(6)?),
        last_sync_at: r.get::<_, Option<i64>>(7)?.map(Timestamp::from_micros),
        last_error: r.get(8)?,
        last_error_at: r.get::<_, Option<i64>>(9)?.map(Timestamp::from_micros),
        error_count: r.get(10)?,
        push: r.get::<_, i64>(11)? != 0,
        status: r
            .get::<_, Option<String>>(12)?
            .map(|t| crate::peers::parse_status(&t)),
    })
}

fn unknown(name: &str) -> StoreError {
    StoreError::NotFound(format!("peer {name:?}"))
}

/// Declare a peer inside the caller's transaction.
pub(super) fn insert_peer_tx(
    tx: &rusqlite::Transaction<'_>,
    p: NewPeer,
    push: bool,
    now: Timestamp,
) -> Result<PeerRecord> {
    tx.execute(
        "INSERT INTO peers (name, node_id, url, public_key, token, policy, added_at, push) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            p.name,
            p.node_id,
            p.url,
            p.public_key,
            p.token,
            p.policy,
            now.micros(),
            i64::from(push)
        ],
    )
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
    tx.prepare_cached(&format!("SELECT {COLUMNS} FROM peers WHERE name = ?1"))
        .map_err(backend)?
        .query_row([&p.name], row)
        .map_err(backend)
}

/// Remove a peer and its cursors inside the caller's transaction.
pub(super) fn delete_peer_tx(tx: &rusqlite::Transaction<'_>, name: &str) -> Result<()> {
    tx.execute("DELETE FROM peer_cursors WHERE peer = ?1", [name])
        .map_err(backend)?;
    let n = tx
        .execute("DELETE FROM peers WHERE name = ?1", [name])
        .map_err(backend)?;
    if n == 0 {
        return Err(unknown(name));
    }
    Ok(())
}

#[async_trait]
impl PeerStore for SqliteStore {
    async fn add_peer(&self, peer: &NewPeer) -> Result<PeerRecord> {
        let act = AdminAct::AddPeer {
            peer: peer.clone(),
            push: false,
        };
        self.administer(act, None).await?.peer()
    }

    async fn peers(&self) -> Result<Vec<PeerRecord>> {
        self.read(|c| {
            let mut st = c
                .prepare_cached(&format!("SELECT {COLUMNS} FROM peers ORDER BY name"))
                .map_err(backend)?;
            let rows = st.query_map([], row).map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }

    async fn peer(&self, name: &str) -> Result<PeerRecord> {
        let name = name.to_string();
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {COLUMNS} FROM peers WHERE name = ?1"))
                .map_err(backend)?
                .query_row([&name], row)
                .optional()
                .map_err(backend)?
                .ok_or_else(|| unknown(&name))
        })
        .await
    }

    async fn remove_peer(&self, name: &str) -> Result<()> {
        let act = AdminAct::RemovePeer { name: name.into() };
        self.administer(act, None).await.map(drop)
    }

    async fn set_peer_cursor(&self, peer: &str, collection: &str, cursor: &str) -> Result<()> {
        let (peer, collection, cursor) =
            (peer.to_string(), collection.to_string(), cursor.to_string());
        let now = self.clock.now().micros();
        self.write(move |c| {
            let tx = immediate(c)?;
            let known: Option<i64> = tx
                .query_row("SELECT 1 FROM peers WHERE name = ?1", [&peer], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            if known.is_none() {
                return Err(unknown(&peer));
            }
            tx.execute(
                "INSERT INTO peer_cursors (peer, collection, cursor, updated_at) \
                 VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (peer, collection) DO UPDATE SET cursor = excluded.cursor, \
                 updated_at = excluded.updated_at",
                params![peer, collection, cursor, now],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn peer_cursors(&self, peer: &str) -> Result<Vec<(String, String)>> {
        let peer = peer.to_string();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT collection, cursor FROM peer_cursors WHERE peer = ?1 ORDER BY collection",
                )
                .map_err(backend)?;
            let rows = st
                .query_map([&peer], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }

    async fn record_peer_sync(&self, peer: &str, at: Timestamp, error: Option<&str>) -> Result<()> {
        let peer = peer.to_string();
        let error = error.map(str::to_string);
        self.write(move |c| {
            let n = match &error {
                None => c.execute(
                    "UPDATE peers SET last_sync_at = ?2, last_error = NULL, last_error_at = NULL \
                     WHERE name = ?1",
                    params![peer, at.micros()],
                ),
                Some(e) => c.execute(
                    "UPDATE peers SET last_error = ?2, last_error_at = ?3, \
                     error_count = error_count + 1 WHERE name = ?1",
                    params![peer, e, at.micros()],
                ),
            }
            .map_err(backend)?;
            if n == 0 {
                return Err(unknown(&peer));
            }
            Ok(())
        })
        .await
    }

    async fn set_peer_status(&self, peer: &str, status: &serde_json::Value) -> Result<()> {
        self.update_peer(peer, "status = ?2", status.to_string().into())
            .await
    }

    async fn set_peer_push(&self, peer: &str, push: bool) -> Result<()> {
        self.update_peer(peer, "push = ?2", i64::from(push).into())
            .await
    }
}

impl SqliteStore {
    /// `UPDATE peers SET <set> WHERE name = ?1` with `value` as `?2`; `NotFound` for an unknown peer.
    async fn update_peer(
        &self,
        peer: &str,
        set: &'static str,
        value: rusqlite::types::Value,
    ) -> Result<()> {
        let peer = peer.to_string();
        self.write(move |c| {
            let n = c
                .execute(
                    &format!("UPDATE peers SET {set} WHERE name = ?1"),
                    params![peer, value],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(unknown(&peer));
            }
            Ok(())
        })
        .await
    }
}
