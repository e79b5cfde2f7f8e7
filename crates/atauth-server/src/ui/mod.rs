//! The server-rendered sign-in and consent UI of the authorization endpoint (AS-AUTHZ-01 … 07,
//! AS-CMD-06, AS-CODE-01). Plain HTML forms (askama templates, escaped by construction), no
//! JavaScript, one stylesheet served from the binary, nothing loaded from elsewhere.
//!
//! This module is the framework-free part: the device session and its CSRF token ([`device`]), the
//! page templates ([`pages`], [`scopes`]), the error pages' words ([`UiError`]) and which page a
//! request gets. The routes, handlers, client address and the CSRF check of a POST are the HTTP
//! side, [`crate::web::ui`].
//!
//! **Which page.** The handlers are thin: they read the device session ([`device`]), ask the core
//! ([`AuthServer::load_authorization_for`]) for the request, and pick a page. Of the accounts
//! signed in on the device (within [`crate::Lifetimes::device_session`]), the usable ones are
//! active (AS-AUTHZ-07), match the `login_hint` (AS-AUTHZ-02) and, for `prompt=login`, signed in
//! after the request was made. `&sign_in=1` (the "use another account" link) → sign-in;
//! `&account=<did>` of a usable account → consent for it; `prompt=select_account` → picker; one
//! usable account → consent; several → picker; none → sign-in, with the `login_hint` pre-filled
//! and locked (a DID hint of a local account is shown as its handle). Consent is remembered per
//! device, account and client after a remembered sign-in (AS-AUTHZ-05): a request of the same or a
//! narrower scope is approved without the page, a wider one or `prompt=consent` shows it again.
//! `prompt=create` (or `&sign_up=1`, the sign-in page's "Create an account" link) shows the
//! sign-up page when the server hosts handles and the request has no `login_hint`, else the
//! sign-in page; after signing up, the new account is signed in on the device and goes on to the
//! consent screen ([`crate::signup`]).
//!
//! **Security.** A device session cookie (`HttpOnly; SameSite=Lax`, `Secure` + `__Host-` over
//! https) identifies the browser; a pushed request is bound to the first device that opens it
//! (AS-PAR-08). Every form carries a CSRF token derived from that cookie, and `Origin` /
//! `Sec-Fetch-Site` must not say cross-site: a failing POST changes nothing and gets 403.
//! Sign-in is rate limited per identifier and per client address ([`crate::ratelimit`]) and
//! checks only the account password (app passwords, which the legacy endpoints accept, are never
//! accepted here). Every page is sent with `Content-Security-Policy` (no scripts,
//! `frame-ancestors 'none'`), `X-Frame-Options: DENY`, `no-store`, and `Referrer-Policy:
//! same-origin`, so our own POSTs keep their `Origin`. The CSP has no `form-action`: the consent
//! POST is answered by a redirect to the client, which browsers would check against it, and
//! custom-scheme redirect URIs make that list fragile.
//!
//! **Consent screen** (AS-CMD-06, CL-MD-13). The full `client_id` is always shown. Only clients the
//! operator lists (`AuthServerBuilder::trusted_clients`) get their `client_name`, logo and link with a
//! "Verified by this server" badge; any other discoverable client is titled by the host of its
//! `client_id` URL (which we fetched, so it is not the client's claim) and marked unverified; loopback
//! clients are "an app on this device", with a warning that anyone can make one. Branding is
//! configuration: its URLs become links only when absolute http(s), and the accent colour must look
//! like a colour (no `;`, `}` or quotes reach the stylesheet).
//!
//! **Language.** Each page is in the language its request's `Accept-Language` prefers of those
//! [`i18n`] has (English, German; English otherwise), with `<html lang>`, `Content-Language` and
//! `Vary: Accept-Language`; every word comes from [`i18n::Text`]. The operator's footer links
//! (home, terms, privacy, support) are labelled in that language.
//!
//! **Decisions.** Approve and deny go to [`AuthServer::approve`] / [`AuthServer::deny`], which
//! consume the request and answer the redirect: `code` (or `error=access_denied`), `state` and
//! always `iss` (AS-AUTHZ-06), sent as 303. The granted scope is what stayed ticked; `atproto`
//! cannot be dropped (the core refuses, AS-AUTHZ-04). Accounts signed in without "remember" are
//! signed out of the device once the request is decided.

// Pages are rendered only by the HTTP layer: without the `web` feature, nothing calls them.
#![cfg_attr(not(feature = "web"), allow(dead_code, unused_imports))]

pub(crate) mod account;
pub mod device;
pub mod i18n;
pub mod pages;
pub mod scopes;

mod choice;
mod error;

pub(crate) use choice::{
    Screen, SignedIn, choose, page_href, prefill, sign_up_offered, signed_in_accounts, usable,
};
pub use error::UiError;
pub use i18n::Lang;

use crate::server::AuthServer;
use pages::Brand;

/// The sign-in form's action.
pub const SIGN_IN_PATH: &str = "/oauth/authorize/sign-in";
/// The second-factor step's action ([`crate::second_factor`]): a TOTP or recovery code for the
/// pending sign-in of the request.
pub const SECOND_FACTOR_PATH: &str = "/oauth/authorize/second-factor";
/// The consent form's action.
pub const CONSENT_PATH: &str = "/oauth/authorize/consent";
/// The sign-up form's action within an authorization request.
pub const SIGN_UP_PATH: &str = "/oauth/authorize/sign-up";
/// The sign-up page outside an authorization request (`GET` the page, `POST` the form).
pub const ACCOUNT_SIGN_UP_PATH: &str = "/account/sign-up";
/// The authorization page.
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
/// The account page.
pub const ACCOUNT_PATH: &str = "/account";

/// Per-router state of the UI: what every page shows of the server, the stylesheet, the cookie mode
/// and the origin forms must come from.
#[derive(Debug)]
pub struct Ui {
    pub(crate) brand: Brand,
    pub(crate) css: String,
    pub(crate) secure: bool,
    pub(crate) origin: String,
    /// Whether the server offers sign-up (it hosts handles).
    pub(crate) sign_up: bool,
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
            sign_up: !config.handle_domains.is_empty(),
        }
    }
}
