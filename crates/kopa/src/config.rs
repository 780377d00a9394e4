//! The node's configuration, in layers: built-in defaults → a TOML file (`--config FILE`, else
//! `DATA/kopa.toml` when present) → `KOPA_` environment variables → command-line flags.
//!
//! Environment names are the key in capitals with `__` for each dot (`taxii.page_size` →
//! `KOPA_TAXII__PAGE_SIZE`); a `_FILE` suffix reads the value from a file (for secrets such as a
//! database URL with a password: `KOPA_DATABASE_FILE=/run/secrets/db`). Unknown keys in the file are
//! reported as warnings naming the key, so that a typo does not pass silently.

use anyhow::{bail, Context};
use kopa_core::Tlp;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Every configuration key, with the kind of value it takes.
pub const KEYS: &[(&str, Kind)] = &[
    ("node.name", Kind::Str),
    ("node.url", Kind::Str),
    ("listen", Kind::Str),
    ("data", Kind::Str),
    ("database", Kind::Str),
    ("taxii.max_content_length", Kind::Int),
    ("taxii.page_size", Kind::Int),
    ("taxii.max_page_size", Kind::Int),
    ("tlp.default", Kind::Str),
    ("status_retention_hours", Kind::Int),
    ("log", Kind::Str),
    ("federation.pull_interval_seconds", Kind::Int),
    ("federation.page_size", Kind::Int),
    ("federation.concurrency", Kind::Int),
    ("sqlite.readers", Kind::Int),
    ("http.header_read_timeout_seconds", Kind::Int),
    ("http.max_connections", Kind::Int),
    ("http.shutdown_deadline_seconds", Kind::Int),
    ("http.allow_plain", Kind::Bool),
    ("tls.certificate", Kind::Str),
    ("tls.key", Kind::Str),
    ("auth.max_failures", Kind::Int),
    ("auth.failure_window_seconds", Kind::Int),
];

/// The kind of value a key takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
    Bool,
}

/// One value set by a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    Str(String),
    Int(u64),
    Bool(bool),
}

/// The documented default configuration file, printed by `kopa config default`.
pub const DEFAULT_FILE: &str = r#"# Kopa node configuration (TOML).
# Layers, later ones win: these defaults, this file, KOPA_ environment variables, command-line flags.
# Environment names: KOPA_ + the key in capitals, "__" for each dot (KOPA_TAXII__PAGE_SIZE=500);
# add _FILE to read a value from a file (KOPA_DATABASE_FILE=/run/secrets/kopa-db-url).
# The file is read from --config FILE, else from DATA/kopa.toml when that exists.

# Address the HTTP server (TAXII 2.1, REST API, /healthz, /metrics) listens on.
listen = "127.0.0.1:7470"

# Data directory: holds the SQLite database (kopa.db) and the node's files. `kopa serve` creates it
# on first start; the admin commands never do.
data = "./kopa-data"

# PostgreSQL instead of SQLite: postgres://user:password@host:5432/dbname. The database must exist;
# Kopa never creates one. Empty = SQLite inside the data directory.
database = ""

# Log filter (tracing EnvFilter syntax), e.g. "info", "kopa=debug,info". KOPA_LOG or RUST_LOG also work.
log = "info"

# How long TAXII status resources stay queryable, in hours (at least 24).
status_retention_hours = 24

[node]
# The node's name, fixed at first start. Empty = the host name, or "kopa" when it has none.
name = ""
# The public base URL of this node (e.g. https://kopa.cert.example), given to peers. Empty = none.
url = ""

[taxii]
# Largest request body accepted, in bytes; larger ones get HTTP 413.
max_content_length = 10485760
# Objects per page when a client gives no limit.
page_size = 1000
# The most objects per page a client may ask for (larger limits are lowered to this).
max_page_size = 10000

[tlp]
# The label of objects that carry no TLP marking; they are also narrowed to their owner organisation.
default = "TLP:AMBER"

[federation]
# Seconds between two pulls from one peer (after an error the wait doubles, up to eight times this).
pull_interval_seconds = 30
# Objects per page read from a peer, and per envelope posted to one.
page_size = 1000
# Peers synchronised at the same time.
concurrency = 4

