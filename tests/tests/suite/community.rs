//! The community over HTTP: categories, posts, who may do what to them, and who sees what.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, TestApp};

/// Sends `method path` with `key` and an optional JSON body.
pub(crate) async fn send(
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
pub(crate) async fn accepted(
    app: &TestApp,
    response: reqwest::Response,
    status: StatusCode,
) -> Value {
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
pub(crate) async fn read(app: &TestApp, key: &str, path: &str, token: &Value) -> reqwest::Response {
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
pub(crate) async fn write(app: &TestApp, key: &str, category: &str, title: &str) -> Value {
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
/// with `key` and visible to readers, the admin's report of the comment and a published
/// announcement: `[category, post, comment, report, announcement]` ids.
pub async fn written(app: &TestApp, key: &str) -> [String; 5] {
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
    let notice = json!({ "title": "Walked", "body": "Hello" });
    let drafted = app
        .post_json("/api/v1/community/announcements", &notice)
        .await;
    let drafted = accepted(app, drafted, StatusCode::CREATED).await;
    let announcement = drafted["aggregate_id"].as_str().unwrap().to_owned();
    let published = app
        .post(&format!(
            "/api/v1/community/announcements/{announcement}/publish"
        ))
        .send()
        .await
        .unwrap();
    accepted(app, published, StatusCode::OK).await;
    [category, post, id, report, announcement]
}

/// A comment written with `key` on `post` (replying to `parent`); returns the command's answer.
pub(crate) async fn comment(app: &TestApp, key: &str, post: &str, parent: Option<&str>) -> Value {
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
pub(crate) async fn titles(
    app: &TestApp,
    key: &str,
    category: &str,
    order: &str,
    limit: u32,
) -> Vec<String> {
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

#[tokio::test]
async fn a_members_activity_lists_their_writing_newest_first_as_the_reader_may_see_it() {
    let app = spawn_app().await;
    let (ada_id, ada) = app.api_key_with_roles(&["user"]).await;
    let (_, bob) = app.api_key_with_roles(&["user"]).await;
    let category = category(&app, "Activity").await;
    let kept = write(&app, &ada, &category, "Kept").await;
    let kept = kept["aggregate_id"].as_str().unwrap().to_owned();
    let gone = write(&app, &ada, &category, "Gone").await;
    let gone = gone["aggregate_id"].as_str().unwrap().to_owned();
    let remove = format!("/api/v1/community/posts/{gone}/remove");
    accepted(
        &app,
        send(&app, &ada, Method::POST, &remove, None).await,
        StatusCode::OK,
    )
    .await;
    let said = comment(&app, &ada, &kept, None).await;
    let said = said["aggregate_id"].as_str().unwrap().to_owned();

    let path = format!("/api/v1/community/members/{ada_id}/activity?limit=1");
    let ids = |key: &str| {
        let (app, key, path) = (&app, key.to_owned(), path.clone());
        async move {
            let mut ids = Vec::new();
            let mut next = path.clone();
            loop {
                let page: Value = send(app, &key, Method::GET, &next, None)
                    .await
                    .json()
                    .await
                    .unwrap();
                for item in page["items"].as_array().unwrap() {
                    ids.push(item["id"].as_str().unwrap().to_owned());
                }
                match page["next_cursor"].as_str() {
                    Some(cursor) => next = format!("{path}&after={cursor}"),
                    None => return ids,
                }
            }
        }
    };
    assert_eq!(
        ids(&bob).await,
        [said.clone(), kept.clone()],
        "others never see the removed post"
    );
    assert_eq!(
        ids(&ada).await,
        [said, gone, kept],
        "the author sees it, newest first"
    );
    let nobody = "/api/v1/community/members/0192f0c4-0000-7000-8000-000000000077/activity";
    assert_problem(
        app.get(nobody).await,
        StatusCode::NOT_FOUND,
        "activity_not_found",
    )
    .await;
}
