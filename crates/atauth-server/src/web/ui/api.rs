//! The JSON consent API for custom front ends: the steps of the sign-in and consent pages as JSON
//! calls, for a single-page front end served by the operator on the server's own origin. The
//! contract (bodies, answers, error codes, examples) is docs/CONSENT-API.md; this is the code.
//!
//! | route | what |
//! |---|---|
//! | `GET /oauth/authorize/api/request?client_id&request_uri[&account]` | the request described (client, scopes in plain words, accounts signed in here, which screen) and the CSRF token; opens the device session (cookie) like the page |
//! | `POST /oauth/authorize/api/sign-in` | `{client_id, request_uri, identifier, password, remember}`: password sign-in (rate limited); answers as the `GET` does for the signed-in account |
//! | `POST /oauth/authorize/api/second-factor` | `{client_id, request_uri, code}` or `{…, recovery_code}`: the second factor after `sign-in` answered `second_factor_required`; answers as `sign-in` does |
//! | `POST /oauth/authorize/api/approve` | `{client_id, request_uri, account, scopes?}` → `{"redirect"}` with the code |
//! | `POST /oauth/authorize/api/deny` | `{client_id, request_uri}` → `{"redirect"}` with `error=access_denied` |
//!
//! **Same core, same checks.** Every call runs the page's steps (`web::ui::flow`): the device
//! session and the request bound to it (AS-PAR-08), the accounts signed in on the device, the
//! sign-in rate limits and account checks (AS-AUTHZ-02, AS-AUTHZ-07), remembered consent
//! (AS-AUTHZ-05), the granted-scope check (AS-AUTHZ-04) and the redirect with `iss`
//! (AS-AUTHZ-06). Any answer carrying `redirect` ends the request: the front end navigates there.
//!
//! **CSRF.** Each `POST` must be `Content-Type: application/json` (else 415), not cross-site by
//! `Origin` / `Sec-Fetch-Site` when the browser sends them, carry the device cookie, and carry the
//! device's CSRF token (the one the HTML forms carry, [`crate::ui::device`]) in the
//! [`CSRF_HEADER`] header, compared in constant time. The `GET` refuses cross-site callers too.
//! These run before anything else; a refused call changes nothing (the request stays usable, no
//! code is issued). Errors are `{"error", "error_description"}`, worded in one place
//! (`ApiError::wire`).

use std::net::IpAddr;
use std::sync::Arc;

use atauth_crypto::SecretString;
use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::client_ip::ClientIp;
use super::csrf::check_device;
use super::flow::{self, FactorRefusal, Opened, SignInRefusal, open_checked, open_request};
use super::render::{Next, Page, secure_headers, with_cookie};
use crate::authorize::AuthorizeError;
use crate::params::Params;
use crate::second_factor::{PendingPurpose, SecondFactorProof};
use crate::server::AuthServer;
use crate::store::DeviceSession;
use crate::ui::Lang;
use crate::ui::device::{self, DeviceCookie};
use crate::ui::{Screen, Ui, UiError, prefill};
use crate::web::AppState;

/// `GET`: the request described, with the CSRF token.
pub const API_REQUEST_PATH: &str = "/oauth/authorize/api/request";
/// `POST`: password sign-in.
pub const API_SIGN_IN_PATH: &str = "/oauth/authorize/api/sign-in";
/// `POST`: the second factor of a pending sign-in.
pub const API_SECOND_FACTOR_PATH: &str = "/oauth/authorize/api/second-factor";
/// `POST`: approve, with the chosen scopes.
pub const API_APPROVE_PATH: &str = "/oauth/authorize/api/approve";
/// `POST`: deny.
pub const API_DENY_PATH: &str = "/oauth/authorize/api/deny";
/// The request header that carries the CSRF token of every `POST`.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The API's routes (served when [`crate::ServerConfig::consent_json_api`] is on).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(API_REQUEST_PATH, get(request))
        .route(API_SIGN_IN_PATH, post(sign_in))
        .route(API_SECOND_FACTOR_PATH, post(second_factor))
        .route(API_APPROVE_PATH, post(approve))
        .route(API_DENY_PATH, post(deny))
}

// ------------------------------------------------------------------------------------- errors ---

