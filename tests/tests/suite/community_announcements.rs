//! Announcements: shown to their audience within their window (asked of the read model at
//! chosen instants, no sleeping), unread first, and never before they are published.

use chrono::{DateTime, Duration, Utc};
use domain::identity::{Role, Roles};
use projections::community::{current_announcements, Audience};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_problem, spawn_app, TestApp};

/// An announcement drafted (and published, if `publish`) by the admin; its id.
async fn announce(app: &TestApp, notice: Value, publish: bool) -> Uuid {
    let drafted = app
        .post_json("/api/v1/community/announcements", &notice)
        .await;
    assert_eq!(drafted.status(), StatusCode::CREATED);
    let drafted: Value = drafted.json().await.unwrap();
    let id = drafted["aggregate_id"].as_str().unwrap().to_owned();
    let mut token = drafted["consistency_token"].clone();
    if publish {
        let published = app
            .post(&format!("/api/v1/community/announcements/{id}/publish"))
            .send()
            .await
            .unwrap();
        assert_eq!(published.status(), StatusCode::OK);
        token = published.json::<Value>().await.unwrap()["consistency_token"].clone();
    }
    seen(app, &token).await;
    id.parse().unwrap()
}

/// Waits until the community projection shows the command that returned `token`.
async fn seen(app: &TestApp, token: &Value) {
    let shown = app
        .request(Method::GET, "/api/v1/community/announcements?limit=1")
        .header("x-consistency-token", token.as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), StatusCode::OK);
}

/// The ids of the announcements current at `now` for a reader with `roles`, in order.
async fn current(app: &TestApp, account: Uuid, roles: &[Role], now: DateTime<Utc>) -> Vec<Uuid> {
    let roles = Roles::from_iter(roles.iter().copied());
    let reader = Audience {
        account,
        roles: &roles,
    };
    let (page, _) = current_announcements(&app.pool, "acme", &reader, now, None, 50)
        .await
        .unwrap();
    page.into_iter().map(|a| a.announcement_id).collect()
}

#[tokio::test]
async fn an_announcement_is_current_within_its_window_for_its_audience_only() {
    let app = spawn_app().await;
    let start = Utc::now() + Duration::days(30);
    let end = start + Duration::days(7);
    let window = announce(
        &app,
        json!({ "title": "Maintenance", "body": "Read-only", "starts_at": start, "ends_at": end }),
        true,
    )
    .await;
    let moderators = announce(
        &app,
        json!({ "title": "Mods", "body": "Queue rules", "audience": ["moderator"] }),
        true,
    )
    .await;
    let draft = announce(&app, json!({ "title": "Draft", "body": "Not yet" }), false).await;
    let user = Uuid::now_v7();
    let micro = Duration::microseconds(1);

    // The window: from its start (inclusive) to its end (exclusive).
    assert_eq!(
        current(&app, user, &[Role::User], start - micro).await,
        Vec::<Uuid>::new()
    );
    assert_eq!(current(&app, user, &[Role::User], start).await, [window]);
    assert_eq!(
        current(&app, user, &[Role::User], end - micro).await,
        [window]
    );
    assert_eq!(
        current(&app, user, &[Role::User], end).await,
        Vec::<Uuid>::new()
    );
    // The audience: listed roles only; everyone's too.
    let moderator = Uuid::now_v7();
    assert_eq!(
        current(&app, moderator, &[Role::Moderator], start).await,
        [moderators, window],
        "the newest published first"
    );
    assert!(!current(&app, user, &[Role::User, Role::Worker], end)
        .await
        .contains(&moderators));
    // A draft is never current, and a retracted one no longer is.
    for roles in [&[Role::Admin][..], &[Role::User, Role::Moderator]] {
        assert!(!current(&app, user, roles, start).await.contains(&draft));
    }
    let retracted = app
        .post(&format!(
            "/api/v1/community/announcements/{moderators}/retract"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(retracted.status(), StatusCode::OK);
    seen(
        &app,
        &retracted.json::<Value>().await.unwrap()["consistency_token"],
    )
    .await;
    assert_eq!(
        current(&app, moderator, &[Role::Moderator], start).await,
        [window]
    );
}

#[tokio::test]
async fn unread_announcements_come_first_and_reading_is_recorded_once() {
    let app = spawn_app().await;
    let (reader_id, reader) = app.api_key_with_roles(&["user"]).await;
    let older = announce(&app, json!({ "title": "Older", "body": "One" }), true).await;
    let pinned = announce(
        &app,
        json!({ "title": "Pinned", "body": "Two", "pinned": true }),
        true,
    )
    .await;
    let newer = announce(&app, json!({ "title": "Newer", "body": "Three" }), true).await;
    let account: Uuid = reader_id.parse().unwrap();
    let now = Utc::now() + Duration::seconds(1);
    assert_eq!(
        current(&app, account, &[Role::User], now).await,
        [pinned, newer, older]
    );

    let read = |id: Uuid| {
        app.anonymous(
            Method::POST,
            &format!("/api/v1/community/announcements/{id}/read"),
        )
        .header("x-api-key", &reader)
        .send()
    };
    let first: Value = read(pinned).await.unwrap().json().await.unwrap();
    let again: Value = read(pinned).await.unwrap().json().await.unwrap();
    assert_eq!(first["version"], again["version"], "read once");
    seen(&app, &again["consistency_token"]).await;
    assert_eq!(
        current(&app, account, &[Role::User], now).await,
        [newer, older, pinned]
    );

    // Through the API, with pages of one.
    let mut seen_ids = Vec::new();
    let mut path = "/api/v1/community/announcements/current?limit=1".to_owned();
    loop {
        let page: Value = app
            .anonymous(Method::GET, &path)
            .header("x-api-key", &reader)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for item in page["items"].as_array().unwrap() {
            seen_ids.push(item["id"].as_str().unwrap().parse::<Uuid>().unwrap());
            assert_eq!(item["read"], item["id"] == pinned.to_string().as_str());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/v1/community/announcements/current?limit=1&after={cursor}")
            }
            None => break,
        }
    }
    assert_eq!(seen_ids, [newer, older, pinned]);

    // Readers read nothing else: the admin's list, drafts and bad windows are refused.
    let list = app
        .anonymous(Method::GET, "/api/v1/community/announcements")
        .header("x-api-key", &reader)
        .send()
        .await
        .unwrap();
    assert_problem(list, StatusCode::FORBIDDEN, "forbidden").await;
    let draft = announce(&app, json!({ "title": "Draft", "body": "Later" }), false).await;
    assert_problem(
        read(draft).await.unwrap(),
        StatusCode::NOT_FOUND,
        "announcement_not_found",
    )
    .await;
    let inverted = json!({
        "title": "Backwards", "body": "x",
        "starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"
    });
    let refused = app
        .post_json("/api/v1/community/announcements", &inverted)
        .await;
    assert_problem(
        refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let nobody = json!({ "title": "Nobody", "body": "x", "audience": [] });
    let refused = app
        .post_json("/api/v1/community/announcements", &nobody)
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
