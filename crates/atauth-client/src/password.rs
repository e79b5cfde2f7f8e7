//! [`PasswordSession`]: a legacy app-password session (`com.atproto.server.createSession` /
//! `refreshSession` / `deleteSession`) behind the same [`XrpcSession`] interface as OAuth sessions.
//!
//! Checklist LEG-01, LEG-03 (refresh and delete use the refresh token), LEG-07 and trap T-24
//! (refresh on 401 **or** 400 `ExpiredToken`, then retry once; one refresh in flight), LEG-09
//! (follow the PDS named in the returned DID document). Tokens are opaque (LEG-04).

use std::sync::Arc;

use atauth_identity::Did;
use atauth_identity::http::{HttpRequest, HttpResponse, SafeHttpClient};
use atauth_oauth::{AccessToken, RefreshToken};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::agent::XrpcSession;
use crate::error::{RequestError, XrpcErrorBody};

/// What a legacy session needs to resume (persist it yourself; it contains tokens).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasswordSessionData {
    /// The account.
    pub did: Did,
    /// The handle at login.
    pub handle: String,
    /// The PDS URL requests go to.
    pub service: String,
    /// `accessJwt`.
    pub access_jwt: AccessToken,
    /// `refreshJwt`.
    pub refresh_jwt: RefreshToken,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionOutput {
    did: Did,
    handle: String,
    access_jwt: AccessToken,
    refresh_jwt: RefreshToken,
    #[serde(default)]
    did_doc: Option<atauth_identity::DidDocument>,
}

struct State {
    data: PasswordSessionData,
    generation: u64,
}

/// A legacy session. Cheap to clone.
#[derive(Clone)]
pub struct PasswordSession {
    http: SafeHttpClient,
    did: Did,
    state: Arc<tokio::sync::Mutex<State>>,
}

impl std::fmt::Debug for PasswordSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordSession").field("did", &self.did).finish_non_exhaustive()
    }
}

const MAX_SESSION_BYTES: usize = 256 * 1024;

fn endpoint(service: &str, nsid: &str) -> Result<Url, RequestError> {
    Url::parse(service)
        .and_then(|u| u.join(&format!("/xrpc/{nsid}")))
        .map_err(|_| RequestError::InvalidRequest("invalid service URL"))
}

fn bearer(token: &str) -> Result<HeaderValue, RequestError> {
    HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| RequestError::InvalidRequest("token is not a valid header value"))
}

fn xrpc_error(res: &HttpResponse) -> RequestError {
    RequestError::Xrpc {
        status: res.status.as_u16(),
        body: serde_json::from_slice::<XrpcErrorBody>(&res.body).ok(),
    }
}

/// T-24: an expired legacy access token is 400 `ExpiredToken`, not only 401.
fn needs_refresh(res: &HttpResponse) -> bool {
    match res.status.as_u16() {
        401 => true,
        400 => serde_json::from_slice::<XrpcErrorBody>(&res.body).is_ok_and(|b| b.error == "ExpiredToken"),
        _ => false,
    }
}

impl SessionOutput {
    fn into_data(self, fallback_service: &str) -> PasswordSessionData {
        // LEG-09: follow the PDS in the returned DID document (entryway deployments).
        let service = self
            .did_doc
            .as_ref()
            .filter(|d| d.id == self.did)
            .and_then(|d| d.pds_endpoint().ok())
            .map_or_else(|| fallback_service.to_owned(), |u| u.to_string());
        PasswordSessionData {
            did: self.did,
            handle: self.handle,
            service,
            access_jwt: self.access_jwt,
            refresh_jwt: self.refresh_jwt,
        }
    }
}

impl PasswordSession {
    /// `createSession` with a handle/DID/email and an (app) password (LEG-01).
    pub async fn login(
        http: SafeHttpClient,
        service: &Url,
        identifier: &str,
        password: &str,
        auth_factor_token: Option<&str>,
    ) -> Result<Self, RequestError> {
        let mut input = serde_json::json!({ "identifier": identifier, "password": password });
        if let Some(t) = auth_factor_token {
            input["authFactorToken"] = t.into();
        }
        let url = endpoint(service.as_str(), "com.atproto.server.createSession")?;
        let req = HttpRequest::post_json(url, &input)
            .map_err(RequestError::InvalidBody)?
            .max_response_bytes(MAX_SESSION_BYTES);
        let res = http.send(req).await?;
        if !res.status.is_success() {
            return Err(xrpc_error(&res));
        }
        let out: SessionOutput = serde_json::from_slice(&res.body).map_err(RequestError::InvalidBody)?;
        Ok(Self::resume(http, out.into_data(service.as_str())))
    }

