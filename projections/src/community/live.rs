//! New writing as it happens: what the community's live routes stream, a notice for each post
//! written in a category and each comment written on a post.
//!
//! A notice names the writing (its ids, author and time), never its title or body. A client
//! reads the writing itself through the reading routes, which show each reader only what they
//! may see. A client resuming after an old id is replayed notices of writing stored before it
//! asked; those of writing hidden or removed since, which this reader may no longer see, are
//! left out ([`visible_only`]).
//!
//! Live notices come from the process's one subscription to post and comment events
//! ([`crate::live::LiveHub`]); what a resuming client missed comes from a short-lived consumer
//! of its own, narrowed by subject to the tenant's posts and comments.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::aggregate::Decider;
use domain::community::{Comment, CommentEvent, Post, PostEvent};
use domain::event::{ConsistencyToken, Subjects};
use domain::identity::{StreamId, TenantId};
use futures::future::BoxFuture;
use futures::StreamExt;
use sqlx::PgPool;
use serde::Serialize;
use uuid::Uuid;

use super::{get_comment, get_post, CommunityProjection, Reader};
use crate::consistency::wait_for;
use crate::engine::BoxError;
use crate::live::{self as hub, Bus, BusUnavailable, Delivered, LiveFeed, LiveMessage, Prepare, Prepared};

/// What a live feed follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// The posts written in a category and the comments written on them.
    Category(Uuid),
    /// The comments and replies written on a post.
    Post(Uuid),
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WritingKind {
    /// A post.
    Post,
    /// A comment or a reply.
    Comment,
}

/// One notice of new writing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WritingNotice {
    /// A post or a comment.
    pub kind: WritingKind,
    /// The category written in.
    pub category_id: Uuid,
    /// The post, or the post commented on.
    pub post_id: Uuid,
    /// The comment, for a comment.
    pub comment_id: Option<Uuid>,
    /// The comment replied to, for a reply.
    pub parent_id: Option<Uuid>,
    /// The writing account.
    pub author: Uuid,
    /// When it was written.
    pub at: DateTime<Utc>,
}

/// A notice as every live client is sent it.
pub type PreparedNotice = LiveMessage<WritingNotice>;

/// Makes [`PreparedNotice`]s of the events that write a post or a comment (both name their
/// category, so nothing is looked up).
#[derive(Debug, Clone, Copy, Default)]
pub struct NewWriting;

impl Prepare for NewWriting {
    type Item = PreparedNotice;

    fn prepare(&mut self, delivered: Delivered) -> BoxFuture<'_, Prepared<PreparedNotice>> {
        Box::pin(async move {
            let Ok(stream) = delivered.event.aggregate_id.parse::<StreamId>() else {
                return Prepared::Skip;
            };
            let event = &delivered.event;
            let Some(notice) = notice_of(&event.aggregate_type, &event.payload, stream.id) else {
                return Prepared::Skip;
            };
            LiveMessage::prepared(delivered.sequence, stream.tenant, notice)
        })
    }
}

/// The notice an event of `aggregate_type` with `payload` makes, when it writes a post or a
/// comment (`id` is its stream's).
fn notice_of(aggregate_type: &str, payload: &serde_json::Value, id: Uuid) -> Option<WritingNotice> {
    let payload = payload.clone();
    match aggregate_type {
        Post::TYPE => match serde_json::from_value(payload).ok()? {
            PostEvent::PostWritten {
                category,
                author,
                at,
                ..
            } => Some(WritingNotice {
                kind: WritingKind::Post,
                category_id: category,
                post_id: id,
                comment_id: None,
                parent_id: None,
                author,
                at,
            }),
            _ => None,
        },
        Comment::TYPE => match serde_json::from_value(payload).ok()? {
            CommentEvent::CommentWritten {
                post,
                category,
                parent,
                author,
                at,
                ..
            } => Some(WritingNotice {
                kind: WritingKind::Comment,
                category_id: category,
                post_id: post,
                comment_id: Some(id),
                parent_id: parent,
                author,
                at,
            }),
            _ => None,
        },
        _ => None,
    }
}

/// What the process's hub for new writing follows: every tenant's post and comment events.
pub fn hub_subjects(subject_prefix: &str) -> Vec<String> {
    let subjects = Subjects::new(subject_prefix);
    vec![
        subjects.for_aggregate_type(Post::TYPE),
        subjects.for_aggregate_type(Comment::TYPE),
    ]
}

/// Follows `watch` within `tenant`, after notice `resume_after` (or from now). The caller has
/// authorized the watch and checked that what it follows exists.
///
/// # Errors
/// [`BusUnavailable`] when the stream cannot be read.
pub async fn follow(
    bus: Bus<'_, NewWriting>,
    subject_prefix: &str,
    tenant: TenantId,
    watch: Watch,
    resume_after: Option<u64>,
) -> Result<LiveFeed<PreparedNotice>, BusUnavailable> {
    let subjects = Subjects::new(subject_prefix);
    let comments = subjects.for_tenant_type(tenant.as_str(), Comment::TYPE);
    let filters = match watch {
        Watch::Category(_) => vec![
            subjects.for_tenant_type(tenant.as_str(), Post::TYPE),
            comments,
        ],
        Watch::Post(_) => vec![comments],
    };
    hub::follow(bus, filters, resume_after, move |prepared| {
        watches(&tenant, watch, prepared)
    })
    .await
}

