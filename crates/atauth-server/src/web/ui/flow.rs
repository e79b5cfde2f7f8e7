//! The steps of an authorization request in the browser, shared by the HTML pages (the handlers in
//! [`super`]) and the JSON consent API ([`super::api`]), so that both run the same checks in the
//! same order and differ only in how they answer: open the request for this device, sign in with a
//! password, approve or deny.

use std::net::IpAddr;
use std::time::Duration;

use atauth_crypto::SecretString;
use axum::http::{HeaderMap, StatusCode, header};

use super::render::Page;
use crate::account::SignInError;
use crate::authorize::{AuthorizationRedirect, AuthorizeOutcome, login_hint_matches};
use crate::passkey::PasskeyFlowError;
use crate::second_factor::{
    FactorKinds, PendingPurpose, PendingSignIn, SecondFactorError, SecondFactorProof,
};
use crate::server::AuthServer;
use crate::store::{AccountRecord, AccountStatus, DeviceAccount, DeviceSession};
use crate::ui::device::{self, DeviceCookie};
use crate::ui::i18n::Text;
use crate::ui::{Lang, Ui, UiError, signed_in_accounts};

/// A request opened for a browser: the core's redirect where it ends without a page
/// (`prompt=none` refusals, AS-AUTHZ-03), or its page.
pub(super) enum Opened<'a> {
    /// Send the browser to the client with this URL.
    Redirect(String),
    /// The request's page (bound to the device, AS-PAR-08).
    Page(Box<Page<'a>>),
}

/// Opens the request named by `client_id` and `request_uri` for the browser that sent `headers`
/// (`GET /oauth/authorize` and the JSON API's `GET …/api/request`): reads its device session,
/// asks the core with the accounts signed in there, and opens a device session when the browser
/// has none. Binds the request to the device (AS-PAR-08). The error and the success carry the
/// `Set-Cookie` of a new device session, to be sent whatever the answer.
pub(super) async fn open_request<'a>(
    server: &'a AuthServer,
    ui: &'a Ui,
    ip: Option<IpAddr>,
    headers: &HeaderMap,
    client_id: Option<&str>,
    request_uri: Option<&str>,
    lang: Lang,
) -> Result<(Opened<'a>, Option<String>), (UiError, Option<String>)> {
    let existing = device::find_device(server, headers, ui.secure).await.map_err(|e| (e.into(), None))?;
    let signed_in =
        signed_in_accounts(server, existing.as_ref().map(|(_, d)| d)).await.map_err(|e| (e, None))?;
    let records: Vec<AccountRecord> = signed_in.iter().map(|s| s.account.clone()).collect();
    let remembered: Vec<DeviceAccount> = signed_in.iter().map(|s| s.device.clone()).collect();
    let view = match server.load_authorization_for(client_id, request_uri, &records, &remembered).await {
        Ok(AuthorizeOutcome::Redirect(r)) => return Ok((Opened::Redirect(r.url), None)),
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
    let page = Page::new(server, ui, view, &cookie, signed_in, request_uri.unwrap_or_default(), lang);
    Ok((Opened::Page(Box::new(page)), set_cookie))
}

/// Loads the request of a state-changing request that passed the device and CSRF checks
/// ([`super::csrf::check_device`]), for that device: the core's redirect where the request ends
/// without a page, else its page. Nothing is consumed.
pub(super) async fn open_checked<'a>(
    server: &'a AuthServer,
    ui: &'a Ui,
    cookie: &DeviceCookie,
    device: &DeviceSession,
    client_id: Option<&str>,
    request_uri: Option<&str>,
    lang: Lang,
) -> Result<Opened<'a>, UiError> {
    let signed_in = signed_in_accounts(server, Some(device)).await?;
    let records: Vec<AccountRecord> = signed_in.iter().map(|s| s.account.clone()).collect();
    let remembered: Vec<DeviceAccount> = signed_in.iter().map(|s| s.device.clone()).collect();
    let view = match server.load_authorization_for(client_id, request_uri, &records, &remembered).await? {
        AuthorizeOutcome::Redirect(r) => return Ok(Opened::Redirect(r.url)),
        AuthorizeOutcome::Interaction(v) => v,
    };
    server.bind_request_device(&view.request_id, &cookie.device_id()).await?;
    let page = Page::new(server, ui, view, cookie, signed_in, request_uri.unwrap_or_default(), lang);
    Ok(Opened::Page(Box::new(page)))
}

