//! Integration tests of the authorization server through its axum `Router`, called with
//! `tower::ServiceExt::oneshot` (no sockets). One binary, several modules, one harness.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, unreachable_pub)]

mod common;

mod account;
mod client_auth;
mod consent_api;
mod flow;
mod i18n;
mod instances;
mod par;
mod passkey;
mod permissions;
mod resource;
mod revoke;
mod second_factor;
mod serve;
mod signup;
mod token;
mod ui;
mod web;
