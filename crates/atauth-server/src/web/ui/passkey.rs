//! The HTTP side of passkeys ([`crate::passkey`]): the script, and the routes that hand a page's
//! script the options of a ceremony. The browser's answers come back through ordinary forms (the
//! account page's "Add a passkey", the second-factor step's "Use a passkey", field `credential`)
//! and the JSON API's `second-factor` call (field `passkey`), whose handlers call
//! [`AuthServer::finish_passkey_registration`] and [`AuthServer::verify_passkey_sign_in`].
//!
//! | route | what |
//! |---|---|
//! | `GET /oauth/assets/atauth-passkey.js` | the script (`templates/ui/passkey.js`) |
//! | `POST /account/passkeys/options` | `{account}`: creation options for adding a passkey to a signed-in account |
//! | `POST /oauth/authorize/passkey/options` | `{client_id, request_uri}`: request options for the pending sign-in of this request |
//! | `POST /account/sign-in/passkey-options` | `{}`: request options for the account page's pending sign-in |
//! | `POST /oauth/authorize/api/passkey-options` | the JSON API's twin of the second (when the API is on) |
//!
//! The options routes are the JSON API's kind of call: `Content-Type: application/json`, not
//! cross-site, a live device cookie and its CSRF token in `X-CSRF-Token` ([`check_device`]), a
//! strict body; they answer `{"publicKey": …}` or `{"error", "error_description"}`. Each start
//! replaces the device's previous challenge for the same ceremony.

use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::csrf::check_device;
use super::flow::{Opened, open_checked};
use super::render::secure_headers;
use crate::passkey::PasskeyFlowError;
use crate::second_factor::PendingPurpose;
use crate::server::AuthServer;
use crate::ui::{Lang, Ui, UiError, signed_in_accounts};
use crate::web::AppState;

/// Where the script is served.
pub(super) const PASSKEY_JS_PATH: &str = "/oauth/assets/atauth-passkey.js";
/// `POST`: options for adding a passkey on the account page.
pub(super) const ACCOUNT_PASSKEY_OPTIONS_PATH: &str = "/account/passkeys/options";
/// `POST`: options for the second-factor step of an authorization request.
pub(super) const SIGN_IN_PASSKEY_OPTIONS_PATH: &str = "/oauth/authorize/passkey/options";
/// `POST`: options for the account page's second-factor step.
pub(super) const ACCOUNT_SIGN_IN_PASSKEY_OPTIONS_PATH: &str = "/account/sign-in/passkey-options";
/// `POST`: the JSON API's options for the second-factor step.
pub(super) const API_PASSKEY_OPTIONS_PATH: &str = "/oauth/authorize/api/passkey-options";

/// The script, from the binary.
const PASSKEY_JS: &str = include_str!("../../../templates/ui/passkey.js");

/// The script's `src`: [`PASSKEY_JS_PATH`] with a version from its content (`?v=`, like the
/// stylesheet's), so a cached copy never outlives a change (it is cached for a day).
pub(super) fn script_href() -> &'static str {
    static HREF: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let version = hex::encode(&atauth_crypto::hash::sha256(PASSKEY_JS.as_bytes())[..6]);
        format!("{PASSKEY_JS_PATH}?v={version}")
    });
    &HREF
}

/// The routes of this module (the API's options route only when the JSON API is on).
pub(super) fn routes(json_api: bool) -> Router<AppState> {
    let r = Router::new()
        .route(PASSKEY_JS_PATH, get(script))
        .route(ACCOUNT_PASSKEY_OPTIONS_PATH, post(account_options))
        .route(SIGN_IN_PASSKEY_OPTIONS_PATH, post(sign_in_options))
        .route(ACCOUNT_SIGN_IN_PASSKEY_OPTIONS_PATH, post(account_sign_in_options));
    if json_api { r.route(API_PASSKEY_OPTIONS_PATH, post(sign_in_options)) } else { r }
}

async fn script() -> Response {
    let mut res = PASSKEY_JS.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}

/// A JSON answer with the UI's headers.
fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut res = (status, axum::Json(body)).into_response();
    secure_headers(&mut res);
    res
}

/// Why an options call was refused, on the wire.
fn refuse(status: StatusCode, error: &str, description: &str) -> Response {
    json(status, &serde_json::json!({ "error": error, "error_description": description }))
}

