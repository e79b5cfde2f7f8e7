//! The sign-up routes ([`crate::signup`] has the rules; [`crate::ui`] when the page is shown).
//!
//! | route | what |
//! |---|---|
//! | `POST /oauth/authorize/sign-up` | the sign-up form of an authorization request: the new account is signed in on this device (kept with `remember`), then 303 back to the request's page, which shows the consent screen |
//! | `GET /account/sign-up` | the sign-up page on its own (a device cookie is set if the browser had none) |
//! | `POST /account/sign-up` | its form: the new account is signed in and remembered on this device, then 303 to `/account` |
//!
//! Every POST passes the checks of the other forms first ([`check_post`]: form body, same origin,
//! live device cookie, the device's CSRF token), so a cross-site or forged post changes nothing.
//! A refused sign-up re-renders the form with one clear message, the field it is about marked
//! invalid and focused, and what was typed kept (never the password): 400 for a bad field, 409 for
//! a taken handle or email, 429 (with `Retry-After`) when the address's attempts are spent, 503
//! when the shared limit store is down, 502 when the PLC directory refused. Nothing was created.

use std::net::IpAddr;
use std::sync::Arc;

use atauth_crypto::SecretString;
use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};

use super::client_ip::ClientIp;
use super::csrf::{Form, check_post};
use super::render::{error_page, html, redirect_303, with_cookie};
use super::{Post, open_post};
use crate::account::CreateAccountError;
use crate::server::AuthServer;
use crate::signup::SignUp;
use crate::store::AccountRecord;
use crate::ui::device::{self, DeviceCookie};
use crate::ui::i18n::{Lang, SignUpText};
use crate::ui::pages::{DomainOption, FieldError, SignUpForm, SignUpPage};
use crate::ui::{ACCOUNT_PATH, ACCOUNT_SIGN_UP_PATH, SIGN_UP_PATH, Ui, UiError};
use crate::web::AppState;

/// The sign-up routes (the caller adds the [`Ui`] extension).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(SIGN_UP_PATH, post(request_sign_up))
        .route(ACCOUNT_SIGN_UP_PATH, get(account_page).post(account_sign_up))
}

/// What the sign-up form sent (the password aside): kept to fill the form in again.
#[derive(Debug, Clone, Default)]
pub(super) struct SignUpValues {
    name: String,
    domain: String,
    email: String,
    invite: String,
    remember: bool,
}

impl SignUpValues {
    fn from_form(form: &Form) -> Result<Self, UiError> {
        let text = |k: &str| form.get(k).map(|v| v.unwrap_or_default().trim().to_owned());
        Ok(Self {
            name: text("handle")?,
            domain: text("domain")?,
            email: text("email")?,
            invite: text("invite_code")?,
            remember: form.get("remember")?.is_some(),
        })
    }

    /// The handle: what was typed in the name field when it holds a dot (a full handle), else the
    /// name followed by the chosen domain (the first one when none was chosen). A domain that is
    /// not the server's is kept as it came, so the core refuses it.
    fn handle(&self, server: &AuthServer) -> String {
        let name = self.name.trim_start_matches('@');
        if name.contains('.') {
            return name.to_owned();
        }
        let domains = &server.config().handle_domains;
        let domain = if self.domain.is_empty() {
            domains.first().map_or("", String::as_str)
        } else {
            self.domain.as_str()
        };
        let dot = if domain.starts_with('.') { "" } else { "." };
        format!("{name}{dot}{domain}")
    }

    /// The form view: the server's domains (the chosen one selected), what was typed, the error.
    pub(super) fn form(
        &self,
        server: &AuthServer,
        action: &'static str,
        hidden: Vec<(&'static str, String)>,
        remember_box: bool,
        error: Option<FieldError>,
    ) -> SignUpForm {
        let domains = server
            .config()
            .handle_domains
            .iter()
            .map(|d| DomainOption { value: d.clone(), selected: *d == self.domain })
            .collect();
        SignUpForm {
            action,
            hidden,
            name: self.name.clone(),
            domains,
            email: self.email.clone(),
            invite: self.invite.clone(),
            invite_required: server.config().sign_up.invite_required,
            remember_box,
            remember: self.remember,
            error,
        }
    }
}

/// A refused sign-up as the form shows it.
struct Refused {
    status: StatusCode,
    error: FieldError,
    /// Seconds, for `Retry-After` (rate limited).
    retry_after: Option<u64>,
}

impl Refused {
    fn new(status: StatusCode, field: Option<&'static str>, message: String) -> Self {
        Self { status, error: FieldError { field, message }, retry_after: None }
    }

