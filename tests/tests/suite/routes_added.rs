//! Adding a route is registering it: the OpenAPI document, the policy and the security walk
//! follow without editing any list. This test registers a route of its own, as a new context
//! would, and checks that the document shows it and the walk exercises it.

use api::http::error::ApiError;
use api::http::extract::{Caller, JsonBody};
use api::routes::{contexts, AppState, Routes};
use axum::extract::State;
use axum::Json;
use domain::policy::{Action, UserAction};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::helpers::{spawn_with_routes, test_settings};
use crate::walk::walk;

/// What the test route echoes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"word": "hello"})))]
struct Echo {
    /// Any word.
    word: String,
}

/// Echo a word back (a route only this test registers).
#[utoipa::path(
    post, path = "/api/v1/test/echo", tag = "test",
    request_body = Echo,
    responses((status = 200, description = "The word", body = Echo)),
    security(("bearer" = []), ("api_key" = []))
)]
async fn echo(
    State(_state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<Echo>,
) -> Result<Json<Echo>, ApiError> {
    caller.may_read(UserAction::ListUsers, None)?;
    Ok(Json(body))
}

#[tokio::test]
async fn a_registered_route_is_documented_and_walked_without_editing_the_walk() {
    let mut registered = contexts();
    registered.push(Routes::new().query(UserAction::ListUsers, routes!(echo)));
    let app = spawn_with_routes(test_settings().await, registered).await;

    let walked = walk(&app).await;
    let echo = walked
        .iter()
        .find(|operation| operation.path == "/api/v1/test/echo")
        .expect("the walk covers the new route");
    assert_eq!(echo.action, Some(Action::from(UserAction::ListUsers)));
    assert_eq!(
        echo.body.as_ref().map(|(_, body)| body["word"].clone()),
        Some("hello".into())
    );
}
