//! Tenants: the organisations the backend serves, each with its own settings, quotas and
//! standing. Provisioned and governed by operators (a role only the command line grants); a
//! suspended tenant's credentials are refused and its history is kept untouched.
//!
//! One stream per tenant ([`Tenant::stream_id`]), in the tenant itself, so an auditor of the
//! tenant reads its own provisioning, settings changes and suspensions.

mod aggregate;
mod events;
mod policy;
mod settings;

#[cfg(test)]
mod stored_events;
#[cfg(test)]
mod tests;

pub use aggregate::{Tenant, TenantStatus};
pub use events::{TenantCommand, TenantError, TenantEvent};
pub use policy::TenantAction;
pub use settings::{QuotaExceeded, SettingRefused, SuspensionReason, TenantName, TenantSettings};