fn ui_refusal(e: &UiError) -> Response {
    let (status, code, text) = match e {
        UiError::CrossOrigin => (StatusCode::FORBIDDEN, "cross_origin_request", "cross-site request"),
        UiError::NoDevice => (StatusCode::FORBIDDEN, "session_expired", "no live device session"),
        UiError::Csrf => (StatusCode::FORBIDDEN, "csrf_token_invalid", "X-CSRF-Token missing or wrong"),
        UiError::NotSignedIn => (StatusCode::FORBIDDEN, "login_required", "account not signed in here"),
        UiError::BadForm => (StatusCode::BAD_REQUEST, "invalid_request", "malformed request"),
        UiError::Store(err) => {
            tracing::error!(error = %err, "passkey options");
            (StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal error")
        }
        other => {
            tracing::debug!(error = %other, "passkey options refused");
            (StatusCode::BAD_REQUEST, "invalid_request", "the request cannot be used")
        }
    };
    refuse(status, code, text)
}

fn flow_refusal(e: &PasskeyFlowError) -> Response {
    match e {
        PasskeyFlowError::Unavailable(_) => {
            refuse(StatusCode::NOT_FOUND, "passkeys_unavailable", "this server offers no passkeys")
        }
        PasskeyFlowError::Expired => refuse(
            StatusCode::BAD_REQUEST,
            "second_factor_expired",
            "no sign-in waits for a second factor on this device (it expired after five minutes)",
        ),
        PasskeyFlowError::UnknownCredential => {
            refuse(StatusCode::BAD_REQUEST, "no_passkey", "this account has no passkey")
        }
        PasskeyFlowError::TooMany => {
            refuse(StatusCode::CONFLICT, "too_many_passkeys", "this account has the most passkeys allowed")
        }
        PasskeyFlowError::Store(err) => {
            tracing::error!(error = %err, "passkey options");
            refuse(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal error")
        }
        other => {
            tracing::error!(error = %other, "passkey options");
            refuse(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal error")
        }
    }
}

/// The options call's checks: JSON content type, then [`check_device`] with `X-CSRF-Token`.
async fn checked<T: for<'de> Deserialize<'de>>(
    server: &AuthServer,
    ui: &Ui,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(T, crate::ui::device::DeviceCookie, crate::store::DeviceSession), Response> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json") {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_content_type",
            "send application/json",
        ));
    }
    let mut tokens = headers.get_all("x-csrf-token").iter();
    let token = match (tokens.next(), tokens.next()) {
        (Some(v), None) => v.to_str().ok(),
        _ => None,
    };
    let (cookie, device) = check_device(server, ui, headers, token).await.map_err(|e| ui_refusal(&e))?;
    let body = serde_json::from_slice(body).map_err(|_| {
        refuse(StatusCode::BAD_REQUEST, "invalid_request", "malformed or unexpected JSON body")
    })?;
    Ok((body, cookie, device))
}

fn options(result: Result<serde_json::Value, PasskeyFlowError>) -> Response {
    match result {
        Ok(public_key) => json(StatusCode::OK, &serde_json::json!({ "publicKey": public_key })),
        Err(e) => flow_refusal(&e),
    }
}

/// `{account}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountBody {
    account: String,
}

async fn account_options(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (body, _, device) = match checked::<AccountBody>(&server, &ui, &headers, &body).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let signed_in = match signed_in_accounts(&server, Some(&device)).await {
        Ok(s) => s,
        Err(e) => return ui_refusal(&e),
    };
    let Some(me) = signed_in.iter().find(|s| s.account.did == body.account) else {
        return ui_refusal(&UiError::NotSignedIn);
    };
    options(server.begin_passkey_registration(&device.id, &me.account.did, &me.account.handle).await)
}

/// `{client_id, request_uri}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    client_id: String,
    request_uri: String,
}

async fn sign_in_options(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (body, cookie, device) = match checked::<RequestBody>(&server, &ui, &headers, &body).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let lang = Lang::from_headers(&headers);
    let opened =
        open_checked(&server, &ui, &cookie, &device, Some(&body.client_id), Some(&body.request_uri), lang)
            .await;
    let page = match opened {
        Ok(Opened::Page(page)) => page,
        // The request ended (or cannot be used): no second factor to give.
        Ok(Opened::Redirect(_)) => return flow_refusal(&PasskeyFlowError::Expired),
        Err(e) => return ui_refusal(&e),
    };
    options(server.begin_passkey_sign_in(&device.id, PendingPurpose::Request(&page.view.request_id)).await)
}

/// `{}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

async fn account_sign_in_options(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (EmptyBody {}, _, device) = match checked::<EmptyBody>(&server, &ui, &headers, &body).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    options(server.begin_passkey_sign_in(&device.id, PendingPurpose::AccountPage).await)
}