/// Why a call of the API was refused. One variant per failed check; [`Self::wire`] is the one
/// place that words them. Nothing was changed by a refused call (a failed password still counts
/// against the sign-in limits, which is their purpose).
#[derive(Debug, thiserror::Error)]
pub(super) enum ApiError {
    /// The body is not declared `application/json`.
    #[error("Content-Type must be application/json")]
    ContentType,
    /// The body is not the JSON object the route takes (unknown fields are refused, so that a
    /// misspelt `scopes` cannot grant everything).
    #[error("invalid JSON body: {0}")]
    Json(String),
    /// A check of the UI core failed (CSRF, device, request, account, scope).
    #[error(transparent)]
    Ui(#[from] UiError),
    /// The sign-in was refused.
    #[error("sign-in refused: {0:?}")]
    SignIn(SignInRefusal),
    /// The second factor was refused.
    #[error("second factor refused: {0:?}")]
    Factor(FactorRefusal),
}

impl From<AuthorizeError> for ApiError {
    fn from(e: AuthorizeError) -> Self {
        Self::Ui(UiError::Authorize(e))
    }
}

impl ApiError {
    /// Status, `error` code and `error_description` (the one place for this enum). The codes of
    /// the UI's own checks are those its error pages show ([`UiError`]).
    fn wire(&self) -> (StatusCode, String, String) {
        let s = |status, code: &str, text: &str| (status, code.to_owned(), text.to_owned());
        match self {
            Self::ContentType => s(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_content_type",
                "Content-Type must be application/json",
            ),
            Self::Json(_) => (StatusCode::BAD_REQUEST, "invalid_request".to_owned(), self.to_string()),
            Self::Ui(e) => {
                // The API's descriptions are English; its clients word errors themselves.
                let page = e.page(Lang::En.text());
                let text = match e {
                    UiError::Authorize(AuthorizeError::Store(_)) | UiError::Store(_) | UiError::Internal => {
                        "The server could not complete this step.".to_owned()
                    }
                    UiError::Authorize(a) => a.to_string(),
                    UiError::Duplicate(d) => d.to_string(),
                    UiError::BadForm => "A field is missing or malformed.".to_owned(),
                    UiError::NoDevice => "No device session: load the request first (GET \
                                          /oauth/authorize/api/request) with cookies enabled."
                        .to_owned(),
                    UiError::Csrf => {
                        format!("The {CSRF_HEADER} header is missing or is not this device's CSRF token.")
                    }
                    UiError::CrossOrigin => {
                        "Cross-site request refused (Origin or Sec-Fetch-Site): call the API from this \
                         server's origin."
                            .to_owned()
                    }
                    UiError::NotSignedIn => "This account is not signed in on this device (with \
                                             prompt=login: not since the app made the request)."
                        .to_owned(),
                    // The sign-up pages' refusal (docs/SIGN-UP.md); no API step signs up.
                    UiError::SignUpUnavailable => "Sign-up is not offered for this request.".to_owned(),
                };
                (page.status, page.code, text)
            }
            Self::SignIn(r) => {
                // A second factor becomes one more `SignInRefusal`, answered here as 401
                // `second_factor_required` (the code docs/CONSENT-API.md reserves for it).
                let (code, text) = match r {
                    SignInRefusal::Incomplete => ("invalid_request", "identifier and password are required"),
                    SignInRefusal::InvalidCredentials => {
                        ("invalid_credentials", "Wrong handle, email or password.")
                    }
                    SignInRefusal::RateLimited(_) => {
                        ("rate_limited", "Too many sign-in attempts; try again after Retry-After seconds.")
                    }
                    SignInRefusal::Unavailable => {
                        ("temporarily_unavailable", "Sign-in is temporarily unavailable; try again shortly.")
                    }
                    SignInRefusal::TakenDown => {
                        ("account_taken_down", "This account has been taken down and cannot sign in.")
                    }
                    SignInRefusal::Deactivated => (
                        "account_deactivated",
                        "This account is deactivated; reactivate it before signing in to apps.",
                    ),
                    SignInRefusal::OtherAccount => {
                        ("account_mismatch", "The app asked for a different account (login_hint).")
                    }
                    SignInRefusal::SecondFactor(_) => (
                        "second_factor_required",
                        "The password was right; this account also needs its second factor: POST \
                         /oauth/authorize/api/second-factor within five minutes.",
                    ),
                };
                s(r.status(), code, text)
            }
            Self::Factor(r) => {
                let (code, text) = match r {
                    FactorRefusal::Empty => ("invalid_request", "code or recovery_code is required"),
                    FactorRefusal::Expired => (
                        "second_factor_expired",
                        "No sign-in waits for a second factor on this device for this request (it expired \
                         after five minutes, or completed): sign in with the password again.",
                    ),
                    FactorRefusal::Invalid => ("invalid_code", "The code is wrong or was used already."),
                    FactorRefusal::Locked(_) => (
                        "second_factor_locked",
                        "Too many wrong codes: this account's second factor is locked; try again after \
                         Retry-After seconds.",
                    ),
                    FactorRefusal::Unavailable => {
                        ("temporarily_unavailable", "Sign-in is temporarily unavailable; try again shortly.")
                    }
                    FactorRefusal::Passkey(p) => p.wire(),
                };
                s(r.status(), code, text)
            }
        }
    }

