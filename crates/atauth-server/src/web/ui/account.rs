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
//! | `POST /account/passkeys` | `name`, `credential` (the browser's answer to the options of `POST /account/passkeys/options`, see `passkey`): add a passkey |
//! | `POST /account/app-passwords/revoke` | `name`: revoke it and end its sessions |
//! | `POST /account/second-factor` | `code` or `recovery_code` after a right password of an account with a second factor; 303 to the page |
//! | `POST /account/totp/setup` | start setting up an authenticator app (the unconfirmed key lives five minutes in the pending state); 303 to the page showing it |
//! | `POST /account/totp/confirm` | `name`, `code`: store it; 200 with the recovery codes when it is the first factor |
//! | `POST /account/factors/remove` | `id`, `confirm` (a current code or the password): remove a factor |
//! | `POST /account/recovery-codes` | new recovery codes (the old ones die); 200 showing them once |

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
use super::flow::{self, FactorRefusal};
use super::render::{allow_script, error_page, html, redirect_303, with_cookie};
use crate::account::SignInError;
use crate::legacy::LegacyError;
use crate::params::Params;
use crate::passkey::PasskeyFlowError;
use crate::second_factor::{
    EnrolError, PendingPurpose, PendingSignIn, RecoveryCodes, SecondFactorError, SecondFactorProof,
};
use crate::server::AuthServer;
use crate::store::{AccountStatus, DeviceSession, FactorKind, TokenHash};
use crate::ui::account::{self as core, Stamp};
use crate::ui::device::{self, DeviceCookie};
use crate::ui::i18n::Text;
use crate::ui::pages::{
    AccountPage, AccountPaths, AccountSignInPage, AccountView, FactorSection, FactorView, NewPasswordView,
    SecondFactorPage, TotpSetupView,
};
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
/// `POST`: the second factor of the account page's sign-in.
pub(super) const ACCOUNT_SECOND_FACTOR_PATH: &str = "/account/second-factor";
/// `POST`: start setting up an authenticator app.
pub(super) const TOTP_SETUP_PATH: &str = "/account/totp/setup";
/// `POST`: confirm an authenticator app with a code.
pub(super) const TOTP_CONFIRM_PATH: &str = "/account/totp/confirm";
/// `POST`: remove a second factor.
pub(super) const FACTOR_REMOVE_PATH: &str = "/account/factors/remove";
/// `POST`: new recovery codes.
pub(super) const RECOVERY_CODES_PATH: &str = "/account/recovery-codes";
/// `POST`: add the passkey the browser made (`name`, `credential`).
pub(super) const PASSKEY_ADD_PATH: &str = "/account/passkeys";

const PATHS: AccountPaths = AccountPaths {
    sign_in: ACCOUNT_SIGN_IN_PATH,
    app_sign_out: APP_SIGN_OUT_PATH,
    device_sign_out: DEVICE_SIGN_OUT_PATH,
    everywhere: EVERYWHERE_PATH,
    app_password_create: APP_PASSWORD_CREATE_PATH,
    app_password_revoke: APP_PASSWORD_REVOKE_PATH,
    totp_setup: TOTP_SETUP_PATH,
    totp_confirm: TOTP_CONFIRM_PATH,
    factor_remove: FACTOR_REMOVE_PATH,
    recovery_codes: RECOVERY_CODES_PATH,
    passkey_options: super::passkey::ACCOUNT_PASSKEY_OPTIONS_PATH,
    passkey_add: PASSKEY_ADD_PATH,
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
        .route(ACCOUNT_SECOND_FACTOR_PATH, post(second_factor))
        .route(TOTP_SETUP_PATH, post(totp_setup))
        .route(TOTP_CONFIRM_PATH, post(totp_confirm))
        .route(FACTOR_REMOVE_PATH, post(factor_remove))
        .route(RECOVERY_CODES_PATH, post(recovery_codes))
        .route(PASSKEY_ADD_PATH, post(passkey_add))
}

