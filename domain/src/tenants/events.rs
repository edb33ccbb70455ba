//! What can be asked of a tenant, what happens to it, and why a request is refused.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{SuspensionReason, TenantName, TenantSettings};
use crate::error::{DomainError, ErrorKind};

/// What an operator can ask of a tenant. Times are supplied by the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum TenantCommand {
    /// Provision the tenant, recording the id of its first admin key (issued alongside).
    Provision {
        /// How the tenant is shown.
        display_name: TenantName,
        /// Its settings (validated).
        settings: TenantSettings,
        /// The first admin key's id.
        first_admin_key: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Replace the tenant's settings.
    ChangeSettings {
        /// The complete new settings (validated).
        settings: TenantSettings,
        /// When.
        at: DateTime<Utc>,
    },
    /// Refuse the tenant's credentials until reactivated; nothing is deleted.
    Suspend {
        /// Why.
        reason: SuspensionReason,
        /// When.
        at: DateTime<Utc>,
    },
    /// Restore a suspended tenant.
    Reactivate {
        /// When.
        at: DateTime<Utc>,
    },
}

impl TenantCommand {
    /// The command's name as recorded in event metadata.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Provision { .. } => "ProvisionTenant",
            Self::ChangeSettings { .. } => "ChangeTenantSettings",
            Self::Suspend { .. } => "SuspendTenant",
            Self::Reactivate { .. } => "ReactivateTenant",
        }
    }
}

/// What happened to a tenant. Stored forever: add variants, never change existing ones without
/// an upcaster and a new `event_version`. The serde tag is the `event_type()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TenantEvent {
    /// The tenant was provisioned.
    TenantProvisioned {
        /// How the tenant is shown.
        display_name: TenantName,
        /// Its settings.
        settings: TenantSettings,
        /// The first admin key's id.
        first_admin_key: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// The tenant's settings were replaced.
    TenantSettingsChanged {
        /// The complete new settings.
        settings: TenantSettings,
        /// When.
        at: DateTime<Utc>,
    },
    /// The tenant was suspended.
    TenantSuspended {
        /// Why.
        reason: SuspensionReason,
        /// When.
        at: DateTime<Utc>,
    },
    /// A suspended tenant was reactivated.
    TenantReactivated {
        /// When.
        at: DateTime<Utc>,
    },
}

impl TenantEvent {
    /// When the change was accepted.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::TenantProvisioned { at, .. }
            | Self::TenantSettingsChanged { at, .. }
            | Self::TenantSuspended { at, .. }
            | Self::TenantReactivated { at } => *at,
        }
    }
}

impl DomainEvent for TenantEvent {
    /// The stored event type. These strings are part of the stored data: never change one.
    fn event_type(&self) -> String {
        match self {
            Self::TenantProvisioned { .. } => "TenantProvisioned",
            Self::TenantSettingsChanged { .. } => "TenantSettingsChanged",
            Self::TenantSuspended { .. } => "TenantSuspended",
            Self::TenantReactivated { .. } => "TenantReactivated",
        }
        .to_owned()
    }

    /// Changes only together with an upcaster for the previous version.
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// Why a tenant command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    /// The display name breaks the rules of names.
    #[error("display name {reason} (1 to 100 characters, nothing invisible)")]
    InvalidName {
        /// Which rule.
        reason: &'static str,
    },
    /// The suspension reason breaks the rules of names.
    #[error("reason {reason} (1 to 500 characters, nothing invisible)")]
    InvalidReason {
        /// Which rule.
        reason: &'static str,
    },
    /// The tenant is already provisioned.
    #[error("the tenant is already provisioned")]
    AlreadyProvisioned,
    /// No such tenant.
    #[error("no such tenant")]
    NotFound,
    /// Provisioning over HTTP a tenant that already has history (it predates provisioning):
    /// adopting it is for the command line.
    #[error(
        "the tenant already has history; adopt it from the command line \
         (`backend tenants provision` or `backend create-admin-key`)"
    )]
    HasHistory,
    /// Suspending a suspended tenant.
    #[error("the tenant is already suspended")]
    AlreadySuspended,
    /// Reactivating an active tenant.
    #[error("the tenant is not suspended")]
    NotSuspended,
    /// Setting the settings the tenant already has.
    #[error("the settings are unchanged")]
    SettingsUnchanged,
}

impl DomainError for TenantError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidName { .. } | Self::InvalidReason { .. } => ErrorKind::Invalid,
            Self::NotFound => ErrorKind::NotFound,
            Self::AlreadyProvisioned | Self::HasHistory => ErrorKind::Conflict,
            Self::AlreadySuspended | Self::NotSuspended | Self::SettingsUnchanged => {
                ErrorKind::Rejected
            }
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::InvalidName { .. } => "invalid_tenant_name",
            Self::InvalidReason { .. } => "invalid_suspension_reason",
            Self::AlreadyProvisioned => "tenant_already_provisioned",
            Self::HasHistory => "tenant_has_history",
            Self::NotFound => "tenant_not_found",
            Self::AlreadySuspended => "tenant_already_suspended",
            Self::NotSuspended => "tenant_not_suspended",
            Self::SettingsUnchanged => "tenant_settings_unchanged",
        }
    }
}
