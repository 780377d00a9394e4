//! Kopa's HTTP side: the TAXII 2.1 server, the REST API (administration, search, export, audit) with
//! its OpenAPI document, authentication, health and Prometheus metrics.
//!
//! [`app`] builds the whole router from an [`AppState`] (testable in-process with
//! `tower::ServiceExt::oneshot`); [`serve`] and [`serve_listener`] run it on Kopa's own accept loop
//! (a cap on connections, a request-header timeout, graceful shutdown with a deadline: see
//! `connections`).
//! Who sees what is never decided here: every read passes the caller's `Reader` (a user's audience, or
//! a peer node's export policy) to the store, which applies the visibility rule inside its query.
//! The write pipeline (validate, stewardship, sign or verify, one transaction per batch) is
//! `kopa-ingest`, below this crate: the TAXII write path here only reads the body and answers.

// Production code handles every failure; `unwrap` is for tests (clippy.toml allows it there).
#![warn(clippy::unwrap_used)]

pub mod auth;
mod connections;
mod cursor;
pub mod enrolment;
mod error;
mod filters;
mod ingest;
pub mod metrics;
mod rest;
mod shape;
mod taxii;
mod throttle;
pub mod tls;
pub mod token;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use kopa_core::Tlp;
use kopa_federation::NodeIdentity;
use kopa_store::Store;
use serde::Deserialize;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};

pub use error::{ApiError, TaxiiError};
pub use metrics::Metrics;
pub use rest::{OPENAPI, ROUTES as REST_ROUTES};
pub use tls::{TlsError, TlsFiles};
pub use token::{authenticate, new_token, AuthError};

pub use kopa_federation::pull::{STIX_MEDIA_TYPE, TAXII_MEDIA_TYPE};

/// How the HTTP server runs.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The node's name, shown as the TAXII discovery and API-root title.
    pub title: String,
    /// Largest accepted request body in bytes (TAXII `max_content_length`).
    pub max_content_length: usize,
    /// TLP label of objects that carry none (they are then narrowed to their owner organisation).
    pub default_tlp: Tlp,
    /// Name of the one TAXII API root: `kopa` serves it at `/kopa/`.
    pub api_root: String,
    /// How long TAXII status resources stay readable, in hours (at least 24).
    pub status_retention_hours: u64,
    /// Results per page when a TAXII request sets no `limit`.
    pub default_page_size: usize,
    /// The largest page a TAXII request may ask for; larger `limit`s are capped to it.
    pub max_page_size: usize,
    /// How long a client may take to send a request's headers, and a kept-alive connection may
    /// wait for its next request; slower connections are closed.
    pub header_read_timeout: Duration,
    /// Connections served at once; more wait in the listen queue until one closes.
    pub max_connections: usize,
    /// After the shutdown signal, how long requests in flight may take before their connections
    /// are closed.
    pub shutdown_deadline: Duration,
    /// Failed authentications allowed in a row per client address and per token id; then 429.
    pub auth_failures: u32,
    /// The time over which that allowance comes back (one failure per `window / failures`).
    pub auth_failure_window: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7470)),
            title: "Kopa node".into(),
            max_content_length: 10 * 1024 * 1024,
            default_tlp: Tlp::Amber,
            api_root: "kopa".into(),
            status_retention_hours: 24,
            default_page_size: 1000,
            max_page_size: 10_000,
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            shutdown_deadline: Duration::from_secs(30),
            auth_failures: 10,
            auth_failure_window: Duration::from_secs(60),
        }
    }
}

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Everything a request handler needs: the store, the configuration, the metrics, and for federation
/// the node's identity and its declared peers.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    config: ServerConfig,
    metrics: metrics::Metrics,
    node: Option<Arc<NodeIdentity>>,
    peers: Arc<kopa_ingest::Peers>,
    throttle: throttle::Throttle,
    verified_tokens: token::VerifiedTokens,
    /// The key of TAXII `next` cursors, read from the store on first use.
    cursor_key: tokio::sync::OnceCell<cursor::CursorKey>,
}

impl AppState {
    /// State over a store. The configuration is checked by [`app`]'s callers through
    /// [`ServerConfig::check`]; `new` only normalises it.
    pub fn new(store: Arc<dyn Store>, config: ServerConfig) -> Self {
        Self::with_node(store, config, None)
    }

