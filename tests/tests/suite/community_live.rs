//! New writing over Server-Sent Events: a category's posts and comments, a post's comments,
//! resumed after `Last-Event-ID` with nothing skipped or repeated, and never the text itself.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::community::{category, comment, send, write};
use crate::helpers::{assert_problem, spawn_app, TestApp};
use crate::live::EventStream;

/// Opens `path` (a live route) with `key`, resuming after `last` when given.
async fn open(app: &TestApp, key: &str, path: &str, last: Option<u64>) -> reqwest::Response {
    let mut request = app.anonymous(Method::GET, path).header("x-api-key", key);
    if let Some(last) = last {
        request = request.header("last-event-id", last.to_string());
    }
    request.send().await.unwrap()
}

/// The next `writing` event, as (id, notice); its data never holds the writing's text.
async fn next_notice(stream: &mut EventStream) -> (u64, Value) {
    let event = stream.next().await;
    assert_eq!(event.event, "writing", "{event:?}");
    assert!(
        !event.data.contains("markdown") && !event.data.contains("Agreed"),
        "a notice carries no text: {}",
        event.data
    );
    let notice: Value = serde_json::from_str(&event.data).unwrap();
    assert!(notice.get("title").is_none() && notice.get("body").is_none());
    (event.id.parse().unwrap(), notice)
}

fn id_of(answer: &Value) -> String {
    answer["aggregate_id"].as_str().unwrap().to_owned()
}

/// A category's live stream carries its new posts and the comments on them (not another
/// category's); a client that reconnects after the last id it received gets exactly what it
/// missed, in order; a post's stream carries only its own comments; a missing or removed target
/// is 404 and a bad id 400.
#[tokio::test]
async fn new_writing_is_streamed_live_and_resumed_after_the_last_event_id() {
    let app = spawn_app().await;
    let (_, ada) = app.api_key_with_roles(&["user"]).await;
    let (_, bob) = app.api_key_with_roles(&["user"]).await;
    let (here, elsewhere) = (
        category(&app, "Live here").await,
        category(&app, "Elsewhere").await,
    );
    let category_live = format!("/api/v1/community/categories/{here}/live");

    let mut live = EventStream::new(open(&app, &bob, &category_live, None).await);
    let first = id_of(&write(&app, &ada, &here, "First").await);
    write(&app, &ada, &elsewhere, "Not here").await;
    let first_comment = id_of(&comment(&app, &ada, &first, None).await);
    let (post_id, notice) = next_notice(&mut live).await;
    assert_eq!(notice["kind"], "post");
    assert_eq!(notice["post_id"], first.as_str());
    assert_eq!(notice["category_id"], here.as_str());
    assert_eq!(notice["comment_id"], Value::Null);
    let (last, notice) = next_notice(&mut live).await;
    assert!(last > post_id, "ids increase");
    assert_eq!(
        notice["kind"], "comment",
        "the other category's post is not here"
    );
    assert_eq!(notice["post_id"], first.as_str());
    assert_eq!(notice["comment_id"], first_comment.as_str());
    drop(live);

    // While nobody listens: a second post, and a reply on the first.
    let second = id_of(&write(&app, &ada, &here, "Second").await);
    let reply = id_of(&comment(&app, &bob, &first, Some(&first_comment)).await);
    let mut resumed = EventStream::new(open(&app, &bob, &category_live, Some(last)).await);
    let (missed_post, notice) = next_notice(&mut resumed).await;
    assert!(missed_post > last);
    assert_eq!(
        notice["kind"], "post",
        "nothing already received comes again"
    );
    assert_eq!(notice["post_id"], second.as_str());
    let (missed_reply, notice) = next_notice(&mut resumed).await;
    assert!(missed_reply > missed_post);
    assert_eq!(notice["comment_id"], reply.as_str());
    assert_eq!(notice["parent_id"], first_comment.as_str());
    // Then live again.
    let third = id_of(&write(&app, &bob, &here, "Third").await);
    let (_, notice) = next_notice(&mut resumed).await;
    assert_eq!(notice["post_id"], third.as_str());

    // A post's stream: its own comments only.
    let post_live = format!("/api/v1/community/posts/{first}/live");
    let mut on_post = EventStream::new(open(&app, &bob, &post_live, None).await);
    let on_second = id_of(&comment(&app, &ada, &second, None).await);
    let on_first = id_of(&comment(&app, &ada, &first, None).await);
    let (_, notice) = next_notice(&mut on_post).await;
    assert_eq!(notice["comment_id"], on_first.as_str());
    // The category's stream has both, in the order they were written.
    let (_, notice) = next_notice(&mut resumed).await;
    assert_eq!(notice["comment_id"], on_second.as_str());
    let (_, notice) = next_notice(&mut resumed).await;
    assert_eq!(notice["comment_id"], on_first.as_str());

    // What cannot be followed.
    let missing = uuid::Uuid::now_v7();
    let gone = open(
        &app,
        &bob,
        &format!("/api/v1/community/categories/{missing}/live"),
        None,
    )
    .await;
    assert_problem(gone, StatusCode::NOT_FOUND, "category_not_found").await;
    let removed = send(
        &app,
        &ada,
        Method::POST,
        &format!("/api/v1/community/posts/{second}/remove"),
        None,
    )
    .await;
    crate::community::accepted(&app, removed, StatusCode::OK).await;
    let hidden = open(
        &app,
        &bob,
        &format!("/api/v1/community/posts/{second}/live"),
        None,
    )
    .await;
    assert_problem(hidden, StatusCode::NOT_FOUND, "post_not_found").await;
    // Replayed from the start, a member is not told of writing it may no longer see (the
    // removed post, the comment under it); staff are.
    let replayed = |key: String| {
        let path = category_live.clone();
        let app = &app;
        let last = on_first.clone();
        async move {
            let mut replay = EventStream::new(open(app, &key, &path, Some(0)).await);
            let mut named = Vec::new();
            loop {
                let (_, notice) = next_notice(&mut replay).await;
                let id = match notice["kind"].as_str().unwrap() {
                    "post" => notice["post_id"].as_str().unwrap().to_owned(),
                    _ => notice["comment_id"].as_str().unwrap().to_owned(),
                };
                named.push(id.clone());
                if id == last {
                    return named;
                }
            }
        }
    };
    let for_bob = replayed(bob.clone()).await;
    assert!(
        for_bob.contains(&first) && for_bob.contains(&third),
        "{for_bob:?}"
    );
    assert!(!for_bob.contains(&second), "a removed post is not replayed");
    assert!(!for_bob.contains(&on_second), "nor a comment under it");
    let for_admin = replayed(app.admin_key.clone()).await;
    assert!(for_admin.contains(&second) && for_admin.contains(&on_second));

    let bad = app
        .anonymous(Method::GET, &post_live)
        .header("x-api-key", &bob)
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_problem(bad, StatusCode::BAD_REQUEST, "invalid_last_event_id").await;
}
