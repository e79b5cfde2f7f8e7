//! The pages (askama templates under `templates/ui/`, HTML-escaped by construction) and what they
//! show; [`crate::web::ui`] renders them with the headers every page is sent with ([`CSP`]).

use askama::Template;
use atauth_oauth::ClientId;

use super::i18n::Text;
use super::scopes::ScopeLine;
use crate::client::ResolvedClient;
use crate::config::Branding;

/// The stylesheet, served from the binary at [`CSS_PATH`].
pub(crate) const BASE_CSS: &str = include_str!("../../templates/ui/ui.css");
/// Where the stylesheet is served.
pub const CSS_PATH: &str = "/oauth/assets/atauth-ui.css";
/// Default accent colour when the branding sets none.
const DEFAULT_ACCENT: &str = "#1366e8";

/// `Content-Security-Policy` of every page: nothing but our stylesheet and images (the operator's
/// and trusted clients' logos), no scripts at all, never framed.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' https: data:; \
                       base-uri 'none'; frame-ancestors 'none'";

/// `Content-Security-Policy` of the pages that offer passkeys (the account page, the
/// second-factor step): [`CSP`] plus our own script (`passkey.js`, no inline script) and its
/// `fetch` of a ceremony's options.
pub const CSP_WITH_SCRIPT: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
                                   connect-src 'self'; img-src 'self' https: data:; base-uri 'none'; \
                                   frame-ancestors 'none'";

/// A CSS colour from configuration, or `None` if it contains anything but the characters of hex,
/// `rgb()`/`hsl()` and named colours (no `;`, `}` or quotes can reach the stylesheet).
pub(crate) fn safe_color(value: &str) -> Option<&str> {
    let v = value.trim();
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"#(),.% ".contains(&b));
    ok.then_some(v)
}

/// The stylesheet with the branding's accent colour.
pub(crate) fn stylesheet(branding: &Branding) -> String {
    let accent = branding.primary_color.as_deref().and_then(safe_color).unwrap_or(DEFAULT_ACCENT);
    format!(":root {{ --accent: {accent}; }}\n{BASE_CSS}")
}

/// Which of the operator's links a footer link is (its words depend on the page's language).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkKind {
    Home,
    Terms,
    Privacy,
    Support,
}

/// A link in the footer.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub(crate) kind: LinkKind,
    pub(crate) href: String,
}

impl Text {
    /// The words of a footer link.
    pub(crate) fn link(&self, kind: &LinkKind) -> &'static str {
        match kind {
            LinkKind::Home => self.link_home,
            LinkKind::Terms => self.link_tos,
            LinkKind::Privacy => self.link_privacy,
            LinkKind::Support => self.link_support,
        }
    }
}

/// What the page frame shows of the server (branding is configuration).
#[derive(Debug, Clone)]
pub(crate) struct Brand {
    pub(crate) name: String,
    pub(crate) initial: String,
    pub(crate) logo_uri: Option<String>,
    pub(crate) css_href: String,
    pub(crate) links: Vec<Link>,
    pub(crate) host: String,
}

fn initial(s: &str) -> String {
    s.chars().find(|c| c.is_alphanumeric()).map_or_else(|| "?".to_owned(), |c| c.to_uppercase().collect())
}

/// Only absolute http(s) URLs reach `href`/`src` (askama escapes, but a `javascript:` URL would still
/// be a link).
pub(crate) fn web_url(u: Option<&str>) -> Option<String> {
    let u = u?.trim();
    let parsed = url::Url::parse(u).ok()?;
    matches!(parsed.scheme(), "https" | "http").then(|| u.to_owned())
}

/// The support link: a web page or a `mailto:` address (nothing else becomes a link).
pub(crate) fn support_url(u: Option<&str>) -> Option<String> {
    let u = u?.trim();
    match url::Url::parse(u) {
        Ok(parsed) if parsed.scheme() == "mailto" && !parsed.path().is_empty() => Some(u.to_owned()),
        _ => web_url(Some(u)),
    }
}