[sqlite]
# Reader connections of the SQLite database, each on a thread of its own (1 to 64). More reads at
# once wait for a free one. Each reader holds a page cache of about 4 MB, its prepared statements
# and its thread's allocator arena; with the one writer (64 MB cache) this bounds the node's
# memory. Not used with PostgreSQL.
readers = 4

[http]
# Seconds a client may take to send a request's headers (and a kept-alive connection may wait for
# its next request); slower connections are closed, so that idle or trickling clients cannot hold
# connections open.
header_read_timeout_seconds = 10
# Connections served at once (1 to 1000000). More wait, in order, in the listen queue until one
# closes.
max_connections = 1024
# On SIGINT or SIGTERM: seconds that requests in flight may take to finish before the connections
# still open are closed and the node stops. 0 = close them at once.
shutdown_deadline_seconds = 30
# Plain HTTP (no TLS) on an address other than loopback (127.0.0.0/8, ::1). Without [tls] the node
# refuses to listen there unless this is true, e.g. behind a reverse proxy that terminates TLS.
allow_plain = false

[tls]
# HTTPS served by the node itself: a PEM file with the certificate chain (the node's certificate
# first) and a PEM file with its private key. Both set = the listener speaks TLS only (1.2 and 1.3).
# Both are read again on SIGHUP; a reload that fails is logged and the old pair stays in use.
# Empty = plain HTTP.
certificate = ""
key = ""

[auth]
# Failed authentications allowed in a row per client address (IPv6: per /64) and per token id;
# beyond, authentication is refused with HTTP 429 and Retry-After until the allowance comes back.
max_failures = 10
# Seconds over which the whole allowance comes back (one failure per window / max_failures).
failure_window_seconds = 60
"#;

/// The node's effective configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub node_name: Option<String>,
    pub node_url: Option<String>,
    pub listen: SocketAddr,
    pub data: PathBuf,
    /// A `postgres://` URL, or `None` for SQLite inside `data`.
    pub database: Option<String>,
    pub max_content_length: u64,
    pub page_size: u64,
    pub max_page_size: u64,
    pub tlp_default: Tlp,
    pub status_retention_hours: u64,
    pub log: String,
    pub pull_interval_seconds: u64,
    pub federation_page_size: u64,
    pub federation_concurrency: u64,
    pub sqlite_readers: u64,
    pub header_read_timeout_seconds: u64,
    pub max_connections: u64,
    pub shutdown_deadline_seconds: u64,
    pub allow_plain: bool,
    pub tls_certificate: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub auth_max_failures: u64,
    pub auth_failure_window_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_name: None,
            node_url: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 7470)),
            data: PathBuf::from("./kopa-data"),
            database: None,
            max_content_length: 10 * 1024 * 1024,
            page_size: 1000,
            max_page_size: 10_000,
            tlp_default: Tlp::Amber,
            status_retention_hours: 24,
            log: "info".into(),
            pull_interval_seconds: 30,
            federation_page_size: 1000,
            federation_concurrency: 4,
            sqlite_readers: kopa_store::DEFAULT_SQLITE_READERS as u64,
            header_read_timeout_seconds: 10,
            max_connections: 1024,
            shutdown_deadline_seconds: 30,
            allow_plain: false,
            tls_certificate: None,
            tls_key: None,
            auth_max_failures: 10,
            auth_failure_window_seconds: 60,
        }
    }
}

/// Values given on the command line (highest layer).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub data: Option<PathBuf>,
    pub database: Option<String>,
    pub listen: Option<String>,
}

/// The configuration and the warnings met while reading it (to be logged once logging is up).
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
    /// The file that was read, if any.
    pub file: Option<PathBuf>,
}

fn kind_of(key: &str) -> Option<Kind> {
    KEYS.iter().find(|(k, _)| *k == key).map(|&(_, kind)| kind)
}

/// The environment variable of a key: `taxii.page_size` → `KOPA_TAXII__PAGE_SIZE`.
pub fn env_name(key: &str) -> String {
    format!("KOPA_{}", key.to_ascii_uppercase().replace('.', "__"))
}

