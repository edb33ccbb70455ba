//! The users read model seen from a test: its rows, the same rows replayed from the store, and
//! the proof that the two are equal.

use std::time::Duration;

use domain::aggregate::replay;
use domain::users::{User, UserEvent};
use serde_json::Value;

use crate::helpers::{wait_until, TestApp};

impl TestApp {
    /// Waits for the users projection, then proves it applied every user event exactly once and
    /// equals a from-scratch replay of the store.
    pub async fn assert_users_read_model_is_a_replay(&self) {
        self.wait_for_users_projection().await;
        let total = self.user_events().await;
        assert_eq!(
            self.projection_counts("users").await.0,
            total,
            "every event applied exactly once"
        );
        assert_eq!(self.users_read_model().await, self.users_replayed().await);
    }

    /// Waits until the users projection has applied every stored user event.
    pub async fn wait_for_users_projection(&self) {
        let total = self.user_events().await;
        wait_until(
            &format!("users projection applies all {total} events"),
            Duration::from_secs(60),
            || async { self.projection_counts("users").await.0 >= total },
        )
        .await;
    }

    /// The users read model, as `(id, email, display_name, status, version)` sorted by id.
    pub async fn users_read_model(&self) -> Vec<(String, String, String, String, i64)> {
        sqlx::query_as(
            "SELECT user_id::text, email, display_name, status, version
               FROM read_models.users ORDER BY user_id",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// The same rows, computed from scratch by replaying the event store through the domain.
    pub async fn users_replayed(&self) -> Vec<(String, String, String, String, i64)> {
        let rows: Vec<(String, Value)> = sqlx::query_as(
            "SELECT split_part(aggregate_id, ':', 2), payload::jsonb::json FROM events
              WHERE aggregate_type = 'User' ORDER BY aggregate_id, sequence",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap();
        let mut streams: std::collections::BTreeMap<String, Vec<UserEvent>> = Default::default();
        for (id, payload) in rows {
            streams
                .entry(id)
                .or_default()
                .push(serde_json::from_value(payload).unwrap());
        }
        let mut expected: Vec<_> = streams
            .into_iter()
            .filter_map(|(id, events)| {
                let user = replay::<User>(&events);
                match user.state() {
                    User::Registered {
                        email,
                        display_name,
                        status,
                        ..
                    } => Some((
                        id,
                        email.as_str().to_owned(),
                        display_name.as_str().to_owned(),
                        status.as_str().to_owned(),
                        user.version() as i64,
                    )),
                    User::Unregistered => None,
                }
            })
            .collect();
        expected.sort();
        expected
    }
}
