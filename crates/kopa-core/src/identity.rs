//! Who is who on a node: organisations and users (by id), the roles, and the principal a request
//! or a command acts as.

use serde::{Deserialize, Serialize};

use crate::{Audience, Reader};

/// Organisation id (a UUID string).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrgId(pub String);

/// User id (a UUID string).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub String);

impl OrgId {
    pub fn new() -> Self {
        OrgId(uuid::Uuid::new_v4().to_string())
    }
}
impl Default for OrgId {
    fn default() -> Self {
        Self::new()
    }
}
impl UserId {
    pub fn new() -> Self {
        UserId(uuid::Uuid::new_v4().to_string())
    }
}
impl Default for UserId {
    fn default() -> Self {
        Self::new()
    }
}

/// What a user may do. Administrators manage people and collections, never read past TLP. Ordered
/// from the least to the most (`Reader < Analyst < OrgAdmin < Admin`); what each may do is decided by
/// [`crate::permission::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Reads intelligence.
    Reader,
    /// Reads and writes intelligence.
    Analyst,
    /// An analyst who also manages the users of its organisation.
    OrgAdmin,
    /// The node administrator: manages organisations, users, tokens and collections.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Analyst => "analyst",
            Role::OrgAdmin => "org-admin",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "reader" => Role::Reader,
            "analyst" => Role::Analyst,
            "org-admin" => Role::OrgAdmin,
            "admin" => Role::Admin,
            _ => return None,
        })
    }

    /// May write intelligence (still only where a collection's write list allows).
    pub fn writes_intelligence(self) -> bool {
        !matches!(self, Role::Reader)
    }

    /// May manage users of its own organisation.
    pub fn manages_org_users(self) -> bool {
        matches!(self, Role::OrgAdmin | Role::Admin)
    }

    /// May manage the whole node (organisations, collections, any user).
    pub fn manages_node(self) -> bool {
        matches!(self, Role::Admin)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: UserId,
    pub user_name: String,
    pub org: OrgId,
    pub org_name: String,
    pub role: Role,
}

impl Principal {
    /// The audience this principal reads as.
    pub fn audience(&self) -> Audience {
        Audience {
            org: self.org.clone(),
            user: self.user.clone(),
        }
    }

    /// The reader this principal reads as (a person).
    pub fn reader(&self) -> Reader {
        Reader::Person(self.audience())
    }
}
