//! Rendering: the pages of one request, error pages, and the headers every UI response carries.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::authorize::{AuthorizationView, AuthorizeError};
use crate::server::AuthServer;
use crate::store::AccountRecord;
use crate::ui::device::DeviceCookie;
use crate::ui::i18n::{Lang, Text};
use crate::ui::pages::{
    AccountView, AccountsPage, CSP, CSP_WITH_SCRIPT, ClientView, ConsentPage, ErrorPage, FormCtx, SignInPage,
};
use crate::ui::pages::{FieldError, SecondFactorPage, SignUpPage};
use crate::ui::{
    CONSENT_PATH, SECOND_FACTOR_PATH, SIGN_IN_PATH, SIGN_UP_PATH, Screen, SignedIn, Ui, UiError, choose,
    page_href, prefill, scopes, sign_up_offered, usable,
};

use super::signup::SignUpValues;

/// Adds the headers every UI response carries: anti-framing (CSP `frame-ancestors 'none'` and
/// `X-Frame-Options: DENY`), no sniffing, no caching, no referrer to other origins.
pub fn secure_headers(res: &mut Response) {
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// Renders a page in `lang` with `status` and the UI headers, `Content-Language` and `Vary:
/// Accept-Language` (the language was negotiated from it). A template that fails to render (it
/// cannot, short of a formatting error) becomes a bare 500.
pub(super) fn html(status: StatusCode, lang: Lang, page: &impl Template) -> Response {
    let mut res = match page.render() {
        Ok(body) => (status, body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
        }
    };
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(lang.tag()));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    secure_headers(&mut res);
    res
}

/// The error page of `e` in `lang` (internal causes logged here).
pub(super) fn error_page(ui: &Ui, lang: Lang, e: &UiError) -> Response {
    match e {
        UiError::Store(err) => tracing::error!(error = %err, "sign-in UI store"),
        UiError::Authorize(AuthorizeError::Store(err)) => {
            tracing::error!(error = %err, "sign-in UI store");
        }
        other => tracing::debug!(error = %other, "sign-in UI refused"),
    }
    let t = lang.text();
    let text = e.page(t);
    html(
        text.status,
        lang,
        &ErrorPage { brand: &ui.brand, t, title: text.words.heading, words: text.words, code: &text.code },
    )
}

/// A 303 to `url` with the UI headers.
pub(super) fn redirect_303(url: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    match HeaderValue::from_str(url) {
        Ok(loc) => {
            res.headers_mut().insert(header::LOCATION, loc);
        }
        Err(_) => return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response(),
    }
    secure_headers(&mut res);
    res
}

/// Lets a page load the passkey script ([`CSP_WITH_SCRIPT`] instead of [`CSP`]).
pub(super) fn allow_script(mut res: Response) -> Response {
    res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP_WITH_SCRIPT));
    res
}

/// Adds a `Set-Cookie` when there is one.
pub(super) fn with_cookie(mut res: Response, set_cookie: Option<String>) -> Response {
    if let Some(v) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// Everything a page of one request needs.
pub(super) struct Page<'a> {
    server: &'a AuthServer,
    ui: &'a Ui,
    pub(super) view: AuthorizationView,
    client: ClientView,
    form: FormCtx,
    pub(super) signed_in: Vec<SignedIn>,
    device_id: String,
    /// The device session's key (the hash of its cookie).
    device: crate::store::TokenHash,
    /// The words of the pages of this request (the JSON API uses English).
    t: &'static Text,
}

impl<'a> Page<'a> {
    pub(super) fn new(
        server: &'a AuthServer,
        ui: &'a Ui,
        view: AuthorizationView,
        cookie: &DeviceCookie,
        signed_in: Vec<SignedIn>,
        request_uri: &str,
        lang: Lang,
    ) -> Self {
        let t = lang.text();
        let client_id = view.request.client_id.clone();
        let trusted = server.config().trusted_clients.contains(&client_id);
        let client = ClientView::new(&view.client, &client_id, &view.request.redirect_uri, trusted, t);
        let form = FormCtx {
            client_id,
            request_uri: request_uri.to_owned(),
            csrf: cookie.csrf_token(),
            sign_in_action: SIGN_IN_PATH,
            consent_action: CONSENT_PATH,
        };
        Self {
            server,
            ui,
            view,
            client,
            form,
            signed_in,
            device_id: cookie.device_id(),
            device: cookie.hash(),
            t,
        }
    }

