//! The account page's routes ([`crate::ui::account`] says what it shows and what each action
//! does). The same device cookie as the consent UI signs the browser in; every POST passes the
//! same checks ([`check_post`]: form body, same origin, live device, CSRF token) and names the
//! `account` it acts for, which must be signed in on this device. A POST answers 303 back to the
//! page with a notice, except creating an app password, whose response is the page showing the new
//! password (once: it is never stored in the clear and never put in a URL). A refused POST changes
//! nothing.
//!
//! | route | what |
//! |---|---|
//! | `GET /account[?account=<did>]` | the page for a signed-in account (the most recent one, or `account`), else a sign-in form |
//! | `POST /account/sign-in` | password sign-in (rate limited, remembered on the device); 303 to the page |
//! | `POST /account/apps/sign-out` | `client_id`: revoke the app's token families, forget its consent |
//! | `POST /account/devices/sign-out` | `device`: leave that device, revoke what was approved on it |
//! | `POST /account/sign-out-everywhere` | every device, every token family, legacy sessions |
//! | `POST /account/app-passwords` | `name`, `privileged`: create; 200 with the password shown once |
//! | `POST /account/app-passwords/revoke` | `name`: revoke it and end its sessions |

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

use super::client_ip::ClientIp;
use super::csrf::{Form, check_post};
use super::render::{error_page, html, redirect_303, with_cookie};
use crate::account::SignInError;
use crate::legacy::LegacyError;
use crate::params::Params;
use crate::server::AuthServer;
use crate::store::{AccountStatus, DeviceSession, TokenHash};
use crate::ui::account as core;
use crate::ui::device::{self, DeviceCookie};
use crate::ui::i18n::Text;
use crate::ui::pages::{AccountPage, AccountPaths, AccountSignInPage, AccountView, NewPasswordView};
use crate::ui::{ACCOUNT_PATH, Lang, SignedIn, Ui, UiError, signed_in_accounts};
use crate::web::AppState;

/// `POST`: password sign-in on the account page.
pub(super) const ACCOUNT_SIGN_IN_PATH: &str = "/account/sign-in";
/// `POST`: sign out of one app.
pub(super) const APP_SIGN_OUT_PATH: &str = "/account/apps/sign-out";
/// `POST`: sign out of one device.
pub(super) const DEVICE_SIGN_OUT_PATH: &str = "/account/devices/sign-out";
/// `POST`: sign out everywhere.
pub(super) const EVERYWHERE_PATH: &str = "/account/sign-out-everywhere";
/// `POST`: create an app password.
pub(super) const APP_PASSWORD_CREATE_PATH: &str = "/account/app-passwords";
/// `POST`: revoke an app password.
pub(super) const APP_PASSWORD_REVOKE_PATH: &str = "/account/app-passwords/revoke";

const PATHS: AccountPaths = AccountPaths {
    sign_in: ACCOUNT_SIGN_IN_PATH,
    app_sign_out: APP_SIGN_OUT_PATH,
    device_sign_out: DEVICE_SIGN_OUT_PATH,
    everywhere: EVERYWHERE_PATH,
    app_password_create: APP_PASSWORD_CREATE_PATH,
    app_password_revoke: APP_PASSWORD_REVOKE_PATH,
};

/// The account page's routes (the caller adds the [`Ui`] extension).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(ACCOUNT_PATH, get(page))
        .route(ACCOUNT_SIGN_IN_PATH, post(sign_in))
        .route(APP_SIGN_OUT_PATH, post(app_sign_out))
        .route(DEVICE_SIGN_OUT_PATH, post(device_sign_out))
        .route(EVERYWHERE_PATH, post(everywhere))
        .route(APP_PASSWORD_CREATE_PATH, post(app_password_create))
        .route(APP_PASSWORD_REVOKE_PATH, post(app_password_revoke))
}

