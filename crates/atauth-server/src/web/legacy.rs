//! The HTTP side of legacy sessions ([`crate::legacy`]): XRPC handlers, the [`LegacyAuth`]
//! extractor (legacy Bearer only) and the extractor of [`SessionAuth`] (legacy Bearer **or**
//! DPoP-bound OAuth, each with its own errors).
//!
//! | route | |
//! |---|---|
//! | `POST /xrpc/com.atproto.server.createSession` | LEG-01/02; rate-limited |
//! | `POST /xrpc/com.atproto.server.refreshSession` | `Bearer <refreshJwt>`, LEG-03/05/06 |
//! | `POST /xrpc/com.atproto.server.deleteSession` | `Bearer <refreshJwt>`, LEG-06 |
//! | `GET /xrpc/com.atproto.server.getSession` | [`SessionAuth`]: legacy or OAuth (LEG-08) — routed by [`crate::web`] |
//! | `POST /xrpc/com.atproto.server.createAppPassword` | full legacy sessions only, LEG-10 |
//! | `GET /xrpc/com.atproto.server.listAppPasswords` | idem |
//! | `POST /xrpc/com.atproto.server.revokeAppPassword` | idem |
//! | `GET /xrpc/com.atproto.server.getServiceAuth` | [`super::service_auth`], SVC-07 |

use std::future::Future;

use atauth_crypto::{Algorithm, PrivateKey, SecretString};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::authorization;
use super::ui::ClientIp;
use super::xrpc::{DpopAuth, DpopAuthRejection};
pub use crate::legacy::SessionAuth;
use crate::legacy::{LegacyAccess, LegacyError, LegacySession, bearer_token};
use crate::server::AuthServer;
use crate::store::{AccountRecord, AccountStatus};

/// The legacy-session routes (state: anything an [`AuthServer`] can be taken from).
pub fn routes<S>() -> Router<S>
where
    AuthServer: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/xrpc/com.atproto.server.createSession", post(create_session))
        .route("/xrpc/com.atproto.server.refreshSession", post(refresh_session))
        .route("/xrpc/com.atproto.server.deleteSession", post(delete_session))
        .route("/xrpc/com.atproto.server.createAppPassword", post(create_app_password))
        .route("/xrpc/com.atproto.server.listAppPasswords", get(list_app_passwords))
        .route("/xrpc/com.atproto.server.revokeAppPassword", post(revoke_app_password))
        .route("/xrpc/com.atproto.server.getServiceAuth", get(super::service_auth::get_service_auth))
}

fn ok_json(body: &Value) -> Response {
    let mut res = (StatusCode::OK, body.to_string()).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    h.insert(header::VARY, HeaderValue::from_static("Authorization"));
    res
}

impl IntoResponse for LegacyError {
    fn into_response(self) -> Response {
        self.xrpc_error().into_response()
    }
}

/// A verified legacy access token (`Authorization: Bearer <accessJwt>`), any session kind. Use
/// [`LegacyAccess::is_full`] to restrict a route to account-password sessions.
#[derive(Debug, Clone)]
pub struct LegacyAuth(pub LegacyAccess);

impl<S> FromRequestParts<S> for LegacyAuth
where
    AuthServer: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = LegacyError;

    fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> impl Future<Output = Result<Self, Self::Rejection>> + Send {
        let server = AuthServer::from_ref(state);
        let token = bearer_token(authorization(&parts.headers)).map(str::to_owned);
        async move { Ok(Self(server.verify_legacy_access(&token?).await?)) }
    }
}

/// The rejection of [`SessionAuth`].
#[derive(Debug)]
pub enum SessionAuthRejection {
    /// The legacy path's error.
    Legacy(LegacyError),
    /// The OAuth path's error.
    OAuth(DpopAuthRejection),
}

impl IntoResponse for SessionAuthRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Legacy(e) => e.into_response(),
            Self::OAuth(r) => r.into_response(),
        }
    }
}

impl<S> FromRequestParts<S> for SessionAuth
where
    AuthServer: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = SessionAuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if !is_legacy_request(&parts.headers) {
            return DpopAuth::from_request_parts(parts, state)
                .await
                .map(|DpopAuth(a)| Self::OAuth(a))
                .map_err(SessionAuthRejection::OAuth);
        }
        LegacyAuth::from_request_parts(parts, state)
            .await
            .map(|LegacyAuth(a)| Self::Legacy(a))
            .map_err(SessionAuthRejection::Legacy)
    }
}

fn is_legacy_request(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else { return false };
    let Some((scheme, token)) = value.to_str().unwrap_or("").split_once(' ') else { return false };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return false;
    }
    let pop = atauth_crypto::jws::decode(token)
        .ok()
        .and_then(|j| j.claims::<serde_json::Map<String, Value>>().ok())
        .is_some_and(|claims| claims.contains_key("cnf"));
    !pop
}

/// The DID document of a hosted account, as the reference returns in `didDoc` (LEG-09), when the
/// server holds the account's signing key.
fn did_doc(server: &AuthServer, account: &AccountRecord) -> Option<Value> {
    let key =
        PrivateKey::from_hex(Algorithm::Es256k, account.signing_key_hex.as_ref()?.expose_secret()).ok()?;
    Some(json!({
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": account.did,
        "alsoKnownAs": [format!("at://{}", account.handle)],
        "verificationMethod": [{
            "id": format!("{}#atproto", account.did),
            "type": "Multikey",
            "controller": account.did,
            "publicKeyMultibase": key.public_key().to_multikey(),
        }],
        "service": [{
            "id": "#atproto_pds",
            "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": server.config().public_url,
        }],
    }))
}