/// Load the configuration from the process environment and `flags`.
pub fn load(flags: &Flags) -> anyhow::Result<Loaded> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    load_from(flags, &env)
}

/// Load the configuration from the given environment and `flags` (testable form of [`load`]).
pub fn load_from(flags: &Flags, env: &BTreeMap<String, String>) -> anyhow::Result<Loaded> {
    let mut warnings = env_typos(env);
    let env_values = env_layer(env)?;

    // Where the file is: --config, else DATA/kopa.toml with DATA from the layers above the file.
    let file = match &flags.config {
        Some(path) => {
            if !path.is_file() {
                bail!("configuration file {} does not exist", path.display());
            }
            Some(path.clone())
        }
        None => {
            let data = flags
                .data
                .clone()
                .or_else(|| match env_values.get("data") {
                    Some(Val::Str(s)) => Some(PathBuf::from(s)),
                    _ => None,
                })
                .unwrap_or_else(|| Config::default().data);
            let candidate = data.join("kopa.toml");
            candidate.is_file().then_some(candidate)
        }
    };

    let mut config = Config::default();
    if let Some(path) = &file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read configuration file {}", path.display()))?;
        for (key, val) in file_layer(&text, path, &mut warnings)? {
            apply(&mut config, &key, val)
                .with_context(|| format!("in {}: key {key}", path.display()))?;
        }
    }
    for (key, val) in env_values {
        apply(&mut config, key, val).with_context(|| format!("in {}", env_name(key)))?;
    }
    if let Some(data) = &flags.data {
        config.data = data.clone();
    }
    if let Some(db) = &flags.database {
        apply(&mut config, "database", Val::Str(db.clone())).context("in --database")?;
    }
    if let Some(listen) = &flags.listen {
        apply(&mut config, "listen", Val::Str(listen.clone())).context("in --listen")?;
    }
    check(&config)?;
    Ok(Loaded {
        config,
        warnings,
        file,
    })
}

/// Warnings for `KOPA_` variables that are no key's name but nearly one (`KOPA_NODE_NAME` for
/// `KOPA_NODE__NAME`). Other `KOPA_` variables (`KOPA_ADMIN_TOKEN`, …) are not configuration keys.
fn env_typos(env: &BTreeMap<String, String>) -> Vec<String> {
    let known: Vec<String> = KEYS
        .iter()
        .flat_map(|(k, _)| [env_name(k), format!("{}_FILE", env_name(k))])
        .collect();
    env.keys()
        .filter(|name| name.starts_with("KOPA_") && !known.contains(name))
        .filter_map(|name| {
            let near = known
                .iter()
                .filter(|k| !k.ends_with("_FILE") || name.ends_with("_FILE"))
                .min_by_key(|k| edit_distance(k, name))?;
            (edit_distance(near, name) <= 2).then(|| {
                format!("environment variable {name} is not a configuration key, ignored (did you mean {near}?)")
            })
        })
        .collect()
}

/// Values from `KOPA_` variables (and their `_FILE` forms), for known keys only.
fn env_layer(env: &BTreeMap<String, String>) -> anyhow::Result<BTreeMap<&'static str, Val>> {
    let mut out = BTreeMap::new();
    for &(key, kind) in KEYS {
        let name = env_name(key);
        let file_name = format!("{name}_FILE");
        let raw = match (env.get(&name), env.get(&file_name)) {
            (Some(_), Some(_)) => bail!("both {name} and {file_name} are set: keep one"),
            (Some(v), None) => v.clone(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .with_context(|| format!("{file_name}: cannot read {path}"))?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
            (None, None) => continue,
        };
        let val = match kind {
            Kind::Str => Val::Str(raw),
            Kind::Int => Val::Int(raw.trim().parse().map_err(|_| {
                anyhow::anyhow!("{name} must be a whole number ≥ 0, found {raw:?}")
            })?),
            Kind::Bool => Val::Bool(match raw.trim() {
                "true" => true,
                "false" => false,
                _ => bail!("{name} must be true or false, found {raw:?}"),
            }),
        };
        out.insert(key, val);
    }
    Ok(out)
}

