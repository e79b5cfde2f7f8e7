//! `GET /oauth/authorize` and the consent decision — the authorization endpoint's core state
//! machine (AS-AUTHZ-01 … 07, AS-CODE-01), without any UI.
//!
//! 1. [`AuthServer::load_authorization`] loads the pushed request named by `request_uri` (it must
//!    belong to `client_id`, be unexpired; reloads are fine, AS-AUTHZ-01) and returns what a consent
//!    page needs, or an error redirect where `prompt` forbids interaction (AS-AUTHZ-03).
//!    [`AuthServer::load_authorization_for`] is the same for a browser whose device session has
//!    accounts signed in ([`crate::ui`]): it decides `prompt=none` and `prompt=select_account` from
//!    them.
//! 2. The UI signs the user in ([`AuthServer::sign_in`], in [`crate::account`]) and asks for consent.
//! 3. [`AuthServer::approve`] or [`AuthServer::deny`] consume the request (single use) and produce the
//!    redirect to the client: `code` (or `error`), `state` and always `iss` (RFC 9207, AS-AUTHZ-06),
//!    in the query (default) or fragment, sent with HTTP 303.

use std::sync::Arc;

use atauth_oauth::{OAuthErrorCode, ScopeSet};
use http::StatusCode;

use crate::client::{ClientError, ResolvedClient};
use crate::error::OAuthError;
use crate::par::REQUEST_URI_PREFIX;
use crate::server::AuthServer;
use crate::store::{
    AccountRecord, AccountStatus, AuthorizationRequest, CodeRecord, PendingRequest, StoreError, TokenHash,
};

/// What a consent page shows and needs to post back.
#[derive(Debug, Clone)]
pub struct AuthorizationView {
    /// The pending request's id (post it back to approve/deny).
    pub request_id: String,
    /// The validated request.
    pub request: AuthorizationRequest,
    /// The client (show the full `client_id` URL; name/logo only for trusted clients, AS-CMD-06).
    pub client: Arc<ResolvedClient>,
    /// Unix seconds when the request was pushed (a `prompt=login` sign-in must be later).
    pub created_at: i64,
    /// Unix seconds when the request expires.
    pub expires_at: i64,
}

/// Where to send the browser (HTTP 303 to `url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRedirect {
    /// The full redirect URL (contains the code: treat as secret, never log).
    pub url: String,
}

/// The result of loading an authorization request.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum AuthorizeOutcome {
    /// The user must interact (sign in, consent).
    Interaction(AuthorizationView),
    /// Finished without interaction: redirect (an error for `prompt=none`).
    Redirect(AuthorizationRedirect),
}

/// Why the authorization step failed in a way that cannot be redirected to the client (shown to
/// the user instead), or a decision was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizeError {
    /// `client_id` query parameter missing.
    #[error("client_id is required")]
    MissingClientId,
    /// `request_uri` missing: PAR is required (SPEC-OAUTH).
    #[error("request_uri is required (pushed authorization requests only)")]
    MissingRequestUri,
    /// `request_uri` is not one of ours.
    #[error("request_uri is invalid")]
    InvalidRequestUri,
    /// Unknown, expired or already used request (AS-AUTHZ-01).
    #[error("this authorization request has expired or was already used")]
    UnknownRequest,
    /// The request belongs to another client (AS-AUTHZ-01).
    #[error("request_uri was not issued to this client")]
    ClientMismatch,
    /// The request is bound to another browser device (AS-PAR-08).
    #[error("this authorization request belongs to another device")]
    DeviceMismatch,
    /// The client's metadata no longer resolves.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The approving account does not exist.
    #[error("account not found")]
    AccountNotFound,
    /// The account differs from the request's `login_hint` (AS-AUTHZ-02).
    #[error("this request is for another account")]
    LoginHintMismatch,
    /// Granted scopes must be a subset of the requested ones and keep `atproto` (AS-AUTHZ-04).
    #[error("granted scope must be a subset of the requested scope and include atproto")]
    InvalidGrantedScope,
    /// Storage failed.
    #[error("storage failed: {0}")]
    Store(#[source] StoreError),
}