/// The notices a 303 back to the page may carry (`done=`): fixed words, nothing from the request.
fn notice(t: &Text, done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "signed-in" => t.notice_signed_in,
        "created" => t.notice_created,
        "app" => t.notice_app,
        "device" => t.notice_device,
        "revoked" => t.notice_revoked,
        _ => return None,
    })
}

pub(super) fn page_href(did: &str, done: &str) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("account", did);
    q.append_pair("done", done);
    format!("{ACCOUNT_PATH}?{}", q.finish())
}

// ----------------------------------------------------------------------------------------- GET ---

async fn page(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match page_inner(&server, &ui, ip, &headers, query.as_deref().unwrap_or_default()).await {
        Ok(res) => res,
        Err((e, cookie)) => with_cookie(error_page(&ui, Lang::from_headers(&headers), &e), cookie),
    }
}

async fn page_inner(
    server: &AuthServer,
    ui: &Ui,
    ip: Option<IpAddr>,
    headers: &HeaderMap,
    query: &str,
) -> Result<Response, (UiError, Option<String>)> {
    let params = Params::from_form(query.as_bytes());
    let get = |k: &str| params.get(k).map_err(|e| (UiError::from(e), None));
    let (wanted, done) = (get("account")?, get("done")?);
    let lang = Lang::from_headers(headers);
    let existing = device::find_device(server, headers, ui.secure).await.map_err(|e| (e.into(), None))?;
    let (cookie, device, set_cookie) = match existing {
        Some((c, d)) => (c, d, None),
        None => {
            let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
            let (c, d, set) =
                device::open_device(server, ui.secure, user_agent).await.map_err(|e| (e.into(), None))?;
            (c, d, Some(set))
        }
    };
    device::record_use(server, &device.id, ip).await;
    let signed_in = signed_in_accounts(server, Some(&device)).await.map_err(|e| (e, set_cookie.clone()))?;
    let res = if signed_in.is_empty() {
        Ok(sign_in_page(ui, lang, &cookie, StatusCode::OK, "", None))
    } else {
        let chosen = wanted.and_then(|w| signed_in.iter().find(|s| s.account.did == w));
        let current = chosen.or_else(|| signed_in.last()).map(|s| &s.account.did);
        let did = current.map(String::as_str).unwrap_or_default();
        let notice = notice(lang.text(), done);
        let view = AccountPageView { status: StatusCode::OK, notice, error: None, new_password: None };
        account_page(server, ui, lang, &cookie, &device, &signed_in, did, view).await
    };
    res.map(|r| with_cookie(r, set_cookie.clone())).map_err(|e| (e, set_cookie))
}

fn sign_in_page(
    ui: &Ui,
    lang: Lang,
    cookie: &DeviceCookie,
    status: StatusCode,
    identifier: &str,
    error: Option<&str>,
) -> Response {
    let csrf = cookie.csrf_token();
    let t = lang.text();
    html(
        status,
        lang,
        &AccountSignInPage {
            brand: &ui.brand,
            t,
            title: t.your_account,
            paths: &PATHS,
            csrf: &csrf,
            identifier,
            error,
            sign_up_href: ui.sign_up.then_some(crate::ui::ACCOUNT_SIGN_UP_PATH),
        },
    )
}

/// What differs between the renderings of the account page.
struct AccountPageView<'a> {
    status: StatusCode,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    new_password: Option<NewPasswordView>,
}

