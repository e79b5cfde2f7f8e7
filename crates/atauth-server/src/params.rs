//! Request parameters with the RFC 6749 §3.1 duplicate rule. They live in atauth-oauth next to
//! the typed requests read from them ([`atauth_oauth::wire::request`]); re-exported here so
//! `atauth_server::Params` keeps working.

pub use atauth_oauth::wire::params::{DuplicateParam, ParamError, Params};