/// The account fields of createSession / refreshSession / getSession (LEG-01, LEG-08).
fn account_fields(server: &AuthServer, account: &AccountRecord, with_email: bool) -> Value {
    let mut body = json!({ "did": account.did, "handle": account.handle });
    if let Some(doc) = did_doc(server, account) {
        body["didDoc"] = doc;
    }
    if with_email {
        if let Some(email) = &account.email {
            body["email"] = json!(email);
        }
        body["emailConfirmed"] = json!(false);
        body["emailAuthFactor"] = json!(false);
    }
    let active = account.status == AccountStatus::Active;
    body["active"] = json!(active);
    if !active {
        body["status"] = json!(account.status.as_str());
    }
    body
}

fn session_body(server: &AuthServer, s: &LegacySession) -> Value {
    let mut body = account_fields(server, &s.account, true);
    body["accessJwt"] = json!(s.access_jwt.expose_secret());
    body["refreshJwt"] = json!(s.refresh_jwt.expose_secret());
    body
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, LegacyError> {
    serde_json::from_slice(body).map_err(|_| LegacyError::InvalidRequest("Invalid request body"))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateSessionInput {
    identifier: String,
    password: String,
    /// A TOTP or recovery code, for accounts with a second factor.
    #[serde(default)]
    auth_factor_token: Option<String>,
}

async fn create_session(
    State(server): State<AuthServer>,
    ClientIp(ip): ClientIp,
    body: Bytes,
) -> Result<Response, LegacyError> {
    let input: CreateSessionInput = parse_json(&body)?;
    let password = SecretString::new(input.password);
    let token = input.auth_factor_token.as_deref();
    let session = server.create_session_with_factor(&input.identifier, &password, token, ip).await?;
    Ok(ok_json(&session_body(&server, &session)))
}

async fn refresh_session(
    State(server): State<AuthServer>,
    headers: HeaderMap,
) -> Result<Response, LegacyError> {
    let session = server.refresh_session(bearer_token(authorization(&headers))?).await?;
    Ok(ok_json(&session_body(&server, &session)))
}

async fn delete_session(
    State(server): State<AuthServer>,
    headers: HeaderMap,
) -> Result<Response, LegacyError> {
    server.delete_session(bearer_token(authorization(&headers))?).await?;
    Ok(StatusCode::OK.into_response())
}

/// `getSession` for both credential kinds (LEG-08); the email only where
/// [`SessionAuth::sees_email`].
pub(super) async fn get_session(
    State(server): State<AuthServer>,
    auth: SessionAuth,
) -> Result<Response, LegacyError> {
    let account =
        server.stores().accounts.account_by_did(auth.did()).await?.ok_or(LegacyError::AccountNotFound)?;
    Ok(ok_json(&account_fields(&server, &account, auth.sees_email())))
}

#[derive(Deserialize)]
struct CreateAppPasswordInput {
    name: String,
    #[serde(default)]
    privileged: bool,
}

async fn create_app_password(
    State(server): State<AuthServer>,
    auth: SessionAuth,
    body: Bytes,
) -> Result<Response, LegacyError> {
    let access = auth.into_full()?;
    let input: CreateAppPasswordInput = parse_json(&body)?;
    let p = server.create_app_password(&access, &input.name, input.privileged).await?;
    Ok(ok_json(&json!({
        "name": p.name,
        "password": p.password.expose_secret(),
        "createdAt": rfc3339(p.created_at),
        "privileged": p.privileged,
    })))
}

async fn list_app_passwords(
    State(server): State<AuthServer>,
    auth: SessionAuth,
) -> Result<Response, LegacyError> {
    let list = server.list_app_passwords(&auth.into_full()?).await?;
    let passwords: Vec<Value> = list
        .iter()
        .map(|a| json!({ "name": a.name, "createdAt": rfc3339(a.created_at), "privileged": a.privileged }))
        .collect();
    Ok(ok_json(&json!({ "passwords": passwords })))
}

#[derive(Deserialize)]
struct RevokeAppPasswordInput {
    name: String,
}

async fn revoke_app_password(
    State(server): State<AuthServer>,
    auth: SessionAuth,
    body: Bytes,
) -> Result<Response, LegacyError> {
    let access = auth.into_full()?;
    let input: RevokeAppPasswordInput = parse_json(&body)?;
    server.revoke_app_password(&access, &input.name).await?;
    Ok(StatusCode::OK.into_response())
}

/// Unix seconds as RFC 3339 UTC (`2026-01-02T03:04:05.000Z`), as the reference writes `createdAt`.
pub fn rfc3339(unix: i64) -> String {
    let t = atauth_crypto::clock::UtcDateTime::from_unix(unix);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z", t.year, t.month, t.day, t.hour, t.minute, t.second)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::rfc3339(1_750_000_000), "2025-06-15T15:06:40.000Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00.000Z");
    }
}
