//! What may be done with API keys, and by whom.

use crate::identity::Role;
use crate::policy::{context_actions, Rule};

context_actions! {
    /// The API keys context's actions.
    pub enum ApiKeyAction in "api_keys" {
        /// Issue an API key.
        IssueApiKey = "issue_api_key" => Rule::roles(&[Role::Admin]),
        /// Revoke an API key.
        RevokeApiKey = "revoke_api_key" => Rule::roles(&[Role::Admin]),
    }
}
