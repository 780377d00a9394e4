//! `kopa serve`: open (or on first start create) the node and run its HTTP server and its federation
//! sync loop until SIGINT or SIGTERM, then stop gracefully: in-flight requests finish, so no
//! acknowledged write is lost, and the sync loop stops between pages (its cursors are saved only
//! after a page is stored).
//!
//! With `tls.certificate` and `tls.key` it serves HTTPS only, and reads both files again on SIGHUP
//! (a reload that fails is logged and the old pair stays in use). Without them it serves plain HTTP,
//! on a loopback address only unless `http.allow_plain` is set.

use crate::config::{self, Config};
use crate::node;
use anyhow::Context;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args)]
pub struct ServeArgs {
    /// Data directory (SQLite database and node files), created on first start [default: ./kopa-data].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7470].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// PostgreSQL URL (postgres://user@host/db) instead of SQLite; the database must exist.
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// Configuration file [default: DIR/kopa.toml when present].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The administrator token from `KOPA_ADMIN_TOKEN` or the file named by `KOPA_ADMIN_TOKEN_FILE`.
fn admin_token_from_env() -> anyhow::Result<Option<String>> {
    match (
        std::env::var("KOPA_ADMIN_TOKEN").ok(),
        std::env::var("KOPA_ADMIN_TOKEN_FILE").ok(),
    ) {
        (Some(_), Some(_)) => {
            anyhow::bail!("both KOPA_ADMIN_TOKEN and KOPA_ADMIN_TOKEN_FILE are set: keep one")
        }
        (Some(t), None) => Ok(Some(t)),
        (None, Some(path)) => Ok(Some(
            std::fs::read_to_string(&path)
                .with_context(|| format!("KOPA_ADMIN_TOKEN_FILE: cannot read {path}"))?
                .trim()
                .to_string(),
        )),
        (None, None) => Ok(None),
    }
}

fn init_logging(config: &Config) {
    // KOPA_LOG is the `log` key's environment form (already in config.log); RUST_LOG is honoured
    // when KOPA_LOG is not set.
    let filter = if std::env::var_os("KOPA_LOG").is_none() {
        std::env::var("RUST_LOG").unwrap_or_else(|_| config.log.clone())
    } else {
        config.log.clone()
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|e| {
        eprintln!("warning: log filter {filter:?} is not valid ({e}); using \"info\"");
        tracing_subscriber::EnvFilter::new("info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let loaded = config::load(&config::Flags {
        config: args.config,
        data: args.data,
        database: args.database,
        listen: args.listen,
    })?;
    let config = loaded.config;
    init_logging(&config);
    if let Some(file) = &loaded.file {
        tracing::info!(file = %file.display(), "configuration file read");
    }
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let admin_token = admin_token_from_env()?;
    if let Some(t) = &admin_token {
        // Checked before anything is opened or created.
        if t.chars().count() < node::ADMIN_TOKEN_MIN_LEN {
            anyhow::bail!(
                "KOPA_ADMIN_TOKEN must be at least {} characters long",
                node::ADMIN_TOKEN_MIN_LEN
            );
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(config, admin_token))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: Config, admin_token: Option<String>) -> anyhow::Result<()> {
    let shutdown = shutdown_signal()?;
    let reload = reload_signal()?;
    // TLS (or plain HTTP allowed) is settled before anything is created, and the files are read
    // now so that a bad one stops the start, naming it.
    config::check_plain_listen(&config)?;
    let tls = match (&config.tls_certificate, &config.tls_key) {
        (Some(cert), Some(key)) => Some(kopa_server::TlsFiles::load(cert, key)?),
        _ => None,
    };
    // The data directory first (private, and ours alone while we run: a second server on it
    // stops here, naming it), before the SQLite database in it is opened. With PostgreSQL it holds
    // only the node's key: it is made ready once the database is known to exist, so that a refused
    // start creates nothing. Held until this returns.
    let mut lock = match config.database {
        None => Some(node::prepare_data_dir(&config.data)?),
        Some(_) => None,
    };
    // Bind before the store: a port in use must stop a first start before it makes (and prints)
    // the administrator's token.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let store = node::open_for_serve(&config).await?;
    if lock.is_none() {
        lock = Some(node::prepare_data_dir(&config.data)?);
    }
    let _lock = lock;
    let key = node::node_key(&*store, &config).await?;
    let init = node::init(&*store, &config, admin_token.as_deref(), &key).await?;
    if init.created {
        tracing::info!(node = %init.node.id, name = %init.node.name, "new node created");
    } else if let Some(t) = &admin_token {
        warn_if_not_admin_token(&*store, t).await;
    }
    if let Some(token) = &init.generated_token {
        // Printed once, on stdout only: never through the log.
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "administrator token for user {} (shown only now, keep it safe): {token}",
            node::ADMIN_USER
        )?;
        out.flush()?;
    }
    tracing::info!(
        listen = %config.listen,
        https = tls.is_some(),
        store = %node::describe(&config),
        node = %init.node.name,
        "kopa serving"
    );
    let server_config = kopa_server::ServerConfig {
        listen: config.listen,
        title: init.node.name.clone(),
        max_content_length: usize::try_from(config.max_content_length).unwrap_or(usize::MAX),
        default_tlp: config.tlp_default,
        api_root: "kopa".into(),
        status_retention_hours: config.status_retention_hours,
        default_page_size: usize::try_from(config.page_size).unwrap_or(usize::MAX),
        max_page_size: usize::try_from(config.max_page_size).unwrap_or(usize::MAX),
        header_read_timeout: Duration::from_secs(config.header_read_timeout_seconds),
        max_connections: usize::try_from(config.max_connections).unwrap_or(usize::MAX),
        shutdown_deadline: Duration::from_secs(config.shutdown_deadline_seconds),
        auth_failures: u32::try_from(config.auth_max_failures).unwrap_or(u32::MAX),
        auth_failure_window: Duration::from_secs(config.auth_failure_window_seconds),
    };
    // One signal stops both the server and the sync loop.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    // The node's identity: its users' objects are signed with it, peers are checked against it,
    // and the sync loop signs its calls to peers with it. Server and sync loop share one state.
    let identity = std::sync::Arc::new(kopa_federation::NodeIdentity::new(key));
    // The audit log is anchored by signed checkpoints: now, periodically, and at the clean stop.
    let mut checkpointed =
        crate::checkpoints::write(&*store, identity.key(), &config.data, None).await?;
    let checkpointer = {
        let (store, identity, dir) = (store.clone(), identity.clone(), config.data.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::checkpoints::INTERVAL);
            tick.tick().await;
            loop {
                tick.tick().await;
                match crate::checkpoints::write(&*store, identity.key(), &dir, checkpointed).await {
                    Ok(c) => checkpointed = c,
                    Err(e) => tracing::error!(error = %e, "could not checkpoint the audit log"),
                }
            }
        })
    };
    let checkpoint_identity = identity.clone();
    let state = kopa_server::AppState::with_node(store.clone(), server_config, Some(identity));
    let sync_context = kopa_sync::SyncContext {
        store: store.clone(),
        identity: checkpoint_identity.clone(),
        receiver: state
            .receiver()
            .context("a node with an identity receives objects")?,
        metrics: std::sync::Arc::new(state.metrics().clone()),
    };
    let sync = tokio::spawn(kopa_sync::run(
        sync_context,
        sync_config(&config),
        stopped(stop_rx.clone()),
    ));
    let reloader = reload(tls.clone());
    let served = kopa_server::serve_app_tls(listener, state, tls, stopped(stop_rx))
        .await
        .context("the server stopped with an error");
    reloader.abort();
    match sync.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "the federation sync loop stopped with an error"),
        Err(e) => tracing::error!(error = %e, "the federation sync loop failed"),
    }
    served?;
    checkpointer.abort();
    crate::checkpoints::write(&*store, checkpoint_identity.key(), &config.data, None)
        .await
        .context("could not checkpoint the audit log at the stop")?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// The sync loop's settings from the `federation.*` keys.
