//! What an import never does: delete bars a provider stopped reporting, or run for a suspended
//! tenant (its imports wait, and run once it is reactivated).

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::Value;
use tests::provider::StandInProvider;

use crate::helpers::{wait_until, TestApp};
use crate::price_imports::{app_with, asset, bars, daily, day, import, settled, KEY};
use crate::tenants::{reactivate_acme, suspend_acme};

/// Waits until the bars read model shows `count` daily bars of `asset`; returns them.
async fn bars_shown(app: &TestApp, asset: &str, count: usize) -> Vec<Value> {
    wait_until(
        &format!("{count} bars are shown"),
        std::time::Duration::from_secs(30),
        || async { bars(app, asset).await.len() == count },
    )
    .await;
    bars(app, asset).await
}

/// A provider that answers a wider range with fewer of the bars it reported before: the bars
/// it no longer reports stay as they were (no correction, nothing deleted), the new ones are
/// added.
#[tokio::test]
async fn a_provider_that_reports_fewer_bars_than_before_deletes_none() {
    let provider = StandInProvider::start(KEY).await;
    provider.put("FEWR", "1day", daily(0..10, 0));
    let app = app_with(&provider, |_| {}).await;
    let asset = asset(&app, "FEWR").await;
    let first = import(&app, &asset, 0, 10).await;
    settled(&app, &first, "completed").await;
    let before = bars_shown(&app, &asset, 10).await;

    // The provider lost days 5 to 9 and has two new ones.
    provider.remove("FEWR", "1day", day(5)..day(10));
    provider.put("FEWR", "1day", daily(10..12, 0));
    let second = import(&app, &asset, 0, 12).await;
    let done = settled(&app, &second, "completed").await;
    assert_eq!(done["fetched"], 7, "it reported days 0-4, 10 and 11");
    let after = bars_shown(&app, &asset, 12).await;
    assert_eq!(after[..10], before[..], "the ten bars are as they were");
    for bar in &after {
        assert_eq!(bar["corrections"], 0, "{bar}");
    }
}

/// The import of a suspended tenant waits: while it is suspended no attempt starts, so the
/// provider is not asked, however overdue the retry; once reactivated it completes.
#[tokio::test]
async fn a_suspended_tenants_import_waits_until_it_is_reactivated() {
    let provider = StandInProvider::start(KEY).await;
    provider.put("SUSP", "1day", daily(0..5, 0));
    // Down at first: the import waits for its retry.
    provider.fail_next(u32::MAX);
    // Retried every 100 to 400 ms, never abandoned, never held back by the breaker.
    let app = app_with(&provider, |prices| {
        prices.breaker_failures = 1_000;
        prices.max_attempts = 1_000;
    })
    .await;
    let operator = app.operator_key().await;
    let asset = asset(&app, "SUSP").await;
    let location = import(&app, &asset, 0, 5).await;
    settled(&app, &location, "waiting").await;

    let suspended = suspend_acme(&app, &operator, "invoice overdue").await;
    assert_eq!(suspended.status(), StatusCode::OK);
    let status = |query: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(query)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    wait_until(
        "the tenants read model shows the suspension",
        std::time::Duration::from_secs(30),
        || async {
            status("SELECT status FROM read_models.tenants WHERE tenant_id = 'acme'").await
                == "suspended"
        },
    )
    .await;
    // From here no attempt starts. One started just before fails (the provider still does)
    // and waits for a retry: once the import waits for a retry a second overdue, at least a
    // second after the suspension was seen, nothing is in flight.
    let seen = Utc::now();
    let second = chrono::Duration::seconds(1);
    wait_until(
        "the import waits for a retry a second overdue",
        std::time::Duration::from_secs(30),
        || async {
            let (status, retry): (String, Option<chrono::DateTime<Utc>>) = sqlx::query_as(
                "SELECT status, next_attempt_at FROM read_models.price_imports
                  WHERE tenant_id = 'acme'",
            )
            .fetch_one(&app.pool)
            .await
            .unwrap();
            let now = Utc::now();
            status == "waiting" && now > seen + second && retry.is_some_and(|at| now > at + second)
        },
    )
    .await;
    let asked = provider.requests();
    provider.fail_next(0);
    // The provider answers again; the importer looks every 50 ms: for a second, nothing.
    let mark = Utc::now();
    wait_until(
        "a second passes",
        std::time::Duration::from_secs(30),
        || async { Utc::now() > mark + second },
    )
    .await;
    assert_eq!(
        provider.requests(),
        asked,
        "nothing is asked while suspended"
    );
    assert_eq!(
        status("SELECT status FROM read_models.price_imports WHERE tenant_id = 'acme'").await,
        "waiting"
    );

    let reactivated = reactivate_acme(&app, &operator).await;
    assert_eq!(reactivated.status(), StatusCode::OK);
    settled(&app, &location, "completed").await;
    bars_shown(&app, &asset, 5).await;
}