impl AuthorizeError {
    /// The wire error (the one place for this enum).
    pub fn oauth_error(&self) -> OAuthError {
        use OAuthErrorCode as C;
        match self {
            Self::Client(e) => e.oauth_error(),
            Self::Store(e) => crate::error::internal("authorize store", e),
            Self::UnknownRequest | Self::InvalidRequestUri => {
                OAuthError::bad_request(C::InvalidRequestUri, self.to_string())
            }
            Self::AccountNotFound | Self::LoginHintMismatch | Self::DeviceMismatch => {
                OAuthError::new(StatusCode::FORBIDDEN, C::AccessDenied, self.to_string())
            }
            Self::InvalidGrantedScope => OAuthError::bad_request(C::InvalidScope, self.to_string()),
            Self::MissingClientId | Self::MissingRequestUri | Self::ClientMismatch => {
                OAuthError::bad_request(C::InvalidRequest, self.to_string())
            }
        }
    }
}

/// Builds the redirect to the client: `redirect_uri` plus the parameters and `iss` (RFC 9207), in the
/// query or the fragment (AS-AUTHZ-06).
pub(crate) fn build_redirect(
    issuer: &str,
    request: &AuthorizationRequest,
    params: &[(&str, &str)],
) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    if let Some(state) = &request.state {
        ser.append_pair("state", state);
    }
    ser.append_pair("iss", issuer);
    let encoded = ser.finish();
    let uri = &request.redirect_uri;
    if request.response_mode.as_deref() == Some("fragment") {
        format!("{uri}#{encoded}")
    } else if uri.contains('?') {
        format!("{uri}&{encoded}")
    } else {
        format!("{uri}?{encoded}")
    }
}

/// Whether `account` may answer a request with this `login_hint` (a lowercase handle or a DID,
/// AS-PAR-03): no hint, or the hint names the account (AS-AUTHZ-02).
pub fn login_hint_matches(hint: Option<&str>, account: &AccountRecord) -> bool {
    hint.is_none_or(|h| h == account.did || h == account.handle)
}

/// Parses `urn:ietf:params:oauth:request_uri:<id>`.
pub fn request_id_from_uri(request_uri: &str) -> Option<&str> {
    request_uri.strip_prefix(REQUEST_URI_PREFIX).filter(|id| id.starts_with("req-") && id.len() <= 64)
}

impl AuthServer {
    /// Loads the pushed request for the authorization page (AS-AUTHZ-01). Not consuming: reloads work.
    /// For a caller without device sessions: `prompt=none` and `prompt=select_account` end in an
    /// error redirect.
    pub async fn load_authorization(
        &self,
        client_id: Option<&str>,
        request_uri: Option<&str>,
    ) -> Result<AuthorizeOutcome, AuthorizeError> {
        self.load_authorization_for(client_id, request_uri, &[], &[]).await
    }

