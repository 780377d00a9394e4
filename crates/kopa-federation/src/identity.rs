//! The node's identity: an Ed25519 key pair made at first start and kept in the data directory.
//!
//! The key file ([`KEY_FILE_NAME`]) holds the 32-byte secret seed in lowercase hex on one line, and is
//! created with mode 0600; a key file readable by group or others is refused at load time (as ssh does).
//! The secret never appears in `Debug` output or logs: [`NodeKey`]'s `Debug` shows the node id only.
//!
//! The node id is `node--` followed by the first 16 bytes of SHA-256 of the 32-byte public key, in
//! lowercase hex (32 hex digits). Public keys are written base64url without padding (43 characters);
//! [`PublicKey::parse`] also accepts 64 hex digits.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Name of the key file inside the data directory.
pub const KEY_FILE_NAME: &str = "node.key";

/// Problems loading, creating or parsing keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("node key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("node key file {path} is not one line of 64 hex digits (a 32-byte Ed25519 seed)")]
    Malformed { path: PathBuf },
    #[error("node key file {path} has mode {mode:o}; it must not be readable by group or others (chmod 600 it)")]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("public key {0:?} is neither 43 base64url characters nor 64 hex digits of a 32-byte Ed25519 key")]
    BadPublicKeyEncoding(String),
    #[error("public key {0:?} is not a valid Ed25519 point")]
    BadPublicKey(String),
    #[error("node id {0:?} is not node-- followed by 32 lowercase hex digits")]
    BadNodeId(String),
}

/// A node id: `node--` + 32 lowercase hex digits, derived from the node's public key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(String);

impl NodeId {
    /// The id of the node whose public key is `key`.
    pub fn of(key: &PublicKey) -> NodeId {
        let digest = Sha256::digest(key.0.as_bytes());
        NodeId(format!("node--{}", hex::encode(&digest[..16])))
    }

