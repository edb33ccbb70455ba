//! Moderation over HTTP: reports hide what they report, suspended members cannot write.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::community::{accepted, category, comment, send, write};
use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn moderators_hide_what_is_reported_and_suspended_members_cannot_write() {
    let app = spawn_app().await;
    let (bob_id, bob) = app.api_key_with_roles(&["user"]).await;
    let (_, carol) = app.api_key_with_roles(&["user"]).await;
    let (_, moderator) = app.api_key_with_roles(&["moderator"]).await;
    let category = category(&app, "Moderated").await;
    let post = write(&app, &bob, &category, "Buy now").await;
    let post = post["aggregate_id"].as_str().unwrap().to_owned();
    let spam = comment(&app, &bob, &post, None).await;
    let spam = spam["aggregate_id"].as_str().unwrap().to_owned();

    // Carol reports the comment, once; the moderator sees it in the queue with its text.
    let reports = format!("/api/v1/community/comments/{spam}/reports");
    let reason = json!({ "reason": "Advertising" });
    let filed = send(&app, &carol, Method::POST, &reports, Some(reason.clone())).await;
    let filed = accepted(&app, filed, StatusCode::CREATED).await;
    let again = send(&app, &carol, Method::POST, &reports, Some(reason.clone())).await;
    assert_problem(again, StatusCode::CONFLICT, "already_reported").await;
    let queue: Value = send(
        &app,
        &moderator,
        Method::GET,
        "/api/v1/community/reports",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(queue["items"].as_array().unwrap().len(), 1, "{queue}");
    assert_eq!(queue["items"][0]["body"], "Agreed.");
    assert_eq!(queue["items"][0]["reason"], "Advertising");
    let forbidden = send(&app, &carol, Method::GET, "/api/v1/community/reports", None).await;
    assert_problem(forbidden, StatusCode::FORBIDDEN, "forbidden").await;

    // Upheld: the comment is hidden from readers, shown marked to its author; the queue empties.
    let report = filed["aggregate_id"].as_str().unwrap();
    let resolve = format!("/api/v1/community/reports/{report}/resolve");
    let hide = json!({ "resolution": "hide" });
    let resolved = send(&app, &moderator, Method::POST, &resolve, Some(hide.clone())).await;
    accepted(&app, resolved, StatusCode::OK).await;
    let twice = send(&app, &moderator, Method::POST, &resolve, Some(hide)).await;
    assert_problem(twice, StatusCode::CONFLICT, "report_resolved").await;
    let threads = format!("/api/v1/community/posts/{post}/comments");
    // The answer's token is the report's: the comment is hidden by a second command on its own
    // stream, projected apart.
    crate::helpers::wait_until(
        "the reported comment is hidden",
        std::time::Duration::from_secs(30),
        || async {
            let page: Value = send(&app, &carol, Method::GET, &threads, None)
                .await
                .json()
                .await
                .unwrap();
            page["items"][0]["comment"]["hidden"] == true
        },
    )
    .await;
    let page: Value = send(&app, &carol, Method::GET, &threads, None)
        .await
        .json()
        .await
        .unwrap();
    let tombstone = &page["items"][0]["comment"];
    assert_eq!(tombstone["hidden"], true);
    assert!(
        tombstone["body"].is_null() && tombstone["author"].is_null(),
        "{page}"
    );
    let page: Value = send(&app, &bob, Method::GET, &threads, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["comment"]["body"], "Agreed.");
    let queue: Value = send(
        &app,
        &moderator,
        Method::GET,
        "/api/v1/community/reports",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(queue["items"], json!([]));
    let reply = json!({ "body": "Still here?", "parent_id": spam });
    let refused = send(&app, &carol, Method::POST, &threads, Some(reply)).await;
    assert_problem(refused, StatusCode::CONFLICT, "comment_hidden").await;

    // A dismissed report leaves the post as it was.
    let filed = send(
        &app,
        &carol,
        Method::POST,
        &format!("/api/v1/community/posts/{post}/reports"),
        Some(reason),
    )
    .await;
    let filed = accepted(&app, filed, StatusCode::CREATED).await;
    let resolve = format!(
        "/api/v1/community/reports/{}/resolve",
        filed["aggregate_id"].as_str().unwrap()
    );
    let dismissed = send(
        &app,
        &moderator,
        Method::POST,
        &resolve,
        Some(json!({ "resolution": "dismiss" })),
    )
    .await;
    accepted(&app, dismissed, StatusCode::OK).await;
    let seen = send(
        &app,
        &carol,
        Method::GET,
        &format!("/api/v1/community/posts/{post}"),
        None,
    )
    .await;
    assert_eq!(seen.status(), StatusCode::OK);

    // Suspended, Bob cannot write or edit until the suspension is lifted; others see nothing of it.
    let member = format!("/api/v1/community/members/{bob_id}");
    let until = (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339();
    let suspend = json!({ "until": until, "reason": "Advertising" });
    let suspended = send(
        &app,
        &moderator,
        Method::POST,
        &format!("{member}/suspension"),
        Some(suspend),
    )
    .await;
    accepted(&app, suspended, StatusCode::OK).await;
    let body = json!({ "category_id": category, "title": "Again", "body": "Buy" });
    let refused = send(
        &app,
        &bob,
        Method::POST,
        "/api/v1/community/posts",
        Some(body.clone()),
    )
    .await;
    assert_problem(refused, StatusCode::CONFLICT, "suspended").await;
    let edit = json!({ "title": "Buy later", "body": "x" });
    let refused = send(
        &app,
        &bob,
        Method::POST,
        &format!("/api/v1/community/posts/{post}/edit"),
        Some(edit),
    )
    .await;
    assert_problem(refused, StatusCode::CONFLICT, "suspended").await;
    let standing: Value = send(&app, &bob, Method::GET, &member, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(standing["reason"], "Advertising", "{standing}");
    let other = send(&app, &carol, Method::GET, &member, None).await;
    assert_problem(other, StatusCode::FORBIDDEN, "forbidden").await;
    let lifted = send(
        &app,
        &moderator,
        Method::POST,
        &format!("{member}/suspension/lift"),
        None,
    )
    .await;
    accepted(&app, lifted, StatusCode::OK).await;
    let written = send(
        &app,
        &bob,
        Method::POST,
        "/api/v1/community/posts",
        Some(body),
    )
    .await;
    accepted(&app, written, StatusCode::CREATED).await;

    let past = json!({ "until": "2020-01-01T00:00:00Z", "reason": "Late" });
    let refused = send(
        &app,
        &moderator,
        Method::POST,
        &format!("{member}/suspension"),
        Some(past),
    )
    .await;
    assert_problem(
        refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "suspension_in_past",
    )
    .await;
    let nobody = "/api/v1/community/members/0192f0c4-0000-7000-8000-000000000042/suspension";
    let suspend = json!({ "until": until, "reason": "Nobody" });
    let refused = send(&app, &moderator, Method::POST, nobody, Some(suspend)).await;
    assert_problem(refused, StatusCode::NOT_FOUND, "member_not_found").await;
}

#[tokio::test]
async fn a_member_writing_too_fast_is_answered_429_and_others_are_not() {
    let app = crate::helpers::spawn_app_with(|settings| {
        settings.rate_limit.enabled = true;
        settings.community.posts_per_minute = 2;
        settings.community.comments_per_minute = 3;
    })
    .await;
    let (_, ada) = app.api_key_with_roles(&["user"]).await;
    let (_, bob) = app.api_key_with_roles(&["user"]).await;
    let category = category(&app, "Busy").await;
    let body = json!({ "category_id": category, "title": "Again", "body": "x" });
    let path = "/api/v1/community/posts";
    let first = accepted(
        &app,
        send(&app, &ada, Method::POST, path, Some(body.clone())).await,
        StatusCode::CREATED,
    )
    .await;
    accepted(
        &app,
        send(&app, &ada, Method::POST, path, Some(body.clone())).await,
        StatusCode::CREATED,
    )
    .await;
    let refused = send(&app, &ada, Method::POST, path, Some(body.clone())).await;
    assert!(refused.headers().contains_key("retry-after"));
    let problem =
        assert_problem(refused, StatusCode::TOO_MANY_REQUESTS, "write_rate_limited").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("2 posts per minute"),
        "{problem}"
    );
    accepted(
        &app,
        send(&app, &bob, Method::POST, path, Some(body.clone())).await,
        StatusCode::CREATED,
    )
    .await;

    let on = first["aggregate_id"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        comment(&app, &ada, &on, None).await;
    }
    let path = format!("/api/v1/community/posts/{on}/comments");
    let refused = send(
        &app,
        &ada,
        Method::POST,
        &path,
        Some(json!({ "body": "More" })),
    )
    .await;
    assert_problem(refused, StatusCode::TOO_MANY_REQUESTS, "write_rate_limited").await;
}

#[tokio::test]
async fn two_moderators_deciding_at_once_leave_the_writing_as_the_winning_decision_says() {
    let app = spawn_app().await;
    let (_, ada) = app.api_key_with_roles(&["user"]).await;
    let (_, first) = app.api_key_with_roles(&["moderator"]).await;
    let (_, second) = app.api_key_with_roles(&["moderator"]).await;
    let category = category(&app, "Contested").await;
    for round in 0..5 {
        let post = write(&app, &ada, &category, &format!("Contested {round}")).await;
        let post = post["aggregate_id"].as_str().unwrap().to_owned();
        let reports = format!("/api/v1/community/posts/{post}/reports");
        let filed = send(
            &app,
            &ada,
            Method::POST,
            &reports,
            Some(json!({ "reason": "Why" })),
        )
        .await;
        let filed = accepted(&app, filed, StatusCode::CREATED).await;
        let resolve = format!(
            "/api/v1/community/reports/{}/resolve",
            filed["aggregate_id"].as_str().unwrap()
        );
        let (hide, dismiss) = tokio::join!(
            send(
                &app,
                &first,
                Method::POST,
                &resolve,
                Some(json!({ "resolution": "hide" }))
            ),
            send(
                &app,
                &second,
                Method::POST,
                &resolve,
                Some(json!({ "resolution": "dismiss" }))
            ),
        );
        let hid = hide.status() == StatusCode::OK;
        assert_ne!(
            hid,
            dismiss.status() == StatusCode::OK,
            "exactly one decision wins"
        );
        // The report's stream says who won; the post follows it.
        let decided: String = sqlx::query_scalar(
            "SELECT payload::jsonb -> 'ReportResolved' ->> 'resolution' FROM events
              WHERE aggregate_type = 'Report' AND event_type = 'ReportResolved'
                AND aggregate_id LIKE '%' || $1",
        )
        .bind(filed["aggregate_id"].as_str().unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
        let hidden: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = 'Post'
                              AND aggregate_id LIKE '%' || $1 AND event_type = 'PostHidden')",
        )
        .bind(&post)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(
            (decided.as_str(), hidden),
            (if hid {
                ("hide", true)
            } else {
                ("dismiss", false)
            })
        );
    }
}
