//! Work on delivered messages that may outlast the consumer's ack wait.
//!
//! The projection consumers use a short ack wait ([`super::runner::ACK_WAIT`]) so that messages
//! handed to a process that died come back within seconds. A batch that takes longer than that
//! (a slow disk, a large catch-up) must not be redelivered meanwhile: while it is being worked
//! on, every message in it is marked as in progress (`+WPI`) at half the ack wait, which resets
//! JetStream's timer for it. A process that dies stops sending them, so its messages still come
//! back one ack wait after its death.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::{AckKind, Message};
use tracing::debug;

/// Runs `work` while marking `messages` as in progress when it starts (they may have waited for
/// it) and then every `every` (half the ack wait).
pub async fn while_in_progress<T>(
    messages: &[Message],
    every: Duration,
    work: impl Future<Output = T>,
) -> T {
    let mut work = std::pin::pin!(work);
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            output = &mut work => return output,
            _ = ticks.tick() => {
                for message in messages {
                    // A lost mark costs a redelivery at worst, which the guard absorbs.
                    if let Err(error) = message.ack_with(AckKind::Progress).await {
                        debug!(error = %error, "marking a message in progress failed");
                    }
                }
            }
        }
    }
}