    /// Check the form of a node id read from outside (an object, a peer).
    pub fn parse(s: &str) -> Result<NodeId, KeyError> {
        let ok = s.strip_prefix("node--").is_some_and(|h| {
            h.len() == 32
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if ok {
            Ok(NodeId(s.to_string()))
        } else {
            Err(KeyError::BadNodeId(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An Ed25519 public key of a node.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(pub(crate) VerifyingKey);

impl PublicKey {
    /// Read a public key written base64url (no padding, 43 characters) or as 64 hex digits.
    pub fn parse(s: &str) -> Result<PublicKey, KeyError> {
        let s = s.trim();
        let bytes = if s.len() == 64 {
            hex::decode(s).map_err(|_| KeyError::BadPublicKeyEncoding(s.to_string()))?
        } else {
            URL_SAFE_NO_PAD
                .decode(s)
                .map_err(|_| KeyError::BadPublicKeyEncoding(s.to_string()))?
        };
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| KeyError::BadPublicKeyEncoding(s.to_string()))?;
        let key =
            VerifyingKey::from_bytes(&arr).map_err(|_| KeyError::BadPublicKey(s.to_string()))?;
        if key.is_weak() {
            return Err(KeyError::BadPublicKey(s.to_string()));
        }
        Ok(PublicKey(key))
    }

    /// The 32 bytes of the key.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// base64url without padding.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    /// The id of the node holding this key.
    pub fn node_id(&self) -> NodeId {
        NodeId::of(self)
    }

    pub(crate) fn verify_strict(&self, msg: &[u8], sig: &Signature) -> bool {
        self.0.verify_strict(msg, sig).is_ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.encode())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// The node's key pair. `Debug` shows only the node id; the secret is zeroed on drop.
pub struct NodeKey {
    signing: SigningKey,
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKey")
            .field("node_id", &self.node_id())
            .finish_non_exhaustive()
    }
}

impl NodeKey {
    /// A new random key pair from the operating system's generator.
    pub fn generate() -> NodeKey {
        NodeKey {
            signing: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// A key pair from a fixed seed (tests and benchmarks that need reproducible ids).
    pub fn from_seed(seed: [u8; 32]) -> NodeKey {
        NodeKey {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }

    pub fn node_id(&self) -> NodeId {
        self.public_key().node_id()
    }

    pub(crate) fn sign_bytes(&self, msg: &[u8]) -> Signature {
        self.signing.sign(msg)
    }

    /// Path of the key file in data directory `dir`.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(KEY_FILE_NAME)
    }

    /// Load the key of the node whose data directory is `dir`; `Ok(None)` when there is no key file yet.
    pub fn load(dir: &Path) -> Result<Option<NodeKey>, KeyError> {
        let path = Self::path_in(dir);
        let io = |source| KeyError::Io {
            path: path.clone(),
            source,
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::TooOpen { path, mode });
            }
        }
        let malformed = || KeyError::Malformed { path: path.clone() };
        let line = text.trim();
        if line.len() != 64 {
            return Err(malformed());
        }
        let seed: [u8; 32] = hex::decode(line)
            .map_err(|_| malformed())?
            .try_into()
            .map_err(|_| malformed())?;
        Ok(Some(NodeKey::from_seed(seed)))
    }

    /// Load the node key from `dir`, or make one and write it (mode 0600) when there is none.
    /// Returns the key and whether it was created now.
    pub fn load_or_create(dir: &Path) -> Result<(NodeKey, bool), KeyError> {
        if let Some(key) = Self::load(dir)? {
            return Ok((key, false));
        }
        let key = NodeKey::generate();
        let path = Self::path_in(dir);
        let io = |source| KeyError::Io {
            path: path.clone(),
            source,
        };
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = match opts.open(&path) {
            Ok(f) => f,
            // Another process made the key between our load and create: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return match Self::load(dir)? {
                    Some(k) => Ok((k, false)),
                    None => Err(io(e)),
                };
            }
            Err(e) => return Err(io(e)),
        };
        let mut line = hex::encode(key.signing.to_bytes());
        line.push('\n');
        file.write_all(line.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok((key, true))
    }
}

/// A running node's identity: its key pair with the node id and public key worked out once. Shared
/// (in an `Arc`) by the HTTP server (signing on ingest, checking `Kopa-Node` calls) and the sync loop
/// (signing its requests to peers).
#[derive(Debug)]
pub struct NodeIdentity {
    key: NodeKey,
    id: NodeId,
    public_key: PublicKey,
}

impl NodeIdentity {
    pub fn new(key: NodeKey) -> NodeIdentity {
        NodeIdentity {
            id: key.node_id(),
            public_key: key.public_key(),
            key,
        }
    }

    pub fn key(&self) -> &NodeKey {
        &self.key
    }

    pub fn id(&self) -> &NodeId {
        &self.id
    }

    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_is_derived_from_the_public_key() {
        let k = NodeKey::from_seed([7; 32]);
        let digest = Sha256::digest(k.public_key().0.as_bytes());
        assert_eq!(
            k.node_id().as_str(),
            format!("node--{}", hex::encode(&digest[..16]))
        );
        assert!(NodeId::parse(k.node_id().as_str()).is_ok());
        assert_ne!(k.node_id(), NodeKey::from_seed([8; 32]).node_id());
    }

    #[test]
    fn public_key_round_trips_in_both_encodings() {
        let k = NodeKey::from_seed([3; 32]).public_key();
        let b64 = k.encode();
        assert_eq!(b64.len(), 43);
        assert_eq!(PublicKey::parse(&b64).unwrap(), k);
        assert_eq!(PublicKey::parse(&hex::encode(k.0.as_bytes())).unwrap(), k);
        assert!(matches!(
            PublicKey::parse("not-a-key"),
            Err(KeyError::BadPublicKeyEncoding(_))
        ));
    }

    #[test]
    fn bad_node_ids_are_refused() {
        for bad in [
            "node--",
            "node--ABCDEF0123456789abcdef0123456789",
            "nod--0123",
            "x",
        ] {
            assert!(NodeId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let k = NodeKey::from_seed([0xab; 32]);
        let dbg = format!("{k:?}");
        assert!(!dbg.contains(&hex::encode([0xab; 32])), "{dbg}");
        assert!(dbg.contains(k.node_id().as_str()));
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        assert!(NodeKey::load(dir.path()).unwrap().is_none());
        let (k1, created) = NodeKey::load_or_create(dir.path()).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(NodeKey::path_in(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (k2, created) = NodeKey::load_or_create(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(k1.public_key(), k2.public_key());
    }

    #[test]
    fn malformed_or_open_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = NodeKey::path_in(dir.path());
        std::fs::write(&path, "zz\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(matches!(
            NodeKey::load(dir.path()),
            Err(KeyError::Malformed { .. })
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(&path, format!("{}\n", hex::encode([1u8; 32]))).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = NodeKey::load(dir.path()).unwrap_err();
            assert!(
                matches!(err, KeyError::TooOpen { mode: 0o644, .. }),
                "{err}"
            );
        }
    }
}
