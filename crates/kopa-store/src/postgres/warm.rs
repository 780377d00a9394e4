//! Warm connections for the PostgreSQL read path.
//!
//! sqlx's pool hands out its idle connections in turn (first in, first out) and pings each one
//! before handing it out. A TAXII client paging through a collection runs a handful of short
//! queries per page; through the pool, each ran on another connection — another server process
//! whose caches and prepared statements were cold for it — after an extra round trip for the ping.
//!
//! `Warm` keeps at most [`KEPT`] connections taken from the pool and lends the most recently used
//! one first (last in, first out), so consecutive reads run on the same one or two server
//! processes, on statements already prepared and planned there. A connection that has been idle
//! longer than [`FRESH`] goes back to the pool (which checks it before lending it again), and one
//! that failed other than with a database error is closed: a connection kept here is never older
//! news than that about the server.
//!
//! Only reads outside transactions go through here; writes take their connections from the pool.

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::Postgres;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many connections are kept warm (the pool holds the rest).
pub(crate) const KEPT: usize = 2;

/// How long a kept connection may stay unused and still be lent without the pool's check.
pub(crate) const FRESH: Duration = Duration::from_secs(10);

pub(crate) struct Warm {
    pool: PgPool,
    /// Kept connections, the most recently returned last.
    idle: Mutex<Vec<(PoolConnection<Postgres>, Instant)>>,
}

impl Warm {
    pub(crate) fn new(pool: PgPool) -> Warm {
        Warm {
            pool,
            idle: Mutex::new(Vec::with_capacity(KEPT)),
        }
    }

    /// The most recently used kept connection, or one from the pool.
    pub(crate) async fn get(&self) -> Result<Lease<'_>, sqlx::Error> {
        let kept = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            // Connections unused for too long go back to the pool, oldest first.
            let stale = idle
                .iter()
                .take_while(|(_, at)| at.elapsed() > FRESH)
                .count();
            let stale: Vec<_> = idle.drain(..stale).collect();
            (idle.pop(), stale)
        };
        let (kept, stale) = kept;
        drop(stale);
        let conn = match kept {
            Some((c, _)) => c,
            None => self.pool.acquire().await?,
        };
        Ok(Lease {
            warm: self,
            conn: Some(conn),
            broken: false,
        })
    }
}

/// A lent connection; dropping it gives it back (kept warm, or to the pool when enough are kept).
pub(crate) struct Lease<'a> {
    warm: &'a Warm,
    /// Always `Some` until the lease is dropped.
    conn: Option<PoolConnection<Postgres>>,
    /// Set after an error that leaves the connection in doubt.
    broken: bool,
}

impl Lease<'_> {
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        self.conn
            .as_deref_mut()
            .expect("a lease holds its connection until it is dropped")
    }

    /// Note the outcome of a query: after an error that is not the database's answer to the query
    /// (a lost connection, a protocol error), the connection is closed rather than kept.
    pub(crate) fn check<T>(&mut self, r: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        if let Err(e) = &r {
            if !matches!(e, sqlx::Error::Database(_) | sqlx::Error::RowNotFound) {
                self.broken = true;
            }
        }
        r
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if self.broken {
            conn.close_on_drop();
            return;
        }
        let mut idle = self.warm.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < KEPT {
            idle.push((conn, Instant::now()));
        }
        // Otherwise `conn` drops here, back to the pool.
    }
}
