//! Comments as threads, and reactions: one level of replies, tombstones for what readers may
//! not see, and each reaction counted once.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::community::{accepted, category, comment, read, send, write};
use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn threads_go_one_level_deep_and_removed_comments_leave_only_a_tombstone() {
    let app = spawn_app().await;
    let (_, ada) = app.api_key_with_roles(&["user"]).await;
    let (_, bob) = app.api_key_with_roles(&["user"]).await;
    let (_, carol) = app.api_key_with_roles(&["user"]).await;
    let (_, moderator) = app.api_key_with_roles(&["moderator"]).await;
    let category = category(&app, "Threads").await;
    let post = write(&app, &ada, &category, "Question").await;
    let post = post["aggregate_id"].as_str().unwrap().to_owned();

    let top = comment(&app, &bob, &post, None).await;
    let top_id = top["aggregate_id"].as_str().unwrap().to_owned();
    let reply = comment(&app, &ada, &post, Some(&top_id)).await;
    let reply_id = reply["aggregate_id"].as_str().unwrap().to_owned();
    let second = comment(&app, &ada, &post, None).await;
    let body = json!({ "body": "Deeper", "parent_id": reply_id });
    let comments = format!("/api/v1/community/posts/{post}/comments");
    let deeper = send(&app, &bob, Method::POST, &comments, Some(body)).await;
    assert_problem(deeper, StatusCode::CONFLICT, "reply_to_reply").await;
    let other = write(&app, &ada, &category, "Elsewhere").await;
    let other_comments = format!(
        "/api/v1/community/posts/{}/comments",
        other["aggregate_id"].as_str().unwrap()
    );
    let body = json!({ "body": "Lost", "parent_id": top_id });
    let elsewhere = send(&app, &bob, Method::POST, &other_comments, Some(body)).await;
    assert_problem(elsewhere, StatusCode::NOT_FOUND, "parent_comment_not_found").await;

    let page: Value = read(&app, &bob, &comments, &second["consistency_token"])
        .await
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().unwrap_or_else(|| panic!("{page}"));
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["comment"]["id"], top_id.as_str());
    assert_eq!(items[0]["replies"][0]["id"], reply_id.as_str());
    assert_eq!(items[1]["replies"], json!([]));
    let seen: Value = read(
        &app,
        &bob,
        &format!("/api/v1/community/posts/{post}"),
        &second["consistency_token"],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(seen["comments"], 3);

    // The moderator removes the top comment and the author her reply: others see a tombstone
    // without text or author, and no removed reply; the author still sees her own reply, and the
    // moderator everything.
    let removed = send(
        &app,
        &moderator,
        Method::POST,
        &format!("/api/v1/community/comments/{top_id}/remove"),
        None,
    )
    .await;
    accepted(&app, removed, StatusCode::OK).await;
    let removed = send(
        &app,
        &ada,
        Method::POST,
        &format!("/api/v1/community/comments/{reply_id}/remove"),
        None,
    )
    .await;
    let removed = accepted(&app, removed, StatusCode::OK).await;
    let page: Value = read(&app, &carol, &comments, &removed["consistency_token"])
        .await
        .json()
        .await
        .unwrap();
    let tombstone = &page["items"][0];
    assert_eq!(tombstone["comment"]["removed"], true);
    assert!(tombstone["comment"]["body"].is_null() && tombstone["comment"]["author"].is_null());
    assert_eq!(tombstone["replies"], json!([]));
    let page: Value = read(&app, &ada, &comments, &removed["consistency_token"])
        .await
        .json()
        .await
        .unwrap();
    assert!(page["items"][0]["comment"]["body"].is_null());
    assert_eq!(page["items"][0]["replies"][0]["body"], "Agreed.");
    let page: Value = read(&app, &moderator, &comments, &removed["consistency_token"])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["comment"]["body"], "Agreed.");
    let hidden = read(
        &app,
        &carol,
        &format!("/api/v1/community/comments/{top_id}"),
        &removed["consistency_token"],
    )
    .await;
    assert_problem(hidden, StatusCode::NOT_FOUND, "comment_not_found").await;
    let seen: Value = read(
        &app,
        &bob,
        &format!("/api/v1/community/categories/{category}"),
        &removed["consistency_token"],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        (seen["posts"].as_i64(), seen["comments"].as_i64()),
        (Some(2), Some(1))
    );

    // A locked post takes no comments, but still reactions.
    let lock = send(
        &app,
        &moderator,
        Method::POST,
        &format!("/api/v1/community/posts/{post}/lock"),
        None,
    )
    .await;
    accepted(&app, lock, StatusCode::OK).await;
    let late = send(
        &app,
        &bob,
        Method::POST,
        &comments,
        Some(json!({ "body": "Late" })),
    )
    .await;
    assert_problem(late, StatusCode::CONFLICT, "post_locked").await;
    let like = json!({ "kind": "like", "present": true });
    let reacted = send(
        &app,
        &bob,
        Method::PUT,
        &format!("/api/v1/community/posts/{post}/reactions"),
        Some(like),
    )
    .await;
    accepted(&app, reacted, StatusCode::OK).await;
}

