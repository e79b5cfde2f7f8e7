//! The UI's error type and which words ([`super::i18n`]) its error pages show.

use http::StatusCode;

use super::i18n::{ErrorWords, Text};
use crate::authorize::AuthorizeError;
use crate::params::DuplicateParam;
use crate::store::StoreError;

/// Why a UI step failed in a way shown as an error page (sign-in failures are shown on the sign-in
/// page instead). One variant per check; `UiError::page` is the one place that words them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UiError {
    /// The core refused the request (unknown, expired, used, wrong client or device, bad scope…).
    #[error(transparent)]
    Authorize(#[from] AuthorizeError),
    /// A parameter appeared twice (RFC 6749 §3.1).
    #[error(transparent)]
    Duplicate(#[from] DuplicateParam),
    /// The form body is not `application/x-www-form-urlencoded`, or lacks a field.
    #[error("malformed form")]
    BadForm,
    /// A POST came without a (live) device cookie.
    #[error("no device session")]
    NoDevice,
    /// The CSRF token is missing or wrong.
    #[error("CSRF token missing or invalid")]
    Csrf,
    /// `Origin` or `Sec-Fetch-Site` says another site sent the form.
    #[error("cross-origin form submission")]
    CrossOrigin,
    /// Approval for an account that is not signed in on this device (or, with `prompt=login`, not
    /// since the request was made).
    #[error("account not signed in on this device")]
    NotSignedIn,
    /// Sign-up is not offered: the server hosts no handles, or the request asks for a particular
    /// account (`login_hint`).
    #[error("sign-up not available")]
    SignUpUnavailable,
    /// Storage failed.
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    /// Another internal failure (password hashing pool); logged where it happened.
    #[error("internal error")]
    Internal,
}

/// What an error page says.
pub(crate) struct ErrorText {
    pub(crate) status: StatusCode,
    pub(crate) words: ErrorWords,
    pub(crate) code: String,
}

impl UiError {
    /// Status, words (in the language of `t`) and code of the error page (the one place for this
    /// enum).
    pub(crate) fn page(&self, t: &Text) -> ErrorText {
        use AuthorizeError as A;
        let e = |status, words, code: &str| ErrorText { status, words, code: code.to_owned() };
        match self {
            Self::Authorize(err) => {
                let code = err.oauth_error().code.as_str().to_owned();
                let (status, words) = match err {
                    A::UnknownRequest => (StatusCode::BAD_REQUEST, t.err_expired),
                    A::DeviceMismatch => (StatusCode::FORBIDDEN, t.err_device),
                    A::Client(_) => (StatusCode::BAD_REQUEST, t.err_client),
                    A::AccountNotFound => (StatusCode::FORBIDDEN, t.err_account),
                    A::LoginHintMismatch => (StatusCode::FORBIDDEN, t.err_hint),
                    A::InvalidGrantedScope => (StatusCode::BAD_REQUEST, t.err_scope),
                    A::Store(_) => return Self::Internal.page(t),
                    _ => (StatusCode::BAD_REQUEST, t.err_link),
                };
                ErrorText { status, words, code }
            }
            Self::Duplicate(_) => e(StatusCode::BAD_REQUEST, t.err_link, "invalid_request"),
            Self::BadForm => e(StatusCode::BAD_REQUEST, t.err_form, "invalid_request"),
            Self::NoDevice => e(StatusCode::FORBIDDEN, t.err_session, "session_expired"),
            Self::Csrf => e(StatusCode::FORBIDDEN, t.err_csrf, "csrf_token_invalid"),
            Self::CrossOrigin => e(StatusCode::FORBIDDEN, t.err_cross, "cross_origin_request"),
            Self::NotSignedIn => e(StatusCode::FORBIDDEN, t.err_not_signed_in, "login_required"),
            Self::Store(_) | Self::Internal => {
                e(StatusCode::INTERNAL_SERVER_ERROR, t.err_internal, "server_error")
            }
            Self::SignUpUnavailable => e(StatusCode::NOT_FOUND, t.err_sign_up, "sign_up_unavailable"),
        }
    }
}