/// Flatten a TOML file into (dotted key, value), checking each value's kind. Unknown keys are
/// warnings.
fn file_layer(
    text: &str,
    path: &Path,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Vec<(String, Val)>> {
    let table: toml::Table =
        toml::from_str(text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    let mut out = Vec::new();
    flatten("", &table, path, warnings, &mut out)?;
    Ok(out)
}

fn flatten(
    prefix: &str,
    table: &toml::Table,
    path: &Path,
    warnings: &mut Vec<String>,
    out: &mut Vec<(String, Val)>,
) -> anyhow::Result<()> {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if let toml::Value::Table(inner) = v {
            if KEYS
                .iter()
                .any(|(known, _)| known.starts_with(&format!("{key}.")))
            {
                flatten(&key, inner, path, warnings, out)?;
            } else {
                warnings.push(unknown_key(&key, path));
            }
            continue;
        }
        let Some(kind) = kind_of(&key) else {
            warnings.push(unknown_key(&key, path));
            continue;
        };
        let val = match (kind, v) {
            (Kind::Str, toml::Value::String(s)) => Val::Str(s.clone()),
            (Kind::Int, toml::Value::Integer(i)) if *i >= 0 => Val::Int(*i as u64),
            (Kind::Bool, toml::Value::Boolean(b)) => Val::Bool(*b),
            (Kind::Str, _) => bail!("{}: {key} must be a string", path.display()),
            (Kind::Int, _) => bail!("{}: {key} must be a whole number ≥ 0", path.display()),
            (Kind::Bool, _) => bail!("{}: {key} must be true or false", path.display()),
        };
        out.push((key, val));
    }
    Ok(())
}

fn unknown_key(key: &str, path: &Path) -> String {
    let hint = KEYS
        .iter()
        .map(|(k, _)| *k)
        .min_by_key(|k| edit_distance(k, key))
        .filter(|k| edit_distance(k, key) <= 3)
        .map(|k| format!(" (did you mean {k}?)"))
        .unwrap_or_default();
    format!(
        "{}: unknown configuration key {key}, ignored{hint}",
        path.display()
    )
}

/// Levenshtein distance, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Set one key. Empty strings mean "unset" for the optional keys.
fn apply(config: &mut Config, key: &str, val: Val) -> anyhow::Result<()> {
    let opt = |s: String| (!s.trim().is_empty()).then_some(s);
    match (key, val) {
        ("node.name", Val::Str(s)) => config.node_name = opt(s),
        ("node.url", Val::Str(s)) => config.node_url = opt(s),
        ("listen", Val::Str(s)) => {
            config.listen = s.trim().parse().map_err(|_| {
                anyhow::anyhow!("listen address {s:?} is not of the form IP:PORT, e.g. 127.0.0.1:7470")
            })?
        }
        ("data", Val::Str(s)) => {
            if s.trim().is_empty() {
                bail!("the data directory must not be empty");
            }
            config.data = PathBuf::from(s)
        }
        ("database", Val::Str(s)) => {
            let s = opt(s);
            if let Some(url) = &s {
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    bail!(
                        "database {:?} is not a PostgreSQL URL (postgres://user@host/dbname); \
                         for SQLite give the data directory with --data DIR instead",
                        redact(url)
                    );
                }
            }
            config.database = s
        }
        ("taxii.max_content_length", Val::Int(n)) => config.max_content_length = n,
        ("taxii.page_size", Val::Int(n)) => config.page_size = n,
        ("taxii.max_page_size", Val::Int(n)) => config.max_page_size = n,
        ("tlp.default", Val::Str(s)) => {
            config.tlp_default = Tlp::parse(&s).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown TLP label {s:?}: use TLP:CLEAR, TLP:GREEN, TLP:AMBER, TLP:AMBER+STRICT or TLP:RED"
                )
            })?
        }
        ("status_retention_hours", Val::Int(n)) => config.status_retention_hours = n,
        ("log", Val::Str(s)) => config.log = s,
        ("federation.pull_interval_seconds", Val::Int(n)) => config.pull_interval_seconds = n,
        ("federation.page_size", Val::Int(n)) => config.federation_page_size = n,
        ("federation.concurrency", Val::Int(n)) => config.federation_concurrency = n,
        ("sqlite.readers", Val::Int(n)) => config.sqlite_readers = n,
        ("http.header_read_timeout_seconds", Val::Int(n)) => config.header_read_timeout_seconds = n,
        ("http.max_connections", Val::Int(n)) => config.max_connections = n,
        ("http.shutdown_deadline_seconds", Val::Int(n)) => config.shutdown_deadline_seconds = n,
        ("http.allow_plain", Val::Bool(b)) => config.allow_plain = b,
        ("tls.certificate", Val::Str(s)) => config.tls_certificate = opt(s).map(PathBuf::from),
        ("tls.key", Val::Str(s)) => config.tls_key = opt(s).map(PathBuf::from),
        ("auth.max_failures", Val::Int(n)) => config.auth_max_failures = n,
        ("auth.failure_window_seconds", Val::Int(n)) => config.auth_failure_window_seconds = n,
        (key, val) => bail!("value {val:?} does not fit key {key}"),
    }
    Ok(())
}