    /// [`Self::load_authorization`] for a browser on which the `signed_in` accounts are signed in
    /// (and still recent enough, which the caller decides). Of those, the ones that could approve
    /// this request count: active (AS-AUTHZ-07) and matching its `login_hint` (AS-AUTHZ-02).
    /// AS-AUTHZ-03, as the reference decides:
    ///
    /// - `prompt=none`: no interaction allowed. None signed in → `login_required`; several →
    ///   `account_selection_required`; one → `consent_required` unless that account already
    ///   granted this client the requested scope on this device (`remembered`, AS-AUTHZ-05), in
    ///   which case the UI approves without a page.
    /// - `prompt=select_account` with nobody signed in → `account_selection_required`.
    ///
    /// Each of these consumes the request and redirects with the error, `state` and `iss`.
    pub async fn load_authorization_for(
        &self,
        client_id: Option<&str>,
        request_uri: Option<&str>,
        signed_in: &[AccountRecord],
        remembered: &[crate::store::DeviceAccount],
    ) -> Result<AuthorizeOutcome, AuthorizeError> {
        let now = self.now();
        let client_id = client_id.ok_or(AuthorizeError::MissingClientId)?;
        let request_uri = request_uri.ok_or(AuthorizeError::MissingRequestUri)?;
        let id = request_id_from_uri(request_uri).ok_or(AuthorizeError::InvalidRequestUri)?;
        let pending = self
            .inner
            .stores
            .requests
            .get_request(id, now)
            .await
            .map_err(AuthorizeError::Store)?
            .ok_or(AuthorizeError::UnknownRequest)?;
        if pending.request.client_id != client_id {
            return Err(AuthorizeError::ClientMismatch);
        }
        let client = self.inner.clients.resolve(client_id, now).await?;
        let hint = pending.request.login_hint.as_deref();
        let usable: Vec<&AccountRecord> = signed_in
            .iter()
            .filter(|a| a.status == AccountStatus::Active && login_hint_matches(hint, a))
            .collect();
        let consented = |a: &AccountRecord| {
            remembered.iter().any(|d| d.did == a.did && d.consent_covers(client_id, &pending.request.scope))
        };
        let refusal = match (pending.request.prompt.as_deref(), usable.as_slice()) {
            (Some("none"), []) => Some(("login_required", "Login required")),
            (Some("none"), [one]) if !consented(one) => Some(("consent_required", "Consent required")),
            (Some("none"), [_]) => None,
            (Some("none"), _) => Some(("account_selection_required", "Account selection required")),
            (Some("select_account"), []) => Some(("account_selection_required", "No account to select")),
            _ => None,
        };
        if let Some((error, description)) = refusal {
            let redirect = self.finish_with_error(&pending, error, description).await?;
            return Ok(AuthorizeOutcome::Redirect(redirect));
        }
        Ok(AuthorizeOutcome::Interaction(AuthorizationView {
            request_id: pending.id.clone(),
            created_at: pending.created_at,
            expires_at: pending.expires_at,
            request: pending.request,
            client,
        }))
    }

    /// Binds a pending request to the browser device that first viewed it (AS-PAR-08). For the UI.
    pub async fn bind_request_device(&self, request_id: &str, device_id: &str) -> Result<(), AuthorizeError> {
        let ok = self
            .inner
            .stores
            .requests
            .bind_request_device(request_id, device_id, self.now())
            .await
            .map_err(AuthorizeError::Store)?;
        if ok { Ok(()) } else { Err(AuthorizeError::DeviceMismatch) }
    }

    async fn take(&self, request_id: &str) -> Result<PendingRequest, AuthorizeError> {
        self.inner
            .stores
            .requests
            .take_request(request_id, self.now())
            .await
            .map_err(AuthorizeError::Store)?
            .ok_or(AuthorizeError::UnknownRequest)
    }

    async fn finish_with_error(
        &self,
        pending: &PendingRequest,
        error: &str,
        description: &str,
    ) -> Result<AuthorizationRedirect, AuthorizeError> {
        let taken = self.take(&pending.id).await?;
        Ok(AuthorizationRedirect {
            url: build_redirect(
                self.issuer(),
                &taken.request,
                &[("error", error), ("error_description", description)],
            ),
        })
    }

