//! The stored form of every document event (see `crate::stored_check`).

use super::{ContentType, DocumentEvent, StoredDocument};
use crate::stored_check::{at, id, stored_events_test};

fn samples() -> Vec<DocumentEvent> {
    vec![DocumentEvent::DocumentUploaded {
        document: StoredDocument {
            owner: id(1),
            uploaded_by: "user:0192f0c4-0000-7000-8000-000000000001".to_owned(),
            content_type: ContentType::PlainText,
            size_bytes: 1_234,
            sha256: "ab".repeat(32),
            storage_key: "acme/0192f0c4-0000-7000-8000-000000000002".to_owned(),
        },
        at: at(0),
    }]
}

stored_events_test! {
    fn document_events_are_stored_under_their_event_types() for DocumentEvent {
        snapshot: "document_events",
        former_tags: [],
        samples: samples(),
    }
}
