//! The community under concurrent writers: every count a reader is shown equals the count the
//! event store implies, and no reader is served hidden or removed writing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, wait_until, TestApp};

const WRITERS: usize = 8;
const COMMANDS_EACH: usize = 260;
const KINDS: [&str; 5] = ["like", "thanks", "insightful", "funny", "confused"];

/// What every writer may act on: the posts and comments written so far.
#[derive(Default)]
struct Written {
    posts: Vec<String>,
    comments: Vec<(String, String)>,
}

async fn call(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let response = app
        .anonymous(method, path)
        .header("x-api-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// One writer's run: `COMMANDS_EACH` commands of every kind a member issues, on posts and
/// comments any writer wrote. Returns how many were issued and how many accepted.
async fn writer(
    app: &TestApp,
    key: &str,
    seed: u64,
    category: &str,
    written: &Mutex<Written>,
) -> (usize, usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut issued, mut accepted) = (0, 0);
    for n in 0..COMMANDS_EACH {
        let roll = rng.random_range(0..100);
        let (post, comment) = {
            let written = written.lock().unwrap();
            let post = written.posts[rng.random_range(0..written.posts.len())].clone();
            let comment = (!written.comments.is_empty())
                .then(|| written.comments[rng.random_range(0..written.comments.len())].clone());
            (post, comment)
        };
        let (status, body) = match roll {
            0..10 => {
                let body = json!({ "category_id": category, "title": format!("Post {seed}.{n}"), "body": "Text" });
                call(app, key, Method::POST, "/api/v1/community/posts", body).await
            }
            10..45 => {
                let parent = comment
                    .filter(|(on, _)| *on == post && rng.random_bool(0.3))
                    .map(|(_, id)| id);
                let body = json!({ "body": format!("Comment {seed}.{n}"), "parent_id": parent });
                call(
                    app,
                    key,
                    Method::POST,
                    &format!("/api/v1/community/posts/{post}/comments"),
                    body,
                )
                .await
            }
            45..70 => {
                let body = json!({ "kind": KINDS[rng.random_range(0..5)], "present": rng.random_bool(0.7) });
                call(
                    app,
                    key,
                    Method::PUT,
                    &format!("/api/v1/community/posts/{post}/reactions"),
                    body,
                )
                .await
            }
            70..90 => match comment {
                Some((_, id)) => {
                    let body = json!({ "kind": KINDS[rng.random_range(0..5)], "present": rng.random_bool(0.7) });
                    call(
                        app,
                        key,
                        Method::PUT,
                        &format!("/api/v1/community/comments/{id}/reactions"),
                        body,
                    )
                    .await
                }
                None => continue,
            },
            _ => match comment {
                // Removing a comment: only its author may, so others' attempts are refused.
                Some((_, id)) => {
                    call(
                        app,
                        key,
                        Method::POST,
                        &format!("/api/v1/community/comments/{id}/remove"),
                        Value::Null,
                    )
                    .await
                }
                None => continue,
            },
        };
        issued += 1;
        if status.is_success() {
            accepted += 1;
            let id = body["aggregate_id"].as_str().unwrap_or_default().to_owned();
            let mut written = written.lock().unwrap();
            match roll {
                0..10 => written.posts.push(id),
                10..45 => written.comments.push((post, id)),
                _ => {}
            }
        } else {
            let code = body["code"].as_str().unwrap_or_default();
            let expected = [
                "post_hidden",
                "concurrent_modification",
                "comment_hidden",
                "comment_removed",
                "reply_to_reply",
                "suspended",
                "forbidden",
                "parent_comment_not_found",
            ];
            assert!(expected.contains(&code), "{status}: {body}");
        }
    }
    (issued, accepted)
}

/// The counts the event store implies: visible posts per category, and per visible post its
/// visible comments and its reactions by kind.
async fn from_the_store(
    app: &TestApp,
) -> (
    BTreeMap<String, (i64, i64)>,
    BTreeMap<String, (i64, BTreeMap<String, i64>)>,
) {
    let posts: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT split_part(w.aggregate_id, ':', 2), w.payload::jsonb -> 'PostWritten' ->> 'category',
                EXISTS (SELECT 1 FROM events g WHERE g.aggregate_type = 'Post'
                           AND g.aggregate_id = w.aggregate_id
                           AND g.event_type IN ('PostRemoved', 'PostHidden'))
           FROM events w WHERE w.aggregate_type = 'Post' AND w.event_type = 'PostWritten'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let comments: Vec<(String, i64)> = sqlx::query_as(
        "SELECT w.payload::jsonb -> 'CommentWritten' ->> 'post', count(*)
           FROM events w WHERE w.aggregate_type = 'Comment' AND w.event_type = 'CommentWritten'
            AND NOT EXISTS (SELECT 1 FROM events g WHERE g.aggregate_type = 'Comment'
                               AND g.aggregate_id = w.aggregate_id
                               AND g.event_type IN ('CommentRemoved', 'CommentHidden'))
          GROUP BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    // A member's reaction of a kind is there when its last event for that kind added it.
    let reactions: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT target, kind, count(*) FILTER (WHERE last = 'ReactionAdded')
           FROM (SELECT DISTINCT ON (aggregate_id, payload::jsonb -> event_type ->> 'kind')
                        payload::jsonb -> event_type -> 'target' ->> 'post' AS target,
                        payload::jsonb -> event_type ->> 'kind' AS kind, event_type AS last
                   FROM events WHERE aggregate_type = 'Reactions'
                  ORDER BY aggregate_id, payload::jsonb -> event_type ->> 'kind', sequence DESC) r
          WHERE target IS NOT NULL
          GROUP BY 1, 2",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let comments: HashMap<String, i64> = comments.into_iter().collect();
    let mut categories: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut visible: BTreeMap<String, (i64, BTreeMap<String, i64>)> = BTreeMap::new();
    for (post, category, gone) in posts {
        let counts = categories.entry(category).or_default();
        if !gone {
            let on_post = comments.get(&post).copied().unwrap_or(0);
            counts.0 += 1;
            counts.1 += on_post;
            visible.insert(post, (on_post, BTreeMap::new()));
        }
    }
    for (post, kind, count) in reactions {
        if let Some((_, kinds)) = visible.get_mut(&post) {
            if count > 0 {
                kinds.insert(kind, count);
            }
        }
    }
    (categories, visible)
}

/// What a reader is shown: per category its counts, per listed post its comment count and
/// reaction counts. Also checks the reader is never served hidden or removed writing.
async fn as_shown(
    app: &TestApp,
    reader: &str,
    categories: &[String],
) -> (
    BTreeMap<String, (i64, i64)>,
    BTreeMap<String, (i64, BTreeMap<String, i64>)>,
) {
    let mut shown_categories = BTreeMap::new();
    let mut shown_posts = BTreeMap::new();
    for category in categories {
        let (_, seen) = call(
            app,
            reader,
            Method::GET,
            &format!("/api/v1/community/categories/{category}"),
            Value::Null,
        )
        .await;
        shown_categories.insert(
            category.clone(),
            (
                seen["posts"].as_i64().unwrap(),
                seen["comments"].as_i64().unwrap(),
            ),
        );
        let mut after: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/community/categories/{category}/posts?limit=100");
            if let Some(cursor) = &after {
                path.push_str(&format!("&after={cursor}"));
            }
            let (_, page) = call(app, reader, Method::GET, &path, Value::Null).await;
            for post in page["items"].as_array().unwrap() {
                assert_eq!(
                    (post["removed"].as_bool(), post["hidden"].as_bool()),
                    (Some(false), Some(false)),
                    "{post}"
                );
                let counts: BTreeMap<String, i64> =
                    serde_json::from_value(post["reactions"]["counts"].clone()).unwrap();
                shown_posts.insert(
                    post["id"].as_str().unwrap().to_owned(),
                    (post["comments"].as_i64().unwrap(), counts),
                );
            }
            match page["next_cursor"].as_str() {
                Some(cursor) => after = Some(cursor.to_owned()),
                None => break,
            }
        }
    }
    (shown_categories, shown_posts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_and_moderation_leave_every_count_equal_to_the_store() {
    let app = Arc::new(spawn_app().await);
    let categories = [
        crate::community::category(&app, "Load A").await,
        crate::community::category(&app, "Load B").await,
    ];
    let mut keys = Vec::new();
    for _ in 0..WRITERS {
        keys.push(app.api_key_with_roles(&["user"]).await);
    }
    let (_, moderator) = app.api_key_with_roles(&["moderator"]).await;
    // A member who only reads: it is shown what any reader is shown (an author also sees its
    // own hidden and removed writing).
    let (reader_id, reader) = app.api_key_with_roles(&["user"]).await;
    let written = Arc::new(Mutex::new(Written::default()));
    for (n, (_, key)) in keys.iter().enumerate() {
        let body = json!({ "category_id": categories[n % 2], "title": "Seed", "body": "Text" });
        let (status, post) = call(&app, key, Method::POST, "/api/v1/community/posts", body).await;
        assert_eq!(status, StatusCode::CREATED, "{post}");
        written
            .lock()
            .unwrap()
            .posts
            .push(post["aggregate_id"].as_str().unwrap().to_owned());
    }

    let mut runs = Vec::new();
    for (n, (_, key)) in keys.iter().enumerate() {
        let (app, key, written, category) = (
            app.clone(),
            key.clone(),
            written.clone(),
            categories[n % 2].clone(),
        );
        runs.push(tokio::spawn(async move {
            writer(&app, &key, n as u64, &category, &written).await
        }));
    }
    // Meanwhile the moderator hides some of what is written and suspends the last writer.
    let mut hidden = 0;
    for round in 0..6 {
        // Each round acts once the writers have written more: moderation lands mid-run.
        let due = (round + 1) * 40;
        wait_until(
            "the writers wrote more comments",
            Duration::from_secs(120),
            || {
                let written = written.clone();
                async move { written.lock().unwrap().comments.len() >= due }
            },
        )
        .await;
        let (post, comment) = {
            let written = written.lock().unwrap();
            (
                written.posts[round % written.posts.len()].clone(),
                written.comments.last().cloned(),
            )
        };
        let targets = [
            Some(format!("posts/{post}")),
            comment.map(|(_, id)| format!("comments/{id}")),
        ];
        for target in targets.into_iter().flatten() {
            let reason = json!({ "reason": format!("Round {round}") });
            let (status, report) = call(
                &app,
                &keys[0].1,
                Method::POST,
                &format!("/api/v1/community/{target}/reports"),
                reason,
            )
            .await;
            if status != StatusCode::CREATED {
                continue;
            }
            let resolve = format!(
                "/api/v1/community/reports/{}/resolve",
                report["aggregate_id"].as_str().unwrap()
            );
            let (status, body) = call(
                &app,
                &moderator,
                Method::POST,
                &resolve,
                json!({ "resolution": "hide" }),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            hidden += 1;
        }
        if round == 2 {
            let until = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
            let member = format!(
                "/api/v1/community/members/{}/suspension",
                keys[WRITERS - 1].0
            );
            let (status, body) = call(
                &app,
                &moderator,
                Method::POST,
                &member,
                json!({ "until": until, "reason": "Load" }),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    let (mut issued, mut accepted) = (0, 0);
    for run in runs {
        let (run_issued, run_accepted) = run.await.unwrap();
        issued += run_issued;
        accepted += run_accepted;
    }
    assert!(hidden >= 4, "the moderator hid {hidden}");
    assert!(issued >= 2_000, "{issued} commands issued");
    assert!(accepted >= issued / 2, "{accepted} of {issued} accepted");

    // Once the projection has caught up, a reader is shown exactly what the store implies.
    let expected = from_the_store(&app).await;
    wait_until(
        "the community projection shows what the store implies",
        Duration::from_secs(60),
        || {
            let (app, reader, categories, expected) = (
                app.clone(),
                reader.clone(),
                categories.clone(),
                expected.clone(),
            );
            async move { as_shown(&app, &reader, &categories).await == expected }
        },
    )
    .await;
    // And no thread shows the reader anyone else's hidden or removed comment.
    let mut checked = 0;
    for post in expected.1.keys() {
        let mut after: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/community/posts/{post}/comments?limit=100");
            if let Some(cursor) = &after {
                path.push_str(&format!("&after={cursor}"));
            }
            let (status, page) = call(&app, &reader, Method::GET, &path, Value::Null).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            for thread in page["items"].as_array().unwrap() {
                let replies = thread["replies"].as_array().unwrap();
                for comment in std::iter::once(&thread["comment"]).chain(replies) {
                    let gone = comment["removed"] == true || comment["hidden"] == true;
                    let own = comment["author"] == reader_id.as_str();
                    if gone && !own {
                        assert!(
                            comment["body"].is_null() && comment["author"].is_null(),
                            "{comment}"
                        );
                    }
                    checked += 1;
                }
            }
            match page["next_cursor"].as_str() {
                Some(cursor) => after = Some(cursor.to_owned()),
                None => break,
            }
        }
    }
    assert!(checked > 100, "{checked} comments checked");
}