    /// `res` with `Retry-After` when rate limited.
    fn finish(self, mut res: Response) -> Response {
        if let Some(v) = self.retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

/// A refused sign-up: the status and the form's message in the page's language (`s`), or `Err` for
/// an internal failure (an error page).
fn refusal(server: &AuthServer, s: &SignUpText, e: CreateAccountError) -> Result<Refused, UiError> {
    use CreateAccountError as E;
    let field = |status, field, message: &str| Ok(Refused::new(status, Some(field), message.to_owned()));
    let bad = StatusCode::BAD_REQUEST;
    match e {
        E::InvalidHandle(_) => field(bad, "handle", s.handle_invalid),
        E::HandleNameLength => field(bad, "handle", s.handle_name_length),
        E::UnsupportedDomain => field(bad, "handle", &s.unsupported_domain(&server.config().handle_domains)),
        E::HandleTaken => field(StatusCode::CONFLICT, "handle", s.handle_taken),
        E::EmailRequired => field(bad, "email", s.email_required),
        E::InvalidEmail => field(bad, "email", s.email_invalid),
        E::EmailTaken => field(StatusCode::CONFLICT, "email", s.email_taken),
        E::InvalidPassword => field(bad, "password", s.password_invalid),
        E::WeakPassword(w) => field(bad, "password", s.weak_password(w)),
        E::InviteCodeRequired => field(bad, "invite_code", s.invite_required),
        E::InviteCodeUnknown => field(bad, "invite_code", s.invite_unknown),
        E::InviteCodeUsed => field(bad, "invite_code", s.invite_used),
        E::InviteCodeDisabled => field(bad, "invite_code", s.invite_disabled),
        E::RateLimited(r) => {
            let message = s.rate_limited(r.retry_after.as_secs().div_ceil(60));
            let mut refused = Refused::new(StatusCode::TOO_MANY_REQUESTS, None, message);
            refused.retry_after = Some(r.retry_after.as_secs());
            Ok(refused)
        }
        E::LimiterUnavailable(_) => {
            Ok(Refused::new(StatusCode::SERVICE_UNAVAILABLE, None, s.unavailable.to_owned()))
        }
        E::Plc(err) => {
            tracing::error!(error = %err, "sign-up: registering the DID failed");
            Ok(Refused::new(StatusCode::BAD_GATEWAY, None, s.plc_failed.to_owned()))
        }
        E::Store(err) => Err(UiError::Store(err)),
        other => {
            tracing::error!(error = %other, "sign-up failed");
            Err(UiError::Internal)
        }
    }
}

/// Runs the sign-up of a checked form: the new account, or the page status and message of the
/// refusal in `lang`.
async fn create(
    server: &AuthServer,
    lang: Lang,
    values: &SignUpValues,
    form: &Form,
    ip: Option<IpAddr>,
) -> Result<Result<AccountRecord, Refused>, UiError> {
    if values.name.is_empty() {
        let message = lang.sign_up_text().choose_handle.to_owned();
        return Ok(Err(Refused::new(StatusCode::BAD_REQUEST, Some("handle"), message)));
    }
    let sign_up = SignUp {
        handle: values.handle(server),
        email: values.email.clone(),
        password: SecretString::new(form.get("password")?.unwrap_or_default()),
        invite_code: Some(values.invite.clone()).filter(|c| !c.is_empty()),
    };
    match server.sign_up(sign_up, ip).await {
        Ok(account) => Ok(Ok(account)),
        Err(e) => refusal(server, lang.sign_up_text(), e).map(Err),
    }
}

// ------------------------------------------------------------- within an authorization request ---

async fn request_sign_up(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    request_sign_up_inner(&server, &ui, ip, &headers, &body)
        .await
        .unwrap_or_else(|e| error_page(&ui, Lang::from_headers(&headers), &e))
}

async fn request_sign_up_inner(
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
    if !page.sign_up_offered() {
        return Err(UiError::SignUpUnavailable);
    }
    let values = SignUpValues::from_form(&form)?;
    let account = match create(server, page.text().lang, &values, &form, ip).await? {
        Ok(a) => a,
        Err(refused) => {
            let res = page.sign_up_page(refused.status, &values, Some(refused.error.clone()));
            return Ok(refused.finish(res));
        }
    };
    if !device::remember_sign_in(server, &device.id, &account.did, values.remember, ip).await? {
        return Err(UiError::NoDevice);
    }
    tracing::info!(did = %account.did, "signed up on the authorization page");
    Ok(redirect_303(&page.href(Some(("account", &account.did)))))
}

// ------------------------------------------------------------------------------------ on its own ---

fn account_sign_up_page(
    server: &AuthServer,
    ui: &Ui,
    lang: Lang,
    cookie: &DeviceCookie,
    status: StatusCode,
    values: &SignUpValues,
    error: Option<FieldError>,
) -> Response {
    let hidden = vec![("csrf_token", cookie.csrf_token())];
    let signup = values.form(server, ACCOUNT_SIGN_UP_PATH, hidden, false, error);
    html(
        status,
        lang,
        &SignUpPage {
            brand: &ui.brand,
            t: lang.text(),
            title: lang.sign_up_text().create_account,
            signup: &signup,
            client_label: None,
            form: None,
            sign_in_href: ACCOUNT_PATH.to_owned(),
        },
    )
}

async fn account_page(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Response {
    let run = async {
        if !ui.sign_up {
            return Err((UiError::SignUpUnavailable, None));
        }
        let existing =
            device::find_device(&server, &headers, ui.secure).await.map_err(|e| (e.into(), None))?;
        let (cookie, set_cookie) = match existing {
            Some((c, d)) => {
                device::record_use(&server, &d.id, ip).await;
                (c, None)
            }
            None => {
                let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
                let (c, _, set) = device::open_device(&server, ui.secure, user_agent)
                    .await
                    .map_err(|e| (e.into(), None))?;
                (c, Some(set))
            }
        };
        let lang = Lang::from_headers(&headers);
        let res =
            account_sign_up_page(&server, &ui, lang, &cookie, StatusCode::OK, &SignUpValues::default(), None);
        Ok::<_, (UiError, Option<String>)>(with_cookie(res, set_cookie))
    };
    run.await
        .unwrap_or_else(|(e, cookie)| with_cookie(error_page(&ui, Lang::from_headers(&headers), &e), cookie))
}

async fn account_sign_up(
    State(server): State<AuthServer>,
    Extension(ui): Extension<Arc<Ui>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let run = async {
        if !ui.sign_up {
            return Err(UiError::SignUpUnavailable);
        }
        let form = Form::parse(&headers, &body)?;
        let (cookie, device) = check_post(&server, &ui, &headers, &form).await?;
        let values = SignUpValues::from_form(&form)?;
        let lang = Lang::from_headers(&headers);
        let account = match create(&server, lang, &values, &form, ip).await? {
            Ok(a) => a,
            Err(refused) => {
                let res = account_sign_up_page(
                    &server,
                    &ui,
                    lang,
                    &cookie,
                    refused.status,
                    &values,
                    Some(refused.error.clone()),
                );
                return Ok(refused.finish(res));
            }
        };
        if !device::remember_sign_in(&server, &device.id, &account.did, true, ip).await? {
            return Err(UiError::NoDevice);
        }
        tracing::info!(did = %account.did, "signed up on the account page");
        Ok::<_, UiError>(redirect_303(&super::account::page_href(&account.did, "created")))
    };
    run.await.unwrap_or_else(|e| error_page(&ui, Lang::from_headers(&headers), &e))
}
