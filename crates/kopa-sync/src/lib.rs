//! Kopa's federation sync loop: what a node does, on its own, with its declared peers.
//!
//! - **Pull** ([`Syncer::pull_peer`]): list the peer's TAXII collections; for each it may read and
//!   that has a local counterpart (same id, else same alias), read every version added after the
//!   saved cursor, page by page; each page goes through `kopa_ingest::receive` (verify,
//!   stewardship, store with origin/via) and the cursor is saved after the page is stored — so a
//!   restart or a crash resumes where the last stored page ended, with no gap, and a page read twice
//!   is only duplicates (no-ops).
//! - **Push** ([`Syncer::push_peer`], peers declared with `--push`): read this node's store as the
//!   peer (`Reader::Peer` of its export policy — the one visibility rule), after a per-collection
//!   sequence cursor, and POST what it returns to the peer's collection of the same id (or alias).
//! - **Sightings home** ([`Syncer::home_peer`]): sightings stored here whose `sighting_of_ref` was
//!   originated by (or reached this node through) the peer are posted to it, read through the same
//!   peer reader so that the export policy decides.
//! - **Status**: after every page and round the peer's [`PeerStatus`] is written to the store
//!   (`set_peer_status`), and `record_peer_sync` keeps the last success and the errors.
//!
//! [`run`] drives all of it for every peer concurrently until shutdown; [`Syncer::sync_once`] runs
//! one round for tests and tools.

// Production code handles every failure; `unwrap` is for tests (clippy.toml allows it there).
#![warn(clippy::unwrap_used)]

pub mod client;
mod status;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kopa_core::{Reader, SharedClock};
use kopa_federation::pull::PullCursor;
use kopa_federation::{Checkpoint, ExportPolicy, NodeId, NodeIdentity, PublicKey};
use kopa_ingest::{FederationMetrics, Receiver};
use kopa_stix::Timestamp;
use kopa_store::{ObjectFilter, PeerRecord, Store, StoreError, VersionMatch};
use serde_json::Value;
use tokio::sync::{watch, Mutex, Semaphore};

pub use client::{
    describe as describe_request_error, PeerAuth, PeerClient, RemoteCollection, API_ROOT,
};
pub use status::PeerStatus;

/// How the loop runs (configuration keys `federation.*`).
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Time between two pull rounds of one peer (`federation.pull_interval_seconds`, default 30 s).
    pub pull_interval: Duration,
    /// Objects per page read from a peer or posted to it (`federation.page_size`, default 1000).
    pub page_size: usize,
    /// Peers synchronised at the same time (`federation.concurrency`, default 4).
    pub concurrency: usize,
    /// How often push peers are sent what is new (default 1 s).
    pub push_interval: Duration,
    /// Longest wait for one HTTP request to a peer (default 120 s).
    pub request_timeout: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            pull_interval: Duration::from_secs(30),
            page_size: 1000,
            concurrency: 4,
            push_interval: Duration::from_secs(1),
            request_timeout: Duration::from_secs(120),
        }
    }
}

/// What stops a round with one peer. Recorded as the peer's last error; retried next round.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{what}: {message}")]
    Http { what: String, message: String },
    #[error("{what}: peer answered HTTP {status}: {body}")]
    Status {
        what: String,
        status: u16,
        body: String,
    },
    #[error("peer answer not understood: {0}")]
    Protocol(String),
    #[error("peer {peer}: {message}")]
    Peer { peer: String, message: String },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("receiving from the peer: {0}")]
    Receive(String),
}

/// What one round did with one peer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RoundReport {
    pub peer: String,
    /// Objects stored as new versions.
    pub received: u64,
    pub duplicates: u64,
    pub own: u64,
    /// Objects refused, with their reason.
    pub rejected: u64,
    /// Objects pushed and accepted by the peer.
    pub pushed: u64,
    /// Sightings sent home and accepted.
    pub sightings_sent: u64,
    /// Remote collections without a local counterpart.
    pub skipped: Vec<String>,
    /// The error that ended the round early, if any.
    pub error: Option<String>,
}

