//! Auditors at work: paging the history with each filter, one stream, an aggregate as of a
//! version and as of a time (equal to what the API showed then), a correlation trace across a
//! job and its document, an NDJSON export, and another tenant's auditor seeing nothing.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{assert_problem, spawn_app_with, TestApp};

/// `GET path` with `key`, answering the JSON (asserting 200).
async fn read(app: &TestApp, key: &str, path: &str) -> Value {
    let response = get(app, key, path).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.json().await.unwrap()
}

async fn get(app: &TestApp, key: &str, path: &str) -> reqwest::Response {
    app.anonymous(Method::GET, path)
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
}

/// Every page of `path` (which has no query yet or ends with `&`), following `next_cursor`.
async fn all_pages(app: &TestApp, key: &str, path: &str, limit: u32) -> Vec<Value> {
    let mut items = Vec::new();
    let mut after = String::new();
    loop {
        let page = read(app, key, &format!("{path}limit={limit}{after}")).await;
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => after = format!("&after={cursor}"),
            None => return items,
        }
    }
}

fn ids(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event["event_id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn an_auditor_pages_filters_reads_streams_and_sees_state_as_of_a_version_and_a_time() {
    let app = spawn_app_with(|_| {}).await;
    let (_, auditor) = app.api_key_with_roles(&["auditor"]).await;
    let (ada, _) = app.registered_user("ada@example.org", "Ada").await;
    let (alan, _) = app.registered_user("alan@example.org", "Alan").await;
    let renamed = app.rename_user(&ada, "Ada L.").await;
    // What the API showed at version 2, and the database's clock just after.
    let shown = app.user_after(renamed).await;
    assert_eq!(shown["version"], 2);
    let moment: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        app.rename_user(&ada, "Ada Lovelace").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.post(&format!("/api/v1/users/{ada}/deactivate"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // State as of version 2 and as of the moment: what the API showed then.
    let state_path = format!("/api/v1/audit/streams/User/{ada}/state");
    for query in [
        "?version=2".to_owned(),
        format!("?at={}", moment.to_rfc3339()),
    ] {
        let as_of = read(
            &app,
            &auditor,
            &format!("{state_path}{}", query.replace('+', "%2B")),
        )
        .await;
        assert_eq!(as_of["version"], 2, "{query}: {as_of}");
        assert_eq!(as_of["head"], 4);
        assert_eq!(
            (
                as_of["first_sequence"].as_i64(),
                as_of["last_sequence"].as_i64()
            ),
            (Some(1), Some(2))
        );
        let state = &as_of["state"]["Registered"];
        assert_eq!(state["display_name"], shown["display_name"], "{as_of}");
        assert_eq!(state["email"], shown["email"]);
        assert_eq!(
            state["status"].as_str().map(str::to_lowercase),
            shown["status"].as_str().map(str::to_owned)
        );
    }
    let latest = read(&app, &auditor, &state_path).await;
    assert_eq!(latest["version"], 4);
    assert_eq!(
        latest["state"]["Registered"]["display_name"],
        "Ada Lovelace"
    );
    let before = read(
        &app,
        &auditor,
        &format!("{state_path}?at=2000-01-01T00:00:00Z"),
    )
    .await;
    assert_eq!(before["version"], 0, "nothing recorded yet then: {before}");
    assert_eq!(before["state"], "Unregistered");
    assert_problem(
        get(&app, &auditor, &format!("{state_path}?version=5")).await,
        StatusCode::NOT_FOUND,
        "version_not_found",
    )
    .await;
    let nobody = uuid::Uuid::now_v7();
    assert_problem(
        get(
            &app,
            &auditor,
            &format!("/api/v1/audit/streams/User/{nobody}/state"),
        )
        .await,
        StatusCode::NOT_FOUND,
        "stream_not_found",
    )
    .await;
    assert_problem(
        get(
            &app,
            &auditor,
            &format!("/api/v1/audit/streams/Spaceship/{ada}/state"),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_aggregate_type",
    )
    .await;

    // One stream, paged.
    let stream_path = format!("/api/v1/audit/streams/User/{ada}/events");
    let first = read(&app, &auditor, &format!("{stream_path}?limit=3")).await;
    let sequences: Vec<i64> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(sequences, [1, 2, 3]);
    assert_eq!(first["next_after_sequence"], 3);
    let rest = read(
        &app,
        &auditor,
        &format!("{stream_path}?limit=3&after_sequence=3"),
    )
    .await;
    assert_eq!(rest["items"][0]["event_type"], "UserDeactivated");
    assert!(rest["next_after_sequence"].is_null());

    // The history lists settled events only: an event committed while an older write
    // transaction (the sealer's batch, say) is still open shows once that one ends.
    let stored = wait_until_settled(&app, &auditor).await;
    // The whole history, paged two at a time, is the one long page, in feed order.
    let everything = all_pages(&app, &auditor, "/api/v1/audit/events?", 100).await;
    let paged = all_pages(&app, &auditor, "/api/v1/audit/events?", 2).await;
    assert_eq!(ids(&paged), ids(&everything));
    assert_eq!(
        everything.len() as i64,
        stored,
        "every settled event of the tenant"
    );
    let positions: Vec<i64> = everything
        .iter()
        .map(|e| e["global_position"].as_i64().unwrap())
        .collect();
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), positions.len(), "no event twice");

    // Each filter, against the same list filtered here.
    let only = |keep: &dyn Fn(&Value) -> bool| -> Vec<String> {
        everything
            .iter()
            .filter(|e| keep(e))
            .map(|e| e["event_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let renamed_event = everything
        .iter()
        .find(|e| e["event_type"] == "DisplayNameChanged")
        .unwrap();
    let correlation = renamed_event["metadata"]["correlation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let actor = renamed_event["metadata"]["actor"]
        .as_str()
        .unwrap()
        .to_owned();
    let cases: Vec<(String, Vec<String>)> = vec![
        (
            "aggregate_type=User".into(),
            only(&|e| e["aggregate_type"] == "User"),
        ),
        (
            "event_type=DisplayNameChanged".into(),
            only(&|e| e["event_type"] == "DisplayNameChanged"),
        ),
        (
            format!("actor={actor}"),
            only(&|e| e["metadata"]["actor"] == actor.as_str()),
        ),
        (
            format!("correlation_id={correlation}"),
            only(&|e| e["metadata"]["correlation_id"] == correlation.as_str()),
        ),
        (
            format!("recorded_from={}", moment.to_rfc3339().replace('+', "%2B")),
            only(&|e| {
                e["recorded_at"]
                    .as_str()
                    .unwrap()
                    .parse::<chrono::DateTime<chrono::Utc>>()
                    .unwrap()
                    >= moment
            }),
        ),
        (
            format!(
                "recorded_before={}",
                moment.to_rfc3339().replace('+', "%2B")
            ),
            only(&|e| {
                e["recorded_at"]
                    .as_str()
                    .unwrap()
                    .parse::<chrono::DateTime<chrono::Utc>>()
                    .unwrap()
                    < moment
            }),
        ),
    ];
    for (query, expected) in cases {
        let found = all_pages(&app, &auditor, &format!("/api/v1/audit/events?{query}&"), 2).await;
        assert!(!expected.is_empty(), "{query} selects something");
        assert_eq!(
            ids(&found),
            expected.iter().map(String::as_str).collect::<Vec<_>>(),
            "{query}"
        );
    }
    assert_eq!(only(&|e| e["event_type"] == "DisplayNameChanged").len(), 2);
    assert_problem(
        get(&app, &auditor, "/api/v1/audit/events?after=12").await,
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
    )
    .await;
    assert_problem(
        get(&app, &auditor, "/api/v1/audit/events?actor=a%20b").await,
        StatusCode::BAD_REQUEST,
        "invalid_filter",
    )
    .await;

    // A user without the auditor role reads nothing; another tenant's auditor sees nothing.
    let (_, worker) = app.api_key_with_roles(&["worker"]).await;
    assert_problem(
        get(&app, &worker, "/api/v1/audit/events").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let globex = app.admin_key_of("globex").await;
    let theirs = read(&app, &globex, "/api/v1/audit/events?limit=100").await;
    assert!(
        theirs["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["metadata"]["tenant_id"] == "globex"),
        "{theirs}"
    );
    for path in [
        format!("/api/v1/audit/streams/User/{alan}/events"),
        format!("/api/v1/audit/streams/User/{alan}/state"),
        format!("/api/v1/audit/correlations/{correlation}"),
    ] {
        assert_eq!(
            get(&app, &globex, &path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_correlation_trace_follows_an_operation_across_a_document_and_a_job() {
    let app = spawn_app_with(|_| {}).await;
    let (_, user) = app.api_key_with_roles(&["user"]).await;
    let upload = app
        .anonymous(Method::POST, "/api/v1/documents")
        .header("x-api-key", &user)
        .header("x-correlation-id", "order-42")
        .header("content-type", "text/plain")
        .body("Hello, world.\n")
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::CREATED);
    let document: Value = upload.json().await.unwrap();
    let submitted = app
        .anonymous(Method::POST, "/api/v1/jobs")
        .header("x-api-key", &user)
        .header("x-correlation-id", "order-42")
        .json(&serde_json::json!({
            "kind": "translation", "source_language": "en", "target_language": "de",
            "document_id": document["document_id"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), StatusCode::CREATED);

    let expected: Vec<(String, String)> = sqlx::query_as(
        "SELECT event_id::text, aggregate_type FROM events
          WHERE metadata ->> 'correlation_id' = 'order-42' ORDER BY transaction_id, global_position",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    // Traces list settled history: wait until an open transaction elsewhere no longer holds it.
    crate::helpers::wait_until(
        "the trace lists every event of the operation",
        std::time::Duration::from_secs(30),
        || async {
            // 404 while none of them is settled yet.
            let response = get(&app, &app.admin_key, "/api/v1/audit/correlations/order-42").await;
            if response.status() != StatusCode::OK {
                return false;
            }
            let trace: Value = response.json().await.unwrap();
            trace["events"].as_array().unwrap().len() == expected.len()
        },
    )
    .await;
    let trace = read(&app, &app.admin_key, "/api/v1/audit/correlations/order-42").await;
    let events = trace["events"].as_array().unwrap();
    let found: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["event_id"].as_str().unwrap().to_owned(),
                e["aggregate_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(found, expected);
    let types: std::collections::BTreeSet<&str> =
        found.iter().map(|(_, kind)| kind.as_str()).collect();
    assert_eq!(types, ["Document", "TranslationJob"].into());
    assert_eq!(trace["truncated"], false);
    let tree = trace["tree"].as_array().unwrap();
    let mut covered: Vec<&str> = tree
        .iter()
        .map(|n| n["event_id"].as_str().unwrap())
        .collect();
    covered.sort_unstable();
    let mut all: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
    all.sort_unstable();
    assert_eq!(covered, all, "the tree covers every event once");
    assert_problem(
        get(&app, &app.admin_key, "/api/v1/audit/correlations/order-43").await,
        StatusCode::NOT_FOUND,
        "correlation_not_found",
    )
    .await;
}

#[tokio::test]
async fn an_export_is_the_history_as_ndjson_up_to_a_settled_end() {
    let app = spawn_app_with(|_| {}).await;
    for n in 0..5 {
        app.registered_user(&format!("export{n}@example.org"), "Export")
            .await;
    }
    let (_, auditor) = app.api_key_with_roles(&["auditor"]).await;
    // Both read settled history only: wait until no open transaction (a sealing batch, say)
    // holds any of it back, so the two see the same end.
    wait_until_settled(&app, &auditor).await;
    let history = all_pages(&app, &auditor, "/api/v1/audit/events?", 100).await;
    let response = get(&app, &auditor, "/api/v1/audit/export").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let until = response.headers()["export-until"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.text().await.unwrap();
    let lines: Vec<Value> = body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(body.ends_with('\n'));
    assert_eq!(lines, history, "the export is the history, line by line");
    assert_eq!(until, history.last().unwrap()["cursor"].as_str().unwrap());

    // A range: after the first event, up to the third.
    let (first, third) = (
        history[0]["cursor"].as_str().unwrap(),
        history[2]["cursor"].as_str().unwrap(),
    );
    let ranged = get(
        &app,
        &auditor,
        &format!("/api/v1/audit/export?after={first}&until={third}&aggregate_type=User"),
    )
    .await
    .text()
    .await
    .unwrap();
    let expected: Vec<&Value> = history[1..3]
        .iter()
        .filter(|e| e["aggregate_type"] == "User")
        .collect();
    let ranged: Vec<Value> = ranged
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(ranged.iter().collect::<Vec<_>>(), expected);
    assert_problem(
        get(&app, &auditor, "/api/v1/audit/export?until=x").await,
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
    )
    .await;
}

/// The serving process's peak resident memory, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

/// An export of 100,000 events is streamed: the peak resident memory of the backend process
/// serving it grows by less than 50 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_of_a_hundred_thousand_events_keeps_the_servers_memory_flat() {
    use futures::StreamExt;
    use tests::process::Launch;

    // No relay anywhere: the bulk history stays in the store.
    let app = spawn_app_with(|settings| {
        settings.roles = api::config::Roles::parse("commands,queries").unwrap();
    })
    .await;
    tests::bulk::users(&app.pool, "acme", 20_000, 5)
        .await
        .unwrap();
    let settled = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM events WHERE tenant_id = 'acme'
                AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    crate::helpers::wait_until(
        "the bulk history settles",
        std::time::Duration::from_secs(60),
        || async { settled().await >= 100_000 },
    )
    .await;
    let settings = &app.settings;
    let launch = Launch::new(
        &Launch::built_binary(),
        settings.database.url.expose(),
        settings.nats.url.expose(),
        &settings.nats.stream,
    )
    .env("APP_NATS__SUBJECT_PREFIX", &settings.nats.subject_prefix)
    .env(
        "APP_NATS__MAX_AGE_SECS",
        &settings.nats.max_age_secs.to_string(),
    )
    .env("APP_ROLES", "queries");
    let covered = |until: String| {
        let pool = app.pool.clone();
        async move {
            let (transaction, position) = until.split_once('.').unwrap();
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM events WHERE tenant_id = 'acme'
                    AND (transaction_id, global_position) <= ($1::text::xid8, $2)",
            )
            .bind(transaction)
            .bind(position.parse::<i64>().unwrap())
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let server = launch.start().await;
    let export = |query: &'static str| {
        let request = app
            .client
            .get(format!("{}/api/v1/audit/export{query}", server.base))
            .header("x-api-key", &app.admin_key);
        async move { request.send().await.unwrap() }
    };
    // Warm up: the first request's allocations are not the export's.
    let small = export("?aggregate_type=ApiKey").await;
    assert_eq!(small.status(), StatusCode::OK);
    small.bytes().await.unwrap();
    let before = peak_rss_kib(server.pid);
    // The bulk has settled: the export's end covers it.
    let response = export("").await;
    assert_eq!(response.status(), StatusCode::OK);
    let until = response.headers()["export-until"]
        .to_str()
        .unwrap()
        .to_owned();
    let expected = covered(until.clone()).await;
    assert!(
        expected >= 100_000,
        "the export ends at {until}, before the bulk"
    );
    let (mut lines, mut bytes) = (0_i64, 0_usize);
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count() as i64;
    }
    let after = peak_rss_kib(server.pid);
    assert_eq!(
        lines, expected,
        "one line per event up to Export-Until {until}"
    );
    let grown_mib = after.saturating_sub(before) / 1024;
    println!(
        "exported {lines} events ({} MiB); peak RSS {before} -> {after} KiB",
        bytes >> 20
    );
    assert!(grown_mib < 50, "peak RSS grew by {grown_mib} MiB");
}

/// Waits until the history shows every stored event of tenant `acme` (none is held back by an
/// open transaction any more); returns how many there are.
async fn wait_until_settled(app: &TestApp, auditor: &str) -> i64 {
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE tenant_id = 'acme'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    crate::helpers::wait_until(
        "every stored event of the tenant is settled",
        std::time::Duration::from_secs(30),
        || async {
            all_pages(app, auditor, "/api/v1/audit/events?", 100)
                .await
                .len() as i64
                == stored
        },
    )
    .await;
    stored
}