    /// The error response (internal causes logged here), with a new device's cookie if any.
    fn respond(self, set_cookie: Option<String>) -> Response {
        match &self {
            Self::Ui(UiError::Store(e) | UiError::Authorize(AuthorizeError::Store(e))) => {
                tracing::error!(error = %e, "consent API store");
            }
            // The JSON error may quote the body; log only which check failed.
            Self::Json(_) => tracing::debug!("consent API refused: invalid JSON body"),
            other => tracing::debug!(error = %other, "consent API refused"),
        }
        let (status, error, error_description) = self.wire();
        let factors = match &self {
            Self::SignIn(SignInRefusal::SecondFactor(kinds)) => Some(kinds.names()),
            _ => None,
        };
        let mut res =
            json(status, &ErrorBody { error: &error, error_description: &error_description, factors });
        let retry = match &self {
            Self::SignIn(SignInRefusal::RateLimited(d)) | Self::Factor(FactorRefusal::Locked(d)) => Some(*d),
            _ => None,
        };
        if let Some(d) = retry
            && let Ok(v) = HeaderValue::from_str(&d.as_secs().max(1).to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        with_cookie(res, set_cookie)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
    /// With `second_factor_required`: the kinds the account has (`totp`, `passkey`); a recovery
    /// code always works.
    #[serde(skip_serializing_if = "Option::is_none")]
    factors: Option<Vec<&'static str>>,
}

/// A JSON response with the UI's headers (`no-store`, `nosniff`, no framing).
fn json(status: StatusCode, value: &impl Serialize) -> Response {
    let mut res = crate::web::json_value(status, value);
    secure_headers(&mut res);
    res
}

fn redirect(url: String) -> Response {
    json(StatusCode::OK, &RedirectBody { redirect: url })
}

// ---------------------------------------------------------------------------------- responses ---

/// The request ended: the front end navigates to `redirect` (the client's `redirect_uri` with
/// `code` or `error`, `state` and `iss`).
#[derive(Serialize)]
struct RedirectBody {
    redirect: String,
}

/// What the front end shows for the request (the page's content as data).
#[derive(Serialize)]
struct RequestBody<'a> {
    /// This device's token for the `POST`s' [`CSRF_HEADER`].
    csrf_token: &'a str,
    request: RequestInfo<'a>,
    client: ClientInfo<'a>,
    /// Every requested scope in plain words, `atproto` (required) first.
    scopes: Vec<ScopeInfo>,
    sign_in: SignInInfo,
    /// The accounts signed in on this device that could approve this request.
    accounts: Vec<AccountInfo<'a>>,
    /// What the HTML page would show now: `sign_in`, `choose_account` or `consent`.
    screen: &'static str,
    /// The account of the `consent` screen.
    account: Option<&'a str>,
}

#[derive(Serialize)]
struct RequestInfo<'a> {
    client_id: &'a str,
    request_uri: &'a str,
    scope: &'a str,
    prompt: Option<&'a str>,
    login_hint: Option<&'a str>,
    /// Unix seconds.
    expires_at: i64,
}

#[derive(Serialize)]
struct ClientInfo<'a> {
    client_id: &'a str,
    /// The name to show: `client_name` for clients the operator trusts, else the host of the
    /// `client_id` URL, or "An app on this device" for loopback clients (AS-CMD-06).
    title: &'a str,
    /// The short name for "continue to …".
    label: &'a str,
    trusted: bool,
    loopback: bool,
    logo_uri: Option<&'a str>,
    client_uri: Option<&'a str>,
    badge: &'a str,
    notice: Option<&'a str>,
    redirect_origin: &'a str,
}