    /// State of a node with identity `node`: objects its users post are signed as originated here,
    /// and declared peers may call it with `Kopa-Node` authorization. Without an identity objects
    /// are stored as sent and only users can call.
    pub fn with_node(
        store: Arc<dyn Store>,
        mut config: ServerConfig,
        node: Option<Arc<NodeIdentity>>,
    ) -> Self {
        config.api_root = config.api_root.trim_matches('/').to_string();
        config.status_retention_hours = config.status_retention_hours.max(24);
        config.default_page_size = config
            .default_page_size
            .clamp(1, config.max_page_size.max(1));
        AppState {
            inner: Arc::new(Inner {
                peers: Arc::new(kopa_ingest::Peers::new(store.clone(), node.as_deref())),
                throttle: throttle::Throttle::new(config.auth_failures, config.auth_failure_window),
                verified_tokens: token::VerifiedTokens::default(),
                store,
                config,
                metrics: metrics::Metrics::new(),
                node,
                cursor_key: tokio::sync::OnceCell::new(),
            }),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The node's clock: the store's ([`kopa_store::NodeStore::clock`]), so that the server, the
    /// store and the sync loop read one time.
    pub fn clock(&self) -> kopa_core::SharedClock {
        self.inner.store.clock()
    }

    /// The current time, by the node's clock.
    pub fn now(&self) -> kopa_stix::Timestamp {
        self.inner.store.clock().now()
    }

    /// The server's metrics; the sync loop records peer figures here so that `/metrics` shows them.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    /// The key that seals TAXII `next` cursors: the node's secret for them, drawn once and kept in
    /// the store (see [`cursor`]).
    pub(crate) async fn cursor_key(&self) -> Result<&cursor::CursorKey, kopa_store::StoreError> {
        self.inner
            .cursor_key
            .get_or_try_init(|| async {
                let secret = self.store().node_secret(cursor::PURPOSE).await?;
                Ok(cursor::CursorKey::new(&secret))
            })
            .await
    }

    /// The node's identity, when it has one.
    pub fn node(&self) -> Option<&Arc<NodeIdentity>> {
        self.inner.node.as_ref()
    }

    /// The declared peers, cached: their export policies and the keys this node trusts as origins
    /// (its own and its peers'), for authenticating peers and verifying objects.
    pub fn peers(&self) -> &Arc<kopa_ingest::Peers> {
        &self.inner.peers
    }

    /// Failed authentications per client address and token.
    pub(crate) fn throttle(&self) -> &throttle::Throttle {
        &self.inner.throttle
    }

    /// Password-hashed tokens verified since start.
    pub(crate) fn verified_tokens(&self) -> &token::VerifiedTokens {
        &self.inner.verified_tokens
    }

    /// What [`kopa_ingest::receive`] needs, for a node with an identity.
    pub fn receiver(&self) -> Option<kopa_ingest::Receiver> {
        let node = self.node()?;
        Some(kopa_ingest::Receiver {
            store: self.store().clone(),
            this_node: node.id().clone(),
            peers: self.peers().clone(),
            default_tlp: self.config().default_tlp,
        })
    }
}

impl ServerConfig {
    /// Reject settings the server cannot run with, with a message naming the setting.
    pub fn check(&self) -> Result<(), ServerError> {
        let root = self.api_root.trim_matches('/');
        if root.is_empty()
            || !root
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ServerError::Config(format!(
                "api_root {:?} must be a non-empty path segment of letters, digits, '-' or '_'",
                self.api_root
            )));
        }
        if ["taxii2", "api", "healthz", "metrics"].contains(&root) {
            return Err(ServerError::Config(format!(
                "api_root {root:?} collides with one of Kopa's own paths"
            )));
        }
        if self.max_content_length < 1024 {
            return Err(ServerError::Config(
                "max_content_length must be at least 1024 bytes".into(),
            ));
        }
        if self.max_page_size == 0 {
            return Err(ServerError::Config("max_page_size must be positive".into()));
        }
        if self.max_connections == 0 {
            return Err(ServerError::Config(
                "max_connections must be positive".into(),
            ));
        }
        if self.header_read_timeout.is_zero() {
            return Err(ServerError::Config(
                "header_read_timeout must be positive".into(),
            ));
        }
        if self.auth_failures == 0 || self.auth_failure_window.is_zero() {
            return Err(ServerError::Config(
                "auth_failures and auth_failure_window must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// The whole HTTP application: TAXII, REST, health and metrics. Every error it answers is in its
/// route's documented shape ([`shape`]).
///
/// Every request has an id: the client's own `x-request-id`, or a new UUID. It is sent back in the
/// response's `x-request-id` and carried by every line logged while the request is served (the
/// span of [`request_span`]).
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(taxii::routes(&state))
        .merge(rest::routes())
        .route("/healthz", axum::routing::get(rest::healthz))
        .route("/metrics", axum::routing::get(metrics::render))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            shape::limits,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            shape::errors,
        ))
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        // Every 5xx Kopa answers already logs its cause, in this span.
                        .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
                )
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
        .with_state(state)
}

/// The span of one request, around every line logged while it is served: its request id, method
/// and path. Never its query string (which may hold secrets) nor any other header.
fn request_span<B>(req: &axum::http::Request<B>) -> tracing::Span {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        request_id = id,
        method = %req.method(),
        path = req.uri().path(),
    )
}