/// Why a password sign-in for a request was refused: the page words it on the sign-in form, the
/// JSON API answers its code. Nothing was signed in. [`Self::SecondFactor`] is the one refusal
/// after a right password: the account has a second factor, a pending sign-in was stored, and
/// both surfaces ask for the factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SignInRefusal {
    /// The password was right, the account has a second factor: the pending sign-in is stored
    /// ([`crate::second_factor`]) and waits for one of these kinds.
    SecondFactor(FactorKinds),
    /// The identifier or the password is empty.
    Incomplete,
    /// Unknown identifier or wrong password (one answer for both).
    InvalidCredentials,
    /// Too many attempts ([`crate::ratelimit`]); retry after this long.
    RateLimited(Duration),
    /// The shared limit store cannot be reached: no password was checked (fail closed).
    Unavailable,
    /// The account is taken down.
    TakenDown,
    /// The account is deactivated (AS-AUTHZ-07).
    Deactivated,
    /// Another account than the request's `login_hint` (AS-AUTHZ-02).
    OtherAccount,
}

impl SignInRefusal {
    /// The HTTP status of the refusal, the same on the page and in the API.
    pub(super) fn status(self) -> StatusCode {
        match self {
            Self::Incomplete => StatusCode::BAD_REQUEST,
            Self::InvalidCredentials | Self::SecondFactor(_) => StatusCode::UNAUTHORIZED,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::TakenDown | Self::Deactivated | Self::OtherAccount => StatusCode::FORBIDDEN,
        }
    }
}

/// Signs `identifier` in on `device` for the request of `page`: the account password only (never
/// an app password), through the sign-in rate limits ([`AuthServer::sign_in_limited`]), then
/// the account must be active (AS-AUTHZ-07) and match the `login_hint` (AS-AUTHZ-02). An account
/// with a second factor is not signed in yet: a pending sign-in bound to this device and request
/// is stored and [`SignInRefusal::SecondFactor`] answered. Otherwise the account is recorded on
/// the device (kept after the request only with `remember`).
pub(super) async fn sign_in_for_request(
    server: &AuthServer,
    page: &Page<'_>,
    device: &DeviceSession,
    identifier: &str,
    password: &SecretString,
    remember: bool,
    ip: Option<IpAddr>,
) -> Result<Result<AccountRecord, SignInRefusal>, UiError> {
    if identifier.is_empty() || password.expose_secret().is_empty() {
        return Ok(Err(SignInRefusal::Incomplete));
    }
    let account = match server.sign_in_limited(identifier, password, ip).await {
        Ok(a) => a,
        Err(SignInError::InvalidCredentials) => return Ok(Err(SignInRefusal::InvalidCredentials)),
        Err(SignInError::RateLimited(r)) => return Ok(Err(SignInRefusal::RateLimited(r.retry_after))),
        // Fail closed (crate::ratelimit): no password was checked.
        Err(SignInError::LimiterUnavailable(_)) => return Ok(Err(SignInRefusal::Unavailable)),
        Err(SignInError::AccountTakedown) => return Ok(Err(SignInRefusal::TakenDown)),
        Err(SignInError::Store(e)) => return Err(UiError::Store(e)),
        Err(e) => {
            tracing::error!(error = %e, "sign-in failed");
            return Err(UiError::Internal);
        }
    };
    if account.status != AccountStatus::Active {
        // AS-AUTHZ-07: deactivated accounts cannot authorize; nothing is signed in.
        return Ok(Err(SignInRefusal::Deactivated));
    }
    if !login_hint_matches(page.view.request.login_hint.as_deref(), &account) {
        // AS-AUTHZ-02: only the hinted account; a different one would fail the client's `sub` check.
        return Ok(Err(SignInRefusal::OtherAccount));
    }
    let kinds = server.factor_kinds(&account.did).await?;
    if !kinds.is_empty() {
        let purpose = PendingPurpose::Request(&page.view.request_id);
        server.begin_pending_sign_in(&device.id, purpose, &account.did, PendingSignIn { remember }).await?;
        tracing::info!(did = %account.did, "password right; second factor required");
        return Ok(Err(SignInRefusal::SecondFactor(kinds)));
    }
    if !device::remember_sign_in(server, &device.id, &account.did, remember, ip).await? {
        return Err(UiError::NoDevice);
    }
    Ok(Ok(account))
}

