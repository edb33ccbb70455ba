//! The stored form of every community event (see `crate::stored_check`).

use super::{Body, CategoryEvent, PostEvent, Title};
use crate::stored_check::{at, id, stored_events_test};

fn title(raw: &str) -> Title {
    Title::parse(raw).expect("valid")
}

fn body(raw: &str) -> Body {
    Body::parse(raw).expect("valid")
}

fn category_samples() -> Vec<CategoryEvent> {
    vec![
        CategoryEvent::CategoryCreated {
            name: title("Announcements"),
            description: Some(body("News from the team.\n\nRead *first*.")),
            at: at(0),
        },
        CategoryEvent::CategoryRenamed {
            name: title("News"),
            at: at(1),
        },
        CategoryEvent::CategoryDescribed {
            description: None,
            at: at(2),
        },
        CategoryEvent::CategoryArchived { at: at(3) },
    ]
}

fn post_samples() -> Vec<PostEvent> {
    vec![
        PostEvent::PostWritten {
            category: id(1),
            author: id(2),
            title: title("Glossary for legal German"),
            body: body("Which term do you use for *Rechtsfähigkeit*?"),
            at: at(0),
        },
        PostEvent::PostEdited {
            title: title("Glossary: legal German"),
            body: body("Which term do you use for **Rechtsfähigkeit**?"),
            at: at(1),
        },
        PostEvent::PostLocked { at: at(2) },
        PostEvent::PostUnlocked { at: at(3) },
        PostEvent::PostPinned { at: at(4) },
        PostEvent::PostUnpinned { at: at(5) },
        PostEvent::PostRemoved {
            by: format!("user:{}", id(3)),
            at: at(6),
        },
    ]
}

stored_events_test! {
    fn category_events_are_stored_under_their_event_types() for CategoryEvent {
        snapshot: "category_events",
        former_tags: [],
        samples: category_samples(),
    }
}

stored_events_test! {
    fn post_events_are_stored_under_their_event_types() for PostEvent {
        snapshot: "post_events",
        former_tags: [],
        samples: post_samples(),
    }
}