impl Brand {
    pub(crate) fn new(branding: &Branding, issuer: &str, css_version: &str) -> Self {
        let mut links = Vec::new();
        for (kind, uri) in [
            (LinkKind::Home, &branding.home_uri),
            (LinkKind::Terms, &branding.tos_uri),
            (LinkKind::Privacy, &branding.privacy_uri),
        ] {
            if let Some(href) = web_url(uri.as_deref()) {
                links.push(Link { kind, href });
            }
        }
        if let Some(href) = support_url(branding.support_uri.as_deref()) {
            links.push(Link { kind: LinkKind::Support, href });
        }
        Self {
            name: branding.name.clone(),
            initial: initial(&branding.name),
            logo_uri: web_url(branding.logo_uri.as_deref()),
            css_href: format!("{CSS_PATH}?v={css_version}"),
            links,
            host: url::Url::parse(issuer)
                .ok()
                .and_then(|u| {
                    u.host_str().map(|h| u.port().map_or_else(|| h.to_owned(), |p| format!("{h}:{p}")))
                })
                .unwrap_or_default(),
        }
    }
}

/// How the consent screen presents the client (AS-CMD-06, CL-MD-13).
#[derive(Debug, Clone)]
pub(crate) struct ClientView {
    /// The big name: `client_name` for trusted clients; otherwise the host of the `client_id` URL
    /// (which we fetched the metadata from, so it is not the client's claim), or for loopback
    /// clients a plain description.
    pub(crate) title: String,
    /// The short name in "to continue to …".
    pub(crate) label: String,
    pub(crate) initial: String,
    /// A loopback client (shown with a computer icon instead of an initial).
    pub(crate) loopback: bool,
    /// Always shown in full.
    pub(crate) client_id: String,
    pub(crate) trusted: bool,
    pub(crate) logo_uri: Option<String>,
    pub(crate) client_uri: Option<String>,
    pub(crate) badge: &'static str,
    pub(crate) badge_class: &'static str,
    pub(crate) notice: Option<String>,
    pub(crate) redirect_origin: String,
}

fn origin_of(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(u) if u.has_host() => u.origin().ascii_serialization(),
        Ok(u) => format!("{}:", u.scheme()),
        Err(_) => uri.to_owned(),
    }
}

impl ClientView {
    pub(crate) fn new(
        client: &ResolvedClient,
        raw_client_id: &str,
        redirect_uri: &str,
        trusted: bool,
        t: &Text,
    ) -> Self {
        let redirect_origin = origin_of(redirect_uri);
        match &client.client_id {
            ClientId::Loopback(_) => Self {
                title: t.loopback_title.to_owned(),
                label: t.loopback_label.to_owned(),
                initial: String::new(),
                loopback: true,
                client_id: raw_client_id.to_owned(),
                trusted: false,
                logo_uri: None,
                client_uri: None,
                badge: t.loopback_badge,
                badge_class: "loopback",
                notice: Some(t.loopback_notice.to_owned()),
                redirect_origin,
            },
            ClientId::Discoverable(d) => {
                let host = d.url().host_str().unwrap_or_default().to_owned();
                let md = &client.metadata;
                if trusted {
                    let name = md
                        .client_name
                        .clone()
                        .filter(|n| !n.trim().is_empty())
                        .unwrap_or_else(|| host.clone());
                    Self {
                        loopback: false,
                        initial: initial(&name),
                        title: name.clone(),
                        label: name,
                        client_id: raw_client_id.to_owned(),
                        trusted: true,
                        logo_uri: web_url(md.logo_uri.as_deref()).filter(|u| u.starts_with("https://")),
                        client_uri: web_url(md.client_uri.as_deref()),
                        badge: t.verified,
                        badge_class: "trusted",
                        notice: None,
                        redirect_origin,
                    }
                } else {
                    Self {
                        loopback: false,
                        initial: initial(&host),
                        title: host.clone(),
                        label: host.clone(),
                        client_id: raw_client_id.to_owned(),
                        trusted: false,
                        logo_uri: None,
                        client_uri: None,
                        badge: t.unverified,
                        badge_class: "unverified",
                        notice: Some(t.unverified_notice(&host)),
                        redirect_origin,
                    }
                }
            }
        }
    }
}