/// Why a second factor did not complete a pending sign-in. Nothing was signed in; only a wrong
/// code counts toward the lockout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FactorRefusal {
    /// No code (or recovery code) in the form.
    Empty,
    /// No pending sign-in for this device and purpose: expired (five minutes), completed, or none.
    Expired,
    /// Wrong, replayed or used-up code.
    Invalid,
    /// Too many wrong codes: the account's second factor is locked for this long (nothing checked).
    Locked(Duration),
    /// The shared limit store cannot be reached (nothing checked, fail closed).
    Unavailable,
    /// A passkey assertion was refused ([`crate::passkey`]).
    Passkey(PasskeyRefusal),
}

/// Why a passkey did not complete a pending sign-in ([`crate::passkey::PasskeyFlowError`] as the
/// pages and the API word it). Nothing was signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PasskeyRefusal {
    /// No passkey challenge in progress (expired after five minutes, or answered already).
    Expired,
    /// The passkey is not registered (removed, or never added).
    Unknown,
    /// The passkey belongs to another account than the pending one: nothing was consumed.
    OtherAccount,
    /// Its signature counter did not advance: possibly a copy.
    Cloned,
    /// Any other failed check of the ceremony.
    Invalid,
    /// This server offers no passkeys (its issuer is an IP address).
    Unavailable,
}

impl PasskeyRefusal {
    fn status(self) -> StatusCode {
        match self {
            Self::Expired | Self::Unavailable => StatusCode::BAD_REQUEST,
            Self::OtherAccount => StatusCode::FORBIDDEN,
            Self::Unknown | Self::Cloned | Self::Invalid => StatusCode::UNAUTHORIZED,
        }
    }

    fn message(self, t: &Text) -> &'static str {
        match self {
            Self::Expired => t.passkey.refuse_expired,
            Self::Unknown => t.passkey.refuse_unknown,
            Self::OtherAccount => t.passkey.refuse_other_account,
            Self::Cloned => t.passkey.refuse_cloned,
            Self::Invalid | Self::Unavailable => t.passkey.refuse_invalid,
        }
    }

    /// The JSON API's `error` and `error_description`.
    pub(super) fn wire(self) -> (&'static str, &'static str) {
        match self {
            Self::Expired => (
                "passkey_expired",
                "No passkey challenge waits on this device (five minutes, used once): POST passkey-options again.",
            ),
            Self::Unknown => ("passkey_unknown", "This passkey is not registered here."),
            Self::OtherAccount => (
                "passkey_other_account",
                "This passkey belongs to another account than the one signing in; nothing was changed.",
            ),
            Self::Cloned => (
                "passkey_cloned",
                "The passkey's signature counter did not advance: it may have been copied. Refused.",
            ),
            Self::Invalid => ("passkey_invalid", "The passkey assertion failed verification."),
            Self::Unavailable => ("passkeys_unavailable", "This server offers no passkeys."),
        }
    }
}

