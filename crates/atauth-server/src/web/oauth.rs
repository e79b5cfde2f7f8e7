//! The OAuth endpoints over HTTP: both metadata documents, the JWKS, PAR, token, revocation and the
//! headless sign-in-and-approve API (see [`super`]). A handler takes the request ([`OAuthRequest`]:
//! the body as [`OAuthForm`], the `DPoP` headers), calls the core and answers; refusals answer
//! through `IntoResponse for OAuthError`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ui::ClientIp;
use super::{DPOP, header_values, json_response, json_value, no_store, original_path, redirect_303};
use crate::authorize::AuthorizeOutcome;
use crate::dpop::DpopInput;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::params::Params;
use crate::server::AuthServer;

/// An OAuth request body as [`Params`]: `application/x-www-form-urlencoded` (RFC 6749), or a flat
/// JSON object as the reference also accepts. Any other `Content-Type` is `invalid_request`; a
/// body over the configured limit is refused (413) before it is parsed. Duplicate parameters are
/// kept, so that [`Params::get`] refuses them (RFC 6749 §3.1).
#[derive(Debug, Clone)]
pub struct OAuthForm(pub Params);

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
        let body = Bytes::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        let ct = content_type.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("");
        let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let params = match essence.as_str() {
            "application/x-www-form-urlencoded" => Ok(Params::from_form(&body)),
            "application/json" => Params::from_json(&body)
                .ok_or_else(|| OAuthError::bad_request(OAuthErrorCode::InvalidRequest, "invalid JSON body")),
            _ => Err(OAuthError::bad_request(
                OAuthErrorCode::InvalidRequest,
                "Content-Type must be application/x-www-form-urlencoded or application/json",
            )),
        };
        params.map(Self).map_err(IntoResponse::into_response)
    }
}

/// A DPoP-protected OAuth request (PAR, token, revocation): its body ([`OAuthForm`]), its `DPoP`
/// header values and the path the proof must name.
#[derive(Debug)]
pub struct OAuthRequest {
    /// The body's parameters.
    pub params: Params,
    proofs: Vec<String>,
    path: String,
}

impl<S: Send + Sync> FromRequest<S> for OAuthRequest {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let path = original_path(&parts);
        let proofs = header_values(&parts.headers, &DPOP).into_iter().map(str::to_owned).collect();
        let OAuthForm(params) = OAuthForm::from_request(Request::from_parts(parts, body), state).await?;
        Ok(Self { params, proofs, path })
    }
}

impl OAuthRequest {
    /// The `DPoP` header values, for [`Self::dpop`].
    pub fn proofs(&self) -> Vec<&str> {
        self.proofs.iter().map(String::as_str).collect()
    }

    /// The core's view of the request's DPoP proof (every OAuth endpoint is a `POST`).
    pub fn dpop<'a>(&'a self, proofs: &'a [&'a str]) -> DpopInput<'a> {
        DpopInput { proofs, method: "POST", path: &self.path }
    }
}

pub(super) async fn as_metadata(State(server): State<AuthServer>) -> Response {
    json_response(StatusCode::OK, server.authorization_server_metadata_json().to_owned())
}

pub(super) async fn resource_metadata(State(server): State<AuthServer>) -> Response {
    json_response(StatusCode::OK, server.protected_resource_metadata_json().to_owned())
}

pub(super) async fn jwks(State(server): State<AuthServer>) -> Response {
    json_response(StatusCode::OK, server.jwks_json())
}

/// Logs why the core refused a request (at debug level: a refusal is the client's problem, and
/// its wire error says why) and answers that wire error.
fn refused(endpoint: &'static str, cause: &dyn std::fmt::Display, wire: OAuthError) -> OAuthError {
    tracing::debug!(endpoint, error = %cause, "request refused");
    wire
}

/// `POST /oauth/par` → 201 (AS-PAR-*).
pub(super) async fn par(State(server): State<AuthServer>, req: OAuthRequest) -> Result<Response, OAuthError> {
    let proofs = req.proofs();
    let r =
        server.par(&req.params, &req.dpop(&proofs)).await.map_err(|e| refused("par", &e, e.oauth_error()))?;
    Ok(no_store(json_value(StatusCode::CREATED, &r)))
}

/// `POST /oauth/token` (AS-TOK-*, AS-REF-*).
pub(super) async fn token(
    State(server): State<AuthServer>,
    req: OAuthRequest,
) -> Result<Response, OAuthError> {
    let proofs = req.proofs();
    let r = server
        .token(&req.params, &req.dpop(&proofs))
        .await
        .map_err(|e| refused("token", &e, e.oauth_error()))?;
    Ok(no_store(json_value(StatusCode::OK, &r)))
}

/// `POST /oauth/revoke` → 200 (RFC 7009).
pub(super) async fn revoke(
    State(server): State<AuthServer>,
    req: OAuthRequest,
) -> Result<Response, OAuthError> {
    let proofs = req.proofs();
    server
        .revoke(&req.params, &req.dpop(&proofs))
        .await
        .map_err(|e| refused("revoke", &e, e.oauth_error()))?;
    // RFC 7009 allows an empty body, but @atproto/oauth-client-browser parses the answer as JSON
    // and fails (silently) on sign-out without one: answer `{}`, as the reference does.
    Ok(no_store(json_response(StatusCode::OK, "{}".to_owned())))
}

/// `POST /oauth/authorize/sign-in-and-approve`: the headless consent API (see [`super`]).
pub(super) async fn sign_in_and_approve(
    State(server): State<AuthServer>,
    ClientIp(ip): ClientIp,
    OAuthForm(params): OAuthForm,
) -> Result<Response, Response> {
    let get = |k: &str| params.get(k).ok().flatten();
    let oauth = |e: OAuthError| e.into_response();
    let view = match server.load_authorization(get("client_id"), get("request_uri")).await {
        Ok(AuthorizeOutcome::Interaction(v)) => v,
        Ok(AuthorizeOutcome::Redirect(r)) => return Ok(redirect_303(&r.url)),
        Err(e) => return Err(oauth(e.oauth_error())),
    };
    if get("decision") == Some("deny") {
        let r = server.deny(&view.request_id).await.map_err(|e| oauth(e.oauth_error()))?;
        return Ok(redirect_303(&r.url));
    }
    let password = atauth_crypto::SecretString::new(get("password").unwrap_or_default());
    let account = server
        .sign_in_limited(get("identifier").unwrap_or_default(), &password, ip)
        .await
        .map_err(|e| e.xrpc_error().into_response())?;
    // An account with a second factor never signs in by password alone (issue 16); this API has
    // no step for the factor: use the pages or the JSON consent API.
    let kinds = server
        .factor_kinds(&account.did)
        .await
        .map_err(|e| crate::XrpcError::internal("factor store", &e).into_response())?;
    if !kinds.is_empty() {
        return Err(crate::XrpcError::new(
            http::StatusCode::UNAUTHORIZED,
            "second_factor_required",
            "This account has a second factor; sign in on the authorization page or through the JSON consent API."
                .to_owned(),
        )
        .into_response());
    }
    let r = server
        .approve(&view.request_id, &account.did, get("scope"), None)
        .await
        .map_err(|e| oauth(e.oauth_error()))?;
    Ok(redirect_303(&r.url))
}
