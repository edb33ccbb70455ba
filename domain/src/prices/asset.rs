//! The `Asset` aggregate: listed with its symbol, exchange, currency and kind; renamed (a new
//! symbol or name, as after a ticker change); delisted. Its price history outlives a delisting.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AssetKind, AssetName, Currency, Exchange, Symbol};
use crate::aggregate::Decider;
use crate::error::{DomainError, ErrorKind};

/// An asset's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum Asset {
    /// Not listed: only `List` is accepted.
    #[default]
    Unlisted,
    /// A listed (or delisted) asset.
    Listed {
        /// Its ticker symbol.
        symbol: Symbol,
        /// Where it trades.
        exchange: Exchange,
        /// The currency of its prices.
        currency: Currency,
        /// What kind of asset.
        kind: AssetKind,
        /// How people call it.
        name: AssetName,
        /// Whether it was delisted (its history stays).
        delisted: bool,
    },
}

/// The namespace of [`Asset::stream_id`]'s name-based ids. Never change it.
const ASSET_NAMESPACE: Uuid = Uuid::from_u128(0x8a3e_61d2_0f4b_4c17_9b52_d6e0_3a7c_14f9);

impl Asset {
    /// The stream of the asset listed as `symbol` on `exchange`: the same listing is always
    /// the same stream, so listing it twice is refused rather than duplicated. A renamed asset
    /// keeps the id of its first listing.
    pub fn stream_id(exchange: &Exchange, symbol: &Symbol) -> Uuid {
        let name = format!(
            "{exchange}:{symbol}",
            exchange = exchange.as_str(),
            symbol = symbol.as_str()
        );
        Uuid::new_v5(&ASSET_NAMESPACE, name.as_bytes())
    }
}

/// What can be asked of an asset.
#[derive(Debug, Clone, PartialEq)]
pub enum AssetCommand {
    /// List a new asset.
    List {
        /// Ticker symbol.
        symbol: Symbol,
        /// Exchange.
        exchange: Exchange,
        /// Currency of its prices.
        currency: Currency,
        /// Kind.
        kind: AssetKind,
        /// Name.
        name: AssetName,
        /// When.
        at: DateTime<Utc>,
    },
    /// Give the asset a new symbol and/or name.
    Rename {
        /// The new symbol.
        symbol: Symbol,
        /// The new name.
        name: AssetName,
        /// When.
        at: DateTime<Utc>,
    },
    /// Delist the asset; its prices are kept, no new ones are imported.
    Delist {
        /// When.
        at: DateTime<Utc>,
    },
}

impl AssetCommand {
    /// The command's name as recorded in event metadata.
    pub fn name(&self) -> &'static str {
        match self {
            Self::List { .. } => "ListAsset",
            Self::Rename { .. } => "RenameAsset",
            Self::Delist { .. } => "DelistAsset",
        }
    }
}

/// What happened to an asset. Stored forever; the serde tag is the `event_type()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AssetEvent {
    /// An asset was listed.
    AssetListed {
        /// Ticker symbol.
        symbol: Symbol,
        /// Exchange.
        exchange: Exchange,
        /// Currency of its prices.
        currency: Currency,
        /// Kind.
        kind: AssetKind,
        /// Name.
        name: AssetName,
        /// When.
        at: DateTime<Utc>,
    },
    /// An asset got a new symbol or name.
    AssetRenamed {
        /// The new symbol.
        symbol: Symbol,
        /// The new name.
        name: AssetName,
        /// When.
        at: DateTime<Utc>,
    },
    /// An asset was delisted.
    AssetDelisted {
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for AssetEvent {
    fn event_type(&self) -> String {
        match self {
            Self::AssetListed { .. } => "AssetListed",
            Self::AssetRenamed { .. } => "AssetRenamed",
            Self::AssetDelisted { .. } => "AssetDelisted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// Why an asset command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssetError {
    /// Listing an asset that is.
    #[error("the asset is already listed")]
    AlreadyListed,
    /// No such asset.
    #[error("no such asset")]
    NotFound,
    /// Changing a delisted asset.
    #[error("the asset is delisted")]
    Delisted,
    /// Renaming to the symbol and name it has.
    #[error("the symbol and name are unchanged")]
    Unchanged,
}

impl DomainError for AssetError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound => ErrorKind::NotFound,
            Self::AlreadyListed => ErrorKind::Conflict,
            Self::Delisted | Self::Unchanged => ErrorKind::Rejected,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::AlreadyListed => "asset_already_listed",
            Self::NotFound => "asset_not_found",
            Self::Delisted => "asset_delisted",
            Self::Unchanged => "asset_unchanged",
        }
    }
}

impl Decider for Asset {
    const TYPE: &'static str = "Asset";
    const SNAPSHOT_SCHEMA: u32 = 1;
    type Command = AssetCommand;
    type Event = AssetEvent;
    type Error = AssetError;

    fn decide(&self, command: AssetCommand) -> Result<Vec<AssetEvent>, AssetError> {
        let event = match (self, command) {
            (
                Self::Unlisted,
                AssetCommand::List {
                    symbol,
                    exchange,
                    currency,
                    kind,
                    name,
                    at,
                },
            ) => AssetEvent::AssetListed {
                symbol,
                exchange,
                currency,
                kind,
                name,
                at,
            },
            (Self::Listed { .. }, AssetCommand::List { .. }) => {
                return Err(AssetError::AlreadyListed)
            }
            (Self::Unlisted, _) => return Err(AssetError::NotFound),
            (Self::Listed { delisted: true, .. }, _) => return Err(AssetError::Delisted),
            (
                Self::Listed {
                    symbol: current,
                    name: current_name,
                    ..
                },
                AssetCommand::Rename { symbol, name, at },
            ) => {
                if *current == symbol && *current_name == name {
                    return Err(AssetError::Unchanged);
                }
                AssetEvent::AssetRenamed { symbol, name, at }
            }
            (Self::Listed { .. }, AssetCommand::Delist { at }) => AssetEvent::AssetDelisted { at },
        };
        Ok(vec![event])
    }

    fn evolve(&mut self, event: &AssetEvent) {
        match (self, event) {
            (
                this @ Self::Unlisted,
                AssetEvent::AssetListed {
                    symbol,
                    exchange,
                    currency,
                    kind,
                    name,
                    ..
                },
            ) => {
                *this = Self::Listed {
                    symbol: symbol.clone(),
                    exchange: exchange.clone(),
                    currency: currency.clone(),
                    kind: *kind,
                    name: name.clone(),
                    delisted: false,
                };
            }
            (
                Self::Listed { symbol, name, .. },
                AssetEvent::AssetRenamed {
                    symbol: new_symbol,
                    name: new_name,
                    ..
                },
            ) => {
                *symbol = new_symbol.clone();
                *name = new_name.clone();
            }
            (Self::Listed { delisted, .. }, AssetEvent::AssetDelisted { .. }) => *delisted = true,
            // `decide` never produces any other pairing; history is applied as recorded.
            _ => {}
        }
    }
}