fn sync_config(config: &Config) -> kopa_sync::SyncConfig {
    kopa_sync::SyncConfig {
        pull_interval: std::time::Duration::from_secs(config.pull_interval_seconds),
        page_size: usize::try_from(config.federation_page_size).unwrap_or(usize::MAX),
        concurrency: usize::try_from(config.federation_concurrency).unwrap_or(usize::MAX),
        ..kopa_sync::SyncConfig::default()
    }
}

/// `KOPA_ADMIN_TOKEN` is used at first start only: say so when a later start is given another one.
async fn warn_if_not_admin_token(store: &dyn kopa_store::Store, token: &str) {
    if kopa_server::authenticate(store, token, Some(node::ADMIN_USER))
        .await
        .is_err()
    {
        tracing::warn!(
            "KOPA_ADMIN_TOKEN is not a valid token of user {}: it is used only at the node's first \
             start (a user who lost every token is let in again with `kopa user enrol {}`)",
            node::ADMIN_USER,
            node::ADMIN_USER
        );
    }
}

/// Read the certificate and key again, as SIGHUP does: on success new connections use the new pair;
/// on failure the error is logged and the pair in use stays.
pub fn reload_tls(tls: &kopa_server::TlsFiles) {
    match tls.reload() {
        Ok(()) => tracing::info!(
            certificate = %tls.certificate_path().display(),
            key = %tls.key_path().display(),
            "TLS certificate and key reloaded"
        ),
        Err(e) => tracing::error!(
            error = %e,
            "TLS reload failed: the certificate and key in use are kept"
        ),
    }
}

/// Registers for SIGHUP now (a signal arriving while the node starts is kept), and returns the
/// loop to run once serving: each SIGHUP reloads the TLS files (without TLS there is nothing to
/// reload, and the node keeps running).
#[cfg(unix)]
fn reload_signal() -> anyhow::Result<
    impl FnOnce(Option<std::sync::Arc<kopa_server::TlsFiles>>) -> tokio::task::JoinHandle<()>,
> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    Ok(move |tls: Option<std::sync::Arc<kopa_server::TlsFiles>>| {
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match &tls {
                    Some(tls) => {
                        let tls = tls.clone();
                        // File reads: off the async workers.
                        let _ = tokio::task::spawn_blocking(move || reload_tls(&tls)).await;
                    }
                    None => tracing::info!("SIGHUP received: no TLS configured, nothing to reload"),
                }
            }
        })
    })
}

#[cfg(not(unix))]
fn reload_signal() -> anyhow::Result<
    impl FnOnce(Option<std::sync::Arc<kopa_server::TlsFiles>>) -> tokio::task::JoinHandle<()>,
> {
    Ok(|_tls: Option<std::sync::Arc<kopa_server::TlsFiles>>| tokio::spawn(async {}))
}

/// Registers for SIGINT (Ctrl-C) and SIGTERM at once, so that a signal arriving while the node is
/// still starting is not lost; the returned future resolves on either.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    Ok(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("Ctrl-C received, shutting down");
        }
    })
}
