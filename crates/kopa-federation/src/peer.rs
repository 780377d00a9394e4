//! A declared peer: a node this node pulls from and exports to.

use std::fmt;

use crate::identity::{KeyError, NodeId, PublicKey};
use crate::policy::ExportPolicy;

/// Problems with a peer declaration.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("peer name {0:?} must be 1–64 characters of letters, digits, '-', '_' or '.'")]
    BadName(String),
    #[error("peer URL {0:?} must start with http:// or https://")]
    BadUrl(String),
    #[error("peer key: {0}")]
    Key(#[from] KeyError),
    #[error("peer policy is not valid JSON for an export policy: {0}")]
    Policy(String),
}

/// A peer as declared with `kopa peer add`. `Debug` masks the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub url: String,
    pub public_key: PublicKey,
    /// The token this node presents to the peer (a secret, kept as given so that it can be used).
    pub token: Option<String>,
    pub policy: ExportPolicy,
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peer")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("public_key", &self.public_key)
            .field("token", &self.token.as_ref().map(|_| "<secret>"))
            .field("policy", &self.policy)
            .finish()
    }
}

impl Peer {
    /// Check and build a peer declaration from user input.
    pub fn new(
        name: &str,
        url: &str,
        public_key: &str,
        token: Option<String>,
        policy: ExportPolicy,
    ) -> Result<Peer, PeerError> {
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(PeerError::BadName(name.to_string()));
        }
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        if rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
            return Err(PeerError::BadUrl(url.to_string()));
        }
        Ok(Peer {
            name: name.to_string(),
            url: url.trim_end_matches('/').to_string(),
            public_key: PublicKey::parse(public_key)?,
            token,
            policy,
        })
    }

    /// The peer's node id, derived from its key.
    pub fn node_id(&self) -> NodeId {
        self.public_key.node_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::NodeKey;

    #[test]
    fn peer_input_is_checked() {
        let key = NodeKey::from_seed([9; 32]).public_key().encode();
        let p = Peer::new(
            "de-bsi",
            "https://kopa.example/",
            &key,
            Some("s3cret".into()),
            ExportPolicy::default(),
        )
        .unwrap();
        assert_eq!(p.url, "https://kopa.example");
        assert_eq!(p.node_id(), NodeKey::from_seed([9; 32]).node_id());
        assert!(!format!("{p:?}").contains("s3cret"));
        let d = ExportPolicy::default;
        assert!(matches!(
            Peer::new("a b", "https://x", &key, None, d()),
            Err(PeerError::BadName(_))
        ));
        assert!(matches!(
            Peer::new("a", "ftp://x", &key, None, d()),
            Err(PeerError::BadUrl(_))
        ));
        assert!(matches!(
            Peer::new("a", "https://", &key, None, d()),
            Err(PeerError::BadUrl(_))
        ));
        assert!(matches!(
            Peer::new("a", "https://x", "abc", None, d()),
            Err(PeerError::Key(_))
        ));
    }
}