/// The hidden fields and actions every form of a request carries.
#[derive(Debug, Clone)]
pub(crate) struct FormCtx {
    pub(crate) client_id: String,
    pub(crate) request_uri: String,
    pub(crate) csrf: String,
    pub(crate) sign_in_action: &'static str,
    pub(crate) consent_action: &'static str,
}

/// An account in the picker or on the consent screen.
#[derive(Debug, Clone)]
pub(crate) struct AccountView {
    pub(crate) did: String,
    pub(crate) handle: String,
    pub(crate) initial: String,
    pub(crate) href: String,
}

impl AccountView {
    pub(crate) fn new(did: &str, handle: &str, href: String) -> Self {
        Self { did: did.to_owned(), handle: handle.to_owned(), initial: initial(handle), href }
    }
}

#[derive(Template)]
#[template(path = "ui/sign_in.html")]
pub(crate) struct SignInPage<'a> {
    pub(crate) brand: &'a Brand,
    /// The page's words, in the negotiated language.
    pub(crate) t: &'static Text,
    pub(crate) title: &'a str,
    pub(crate) client: &'a ClientView,
    pub(crate) form: &'a FormCtx,
    pub(crate) identifier: &'a str,
    pub(crate) locked: bool,
    pub(crate) error: Option<&'a str>,
    pub(crate) accounts_href: Option<String>,
    /// The sign-up page of this request, when sign-up is offered ([`crate::signup`]).
    pub(crate) sign_up_href: Option<String>,
}

/// A handle domain in the sign-up form's list.
#[derive(Debug, Clone)]
pub(crate) struct DomainOption {
    pub(crate) value: String,
    pub(crate) selected: bool,
}

/// A refusal shown on the sign-up form: the field it is about (`handle`, `email`, `password`,
/// `invite_code`; `None` for the whole form) and what to do.
#[derive(Debug, Clone)]
pub(crate) struct FieldError {
    pub(crate) field: Option<&'static str>,
    pub(crate) message: String,
}

/// The sign-up form ([`crate::signup`]): where it posts, its hidden fields, what was typed (never
/// the password) and the refusal, if any.
#[derive(Debug, Clone)]
pub(crate) struct SignUpForm {
    pub(crate) action: &'static str,
    pub(crate) hidden: Vec<(&'static str, String)>,
    pub(crate) name: String,
    pub(crate) domains: Vec<DomainOption>,
    pub(crate) email: String,
    pub(crate) invite: String,
    pub(crate) invite_required: bool,
    /// Offer "Remember this account on this device" (within an authorization request; the
    /// account page always remembers).
    pub(crate) remember_box: bool,
    pub(crate) remember: bool,
    pub(crate) error: Option<FieldError>,
}

impl SignUpForm {
    /// Whether the refusal is about `field` (it is then marked invalid and focused).
    pub(crate) fn error_is(&self, field: &str) -> bool {
        self.error.as_ref().is_some_and(|e| e.field == Some(field))
    }

    /// The single domain, when there is only one (shown after the name field).
    pub(crate) fn only_domain(&self) -> Option<&str> {
        match self.domains.as_slice() {
            [one] => Some(&one.value),
            _ => None,
        }
    }

    /// The domain shown in the example handle.
    pub(crate) fn example_domain(&self) -> &str {
        self.domains.iter().find(|d| d.selected).or(self.domains.first()).map_or("", |d| d.value.as_str())
    }
}

/// The sign-up page, within an authorization request (`client` and `form` for the cancel button)
/// or on its own (the account page's).
#[derive(Template)]
#[template(path = "ui/sign_up.html")]
pub(crate) struct SignUpPage<'a> {
    pub(crate) brand: &'a Brand,
    /// The page's words (the form's are [`Text::sign_up`]).
    pub(crate) t: &'static Text,
    pub(crate) title: &'a str,
    pub(crate) signup: &'a SignUpForm,
    pub(crate) client_label: Option<&'a str>,
    pub(crate) form: Option<&'a FormCtx>,
    pub(crate) sign_in_href: String,
}