/// The notices a 303 back to the page may carry (`done=`): fixed words, nothing from the request.
fn notice(t: &Text, done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "signed-in" => t.notice_signed_in,
        "created" => t.notice_created,
        "app" => t.notice_app,
        "device" => t.notice_device,
        "revoked" => t.notice_revoked,
        "factor-added" => t.factor.notice_added,
        "factor-removed" => t.factor.notice_removed,
        "passkey-added" => t.passkey.notice_added,
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
        let view = AccountPageView::plain(StatusCode::OK, notice, None);
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
    /// Recovery codes just made, shown once.
    new_codes: Option<RecoveryCodes>,
    /// A refused authenticator setup: the words and the name typed.
    setup_error: Option<(String, String)>,
}

impl<'a> AccountPageView<'a> {
    fn plain(status: StatusCode, notice: Option<&'a str>, error: Option<&'a str>) -> Self {
        Self { status, notice, error, new_password: None, new_codes: None, setup_error: None }
    }
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
    let AccountPageView { status, notice, error, new_password, new_codes, setup_error } = view;
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
    let factors =
        factor_section(server, t, &device.id, did, &me.account.handle, new_codes, setup_error).await?;
    let csrf = cookie.csrf_token();
    let offered = factors.passkeys_offered;
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
            factors,
            script: offered.then_some(super::passkey::script_href()),
        },
    ))
    .map(|res| if offered { allow_script(res) } else { res })
}

/// The "Two-step verification" section of `did` seen from the device `device_id`.
async fn factor_section(
    server: &AuthServer,
    t: &Text,
    device_id: &TokenHash,
    did: &str,
    handle: &str,
    new_codes: Option<RecoveryCodes>,
    setup_error: Option<(String, String)>,
) -> Result<FactorSection, UiError> {
    let factors = server.stores().factors.factors_for_account(did).await?;
    let apps = factors
        .iter()
        .filter(|f| f.kind == FactorKind::Totp)
        .map(|f| FactorView {
            id: f.id.clone(),
            name: f.name.clone(),
            added: Stamp::new(f.created_at),
            last_used: f.last_used_at.map(Stamp::new),
        })
        .collect();
    let codes_left = if factors.is_empty() {
        None
    } else {
        Some(t.factor.codes_left(t.lang, server.stores().factors.unused_recovery_codes(did).await?))
    };
    let setup = server.pending_totp_enrolment(device_id, did).await?.map(|secret| {
        let brand = &server.config().branding.name;
        let issuer = if brand.trim().is_empty() { "atauth" } else { brand.trim() };
        let (error, name) = setup_error.map_or((None, String::new()), |(e, n)| (Some(e), n));
        TotpSetupView {
            key: secret.to_base32_grouped(),
            uri: secret.otpauth_uri(issuer, handle),
            name,
            error,
        }
    });
    let new_codes = new_codes.map(|c| c.0.iter().map(|c| c.expose_secret().to_owned()).collect());
    let passkeys = factors
        .iter()
        .filter(|f| f.kind == FactorKind::Passkey)
        .map(|f| FactorView {
            id: f.id.clone(),
            name: f.name.clone(),
            added: Stamp::new(f.created_at),
            last_used: f.last_used_at.map(Stamp::new),
        })
        .collect();
    let passkeys_offered = server.passkeys_available();
    Ok(FactorSection { apps, codes_left, setup, new_codes, passkeys, passkeys_offered })
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
    if !server.factor_kinds(&account.did).await?.is_empty() {
        // The password was right; the second step (the account page always remembers).
        let pending = PendingSignIn { remember: true };
        server.begin_pending_sign_in(&device.id, PendingPurpose::AccountPage, &account.did, pending).await?;
        return second_factor_page(server, ui, lang, &cookie, StatusCode::OK, &account.did, None, false)
            .await;
    }
    if !device::remember_sign_in(server, &device.id, &account.did, true, ip).await? {
        return Err(UiError::NoDevice);
    }
    tracing::info!(did = %account.did, "signed in on the account page");
    Ok(redirect_303(&page_href(&account.did, "signed-in")))
}