/// The largest `http.max_connections`.
const MAX_CONNECTIONS: u64 = 1_000_000;

/// Checks across keys.
fn check(c: &Config) -> anyhow::Result<()> {
    if c.max_content_length < 1024 {
        bail!("taxii.max_content_length must be at least 1024 bytes");
    }
    if c.page_size == 0 || c.max_page_size == 0 {
        bail!("taxii.page_size and taxii.max_page_size must be at least 1");
    }
    if c.page_size > c.max_page_size {
        bail!(
            "taxii.page_size ({}) is larger than taxii.max_page_size ({})",
            c.page_size,
            c.max_page_size
        );
    }
    if c.pull_interval_seconds == 0 {
        bail!("federation.pull_interval_seconds must be at least 1");
    }
    if c.federation_page_size == 0 || c.federation_concurrency == 0 {
        bail!("federation.page_size and federation.concurrency must be at least 1");
    }
    let readers = kopa_store::MAX_SQLITE_READERS as u64;
    if c.sqlite_readers == 0 || c.sqlite_readers > readers {
        bail!("sqlite.readers must be from 1 to {readers}");
    }
    if c.header_read_timeout_seconds == 0 {
        bail!("http.header_read_timeout_seconds must be at least 1");
    }
    if c.max_connections == 0 || c.max_connections > MAX_CONNECTIONS {
        bail!("http.max_connections must be from 1 to {MAX_CONNECTIONS}");
    }
    if c.auth_max_failures == 0 || c.auth_max_failures > u64::from(u32::MAX) {
        bail!("auth.max_failures must be from 1 to {}", u32::MAX);
    }
    if c.auth_failure_window_seconds == 0 {
        bail!("auth.failure_window_seconds must be at least 1");
    }
    if c.tls_certificate.is_some() != c.tls_key.is_some() {
        bail!("tls.certificate and tls.key go together: set both for HTTPS, or neither");
    }
    if c.status_retention_hours < 24 {
        bail!("status_retention_hours must be at least 24 (TAXII keeps status resources a day)");
    }
    Ok(())
}

/// Refuse plain HTTP on an address other than loopback, unless `http.allow_plain` says so (checked
/// by `kopa serve` only: the other commands do not listen).
pub fn check_plain_listen(c: &Config) -> anyhow::Result<()> {
    let loopback = c.listen.ip().to_canonical().is_loopback();
    if c.tls_certificate.is_none() && !loopback && !c.allow_plain {
        bail!(
            "refusing to serve plain HTTP on {}, which is not a loopback address: set \
             tls.certificate and tls.key (KOPA_TLS__CERTIFICATE, KOPA_TLS__KEY) for HTTPS, or, \
             behind a reverse proxy that terminates TLS, set http.allow_plain = true \
             (KOPA_HTTP__ALLOW_PLAIN=true)",
            c.listen
        );
    }
    Ok(())
}

pub use kopa_store::redact_url as redact;