impl FactorRefusal {
    /// The HTTP status, the same on the pages and in the API.
    pub(super) fn status(self) -> StatusCode {
        match self {
            Self::Empty | Self::Expired => StatusCode::BAD_REQUEST,
            Self::Invalid => StatusCode::UNAUTHORIZED,
            Self::Locked(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Passkey(p) => p.status(),
        }
    }

    /// The words of the step's page.
    pub(super) fn message(self, t: &Text) -> String {
        match self {
            Self::Empty => t.factor.refuse_empty.to_owned(),
            Self::Expired => t.factor.refuse_expired.to_owned(),
            Self::Invalid => t.factor.refuse_code.to_owned(),
            Self::Locked(d) => t.factor.locked(t.lang, d.as_secs()),
            Self::Unavailable => t.refuse_unavailable.to_owned(),
            Self::Passkey(p) => p.message(t).to_owned(),
        }
    }
}

/// The second factor of a step's form or API call: a passkey assertion when `credential` (the
/// browser's JSON) is there ([`second_factor_with_passkey`]), else the code
/// ([`second_factor_with_code`]).
pub(super) async fn second_factor_any(
    server: &AuthServer,
    device: &DeviceSession,
    purpose: PendingPurpose<'_>,
    credential: Option<&str>,
    proof: Option<SecondFactorProof<'_>>,
    ip: Option<IpAddr>,
) -> Result<Result<String, FactorRefusal>, UiError> {
    match credential.filter(|c| !c.is_empty()) {
        Some(credential) => second_factor_with_passkey(server, device, purpose, credential, ip).await,
        None => second_factor_with_code(server, device, purpose, proof, ip).await,
    }
}

/// Checks a passkey assertion against the pending sign-in of `device` for `purpose`
/// ([`AuthServer::verify_passkey_sign_in`]: the passkey must be the pending account's, the
/// challenge this device's, every check of the ceremony passes, the counter advances) and, when
/// right, completes it ([`complete_second_factor`]). Returns the account signed in.
pub(super) async fn second_factor_with_passkey(
    server: &AuthServer,
    device: &DeviceSession,
    purpose: PendingPurpose<'_>,
    credential: &str,
    ip: Option<IpAddr>,
) -> Result<Result<String, FactorRefusal>, UiError> {
    if server.pending_sign_in(&device.id, purpose).await?.is_none() {
        return Ok(Err(FactorRefusal::Expired));
    }
    let refusal = match server.verify_passkey_sign_in(&device.id, purpose, credential).await {
        Ok(did) => {
            return match complete_second_factor(server, device, purpose, ip).await? {
                Some(signed_in) if signed_in == did => Ok(Ok(did)),
                // Completed by a concurrent request, or replaced by another password sign-in.
                _ => Ok(Err(FactorRefusal::Expired)),
            };
        }
        Err(PasskeyFlowError::Expired) => PasskeyRefusal::Expired,
        Err(PasskeyFlowError::UnknownCredential) => PasskeyRefusal::Unknown,
        Err(PasskeyFlowError::OtherAccount) => PasskeyRefusal::OtherAccount,
        Err(PasskeyFlowError::Cloned) => PasskeyRefusal::Cloned,
        Err(PasskeyFlowError::Unavailable(_)) => PasskeyRefusal::Unavailable,
        Err(PasskeyFlowError::Invalid(e)) => {
            tracing::info!(error = %e, "passkey assertion refused");
            PasskeyRefusal::Invalid
        }
        Err(PasskeyFlowError::Limit(SecondFactorError::Locked(r))) => {
            return Ok(Err(FactorRefusal::Locked(r.retry_after)));
        }
        Err(PasskeyFlowError::Limit(SecondFactorError::LimiterUnavailable(_))) => {
            return Ok(Err(FactorRefusal::Unavailable));
        }
        Err(PasskeyFlowError::Store(e)) => return Err(UiError::Store(e)),
        Err(e) => {
            tracing::error!(error = %e, "passkey sign-in failed");
            return Err(UiError::Internal);
        }
    };
    Ok(Err(FactorRefusal::Passkey(refusal)))
}

/// Checks a TOTP or recovery code against the pending sign-in of `device` for `purpose` and, when
/// right, completes it ([`complete_second_factor`]). Returns the account signed in.
pub(super) async fn second_factor_with_code(
    server: &AuthServer,
    device: &DeviceSession,
    purpose: PendingPurpose<'_>,
    proof: Option<SecondFactorProof<'_>>,
    ip: Option<IpAddr>,
) -> Result<Result<String, FactorRefusal>, UiError> {
    let Some((did, _)) = server.pending_sign_in(&device.id, purpose).await? else {
        return Ok(Err(FactorRefusal::Expired));
    };
    let Some(proof) = proof else { return Ok(Err(FactorRefusal::Empty)) };
    match server.verify_second_factor(&did, proof).await {
        Ok(()) => {}
        Err(SecondFactorError::Invalid) => return Ok(Err(FactorRefusal::Invalid)),
        Err(SecondFactorError::Locked(r)) => return Ok(Err(FactorRefusal::Locked(r.retry_after))),
        Err(SecondFactorError::LimiterUnavailable(_)) => return Ok(Err(FactorRefusal::Unavailable)),
        Err(SecondFactorError::Store(e)) => return Err(UiError::Store(e)),
    }
    match complete_second_factor(server, device, purpose, ip).await? {
        Some(signed_in) if signed_in == did => Ok(Ok(did)),
        // Completed by a concurrent request, or replaced by another password sign-in meanwhile.
        _ => Ok(Err(FactorRefusal::Expired)),
    }
}

/// The one way a pending second-factor sign-in ends in a signed-in account, for every factor kind
/// (a TOTP or recovery code here, a passkey assertion elsewhere): after the caller checked the
/// factor for the pending account, takes the pending sign-in of `device` for `purpose` atomically
/// (so it completes once) and records the account on the device exactly as a password-only
/// sign-in does ([`sign_in_for_request`]; kept after the request only with `remember`). Returns
/// the account, or `None` when there was no pending sign-in (expired or completed meanwhile).
pub(crate) async fn complete_second_factor(
    server: &AuthServer,
    device: &DeviceSession,
    purpose: PendingPurpose<'_>,
    ip: Option<IpAddr>,
) -> Result<Option<String>, UiError> {
    let Some((did, pending)) = server.take_pending_sign_in(&device.id, purpose).await? else {
        return Ok(None);
    };
    if !device::remember_sign_in(server, &device.id, &did, pending.remember, ip).await? {
        return Err(UiError::NoDevice);
    }
    tracing::info!(did = %did, "second factor accepted; signed in");
    Ok(Some(did))
}

/// Approves the request of `page` for `did`, granting `ticked` (the scopes as chosen, in any
/// order; the core refuses a set without `atproto` or wider than requested, AS-AUTHZ-04, and then
/// nothing is consumed). The account must be usable on this device (signed in, active, the hinted
/// one; an inactive signed-in account is let through so that the core answers the client
/// `access_denied`, AS-AUTHZ-07). A remembered sign-in remembers the consent (AS-AUTHZ-05).
pub(super) async fn allow(
    server: &AuthServer,
    page: &Page<'_>,
    cookie: &DeviceCookie,
    device: &DeviceSession,
    did: &str,
    ticked: &[String],
) -> Result<AuthorizationRedirect, UiError> {
    if !page.usable().iter().any(|s| s.account.did == did)
        && !page.signed_in.iter().any(|s| s.account.did == did && s.account.status != AccountStatus::Active)
    {
        return Err(UiError::NotSignedIn);
    }
    // In the request's order, whichever list of the page (new, already allowed) a line was on.
    let requested: Vec<&str> = page.view.request.scope.split(' ').collect();
    let mut ticked: Vec<&str> = ticked.iter().map(String::as_str).collect();
    ticked.sort_by_key(|s| requested.iter().position(|r| r == s).unwrap_or(usize::MAX));
    let granted = ticked.join(" ");
    let redirect =
        server.approve(&page.view.request_id, did, Some(&granted), Some(&cookie.device_id())).await?;
    // AS-AUTHZ-05: a remembered sign-in remembers the consent too (what was granted, after any
    // unticking), so the next request of the same or a narrower scope skips the consent screen.
    if let Some(s) = page.signed_in.iter().find(|s| s.account.did == did && s.device.remember) {
        let client_id = &page.view.request.client_id;
        if let Err(e) = device::remember_consent(server, &device.id, &s.device, client_id, &granted).await {
            tracing::warn!(error = %e, "could not remember the consent");
        }
    }
    end_request(server, device).await;
    Ok(redirect)
}

/// Denies the request of `page`: the client gets `error=access_denied` (AS-AUTHZ-06).
pub(super) async fn deny(
    server: &AuthServer,
    page: &Page<'_>,
    device: &DeviceSession,
) -> Result<AuthorizationRedirect, UiError> {
    let redirect = server.deny(&page.view.request_id).await?;
    end_request(server, device).await;
    Ok(redirect)
}

/// After a decision: accounts signed in without "remember" were for this request only.
async fn end_request(server: &AuthServer, device: &DeviceSession) {
    if let Err(e) = server.stores().devices.remove_device_accounts(&device.id, None).await {
        tracing::warn!(error = %e, "could not sign out unremembered accounts");
    }
}