/// The account page's second sign-in step for the pending account `did`.
#[allow(clippy::too_many_arguments)] // the step's page with what the caller has
async fn second_factor_page(
    server: &AuthServer,
    ui: &Ui,
    lang: Lang,
    cookie: &DeviceCookie,
    status: StatusCode,
    did: &str,
    error: Option<&str>,
    recovery_open: bool,
) -> Result<Response, UiError> {
    let t = lang.text();
    let handle = server.stores().accounts.account_by_did(did).await?.map(|a| a.handle).unwrap_or_default();
    let kinds = server.factor_kinds(did).await?;
    let passkey_options = (kinds.passkey && server.passkeys_available())
        .then_some(super::passkey::ACCOUNT_SIGN_IN_PASSKEY_OPTIONS_PATH);
    Ok(html(
        status,
        lang,
        &SecondFactorPage {
            brand: &ui.brand,
            t,
            title: t.factor.heading,
            action: ACCOUNT_SECOND_FACTOR_PATH,
            hidden: vec![("csrf_token", cookie.csrf_token())],
            handle: &handle,
            kinds,
            error,
            recovery_open,
            form: None,
            restart_href: ACCOUNT_PATH.to_owned(),
            passkey_options,
            script: passkey_options.map(|_| super::passkey::script_href()),
        },
    ))
    .map(|res| if passkey_options.is_some() { allow_script(res) } else { res })
}

/// `POST /account/second-factor`: the code of the account page's pending sign-in.
async fn second_factor(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let run = async {
        let form = Form::parse(&headers, &body)?;
        let (cookie, device) = check_post(&server, &ui, &headers, &form).await?;
        let (proof, recovery) = super::factor_proof(&form)?;
        let purpose = PendingPurpose::AccountPage;
        let pending = server.pending_sign_in(&device.id, purpose).await?;
        let refusal =
            match flow::second_factor_any(&server, &device, purpose, form.get("credential")?, proof, ip)
                .await?
            {
                Ok(did) => return Ok(redirect_303(&page_href(&did, "signed-in"))),
                Err(r) => r,
            };
        let t = lang.text();
        let message = refusal.message(t);
        let res = match (refusal, pending) {
            (FactorRefusal::Expired, _) | (_, None) => {
                sign_in_page(&ui, lang, &cookie, refusal.status(), "", Some(&message))
            }
            (_, Some((did, _))) => {
                second_factor_page(
                    &server,
                    &ui,
                    lang,
                    &cookie,
                    refusal.status(),
                    &did,
                    Some(&message),
                    recovery,
                )
                .await?
            }
        };
        Ok::<_, UiError>(super::with_retry_after(res, refusal))
    };
    run.await.unwrap_or_else(|e| error_page(&ui, lang, &e))
}

/// `POST /account/totp/setup`: a new key in the pending state; the page shows it.
async fn totp_setup(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let run = async {
        let p = open_account_post(&server, &ui, &headers, &body).await?;
        server.begin_totp_enrolment(&p.device.id, &p.did).await?;
        Ok::<_, UiError>(redirect_303(&format!("{}#setup-h", page_href(&p.did, "setup"))))
    };
    run.await.unwrap_or_else(|e| error_page(&ui, lang, &e))
}

