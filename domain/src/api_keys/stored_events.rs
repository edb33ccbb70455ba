//! The stored form of every API key event (see `crate::stored_check`).

use super::{ApiKeyEvent, KeyName, SecretHash};
use crate::identity::{Role, Roles};
use crate::stored_check::{at, stored_events_test};

fn samples() -> Vec<ApiKeyEvent> {
    vec![
        ApiKeyEvent::ApiKeyIssued {
            name: KeyName::parse("nightly import").expect("valid"),
            roles: Roles::from([Role::Admin, Role::Auditor]),
            expires_at: Some(at(86_400)),
            secret_hash: SecretHash::parse(&"0f".repeat(32)).expect("valid"),
            at: at(0),
        },
        ApiKeyEvent::ApiKeyRevoked { at: at(1) },
    ]
}

stored_events_test! {
    fn api_key_events_are_stored_under_their_event_types() for ApiKeyEvent {
        snapshot: "api_key_events",
        former_tags: [],
        samples: samples(),
    }
}