#[derive(Template)]
#[template(path = "ui/accounts.html")]
pub(crate) struct AccountsPage<'a> {
    pub(crate) brand: &'a Brand,
    /// The page's words, in the negotiated language.
    pub(crate) t: &'static Text,
    pub(crate) title: &'a str,
    pub(crate) client: &'a ClientView,
    pub(crate) form: &'a FormCtx,
    pub(crate) accounts: Vec<AccountView>,
    pub(crate) sign_in_href: String,
}

#[derive(Template)]
#[template(path = "ui/consent.html")]
pub(crate) struct ConsentPage<'a> {
    pub(crate) brand: &'a Brand,
    /// The page's words, in the negotiated language.
    pub(crate) t: &'static Text,
    pub(crate) title: &'a str,
    pub(crate) client: &'a ClientView,
    pub(crate) form: &'a FormCtx,
    pub(crate) account: AccountView,
    pub(crate) switch_href: Option<String>,
    /// What the request asks that the account has not granted this client on this device (all of
    /// it when nothing was granted before).
    pub(crate) permissions: Vec<ScopeLine>,
    /// What it already granted (AS-AUTHZ-05), shown folded and still ticked.
    pub(crate) already: Vec<ScopeLine>,
    pub(crate) optional_count: usize,
}

/// The account page's form actions.
#[derive(Debug, Clone)]
pub(crate) struct AccountPaths {
    pub(crate) sign_in: &'static str,
    pub(crate) app_sign_out: &'static str,
    pub(crate) device_sign_out: &'static str,
    pub(crate) everywhere: &'static str,
    pub(crate) app_password_create: &'static str,
    pub(crate) app_password_revoke: &'static str,
    /// `POST`: start setting up an authenticator app.
    pub(crate) totp_setup: &'static str,
    /// `POST`: confirm it with a code.
    pub(crate) totp_confirm: &'static str,
    /// `POST`: remove a factor.
    pub(crate) factor_remove: &'static str,
    /// `POST`: new recovery codes.
    pub(crate) recovery_codes: &'static str,
    /// `POST` (the script, JSON): options for adding a passkey.
    pub(crate) passkey_options: &'static str,
    /// `POST`: add the passkey the browser made.
    pub(crate) passkey_add: &'static str,
}

/// A freshly created app password, shown once (a secret: `Debug` redacts it).
#[derive(Debug, Clone)]
pub(crate) struct NewPasswordView {
    pub(crate) name: String,
    pub(crate) password: atauth_crypto::SecretString,
    pub(crate) privileged: bool,
}

/// The account page's sign-in form.
#[derive(Template)]
#[template(path = "ui/account_sign_in.html")]
pub(crate) struct AccountSignInPage<'a> {
    pub(crate) brand: &'a Brand,
    /// The page's words, in the negotiated language.
    pub(crate) t: &'static Text,
    pub(crate) title: &'a str,
    pub(crate) paths: &'a AccountPaths,
    pub(crate) csrf: &'a str,
    pub(crate) identifier: &'a str,
    pub(crate) error: Option<&'a str>,
    /// The sign-up page, when this server offers sign-up.
    pub(crate) sign_up_href: Option<&'a str>,
}

/// The account page ([`super::account`]).
#[derive(Template)]
#[template(path = "ui/account.html")]
pub(crate) struct AccountPage<'a> {
    pub(crate) brand: &'a Brand,
    /// The page's words, in the negotiated language.
    pub(crate) t: &'static Text,
    pub(crate) title: &'a str,
    pub(crate) paths: &'a AccountPaths,
    pub(crate) csrf: &'a str,
    pub(crate) account: AccountView,
    /// The other accounts signed in on this device (`href` switches to them).
    pub(crate) others: Vec<AccountView>,
    pub(crate) notice: Option<&'a str>,
    pub(crate) error: Option<&'a str>,
    pub(crate) new_password: Option<NewPasswordView>,
    pub(crate) apps: Vec<super::account::AppView>,
    pub(crate) devices: Vec<super::account::DeviceView>,
    pub(crate) app_passwords: Vec<super::account::AppPasswordView>,
    pub(crate) factors: FactorSection,
    /// The passkey script, when this server offers passkeys.
    pub(crate) script: Option<&'static str>,
}