#[derive(Serialize)]
struct ScopeInfo {
    scope: String,
    title: String,
    detail: String,
    required: bool,
    sensitive: bool,
}

#[derive(Serialize)]
struct SignInInfo {
    /// Pre-filled identifier (the `login_hint`, a DID shown as its handle).
    identifier: String,
    /// The identifier may not be changed (AS-AUTHZ-02).
    locked: bool,
}

#[derive(Serialize)]
struct AccountInfo<'a> {
    did: &'a str,
    handle: &'a str,
    /// Signed in with "remember" (kept after this request).
    remembered: bool,
    /// This account granted this client the requested scopes before on this device and approving
    /// needs no screen (AS-AUTHZ-05).
    consent_remembered: bool,
    /// Requested scopes this account granted this client before (the consent screen folds them
    /// away as "already allowed").
    already_granted: Vec<String>,
}

/// The answer for an open request: its description, or `{"redirect"}` where it ended without a
/// screen (remembered consent approves here, as the page does).
async fn describe(page: &Page<'_>, account: Option<&str>) -> Result<Response, ApiError> {
    let screen = match page.next(account, false, false).await? {
        Next::Redirect(url) => return Ok(redirect(url)),
        Next::Show(screen) => screen,
    };
    let (screen, account) = match screen {
        Screen::SignIn => ("sign_in", None),
        Screen::Picker => ("choose_account", None),
        Screen::Consent(a) => ("consent", Some(a.did.as_str())),
    };
    let lines = page.scope_lines().await;
    let usable = page.usable();
    let accounts = usable
        .iter()
        .map(|s| AccountInfo {
            did: &s.account.did,
            handle: &s.account.handle,
            remembered: s.device.remember,
            consent_remembered: page.consent_remembered(&s.account),
            already_granted: {
                let (_, already) = page.split_granted(&s.account, lines.clone());
                already.into_iter().map(|l| l.scope).collect()
            },
        })
        .collect();
    let (identifier, locked) = prefill(page.server(), &page.view).await?;
    let c = page.client();
    let r = &page.view.request;
    let body = RequestBody {
        csrf_token: page.csrf_token(),
        request: RequestInfo {
            client_id: &r.client_id,
            request_uri: page.request_uri(),
            scope: &r.scope,
            prompt: r.prompt.as_deref(),
            login_hint: r.login_hint.as_deref(),
            expires_at: page.view.expires_at,
        },
        client: ClientInfo {
            client_id: &c.client_id,
            title: &c.title,
            label: &c.label,
            trusted: c.trusted,
            loopback: c.loopback,
            logo_uri: c.logo_uri.as_deref(),
            client_uri: c.client_uri.as_deref(),
            badge: c.badge,
            notice: c.notice.as_deref(),
            redirect_origin: &c.redirect_origin,
        },
        scopes: lines
            .into_iter()
            .map(|l| ScopeInfo {
                scope: l.scope,
                title: l.title,
                detail: l.detail,
                required: l.required,
                sensitive: l.sensitive,
            })
            .collect(),
        sign_in: SignInInfo { identifier, locked },
        accounts,
        screen,
        account,
    };
    Ok(json(StatusCode::OK, &body))
}

// ----------------------------------------------------------------------------------- handlers ---

/// `GET /oauth/authorize/api/request`.
async fn request(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match request_inner(&server, &ui, ip, &headers, query.as_deref().unwrap_or_default()).await {
        Ok(res) => res,
        Err((e, set_cookie)) => e.respond(set_cookie),
    }
}