#[allow(clippy::too_many_arguments)] // one page, rendered from four places with what each has
async fn account_page(
    server: &AuthServer,
    ui: &Ui,
    lang: Lang,
    cookie: &DeviceCookie,
    device: &DeviceSession,
    signed_in: &[SignedIn],
    did: &str,
    view: AccountPageView<'_>,
) -> Result<Response, UiError> {
    let t = lang.text();
    let AccountPageView { status, notice, error, new_password } = view;
    let me = signed_in.iter().find(|s| s.account.did == did).ok_or(UiError::NotSignedIn)?;
    let device_sessions = core::devices_of(server, did).await?;
    let devices = core::device_views(&device_sessions, did, &device.id, t);
    let apps = core::connected_apps(server, &me.account, &devices, &device_sessions, t).await?;
    let app_passwords = core::app_passwords(server, did).await?;
    let others = signed_in
        .iter()
        .filter(|s| s.account.did != did)
        .map(|s| {
            let href = format!(
                "{ACCOUNT_PATH}?{}",
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("account", &s.account.did)
                    .finish()
            );
            AccountView::new(&s.account.did, &s.account.handle, href)
        })
        .collect();
    let csrf = cookie.csrf_token();
    Ok(html(
        status,
        lang,
        &AccountPage {
            brand: &ui.brand,
            t,
            title: t.your_account,
            paths: &PATHS,
            csrf: &csrf,
            account: AccountView::new(&me.account.did, &me.account.handle, String::new()),
            others,
            notice,
            error,
            new_password,
            apps,
            devices,
            app_passwords,
        },
    ))
}

// ---------------------------------------------------------------------------------------- POSTs ---

/// A checked POST of the account page, for an account signed in on this device.
struct AccountPost {
    form: Form,
    cookie: DeviceCookie,
    device: DeviceSession,
    signed_in: Vec<SignedIn>,
    did: String,
}