/// `feed` without the replayed notices (those stored before it was asked for) of writing
/// `reader` may not see now: removed or hidden since. Each is checked once the community
/// projection has applied the writing and, for a comment, its post (waiting up to `wait`). When
/// that cannot be checked (the projection is behind, or the stream parked), the notice is sent:
/// it holds no text, the reading routes still decide what the reader sees, and holding it back
/// would stall the client at it on every reconnect.
pub fn visible_only(
    feed: LiveFeed<PreparedNotice>,
    pool: PgPool,
    reader: Reader,
    wait: Duration,
) -> LiveFeed<PreparedNotice> {
    let replayed_until = feed.replayed_until;
    let items = feed.items.filter_map(move |prepared| {
        let pool = pool.clone();
        async move {
            if prepared.id > replayed_until {
                return Some(prepared);
            }
            match visible(&pool, &prepared, reader, wait).await {
                Ok(true) => Some(prepared),
                Ok(false) => None,
                Err(error) => {
                    tracing::warn!(id = prepared.id, %error, "a replayed notice could not be checked; sent");
                    Some(prepared)
                }
            }
        }
    });
    LiveFeed {
        items: items.boxed(),
        ..feed
    }
}

/// Whether `reader` may see the writing `prepared` names, once the projection has applied it.
async fn visible(
    pool: &PgPool,
    prepared: &Arc<PreparedNotice>,
    reader: Reader,
    wait: Duration,
) -> Result<bool, BoxError> {
    let (notice, tenant) = (&prepared.item, &prepared.tenant);
    // The post, and the comment: projected by different partitions, in either order.
    let written = std::iter::once((Post::TYPE, notice.post_id))
        .chain(notice.comment_id.map(|comment| (Comment::TYPE, comment)));
    for (aggregate_type, id) in written {
        let token = ConsistencyToken {
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: StreamId::new(tenant.clone(), id).to_string(),
            version: 1,
        };
        wait_for(pool, CommunityProjection::NAME, &token, wait).await?;
    }
    let tenant = tenant.as_str();
    Ok(match notice.comment_id {
        Some(comment) => get_comment(pool, tenant, comment, reader).await?.is_some(),
        None => get_post(pool, tenant, notice.post_id, reader).await?.is_some(),
    })
}

/// Whether `watch` in `tenant` follows the notice.
fn watches(tenant: &TenantId, watch: Watch, prepared: &PreparedNotice) -> bool {
    let notice = &prepared.item;
    prepared.tenant == *tenant
        && match watch {
            Watch::Category(category) => notice.category_id == category,
            Watch::Post(post) => notice.kind == WritingKind::Comment && notice.post_id == post,
        }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_written_posts_and_comments_make_notices_and_they_carry_no_text() {
        let (post, comment, category, author) =
            (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let written = (
            Post::TYPE,
            json!({"PostWritten": {"category": category, "author": author, "title": "Hello",
                   "body": "Secret text", "at": "2026-12-01T10:00:00Z"}}),
        );
        let notice = notice_of(written.0, &written.1, post).unwrap();
        assert_eq!(notice.kind, WritingKind::Post);
        assert_eq!((notice.category_id, notice.post_id), (category, post));
        let rendered = serde_json::to_string(&notice).unwrap();
        assert!(!rendered.contains("Secret") && !rendered.contains("Hello"), "{rendered}");

        let reply = (
            Comment::TYPE,
            json!({"CommentWritten": {"post": post, "category": category, "parent": post,
                   "author": author, "body": "Secret reply", "at": "2026-12-01T10:00:00Z"}}),
        );
        let notice = notice_of(reply.0, &reply.1, comment).unwrap();
        assert_eq!(notice.kind, WritingKind::Comment);
        assert_eq!(
            (notice.post_id, notice.comment_id, notice.parent_id),
            (post, Some(comment), Some(post))
        );

        let edited = (
            Post::TYPE,
            json!({"PostEdited": {"title": "Hello", "body": "Changed", "at": "2026-12-01T10:00:00Z"}}),
        );
        assert_eq!(notice_of(edited.0, &edited.1, post), None);
    }

    #[test]
    fn a_watch_follows_its_own_tenant_category_or_post_only() {
        let (category, post) = (Uuid::new_v4(), Uuid::new_v4());
        let acme = TenantId::parse("acme").unwrap();
        let prepared = |tenant: &str, kind, category_id, post_id| PreparedNotice {
            id: 1,
            tenant: TenantId::parse(tenant).unwrap(),
            item: WritingNotice {
                kind,
                category_id,
                post_id,
                comment_id: None,
                parent_id: None,
                author: Uuid::new_v4(),
                at: Utc::now(),
            },
            json: String::new(),
        };
        let new_post = prepared("acme", WritingKind::Post, category, post);
        let comment = prepared("acme", WritingKind::Comment, category, post);
        let elsewhere = prepared("globex", WritingKind::Comment, category, post);
        let other_post = prepared("acme", WritingKind::Comment, category, Uuid::new_v4());
        let other_category = prepared("acme", WritingKind::Post, Uuid::new_v4(), post);

        let in_category = Watch::Category(category);
        assert!(watches(&acme, in_category, &new_post));
        assert!(watches(&acme, in_category, &comment));
        assert!(watches(&acme, in_category, &other_post));
        assert!(!watches(&acme, in_category, &elsewhere));
        assert!(!watches(&acme, in_category, &other_category));

        let on_post = Watch::Post(post);
        assert!(watches(&acme, on_post, &comment));
        assert!(!watches(&acme, on_post, &new_post), "the post itself is not new on it");
        assert!(!watches(&acme, on_post, &other_post));
        assert!(!watches(&acme, on_post, &elsewhere));
    }
}
