//! The community over HTTP: categories, posts, who may do what to them, and who sees what.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, TestApp};

/// Sends `method path` with `key` and an optional JSON body.
async fn send(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.anonymous(method, path).header("x-api-key", key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// The body of a successful command response, as JSON, once the community projection shows
/// the command. A consistency token promises its own stream only, and the streams of a post, its
/// comments and its reactions are projected by different partitions: waiting for each command
/// here lets a test read any of them after all it wrote.
async fn accepted(app: &TestApp, response: reqwest::Response, status: StatusCode) -> Value {
    let code = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(code, status, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    let shown = read(
        app,
        &app.admin_key,
        "/api/v1/community/categories?limit=1",
        &answer["consistency_token"],
    )
    .await;
    assert_eq!(shown.status(), StatusCode::OK);
    answer
}

/// `GET path` with `key`, waiting for the command that returned `token`.
async fn read(app: &TestApp, key: &str, path: &str, token: &Value) -> reqwest::Response {
    app.anonymous(Method::GET, path)
        .header("x-api-key", key)
        .header("x-consistency-token", token.as_str().unwrap())
        .send()
        .await
        .unwrap()
}

/// A category created by the admin; returns its id.
pub async fn category(app: &TestApp, name: &str) -> String {
    let response = app
        .post_json("/api/v1/community/categories", &json!({ "name": name }))
        .await;
    let created = accepted(app, response, StatusCode::CREATED).await;
    created["aggregate_id"].as_str().unwrap().to_owned()
}

/// A post written with `key` in `category`; returns the command's answer.
async fn write(app: &TestApp, key: &str, category: &str, title: &str) -> Value {
    let body = json!({ "category_id": category, "title": title, "body": "Some *markdown*." });
    let response = send(
        app,
        key,
        Method::POST,
        "/api/v1/community/posts",
        Some(body),
    )
    .await;
    accepted(app, response, StatusCode::CREATED).await
}

/// A category (created by the admin), a post in it and a comment on the post, both written
/// with `key` and visible to readers, and the admin's report of the comment:
/// `[category, post, comment, report]` ids.
pub async fn written(app: &TestApp, key: &str) -> [String; 4] {
    let category = category(app, "Walk").await;
    let post = write(app, key, &category, "Owned post").await;
    let post = post["aggregate_id"].as_str().unwrap().to_owned();
    let comment = comment(app, key, &post, None).await;
    let id = comment["aggregate_id"].as_str().unwrap().to_owned();
    let seen = read(
        app,
        key,
        &format!("/api/v1/community/comments/{id}"),
        &comment["consistency_token"],
    )
    .await;
    assert_eq!(seen.status(), StatusCode::OK);
    let report = app
        .post_json(
            &format!("/api/v1/community/comments/{id}/reports"),
            &json!({ "reason": "Walked" }),
        )
        .await;
    let report = accepted(app, report, StatusCode::CREATED).await;
    let report = report["aggregate_id"].as_str().unwrap().to_owned();
    [category, post, id, report]
}

/// A comment written with `key` on `post` (replying to `parent`); returns the command's answer.
async fn comment(app: &TestApp, key: &str, post: &str, parent: Option<&str>) -> Value {
    let body = json!({ "body": "Agreed.", "parent_id": parent });
    let path = format!("/api/v1/community/posts/{post}/comments");
    accepted(
        app,
        send(app, key, Method::POST, &path, Some(body)).await,
        StatusCode::CREATED,
    )
    .await
}

/// The titles of a category's posts as `key` lists them (every page, `limit` at a time).
async fn titles(app: &TestApp, key: &str, category: &str, order: &str, limit: u32) -> Vec<String> {
    let mut titles = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path =
            format!("/api/v1/community/categories/{category}/posts?order={order}&limit={limit}");
        if let Some(cursor) = &after {
            path.push_str(&format!("&after={cursor}"));
        }
        let page: Value = send(app, key, Method::GET, &path, None)
            .await
            .json()
            .await
            .unwrap();
        for item in page["items"].as_array().unwrap() {
            titles.push(item["title"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => after = Some(cursor.to_owned()),
            None => return titles,
        }
    }
}

#[tokio::test]
async fn members_write_authors_edit_moderators_moderate_and_removed_posts_are_hidden() {
    let app = spawn_app().await;
    let (_, ada) = app.api_key_with_roles(&["user"]).await;
    let (_, bob) = app.api_key_with_roles(&["user"]).await;
    let (_, moderator) = app.api_key_with_roles(&["moderator"]).await;
    let (_, worker) = app.api_key_with_roles(&["worker"]).await;
    let category = category(&app, "Legal translation").await;

    // Members write; workers do not.
    let first = write(&app, &ada, &category, "First").await;
    let post = first["aggregate_id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/community/posts/{post}");
    let body = json!({ "category_id": category, "title": "Nope", "body": "x" });
    let refused = send(
        &app,
        &worker,
        Method::POST,
        "/api/v1/community/posts",
        Some(body),
    )
    .await;
    assert_problem(refused, StatusCode::FORBIDDEN, "forbidden").await;
    let seen: Value = read(&app, &bob, &path, &first["consistency_token"])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["title"], "First");
    assert_eq!(seen["body"], "Some *markdown*.");
    assert_eq!(seen["removed"], false);

    // Only the author edits; the edit is counted and the text replaced.
    let edit = json!({ "title": "First, edited", "body": "# Better" });
    let by_bob = send(
        &app,
        &bob,
        Method::POST,
        &format!("{path}/edit"),
        Some(edit.clone()),
    )
    .await;
    assert_problem(by_bob, StatusCode::FORBIDDEN, "forbidden").await;
    let edited = send(
        &app,
        &ada,
        Method::POST,
        &format!("{path}/edit"),
        Some(edit.clone()),
    )
    .await;
    let edited = accepted(&app, edited, StatusCode::OK).await;
    let again = send(
        &app,
        &ada,
        Method::POST,
        &format!("{path}/edit"),
        Some(edit),
    )
    .await;
    assert_problem(again, StatusCode::CONFLICT, "post_unchanged").await;
    let seen: Value = read(&app, &bob, &path, &edited["consistency_token"])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (seen["title"].as_str(), seen["edits"].as_i64()),
        (Some("First, edited"), Some(1))
    );
    assert_eq!(seen["body"], "# Better");

    // Moderators pin and lock; members may not; pinned posts are listed first.
    let second = write(&app, &bob, &category, "Second").await;
    let pin = send(&app, &ada, Method::POST, &format!("{path}/pin"), None).await;
    assert_problem(pin, StatusCode::FORBIDDEN, "forbidden").await;
    accepted(
        &app,
        send(
            &app,
            &moderator,
            Method::POST,
            &format!("{path}/lock"),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let pinned = send(&app, &moderator, Method::POST, &format!("{path}/pin"), None).await;
    let pinned = accepted(&app, pinned, StatusCode::OK).await;
    let twice = send(&app, &moderator, Method::POST, &format!("{path}/pin"), None).await;
    assert_problem(twice, StatusCode::CONFLICT, "pin_unchanged").await;
    read(&app, &bob, &path, &pinned["consistency_token"]).await;
    read(&app, &bob, &path, &second["consistency_token"]).await;
    assert_eq!(
        titles(&app, &bob, &category, "newest", 1).await,
        ["First, edited", "Second"]
    );

    // The author removes the post: others no longer see it, the author and staff see it marked,
    // and the category no longer counts it.
    let removed = send(&app, &ada, Method::POST, &format!("{path}/remove"), None).await;
    let removed = accepted(&app, removed, StatusCode::OK).await;
    let hidden = read(&app, &bob, &path, &removed["consistency_token"]).await;
    assert_problem(hidden, StatusCode::NOT_FOUND, "post_not_found").await;
    for key in [&ada, &moderator] {
        let seen: Value = read(&app, key, &path, &removed["consistency_token"])
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(seen["removed"], true);
    }
    assert_eq!(titles(&app, &bob, &category, "newest", 5).await, ["Second"]);
    assert_eq!(
        titles(&app, &moderator, &category, "active", 5).await,
        ["First, edited", "Second"]
    );
    let again = send(
        &app,
        &moderator,
        Method::POST,
        &format!("{path}/unlock"),
        None,
    )
    .await;
    assert_problem(again, StatusCode::CONFLICT, "post_removed").await;
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
    assert_eq!(seen["posts"], 1);

    // An archived category takes no new posts; its posts stay readable.
    let archived = app
        .post(&format!("/api/v1/community/categories/{category}/archive"))
        .send()
        .await
        .unwrap();
    let archived = accepted(&app, archived, StatusCode::OK).await;
    let body = json!({ "category_id": category, "title": "Late", "body": "x" });
    let late = send(
        &app,
        &bob,
        Method::POST,
        "/api/v1/community/posts",
        Some(body),
    )
    .await;
    assert_problem(late, StatusCode::CONFLICT, "category_archived").await;
    let seen: Value = read(
        &app,
        &bob,
        &format!("/api/v1/community/categories/{category}"),
        &archived["consistency_token"],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(seen["archived"], true);
    assert_eq!(titles(&app, &bob, &category, "newest", 5).await, ["Second"]);
}

#[tokio::test]
async fn pages_walk_every_post_once_in_order_and_bad_input_is_named() {
    let app = spawn_app().await;
    let (_, ada) = app.api_key_with_roles(&["user"]).await;
    let category = category(&app, "Pages").await;
    let mut last = Value::Null;
    for n in 0..7 {
        last = write(&app, &ada, &category, &format!("Post {n}")).await;
    }
    read(
        &app,
        &ada,
        &format!(
            "/api/v1/community/posts/{}",
            last["aggregate_id"].as_str().unwrap()
        ),
        &last["consistency_token"],
    )
    .await;
    let newest: Vec<String> = (0..7).rev().map(|n| format!("Post {n}")).collect();
    for limit in [1, 3, 7, 20] {
        assert_eq!(titles(&app, &ada, &category, "newest", limit).await, newest);
    }

    let unknown = "/api/v1/community/categories/0192f0c4-0000-7000-8000-000000000099/posts";
    assert_problem(
        app.get(unknown).await,
        StatusCode::NOT_FOUND,
        "category_not_found",
    )
    .await;
    let path = format!("/api/v1/community/categories/{category}/posts?after=2_1_x");
    assert_problem(
        app.get(&path).await,
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
    )
    .await;
    let body = json!({ "category_id": category, "title": " ", "body": "a\u{7}b" });
    let invalid = send(
        &app,
        &ada,
        Method::POST,
        "/api/v1/community/posts",
        Some(body),
    )
    .await;
    let problem = assert_problem(
        invalid,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["title", "body"]);
    let body =
        json!({ "category_id": unknown.split('/').nth(5).unwrap(), "title": "t", "body": "b" });
    let missing = send(
        &app,
        &ada,
        Method::POST,
        "/api/v1/community/posts",
        Some(body),
    )
    .await;
    assert_problem(missing, StatusCode::NOT_FOUND, "category_not_found").await;
}

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
async fn the_active_order_follows_the_latest_comment_and_newest_does_not() {
    let app = spawn_app().await;
    let (_, ada) = app.api_key_with_roles(&["user"]).await;
    let category = category(&app, "Activity").await;
    let old = write(&app, &ada, &category, "Old").await;
    write(&app, &ada, &category, "New").await;
    comment(&app, &ada, old["aggregate_id"].as_str().unwrap(), None).await;
    assert_eq!(
        titles(&app, &ada, &category, "newest", 1).await,
        ["New", "Old"]
    );
    assert_eq!(
        titles(&app, &ada, &category, "active", 1).await,
        ["Old", "New"]
    );
}
