//! API key commands: issuing and revoking keys needs no rule beyond the aggregate's own, so the
//! generic bus serves them as they are.

use domain::api_keys::ApiKey;

use crate::bus::CommandBus;

/// Issues and revokes API keys.
pub type ApiKeyCommands = CommandBus<ApiKey>;
