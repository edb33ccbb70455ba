//! What may be done with tenants, and by whom: operators govern every tenant; a tenant's admins
//! and auditors read their own tenant's settings and usage.

use crate::identity::Role;
use crate::policy::{context_actions, Rule};

context_actions! {
    /// The tenants context's actions.
    pub enum TenantAction in "tenants" {
        /// Provision a tenant with its first admin key.
        ProvisionTenant = "provision_tenant" => Rule::roles(&[Role::Operator]),
        /// Replace a tenant's settings.
        ChangeTenantSettings = "change_tenant_settings" => Rule::roles(&[Role::Operator]),
        /// Suspend a tenant.
        SuspendTenant = "suspend_tenant" => Rule::roles(&[Role::Operator]),
        /// Reactivate a suspended tenant.
        ReactivateTenant = "reactivate_tenant" => Rule::roles(&[Role::Operator]),
        /// List every tenant with its usage.
        ListTenants = "list_tenants" => Rule::roles(&[Role::Operator]),
        /// Read the caller's own tenant: settings, status and usage.
        ReadOwnTenant = "read_own_tenant" => Rule::roles(&[Role::Admin, Role::Auditor]),
    }
}
