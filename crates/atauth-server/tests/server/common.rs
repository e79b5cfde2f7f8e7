//! The server harness lives in `atauth_testkit::server`; this module re-exports it for the tests
//! of this binary, with the form helpers under their short names.

pub use atauth_testkit::form::{encode as form, param as get, redirect_params, with_param as with};
pub use atauth_testkit::server::*;
