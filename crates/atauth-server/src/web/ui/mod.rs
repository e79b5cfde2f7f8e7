//! The HTTP side of the sign-in and consent UI ([`crate::ui`], which describes the pages and their
//! security): routes, handlers, the client address ([`ClientIp`]) and the CSRF check of every POST.
//!
//! Every POST answers 303 (post/redirect/get), except a failed sign-in, which re-renders the form
//! with the error so the identifier stays filled in. Refusals are `UiError`s, turned into an error
//! page (status, what happened, what to do, the error code) in one place.
//!
//! | route | what |
//! |---|---|
//! | `GET /oauth/authorize?client_id&request_uri[&account][&sign_in]` | the page for the pushed request: sign-in, account picker or consent; a 303 back to the client where `prompt` forbids interaction |
//! | `POST /oauth/authorize/sign-in` | password sign-in (rate limited); 303 back to the page with the account selected |
//! | `POST /oauth/authorize/consent` | `decision=allow` (with the ticked `scope`s) or `deny`; 303 to the client's `redirect_uri` |
//! | `GET` [`crate::ui::pages::CSS_PATH`] | the stylesheet (branding colour included) |
//! | `GET /account`, `POST /account/…` | the account page, see `account` (connected apps, devices, app passwords) |

mod account;
mod client_ip;
mod csrf;
mod render;

use std::net::IpAddr;
use std::sync::Arc;

use atauth_crypto::SecretString;
use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use client_ip::ClientIp;
use csrf::{Form, check_post};
pub use render::secure_headers;
use render::{Page, error_page, redirect_303, with_cookie};

use super::AppState;
use crate::account::SignInError;
use crate::authorize::{AuthorizeOutcome, login_hint_matches};
use crate::params::Params;
use crate::server::AuthServer;
use crate::store::{AccountRecord, AccountStatus, DeviceAccount, DeviceSession};
use crate::ui::device::{self, DeviceCookie};
use crate::ui::{AUTHORIZE_PATH, CONSENT_PATH, SIGN_IN_PATH, Ui, UiError, pages, signed_in_accounts};

/// The UI routes, for [`crate::web::router`].
pub fn routes(server: &AuthServer) -> Router<AppState> {
    Router::new()
        .route(AUTHORIZE_PATH, get(authorize_page))
        .route(SIGN_IN_PATH, post(sign_in))
        .route(CONSENT_PATH, post(consent))
        .route(pages::CSS_PATH, get(stylesheet))
        .merge(account::routes())
        .layer(Extension(Arc::new(Ui::new(server))))
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
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match authorize_inner(&server, &ui, ip, &headers, query.as_deref().unwrap_or_default()).await {
        Ok(res) => res,
        Err((e, cookie)) => with_cookie(error_page(&ui, &e), cookie),
    }
}