async fn request_inner(
    server: &AuthServer,
    ui: &Ui,
    ip: Option<IpAddr>,
    headers: &HeaderMap,
    query: &str,
) -> Result<Response, (ApiError, Option<String>)> {
    // Only the operator's own front end reads a request (this answer carries the CSRF token).
    if !device::same_origin_post(headers, &ui.origin) {
        return Err((UiError::CrossOrigin.into(), None));
    }
    let params = Params::from_form(query.as_bytes());
    let get = |k: &str| params.get(k).map_err(|e| (ApiError::Ui(e.into()), None));
    let (client_id, request_uri, account) = (get("client_id")?, get("request_uri")?, get("account")?);
    let (page, set_cookie) =
        match open_request(server, ui, ip, headers, client_id, request_uri, Lang::En).await {
            Ok((Opened::Redirect(url), _)) => return Ok(redirect(url)),
            Ok((Opened::Page(page), set_cookie)) => (page, set_cookie),
            Err((e, set_cookie)) => return Err((e.into(), set_cookie)),
        };
    match describe(&page, account).await {
        Ok(res) => Ok(with_cookie(res, set_cookie)),
        Err(e) => Err((e, set_cookie)),
    }
}

/// A `POST` that passed the checks, with its parsed body.
struct Checked<B> {
    body: B,
    cookie: DeviceCookie,
    device: DeviceSession,
}

/// The checks of every `POST`, in order: JSON content type, not cross-site, the device cookie,
/// its CSRF token in [`CSRF_HEADER`] (all in [`check_device`], as for the forms), then the body.
async fn check<B: for<'de> Deserialize<'de>>(
    server: &AuthServer,
    ui: &Ui,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Checked<B>, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json") {
        return Err(ApiError::ContentType);
    }
    // A header sent twice is refused like a missing one.
    let mut tokens = headers.get_all(CSRF_HEADER).iter();
    let token = match (tokens.next(), tokens.next()) {
        (Some(v), None) => v.to_str().ok(),
        _ => None,
    };
    let (cookie, device) = check_device(server, ui, headers, token).await?;
    let body = serde_json::from_slice(body).map_err(|e| ApiError::Json(e.to_string()))?;
    Ok(Checked { body, cookie, device })
}

/// The request's page for a checked `POST`, or the answer where it already ended.
async fn open<'a>(
    server: &'a AuthServer,
    ui: &'a Ui,
    cookie: &DeviceCookie,
    device: &DeviceSession,
    client_id: &str,
    request_uri: &str,
) -> Result<Result<Box<Page<'a>>, Response>, ApiError> {
    match open_checked(server, ui, cookie, device, Some(client_id), Some(request_uri), Lang::En).await? {
        Opened::Redirect(url) => Ok(Err(redirect(url))),
        Opened::Page(page) => Ok(Ok(page)),
    }
}

/// `POST /oauth/authorize/api/sign-in` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignInBody {
    client_id: String,
    request_uri: String,
    identifier: String,
    password: String,
    #[serde(default)]
    remember: bool,
}

/// `POST /oauth/authorize/api/sign-in`.
async fn sign_in(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sign_in_inner(&server, &ui, ip, &headers, &body).await.unwrap_or_else(|e| e.respond(None))
}

async fn sign_in_inner(
    server: &AuthServer,
    ui: &Ui,
    ip: Option<IpAddr>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let Checked { body, cookie, device } = check::<SignInBody>(server, ui, headers, body).await?;
    let SignInBody { client_id, request_uri, identifier, password, remember } = body;
    let password = SecretString::from(password);
    let page = match open(server, ui, &cookie, &device, &client_id, &request_uri).await? {
        Ok(page) => page,
        Err(ended) => return Ok(ended),
    };
    let account =
        flow::sign_in_for_request(server, &page, &device, identifier.trim(), &password, remember, ip)
            .await?
            .map_err(ApiError::SignIn)?;
    tracing::info!(did = %account.did, "signed in through the consent API");
    describe_after_sign_in(server, ui, &cookie, &client_id, &request_uri, &account.did).await
}

/// `POST /oauth/authorize/api/second-factor` body: one of `code` and `recovery_code`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecondFactorBody {
    client_id: String,
    request_uri: String,
    code: Option<String>,
    recovery_code: Option<String>,
    /// A passkey assertion: the `PublicKeyCredential` as JSON (binary members base64url), made
    /// with the options of `POST /oauth/authorize/api/passkey-options`.
    passkey: Option<serde_json::Value>,
}

