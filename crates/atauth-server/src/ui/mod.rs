//! The server-rendered sign-in and consent UI of the authorization endpoint (AS-AUTHZ-01 … 07,
//! AS-CMD-06, AS-CODE-01). Plain HTML forms (askama templates, escaped by construction), no
//! JavaScript, one stylesheet served from the binary, nothing loaded from elsewhere.
//!
//! | route | what |
//! |---|---|
//! | `GET /oauth/authorize?client_id&request_uri[&account][&sign_in]` | the page for the pushed request: sign-in, account picker or consent; a 303 back to the client where `prompt` forbids interaction |
//! | `POST /oauth/authorize/sign-in` | password sign-in (rate limited); 303 back to the page with the account selected |
//! | `POST /oauth/authorize/consent` | `decision=allow` (with the ticked `scope`s) or `deny`; 303 to the client's `redirect_uri` |
//! | `GET` [`pages::CSS_PATH`] | the stylesheet (branding colour included) |
//!
//! **Which page.** The handlers are thin: they read the device session ([`device`]), ask the core
//! ([`AuthServer::load_authorization_for`]) for the request, and pick a page. Of the accounts
//! signed in on the device (within [`crate::Lifetimes::device_session`]), the usable ones are
//! active (AS-AUTHZ-07), match the `login_hint` (AS-AUTHZ-02) and, for `prompt=login`, signed in
//! after the request was made. `&sign_in=1` (the "use another account" link) → sign-in;
//! `&account=<did>` of a usable account → consent for it; `prompt=select_account` → picker; one
//! usable account → consent; several → picker; none → sign-in, with the `login_hint` pre-filled
//! and locked (a DID hint of a local account is shown as its handle). Consent is always asked
//! (AS-AUTHZ-03/05: nothing is remembered, so `prompt=consent` changes nothing and untrusted public
//! clients always see it). `prompt=create` shows the sign-in page (there is no sign-up here).
//!
//! **Security.** A device session cookie (`HttpOnly; SameSite=Lax`, `Secure` + `__Host-` over
//! https) identifies the browser; a pushed request is bound to the first device that opens it
//! (AS-PAR-08). Every form carries a CSRF token derived from that cookie, and `Origin` /
//! `Sec-Fetch-Site` must not say cross-site: a failing POST changes nothing and gets 403.
//! Sign-in is rate limited per identifier and per client address ([`crate::ratelimit`]) and
//! checks only the account password (app passwords, when the legacy endpoints add them, are kept
//! apart and never accepted here). Every page is sent with `Content-Security-Policy` (no scripts,
//! `frame-ancestors 'none'`), `X-Frame-Options: DENY`, `no-store`.
//!
//! **Decisions.** Approve and deny go to [`AuthServer::approve`] / [`AuthServer::deny`], which
//! consume the request and answer the redirect: `code` (or `error=access_denied`), `state` and
//! always `iss` (AS-AUTHZ-06), sent as 303. The granted scope is what stayed ticked; `atproto`
//! cannot be dropped (the core refuses, AS-AUTHZ-04). Accounts signed in without "remember" are
//! signed out of the device once the request is decided.

pub mod device;
pub mod pages;
pub mod scopes;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use atauth_crypto::SecretString;
use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::account::SignInError;
use crate::authorize::{AuthorizationView, AuthorizeError, AuthorizeOutcome, login_hint_matches};
use crate::params::{DuplicateParam, Params};
use crate::server::AuthServer;
use crate::store::{AccountRecord, AccountStatus, DeviceAccount, DeviceSession, StoreError};
use crate::web::AppState;
use device::DeviceCookie;
use pages::{
    AccountView, AccountsPage, Brand, ClientView, ConsentPage, ErrorPage, FormCtx, SignInPage, html,
};

/// The sign-in form's action.
pub const SIGN_IN_PATH: &str = "/oauth/authorize/sign-in";
/// The consent form's action.
pub const CONSENT_PATH: &str = "/oauth/authorize/consent";
/// The authorization page.
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";