async fn authorize_inner(
    server: &AuthServer,
    ui: &Ui,
    ip: Option<IpAddr>,
    headers: &HeaderMap,
    query: &str,
) -> Result<Response, (UiError, Option<String>)> {
    let params = Params::from_form(query.as_bytes());
    let get = |k: &str| params.get(k).map_err(|e| (UiError::from(e), None));
    let (client_id, request_uri) = (get("client_id")?, get("request_uri")?);
    let (account, want_sign_in, want_picker) =
        (get("account")?, get("sign_in")?.is_some(), get("choose")?.is_some());
    let existing = device::find_device(server, headers, ui.secure).await.map_err(|e| (e.into(), None))?;
    let signed_in =
        signed_in_accounts(server, existing.as_ref().map(|(_, d)| d)).await.map_err(|e| (e, None))?;
    let records: Vec<AccountRecord> = signed_in.iter().map(|s| s.account.clone()).collect();
    let remembered: Vec<DeviceAccount> = signed_in.iter().map(|s| s.device.clone()).collect();
    let view = match server.load_authorization_for(client_id, request_uri, &records, &remembered).await {
        Ok(AuthorizeOutcome::Redirect(r)) => return Ok(redirect_303(&r.url)),
        Ok(AuthorizeOutcome::Interaction(v)) => v,
        Err(e) => return Err((e.into(), None)),
    };
    // A device session for this browser: the existing one, or a new one (AS-PAR-08 binds the
    // request to it).
    let (cookie, set_cookie) = match existing {
        Some((c, d)) => {
            device::record_use(server, &d.id, ip).await;
            (c, None)
        }
        None => {
            let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
            let (c, _, set) =
                device::open_device(server, ui.secure, user_agent).await.map_err(|e| (e.into(), None))?;
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

/// A POSTed form that passed the checks ([`check_post`]), with its request's page.
struct Post<'a> {
    form: Form,
    cookie: DeviceCookie,
    device: DeviceSession,
    page: Page<'a>,
}

/// Parses and checks a POSTed form and loads its request for this device: the core's view bound
/// to the device, or the core's redirect (`Ok(Err(_))`) where the request ends without a page.
async fn open_post<'a>(
    server: &'a AuthServer,
    ui: &'a Ui,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Result<Post<'a>, Response>, UiError> {
    let form = Form::parse(headers, body)?;
    let (cookie, device) = check_post(server, ui, headers, &form).await?;
    let signed_in = signed_in_accounts(server, Some(&device)).await?;
    let records: Vec<AccountRecord> = signed_in.iter().map(|s| s.account.clone()).collect();
    let remembered: Vec<DeviceAccount> = signed_in.iter().map(|s| s.device.clone()).collect();
    let (client_id, request_uri) = (form.get("client_id")?, form.get("request_uri")?);
    let view = match server.load_authorization_for(client_id, request_uri, &records, &remembered).await? {
        AuthorizeOutcome::Redirect(r) => return Ok(Err(redirect_303(&r.url))),
        AuthorizeOutcome::Interaction(v) => v,
    };
    server.bind_request_device(&view.request_id, &cookie.device_id()).await?;
    let page = Page::new(server, ui, view, &cookie, signed_in, request_uri.unwrap_or_default());
    Ok(Ok(Post { form, cookie, device, page }))
}

async fn sign_in(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sign_in_inner(&server, &ui, ip, &headers, &body).await.unwrap_or_else(|e| error_page(&ui, &e))
}

async fn sign_in_inner(
    server: &AuthServer,
    ui: &Ui,
    ip: Option<IpAddr>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, UiError> {
    let Post { form, device, page, .. } = match open_post(server, ui, headers, body).await? {
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
        Err(SignInError::LimiterUnavailable(_)) => {
            // Fail closed (crate::ratelimit): no password was checked.
            return page
                .sign_in_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some(&identifier),
                    Some("Sign-in is temporarily unavailable. Please try again in a minute."),
                )
                .await;
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
    let remember = form.get("remember")?.is_some();
    if !device::remember_sign_in(server, &device.id, &account.did, remember, ip).await? {
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
    consent_inner(&server, &ui, &headers, &body).await.unwrap_or_else(|e| error_page(&ui, &e))
}

async fn consent_inner(
    server: &AuthServer,
    ui: &Ui,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, UiError> {
    let Post { form, cookie, device, page } = match open_post(server, ui, headers, body).await? {
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
            // In the request's order, whichever list of the page (new, already allowed) a line
            // was on.
            let requested: Vec<&str> = page.view.request.scope.split(' ').collect();
            let mut ticked: Vec<&str> = form.scopes.iter().map(String::as_str).collect();
            ticked.sort_by_key(|s| requested.iter().position(|r| r == s).unwrap_or(usize::MAX));
            let granted = ticked.join(" ");
            let redirect =
                server.approve(&page.view.request_id, did, Some(&granted), Some(&cookie.device_id())).await?;
            // AS-AUTHZ-05: a remembered sign-in remembers the consent too (what was granted, after
            // any unticking), so the next request of the same or a narrower scope skips this page.
            if let Some(s) = page.signed_in.iter().find(|s| s.account.did == did && s.device.remember) {
                let client_id = &page.view.request.client_id;
                if let Err(e) =
                    device::remember_consent(server, &device.id, &s.device, client_id, &granted).await
                {
                    tracing::warn!(error = %e, "could not remember the consent");
                }
            }
            redirect
        }
        _ => return Err(UiError::BadForm),
    };
    // Accounts signed in without "remember" were for this request only.
    if let Err(e) = server.stores().devices.remove_device_accounts(&device.id, None).await {
        tracing::warn!(error = %e, "could not sign out unremembered accounts");
    }
    Ok(redirect_303(&redirect.url))
}
