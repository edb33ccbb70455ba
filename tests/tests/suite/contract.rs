//! The API contract, checked by tools nobody here wrote: Spectral lints the served OpenAPI
//! document (core rules and the OWASP API Security ruleset), then Schemathesis 4 runs every
//! phase (examples, coverage, fuzzing, stateful) with every check against a real backend, with
//! one credential per security scheme (admin key, worker key, user token, operator key). See
//! `tests/contract/run`; a fixed seed makes a run repeatable.

use std::process::Command;

use crate::helpers::{spawn_app_with, workspace_root};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_document_is_exact_schemathesis_and_spectral_pass() {
    let app = spawn_app_with(|settings| {
        // Limits stay on (their headers are part of the contract), far above what one fuzzer
        // sends from one address.
        settings.rate_limit.enabled = true;
        settings.rate_limit.per_ip_per_minute = 1_000_000;
        settings.rate_limit.anonymous_per_minute = 1_000_000;
        settings.rate_limit.refused_credentials_per_minute = 1_000_000;
        settings.rate_limit.commands_per_minute = 1_000_000;
        settings.rate_limit.queries_per_minute = 1_000_000;
    })
    .await;
    let (_, worker_key) = app.api_key_with_roles(&["worker"]).await;
    let user = app.user_with_roles("contract@example.org", &["user"]).await;
    let user_token = api::http::auth::mint_hs256_token(
        &app.settings.auth,
        &app.tenant,
        user.parse().unwrap(),
        chrono::Duration::hours(1),
    )
    .unwrap();
    let operator_key = app.operator_key().await;
    let root = workspace_root();
    let out_dir = root.join("target/contract");
    let run = root.join("tests/contract/run");
    let (address, admin_key) = (app.address.clone(), app.admin_key.clone());
    let output = tokio::task::spawn_blocking(move || {
        Command::new(run)
            .env("BASE_URL", address)
            .env("ADMIN_KEY", admin_key)
            .env("WORKER_KEY", worker_key)
            .env("USER_TOKEN", user_token)
            .env("OPERATOR_KEY", operator_key)
            .env("OUT_DIR", &out_dir)
            .env("MAX_EXAMPLES", "10")
            .env("TIMEOUT", "600")
            .output()
            .expect("tests/contract/run starts")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "the contract test failed (details in target/contract/):\n{stdout}\n{stderr}"
    );
}