/// Why a UI step failed in a way shown as an error page (sign-in failures are shown on the sign-in
/// page instead). One variant per check; [`UiError::page`] is the one place that words them.
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
    /// Storage failed.
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    /// Another internal failure (password hashing pool); logged where it happened.
    #[error("internal error")]
    Internal,
}

/// What an error page says.
struct ErrorText {
    status: StatusCode,
    heading: &'static str,
    message: &'static str,
    hint: &'static str,
    code: String,
}

impl UiError {
    /// Status, words and code of the error page (the one place for this enum).
    fn page(&self) -> ErrorText {
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

/// Per-router state of the UI: what every page shows of the server, and the stylesheet.
#[derive(Debug)]
pub struct Ui {
    brand: Brand,
    css: String,
    secure: bool,
    origin: String,
}

impl Ui {
    /// Prepares the UI for `server` (branding, stylesheet, cookie mode).
    pub fn new(server: &AuthServer) -> Self {
        let config = server.config();
        let css = pages::stylesheet(&config.branding);
        let version = hex::encode(&atauth_crypto::hash::sha256(css.as_bytes())[..6]);
        let origin = url::Url::parse(&config.public_url)
            .map_or_else(|_| server.issuer().to_owned(), |u| u.origin().ascii_serialization());
        Self {
            brand: Brand::new(&config.branding, server.issuer(), &version),
            css,
            secure: server.issuer().starts_with("https://"),
            origin,
        }
    }

    fn error(&self, e: &UiError) -> Response {
        match e {
            UiError::Store(err) => tracing::error!(error = %err, "sign-in UI store"),
            UiError::Authorize(AuthorizeError::Store(err)) => {
                tracing::error!(error = %err, "sign-in UI store");
            }
            other => tracing::debug!(error = %other, "sign-in UI refused"),
        }
        let text = e.page();
        html(
            text.status,
            &ErrorPage {
                brand: &self.brand,
                title: text.heading,
                heading: text.heading,
                message: text.message,
                hint: text.hint,
                code: &text.code,
            },
        )
    }
}

/// The UI routes, for [`crate::web::router`].
pub fn routes(server: &AuthServer) -> Router<AppState> {
    Router::new()
        .route(AUTHORIZE_PATH, get(authorize_page))
        .route(SIGN_IN_PATH, post(sign_in))
        .route(CONSENT_PATH, post(consent))
        .route(pages::CSS_PATH, get(stylesheet))
        .layer(Extension(Arc::new(Ui::new(server))))
}

/// The client's address: the configured proxy header's (right-most) address, else the TCP peer
/// from `ConnectInfo` (recorded by [`crate::web::serve`]); `None` when neither is known, and then
/// only the per-identifier limit applies.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S> FromRequestParts<S> for ClientIp
where
    AuthServer: axum::extract::FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let server = <AuthServer as axum::extract::FromRef<S>>::from_ref(state);
        if let Some(name) = server.config().client_ip_header.as_deref() {
            let from_header = parts
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .next_back();
            if from_header.is_some() {
                return Ok(Self(from_header));
            }
        }
        Ok(Self(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

// ------------------------------------------------------------------------------------- helpers ---

/// An account signed in on the device, with its record.
struct SignedIn {
    device: DeviceAccount,
    account: AccountRecord,
}

/// The device's accounts that still exist and whose sign-in is within the device-session lifetime.
async fn signed_in_accounts(
    server: &AuthServer,
    device: Option<&DeviceSession>,
) -> Result<Vec<SignedIn>, UiError> {
    let Some(device) = device else { return Ok(Vec::new()) };
    let max_age = i64::try_from(server.config().lifetimes.device_session.as_secs()).unwrap_or(i64::MAX);
    let now = server.now();
    let mut out = Vec::with_capacity(device.accounts.len());
    for d in &device.accounts {
        if now.saturating_sub(d.authenticated_at) >= max_age {
            continue;
        }
        if let Some(account) = server.stores().accounts.account_by_did(&d.did).await? {
            out.push(SignedIn { device: d.clone(), account });
        }
    }
    Ok(out)
}

/// Whether this signed-in account could approve the request now.
fn usable(view: &AuthorizationView, s: &SignedIn) -> bool {
    let fresh =
        view.request.prompt.as_deref() != Some("login") || s.device.authenticated_at >= view.created_at;
    s.account.status == AccountStatus::Active
        && login_hint_matches(view.request.login_hint.as_deref(), &s.account)
        && fresh
}

fn page_href(client_id: &str, request_uri: &str, extra: Option<(&str, &str)>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("client_id", client_id);
    q.append_pair("request_uri", request_uri);
    if let Some((k, v)) = extra {
        q.append_pair(k, v);
    }
    format!("{AUTHORIZE_PATH}?{}", q.finish())
}

fn redirect_303(url: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    match HeaderValue::from_str(url) {
        Ok(loc) => {
            res.headers_mut().insert(header::LOCATION, loc);
        }
        Err(_) => return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response(),
    }
    pages::secure_headers(&mut res);
    res
}

fn with_cookie(mut res: Response, set_cookie: Option<String>) -> Response {
    if let Some(v) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// A parsed form: single-valued fields (duplicates refused) and the repeated `scope` field.
struct Form {
    params: Params,
    scopes: Vec<String>,
}

impl Form {
    fn parse(headers: &HeaderMap, body: &Bytes) -> Result<Self, UiError> {
        let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        {
            return Err(UiError::BadForm);
        }
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let scopes = pairs.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.clone()).collect();
        let params = Params::new(pairs.into_iter().filter(|(k, _)| k != "scope").collect());
        Ok(Self { params, scopes })
    }

    fn get(&self, name: &str) -> Result<Option<&str>, UiError> {
        Ok(self.params.get(name)?)
    }
}

/// The checks every POST passes before anything else: same origin, a live device cookie, the
/// device's CSRF token.
async fn check_post(
    server: &AuthServer,
    ui: &Ui,
    headers: &HeaderMap,
    form: &Form,
) -> Result<(DeviceCookie, DeviceSession), UiError> {
    if !device::same_origin_post(headers, &ui.origin) {
        return Err(UiError::CrossOrigin);
    }
    let cookie = DeviceCookie::from_headers(headers, ui.secure).ok_or(UiError::NoDevice)?;
    let token = form.get("csrf_token")?.ok_or(UiError::Csrf)?;
    if !cookie.csrf_matches(token) {
        return Err(UiError::Csrf);
    }
    let device =
        server.stores().devices.get_device(&cookie.hash(), server.now()).await?.ok_or(UiError::NoDevice)?;
    Ok((cookie, device))
}

/// Everything a page of one request needs.
struct Page<'a> {
    server: &'a AuthServer,
    ui: &'a Ui,
    view: AuthorizationView,
    client: ClientView,
    form: FormCtx,
    signed_in: Vec<SignedIn>,
}

impl<'a> Page<'a> {
    fn new(
        server: &'a AuthServer,
        ui: &'a Ui,
        view: AuthorizationView,
        cookie: &DeviceCookie,
        signed_in: Vec<SignedIn>,
        request_uri: &str,
    ) -> Self {
        let client_id = view.request.client_id.clone();
        let trusted = server.config().trusted_clients.contains(&client_id);
        let client = ClientView::new(&view.client, &client_id, &view.request.redirect_uri, trusted);
        let form = FormCtx {
            client_id,
            request_uri: request_uri.to_owned(),
            csrf: cookie.csrf_token(),
            sign_in_action: SIGN_IN_PATH,
            consent_action: CONSENT_PATH,
        };
        Self { server, ui, view, client, form, signed_in }
    }

    fn href(&self, extra: Option<(&str, &str)>) -> String {
        page_href(&self.form.client_id, &self.form.request_uri, extra)
    }

    fn usable(&self) -> Vec<&SignedIn> {
        self.signed_in.iter().filter(|s| usable(&self.view, s)).collect()
    }

    /// The identifier to pre-fill and whether it is locked (AS-AUTHZ-02).
    async fn prefill(&self) -> Result<(String, bool), UiError> {
        let Some(hint) = self.view.request.login_hint.as_deref() else { return Ok((String::new(), false)) };
        if hint.starts_with("did:")
            && let Some(a) = self.server.stores().accounts.account_by_did(hint).await?
        {
            return Ok((a.handle, true));
        }
        Ok((hint.to_owned(), true))
    }

    async fn sign_in_page(
        &self,
        status: StatusCode,
        identifier: Option<&str>,
        error: Option<&str>,
    ) -> Result<Response, UiError> {
        let (hinted, locked) = self.prefill().await?;
        let identifier = if locked { hinted.as_str() } else { identifier.unwrap_or_default() };
        let accounts_href = (!self.usable().is_empty()).then(|| self.href(None));
        Ok(html(
            status,
            &SignInPage {
                brand: &self.ui.brand,
                title: "Sign in",
                client: &self.client,
                form: &self.form,
                identifier,
                locked,
                error,
                accounts_href,
            },
        ))
    }

    fn picker(&self) -> Response {
        let accounts = self
            .usable()
            .into_iter()
            .map(|s| {
                AccountView::new(
                    &s.account.did,
                    &s.account.handle,
                    self.href(Some(("account", &s.account.did))),
                )
            })
            .collect();
        html(
            StatusCode::OK,
            &AccountsPage {
                brand: &self.ui.brand,
                title: "Choose an account",
                client: &self.client,
                form: &self.form,
                accounts,
                sign_in_href: self.href(Some(("sign_in", "1"))),
            },
        )
    }

    fn consent(&self, account: &AccountRecord) -> Response {
        let permissions = scopes::describe_all(&self.view.request.scope);
        let optional_count = permissions.iter().filter(|p| !p.required).count();
        // A `login_hint` fixes the account (AS-AUTHZ-02); otherwise offer the others.
        let switch_href = if self.view.request.login_hint.is_some() {
            None
        } else if self.usable().len() > 1 {
            Some(self.href(Some(("choose", "1"))))
        } else {
            Some(self.href(Some(("sign_in", "1"))))
        };
        html(
            StatusCode::OK,
            &ConsentPage {
                brand: &self.ui.brand,
                title: "Allow access",
                client: &self.client,
                form: &self.form,
                account: AccountView::new(&account.did, &account.handle, String::new()),
                switch_href,
                permissions,
                optional_count,
            },
        )
    }

    /// Picks the page (see the module docs).
    async fn interaction(
        &self,
        account: Option<&str>,
        want_sign_in: bool,
        want_picker: bool,
    ) -> Result<Response, UiError> {
        let usable = self.usable();
        if want_sign_in {
            return self.sign_in_page(StatusCode::OK, None, None).await;
        }
        if let Some(did) = account
            && let Some(s) = usable.iter().find(|s| s.account.did == did)
        {
            return Ok(self.consent(&s.account));
        }
        let select = self.view.request.prompt.as_deref() == Some("select_account") || want_picker;
        match usable.as_slice() {
            [] => self.sign_in_page(StatusCode::OK, None, None).await,
            [one] if !select => Ok(self.consent(&one.account)),
            _ => Ok(self.picker()),
        }
    }
}

// ------------------------------------------------------------------------------------ handlers ---

async fn stylesheet(Extension(ui): Extension<Arc<Ui>>) -> Response {
    let mut res = ui.css.clone().into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}

async fn authorize_page(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match authorize_inner(&server, &ui, &headers, query.as_deref().unwrap_or_default()).await {
        Ok(res) => res,
        Err((e, cookie)) => with_cookie(ui.error(&e), cookie),
    }
}

async fn authorize_inner(
    server: &AuthServer,
    ui: &Ui,
    headers: &HeaderMap,
    query: &str,
) -> Result<Response, (UiError, Option<String>)> {
    let params = Params::from_form(query.as_bytes());
    let get = |k: &str| params.get(k).map_err(|e| (UiError::from(e), None));
    let (client_id, request_uri) = (get("client_id")?, get("request_uri")?);
    let (account, want_sign_in, want_picker) =
        (get("account")?, get("sign_in")?.is_some(), get("choose")?.is_some());
    let now = server.now();
    let existing = match DeviceCookie::from_headers(headers, ui.secure) {
        Some(c) => server
            .stores()
            .devices
            .get_device(&c.hash(), now)
            .await
            .map_err(|e| (e.into(), None))?
            .map(|d| (c, d)),
        None => None,
    };
    let signed_in =
        signed_in_accounts(server, existing.as_ref().map(|(_, d)| d)).await.map_err(|e| (e, None))?;
    let records: Vec<AccountRecord> = signed_in.iter().map(|s| s.account.clone()).collect();
    let view = match server.load_authorization_for(client_id, request_uri, &records).await {
        Ok(AuthorizeOutcome::Redirect(r)) => return Ok(redirect_303(&r.url)),
        Ok(AuthorizeOutcome::Interaction(v)) => v,
        Err(e) => return Err((e.into(), None)),
    };
    // A device session for this browser: the existing one, or a new one (AS-PAR-08 binds the
    // request to it).
    let (cookie, set_cookie) = match existing {
        Some((c, _)) => (c, None),
        None => {
            let c = DeviceCookie::generate();
            let lifetime =
                i64::try_from(server.config().lifetimes.device_session.as_secs()).unwrap_or(i64::MAX);
            let user_agent = headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(256).collect());
            server
                .stores()
                .devices
                .put_device(DeviceSession {
                    id: c.hash(),
                    accounts: Vec::new(),
                    created_at: now,
                    expires_at: now.saturating_add(lifetime),
                    user_agent,
                })
                .await
                .map_err(|e| (e.into(), None))?;
            let set = c.set_cookie(ui.secure, lifetime);
            (c, Some(set))
        }
    };
    if let Err(e) = server.bind_request_device(&view.request_id, &cookie.device_id()).await {
        return Err((e.into(), set_cookie));
    }
    let request_uri = request_uri.unwrap_or_default().to_owned();
    let page = Page::new(server, ui, view, &cookie, signed_in, &request_uri);
    match page.interaction(account, want_sign_in, want_picker).await {
        Ok(res) => Ok(with_cookie(res, set_cookie)),
        Err(e) => Err((e, set_cookie)),
    }
}

/// Loads the request of a POSTed form for this device: the core's view (or its redirect), bound
/// to the device.
async fn load_for_post<'a>(
    server: &'a AuthServer,
    ui: &'a Ui,
    form: &Form,
    cookie: &DeviceCookie,
    device: &DeviceSession,
) -> Result<Result<Page<'a>, Response>, UiError> {
    let signed_in = signed_in_accounts(server, Some(device)).await?;
    let records: Vec<AccountRecord> = signed_in.iter().map(|s| s.account.clone()).collect();
    let (client_id, request_uri) = (form.get("client_id")?, form.get("request_uri")?);
    let view = match server.load_authorization_for(client_id, request_uri, &records).await? {
        AuthorizeOutcome::Redirect(r) => return Ok(Err(redirect_303(&r.url))),
        AuthorizeOutcome::Interaction(v) => v,
    };
    server.bind_request_device(&view.request_id, &cookie.device_id()).await?;
    Ok(Ok(Page::new(server, ui, view, cookie, signed_in, request_uri.unwrap_or_default())))
}

