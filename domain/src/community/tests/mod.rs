//! Given/when/then for every community command in every state, and snapshots resume to the
//! replay: one file per aggregate, sharing the helpers here.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::aggregate::{Guarded, Rejection, Versioned};

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()
}
fn title(raw: &str) -> Title {
    Title::parse(raw).unwrap()
}
fn body(raw: &str) -> Body {
    Body::parse(raw).unwrap()
}
fn category_id() -> Uuid {
    Uuid::from_u128(1)
}
fn author() -> Uuid {
    Uuid::from_u128(2)
}
fn domain(error: CommunityError) -> Rejection<CommunityError> {
    Rejection::Domain(error)
}

mod announcements;
mod categories;
mod comments;
mod moderation;
mod posts;
mod reactions;