    /// Resumes from saved data.
    pub fn resume(http: SafeHttpClient, data: PasswordSessionData) -> Self {
        Self {
            http,
            did: data.did.clone(),
            state: Arc::new(tokio::sync::Mutex::new(State { data, generation: 0 })),
        }
    }

    /// The current data, to persist (contains tokens).
    pub async fn export(&self) -> PasswordSessionData {
        self.state.lock().await.data.clone()
    }

    /// `refreshSession` with the refresh token (LEG-03), single-flight: a caller that saw an older
    /// generation adopts the newer tokens instead of refreshing again.
    pub async fn refresh(&self) -> Result<(), RequestError> {
        let seen = self.state.lock().await.generation;
        self.refresh_from(seen).await
    }

    async fn refresh_from(&self, seen: u64) -> Result<(), RequestError> {
        let mut state = self.state.lock().await;
        if state.generation > seen {
            return Ok(());
        }
        let url = endpoint(&state.data.service, "com.atproto.server.refreshSession")?;
        let req = HttpRequest::new(Method::POST, url)
            .header(http::header::AUTHORIZATION, bearer(state.data.refresh_jwt.expose_secret())?)
            .max_response_bytes(MAX_SESSION_BYTES);
        let res = self.http.send(req).await?;
        if !res.status.is_success() {
            return Err(xrpc_error(&res));
        }
        let out: SessionOutput = serde_json::from_slice(&res.body).map_err(RequestError::InvalidBody)?;
        if out.did != self.did {
            return Err(RequestError::Legacy("refreshSession returned another account"));
        }
        let service = state.data.service.clone();
        state.data = out.into_data(&service);
        state.generation += 1;
        Ok(())
    }

    /// `deleteSession` with the refresh token (LEG-03, LEG-06). Errors are returned; the local data is
    /// the caller's to drop.
    pub async fn logout(&self) -> Result<(), RequestError> {
        let state = self.state.lock().await;
        let url = endpoint(&state.data.service, "com.atproto.server.deleteSession")?;
        let req = HttpRequest::new(Method::POST, url)
            .header(http::header::AUTHORIZATION, bearer(state.data.refresh_jwt.expose_secret())?);
        let res = self.http.send(req).await?;
        if res.status.is_success() { Ok(()) } else { Err(xrpc_error(&res)) }
    }
}

#[async_trait::async_trait]
impl XrpcSession for PasswordSession {
    fn did(&self) -> &Did {
        &self.did
    }

    async fn send_xrpc(
        &self,
        method: Method,
        path_and_query: &str,
        content_type: Option<&str>,
        body: Option<Bytes>,
        max_response_bytes: usize,
    ) -> Result<HttpResponse, RequestError> {
        let headers = crate::agent::with_content_type(content_type)?;
        self.send_xrpc_with_headers(method, path_and_query, headers, body, max_response_bytes).await
    }

    async fn send_xrpc_with_headers(
        &self,
        method: Method,
        path_and_query: &str,
        headers: HeaderMap,
        body: Option<Bytes>,
        max_response_bytes: usize,
    ) -> Result<HttpResponse, RequestError> {
        crate::agent::check_extra_headers(&headers)?;
        let mut refreshed = false;
        loop {
            let (service, token, generation) = {
                let s = self.state.lock().await;
                (s.data.service.clone(), s.data.access_jwt.expose_secret().to_owned(), s.generation)
            };
            let base =
                Url::parse(&service).map_err(|_| RequestError::InvalidRequest("invalid service URL"))?;
            let url =
                base.join(path_and_query).map_err(|_| RequestError::InvalidRequest("invalid request URL"))?;
            if url.origin() != base.origin() {
                return Err(RequestError::InvalidRequest("request URL is not on the session's PDS"));
            }
            let mut req = HttpRequest::new(method.clone(), url)
                .header(http::header::AUTHORIZATION, bearer(&token)?)
                .max_response_bytes(max_response_bytes);
            for (name, value) in &headers {
                req = req.header(name.clone(), value.clone());
            }
            if let Some(b) = &body {
                req = req.body(b.clone());
            }
            let res = self.http.send(req).await?;
            if !refreshed && needs_refresh(&res) {
                refreshed = true;
                self.refresh_from(generation).await?;
                continue;
            }
            return Ok(res);
        }
    }

    async fn pds_url(&self) -> Option<String> {
        Some(self.state.lock().await.data.service.clone())
    }
}
