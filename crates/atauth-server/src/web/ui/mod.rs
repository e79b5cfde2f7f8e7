//! The HTTP side of the sign-in and consent UI ([`crate::ui`], which describes the pages and their
//! security): routes, handlers, the client address ([`ClientIp`]) and the CSRF check of every POST.
//!
//! Every POST answers 303 (post/redirect/get), except a failed sign-in or sign-up, which
//! re-renders the form with the error so what was typed stays filled in (never the password). Refusals are `UiError`s, turned into an error
//! page (status, what happened, what to do, the error code) in one place.
//!
//! | route | what |
//! |---|---|
//! | `GET /oauth/authorize?client_id&request_uri[&account][&sign_in]` | the page for the pushed request: sign-in, account picker or consent; a 303 back to the client where `prompt` forbids interaction |
//! | `POST /oauth/authorize/sign-in` | password sign-in (rate limited); 303 back to the page with the account selected |
//! | `POST /oauth/authorize/second-factor` | `code` or `recovery_code` for the pending sign-in of an account with a second factor (lockout after ten wrong codes); 303 back to the page with the account selected |
//! | `POST /oauth/authorize/consent` | `decision=allow` (with the ticked `scope`s) or `deny`; 303 to the client's `redirect_uri` |
//! | `POST /oauth/authorize/sign-up`, `GET`/`POST /account/sign-up` | sign-up (rate limited), see `signup`; 303 back to the page (or the account page) signed in as the new account |
//! | `GET` [`crate::ui::pages::CSS_PATH`] | the stylesheet (branding colour included) |
//! | `GET /oauth/assets/atauth-passkey.js`, `POST …/passkey…options` | passkeys: the script and the ceremonies' options, see `passkey` |
//! | `GET /account`, `POST /account/…` | the account page, see `account` (connected apps, devices, app passwords) |
//! | `GET /oauth/authorize/api/request`, `POST /oauth/authorize/api/…` | the JSON consent API for custom front ends, see [`api`] (when [`crate::ServerConfig::consent_json_api`]) |
//!
//! The steps themselves (open the request for the device, sign in, approve, deny) are `flow`,
//! shared by the pages and the JSON API so that both check the same things in the same order.

mod account;
pub mod api;
mod client_ip;
mod csrf;
mod flow;
mod passkey;
mod render;
mod signup;

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
use crate::params::Params;
use crate::second_factor::{PendingPurpose, SecondFactorProof};
use crate::server::AuthServer;
use crate::store::DeviceSession;
use crate::ui::device::DeviceCookie;
use crate::ui::{AUTHORIZE_PATH, CONSENT_PATH, Lang, SECOND_FACTOR_PATH, SIGN_IN_PATH, Ui, UiError, pages};
use flow::{FactorRefusal, Opened, SignInRefusal, open_checked, open_request};

/// The UI routes, for [`crate::web::router`]; with them the JSON consent API when the server
/// serves it ([`crate::ServerConfig::consent_json_api`]).
pub fn routes(server: &AuthServer) -> Router<AppState> {
    let mut r = Router::new()
        .route(AUTHORIZE_PATH, get(authorize_page))
        .route(SIGN_IN_PATH, post(sign_in))
        .route(SECOND_FACTOR_PATH, post(second_factor))
        .route(CONSENT_PATH, post(consent))
        .route(pages::CSS_PATH, get(stylesheet))
        .merge(account::routes())
        .merge(passkey::routes(server.config().consent_json_api))
        .merge(signup::routes());
    if server.config().consent_json_api {
        r = r.merge(api::routes());
    }
    r.layer(Extension(Arc::new(Ui::new(server))))
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
        Err((e, cookie)) => with_cookie(error_page(&ui, Lang::from_headers(&headers), &e), cookie),
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
    let (account, want_sign_in, want_picker, want_sign_up) =
        (get("account")?, get("sign_in")?.is_some(), get("choose")?.is_some(), get("sign_up")?.is_some());
    let lang = Lang::from_headers(headers);
    let (page, set_cookie) = match open_request(server, ui, ip, headers, client_id, request_uri, lang).await?
    {
        (Opened::Redirect(url), _) => return Ok(redirect_303(&url)),
        (Opened::Page(page), set_cookie) => (page, set_cookie),
    };
    if account.is_none() && !want_sign_in && !want_picker && !want_sign_up {
        // A password waits for its second factor on this device (a reload of the step).
        match page.pending_second_factor().await {
            Ok(Some(did)) => {
                return match page.second_factor_page(StatusCode::OK, &did, None, false).await {
                    Ok(res) => Ok(with_cookie(res, set_cookie)),
                    Err(e) => Err((e, set_cookie)),
                };
            }
            Ok(None) => {}
            Err(e) => return Err((e, set_cookie)),
        }
    }
    match page.interaction(account, want_sign_in, want_picker, want_sign_up).await {
        Ok(res) => Ok(with_cookie(res, set_cookie)),
        Err(e) => Err((e, set_cookie)),
    }
}

