//! Who acts: tenants, roles and principals, and how a tenant scopes every stream.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::is_subject_token;

/// A tenant: letters, digits, `-` and `_` (it is a NATS subject token and part of stream ids).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(String);

/// A tenant id that breaks the rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a tenant id is 1 to 128 letters, digits, '-' or '_'")]
pub struct InvalidTenant;

impl TenantId {
    /// Parses a tenant id.
    ///
    /// # Errors
    /// [`InvalidTenant`].
    pub fn parse(raw: &str) -> Result<Self, InvalidTenant> {
        if is_subject_token(raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidTenant)
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of one aggregate's stream in the event store: `{tenant}:{uuid}`.
///
/// The tenant is part of the stream's identity, so a command from another tenant addressing the
/// same UUID reads an empty stream and is told "not found": isolation by construction, with no
/// check that a route could forget.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    /// The owning tenant.
    pub tenant: TenantId,
    /// The aggregate's id as clients see it.
    pub id: Uuid,
}

/// A stream id that does not read as `{tenant}:{uuid}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed stream id")]
pub struct InvalidStreamId;

impl StreamId {
    /// The stream of aggregate `id` in `tenant`.
    pub fn new(tenant: TenantId, id: Uuid) -> Self {
        Self { tenant, id }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.tenant, self.id)
    }
}

impl FromStr for StreamId {
    type Err = InvalidStreamId;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let (tenant, id) = raw.split_once(':').ok_or(InvalidStreamId)?;
        Ok(Self {
            tenant: TenantId::parse(tenant).map_err(|_| InvalidStreamId)?,
            id: Uuid::parse_str(id).map_err(|_| InvalidStreamId)?,
        })
    }
}

/// What a principal may be trusted with. See [`crate::policy`] for what each allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything within the tenant.
    Admin,
    /// Community moderation; reads users.
    Moderator,
    /// An ordinary user.
    User,
    /// A machine that claims and performs work.
    Worker,
    /// Reads everything, changes nothing.
    Auditor,
    /// Operates the whole system across tenants: rebuilds projections, reads every tenant's
    /// projection status and parked streams. Granted only from the command line
    /// (`backend create-operator-key`), never by a tenant's admin.
    Operator,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 6] = [
        Self::Admin,
        Self::Moderator,
        Self::User,
        Self::Worker,
        Self::Auditor,
        Self::Operator,
    ];

    /// The roles a tenant's admin may grant: all but [`Role::Operator`].
    pub const GRANTABLE: [Role; 5] = [
        Self::Admin,
        Self::Moderator,
        Self::User,
        Self::Worker,
        Self::Auditor,
    ];

    /// The role's name as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Moderator => "moderator",
            Self::User => "user",
            Self::Worker => "worker",
            Self::Auditor => "auditor",
            Self::Operator => "operator",
        }
    }
}

/// A set of roles.
pub type Roles = BTreeSet<Role>;

/// Who is acting: a user or an API key, always within exactly one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `user:<uuid>` or `key:<uuid>`: recorded as the actor of every event.
    pub id: String,
    /// The tenant the credentials belong to.
    pub tenant: TenantId,
    /// What the principal may do.
    pub roles: Roles,
    /// The user this principal is, if it is a user (for "own resource" rules).
    pub user: Option<Uuid>,
    /// The user or the API key: who owns what the principal creates (jobs, documents).
    pub account: Uuid,
}

impl Principal {
    /// A user principal.
    pub fn user(tenant: TenantId, user: Uuid, roles: Roles) -> Self {
        Self {
            id: format!("user:{user}"),
            tenant,
            roles,
            user: Some(user),
            account: user,
        }
    }

    /// An API key principal.
    pub fn api_key(tenant: TenantId, key: Uuid, roles: Roles) -> Self {
        Self {
            id: format!("key:{key}"),
            tenant,
            roles,
            user: None,
            account: key,
        }
    }

    /// Whether the principal holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_round_trip() {
        let stream = StreamId::new(TenantId::parse("acme").unwrap(), Uuid::nil());
        assert_eq!(
            stream.to_string(),
            "acme:00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(stream.to_string().parse(), Ok(stream));
        for bad in [
            "",
            "acme",
            "acme:",
            ":00000000-0000-0000-0000-000000000000",
            "a.b:x",
        ] {
            assert_eq!(bad.parse::<StreamId>(), Err(InvalidStreamId), "{bad:?}");
        }
    }

    #[test]
    fn tenants_are_subject_tokens() {
        assert!(TenantId::parse("acme-1_eu").is_ok());
        for bad in ["", "a.b", "a b", "a:b", "*", ">"] {
            assert_eq!(TenantId::parse(bad), Err(InvalidTenant), "{bad:?}");
        }
    }

    #[test]
    fn a_tenant_reads_as_given() {
        let tenant = TenantId::parse("acme-eu").unwrap();
        assert_eq!(tenant.as_str(), "acme-eu");
        assert_eq!(tenant.to_string(), "acme-eu");
    }

    #[test]
    fn principals_act_as_their_account() {
        let tenant = TenantId::parse("acme").unwrap();
        let id = Uuid::from_u128(5);
        let user = Principal::user(tenant.clone(), id, Roles::from([Role::User]));
        assert_eq!(
            (user.id.as_str(), user.user, user.account),
            ("user:00000000-0000-0000-0000-000000000005", Some(id), id)
        );
        assert!(user.has(Role::User));
        assert!(!user.has(Role::Admin));
        let key = Principal::api_key(tenant, id, Roles::from([Role::Worker]));
        assert_eq!(
            (key.id.as_str(), key.user, key.account),
            ("key:00000000-0000-0000-0000-000000000005", None, id)
        );
        assert_eq!(key.roles, Roles::from([Role::Worker]));
    }
}
