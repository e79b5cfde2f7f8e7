//! The XRPC side of the authorization server: `com.atproto.identity.resolveHandle` for hosted
//! handles, and the [`DpopAuth`] extractor (with the [`require_dpop_auth`] middleware) that a
//! PDS puts in front of its resource routes (RS-DPOP-01 … 03, RS-WWW-01). `getSession` accepts
//! both credential kinds and lives in [`super::legacy`].

use std::future::Future;

use axum::extract::{FromRef, FromRequestParts, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{DPOP, DPOP_NONCE, header_values, json_response, original_path};
use crate::dpop::DpopInput;
use crate::error::{OAuthError, XrpcError};
use crate::params::Params;
use crate::resource::VerifiedAccess;
use crate::server::AuthServer;

/// An authenticated DPoP-bound resource request: use as an extractor in a PDS route
/// (RS-DPOP-01 … 03). Rejections are 401 with a `WWW-Authenticate: DPoP` challenge, a `DPoP-Nonce`
/// header and an XRPC body `{"error","message"}` (RS-WWW-01).
///
/// ```no_run
/// use atauth_server::web::DpopAuth;
/// async fn whoami(DpopAuth(access): DpopAuth) -> String { access.did }
/// let app: axum::Router<atauth_server::AuthServer> = axum::Router::new()
///     .route("/xrpc/com.example.whoami", axum::routing::get(whoami));
/// ```
#[derive(Debug, Clone)]
pub struct DpopAuth(pub VerifiedAccess);

/// The rejection of [`DpopAuth`].
#[derive(Debug)]
pub struct DpopAuthRejection {
    error: OAuthError,
    nonce: String,
}

impl DpopAuthRejection {
    /// The underlying error.
    pub fn error(&self) -> &OAuthError {
        &self.error
    }
}

/// A permission the token lacks, as the reference PDS answers it (RS-SCOPE-01, RS-WWW-02): 403
/// `{"error":"ScopeMissingError","message":"Missing required scope \"…\""}`. Lets a handler write
/// `access.require(&Access::repo_create("app.bsky.feed.post"))?`.
impl IntoResponse for crate::resource::ScopeMissing {
    fn into_response(self) -> Response {
        XrpcError::new(StatusCode::FORBIDDEN, "ScopeMissingError", self.to_string()).into_response()
    }
}

impl IntoResponse for DpopAuthRejection {
    fn into_response(self) -> Response {
        let body =
            serde_json::json!({ "error": self.error.code.as_str(), "message": self.error.description });
        let mut res = json_response(self.error.status, body.to_string());
        let h = res.headers_mut();
        if let Some(w) = self.error.www_authenticate.as_deref().and_then(|w| HeaderValue::from_str(w).ok()) {
            h.insert(header::WWW_AUTHENTICATE, w);
        }
        if let Ok(n) = HeaderValue::from_str(&self.nonce) {
            h.insert(DPOP_NONCE, n);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
        h.insert(header::VARY, HeaderValue::from_static("Authorization"));
        res
    }
}

async fn verify_parts(server: &AuthServer, parts: &Parts) -> Result<VerifiedAccess, DpopAuthRejection> {
    let path = original_path(parts);
    let authz = header_values(&parts.headers, &header::AUTHORIZATION);
    let proofs = header_values(&parts.headers, &DPOP);
    let dpop = DpopInput { proofs: &proofs, method: parts.method.as_str(), path: &path };
    server
        .verify_resource(&authz, &dpop)
        .await
        .map_err(|e| DpopAuthRejection { error: e.oauth_error(), nonce: server.dpop_nonce() })
}

impl<S> FromRequestParts<S> for DpopAuth
where
    AuthServer: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = DpopAuthRejection;

    fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> impl Future<Output = Result<Self, Self::Rejection>> + Send {
        let server = AuthServer::from_ref(state);
        async move {
            if let Some(done) = parts.extensions.get::<VerifiedAccess>() {
                return Ok(Self(done.clone()));
            }
            verify_parts(&server, parts).await.map(Self)
        }
    }
}

/// Middleware form of [`DpopAuth`] for a whole router:
/// `.layer(axum::middleware::from_fn_with_state(server, require_dpop_auth))`. Verified requests get
/// a [`VerifiedAccess`] extension (which [`DpopAuth`] then reuses); every response gets a fresh
/// `DPoP-Nonce` (RS-DPOP-03).
pub async fn require_dpop_auth(State(server): State<AuthServer>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    match verify_parts(&server, &parts).await {
        Ok(access) => {
            parts.extensions.insert(access);
            let mut res = next.run(Request::from_parts(parts, body)).await;
            if let Ok(n) = HeaderValue::from_str(&server.dpop_nonce()) {
                res.headers_mut().insert(DPOP_NONCE, n);
            }
            res
        }
        Err(rejection) => rejection.into_response(),
    }
}

/// `GET /xrpc/com.atproto.identity.resolveHandle?handle=…` for the handles this server hosts.
pub(super) async fn resolve_handle(
    State(server): State<AuthServer>,
    RawQuery(query): RawQuery,
) -> Result<Response, XrpcError> {
    let params = Params::from_form(query.unwrap_or_default().as_bytes());
    let Ok(Some(handle)) = params.get("handle") else {
        return Err(XrpcError::new(StatusCode::BAD_REQUEST, "InvalidRequest", "handle is required"));
    };
    match server.resolve_local_handle(handle).await {
        Ok(Some(did)) => Ok(json_response(StatusCode::OK, serde_json::json!({ "did": did }).to_string())),
        Ok(None) => {
            Err(XrpcError::new(StatusCode::BAD_REQUEST, "HandleNotFound", "Unable to resolve handle"))
        }
        Err(e) => Err(XrpcError::internal("resolveHandle store", &e)),
    }
}
