use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    SuspensionReason, TenantCommand, TenantError, TenantEvent, TenantName, TenantSettings,
};
use crate::aggregate::Decider;
use crate::identity::TenantId;

/// Whether a provisioned tenant is served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TenantStatus {
    /// Served.
    Active,
    /// Its credentials are refused until it is reactivated.
    Suspended {
        /// Why.
        reason: SuspensionReason,
        /// Since when.
        since: DateTime<Utc>,
    },
}

impl TenantStatus {
    /// The status as read models and the API show it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended { .. } => "suspended",
        }
    }
}

/// The tenant aggregate's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum Tenant {
    /// Not provisioned: only `Provision` is accepted. A tenant that predates this context (its
    /// first key created before tenants were provisioned) reads so too, and is served with the
    /// server's settings.
    #[default]
    Unprovisioned,
    /// A provisioned tenant.
    Provisioned {
        /// How it is shown.
        display_name: TenantName,
        /// Its settings.
        settings: TenantSettings,
        /// Whether it is served.
        status: TenantStatus,
    },
}

/// The namespace of [`Tenant::stream_id`]'s name-based ids. Never change it.
const TENANT_NAMESPACE: Uuid = Uuid::from_u128(0x7a3e_51c0_92d4_4f6b_a1e8_3c5b_0d97_e246);

impl Tenant {
    /// The id of `tenant`'s own stream (within the tenant).
    pub fn stream_id(tenant: &TenantId) -> Uuid {
        Uuid::new_v5(&TENANT_NAMESPACE, tenant.as_str().as_bytes())
    }

    /// The settings the tenant is served with (the server's for an unprovisioned tenant).
    pub fn settings(&self) -> TenantSettings {
        match self {
            Self::Unprovisioned => TenantSettings::default(),
            Self::Provisioned { settings, .. } => settings.clone(),
        }
    }

    /// Why the tenant is not served, if it is suspended.
    pub fn suspension(&self) -> Option<&SuspensionReason> {
        match self {
            Self::Provisioned {
                status: TenantStatus::Suspended { reason, .. },
                ..
            } => Some(reason),
            _ => None,
        }
    }
}

impl Decider for Tenant {
    const TYPE: &'static str = "Tenant";
    const SNAPSHOT_SCHEMA: u32 = 1;
    type Command = TenantCommand;
    type Event = TenantEvent;
    type Error = TenantError;

    fn decide(&self, command: TenantCommand) -> Result<Vec<TenantEvent>, TenantError> {
        let event = match (self, command) {
            (
                Self::Unprovisioned,
                TenantCommand::Provision {
                    display_name,
                    settings,
                    first_admin_key,
                    at,
                },
            ) => TenantEvent::TenantProvisioned {
                display_name,
                settings,
                first_admin_key,
                at,
            },
            (Self::Provisioned { .. }, TenantCommand::Provision { .. }) => {
                return Err(TenantError::AlreadyProvisioned)
            }
            (Self::Unprovisioned, _) => return Err(TenantError::NotFound),
            (
                Self::Provisioned {
                    settings: current, ..
                },
                TenantCommand::ChangeSettings { settings, at },
            ) => {
                if *current == settings {
                    return Err(TenantError::SettingsUnchanged);
                }
                TenantEvent::TenantSettingsChanged { settings, at }
            }
            (
                Self::Provisioned {
                    status: TenantStatus::Active,
                    ..
                },
                TenantCommand::Suspend { reason, at },
            ) => TenantEvent::TenantSuspended { reason, at },
            (Self::Provisioned { .. }, TenantCommand::Suspend { .. }) => {
                return Err(TenantError::AlreadySuspended)
            }
            (
                Self::Provisioned {
                    status: TenantStatus::Suspended { .. },
                    ..
                },
                TenantCommand::Reactivate { at },
            ) => TenantEvent::TenantReactivated { at },
            (Self::Provisioned { .. }, TenantCommand::Reactivate { .. }) => {
                return Err(TenantError::NotSuspended)
            }
        };
        Ok(vec![event])
    }

    fn evolve(&mut self, event: &TenantEvent) {
        match (self, event) {
            (
                this @ Self::Unprovisioned,
                TenantEvent::TenantProvisioned {
                    display_name,
                    settings,
                    ..
                },
            ) => {
                *this = Self::Provisioned {
                    display_name: display_name.clone(),
                    settings: settings.clone(),
                    status: TenantStatus::Active,
                };
            }
            (
                Self::Provisioned { settings, .. },
                TenantEvent::TenantSettingsChanged { settings: new, .. },
            ) => {
                *settings = new.clone();
            }
            (Self::Provisioned { status, .. }, TenantEvent::TenantSuspended { reason, at }) => {
                *status = TenantStatus::Suspended {
                    reason: reason.clone(),
                    since: *at,
                };
            }
            (Self::Provisioned { status, .. }, TenantEvent::TenantReactivated { .. }) => {
                *status = TenantStatus::Active;
            }
            // `decide` never produces any other pairing; history is applied as recorded.
            _ => {}
        }
    }
}