    /// The user (already signed in as `account_did`) approved `request_id`, granting `granted_scope`
    /// (default: everything requested). Issues a single-use code and returns the redirect
    /// (AS-AUTHZ-04/06/07, AS-CODE-01). `device_id` is the browser device, when the UI has one.
    pub async fn approve(
        &self,
        request_id: &str,
        account_did: &str,
        granted_scope: Option<&str>,
        device_id: Option<&str>,
    ) -> Result<AuthorizationRedirect, AuthorizeError> {
        let now = self.now();
        let stores = &self.inner.stores;
        let pending = stores
            .requests
            .get_request(request_id, now)
            .await
            .map_err(AuthorizeError::Store)?
            .ok_or(AuthorizeError::UnknownRequest)?;
        if let (Some(bound), Some(dev)) = (&pending.device_id, device_id)
            && bound != dev
        {
            return Err(AuthorizeError::DeviceMismatch);
        }
        let account = stores
            .accounts
            .account_by_did(account_did)
            .await
            .map_err(AuthorizeError::Store)?
            .ok_or(AuthorizeError::AccountNotFound)?;
        if !login_hint_matches(pending.request.login_hint.as_deref(), &account) {
            return Err(AuthorizeError::LoginHintMismatch);
        }
        if account.status != AccountStatus::Active {
            // AS-AUTHZ-07: deactivated / taken-down accounts cannot authorize.
            return self.finish_with_error(&pending, "access_denied", "Account is not active").await;
        }
        let requested =
            ScopeSet::parse(&pending.request.scope).map_err(|_| AuthorizeError::InvalidGrantedScope)?;
        let granted = match granted_scope {
            Some(g) => ScopeSet::parse(g).map_err(|_| AuthorizeError::InvalidGrantedScope)?,
            None => requested.clone(),
        };
        if !granted.has_atproto() || !granted.is_subset_of(&requested) {
            return Err(AuthorizeError::InvalidGrantedScope);
        }
        let taken = self.take(request_id).await?;
        let code = format!("cod-{}", hex::encode(atauth_crypto::random::random_bytes::<32>()));
        let lifetime = i64::try_from(self.config().lifetimes.code.as_secs()).unwrap_or(300);
        let scope = granted.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ");
        stores
            .tokens
            .put_code(CodeRecord {
                code_hash: TokenHash::of(&code),
                request: taken.request.clone(),
                sub: account.did.clone(),
                scope,
                dpop_jkt: taken.dpop_jkt.clone(),
                client_auth: taken.client_auth.clone(),
                created_at: now,
                expires_at: now + lifetime,
                used: false,
                session_id: None,
                device_id: device_id.map(str::to_owned).or(taken.device_id.clone()),
            })
            .await
            .map_err(AuthorizeError::Store)?;
        metrics::counter!("atauth_authorizations_total", "outcome" => "approved").increment(1);
        Ok(AuthorizationRedirect { url: build_redirect(self.issuer(), &taken.request, &[("code", &code)]) })
    }

    /// The user refused: consumes the request and redirects with `error=access_denied` (AS-AUTHZ-06).
    pub async fn deny(&self, request_id: &str) -> Result<AuthorizationRedirect, AuthorizeError> {
        let taken = self.take(request_id).await?;
        metrics::counter!("atauth_authorizations_total", "outcome" => "denied").increment(1);
        Ok(AuthorizationRedirect {
            url: build_redirect(
                self.issuer(),
                &taken.request,
                &[("error", "access_denied"), ("error_description", "Access denied")],
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(redirect: &str, mode: Option<&str>) -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: "http://localhost".into(),
            redirect_uri: redirect.into(),
            scope: "atproto".into(),
            state: Some("s t".into()),
            code_challenge: "x".into(),
            login_hint: None,
            prompt: None,
            response_mode: mode.map(str::to_owned),
        }
    }

    #[test]
    fn as_authz_06_redirect_carries_code_state_and_iss() {
        assert_eq!(
            build_redirect("https://as.example", &req("http://127.0.0.1/cb", None), &[("code", "cod-1")]),
            "http://127.0.0.1/cb?code=cod-1&state=s+t&iss=https%3A%2F%2Fas.example"
        );
        assert_eq!(
            build_redirect("https://as.example", &req("https://a.example/cb?x=1", None), &[("code", "c")]),
            "https://a.example/cb?x=1&code=c&state=s+t&iss=https%3A%2F%2Fas.example"
        );
        assert_eq!(
            build_redirect(
                "https://as.example",
                &req("https://a.example/cb", Some("fragment")),
                &[("error", "access_denied")]
            ),
            "https://a.example/cb#error=access_denied&state=s+t&iss=https%3A%2F%2Fas.example"
        );
    }

    #[test]
    fn request_uri_parsing() {
        assert_eq!(request_id_from_uri("urn:ietf:params:oauth:request_uri:req-abc"), Some("req-abc"));
        assert_eq!(request_id_from_uri("urn:ietf:params:oauth:request_uri:abc"), None);
        assert_eq!(request_id_from_uri("req-abc"), None);
    }
}