/// A peer as the loop uses it.
struct PeerView {
    name: String,
    url: String,
    node: NodeId,
    /// The peer's key: its objects and its audit checkpoints are signed with it.
    key: PublicKey,
    auth: PeerAuth,
    policy: ExportPolicy,
    push: bool,
    status: Option<Value>,
    added_at: Timestamp,
}

impl PeerView {
    fn of(r: &PeerRecord) -> Result<PeerView, SyncError> {
        let bad = |message: String| SyncError::Peer {
            peer: r.peer.name.clone(),
            message,
        };
        let key = PublicKey::parse(&r.peer.public_key)
            .map_err(|e| bad(format!("stored public key: {e}")))?;
        let policy: ExportPolicy = serde_json::from_str(&r.peer.policy)
            .map_err(|e| bad(format!("stored export policy: {e}")))?;
        Ok(PeerView {
            name: r.peer.name.clone(),
            url: r.peer.url.trim_end_matches('/').to_string(),
            node: key.node_id(),
            key,
            auth: match &r.peer.token {
                Some(t) => PeerAuth::Bearer(t.clone()),
                None => PeerAuth::Node,
            },
            policy,
            push: r.push,
            status: r.status.clone(),
            added_at: r.added_at,
        })
    }

    /// The principal the peer reads as on this node.
    fn reader(&self) -> Reader {
        Reader::Peer(self.policy.peer_audience(self.node.as_str()))
    }
}

/// What the sync loop works with, shared with the node's server: the store, the node's identity,
/// the receive step (with the cache of the peers' keys) and the metrics.
#[derive(Clone)]
pub struct SyncContext {
    pub store: Arc<dyn Store>,
    pub identity: Arc<NodeIdentity>,
    /// How objects of other nodes enter this node (`kopa_ingest::receive`).
    pub receiver: Receiver,
    pub metrics: Arc<dyn FederationMetrics>,
}

/// The sync engine of one node: its [`SyncContext`], an HTTP client and the peers' status.
pub struct Syncer {
    receiver: Receiver,
    metrics: Arc<dyn FederationMetrics>,
    store: Arc<dyn Store>,
    /// The node's clock (the store's).
    clock: SharedClock,
    identity: Arc<NodeIdentity>,
    config: SyncConfig,
    http: reqwest::Client,
    /// Per peer: the status being kept (loaded from the store on first use) — one lock per peer, so
    /// that a pull and a push of the same peer update it in turn.
    status: Mutex<HashMap<String, Arc<Mutex<PeerStatus>>>>,
    limit: Semaphore,
}

/// Cursor key of a push of a local collection in `peer_cursors`.
fn push_key(collection: &str) -> String {
    format!("push:{collection}")
}

/// Cursor key of the sightings sent home from a local collection.
fn home_key(collection: &str) -> String {
    format!("home:{collection}")
}

impl Syncer {
    /// The sync engine of the node `ctx` describes.
    pub fn new(ctx: SyncContext, config: SyncConfig) -> Result<Syncer, SyncError> {
        let http = client::http_client(config.request_timeout)?;
        Ok(Syncer {
            clock: ctx.store.clock(),
            store: ctx.store,
            receiver: ctx.receiver,
            metrics: ctx.metrics,
            identity: ctx.identity,
            limit: Semaphore::new(config.concurrency.max(1)),
            config,
            http,
            status: Mutex::new(HashMap::new()),
        })
    }

    pub fn node_id(&self) -> &NodeId {
        self.identity.id()
    }