async fn sign_in(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sign_in_inner(&server, &ui, ip, &headers, &body).await.unwrap_or_else(|e| ui.error(&e))
}

async fn sign_in_inner(
    server: &AuthServer,
    ui: &Ui,
    ip: Option<IpAddr>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, UiError> {
    let form = Form::parse(headers, body)?;
    let (cookie, device) = check_post(server, ui, headers, &form).await?;
    let page = match load_for_post(server, ui, &form, &cookie, &device).await? {
        Ok(p) => p,
        Err(redirect) => return Ok(redirect),
    };
    let identifier = form.get("identifier")?.unwrap_or_default().trim().to_owned();
    let password = SecretString::new(form.get("password")?.unwrap_or_default());
    if identifier.is_empty() || password.expose_secret().is_empty() {
        return page
            .sign_in_page(
                StatusCode::BAD_REQUEST,
                Some(&identifier),
                Some("Enter your handle or email, and your password."),
            )
            .await;
    }
    let account = match server.sign_in_limited(&identifier, &password, ip).await {
        Ok(a) => a,
        Err(SignInError::InvalidCredentials) => {
            return page
                .sign_in_page(
                    StatusCode::UNAUTHORIZED,
                    Some(&identifier),
                    Some("Wrong handle, email or password."),
                )
                .await;
        }
        Err(SignInError::RateLimited(r)) => {
            let secs = r.retry_after.as_secs();
            let when =
                if secs <= 90 { format!("{secs} seconds") } else { format!("{} minutes", secs.div_ceil(60)) };
            let msg = format!("Too many sign-in attempts. For your security, try again in {when}.");
            let mut res =
                page.sign_in_page(StatusCode::TOO_MANY_REQUESTS, Some(&identifier), Some(&msg)).await?;
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return Ok(res);
        }
        Err(SignInError::AccountTakedown) => {
            return page
                .sign_in_page(
                    StatusCode::FORBIDDEN,
                    Some(&identifier),
                    Some("This account has been taken down and cannot sign in."),
                )
                .await;
        }
        Err(SignInError::Store(e)) => return Err(UiError::Store(e)),
        Err(e) => {
            tracing::error!(error = %e, "sign-in failed");
            return Err(UiError::Internal);
        }
    };
    if account.status != AccountStatus::Active {
        // AS-AUTHZ-07: deactivated accounts cannot authorize; nothing is signed in.
        return page
            .sign_in_page(
                StatusCode::FORBIDDEN,
                Some(&identifier),
                Some("This account is deactivated. Reactivate it before signing in to apps."),
            )
            .await;
    }
    if !login_hint_matches(page.view.request.login_hint.as_deref(), &account) {
        // AS-AUTHZ-02: only the hinted account; a different one would fail the client's `sub` check.
        return page
            .sign_in_page(
                StatusCode::FORBIDDEN,
                Some(&identifier),
                Some("The app asked for a different account. Sign in with that one."),
            )
            .await;
    }
    let now = server.now();
    let lifetime = i64::try_from(server.config().lifetimes.device_session.as_secs()).unwrap_or(i64::MAX);
    let entry = DeviceAccount {
        did: account.did.clone(),
        authenticated_at: now,
        remember: form.get("remember")?.is_some(),
    };
    if !server
        .stores()
        .devices
        .upsert_device_account(&device.id, entry, now.saturating_add(lifetime), now)
        .await?
    {
        return Err(UiError::NoDevice);
    }
    tracing::info!(did = %account.did, "signed in on the authorization page");
    Ok(redirect_303(&page.href(Some(("account", &account.did)))))
}

async fn consent(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    consent_inner(&server, &ui, &headers, &body).await.unwrap_or_else(|e| ui.error(&e))
}

async fn consent_inner(
    server: &AuthServer,
    ui: &Ui,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, UiError> {
    let form = Form::parse(headers, body)?;
    let (cookie, device) = check_post(server, ui, headers, &form).await?;
    let page = match load_for_post(server, ui, &form, &cookie, &device).await? {
        Ok(p) => p,
        Err(redirect) => return Ok(redirect),
    };
    let redirect = match form.get("decision")? {
        Some("deny") => server.deny(&page.view.request_id).await?,
        Some("allow") => {
            let did = form.get("account")?.ok_or(UiError::BadForm)?;
            if !page.usable().iter().any(|s| s.account.did == did)
                && !page
                    .signed_in
                    .iter()
                    .any(|s| s.account.did == did && s.account.status != AccountStatus::Active)
            {
                return Err(UiError::NotSignedIn);
            }
            let granted = form.scopes.join(" ");
            server.approve(&page.view.request_id, did, Some(&granted), Some(&cookie.device_id())).await?
        }
        _ => return Err(UiError::BadForm),
    };
    // Accounts signed in without "remember" were for this request only.
    if let Err(e) = server.stores().devices.remove_device_accounts(&device.id, None).await {
        tracing::warn!(error = %e, "could not sign out unremembered accounts");
    }
    Ok(redirect_303(&redirect.url))
}
