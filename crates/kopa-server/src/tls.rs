//! HTTPS served by the node itself: a certificate chain and its private key, read from PEM files,
//! and read again on demand ([`TlsFiles::reload`], which `kopa serve` calls on SIGHUP).
//!
//! New connections always use the pair last read successfully: a reload that fails (a file missing,
//! unreadable, holding no certificate, or a key that does not match the certificate) leaves the pair
//! in use unchanged, and the caller logs the error. Connections already open keep the pair they
//! were made with. TLS 1.2 and 1.3 only (rustls), HTTP/1.1 inside.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a certificate or key could not be used; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS file {} does not exist", .0.display())]
    Missing(PathBuf),
    #[error("cannot read TLS file {}: {source}", .path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS certificate file {} holds no certificate (a PEM \"BEGIN CERTIFICATE\" block): {reason}", .path.display())]
    NoCertificate { path: PathBuf, reason: String },
    #[error("TLS key file {} holds no private key (a PEM \"BEGIN PRIVATE KEY\", \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\" block): {reason}", .path.display())]
    NoKey { path: PathBuf, reason: String },
    #[error("TLS key file {}: the key cannot be used: {reason}", .path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error("TLS key file {} does not match the certificate in {}", .key.display(), .certificate.display())]
    KeyMismatch { certificate: PathBuf, key: PathBuf },
    #[error("TLS settings: {0}")]
    Config(String),
}

/// The node's certificate and key: where they are read from, and the pair in use.
pub struct TlsFiles {
    certificate: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
}

impl fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsFiles")
            .field("certificate", &self.certificate)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl TlsFiles {
    /// Read the certificate chain (PEM, the server's certificate first) and the private key (PEM).
    pub fn load(
        certificate: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Result<Arc<Self>, TlsError> {
        let (certificate, key) = (certificate.into(), key.into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let pair = read_pair(&certificate, &key, &provider)?;
        Ok(Arc::new(TlsFiles {
            certificate,
            key,
            provider,
            current: ArcSwap::from_pointee(pair),
        }))
    }

    /// Read both files again; on success new connections use the new pair, on failure the pair in
    /// use stays and the error is returned (for the caller to log).
    pub fn reload(&self) -> Result<(), TlsError> {
        let pair = read_pair(&self.certificate, &self.key, &self.provider)?;
        self.current.store(Arc::new(pair));
        Ok(())
    }

    /// The certificate file.
    pub fn certificate_path(&self) -> &Path {
        &self.certificate
    }

    /// The key file.
    pub fn key_path(&self) -> &Path {
        &self.key
    }

    /// The acceptor of the listener: TLS 1.2 and 1.3, HTTP/1.1, the current pair for each
    /// handshake.
    pub(crate) fn acceptor(self: &Arc<Self>) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

impl ResolvesServerCert for TlsFiles {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            TlsError::Missing(path.to_path_buf())
        } else {
            TlsError::Unreadable {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

fn read_pair(
    certificate: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read_file(certificate)?;
    let key_pem = read_file(key)?;
    let no_cert = |reason: String| TlsError::NoCertificate {
        path: certificate.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| no_cert(e.to_string()))?;
    if chain.is_empty() {
        return Err(no_cert("none found".into()));
    }
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
        path: key.to_path_buf(),
        reason: match e {
            rustls_pki_types::pem::Error::NoItemsFound => "none found".into(),
            e => e.to_string(),
        },
    })?;
    let signer = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| TlsError::BadKey {
            path: key.to_path_buf(),
            reason: e.to_string(),
        })?;
    let pair = CertifiedKey::new(chain, signer);
    match pair.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(pair)
        }
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                certificate: certificate.to_path_buf(),
                key: key.to_path_buf(),
            })
        }
        Err(e) => Err(no_cert(format!(
            "the first certificate cannot be read: {e}"
        ))),
    }
}
