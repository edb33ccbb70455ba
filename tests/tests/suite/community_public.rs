//! The public pages: closed until an admin opens them, then anyone reads what any member who
//! is not the author reads, and a flood from one address is answered 429.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::community::{accepted, category, comment, send, write};
use crate::helpers::{assert_problem, spawn_app, spawn_app_with, TestApp};

/// `GET path` without credentials.
async fn anonymous(app: &TestApp, path: &str) -> reqwest::Response {
    app.anonymous(Method::GET, path).send().await.unwrap()
}

#[tokio::test]
async fn a_tenants_public_pages_are_closed_until_opened_and_show_no_hidden_writing() {
    let app = spawn_app().await;
    let (_, ada) = app.api_key_with_roles(&["user"]).await;
    let (_, moderator) = app.api_key_with_roles(&["moderator"]).await;
    // A user with an e-mail address, which no public page may show.
    app.user_with_roles("ada.public@example.org", &["user"])
        .await;
    let category = category(&app, "Public").await;
    let kept = write(&app, &ada, &category, "Kept").await;
    let kept = kept["aggregate_id"].as_str().unwrap().to_owned();
    let gone = write(&app, &ada, &category, "Gone").await;
    let gone = gone["aggregate_id"].as_str().unwrap().to_owned();
    let removed = send(
        &app,
        &ada,
        Method::POST,
        &format!("/api/v1/community/posts/{gone}/remove"),
        None,
    )
    .await;
    accepted(&app, removed, StatusCode::OK).await;
    let spam = comment(&app, &ada, &kept, None).await;
    let spam = spam["aggregate_id"].as_str().unwrap().to_owned();
    let filed = send(
        &app,
        &moderator,
        Method::POST,
        &format!("/api/v1/community/comments/{spam}/reports"),
        Some(json!({ "reason": "Spam" })),
    )
    .await;
    let filed = accepted(&app, filed, StatusCode::CREATED).await;
    let resolve = format!(
        "/api/v1/community/reports/{}/resolve",
        filed["aggregate_id"].as_str().unwrap()
    );
    let hidden = send(
        &app,
        &moderator,
        Method::POST,
        &resolve,
        Some(json!({ "resolution": "hide" })),
    )
    .await;
    accepted(&app, hidden, StatusCode::OK).await;

    // Closed by default: 404, as for a tenant that does not exist.
    for path in [
        "/api/v1/public/acme/categories",
        "/api/v1/public/nobody/categories",
    ] {
        assert_problem(
            anonymous(&app, path).await,
            StatusCode::NOT_FOUND,
            "public_pages_not_found",
        )
        .await;
    }
    assert_problem(
        anonymous(&app, "/api/v1/public/a.b/categories").await,
        StatusCode::BAD_REQUEST,
        "invalid_tenant",
    )
    .await;
    let settings: Value = app
        .get("/api/v1/community/settings")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(settings["public_pages"], false);

    // Opened by the admin (members may not).
    let open = json!({ "public_pages": true });
    let refused = send(
        &app,
        &ada,
        Method::PUT,
        "/api/v1/community/settings",
        Some(open.clone()),
    )
    .await;
    assert_problem(refused, StatusCode::FORBIDDEN, "forbidden").await;
    let opened = app
        .request(Method::PUT, "/api/v1/community/settings")
        .json(&open)
        .send()
        .await
        .unwrap();
    accepted(&app, opened, StatusCode::OK).await;

    let categories: Value = anonymous(&app, "/api/v1/public/acme/categories")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(categories["items"][0]["name"], "Public");
    assert_eq!(categories["items"][0]["posts"], 1);
    let posts: Value = anonymous(
        &app,
        &format!("/api/v1/public/acme/categories/{category}/posts"),
    )
    .await
    .json()
    .await
    .unwrap();
    let titles: Vec<&str> = posts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Kept"]);
    assert_problem(
        anonymous(&app, &format!("/api/v1/public/acme/posts/{gone}")).await,
        StatusCode::NOT_FOUND,
        "post_not_found",
    )
    .await;
    let post: Value = anonymous(&app, &format!("/api/v1/public/acme/posts/{kept}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(post["title"], "Kept");
    let threads = anonymous(&app, &format!("/api/v1/public/acme/posts/{kept}/comments")).await;
    let threads: Value = threads.json().await.unwrap();
    let tombstone = &threads["items"][0]["comment"];
    assert_eq!(tombstone["hidden"], true);
    assert!(
        tombstone["body"].is_null() && tombstone["author"].is_null(),
        "{threads}"
    );
    // No e-mail address anywhere in what anyone can read.
    for page in [&categories, &posts, &post, &threads] {
        assert!(!page.to_string().contains('@'), "{page}");
    }
    // Another tenant's pages stay closed.
    assert_problem(
        anonymous(&app, "/api/v1/public/globex/categories").await,
        StatusCode::NOT_FOUND,
        "public_pages_not_found",
    )
    .await;
}

#[tokio::test]
async fn a_flood_from_one_address_is_answered_429() {
    let app = spawn_app_with(|settings| {
        settings.rate_limit.enabled = true;
        settings.rate_limit.anonymous_per_minute = 5;
    })
    .await;
    let open = app
        .request(Method::PUT, "/api/v1/community/settings")
        .json(&json!({ "public_pages": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    let opened: Value = open.json().await.unwrap();
    let shown = app
        .request(Method::GET, "/api/v1/community/settings")
        .header(
            "x-consistency-token",
            opened["consistency_token"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), StatusCode::OK);
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(
            anonymous(&app, "/api/v1/public/acme/categories")
                .await
                .status(),
        );
    }
    // The open pages answer until the address's budget is spent; then 429. A credential the
    // route never checks buys no extra budget.
    assert_eq!(statuses[0], StatusCode::OK, "{statuses:?}");
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let disguised = app
        .anonymous(Method::GET, "/api/v1/public/acme/categories")
        .header("x-api-key", "acme.made-up")
        .send()
        .await
        .unwrap();
    assert_eq!(disguised.status(), StatusCode::TOO_MANY_REQUESTS);
    let refused = anonymous(&app, "/api/v1/public/acme/categories").await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_problem(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}