/// `POST /oauth/authorize/api/second-factor`.
async fn second_factor(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    second_factor_inner(&server, &ui, ip, &headers, &body).await.unwrap_or_else(|e| e.respond(None))
}

async fn second_factor_inner(
    server: &AuthServer,
    ui: &Ui,
    ip: Option<IpAddr>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let Checked { body, cookie, device } = check::<SecondFactorBody>(server, ui, headers, body).await?;
    let SecondFactorBody { client_id, request_uri, code, recovery_code, passkey } = body;
    let page = match open(server, ui, &cookie, &device, &client_id, &request_uri).await? {
        Ok(page) => page,
        Err(ended) => return Ok(ended),
    };
    let code = code.as_deref().map(str::trim).filter(|c| !c.is_empty());
    let recovery = recovery_code.as_deref().map(str::trim).filter(|c| !c.is_empty());
    let proof = match (code, recovery) {
        (Some(c), None) => Some(SecondFactorProof::Totp(c)),
        (None, Some(r)) => Some(SecondFactorProof::RecoveryCode(r)),
        (None, None) => None,
        (Some(_), Some(_)) => return Err(ApiError::Json("send code or recovery_code, not both".into())),
    };
    let passkey = passkey.map(|p| p.to_string());
    if passkey.is_some() && proof.is_some() {
        return Err(ApiError::Json("send a passkey or a code, not both".into()));
    }
    let purpose = PendingPurpose::Request(&page.view.request_id);
    let did = flow::second_factor_any(server, &device, purpose, passkey.as_deref(), proof, ip)
        .await?
        .map_err(ApiError::Factor)?;
    tracing::info!(did = %did, "signed in through the consent API with a second factor");
    describe_after_sign_in(server, ui, &cookie, &client_id, &request_uri, &did).await
}

/// The request again as the device now stands, for the account just signed in (as the page's
/// redirect to `&account=<did>` does): a remembered consent ends it here.
async fn describe_after_sign_in(
    server: &AuthServer,
    ui: &Ui,
    cookie: &DeviceCookie,
    client_id: &str,
    request_uri: &str,
    did: &str,
) -> Result<Response, ApiError> {
    let device = server
        .stores()
        .devices
        .get_device(&cookie.hash(), server.now())
        .await
        .map_err(UiError::from)?
        .ok_or(UiError::NoDevice)?;
    match open(server, ui, cookie, &device, client_id, request_uri).await? {
        Ok(page) => describe(&page, Some(did)).await,
        Err(ended) => Ok(ended),
    }
}

/// `POST /oauth/authorize/api/approve` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    client_id: String,
    request_uri: String,
    /// The DID of an account signed in on this device.
    account: String,
    /// The scopes granted (must keep `atproto`, within those requested); absent: all requested.
    scopes: Option<Vec<String>>,
}

/// `POST /oauth/authorize/api/approve`.
async fn approve(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    approve_inner(&server, &ui, &headers, &body).await.unwrap_or_else(|e| e.respond(None))
}

async fn approve_inner(
    server: &AuthServer,
    ui: &Ui,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let Checked { body, cookie, device } = check::<ApproveBody>(server, ui, headers, body).await?;
    let page = match open(server, ui, &cookie, &device, &body.client_id, &body.request_uri).await? {
        Ok(page) => page,
        Err(ended) => return Ok(ended),
    };
    let scopes = body.scopes.unwrap_or_else(|| {
        page.view.request.scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect()
    });
    let r = flow::allow(server, &page, &cookie, &device, &body.account, &scopes).await?;
    Ok(redirect(r.url))
}

/// `POST /oauth/authorize/api/deny` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DenyBody {
    client_id: String,
    request_uri: String,
}

/// `POST /oauth/authorize/api/deny`.
async fn deny(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    deny_inner(&server, &ui, &headers, &body).await.unwrap_or_else(|e| e.respond(None))
}

async fn deny_inner(
    server: &AuthServer,
    ui: &Ui,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let Checked { body, device, cookie } = check::<DenyBody>(server, ui, headers, body).await?;
    let page = match open(server, ui, &cookie, &device, &body.client_id, &body.request_uri).await? {
        Ok(page) => page,
        Err(ended) => return Ok(ended),
    };
    let r = flow::deny(server, &page, &device).await?;
    Ok(redirect(r.url))
}