    pub(super) fn href(&self, extra: Option<(&str, &str)>) -> String {
        page_href(&self.form.client_id, &self.form.request_uri, extra)
    }

    pub(super) fn usable(&self) -> Vec<&SignedIn> {
        self.signed_in.iter().filter(|s| usable(&self.view, s)).collect()
    }

    pub(super) async fn sign_in_page(
        &self,
        status: StatusCode,
        identifier: Option<&str>,
        error: Option<&str>,
    ) -> Result<Response, UiError> {
        let (hinted, locked) = prefill(self.server, &self.view).await?;
        let identifier = if locked { hinted.as_str() } else { identifier.unwrap_or_default() };
        let accounts_href = (!self.usable().is_empty()).then(|| self.href(None));
        let sign_up_href = self.sign_up_offered().then(|| self.href(Some(("sign_up", "1"))));
        Ok(html(
            status,
            self.t.lang,
            &SignInPage {
                brand: &self.ui.brand,
                t: self.t,
                title: self.t.sign_in,
                client: &self.client,
                form: &self.form,
                identifier,
                locked,
                error,
                accounts_href,
                sign_up_href,
            },
        ))
    }

    /// The account whose password was right on this device for this request and who owes a
    /// second factor ([`crate::second_factor`]), if any: a reload of the page shows the step again.
    pub(super) async fn pending_second_factor(&self) -> Result<Option<String>, UiError> {
        let purpose = crate::second_factor::PendingPurpose::Request(&self.view.request_id);
        Ok(self.server.pending_sign_in(&self.device, purpose).await?.map(|(did, _)| did))
    }

    /// The second step of the sign-in for the pending account `did` ([`crate::second_factor`]),
    /// posting to [`SECOND_FACTOR_PATH`].
    pub(super) async fn second_factor_page(
        &self,
        status: StatusCode,
        did: &str,
        error: Option<&str>,
        recovery_open: bool,
    ) -> Result<Response, UiError> {
        let handle =
            self.server.stores().accounts.account_by_did(did).await?.map(|a| a.handle).unwrap_or_default();
        let kinds = self.server.factor_kinds(did).await?;
        let passkey_options = (kinds.passkey && self.server.passkeys_available())
            .then_some(super::passkey::SIGN_IN_PASSKEY_OPTIONS_PATH);
        let hidden = vec![
            ("client_id", self.form.client_id.clone()),
            ("request_uri", self.form.request_uri.clone()),
            ("csrf_token", self.form.csrf.clone()),
        ];
        Ok(html(
            status,
            self.t.lang,
            &SecondFactorPage {
                brand: &self.ui.brand,
                t: self.t,
                title: self.t.factor.heading,
                action: SECOND_FACTOR_PATH,
                hidden,
                handle: &handle,
                kinds,
                error,
                recovery_open,
                form: Some(&self.form),
                restart_href: self.href(Some(("sign_in", "1"))),
                passkey_options,
                script: passkey_options.map(|_| super::passkey::script_href()),
            },
        ))
        .map(|res| if passkey_options.is_some() { allow_script(res) } else { res })
    }

    /// Whether this request may show the sign-up page ([`sign_up_offered`]).
    pub(super) fn sign_up_offered(&self) -> bool {
        sign_up_offered(self.server, &self.view)
    }