/// The host name, for the default node name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "kopa".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn default_file_is_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kopa.toml");
        std::fs::write(&path, DEFAULT_FILE).unwrap();
        let mut warnings = Vec::new();
        let values = file_layer(DEFAULT_FILE, &path, &mut warnings).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        // Every key is documented in the default file.
        for (key, _) in KEYS {
            assert!(values.iter().any(|(k, _)| k == key), "{key} missing");
        }
        let mut c = Config::default();
        for (k, v) in values {
            apply(&mut c, &k, v).unwrap();
        }
        assert_eq!(c, Config::default());
    }

    #[test]
    fn layers_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1000\"\nlog = \"debug\"\n[taxii]\npage_size = 50\nmax_page_size = 60\n[node]\nname = \"file\"\n",
        )
        .unwrap();
        let flags = Flags {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:3000".into()),
            ..Default::default()
        };
        let e = env(&[
            ("KOPA_LISTEN", "127.0.0.1:2000"),
            ("KOPA_TAXII__PAGE_SIZE", "55"),
            ("KOPA_UNRELATED", "x"),
        ]);
        let loaded = load_from(&flags, &e).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let c = loaded.config;
        assert_eq!(c.listen.port(), 3000); // flag beats env beats file
        assert_eq!(c.page_size, 55); // env beats file
        assert_eq!(c.max_page_size, 60); // file beats default
        assert_eq!(c.log, "debug");
        assert_eq!(c.node_name.as_deref(), Some("file"));
        assert_eq!(c.status_retention_hours, 24); // default
        let e = env(&[("KOPA_FEDERATION__PULL_INTERVAL_SECONDS", "1")]);
        let c = load_from(&Flags::default(), &e).unwrap().config;
        assert_eq!((c.pull_interval_seconds, c.federation_page_size), (1, 1000));
        let e = env(&[
            ("KOPA_HTTP__MAX_CONNECTIONS", "8"),
            ("KOPA_HTTP__SHUTDOWN_DEADLINE_SECONDS", "0"),
            ("KOPA_AUTH__MAX_FAILURES", "3"),
        ]);
        let c = load_from(&Flags::default(), &e).unwrap().config;
        assert!(!c.allow_plain);
        assert_eq!(
            (
                c.max_connections,
                c.shutdown_deadline_seconds,
                c.auth_max_failures,
                c.header_read_timeout_seconds,
                c.auth_failure_window_seconds
            ),
            (8, 0, 3, 10, 60)
        );
    }

    #[test]
    fn tls_and_plain_http() {
        let e = env(&[
            ("KOPA_TLS__CERTIFICATE", "/etc/kopa/cert.pem"),
            ("KOPA_TLS__KEY", "/etc/kopa/key.pem"),
            ("KOPA_LISTEN", "0.0.0.0:7470"),
        ]);
        let c = load_from(&Flags::default(), &e).unwrap().config;
        assert_eq!(c.tls_certificate, Some(PathBuf::from("/etc/kopa/cert.pem")));
        assert_eq!(c.tls_key, Some(PathBuf::from("/etc/kopa/key.pem")));
        check_plain_listen(&c).unwrap();
        let c = load_from(&Flags::default(), &env(&[("KOPA_LISTEN", "[::]:7470")]))
            .unwrap()
            .config;
        let msg = check_plain_listen(&c).unwrap_err().to_string();
        assert!(
            msg.contains("tls.certificate") && msg.contains("http.allow_plain"),
            "{msg}"
        );
        for listen in ["127.0.0.1:7470", "127.0.0.2:7470", "[::1]:7470"] {
            let c = load_from(&Flags::default(), &env(&[("KOPA_LISTEN", listen)]))
                .unwrap()
                .config;
            check_plain_listen(&c).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:7470\"\n[http]\nallow_plain = true\n",
        )
        .unwrap();
        let flags = Flags {
            config: Some(path),
            ..Default::default()
        };
        let c = load_from(&flags, &BTreeMap::new()).unwrap().config;
        assert!(c.allow_plain);
        check_plain_listen(&c).unwrap();
    }

    #[test]
    fn file_suffix_reads_secret() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("db");
        std::fs::write(&secret, "postgres://u:pw@h/db\n").unwrap();
        let e = env(&[("KOPA_DATABASE_FILE", secret.to_str().unwrap())]);
        let c = load_from(&Flags::default(), &e).unwrap().config;
        assert_eq!(c.database.as_deref(), Some("postgres://u:pw@h/db"));
        assert_eq!(redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
    }

    #[test]
    fn data_dir_file_is_found_and_typos_warned() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("kopa.toml"),
            "lsiten = \"x\"\n[taxii]\npage_sise = 3\n[nodes]\nname = \"x\"\n",
        )
        .unwrap();
        let flags = Flags {
            data: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        let loaded = load_from(&flags, &BTreeMap::new()).unwrap();
        assert!(loaded.file.is_some());
        let w = loaded.warnings.join("\n");
        assert!(
            w.contains("lsiten") && w.contains("did you mean listen"),
            "{w}"
        );
        assert!(
            w.contains("taxii.page_sise") && w.contains("taxii.page_size"),
            "{w}"
        );
        assert!(w.contains("nodes"), "{w}");
    }

    #[test]
    fn near_miss_environment_names_are_warned() {
        let e = env(&[
            ("KOPA_NODE_NAME", "x"),
            ("KOPA_ADMIN_TOKEN", "not a key, no warning"),
            ("KOPA_TEST_PG_URL", "not a key, no warning"),
        ]);
        let loaded = load_from(&Flags::default(), &e).unwrap();
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        assert!(loaded.warnings[0].contains("did you mean KOPA_NODE__NAME"));
        assert_eq!(loaded.config.node_name, None);
    }

    #[test]
    fn bad_values_are_named() {
        let cases: &[(&str, &str, &str)] = &[
            ("KOPA_TAXII__PAGE_SIZE", "many", "KOPA_TAXII__PAGE_SIZE"),
            ("KOPA_LISTEN", "localhost", "IP:PORT"),
            ("KOPA_TLP__DEFAULT", "TLP:PURPLE", "TLP:PURPLE"),
            ("KOPA_DATABASE", "mysql://x/y", "not a PostgreSQL URL"),
            ("KOPA_STATUS_RETENTION_HOURS", "1", "at least 24"),
            (
                "KOPA_FEDERATION__PULL_INTERVAL_SECONDS",
                "0",
                "federation.pull_interval_seconds",
            ),
            ("KOPA_FEDERATION__PAGE_SIZE", "0", "federation.page_size"),
            ("KOPA_SQLITE__READERS", "0", "sqlite.readers"),
            ("KOPA_SQLITE__READERS", "65", "sqlite.readers"),
            (
                "KOPA_FEDERATION__CONCURRENCY",
                "0",
                "federation.concurrency",
            ),
            (
                "KOPA_HTTP__HEADER_READ_TIMEOUT_SECONDS",
                "0",
                "http.header_read_timeout_seconds",
            ),
            ("KOPA_HTTP__MAX_CONNECTIONS", "0", "http.max_connections"),
            (
                "KOPA_HTTP__MAX_CONNECTIONS",
                "1000001",
                "http.max_connections",
            ),
            ("KOPA_AUTH__MAX_FAILURES", "0", "auth.max_failures"),
            ("KOPA_HTTP__ALLOW_PLAIN", "yes", "KOPA_HTTP__ALLOW_PLAIN"),
            ("KOPA_TLS__CERTIFICATE", "/etc/kopa/cert.pem", "tls.key"),
            (
                "KOPA_AUTH__FAILURE_WINDOW_SECONDS",
                "0",
                "auth.failure_window_seconds",
            ),
        ];
        for (name, value, want) in cases {
            let err = load_from(&Flags::default(), &env(&[(name, value)])).unwrap_err();
            let msg = format!("{err:#}");
            assert!(msg.contains(want), "{name}={value}: {msg}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.toml");
        std::fs::write(&path, "[taxii]\npage_size = \"ten\"\n").unwrap();
        let flags = Flags {
            config: Some(path),
            ..Default::default()
        };
        let msg = format!("{:#}", load_from(&flags, &BTreeMap::new()).unwrap_err());
        assert!(msg.contains("taxii.page_size"), "{msg}");
    }
}
