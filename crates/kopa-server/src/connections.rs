//! The listener's accept loop: how many connections are served at once, how long a client may take
//! to send its request headers, and how the server stops.
//!
//! - **A cap on connections** ([`Limits::max_connections`]): a connection is accepted only when one of
//!   the cap's slots is free. Beyond the cap, new connections wait in the kernel's listen queue, not
//!   in the server, and are accepted in order as slots free up; none is starved and the server's
//!   memory does not grow with them.
//! - **A header read timeout** ([`Limits::header_read_timeout`]): a connection that has not sent a
//!   whole request head within it (a client that connects and sends nothing, or trickles headers a
//!   byte at a time) is closed, and so is a kept-alive connection that waits longer for its next
//!   request. Idle or half-open connections therefore hold a slot for at most that long.
//! - **Graceful shutdown with a deadline** ([`Limits::shutdown_deadline`]): when the shutdown future
//!   completes the listener is closed (new connections are refused), idle connections are closed,
//!   requests in flight finish and are answered; connections still open at the deadline are closed
//!   and [`run`] returns.
//!
//! - **TLS** (when given an acceptor): every connection must complete a TLS handshake first, within
//!   the header read timeout and holding one of the cap's slots meanwhile, so a slow or silent
//!   handshake is closed like a slow request head. A connection that does not speak TLS is closed.
//!
//! Each request carries `ConnectInfo<SocketAddr>` with the client's address, as
//! `Router::into_make_service_with_connect_info` would give it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// The limits the accept loop enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub shutdown_deadline: Duration,
}

/// Serve `app` on `listener` until `shutdown` completes, then stop as the module says.
pub(crate) async fn run(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let slots = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A free slot first, then the next connection: beyond the cap, connections stay in the
        // listen queue.
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break, // never closed
            },
        };
        let (stream, addr) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    if !is_connection_error(&e) {
                        // E.g. out of file descriptors: wait a little instead of spinning.
                        tracing::error!(error = %e, "cannot accept connections");
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                    continue;
                }
            },
        };
        // Forget the connections that have ended.
        while connections.try_join_next().is_some() {}
        let (http, app, stop) = (http.clone(), app.clone(), stop_rx.clone());
        match &tls {
            None => connections.spawn(serve_connection(http, stream, addr, app, slot, stop)),
            Some(acceptor) => connections.spawn(serve_tls_connection(
                acceptor.clone(),
                limits.header_read_timeout,
                http,
                stream,
                addr,
                app,
                slot,
                stop,
            )),
        };
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let open = connections.len();
    if open > 0 {
        tracing::info!(
            connections = open,
            deadline_seconds = limits.shutdown_deadline.as_secs_f64(),
            "stopped accepting connections; waiting for requests in flight"
        );
    }
    let drained = tokio::time::timeout(limits.shutdown_deadline, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "shutdown deadline reached: closing the connections still open"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

/// Complete the TLS handshake within `timeout` (or before shutdown), then serve the connection.
#[allow(clippy::too_many_arguments)]
async fn serve_tls_connection(
    acceptor: TlsAcceptor,
    timeout: Duration,
    http: http1::Builder,
    stream: TcpStream,
    addr: SocketAddr,
    app: Router,
    slot: OwnedSemaphorePermit,
    mut stop: watch::Receiver<bool>,
) {
    let handshake = tokio::select! {
        handshake = tokio::time::timeout(timeout, acceptor.accept(stream)) => handshake,
        _ = stop.wait_for(|stopping| *stopping) => return,
    };
    match handshake {
        Ok(Ok(stream)) => serve_connection(http, stream, addr, app, slot, stop).await,
        Ok(Err(e)) => tracing::debug!(client = %addr, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(client = %addr, "TLS handshake timed out"),
    }
}

/// Serve one connection until it ends, or until shutdown: then finish the request in flight (if
/// any) and close. The slot is given back when this returns (or is aborted).
async fn serve_connection<S>(
    http: http1::Builder,
    stream: S,
    addr: SocketAddr,
    app: Router,
    slot: OwnedSemaphorePermit,
    mut stop: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let _slot = slot;
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(addr));
        let mut app = app.clone();
        async move { tower::Service::call(&mut app, req).await }
    });
    let conn = http.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(client = %addr, error = %e, "connection ended with an error");
            }
            return;
        }
        _ = stop.wait_for(|stopping| *stopping) => {}
    }
    conn.as_mut().graceful_shutdown();
    if let Err(e) = conn.await {
        tracing::debug!(client = %addr, error = %e, "connection ended with an error during shutdown");
    }
}

/// Errors of one incoming connection (the next accept may succeed at once).
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    )
}
