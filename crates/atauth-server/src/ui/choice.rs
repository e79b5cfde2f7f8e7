//! Which page a request gets: the accounts signed in on the device, which of them are usable for
//! this request, and the choice between sign-in, account picker and consent (see [`super`]).

use crate::authorize::{AuthorizationView, login_hint_matches};
use crate::server::AuthServer;
use crate::store::{AccountRecord, AccountStatus, DeviceAccount, DeviceSession};

use super::{AUTHORIZE_PATH, UiError};

/// An account signed in on the device, with its record.
pub(crate) struct SignedIn {
    pub(crate) device: DeviceAccount,
    pub(crate) account: AccountRecord,
}

/// The device's accounts that still exist and whose sign-in is within the device-session lifetime.
pub(crate) async fn signed_in_accounts(
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

/// Whether this signed-in account could approve the request now: active (AS-AUTHZ-07), matching
/// the `login_hint` (AS-AUTHZ-02) and, for `prompt=login`, signed in after the request was made.
pub(crate) fn usable(view: &AuthorizationView, s: &SignedIn) -> bool {
    let fresh =
        view.request.prompt.as_deref() != Some("login") || s.device.authenticated_at >= view.created_at;
    s.account.status == AccountStatus::Active
        && login_hint_matches(view.request.login_hint.as_deref(), &s.account)
        && fresh
}

/// The authorization page's URL for this request, with one extra parameter.
pub(crate) fn page_href(client_id: &str, request_uri: &str, extra: Option<(&str, &str)>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("client_id", client_id);
    q.append_pair("request_uri", request_uri);
    if let Some((k, v)) = extra {
        q.append_pair(k, v);
    }
    format!("{AUTHORIZE_PATH}?{}", q.finish())
}

/// The page a request gets.
#[derive(Debug)]
pub(crate) enum Screen<'a> {
    /// Password sign-in.
    SignIn,
    /// The account picker.
    Picker,
    /// Consent for this account.
    Consent(&'a AccountRecord),
}

/// Whether this request may show the sign-up page: the server hosts handles, and the request
/// names no account (`login_hint`, AS-AUTHZ-02: a new account could not answer it).
pub(crate) fn sign_up_offered(server: &AuthServer, view: &AuthorizationView) -> bool {
    !server.config().handle_domains.is_empty() && view.request.login_hint.is_none()
}

/// Picks the page: `want_sign_in` (the "use another account" link) → sign-in; `account` of a
/// usable account → consent for it; `prompt=select_account` or `want_picker` → picker; one usable
/// account → consent; several → picker; none → sign-in. (The sign-up page is decided before this,
/// by the HTML pages only: [`sign_up_offered`].)
pub(crate) fn choose<'a>(
    view: &AuthorizationView,
    usable: &[&'a SignedIn],
    account: Option<&str>,
    want_sign_in: bool,
    want_picker: bool,
) -> Screen<'a> {
    if want_sign_in {
        return Screen::SignIn;
    }
    if let Some(did) = account
        && let Some(s) = usable.iter().find(|s| s.account.did == did)
    {
        return Screen::Consent(&s.account);
    }
    let select = view.request.prompt.as_deref() == Some("select_account") || want_picker;
    match usable {
        [] => Screen::SignIn,
        [one] if !select => Screen::Consent(&one.account),
        _ => Screen::Picker,
    }
}

/// The identifier to pre-fill on the sign-in page and whether it is locked (AS-AUTHZ-02): the
/// `login_hint`, a DID of a local account shown as its handle.
pub(crate) async fn prefill(
    server: &AuthServer,
    view: &AuthorizationView,
) -> Result<(String, bool), UiError> {
    let Some(hint) = view.request.login_hint.as_deref() else { return Ok((String::new(), false)) };
    if hint.starts_with("did:")
        && let Some(a) = server.stores().accounts.account_by_did(hint).await?
    {
        return Ok((a.handle, true));
    }
    Ok((hint.to_owned(), true))
}
