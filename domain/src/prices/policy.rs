//! What may be done with assets and prices, and by whom: admins keep the list of assets and
//! record bars (so do workers, which import them); everyone of the tenant but workers reads.

use crate::identity::Role;
use crate::policy::{context_actions, Rule};

context_actions! {
    /// The prices context's actions.
    pub enum PriceAction in "prices" {
        /// List a new asset.
        ListAsset = "list_asset" => Rule::roles(&[Role::Admin]),
        /// Give an asset a new symbol or name.
        RenameAsset = "rename_asset" => Rule::roles(&[Role::Admin]),
        /// Delist an asset (its history stays).
        DelistAsset = "delist_asset" => Rule::roles(&[Role::Admin]),
        /// Record reported bars of an asset.
        RecordBars = "record_bars" => Rule::roles(&[Role::Admin, Role::Worker]),
        /// Ask for bars of an asset to be imported from the market-data provider.
        RequestImport = "request_import" => Rule::roles(&[Role::Admin]),
        /// Refresh an asset's bars of one interval by imports at a rhythm, or stop it.
        ScheduleRefresh = "schedule_refresh" => Rule::roles(&[Role::Admin]),
        /// Open portfolios and record their trades.
        ManagePortfolio = "manage_portfolio" => Rule::roles(&[Role::Admin, Role::User]),
        /// Read assets, bars, aggregates, latest prices and corrections.
        ReadPrices = "read_prices" => Rule::roles(&[Role::Admin, Role::User, Role::Moderator, Role::Auditor]),
    }
}
