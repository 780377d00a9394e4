//! Kopa federation: what lets sovereign nodes trust each other's data.
//!
//! - [`identity`]: the node's Ed25519 key pair, kept in the data directory (mode 0600), and the node id
//!   derived from its public key.
//! - [`provenance`]: the Kopa provenance property extension — origin node, origin organisation and an
//!   Ed25519 signature over the RFC 8785 canonical JSON of the object — with [`sign`] and [`verify`].
//! - [`policy`]: a peer's export policy (collections, highest TLP, object types, communities).
//! - [`peer`]: a declared peer (URL, public key, token, policy), checked at the edge.
//! - [`pull`]: the TAXII side of a pull without the HTTP client: page URL, envelope, resumable cursor.
//! - [`request_auth`]: the `Kopa-Node` authorization with which nodes call each other.
//! - [`checkpoint`]: signed checkpoints that anchor the audit log's hash chain.
//!
//! This crate does no network or database I/O; the only file it touches is the node key.

// Production code handles every failure; `unwrap` is for tests (clippy.toml allows it there).
#![warn(clippy::unwrap_used)]

pub mod checkpoint;
pub mod identity;
pub mod peer;
pub mod policy;
pub mod provenance;
pub mod pull;
pub mod request_auth;

pub use checkpoint::{Checkpoint, CHECKPOINT_FILE_NAME};
pub use identity::{KeyError, NodeId, NodeIdentity, NodeKey, PublicKey, KEY_FILE_NAME};
pub use peer::{Peer, PeerError};
pub use policy::{ExportPolicy, PeerHosts};
pub use provenance::{
    sign, verify, KnownKeys, Provenance, SignError, VerifyError, PROVENANCE_EXTENSION_DEFINITION,
    PROVENANCE_EXTENSION_ID,
};
pub use request_auth::{sign_request, verify_request, RequestAuthError};