/// A POSTed form that passed the checks ([`check_post`]), with its request's page.
struct Post<'a> {
    form: Form,
    cookie: DeviceCookie,
    device: DeviceSession,
    page: Box<Page<'a>>,
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
    let (client_id, request_uri) = (form.get("client_id")?, form.get("request_uri")?);
    let lang = Lang::from_headers(headers);
    match open_checked(server, ui, &cookie, &device, client_id, request_uri, lang).await? {
        Opened::Redirect(url) => Ok(Err(redirect_303(&url))),
        Opened::Page(page) => Ok(Ok(Post { form, cookie, device, page })),
    }
}

async fn sign_in(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = Lang::from_headers(&headers);
    sign_in_inner(&server, &ui, ip, &headers, &body).await.unwrap_or_else(|e| error_page(&ui, lang, &e))
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
    let remember = form.get("remember")?.is_some();
    let refusal = match flow::sign_in_for_request(
        server,
        &page,
        &device,
        &identifier,
        &password,
        remember,
        ip,
    )
    .await?
    {
        Ok(account) => {
            tracing::info!(did = %account.did, "signed in on the authorization page");
            return Ok(redirect_303(&page.href(Some(("account", &account.did)))));
        }
        Err(SignInRefusal::SecondFactor(_)) => {
            // The password was right: the second step, for the pending account.
            let purpose = PendingPurpose::Request(&page.view.request_id);
            let (did, _) = server.pending_sign_in(&device.id, purpose).await?.ok_or(UiError::Internal)?;
            return page.second_factor_page(StatusCode::OK, &did, None, false).await;
        }
        Err(refusal) => refusal,
    };
    let retry_after = match refusal {
        SignInRefusal::RateLimited(d) => Some(d.as_secs()),
        _ => None,
    };
    let t = page.text();
    let message = match refusal {
        SignInRefusal::Incomplete => t.refuse_incomplete.to_owned(),
        SignInRefusal::InvalidCredentials => t.refuse_credentials.to_owned(),
        SignInRefusal::RateLimited(d) => t.rate_limited(d.as_secs()),
        SignInRefusal::Unavailable => t.refuse_unavailable.to_owned(),
        SignInRefusal::TakenDown => t.refuse_taken_down.to_owned(),
        SignInRefusal::Deactivated => t.refuse_deactivated.to_owned(),
        SignInRefusal::OtherAccount => t.refuse_other_account.to_owned(),
        SignInRefusal::SecondFactor(_) => return Err(UiError::Internal),
    };
    let mut res = page.sign_in_page(refusal.status(), Some(&identifier), Some(&message)).await?;
    if let Some(v) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Ok(res)
}

/// The code (or recovery code) of a form of the second-factor step.
fn factor_proof(form: &Form) -> Result<(Option<SecondFactorProof<'_>>, bool), UiError> {
    let code = form.get("code")?.map(str::trim).filter(|c| !c.is_empty());
    let recovery = form.get("recovery_code")?.map(str::trim).filter(|c| !c.is_empty());
    Ok(match (code, recovery) {
        (Some(c), _) => (Some(SecondFactorProof::Totp(c)), false),
        (None, Some(r)) => (Some(SecondFactorProof::RecoveryCode(r)), true),
        (None, None) => (None, form.get("recovery_code")?.is_some()),
    })
}

/// A refused second factor: the step again with the words, `Retry-After` when locked.
fn with_retry_after(mut res: Response, refusal: FactorRefusal) -> Response {
    if let FactorRefusal::Locked(d) = refusal
        && let Ok(v) = HeaderValue::from_str(&d.as_secs().max(1).to_string())
    {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

async fn second_factor(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = Lang::from_headers(&headers);
    second_factor_inner(&server, &ui, ip, &headers, &body).await.unwrap_or_else(|e| error_page(&ui, lang, &e))
}

async fn second_factor_inner(
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
    let (proof, recovery) = factor_proof(&form)?;
    let purpose = PendingPurpose::Request(&page.view.request_id);
    let pending = server.pending_sign_in(&device.id, purpose).await?;
    let refusal =
        match flow::second_factor_any(server, &device, purpose, form.get("credential")?, proof, ip).await? {
            Ok(did) => return Ok(redirect_303(&page.href(Some(("account", &did))))),
            Err(r) => r,
        };
    let message = refusal.message(page.text());
    let res = match (refusal, pending) {
        (FactorRefusal::Expired, _) | (_, None) => {
            page.sign_in_page(refusal.status(), None, Some(&message)).await?
        }
        (_, Some((did, _))) => {
            page.second_factor_page(refusal.status(), &did, Some(&message), recovery).await?
        }
    };
    Ok(with_retry_after(res, refusal))
}

async fn consent(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = Lang::from_headers(&headers);
    consent_inner(&server, &ui, &headers, &body).await.unwrap_or_else(|e| error_page(&ui, lang, &e))
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
        Some("deny") => flow::deny(server, &page, &device).await?,
        Some("allow") => {
            let did = form.get("account")?.ok_or(UiError::BadForm)?;
            flow::allow(server, &page, &cookie, &device, did, &form.scopes).await?
        }
        _ => return Err(UiError::BadForm),
    };
    Ok(redirect_303(&redirect.url))
}
