//! The context a command runs in, recorded as metadata on every event it produces.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::event::EventMetadata;
use domain::identity::TenantId;

/// A client's idempotency key with the fingerprint of the request that carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    /// The `Idempotency-Key` header.
    pub key: String,
    /// Hash of the request (method, path, expected version, body).
    pub request_hash: String,
}

/// Who issues a command and as part of which operation. Built by the API from the request and
/// the authenticated principal, never from the request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandContext {
    /// The request that carries the command.
    pub request_id: String,
    /// The business operation it belongs to (the request id when the client gave none).
    pub correlation_id: String,
    /// What caused it: the request id for a client command, an event id for a process manager.
    pub causation_id: String,
    /// The acting principal (`user:<uuid>`, `key:<uuid>` or `system:<name>`).
    pub actor: String,
    /// The tenant acted in: every stream written is scoped by it.
    pub tenant: TenantId,
    /// The client's idempotency key, if any.
    pub idempotency: Option<IdempotencyClaim>,
}

impl CommandContext {
    /// The metadata stored with the events of `command`, accepted at `recorded_at`.
    pub fn metadata(&self, command: &str, recorded_at: DateTime<Utc>) -> EventMetadata {
        EventMetadata {
            request_id: self.request_id.clone(),
            correlation_id: self.correlation_id.clone(),
            causation_id: self.causation_id.clone(),
            actor: self.actor.clone(),
            tenant_id: self.tenant.to_string(),
            command: command.to_owned(),
            recorded_at,
            idempotency_key: self.idempotency.as_ref().map(|claim| claim.key.clone()),
            request_hash: self
                .idempotency
                .as_ref()
                .map(|claim| claim.request_hash.clone()),
        }
    }
}

/// cqrs-es carries metadata as a string map; this is the one place that flattens it.
pub(crate) fn to_map(metadata: &EventMetadata) -> HashMap<String, String> {
    let mut map = HashMap::from([
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
    ]);
    if let (Some(key), Some(hash)) = (&metadata.idempotency_key, &metadata.request_hash) {
        map.insert("idempotency_key".to_owned(), key.clone());
        map.insert("request_hash".to_owned(), hash.clone());
    }
    map
}
