//! HTTP infrastructure every route shares: who is calling ([`auth`]), how input is taken apart
//! into clear problems ([`extract`]), how every error becomes `application/problem+json`
//! ([`error`]), the shapes of successful answers ([`respond`]), shared request types
//! ([`schema`]), the hardening layers
//! ([`security`]), rate limits keyed on what is proven ([`limits`]) and caps on live streams
//! ([`streams`]).

pub mod auth;
pub mod error;
pub mod extract;
pub mod limits;
pub mod quotas;
pub mod respond;
pub mod schema;
pub mod security;
pub mod streams;
