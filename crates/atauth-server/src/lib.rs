//! The atproto OAuth authorization server core for PDS operators, with pluggable stores, a
//! resource-server verifier, and an axum adapter ([`web`]).
//!
//! Framework-free core: [`AuthServer`] takes plain inputs ([`Params`], [`dpop::DpopInput`]) and returns
//! plain results or one error enum per concern, each mapped to the OAuth wire error in one place.
pub mod account;
pub mod authorize;
pub mod client;
pub mod config;
pub mod dpop;
pub mod error;
pub mod keys;
pub mod par;
pub mod params;
pub mod password;
pub mod plc;
pub mod resource;
pub mod revoke;
pub mod server;
pub mod store;
pub mod token;
pub mod web;

pub use config::{Branding, Lifetimes, ServerConfig};
pub use error::OAuthError;
pub use params::Params;
pub use server::{AuthServer, AuthServerBuilder, BuildError};