    fn client<'a>(&'a self, peer: &PeerView) -> PeerClient<'a> {
        PeerClient {
            http: &self.http,
            base: peer.url.clone(),
            target: peer.node.clone(),
            key: self.identity.key(),
            auth: peer.auth.clone(),
            clock: &*self.clock,
        }
    }

    async fn status_of(&self, peer: &PeerView) -> Arc<Mutex<PeerStatus>> {
        let mut map = self.status.lock().await;
        map.entry(peer.name.clone())
            .or_insert_with(|| Arc::new(Mutex::new(PeerStatus::from_stored(peer.status.as_ref()))))
            .clone()
    }

    async fn save_status(&self, peer: &str, status: &PeerStatus) {
        if let Err(e) = self.store.set_peer_status(peer, &status.to_json()).await {
            tracing::warn!(peer, error = %e, "could not record the peer's sync status");
        }
    }

    /// The peer's saved cursors by key (remote collection id, `push:<id>`, `home:<id>`).
    async fn cursors(&self, peer: &str) -> Result<HashMap<String, String>, SyncError> {
        Ok(self.store.peer_cursors(peer).await?.into_iter().collect())
    }

    /// Every local collection id with its alias.
    async fn local_collections(&self) -> Result<Vec<(String, Option<String>)>, SyncError> {
        // What this node pulls it stores, by its own decision, into its collection of the same id
        // or alias (a peer's own posts go only where the policy says; that is the server's rule).
        Ok(self
            .store
            .all_collections()
            .await?
            .into_iter()
            .map(|c| (c.id, c.alias))
            .collect())
    }

    /// One round with every peer (or the one named), concurrently (at most `concurrency` at once):
    /// pull, then push (push peers) or send sightings home (the others). Deterministic for tests.
    pub async fn sync_once(
        self: &Arc<Self>,
        only: Option<&str>,
    ) -> Result<Vec<RoundReport>, SyncError> {
        let peers: Vec<String> = self
            .store
            .peers()
            .await?
            .into_iter()
            .map(|p| p.peer.name)
            .filter(|n| only.is_none_or(|o| o == n))
            .collect();
        let mut set = tokio::task::JoinSet::new();
        for (i, name) in peers.into_iter().enumerate() {
            let me = self.clone();
            set.spawn(async move { (i, me.round(&name, true, true).await) });
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            match r {
                Ok(x) => out.push(x),
                Err(e) => return Err(SyncError::Receive(format!("sync task failed: {e}"))),
            }
        }
        out.sort_by_key(|(i, _)| *i);
        Ok(out.into_iter().map(|(_, r)| r).collect())
    }

    /// One round with one peer: pull (when `pull`), then push or sightings home (when `send`).
    /// Errors are recorded in the peer's status and returned in the report, never raised.
    pub async fn round(&self, name: &str, pull: bool, send: bool) -> RoundReport {
        self.round_seen(name, pull, send).await.0
    }

    /// [`Syncer::round`], also saying what it read of the peer's record (read once per round).
    async fn round_seen(&self, name: &str, pull: bool, send: bool) -> (RoundReport, Seen) {
        let mut report = RoundReport {
            peer: name.to_string(),
            ..Default::default()
        };
        let _permit = self.limit.acquire().await;
        let (peer, seen) = match self.store.peer(name).await {
            Ok(r) => {
                let seen = Seen::Declared { push: r.push };
                match PeerView::of(&r) {
                    Ok(p) => (p, seen),
                    Err(e) => {
                        report.error = Some(e.to_string());
                        self.record(name, Some(&e.to_string())).await;
                        return (report, seen);
                    }
                }
            }
            Err(e) => {
                report.error = Some(e.to_string());
                let seen = match e {
                    StoreError::NotFound(_) => Seen::Removed,
                    _ => Seen::Unread,
                };
                return (report, seen);
            }
        };
        let mut error = None;
        if pull {
            if let Err(e) = self.pull_peer(&peer, &mut report).await {
                error = Some(e.to_string());
            }
        }
        if send && error.is_none() {
            let sent = if peer.push {
                self.push_peer(&peer, &mut report).await
            } else {
                self.home_peer(&peer, &mut report).await
            };
            if let Err(e) = sent {
                error = Some(e.to_string());
            }
        }
        if pull || error.is_some() {
            self.record(name, error.as_deref()).await;
        }
        match &error {
            Some(_) => self.metrics.peer_sync_error(name),
            None if pull => self
                .metrics
                .peer_synced(name, self.clock.now().micros() as f64 / 1e6),
            None => {}
        }
        if let Some(e) = &error {
            tracing::warn!(peer = name, error = %e, "sync with peer failed; retried next round");
        }
        report.error = error;
        (report, seen)
    }

    async fn record(&self, peer: &str, error: Option<&str>) {
        if let Err(e) = self
            .store
            .record_peer_sync(peer, self.clock.now(), error)
            .await
        {
            tracing::warn!(peer, error = %e, "could not record the end of a sync round");
        }
    }

    /// Pull everything new from `peer` into the local counterparts of its collections.
    async fn pull_peer(&self, peer: &PeerView, report: &mut RoundReport) -> Result<(), SyncError> {
        let started = Instant::now();
        let status = self.status_of(peer).await;
        let result = self.pull_inner(peer, report, &status).await;
        let checkpoint = match &result {
            Ok(()) => self.client(peer).checkpoint().await,
            Err(_) => Ok(None),
        };
        let mut st = status.lock().await;
        self.witness(peer, &mut st, checkpoint);
        st.last_round_ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok(()) => {
                st.lag_objects = 0;
                st.lag_seconds = 0;
                st.caught_up_at = Some(self.clock.now().to_taxii());
                st.last_pull_error = None;
            }
            Err(e) => {
                st.last_pull_error = Some(e.to_string());
                // Behind since the last complete round, or since the peer was declared.
                let since = st
                    .caught_up_at
                    .as_deref()
                    .and_then(|t| Timestamp::parse(t).ok())
                    .unwrap_or(peer.added_at);
                st.lag_seconds =
                    ((self.clock.now().micros() - since.micros()).max(0) / 1_000_000) as u64;
            }
        }
        st.skipped = report.skipped.clone();
        self.metrics
            .peer_lag(&peer.name, st.lag_objects, st.lag_seconds as f64);
        self.save_status(&peer.name, &st).await;
        result
    }

    /// Keep the peer's audit checkpoint as a witness of its log (see [`PeerStatus::witness`]). A
    /// peer that gives none (an older node, or one this node calls with a user's token) is left
    /// alone; one whose checkpoint does not verify, or does not follow the last, is reported.
    fn witness(
        &self,
        peer: &PeerView,
        st: &mut PeerStatus,
        checkpoint: Result<Option<Checkpoint>, SyncError>,
    ) {
        let c = match checkpoint {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(peer = %peer.name, error = %e, "no audit checkpoint from the peer");
                return;
            }
        };
        if !c.verifies(&peer.key) {
            tracing::warn!(
                peer = %peer.name,
                "the peer's audit checkpoint is not signed with its key; not kept"
            );
            return;
        }
        if let Err(why) = st.witness(c) {
            tracing::error!(peer = %peer.name, alarm = %why, "the peer's audit log went back");
        }
    }

    async fn pull_inner(
        &self,
        peer: &PeerView,
        report: &mut RoundReport,
        status: &Mutex<PeerStatus>,
    ) -> Result<(), SyncError> {
        let client = self.client(peer);
        let remote = client.collections().await?;
        let local = self.local_collections().await?;
        let cursors = self.cursors(&peer.name).await?;
        let receiver = &self.receiver;
        for rc in remote.iter().filter(|c| c.can_read) {
            let target = local
                .iter()
                .find(|(id, _)| *id == rc.id)
                .or_else(|| {
                    rc.alias
                        .as_ref()
                        .and_then(|a| local.iter().find(|(_, la)| la.as_ref() == Some(a)))
                })
                .map(|(id, _)| id.clone());
            let Some(target) = target else {
                report
                    .skipped
                    .push(format!("no local collection for remote {}", rc.id));
                continue;
            };
            let mut cursor = match cursors.get(&rc.id) {
                Some(text) => PullCursor::from_text(text).unwrap_or_else(|e| {
                    tracing::warn!(peer = %peer.name, collection = %rc.id, error = %e,
                        "unreadable pull cursor; reading the collection from the start");
                    PullCursor::default()
                }),
                None => PullCursor::default(),
            };
            // The next page is fetched while this one is verified and stored; its cursor is
            // saved only after the store.
            let size = self.config.page_size;
            let mut pages = 1u64;
            let first = match client.page(&rc.id, &cursor, size, true).await {
                // A `next` token the peer no longer accepts (issued before it was upgraded, or
                // under another cursor key) would stop every round: read on from `added_after`.
                Err(SyncError::Status { status: 400, .. }) if cursor.next.is_some() => {
                    tracing::warn!(peer = %peer.name, collection = %rc.id,
                        "the peer refused the saved next cursor; reading on from added_after");
                    cursor.next = None;
                    client.page(&rc.id, &cursor, size, true).await?
                }
                other => other?,
            };
            let mut pending = Some(first);
            while let Some(page) = pending.take() {
                let next = cursor.advance(&page.envelope, page.date_added_last.as_deref());
                // Ask how much is left on the first page and every tenth: lag without counting on
                // every page.
                let count = pages.is_multiple_of(10);
                let more = page.envelope.more;
                let store = self.store_page(peer, &target, page, receiver, report, status);
                let (stored, fetched) = if more {
                    let (s, f) = tokio::join!(store, client.page(&rc.id, &next, size, count));
                    (s, Some(f))
                } else {
                    (store.await, None)
                };
                stored?;
                if next != cursor {
                    // Saved only once the page is stored: a crash before this line reads the page
                    // again (duplicates, no gap).
                    self.store
                        .set_peer_cursor(&peer.name, &rc.id, &next.to_text())
                        .await?;
                    cursor = next;
                }
                pending = fetched.transpose()?;
                pages += 1;
            }
        }
        Ok(())
    }

    /// Verify and store one page received from `peer` into the local collection `target`, and
    /// count it.
    async fn store_page(
        &self,
        peer: &PeerView,
        target: &str,
        page: client::RemotePage,
        receiver: &Receiver,
        report: &mut RoundReport,
        status: &Mutex<PeerStatus>,
    ) -> Result<(), SyncError> {
        let n = page.envelope.objects.len() as u64;
        if n == 0 {
            return Ok(());
        }
        let got = kopa_ingest::receive(receiver, target, page.envelope.objects, peer.node.as_str())
            .await?;
        self.metrics.peer_received(&peer.name, &got);
        report.received += got.stored;
        report.duplicates += got.duplicates;
        report.own += got.own;
        report.rejected += got.rejected.len() as u64;
        let mut st = status.lock().await;
        st.received += got.stored;
        st.duplicates += got.duplicates;
        st.own += got.own;
        kopa_ingest::log_rejections(&peer.name, &got);
        for (reason, n) in got.rejected_by_reason() {
            st.reject(reason, n);
        }
        st.lag_objects = match page.remaining {
            Some(r) => r,
            None => st.lag_objects.saturating_sub(n),
        };
        self.save_status(&peer.name, &st).await;
        Ok(())
    }

    /// The peer's collection to post a local collection's objects to: the same id, else the same
    /// alias, among those it lets this node write.
    fn remote_for<'r>(
        remote: &'r [RemoteCollection],
        id: &str,
        alias: Option<&str>,
    ) -> Option<&'r RemoteCollection> {
        let writable = || remote.iter().filter(|r| r.can_write);
        writable()
            .find(|r| r.id == id)
            .or_else(|| alias.and_then(|a| writable().find(|r| r.alias.as_deref() == Some(a))))
    }

    /// Push peers: post what the peer may read and has not been sent yet.
    async fn push_peer(&self, peer: &PeerView, report: &mut RoundReport) -> Result<(), SyncError> {
        self.send_peer(peer, report, Outgoing::Everything).await
    }

    /// Peers without push: post the sightings of their indicators.
    async fn home_peer(&self, peer: &PeerView, report: &mut RoundReport) -> Result<(), SyncError> {
        self.send_peer(peer, report, Outgoing::SightingsHome).await
    }

    async fn send_peer(
        &self,
        peer: &PeerView,
        report: &mut RoundReport,
        what: Outgoing,
    ) -> Result<(), SyncError> {
        let status = self.status_of(peer).await;
        let result = self.send_inner(peer, report, what, &status).await;
        let mut st = status.lock().await;
        st.last_push_error = result.as_ref().err().map(|e| e.to_string());
        self.save_status(&peer.name, &st).await;
        result
    }

    async fn send_inner(
        &self,
        peer: &PeerView,
        report: &mut RoundReport,
        what: Outgoing,
        status: &Mutex<PeerStatus>,
    ) -> Result<(), SyncError> {
        if peer.policy.collections.is_empty() {
            return Ok(());
        }
        let key_of = match what {
            Outgoing::Everything => push_key,
            Outgoing::SightingsHome => home_key,
        };
        let cursors = self.cursors(&peer.name).await?;
        let reader = peer.reader();
        let local = self.local_collections().await?;
        // Sightings go home to an origin this node exports the collection to, else through the
        // peer that delivered the indicator: the declared peers are read once per round.
        let peers: Vec<PeerView> = match what {
            Outgoing::Everything => Vec::new(),
            Outgoing::SightingsHome => self
                .store
                .peers()
                .await?
                .iter()
                .filter_map(|p| PeerView::of(p).ok())
                .collect(),
        };
        // Only ask the peer for its collections once there is something to send.
        let mut remote: Option<(Vec<RemoteCollection>, usize)> = None;
        let client = self.client(peer);
        for cid in &peer.policy.collections {
            let Some((_, alias)) = local.iter().find(|(id, _)| id == cid) else {
                continue;
            };
            let key = key_of(cid);
            let mut after: i64 = cursors
                .get(&key)
                .and_then(|c| c.trim().parse().ok())
                .unwrap_or(0);
            loop {
                let filter = ObjectFilter {
                    added_after: None,
                    after_seq: Some(after),
                    limit: self.config.page_size.max(1),
                    ids: Vec::new(),
                    types: match what {
                        Outgoing::Everything => Vec::new(),
                        Outgoing::SightingsHome => vec!["sighting".into()],
                    },
                    versions: VersionMatch {
                        all: true,
                        ..Default::default()
                    },
                    spec_versions: Vec::new(),
                };
                let page = self.store.objects(&reader, cid, &filter).await?;
                let Some(last) = page.objects.last().map(|o| o.seq) else {
                    break;
                };
                let texts: Vec<String> = match what {
                    Outgoing::Everything => page.objects.into_iter().map(|o| o.json).collect(),
                    Outgoing::SightingsHome => {
                        self.sightings_for(peer, cid, &peers, page.objects).await?
                    }
                };
                if !texts.is_empty() {
                    if remote.is_none() {
                        let list = client.collections().await?;
                        let max = client.max_content_length().await?;
                        remote = Some((list, max));
                    }
                    let (list, max) = remote
                        .as_ref()
                        .map(|(l, m)| (l.as_slice(), *m))
                        .unwrap_or((&[], 0));
                    let Some(target) = Self::remote_for(list, cid, alias.as_deref()) else {
                        // The peer takes posts only into the collections its own policy for this
                        // node names: a collection it does not offer is skipped and reported (the
                        // cursor stays, so what waits is sent once the peer offers it), not an
                        // error of the link.
                        report.skipped.push(format!(
                            "not sent: {} offers no collection with id {cid}{} that this node may \
                             write",
                            peer.name,
                            alias
                                .as_deref()
                                .map(|a| format!(" or alias {a:?}"))
                                .unwrap_or_default()
                        ));
                        break;
                    };
                    let split = client::split_envelopes(&texts, self.config.page_size, max as u64);
                    if !split.too_large.is_empty() {
                        // The peer would answer 413 to an envelope holding one of these: they are
                        // counted and logged as refused, and the cursor moves on past them.
                        status.lock().await.refused_by_peer += split.too_large.len() as u64;
                        for &i in &split.too_large {
                            tracing::warn!(peer = %peer.name, object = %object_id(&texts[i]),
                                bytes = texts[i].len(), max_content_length = max,
                                "object not sent: larger than the peer accepts");
                        }
                    }
                    for batch in &split.envelopes {
                        let envelope = client::envelope_body(&texts, batch);
                        let posted = client.post(&target.id, envelope).await?;
                        let mut st = status.lock().await;
                        match what {
                            Outgoing::Everything => {
                                report.pushed += posted.success_count;
                                st.pushed += posted.success_count;
                            }
                            Outgoing::SightingsHome => {
                                report.sightings_sent += posted.success_count;
                                st.sightings_sent += posted.success_count;
                            }
                        }
                        st.refused_by_peer += posted.failures.len() as u64;
                        for f in &posted.failures {
                            // A refusal is final (the peer would refuse it again): counted and
                            // logged, and the cursor moves on.
                            tracing::warn!(peer = %peer.name, object = %f.id,
                                reason = %f.message.as_deref().unwrap_or("refused"),
                                "peer refused an object this node sent");
                        }
                        if posted.status == "pending" {
                            tracing::warn!(peer = %peer.name, status = %posted.id,
                                pending = posted.pending_count.max(posted.pendings.len() as u64),
                                "peer has not finished processing an envelope; not followed up");
                        }
                    }
                }
                self.store
                    .set_peer_cursor(&peer.name, &key, &last.to_string())
                    .await?;
                after = last;
                if !page.more {
                    break;
                }
            }
        }
        Ok(())
    }

    /// The sightings of a page of `collection` that go home to `peer`: their `sighting_of_ref` was
    /// originated by the peer, or came through it from an origin that is not a peer exporting
    /// `collection` from this node (a peer declared only so that its signatures verify here is
    /// reached through the node its indicator came through).
    async fn sightings_for(
        &self,
        peer: &PeerView,
        collection: &str,
        peers: &[PeerView],
        objects: Vec<kopa_store::StoredObject>,
    ) -> Result<Vec<String>, SyncError> {
        let parsed: Vec<(String, String)> = objects
            .into_iter()
            .filter_map(|o| {
                let v: Value = serde_json::from_str(&o.json).ok()?;
                let r = v.get("sighting_of_ref")?.as_str()?.to_string();
                Some((r, o.json))
            })
            .collect();
        if parsed.is_empty() {
            return Ok(Vec::new());
        }
        let mut refs: Vec<String> = parsed.iter().map(|(r, _)| r.clone()).collect();
        refs.sort();
        refs.dedup();
        let routes = self.store.object_routes(&refs).await?;
        // Peers this node exports `collection` to: the origins a sighting can go to directly.
        let direct: Vec<&str> = peers
            .iter()
            .filter(|p| p.policy.collections.iter().any(|c| c == collection))
            .map(|p| p.node.as_str())
            .collect();
        let me = self.identity.id().as_str();
        let home_of = |r: &str| -> Option<String> {
            let route = routes.iter().find(|x| x.id == r)?;
            let origin = route.origin.as_deref()?;
            if origin == me {
                return None;
            }
            if direct.contains(&origin) {
                Some(origin.to_string())
            } else {
                route.via.clone()
            }
        };
        Ok(parsed
            .into_iter()
            .filter(|(r, _)| home_of(r).as_deref() == Some(peer.node.as_str()))
            .map(|(_, json)| json)
            .collect())
    }
}