/// `POST /account/totp/confirm`: the name and a current code of the key being set up.
async fn totp_confirm(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let run = async {
        let p = open_account_post(&server, &ui, &headers, &body).await?;
        let name = p.form.get("name")?.unwrap_or_default().trim().to_owned();
        let code = p.form.get("code")?.unwrap_or_default().to_owned();
        let t = lang.text();
        let view = match server.confirm_totp_enrolment(&p.device.id, &p.did, &name, &code).await {
            Ok(new_codes) => AccountPageView {
                new_codes,
                ..AccountPageView::plain(StatusCode::OK, Some(t.factor.notice_added), None)
            },
            Err(e) => {
                // An expired setup has no key to show again: the words go at the top.
                let expired = matches!(e, EnrolError::NotStarted);
                let (status, words) = match e {
                    EnrolError::NotStarted => (StatusCode::BAD_REQUEST, t.factor.refuse_setup_expired),
                    EnrolError::WrongCode => (StatusCode::BAD_REQUEST, t.factor.refuse_setup_code),
                    EnrolError::InvalidName => (StatusCode::BAD_REQUEST, t.factor.refuse_name),
                    EnrolError::NameTaken => (StatusCode::CONFLICT, t.factor.refuse_name_taken),
                    EnrolError::TooMany => (StatusCode::CONFLICT, t.factor.refuse_too_many),
                    EnrolError::Store(e) => return Err(UiError::Store(e)),
                };
                AccountPageView {
                    setup_error: (!expired).then(|| (words.to_owned(), name.clone())),
                    ..AccountPageView::plain(status, None, expired.then_some(words))
                }
            }
        };
        account_page(&server, &ui, lang, &p.cookie, &p.device, &p.signed_in, &p.did, view).await
    };
    run.await.unwrap_or_else(|e| error_page(&ui, lang, &e))
}

/// `POST /account/factors/remove`: `id`, confirmed by a current code (through the lockout) or
/// the account password (through the sign-in limits).
async fn factor_remove(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let run = async {
        let p = open_account_post(&server, &ui, &headers, &body).await?;
        let id = p.form.get("id")?.filter(|i| !i.is_empty()).ok_or(UiError::BadForm)?.to_owned();
        let confirm = SecretString::new(p.form.get("confirm")?.unwrap_or_default());
        let t = lang.text();
        if !server.stores().factors.factors_for_account(&p.did).await?.iter().any(|f| f.id == id) {
            return Err(UiError::BadForm);
        }
        let refuse = |status, words: String| {
            let view = AccountPageView::plain(status, None, None);
            (view, words)
        };
        let refused = match SecondFactorProof::from_token(confirm.expose_secret()) {
            SecondFactorProof::Totp(code) => {
                match server.verify_second_factor(&p.did, SecondFactorProof::Totp(code)).await {
                    Ok(()) => None,
                    Err(SecondFactorError::Invalid) => {
                        Some(refuse(StatusCode::UNAUTHORIZED, t.factor.refuse_remove.to_owned()))
                    }
                    Err(SecondFactorError::Locked(r)) => Some(refuse(
                        StatusCode::TOO_MANY_REQUESTS,
                        t.factor.locked(lang, r.retry_after.as_secs()),
                    )),
                    Err(SecondFactorError::LimiterUnavailable(_)) => {
                        Some(refuse(StatusCode::SERVICE_UNAVAILABLE, t.refuse_unavailable.to_owned()))
                    }
                    Err(SecondFactorError::Store(e)) => return Err(UiError::Store(e)),
                }
            }
            _ => match server.confirm_password(&p.did, &confirm, ip).await {
                Ok(true) => None,
                Ok(false) => Some(refuse(StatusCode::UNAUTHORIZED, t.factor.refuse_remove.to_owned())),
                Err(SignInError::RateLimited(r)) => {
                    Some(refuse(StatusCode::TOO_MANY_REQUESTS, t.rate_limited(r.retry_after.as_secs())))
                }
                Err(SignInError::LimiterUnavailable(_)) => {
                    Some(refuse(StatusCode::SERVICE_UNAVAILABLE, t.refuse_unavailable.to_owned()))
                }
                Err(SignInError::Store(e)) => return Err(UiError::Store(e)),
                Err(e) => {
                    tracing::error!(error = %e, "password check failed");
                    return Err(UiError::Internal);
                }
            },
        };
        if let Some((view, words)) = refused {
            let view = AccountPageView { error: Some(&words), ..view };
            return account_page(&server, &ui, lang, &p.cookie, &p.device, &p.signed_in, &p.did, view).await;
        }
        if !server.remove_second_factor(&p.did, &id).await? {
            return Err(UiError::BadForm);
        }
        Ok::<_, UiError>(redirect_303(&page_href(&p.did, "factor-removed")))
    };
    run.await.unwrap_or_else(|e| error_page(&ui, lang, &e))
}

