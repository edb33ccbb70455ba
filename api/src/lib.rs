//! The HTTP face of the backend, its configuration, telemetry and the binary's start-up.
//!
//! Owns the axum routers (commands and queries are separate routers, merged by default so one
//! process can serve both), the mapping of every error to `application/problem+json`, the
//! OpenAPI document, configuration loading and validation, and [`startup::Application`], the
//! seam tests start the whole backend through. It never writes SQL against the event store:
//! writes go through `commands`, reads through `projections`.
//!
//! Map:
//! - [`auth`]: who is calling (JWT or API key), checked against current state.
//! - [`bootstrap`]: the first admin API key of a tenant, from the command line.
//! - [`security`]: security headers, CORS, timeouts, rate limits.
//! - [`documents`]: document bytes in the object store (streamed, checksummed).
//! - [`config`]: settings from defaults < optional file < environment, validated.
//! - [`telemetry`]: tracing set-up (JSON off a terminal, text on one).
//! - [`startup`]: builds the application (pools, bus, workers, listener) and runs it.
//! - [`error`]: `ApiError` and problem+json.
//! - [`extract`]: extractors that turn bad input into clear problems.
//! - [`operate`]: the operator's command line for projections (status, parked, retry, verify).
//! - [`rebuild`]: rebuilds from the event store (start-up version changes, admin, CLI).
//! - [`routes`]: command, query, health and OpenAPI routes.

pub mod auth;
pub mod bootstrap;
pub mod config;
pub mod documents;
pub mod error;
pub mod extract;
pub mod operate;
pub mod rebuild;
pub mod routes;
pub mod security;
pub mod startup;
pub mod telemetry;
