//! The stored form of every community event (see `crate::stored_check`).

use super::{
    AnnouncementEvent, Body, CategoryEvent, CommentEvent, MemberEvent, Notice, PostEvent,
    PublicPagesEvent, ReactionEvent, ReactionKind, ReadingEvent, Reason, ReportEvent, Resolution,
    Target, Title,
};
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
        PostEvent::PostHidden {
            by: format!("user:{}", id(4)),
            report: id(9),
            at: at(7),
        },
    ]
}

fn comment_samples() -> Vec<CommentEvent> {
    vec![
        CommentEvent::CommentWritten {
            post: id(1),
            category: id(5),
            parent: Some(id(2)),
            author: id(3),
            body: body("We use *legal capacity*."),
            at: at(0),
        },
        CommentEvent::CommentEdited {
            body: body("We use **legal capacity**."),
            at: at(1),
        },
        CommentEvent::CommentRemoved {
            by: format!("key:{}", id(4)),
            at: at(2),
        },
        CommentEvent::CommentHidden {
            by: format!("user:{}", id(4)),
            report: id(9),
            at: at(3),
        },
    ]
}

fn report_samples() -> Vec<ReportEvent> {
    vec![
        ReportEvent::ReportFiled {
            target: Target::Comment(id(2)),
            reporter: id(3),
            reason: Reason::parse("Advertising").expect("valid"),
            at: at(0),
        },
        ReportEvent::ReportResolved {
            resolution: Resolution::Hide,
            by: format!("user:{}", id(4)),
            at: at(1),
        },
    ]
}

fn member_samples() -> Vec<MemberEvent> {
    vec![
        MemberEvent::MemberSuspended {
            until: at(86_400),
            reason: Reason::parse("Repeated advertising").expect("valid"),
            by: format!("user:{}", id(4)),
            at: at(0),
        },
        MemberEvent::SuspensionLifted {
            by: format!("user:{}", id(4)),
            at: at(1),
        },
    ]
}

fn reaction_samples() -> Vec<ReactionEvent> {
    vec![
        ReactionEvent::ReactionAdded {
            target: Target::Post(id(1)),
            member: id(3),
            kind: ReactionKind::Insightful,
            at: at(0),
        },
        ReactionEvent::ReactionWithdrawn {
            target: Target::Comment(id(2)),
            member: id(3),
            kind: ReactionKind::Thanks,
            at: at(1),
        },
    ]
}

fn announcement_samples() -> Vec<AnnouncementEvent> {
    let notice = |text: &str, audience| {
        Notice::new(
            title("Maintenance"),
            body(text),
            audience,
            (Some(at(100)), Some(at(200))),
            true,
        )
        .expect("valid")
    };
    vec![
        AnnouncementEvent::AnnouncementDrafted {
            notice: notice("Sunday 02:00 UTC", None),
            at: at(0),
        },
        AnnouncementEvent::AnnouncementEdited {
            notice: notice(
                "Saturday 02:00 UTC",
                Some(crate::identity::Roles::from([
                    crate::identity::Role::Moderator,
                ])),
            ),
            at: at(1),
        },
        AnnouncementEvent::AnnouncementPublished { at: at(2) },
        AnnouncementEvent::AnnouncementRetracted { at: at(3) },
    ]
}

fn reading_samples() -> Vec<ReadingEvent> {
    vec![ReadingEvent::AnnouncementRead {
        announcement: id(6),
        reader: id(3),
        at: at(0),
    }]
}

stored_events_test! {
    fn announcement_events_are_stored_under_their_event_types() for AnnouncementEvent {
        snapshot: "announcement_events",
        former_tags: [],
        samples: announcement_samples(),
    }
}

stored_events_test! {
    fn reading_events_are_stored_under_their_event_types() for ReadingEvent {
        snapshot: "reading_events",
        former_tags: [],
        samples: reading_samples(),
    }
}

fn public_pages_samples() -> Vec<PublicPagesEvent> {
    vec![
        PublicPagesEvent::PublicPagesEnabled { at: at(0) },
        PublicPagesEvent::PublicPagesDisabled { at: at(1) },
    ]
}

stored_events_test! {
    fn public_pages_events_are_stored_under_their_event_types() for PublicPagesEvent {
        snapshot: "public_pages_events",
        former_tags: [],
        samples: public_pages_samples(),
    }
}

stored_events_test! {
    fn report_events_are_stored_under_their_event_types() for ReportEvent {
        snapshot: "report_events",
        former_tags: [],
        samples: report_samples(),
    }
}

stored_events_test! {
    fn member_events_are_stored_under_their_event_types() for MemberEvent {
        snapshot: "member_events",
        former_tags: [],
        samples: member_samples(),
    }
}

stored_events_test! {
    fn comment_events_are_stored_under_their_event_types() for CommentEvent {
        snapshot: "comment_events",
        former_tags: [],
        samples: comment_samples(),
    }
}

stored_events_test! {
    fn reaction_events_are_stored_under_their_event_types() for ReactionEvent {
        snapshot: "reaction_events",
        former_tags: [],
        samples: reaction_samples(),
    }
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
