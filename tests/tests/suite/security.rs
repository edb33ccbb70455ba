//! Identity, authorization and tenancy, idempotency, rate limits and HTTP hardening.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use domain::identity::{Role, Roles, TenantId};
use jsonwebtoken::{EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{
    assert_problem, fixture, spawn_app, spawn_app_with, wait_until, TestApp, JWT_HS256_SECRET,
};

#[derive(serde::Serialize)]
struct Claims<'a> {
    sub: &'a str,
    tenant: &'a str,
    iss: &'a str,
    aud: &'a str,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
}

fn claims<'a>(sub: &'a str, tenant: &'a str) -> Claims<'a> {
    Claims {
        sub,
        tenant,
        iss: "cqrs-backend",
        aud: "cqrs-backend",
        exp: Utc::now().timestamp() + 600,
        nbf: None,
    }
}

fn hs256(claims: &Claims<'_>, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn rs256(claims: &Claims<'_>, private_pem: &str) -> String {
    let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(jsonwebtoken::Algorithm::RS256), claims, &key).unwrap()
}

async fn get_with_bearer(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.anonymous(Method::GET, path)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn tokens_and_keys_that_are_not_valid_are_refused() {
    let app = spawn_app().await;
    let admin = app.user_with_roles("admin@example.org", &["admin"]).await;
    let path = format!("/api/v1/users/{admin}");
    let valid = claims(&admin, "acme");

    // Both algorithms work with the right keys.
    assert_eq!(
        get_with_bearer(&app, &path, &hs256(&valid, JWT_HS256_SECRET.as_bytes()))
            .await
            .status(),
        StatusCode::OK
    );
    let rs_private = fixture("jwt-test-rs256.key.pem");
    assert_eq!(
        get_with_bearer(&app, &path, &rs256(&valid, &rs_private))
            .await
            .status(),
        StatusCode::OK
    );

    let expired = Claims {
        exp: Utc::now().timestamp() - 3600,
        ..claims(&admin, "acme")
    };
    let wrong_issuer = Claims {
        iss: "someone-else",
        ..claims(&admin, "acme")
    };
    let wrong_audience = Claims {
        aud: "someone-else",
        ..claims(&admin, "acme")
    };
    let not_yet_valid = Claims {
        nbf: Some(Utc::now().timestamp() + 3600),
        ..claims(&admin, "acme")
    };
    let unknown_user = Uuid::now_v7().to_string();
    let header_none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
    let payload = {
        let json = serde_json::to_vec(&valid).unwrap();
        base64url(&json)
    };
    let refused = [
        hs256(&expired, JWT_HS256_SECRET.as_bytes()),
        hs256(&not_yet_valid, JWT_HS256_SECRET.as_bytes()),
        hs256(&wrong_issuer, JWT_HS256_SECRET.as_bytes()),
        hs256(&wrong_audience, JWT_HS256_SECRET.as_bytes()),
        hs256(&valid, b"a-different-secret-that-is-long-enough!!"),
        rs256(&valid, &fixture("jwt-test-other.key.pem")),
        // HS/RS confusion: the RS256 public key used as an HMAC secret.
        hs256(&valid, fixture("jwt-test-rs256.pub.pem").as_bytes()),
        format!("{header_none}.{payload}."),
        hs256(&claims(&unknown_user, "acme"), JWT_HS256_SECRET.as_bytes()),
        hs256(&claims(&admin, "globex"), JWT_HS256_SECRET.as_bytes()),
        "not-a-jwt".to_owned(),
    ];
    for token in refused {
        let response = get_with_bearer(&app, &path, &token).await;
        assert!(response.headers().contains_key("www-authenticate"));
        assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    for (name, value) in [
        ("authorization", "Basic YWRtaW46YWRtaW4="),
        ("authorization", "ApiKey acme.not-a-uuid.secret"),
        ("x-api-key", "garbage"),
        ("x-api-key", &format!("acme.{}.secret", Uuid::now_v7())),
    ] {
        let response = app
            .anonymous(Method::GET, &path)
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }

    // A wrong secret for a real key, and a revoked key.
    let (key_id, key) = app.api_key_with_roles(&["auditor"]).await;
    let with_key = |key: String| {
        app.anonymous(Method::GET, &path)
            .header("x-api-key", key)
            .send()
    };
    assert_eq!(
        with_key(key.clone()).await.unwrap().status(),
        StatusCode::OK
    );
    let forged = format!("{}{}", &key[..key.len() - 4], "0000");
    assert_problem(
        with_key(forged).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let revoked = app
        .post(&format!("/api/v1/api-keys/{key_id}/revoke"))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_problem(
        with_key(key).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    // A deactivated user's valid token is refused at once.
    let token = hs256(&valid, JWT_HS256_SECRET.as_bytes());
    assert_eq!(
        app.post(&format!("/api/v1/users/{admin}/deactivate"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_problem(
        get_with_bearer(&app, &path, &token).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    let app = spawn_app().await;
    let expires_at = Utc::now() + chrono::Duration::seconds(2);
    let response = app
        .post_json(
            "/api/v1/api-keys",
            &json!({ "name": "short", "roles": ["auditor"], "expires_at": expires_at }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let key = response.json::<Value>().await.unwrap()["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let list = || {
        app.anonymous(Method::GET, "/api/v1/users")
            .header("x-api-key", key.as_str())
            .send()
    };
    assert_eq!(list().await.unwrap().status(), StatusCode::OK);
    wait_until("the key expires", Duration::from_secs(10), || async {
        list().await.unwrap().status() == StatusCode::UNAUTHORIZED
    })
    .await;
}

#[tokio::test]
async fn users_act_on_themselves_and_get_403_beyond_their_role() {
    let app = spawn_app().await;
    let me = app.user_with_roles("me@example.org", &["user"]).await;
    let other = app.user_with_roles("other@example.org", &["user"]).await;
    let token = hs256(&claims(&me, "acme"), JWT_HS256_SECRET.as_bytes());
    let as_me = |method: Method, path: String| app.anonymous(method, &path).bearer_auth(&token);

    let response = as_me(Method::GET, format!("/api/v1/users/{me}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // `backend mint-token` signs the same way.
    let minted = api::http::auth::mint_hs256_token(
        &app.settings.auth,
        "acme",
        Uuid::parse_str(&me).unwrap(),
        chrono::Duration::minutes(5),
    )
    .unwrap();
    let response = get_with_bearer(&app, &format!("/api/v1/users/{me}"), &minted).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = as_me(Method::POST, format!("/api/v1/users/{me}/display-name"))
        .json(&json!({ "display_name": "Me, renamed" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let metadata: Value = sqlx::query_scalar(
        "SELECT metadata::jsonb FROM events WHERE event_type = 'DisplayNameChanged'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        metadata["actor"],
        format!("user:{me}"),
        "events name the acting principal"
    );
    assert_eq!(metadata["tenant_id"], "acme");

    for (method, path, body) in [
        (Method::GET, format!("/api/v1/users/{other}"), None),
        (Method::GET, "/api/v1/users".to_owned(), None),
        (
            Method::POST,
            format!("/api/v1/users/{other}/display-name"),
            Some(json!({ "display_name": "Hijacked" })),
        ),
        (
            Method::POST,
            format!("/api/v1/users/{me}/roles"),
            Some(json!({ "roles": ["admin"] })),
        ),
    ] {
        let mut request = as_me(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        assert_problem(
            request.send().await.unwrap(),
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_appends_nothing() {
    let app = spawn_app().await;
    let register = |key: &'static str, email: &'static str| {
        app.post("/api/v1/users")
            .header("idempotency-key", key)
            .json(&json!({ "email": email, "display_name": "Idem" }))
            .send()
    };
    let first = register("key-1", "idem@example.org").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();

    let retry = register("key-1", "idem@example.org").await.unwrap();
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry, first, "the retry returns the original result");
    assert_eq!(app.user_events().await, 1);

    let different = register("key-1", "someone-else@example.org").await.unwrap();
    assert_problem(
        different,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(app.user_events().await, 1);

    let malformed = app
        .post("/api/v1/users")
        .header("idempotency-key", "")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_problem(
        malformed,
        StatusCode::BAD_REQUEST,
        "invalid_idempotency_key",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_requests_with_one_key_append_once() {
    let app = spawn_app().await;
    let requests = (0..20).map(|_| {
        app.post("/api/v1/users")
            .header("idempotency-key", "burst-1")
            .json(&json!({ "email": "burst@example.org", "display_name": "Burst" }))
            .send()
    });
    let responses = futures::future::join_all(requests).await;
    let mut ids = BTreeSet::new();
    for response in responses {
        let response = response.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{:?}",
            response.text().await
        );
        let body: Value = response.json().await.unwrap();
        ids.insert(body["aggregate_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "every response names the one user created");
    assert_eq!(app.user_events().await, 1);
}

#[tokio::test]
async fn a_crash_between_append_and_response_still_deduplicates_the_retry() {
    use api::routes::users::RegisterUser;
    use domain::users::{DisplayName, Email, UserCommand};

    let app = spawn_app().await;
    let body = RegisterUser {
        email: "crash@example.org".into(),
        display_name: "Crash".into(),
        roles: None,
    };
    let admin_key_id = sqlx::query_scalar::<_, String>(
        "SELECT split_part(aggregate_id, ':', 2) FROM events WHERE aggregate_type = 'ApiKey'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    // The append happens exactly as the API does it; then the process "dies" before answering.
    let context = commands::CommandContext {
        request_id: "lost".into(),
        correlation_id: "lost".into(),
        causation_id: "lost".into(),
        actor: format!("key:{admin_key_id}"),
        tenant: TenantId::parse("acme").unwrap(),
        idempotency: Some(commands::IdempotencyClaim {
            key: "crash-1".into(),
            request_hash: api::http::extract::request_fingerprint(
                "POST",
                "/api/v1/users",
                "",
                &body,
            ),
        }),
    };
    let users = commands::users::UserCommands::new(commands::bus::CommandBus::new(
        app.pool.clone(),
        Default::default(),
    ));
    let command = UserCommand::Register {
        email: Email::parse(&body.email).unwrap(),
        display_name: DisplayName::parse(&body.display_name).unwrap(),
        roles: Roles::from([Role::User]),
        at: Utc::now(),
    };
    let lost = users
        .execute(&context, Uuid::now_v7(), None, command, Utc::now())
        .await
        .unwrap();

    let retry = app
        .post("/api/v1/users")
        .header("idempotency-key", "crash-1")
        .json(&json!({ "email": "crash@example.org", "display_name": "Crash" }))
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["aggregate_id"], lost.stream.id.to_string());
    assert_eq!(app.user_events().await, 1);
}

#[tokio::test]
async fn idempotency_keys_expire() {
    let app = spawn_app_with(|settings| settings.auth.idempotency_ttl_secs = 3600).await;
    let register = |email: &'static str| {
        app.post("/api/v1/users")
            .header("idempotency-key", "short-lived")
            .json(&json!({ "email": email, "display_name": "Short" }))
            .send()
    };
    assert_eq!(
        register("first@example.org").await.unwrap().status(),
        StatusCode::CREATED
    );
    // Within the time to live, the key answers for the first request.
    let replayed = register("first@example.org").await.unwrap();
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    // The key's record ages past it (still in the table: nothing has forgotten it yet), and the
    // very next request with the key is a new one.
    sqlx::query("UPDATE idempotency_keys SET created_at = created_at - interval '2 hours'")
        .execute(&app.pool)
        .await
        .unwrap();
    let fresh = register("second@example.org").await.unwrap();
    assert_eq!(fresh.status(), StatusCode::CREATED);
    assert!(!fresh.headers().contains_key("idempotent-replayed"));
    assert_eq!(app.user_events().await, 2);
}

#[tokio::test]
async fn a_burst_beyond_the_limit_gets_429_and_later_passes() {
    let app = spawn_app_with(|settings| {
        settings.rate_limit.enabled = true;
        settings.rate_limit.queries_per_minute = 60;
    })
    .await;
    let mut limited = None;
    // Generous: on a slow machine the bucket refills a little during the burst.
    for _ in 0..300 {
        let response = app.get("/api/v1/users").await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
    }
    let limited = limited.expect("the burst is limited");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_problem(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    wait_until("the bucket refills", Duration::from_secs(10), || async {
        app.get("/api/v1/users").await.status() == StatusCode::OK
    })
    .await;
}

#[tokio::test]
async fn every_response_carries_the_hardening_headers_and_cors_follows_the_allow_list() {
    let app = spawn_app_with(|settings| {
        settings.http.cors_allowed_origins = vec!["https://dashboard.example.org".to_owned()];
        settings.http.hsts = true;
    })
    .await;
    let responses = [
        app.anonymous(Method::GET, "/health/live")
            .send()
            .await
            .unwrap(),
        app.anonymous(Method::GET, "/api/v1/users")
            .send()
            .await
            .unwrap(),
        app.get("/api/v1/users").await,
        app.get("/api/v1/openapi.json").await,
        app.anonymous(Method::GET, "/docs/").send().await.unwrap(),
        app.register_user("hardened@example.org", "Hard").await,
        app.get("/no/such/route").await,
    ];
    for response in responses {
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(headers["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age="));
        assert!(headers.get("server").is_none(), "no server banner");
    }

    let preflight = |origin: &'static str| {
        app.anonymous(Method::OPTIONS, "/api/v1/users")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,idempotency-key",
            )
            .send()
    };
    let allowed = preflight("https://dashboard.example.org").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://dashboard.example.org"
    );
    assert!(allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("idempotency-key"));
    let refused = preflight("https://evil.example.com").await.unwrap();
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[tokio::test]
async fn oversized_bodies_and_slow_requests_are_cut_off() {
    let app = spawn_app_with(|settings| {
        settings.http.body_limit_bytes = 1024;
        // Generous enough for a registration on a loaded machine, far below the consistency wait.
        settings.http.request_timeout_ms = 2_000;
        settings.projections.enabled = false;
    })
    .await;
    let big = json!({ "email": "big@example.org", "display_name": "x".repeat(4096) });
    let response = app.post("/api/v1/users").json(&big).send().await.unwrap();
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    // A query waiting for a token the (stopped) projection never reaches outlives the timeout.
    let (id, token) = app.registered_user("slow@example.org", "Slow").await;
    let response = app.get_user_with_token(&id, &token).await;
    assert_problem(response, StatusCode::SERVICE_UNAVAILABLE, "timeout").await;
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
