//! Request types more than one context's routes share.

use domain::identity::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A role a tenant's admin may grant to a user or an API key. The operator role is not among
/// them: operator keys are created only from the command line (`backend create-operator-key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantableRole {
    /// Everything within the tenant.
    Admin,
    /// Community moderation; reads users.
    Moderator,
    /// An ordinary user.
    User,
    /// A machine that claims and performs work.
    Worker,
    /// Reads everything of the tenant, changes nothing.
    Auditor,
}

impl From<GrantableRole> for Role {
    fn from(role: GrantableRole) -> Self {
        match role {
            GrantableRole::Admin => Role::Admin,
            GrantableRole::Moderator => Role::Moderator,
            GrantableRole::User => Role::User,
            GrantableRole::Worker => Role::Worker,
            GrantableRole::Auditor => Role::Auditor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_but_operator_can_be_granted_under_its_own_name() {
        for role in Role::GRANTABLE {
            let granted: GrantableRole =
                serde_json::from_value(serde_json::json!(role.as_str())).unwrap();
            assert_eq!(Role::from(granted), role);
        }
        assert!(serde_json::from_value::<GrantableRole>(serde_json::json!("operator")).is_err());
    }
}
