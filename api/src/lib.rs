//! The HTTP face of the backend, its configuration, telemetry and the binary's start-up.
//!
//! Owns the axum routers (commands and queries are separate routers, merged by default so one
//! process can serve both), the mapping of every error to `application/problem+json`, the
//! OpenAPI document, configuration loading and validation, and [`startup::Application`], the
//! seam tests start the whole backend through. It never writes SQL against the event store:
//! writes go through `commands`, reads through `projections`.
//!
//! Map:
//! - [`http`]: what every route shares: authentication, extractors, problem+json errors, the
//!   shapes of answers, and the hardening layers (headers, CORS, timeouts, rate limits).
//! - [`routes`]: one folder per bounded context, registered once with their OpenAPI
//!   documentation, plus health, metrics and the OpenAPI document.
//! - [`bootstrap`]: the first admin API key of a tenant, from the command line.
//! - [`config`]: settings from defaults < optional file < environment, validated.
//! - [`telemetry`]: tracing set-up (JSON off a terminal, text on one).
//! - [`startup`]: builds the application (pools, bus, workers, listener) and runs it.
//! - [`operate`]: the operator's command line for projections (status, parked, retry, verify).
//! - [`tenant_cli`]: the operator's command line for tenants (list, provision, settings,
//!   suspend, reactivate).
//! - [`rebuild`]: rebuilds from the event store (start-up version changes, admin, CLI).

pub mod bootstrap;
pub mod config;
pub mod http;
pub mod operate;
pub mod rebuild;
pub mod routes;
pub mod startup;
pub mod telemetry;
pub mod tenant_cli;