    /// The sign-up page of this request, with what was typed and the refusal, if any.
    pub(super) fn sign_up_page(
        &self,
        status: StatusCode,
        values: &SignUpValues,
        error: Option<FieldError>,
    ) -> Response {
        let hidden = vec![
            ("client_id", self.form.client_id.clone()),
            ("request_uri", self.form.request_uri.clone()),
            ("csrf_token", self.form.csrf.clone()),
        ];
        let signup = values.form(self.server, SIGN_UP_PATH, hidden, true, error);
        html(
            status,
            self.t.lang,
            &SignUpPage {
                brand: &self.ui.brand,
                t: self.t,
                title: self.t.sign_up().create_account,
                signup: &signup,
                client_label: Some(self.client.label.as_str()),
                form: Some(&self.form),
                sign_in_href: self.href(Some(("sign_in", "1"))),
            },
        )
    }

    fn picker(&self) -> Response {
        let accounts = self
            .usable()
            .into_iter()
            .map(|s| {
                AccountView::new(
                    &s.account.did,
                    &s.account.handle,
                    self.href(Some(("account", &s.account.did))),
                )
            })
            .collect();
        html(
            StatusCode::OK,
            self.t.lang,
            &AccountsPage {
                brand: &self.ui.brand,
                t: self.t,
                title: self.t.choose_account,
                client: &self.client,
                form: &self.form,
                accounts,
                sign_in_href: self.href(Some(("sign_in", "1"))),
            },
        )
    }

