//! HTTP infrastructure every route shares: who is calling ([`auth`]), how input is taken apart
//! into clear problems ([`extract`]), how every error becomes `application/problem+json`
//! ([`error`]), the shapes of successful answers ([`respond`]), and the hardening layers
//! ([`security`]).

pub mod auth;
pub mod error;
pub mod extract;
pub mod respond;
pub mod security;
