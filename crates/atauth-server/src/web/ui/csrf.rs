//! The checks of a POSTed form before anything else: `application/x-www-form-urlencoded`, same
//! origin, a live device session, and the device's CSRF token ([`crate::ui::device`]). The JSON
//! consent API (`api`) runs the same checks ([`check_device`]) with the token in a header.

use axum::body::Bytes;
use axum::http::{HeaderMap, header};

use crate::params::Params;
use crate::server::AuthServer;
use crate::store::DeviceSession;
use crate::ui::device::{self, DeviceCookie};
use crate::ui::{Ui, UiError};

/// A parsed form: single-valued fields (duplicates refused) and the repeated `scope` field.
pub(super) struct Form {
    params: Params,
    pub(super) scopes: Vec<String>,
}

impl Form {
    pub(super) fn parse(headers: &HeaderMap, body: &Bytes) -> Result<Self, UiError> {
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

    pub(super) fn get(&self, name: &str) -> Result<Option<&str>, UiError> {
        Ok(self.params.get(name)?)
    }
}

/// The checks every POST passes before anything else: same origin, a live device cookie, the
/// device's CSRF token.
pub(super) async fn check_post(
    server: &AuthServer,
    ui: &Ui,
    headers: &HeaderMap,
    form: &Form,
) -> Result<(DeviceCookie, DeviceSession), UiError> {
    check_device(server, ui, headers, form.get("csrf_token")?).await
}

/// The checks of any state-changing request of the UI, whichever way it carries its CSRF token (a
/// form field, or the JSON API's `X-CSRF-Token` header): `Origin` / `Sec-Fetch-Site` not
/// cross-site, a device cookie, `token` equal to that device's CSRF token (constant time), and the
/// device session still live. Nothing is written before all of them passed.
pub(super) async fn check_device(
    server: &AuthServer,
    ui: &Ui,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<(DeviceCookie, DeviceSession), UiError> {
    if !device::same_origin_post(headers, &ui.origin) {
        return Err(UiError::CrossOrigin);
    }
    let cookie = DeviceCookie::from_headers(headers, ui.secure).ok_or(UiError::NoDevice)?;
    let token = token.ok_or(UiError::Csrf)?;
    if !cookie.csrf_matches(token) {
        return Err(UiError::Csrf);
    }
    let device =
        server.stores().devices.get_device(&cookie.hash(), server.now()).await?.ok_or(UiError::NoDevice)?;
    Ok((cookie, device))
}
