//! Whether a tenant's community is readable by anyone, signed in or not. Off until an admin
//! turns it on.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::CommunityError;
use crate::aggregate::Decider;
use crate::identity::TenantId;

/// The public-pages switch of one tenant: one stream per tenant ([`PublicPages::stream_id`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PublicPages {
    /// Whether anonymous readers see the tenant's categories, posts and comments.
    pub enabled: bool,
}

/// The namespace of [`PublicPages::stream_id`]'s name-based ids. Never change it.
const PUBLIC_PAGES_NAMESPACE: Uuid = Uuid::from_u128(0x4e91_c2a7_5d08_4b3f_86e2_9fa1_0c5d_7b13);

impl PublicPages {
    /// The stream of `tenant`'s switch.
    pub fn stream_id(tenant: &TenantId) -> Uuid {
        Uuid::new_v5(&PUBLIC_PAGES_NAMESPACE, tenant.as_str().as_bytes())
    }
}

/// Turn the public pages on or off; asking for the state they are in changes nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct SetPublicPages {
    /// On (`true`) or off.
    pub enabled: bool,
    /// When.
    pub at: DateTime<Utc>,
}

/// What happened to the switch. Stored forever: add variants, never change existing ones
/// without an upcaster and a new `event_version`. The serde tag is the `event_type()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PublicPagesEvent {
    /// Anyone may now read the tenant's community.
    PublicPagesEnabled {
        /// When.
        at: DateTime<Utc>,
    },
    /// Only the tenant's members may read it again.
    PublicPagesDisabled {
        /// When.
        at: DateTime<Utc>,
    },
}

impl PublicPagesEvent {
    /// When the change was accepted.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::PublicPagesEnabled { at } | Self::PublicPagesDisabled { at } => *at,
        }
    }
}

impl DomainEvent for PublicPagesEvent {
    /// The stored event type. These strings are part of the stored data: never change one.
    fn event_type(&self) -> String {
        match self {
            Self::PublicPagesEnabled { .. } => "PublicPagesEnabled",
            Self::PublicPagesDisabled { .. } => "PublicPagesDisabled",
        }
        .to_owned()
    }

    /// Changes only together with an upcaster for the previous version.
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl Decider for PublicPages {
    const TYPE: &'static str = "PublicPages";
    const SNAPSHOT_SCHEMA: u32 = 1;
    type Command = SetPublicPages;
    type Event = PublicPagesEvent;
    type Error = CommunityError;

    fn decide(&self, command: SetPublicPages) -> Result<Vec<PublicPagesEvent>, CommunityError> {
        Ok(match (self.enabled, command.enabled) {
            (false, true) => vec![PublicPagesEvent::PublicPagesEnabled { at: command.at }],
            (true, false) => vec![PublicPagesEvent::PublicPagesDisabled { at: command.at }],
            _ => Vec::new(),
        })
    }

    fn evolve(&mut self, event: &PublicPagesEvent) {
        self.enabled = matches!(event, PublicPagesEvent::PublicPagesEnabled { .. });
    }
}
