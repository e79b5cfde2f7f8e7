//! The UI's error type and the words of its error pages.

use http::StatusCode;

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
    pub(crate) heading: &'static str,
    pub(crate) message: &'static str,
    pub(crate) hint: &'static str,
    pub(crate) code: String,
}

impl UiError {
    /// Status, words and code of the error page (the one place for this enum).
    pub(crate) fn page(&self) -> ErrorText {
        use AuthorizeError as A;
        let t = |status, heading, message, hint, code: &str| ErrorText {
            status,
            heading,
            message,
            hint,
            code: code.to_owned(),
        };
        let again = "Go back to the app and start signing in again.";
        match self {
            Self::Authorize(e) => {
                let code = e.oauth_error().code.as_str().to_owned();
                let (status, heading, message, hint) = match e {
                    A::UnknownRequest => (
                        StatusCode::BAD_REQUEST,
                        "This sign-in link has expired",
                        "The app's sign-in request has expired or was already used.",
                        again,
                    ),
                    A::DeviceMismatch => (
                        StatusCode::FORBIDDEN,
                        "This sign-in was started in another browser",
                        "For your safety, a sign-in request can only be completed in the browser where it was opened.",
                        "Start again from the app in this browser, and make sure it allows cookies for this site.",
                    ),
                    A::Client(_) => (
                        StatusCode::BAD_REQUEST,
                        "This app could not be verified",
                        "Its registration (client metadata) could not be loaded or is not valid.",
                        "Try again later, or tell the app's developer.",
                    ),
                    A::AccountNotFound => (
                        StatusCode::FORBIDDEN,
                        "Account not found",
                        "The account you chose does not exist on this server.",
                        again,
                    ),
                    A::LoginHintMismatch => (
                        StatusCode::FORBIDDEN,
                        "Wrong account for this app",
                        "The app asked to sign in with a different account.",
                        again,
                    ),
                    A::InvalidGrantedScope => (
                        StatusCode::BAD_REQUEST,
                        "These permissions cannot be granted",
                        "The permissions sent do not match what the app asked for. Identifying you is always required.",
                        "Go back, reload the page and try again.",
                    ),
                    A::Store(_) => return Self::Internal.page(),
                    _ => (
                        StatusCode::BAD_REQUEST,
                        "This sign-in link is not valid",
                        "The link that brought you here is incomplete or was changed.",
                        again,
                    ),
                };
                ErrorText { status, heading, message, hint, code }
            }
            Self::Duplicate(_) => t(
                StatusCode::BAD_REQUEST,
                "This sign-in link is not valid",
                "The link that brought you here is incomplete or was changed.",
                again,
                "invalid_request",
            ),
            Self::BadForm => t(
                StatusCode::BAD_REQUEST,
                "This form could not be read",
                "Some of its fields were missing or malformed, so nothing was changed.",
                "Go back, reload the page and try again.",
                "invalid_request",
            ),
            Self::NoDevice => t(
                StatusCode::FORBIDDEN,
                "Your session has expired",
                "This page keeps you signed in with a cookie, and it was missing or expired. Nothing was changed.",
                "Make sure cookies are allowed for this site, then start again from the app.",
                "session_expired",
            ),
            Self::Csrf => t(
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The form was sent without a valid security token, so nothing was changed.",
                "Go back, reload the page and try again.",
                "csrf_token_invalid",
            ),
            Self::CrossOrigin => t(
                StatusCode::FORBIDDEN,
                "Request blocked",
                "This form was sent from another website, so nothing was changed.",
                again,
                "cross_origin_request",
            ),
            Self::NotSignedIn => t(
                StatusCode::FORBIDDEN,
                "You are not signed in",
                "The account you chose is no longer signed in on this device. Nothing was changed.",
                "Go back, reload the page and sign in again.",
                "login_required",
            ),
            Self::SignUpUnavailable => t(
                StatusCode::NOT_FOUND,
                "New accounts can't be created here",
                "This server does not offer sign-up here, or the app asked to sign in with a particular account. Nothing was changed.",
                "Sign in with an existing account, or go back to the app.",
                "sign_up_unavailable",
            ),
            Self::Store(_) | Self::Internal => t(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side",
                "The server could not complete this step.",
                "Try again in a moment.",
                "server_error",
            ),
        }
    }
}