/// What a round read of its peer's record, for the peer's task to plan the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Declared {
        push: bool,
    },
    /// The peer is no longer declared.
    Removed,
    /// The record could not be read.
    Unread,
}

#[derive(Clone, Copy)]
enum Outgoing {
    Everything,
    SightingsHome,
}

/// Run the loop until `shutdown` completes: one task per peer (new peers are picked up, removed
/// ones stopped, every `pull_interval`), each pulling every `pull_interval` and, for push peers,
/// pushing every `push_interval`. A failing peer is retried with a backoff (doubling, at most eight
/// pull intervals). A page being stored when shutdown comes is finished or not started — the
/// cursor is only saved after a page is stored.
pub async fn run(
    ctx: SyncContext,
    config: SyncConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SyncError> {
    let syncer = Arc::new(Syncer::new(ctx, config)?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        match syncer.store.peers().await {
            Ok(peers) => {
                let names: Vec<String> = peers.into_iter().map(|p| p.peer.name).collect();
                tasks.retain(|name, task| {
                    let keep = names.contains(name) && !task.is_finished();
                    if !keep {
                        task.abort();
                    }
                    keep
                });
                for name in names {
                    if let std::collections::hash_map::Entry::Vacant(slot) = tasks.entry(name) {
                        let s = syncer.clone();
                        let rx = stop_rx.clone();
                        let n = slot.key().clone();
                        slot.insert(tokio::spawn(async move { s.peer_loop(n, rx).await }));
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list peers"),
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(syncer.config.pull_interval) => {}
        }
    }
    let _ = stop_tx.send(true);
    for (_, t) in tasks {
        let _ = t.await;
    }
    tracing::info!("federation sync stopped");
    Ok(())
}

impl Syncer {
    /// The life of one peer's task: rounds at their interval (with backoff after errors) until
    /// `stop` turns true or the peer is removed. The peer's record is read once per round, by the
    /// round; whether the peer pushes is what the last round read (the first round always runs).
    async fn peer_loop(self: Arc<Self>, name: String, mut stop: watch::Receiver<bool>) {
        let mut next_pull = Instant::now();
        let mut next_push = Instant::now();
        let (mut pull_failures, mut push_failures) = (0u32, 0u32);
        let mut push = false;
        loop {
            if *stop.borrow() {
                return;
            }
            let now = Instant::now();
            let pull_due = now >= next_pull;
            let push_due = push && now >= next_push;
            if pull_due || push_due {
                let work = self.round_seen(&name, pull_due, true);
                let (report, seen) = tokio::select! {
                    r = work => r,
                    _ = stop.changed() => return,
                };
                push = match seen {
                    Seen::Declared { push } => push,
                    Seen::Removed => return,
                    Seen::Unread => false,
                };
                let failed = report.error.is_some();
                if pull_due {
                    pull_failures = if failed { pull_failures + 1 } else { 0 };
                    next_pull = Instant::now() + backoff(self.config.pull_interval, pull_failures);
                }
                push_failures = if failed { push_failures + 1 } else { 0 };
                next_push = Instant::now() + backoff(self.config.push_interval, push_failures);
            }
            let until = if push {
                next_pull.min(next_push)
            } else {
                next_pull
            };
            let wait = until.saturating_duration_since(Instant::now());
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// The `id` of a serialised object, for the log line of an object too large for the peer.
fn object_id(json: &str) -> String {
    serde_json::from_str::<Value>(json)
        .ok()
        .and_then(|v| v.get("id")?.as_str().map(str::to_string))
        .unwrap_or_else(|| "(no id)".into())
}

/// The wait before the next attempt after `failures` failed rounds in a row: the interval, doubled
/// per failure after the first, at most eight intervals.
fn backoff(interval: Duration, failures: u32) -> Duration {
    interval * (1u32 << failures.saturating_sub(1).min(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_eight_intervals() {
        let s = Duration::from_secs(1);
        let waits: Vec<u64> = (0..7).map(|n| backoff(s, n).as_secs()).collect();
        assert_eq!(waits, [1, 1, 2, 4, 8, 8, 8]);
    }
}
