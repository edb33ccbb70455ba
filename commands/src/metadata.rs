//! The context a command runs in, recorded as metadata on every event it produces.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::event::EventMetadata;

/// Who issues a command and as part of which operation. Built by the API from the request
/// (and, later, from the authenticated principal), never from the request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandContext {
    /// The request that carries the command.
    pub request_id: String,
    /// The business operation it belongs to (the request id when the client gave none).
    pub correlation_id: String,
    /// What caused it: the request id for a client command, an event id for a process manager.
    pub causation_id: String,
    /// The acting principal.
    pub actor: String,
    /// The tenant acted in.
    pub tenant_id: String,
}

impl CommandContext {
    /// The metadata stored with the events of `command`, accepted at `recorded_at`.
    pub fn metadata(&self, command: &str, recorded_at: DateTime<Utc>) -> EventMetadata {
        EventMetadata {
            request_id: self.request_id.clone(),
            correlation_id: self.correlation_id.clone(),
            causation_id: self.causation_id.clone(),
            actor: self.actor.clone(),
            tenant_id: self.tenant_id.clone(),
            command: command.to_owned(),
            recorded_at,
        }
    }
}

/// cqrs-es carries metadata as a string map; this is the one place that flattens it.
pub(crate) fn to_map(metadata: &EventMetadata) -> HashMap<String, String> {
    HashMap::from([
        ("request_id".to_owned(), metadata.request_id.clone()),
        ("correlation_id".to_owned(), metadata.correlation_id.clone()),
        ("causation_id".to_owned(), metadata.causation_id.clone()),
        ("actor".to_owned(), metadata.actor.clone()),
        ("tenant_id".to_owned(), metadata.tenant_id.clone()),
        ("command".to_owned(), metadata.command.clone()),
        (
            "recorded_at".to_owned(),
            metadata
                .recorded_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        ),
    ])
}
