//! End-to-end and fault tests against real Postgres and NATS.
//!
//! One test binary; every test gets a fresh database cloned from a migrated template and its own
//! JetStream stream and subject prefix, so tests run in parallel. The services themselves are
//! started once per run by `just test` (or given as `DATABASE_URL`/`NATS_URL`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

mod audit;
mod audit_log;
mod batches;
mod cluster;
mod community;
mod community_announcements;
mod community_live;
mod community_load;
mod community_moderation;
mod community_property;
mod community_public;
mod community_threads;
mod contract;
mod delivery;
mod documents;
mod faults;
mod feed;
mod hardening;
mod helpers;
mod jobs;
mod live;
mod nats;
mod outage;
mod pg;
mod portfolios;
mod price_imports;
mod price_imports_kept;
mod price_live;
mod price_routes;
mod prices;
mod projections;
mod read_model;
mod replica;
mod retention;
mod roles;
mod routes_added;
mod scheduler;
mod security;
mod snapshots;
mod tamper;
mod tenant_settings;
mod tenants;
mod users_api;
mod walk;
mod workers;