/// [`check_post`], then the `account` field must name an account signed in on this device.
async fn open_account_post(
    server: &AuthServer,
    ui: &Ui,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<AccountPost, UiError> {
    let form = Form::parse(headers, body)?;
    let (cookie, device) = check_post(server, ui, headers, &form).await?;
    let signed_in = signed_in_accounts(server, Some(&device)).await?;
    let did = form.get("account")?.ok_or(UiError::BadForm)?.to_owned();
    if !signed_in.iter().any(|s| s.account.did == did) {
        return Err(UiError::NotSignedIn);
    }
    Ok(AccountPost { form, cookie, device, signed_in, did })
}

async fn sign_in(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = Lang::from_headers(&headers);
    sign_in_inner(&server, &ui, lang, ip, &headers, &body).await.unwrap_or_else(|e| error_page(&ui, lang, &e))
}

async fn sign_in_inner(
    server: &AuthServer,
    ui: &Ui,
    lang: Lang,
    ip: Option<IpAddr>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, UiError> {
    let form = Form::parse(headers, body)?;
    let (cookie, device) = check_post(server, ui, headers, &form).await?;
    let identifier = form.get("identifier")?.unwrap_or_default().trim().to_owned();
    let password = SecretString::new(form.get("password")?.unwrap_or_default());
    let t = lang.text();
    let refuse = |status, msg: &str| Ok(sign_in_page(ui, lang, &cookie, status, &identifier, Some(msg)));
    if identifier.is_empty() || password.expose_secret().is_empty() {
        return refuse(StatusCode::BAD_REQUEST, t.refuse_incomplete);
    }
    let account = match server.sign_in_limited(&identifier, &password, ip).await {
        Ok(a) => a,
        Err(SignInError::InvalidCredentials) => {
            return refuse(StatusCode::UNAUTHORIZED, t.refuse_credentials);
        }
        Err(SignInError::RateLimited(r)) => {
            let secs = r.retry_after.as_secs();
            let msg = t.rate_limited(secs);
            let mut res =
                sign_in_page(ui, lang, &cookie, StatusCode::TOO_MANY_REQUESTS, &identifier, Some(&msg));
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return Ok(res);
        }
        Err(SignInError::AccountTakedown) => {
            return refuse(StatusCode::FORBIDDEN, t.refuse_taken_down);
        }
        Err(SignInError::Store(e)) => return Err(UiError::Store(e)),
        Err(e) => {
            tracing::error!(error = %e, "account page sign-in failed");
            return Err(UiError::Internal);
        }
    };
    if account.status != AccountStatus::Active {
        return refuse(StatusCode::FORBIDDEN, t.refuse_deactivated_account);
    }
    if !device::remember_sign_in(server, &device.id, &account.did, true, ip).await? {
        return Err(UiError::NoDevice);
    }
    tracing::info!(did = %account.did, "signed in on the account page");
    Ok(redirect_303(&page_href(&account.did, "signed-in")))
}

async fn app_sign_out(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let run = async {
        let p = open_account_post(&server, &ui, &headers, &body).await?;
        let client_id = p.form.get("client_id")?.filter(|c| !c.is_empty()).ok_or(UiError::BadForm)?;
        core::sign_out_app(&server, &p.did, client_id).await?;
        Ok::<_, UiError>(redirect_303(&page_href(&p.did, "app")))
    };
    run.await.unwrap_or_else(|e| error_page(&ui, lang, &e))
}

async fn device_sign_out(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let run = async {
        let p = open_account_post(&server, &ui, &headers, &body).await?;
        let hex_id = p.form.get("device")?.ok_or(UiError::BadForm)?;
        let id = hex::decode(hex_id)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(TokenHash)
            .ok_or(UiError::BadForm)?;
        if !core::sign_out_device(&server, &p.did, &id).await? {
            // Not one of this account's devices (or gone already): nothing to do, and nothing done.
            return Err(UiError::BadForm);
        }
        let back = if id == p.device.id {
            // Signed out here: the page shows the next account on this device, or the sign-in form.
            ACCOUNT_PATH.to_owned()
        } else {
            page_href(&p.did, "device")
        };
        Ok::<_, UiError>(redirect_303(&back))
    };
    run.await.unwrap_or_else(|e| error_page(&ui, lang, &e))
}

async fn everywhere(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let run = async {
        let p = open_account_post(&server, &ui, &headers, &body).await?;
        core::sign_out_everywhere(&server, &p.did).await?;
        Ok::<_, UiError>(redirect_303(ACCOUNT_PATH))
    };
    run.await.unwrap_or_else(|e| error_page(&ui, lang, &e))
}

async fn app_password_create(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let run = async {
        let p = open_account_post(&server, &ui, &headers, &body).await?;
        let name = p.form.get("name")?.unwrap_or_default().trim().to_owned();
        let privileged = p.form.get("privileged")?.is_some();
        let (status, error, new_password) =
            match server.create_app_password_for(&p.did, &name, privileged).await {
                Ok(created) => {
                    tracing::info!(did = %p.did, privileged, "account page: app password created");
                    let view = NewPasswordView {
                        name: created.name,
                        password: created.password,
                        privileged: created.privileged,
                    };
                    (StatusCode::OK, None, Some(view))
                }
                Err(LegacyError::InvalidRequest(_)) => {
                    (StatusCode::BAD_REQUEST, Some(lang.text().app_password_name_invalid), None)
                }
                Err(LegacyError::AppPasswordNameTaken) => {
                    (StatusCode::CONFLICT, Some(lang.text().app_password_name_taken), None)
                }
                Err(LegacyError::Store(e)) => return Err(UiError::Store(e)),
                Err(e) => {
                    tracing::error!(error = %e, "app password creation failed");
                    return Err(UiError::Internal);
                }
            };
        let view = AccountPageView { status, notice: None, error, new_password };
        account_page(&server, &ui, lang, &p.cookie, &p.device, &p.signed_in, &p.did, view).await
    };
    run.await.unwrap_or_else(|e| error_page(&ui, lang, &e))
}

async fn app_password_revoke(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let run = async {
        let p = open_account_post(&server, &ui, &headers, &body).await?;
        let name = p.form.get("name")?.filter(|n| !n.trim().is_empty()).ok_or(UiError::BadForm)?;
        if !server.legacy_store().revoke_app_password(&p.did, name.trim()).await? {
            return Err(UiError::BadForm);
        }
        tracing::info!(did = %p.did, "account page: app password revoked");
        Ok::<_, UiError>(redirect_303(&page_href(&p.did, "revoked")))
    };
    run.await.unwrap_or_else(|e| error_page(&ui, lang, &e))
}
