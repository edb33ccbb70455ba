//! Waking the relay when commands and the relay run in different processes.
//!
//! Every append pokes an in-process [`Notify`] after its commit, so a relay in the same process
//! publishes within milliseconds instead of at its next poll. When the command side and the
//! workers run apart, that poke reaches nobody: [`forward`] turns the pokes of a command process
//! into a Postgres `NOTIFY` on [`CHANNEL`], and [`listen`] in the workers' process turns each
//! notification back into a poke of its relay. A `Notify` keeps at most one pending permit, so a
//! burst of commits becomes one `NOTIFY`, sent outside every append transaction (a `NOTIFY`
//! inside one would serialise their commits). Losing a notification costs latency only: the
//! relay still polls.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::relay::sleep_or_cancel;

/// The notification channel.
pub const CHANNEL: &str = "relay_wakeup";

/// Sends a `NOTIFY` for every poke of `pokes` (coalesced) until `shutdown`.
pub async fn forward(pool: PgPool, pokes: Arc<Notify>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = pokes.notified() => {}
            () = shutdown.cancelled() => return,
        }
        if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&pool)
            .await
        {
            warn!(error = %error, "waking the relay through Postgres failed; it will poll");
        }
    }
}

/// Pokes `relay` for every notification on [`CHANNEL`] until `shutdown`, reconnecting after
/// failures.
pub async fn listen(pool: PgPool, relay: Arc<Notify>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                warn!(error = %error, "listening for relay wake-ups failed; retrying");
                sleep_or_cancel(Duration::from_secs(1), &shutdown).await;
                continue;
            }
        };
        if let Err(error) = listener.listen(CHANNEL).await {
            warn!(error = %error, "listening for relay wake-ups failed; retrying");
            sleep_or_cancel(Duration::from_secs(1), &shutdown).await;
            continue;
        }
        loop {
            tokio::select! {
                received = listener.recv() => match received {
                    Ok(_) => relay.notify_one(),
                    Err(error) => {
                        warn!(error = %error, "the relay wake-up listener lost its connection");
                        break;
                    }
                },
                () = shutdown.cancelled() => return,
            }
        }
    }
}