#[tokio::test]
async fn a_reaction_counts_once_however_often_it_is_asked_for() {
    let app = spawn_app().await;
    let (_, ada) = app.api_key_with_roles(&["user"]).await;
    let (_, bob) = app.api_key_with_roles(&["user"]).await;
    let category = category(&app, "Reactions").await;
    let post = write(&app, &ada, &category, "React to me").await;
    let post = post["aggregate_id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/community/posts/{post}/reactions");
    let set = |key: &str, kind: &str, present: bool| {
        let body = json!({ "kind": kind, "present": present });
        app.anonymous(Method::PUT, &path)
            .header("x-api-key", key)
            .json(&body)
            .send()
    };
    let first = accepted(&app, set(&bob, "like", true).await.unwrap(), StatusCode::OK).await;
    let again = accepted(&app, set(&bob, "like", true).await.unwrap(), StatusCode::OK).await;
    assert_eq!(
        first["version"], again["version"],
        "a repeat appends nothing"
    );
    accepted(
        &app,
        set(&bob, "thanks", true).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let last = accepted(&app, set(&ada, "like", true).await.unwrap(), StatusCode::OK).await;
    let post_path = format!("/api/v1/community/posts/{post}");
    let seen: Value = read(&app, &bob, &post_path, &last["consistency_token"])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        seen["reactions"]["counts"],
        json!({ "like": 2, "thanks": 1 }),
        "{seen}"
    );
    assert_eq!(seen["reactions"]["mine"], json!(["like", "thanks"]));

    accepted(
        &app,
        set(&bob, "like", false).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let last = accepted(
        &app,
        set(&bob, "like", false).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let seen: Value = read(&app, &ada, &post_path, &last["consistency_token"])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        seen["reactions"]["counts"],
        json!({ "like": 1, "thanks": 1 })
    );
    assert_eq!(seen["reactions"]["mine"], json!(["like"]));

    let unknown = set(&bob, "angry", true).await.unwrap();
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let removed = send(
        &app,
        &ada,
        Method::POST,
        &format!("{post_path}/remove"),
        None,
    )
    .await;
    accepted(&app, removed, StatusCode::OK).await;
    assert_problem(
        set(&bob, "funny", true).await.unwrap(),
        StatusCode::CONFLICT,
        "post_removed",
    )
    .await;
}

/// Title and body limits come from the configuration: the server holds writing to them, names
/// the field and the limit when refusing, and its OpenAPI document states them.
#[tokio::test]
async fn configured_text_limits_are_kept_and_documented() {
    let app = crate::helpers::spawn_app_with(|settings| {
        settings.community.title_max_chars = 10;
        settings.community.body_max_chars = 30;
    })
    .await;
    let category = category(&app, "Tight").await;
    let (_, ada) = app.api_key_with_roles(&["user"]).await;
    let post = |title: &str, body: &str| {
        let body = json!({ "category_id": category, "title": title, "body": body });
        send(
            &app,
            &ada,
            Method::POST,
            "/api/v1/community/posts",
            Some(body),
        )
    };
    let long = post("Eleven char", &"y".repeat(31)).await;
    let problem = assert_problem(long, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let errors: Vec<(&str, &str)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| {
            (
                error["field"].as_str().unwrap(),
                error["message"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            ("title", "a title must be 1 to 10 characters, got 11"),
            (
                "body",
                "a body must hold some text and at most 30 characters, got 31"
            ),
        ],
        "{problem}"
    );
    let fits = post("Ten chars!", &"y".repeat(30)).await;
    assert_eq!(fits.status(), StatusCode::CREATED);
    // Every body and title is held to them: comments and category names too.
    let (_, comment) = app.api_key_with_roles(&["user"]).await;
    let created: Value = fits.json().await.unwrap();
    let path = format!(
        "/api/v1/community/posts/{}/comments",
        created["aggregate_id"].as_str().unwrap()
    );
    let long = send(
        &app,
        &comment,
        Method::POST,
        &path,
        Some(json!({ "body": "y".repeat(31) })),
    )
    .await;
    assert_problem(long, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let long = app
        .post_json(
            "/api/v1/community/categories",
            &json!({ "name": "Eleven char" }),
        )
        .await;
    assert_problem(long, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    let document: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    let schemas = &document["components"]["schemas"];
    assert_eq!(schemas["Title"]["maxLength"], 10, "{}", schemas["Title"]);
    assert_eq!(schemas["Body"]["maxLength"], 30, "{}", schemas["Body"]);
}