/// The second step of a sign-in (issue 16): the code from an authenticator app, or a recovery
/// code, for the account whose password was right. Shared by the authorization page and the
/// account page; each form posts to `action` with the `hidden` fields.
#[derive(Template)]
#[template(path = "ui/second_factor.html")]
pub(crate) struct SecondFactorPage<'a> {
    pub(crate) brand: &'a Brand,
    /// The page's words, in the negotiated language.
    pub(crate) t: &'static Text,
    pub(crate) title: &'a str,
    /// Where both forms post.
    pub(crate) action: &'a str,
    /// The hidden fields of both forms (CSRF token; the request's `client_id` and `request_uri`).
    pub(crate) hidden: Vec<(&'static str, String)>,
    /// The account signing in.
    pub(crate) handle: &'a str,
    /// Which kinds the account has (the code form only with an authenticator app).
    pub(crate) kinds: crate::second_factor::FactorKinds,
    pub(crate) error: Option<&'a str>,
    /// Open the recovery-code fold (after a refused recovery code).
    pub(crate) recovery_open: bool,
    /// The request's cancel form, on the authorization page.
    pub(crate) form: Option<&'a FormCtx>,
    /// The sign-in form again ("Sign in with another account").
    pub(crate) restart_href: String,
    /// Where the script gets a passkey sign-in's options, when the account has a passkey here.
    pub(crate) passkey_options: Option<&'static str>,
    /// The passkey script, with `passkey_options`.
    pub(crate) script: Option<&'static str>,
}

/// The account page's "Two-step verification" section.
#[derive(Debug, Default)]
pub(crate) struct FactorSection {
    /// The account's authenticator apps.
    pub(crate) apps: Vec<FactorView>,
    /// "N unused recovery codes left", when the account has a factor.
    pub(crate) codes_left: Option<String>,
    /// An authenticator app being set up on this device.
    pub(crate) setup: Option<TotpSetupView>,
    /// Recovery codes just made, shown once.
    pub(crate) new_codes: Option<Vec<String>>,
    /// The account's passkeys.
    pub(crate) passkeys: Vec<FactorView>,
    /// Whether this server offers passkeys (its RP ID is a name, not an address).
    pub(crate) passkeys_offered: bool,
}

/// One factor on the account page.
#[derive(Debug, Clone)]
pub(crate) struct FactorView {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) added: super::account::Stamp,
    pub(crate) last_used: Option<super::account::Stamp>,
}

/// The setup of an authenticator app: its key (grouped base32) and `otpauth://` link.
#[derive(Debug, Clone)]
pub(crate) struct TotpSetupView {
    pub(crate) key: String,
    pub(crate) uri: String,
    /// The name typed before a refusal.
    pub(crate) name: String,
    pub(crate) error: Option<String>,
}

#[derive(Template)]
#[template(path = "ui/error.html")]
pub(crate) struct ErrorPage<'a> {
    pub(crate) brand: &'a Brand,
    /// The page's words, in the negotiated language.
    pub(crate) t: &'static Text,
    pub(crate) title: &'a str,
    pub(crate) words: super::i18n::ErrorWords,
    pub(crate) code: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_cannot_escape_the_declaration() {
        assert_eq!(safe_color(" #ff0066 "), Some("#ff0066"));
        assert_eq!(safe_color("rgb(10, 20, 30)"), Some("rgb(10, 20, 30)"));
        assert_eq!(safe_color("red; } body { display:none"), None);
        assert_eq!(safe_color("url('x')"), None);
        let css = stylesheet(&Branding { primary_color: Some("}".into()), ..Branding::default() });
        assert!(css.starts_with(":root { --accent: #1366e8; }"));
    }

    #[test]
    fn only_web_urls_become_links() {
        assert_eq!(web_url(Some("javascript:alert(1)")), None);
        assert_eq!(web_url(Some("https://x.example/tos")).as_deref(), Some("https://x.example/tos"));
    }
}