    /// The words of this request's pages.
    pub(super) fn text(&self) -> &'static Text {
        self.t
    }

    /// The server the page belongs to.
    pub(super) fn server(&self) -> &'a AuthServer {
        self.server
    }

    /// The request's `request_uri`, as the browser named it.
    pub(super) fn request_uri(&self) -> &str {
        &self.form.request_uri
    }

    /// The client as the consent screen presents it.
    pub(super) fn client(&self) -> &ClientView {
        &self.client
    }

    /// This device's CSRF token, which every form (and JSON API call) of the request carries.
    pub(super) fn csrf_token(&self) -> &str {
        &self.form.csrf
    }

    /// The requested scopes in plain words ([`scopes`]), `include:` sets by their own words.
    pub(super) async fn scope_lines(&self) -> Vec<scopes::ScopeLine> {
        // The sets resolved at PAR are cached; one that fails now is shown by its NSID (the token
        // request will refuse it with invalid_scope).
        let requested = atauth_oauth::ScopeSet::parse(&self.view.request.scope).unwrap_or_default();
        let sets = self.server.permission_sets(&requested).await.unwrap_or_default();
        scopes::describe_all_with_sets(self.t.lang, &self.view.request.scope, &sets)
    }

    async fn consent(&self, account: &AccountRecord) -> Response {
        let (permissions, already) = self.split_granted(account, self.scope_lines().await);
        let optional_count = permissions.iter().chain(&already).filter(|p| !p.required).count();
        // A `login_hint` fixes the account (AS-AUTHZ-02); otherwise offer the others.
        let switch_href = if self.view.request.login_hint.is_some() {
            None
        } else if self.usable().len() > 1 {
            Some(self.href(Some(("choose", "1"))))
        } else {
            Some(self.href(Some(("sign_in", "1"))))
        };
        html(
            StatusCode::OK,
            self.t.lang,
            &ConsentPage {
                brand: &self.ui.brand,
                t: self.t,
                title: self.t.allow_access,
                client: &self.client,
                form: &self.form,
                account: AccountView::new(&account.did, &account.handle, String::new()),
                switch_href,
                permissions,
                already,
                optional_count,
            },
        )
    }

    /// Splits the lines into what is new and what `account` already granted this client on this
    /// device (AS-AUTHZ-05: a wider request asks again, showing what is new; what was granted
    /// before stays ticked, folded away). Nothing granted before, or nothing new (`prompt=consent`
    /// for a covered request): every line is "new" and nothing is folded.
    pub(super) fn split_granted(
        &self,
        account: &AccountRecord,
        lines: Vec<scopes::ScopeLine>,
    ) -> (Vec<scopes::ScopeLine>, Vec<scopes::ScopeLine>) {
        let client_id = &self.view.request.client_id;
        let granted: Vec<atauth_oauth::ScopeSet> = self
            .signed_in
            .iter()
            .filter(|s| s.account.did == account.did)
            .flat_map(|s| s.device.consents.iter())
            .filter(|c| &c.client_id == client_id)
            .filter_map(|c| atauth_oauth::ScopeSet::parse(&c.scope).ok())
            .collect();
        if granted.is_empty() {
            return (lines, Vec::new());
        }
        let covered = |scope: &str| {
            atauth_oauth::ScopeSet::parse(scope).is_ok_and(|one| granted.iter().any(|g| one.is_subset_of(g)))
        };
        let (already, new): (Vec<_>, Vec<_>) = lines.into_iter().partition(|l| covered(&l.scope));
        if new.is_empty() { (already, Vec::new()) } else { (new, already) }
    }

    /// Whether `account` granted this client the requested scope on this device before and the
    /// request does not ask to be asked again (`prompt=consent`, AS-AUTHZ-05).
    pub(super) fn consent_remembered(&self, account: &AccountRecord) -> bool {
        self.view.request.prompt.as_deref() != Some("consent")
            && self.signed_in.iter().any(|s| {
                s.account.did == account.did
                    && s.device.consent_covers(&self.view.request.client_id, &self.view.request.scope)
            })
    }

    /// What the request shows next ([`crate::ui`] decides which), for the page and the JSON API
    /// alike; a consent this device remembers is approved here, without a screen.
    pub(super) async fn next(
        &self,
        account: Option<&str>,
        want_sign_in: bool,
        want_picker: bool,
    ) -> Result<Next<'_>, UiError> {
        match choose(&self.view, &self.usable(), account, want_sign_in, want_picker) {
            Screen::Consent(account) if self.consent_remembered(account) => {
                // AS-AUTHZ-05: granted before on this device, same or wider: no page.
                let redirect = self
                    .server
                    .approve(&self.view.request_id, &account.did, None, Some(&self.device_id))
                    .await?;
                tracing::info!(did = %account.did, "remembered consent: approved without the consent page");
                Ok(Next::Redirect(redirect.url))
            }
            screen => Ok(Next::Show(screen)),
        }
    }

    /// Whether the request shows the sign-up page: sign-up is offered ([`sign_up_offered`]), and
    /// the request asks for it (`prompt=create`) or the browser followed the sign-in page's link
    /// (`want_sign_up`), unless the "use another account" link or a usable `account` was chosen.
    /// Decided here, before [`Self::next`], because only the HTML pages sign people up (the JSON
    /// consent API has no sign-up step).
    fn shows_sign_up(&self, account: Option<&str>, want_sign_in: bool, want_sign_up: bool) -> bool {
        let chosen = account.is_some_and(|did| self.usable().iter().any(|s| s.account.did == did));
        !want_sign_in
            && !chosen
            && self.sign_up_offered()
            && (want_sign_up || self.view.request.prompt.as_deref() == Some("create"))
    }

    /// The page the request gets.
    pub(super) async fn interaction(
        &self,
        account: Option<&str>,
        want_sign_in: bool,
        want_picker: bool,
        want_sign_up: bool,
    ) -> Result<Response, UiError> {
        if self.shows_sign_up(account, want_sign_in, want_sign_up) {
            return Ok(self.sign_up_page(StatusCode::OK, &SignUpValues::default(), None));
        }
        match self.next(account, want_sign_in, want_picker).await? {
            Next::Redirect(url) => Ok(redirect_303(&url)),
            Next::Show(Screen::SignIn) => self.sign_in_page(StatusCode::OK, None, None).await,
            Next::Show(Screen::Picker) => Ok(self.picker()),
            Next::Show(Screen::Consent(account)) => Ok(self.consent(account).await),
        }
    }
}

/// What a request shows next ([`Page::next`]).
pub(super) enum Next<'p> {
    /// The request ended without a screen (remembered consent): send the browser to this URL.
    Redirect(String),
    /// This screen.
    Show(Screen<'p>),
}