/// `POST /account/recovery-codes`: a new set, shown once in the answer (the old set dies).
async fn recovery_codes(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let run = async {
        let p = open_account_post(&server, &ui, &headers, &body).await?;
        if server.factor_kinds(&p.did).await?.is_empty() {
            // Recovery codes stand in for a second factor; without one they mean nothing.
            return Err(UiError::BadForm);
        }
        let codes = server.regenerate_recovery_codes(&p.did).await?;
        let view =
            AccountPageView { new_codes: Some(codes), ..AccountPageView::plain(StatusCode::OK, None, None) };
        account_page(&server, &ui, lang, &p.cookie, &p.device, &p.signed_in, &p.did, view).await
    };
    run.await.unwrap_or_else(|e| error_page(&ui, lang, &e))
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
        let view = AccountPageView { new_password, ..AccountPageView::plain(status, None, error) };
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

/// `POST /account/passkeys`: `name` and `credential`, the browser's answer to the options the
/// page's script fetched (`POST /account/passkeys/options`). The first second factor of the
/// account answers the page with its new recovery codes (shown once); a later one 303s back with
/// a notice. A refusal shows the page with its words and stores nothing.
async fn passkey_add(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let run = async {
        let p = open_account_post(&server, &ui, &headers, &body).await?;
        let name = p.form.get("name")?.unwrap_or_default().to_owned();
        let credential = p.form.get("credential")?.unwrap_or_default().to_owned();
        let t = lang.text();
        let refused = |status, words: &'static str| (status, words);
        let (status, words) = match server
            .finish_passkey_registration(&p.device.id, &p.did, &name, &credential)
            .await
        {
            Ok(None) => return Ok(redirect_303(&page_href(&p.did, "passkey-added"))),
            Ok(Some(codes)) => {
                let view = AccountPageView {
                    new_codes: Some(codes),
                    ..AccountPageView::plain(StatusCode::OK, Some(t.passkey.notice_added), None)
                };
                return account_page(&server, &ui, lang, &p.cookie, &p.device, &p.signed_in, &p.did, view)
                    .await;
            }
            Err(PasskeyFlowError::InvalidName) => refused(StatusCode::BAD_REQUEST, t.factor.refuse_name),
            Err(PasskeyFlowError::NameTaken) => refused(StatusCode::CONFLICT, t.passkey.refuse_name_taken),
            Err(PasskeyFlowError::AlreadyRegistered) => {
                refused(StatusCode::CONFLICT, t.passkey.refuse_registered)
            }
            Err(PasskeyFlowError::TooMany) => refused(StatusCode::CONFLICT, t.passkey.refuse_too_many),
            Err(PasskeyFlowError::Expired) => refused(StatusCode::BAD_REQUEST, t.passkey.refuse_expired),
            Err(PasskeyFlowError::Store(e)) => return Err(UiError::Store(e)),
            Err(e) => {
                tracing::info!(did = %p.did, error = %e, "passkey registration refused");
                refused(StatusCode::BAD_REQUEST, t.passkey.refuse_invalid)
            }
        };
        let view = AccountPageView::plain(status, None, Some(words));
        account_page(&server, &ui, lang, &p.cookie, &p.device, &p.signed_in, &p.did, view).await
    };
    run.await.unwrap_or_else(|e| error_page(&ui, lang, &e))
}
