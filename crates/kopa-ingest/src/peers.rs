//! The declared peers, cached: their keys and export policies, for authenticating `Kopa-Node` calls
//! and verifying objects. It reloads from the store when a call names a node it does not know (at
//! most once a second) and every few seconds, so a peer added or removed with `kopa peer` takes
//! effect without a restart. Objects are verified with the cached keys; when one names an origin the
//! cache does not know, the peers are reloaded at once and that object verified again
//! ([`Peers::reload_for`]), so a newly declared origin's objects are not rejected.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kopa_federation::request_auth::{NonceCache, RequestAuthError, Signed};
use kopa_federation::{ExportPolicy, KnownKeys, NodeId, NodeIdentity, PublicKey};
use kopa_store::{Store, StoreError};

/// A declared peer as the server needs it to authenticate and authorise its calls.
#[derive(Debug, Clone)]
pub struct PeerEntry {
    pub name: String,
    pub node_id: NodeId,
    pub policy: ExportPolicy,
}

/// What the cache holds: the keys this node trusts (its own and every peer's) and the peers by id.
#[derive(Default)]
struct Snapshot {
    known: Arc<KnownKeys>,
    by_node: HashMap<NodeId, PeerEntry>,
}

/// The declared peers, cached. See the module documentation for when it reloads.
pub struct Peers {
    store: Arc<dyn Store>,
    own: Option<PublicKey>,
    state: tokio::sync::Mutex<(Arc<Snapshot>, Option<Instant>)>,
    /// The nonces of the peers' verified requests within the signature window: each is accepted
    /// once.
    nonces: std::sync::Mutex<NonceCache>,
}

/// How many peer-request nonces are remembered at most (the window is ten minutes).
const NONCES: usize = 200_000;

/// A snapshot older than this is reloaded on the next use.
const MAX_AGE: Duration = Duration::from_secs(5);
/// A call naming an unknown node reloads the peers at most this often.
const MIN_RELOAD: Duration = Duration::from_secs(1);

/// Whether a snapshot loaded `age` ago (`None`: never) is to be reloaded whatever it holds.
fn stale(age: Option<Duration>) -> bool {
    age.is_none_or(|a| a > MAX_AGE)
}

/// Read the declared peers: the keys this node trusts as origins (its own, when it has one, and
/// every declared peer's) and the peers by node id. A peer whose stored key or policy does not parse
/// is left out (and logged).
async fn load(store: &dyn Store, own: Option<PublicKey>) -> Result<Snapshot, StoreError> {
    let mut known = KnownKeys::new();
    if let Some(k) = own {
        known.insert(k);
    }
    let mut by_node = HashMap::new();
    for rec in store.peers().await? {
        let p = &rec.peer;
        let key = match PublicKey::parse(&p.public_key) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(peer = %p.name, error = %e, "peer key does not parse; peer ignored");
                continue;
            }
        };
        let policy: ExportPolicy = match serde_json::from_str(&p.policy) {
            Ok(pol) => pol,
            Err(e) => {
                tracing::warn!(peer = %p.name, error = %e, "peer policy does not parse; peer ignored");
                continue;
            }
        };
        let node_id = known.insert(key);
        by_node.insert(
            node_id.clone(),
            PeerEntry {
                name: p.name.clone(),
                node_id,
                policy,
            },
        );
    }
    Ok(Snapshot {
        known: Arc::new(known),
        by_node,
    })
}

impl Peers {
    /// Accept the nonce of a verified peer request once (a replay is refused).
    pub fn first_use(&self, signed: &Signed, now: i64) -> Result<(), RequestAuthError> {
        self.nonces
            .lock()
            .map_err(|_| RequestAuthError::Replayed(signed.node.to_string()))?
            .first_use(signed, now)
    }

    pub fn new(store: Arc<dyn Store>, node: Option<&NodeIdentity>) -> Peers {
        Peers {
            nonces: std::sync::Mutex::new(NonceCache::new(NONCES)),
            store,
            own: node.map(NodeIdentity::public_key),
            state: tokio::sync::Mutex::new((Arc::new(Snapshot::default()), None)),
        }
    }

    /// The current snapshot, reloaded first when `reload(snapshot, age)` says so (`age`: since the
    /// last load, `None` before the first).
    async fn reloaded_if(
        &self,
        reload: impl FnOnce(&Snapshot, Option<Duration>) -> bool,
    ) -> Result<Arc<Snapshot>, StoreError> {
        let mut guard = self.state.lock().await;
        let (snap, loaded) = &*guard;
        if reload(snap, loaded.map(|t| t.elapsed())) {
            let fresh = Arc::new(load(self.store.as_ref(), self.own).await?);
            *guard = (fresh, Some(Instant::now()));
        }
        Ok(guard.0.clone())
    }

    /// The current snapshot; reloaded when stale, or when `wanted` is not in it and the last reload
    /// is more than [`MIN_RELOAD`] old.
    async fn snapshot(&self, wanted: &NodeId) -> Result<Arc<Snapshot>, StoreError> {
        self.reloaded_if(|snap, age| {
            stale(age) || (!snap.by_node.contains_key(wanted) && age.is_none_or(|a| a > MIN_RELOAD))
        })
        .await
    }

    /// The declared peer with node id `node` (reloading once when unknown), with the trusted keys.
    pub async fn lookup(
        &self,
        node: &NodeId,
    ) -> Result<(Option<PeerEntry>, Arc<KnownKeys>), StoreError> {
        let snap = self.snapshot(node).await?;
        Ok((snap.by_node.get(node).cloned(), snap.known.clone()))
    }

    /// The keys this node trusts as origins (its own and every declared peer's), as cached: read
    /// from the store only when the cache is older than [`MAX_AGE`].
    pub async fn known_keys(&self) -> Result<Arc<KnownKeys>, StoreError> {
        Ok(self.reloaded_if(|_, age| stale(age)).await?.known.clone())
    }

    /// Objects name the origin nodes `nodes`, which the keys they were checked with do not know:
    /// reload the peers from the store now, as a peer may have been declared a moment ago (unlike a
    /// call by an unknown node this is not rate-limited: reading the keys for every envelope was the
    /// rule before the cache). Returns the keys when they now know at least one of `nodes` — the
    /// cache may already hold them, reloaded meanwhile — and `None` when none is declared.
    pub async fn reload_for(&self, nodes: &[&str]) -> Result<Option<Arc<KnownKeys>>, StoreError> {
        let knows_one = |known: &KnownKeys| {
            nodes
                .iter()
                .any(|n| NodeId::parse(n).is_ok_and(|id| known.get(&id).is_some()))
        };
        let snap = self.reloaded_if(|snap, _| !knows_one(&snap.known)).await?;
        let known = &snap.known;
        Ok(knows_one(known).then(|| known.clone()))
    }
}