/// An error in the format of the route: a TAXII error under TAXII prefixes, `{"error": …}` elsewhere.
fn route_error(
    state: &AppState,
    path: &str,
    status: axum::http::StatusCode,
    title: &str,
    message: String,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let root = format!("/{}", state.config().api_root);
    if path.starts_with("/taxii2") || path == root || path.starts_with(&format!("{root}/")) {
        TaxiiError::new(status, title, message).into_response()
    } else {
        ApiError::new(status, message).into_response()
    }
}

/// Unknown paths.
async fn not_found(
    axum::extract::State(state): axum::extract::State<AppState>,
    uri: axum::http::Uri,
) -> axum::response::Response {
    let path = uri.path();
    let message = format!("no such path: {path} (TAXII paths end in '/')");
    route_error(
        &state,
        path,
        axum::http::StatusCode::NOT_FOUND,
        "Not found",
        message,
    )
}

/// A known path with a method it does not serve.
async fn method_not_allowed(
    axum::extract::State(state): axum::extract::State<AppState>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> axum::response::Response {
    let path = uri.path();
    let message = format!("{method} is not served at {path}");
    route_error(
        &state,
        path,
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        message,
    )
}

/// Bind `config.listen` and serve until `shutdown` completes. Then no connection is accepted any
/// more, requests in flight finish (a write is acknowledged only after the store committed it), and
/// connections still open after `config.shutdown_deadline` are closed before this returns.
pub async fn serve(
    store: Arc<dyn Store>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    config.check()?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
    serve_listener(listener, store, config, shutdown).await
}

/// Serve on an already bound listener (tests bind port 0).
pub async fn serve_listener(
    listener: tokio::net::TcpListener,
    store: Arc<dyn Store>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    serve_app(listener, AppState::new(store, config), shutdown).await
}

/// Serve `state` (e.g. made with [`AppState::with_node`]) on an already bound listener, in plain
/// HTTP.
pub async fn serve_app(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    serve_app_tls(listener, state, None, shutdown).await
}

/// [`serve_app`], in HTTPS only when `tls` is given: every connection must complete a TLS
/// handshake (within `header_read_timeout`) with the certificate and key `tls` holds at the time;
/// [`TlsFiles::reload`] changes them for the connections that follow.
pub async fn serve_app_tls(
    listener: tokio::net::TcpListener,
    state: AppState,
    tls: Option<Arc<TlsFiles>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    state.config().check()?;
    let acceptor = match &tls {
        Some(files) => Some(
            files
                .acceptor()
                .map_err(|e| ServerError::Config(e.to_string()))?,
        ),
        None => None,
    };
    let purger = tokio::spawn(purge_statuses(state.clone()));
    if let Ok(addr) = listener.local_addr() {
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(%addr, scheme, "kopa listening");
    }
    let config = state.config();
    let limits = connections::Limits {
        max_connections: config.max_connections,
        header_read_timeout: config.header_read_timeout,
        shutdown_deadline: config.shutdown_deadline,
    };
    connections::run(listener, app(state), limits, acceptor, shutdown).await;
    purger.abort();
    Ok(())
}

/// Drop TAXII status resources older than the retention period, once an hour.
async fn purge_statuses(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let hours = state.config().status_retention_hours as i64;
        let before =
            kopa_stix::Timestamp::from_micros(state.now().micros() - hours * 3_600_000_000);
        match state.store().purge_statuses(before).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "old TAXII status resources dropped"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not purge old status resources"),
        }
    }
}
