//! The HTTP side of inter-service auth ([`crate::service_auth`]): the `getServiceAuth` handler and
//! the [`ServiceAuth`] extractor for routes of a receiving service (SVC-05 … 07).

use std::future::Future;

use axum::extract::{FromRef, FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{authorization, original_path};
use crate::legacy::SessionAuth;
use crate::params::Params;
use crate::server::AuthServer;
use crate::service_auth::{ServiceAuthError, ServiceAuthVerifier, ServiceCaller};

impl IntoResponse for ServiceAuthError {
    fn into_response(self) -> Response {
        self.xrpc_error().into_response()
    }
}

/// `GET /xrpc/com.atproto.server.getServiceAuth` (`aud`, `lxm`, `exp`; SVC-07).
pub(super) async fn get_service_auth(
    State(server): State<AuthServer>,
    auth: SessionAuth,
    RawQuery(query): RawQuery,
) -> Result<Response, ServiceAuthError> {
    let params = Params::from_form(query.unwrap_or_default().as_bytes());
    let one = |k: &str| params.get(k).ok().flatten();
    let aud = one("aud").ok_or(ServiceAuthError::BadAudienceParam)?;
    let exp = one("exp").map(str::parse::<i64>).transpose().map_err(|_| ServiceAuthError::BadExpParam)?;
    let token = server.get_service_auth(&auth, aud, one("lxm"), exp).await?;
    let mut res = super::json_response(StatusCode::OK, serde_json::json!({ "token": token }).to_string());
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(res)
}

/// Axum extractor for routes of a receiving service: verifies `Authorization: Bearer <service JWT>`
/// with the [`ServiceAuthVerifier`] in the router state, for the method named by the request path
/// (`/xrpc/<lxm>`).
///
/// ```no_run
/// use atauth_server::service_auth::ServiceAuthVerifier;
/// use atauth_server::web::service_auth::ServiceAuth;
/// async fn handler(ServiceAuth(caller): ServiceAuth) -> String { caller.claims.iss }
/// let app: axum::Router<ServiceAuthVerifier> =
///     axum::Router::new().route("/xrpc/com.example.getThing", axum::routing::get(handler));
/// ```
#[derive(Debug, Clone)]
pub struct ServiceAuth(pub ServiceCaller);

impl<S> FromRequestParts<S> for ServiceAuth
where
    ServiceAuthVerifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> impl Future<Output = Result<Self, Self::Rejection>> + Send {
        let verifier = ServiceAuthVerifier::from_ref(state);
        let path = original_path(parts);
        let token = crate::legacy::bearer_token(authorization(&parts.headers)).map(str::to_owned);
        async move {
            let token = token.map_err(IntoResponse::into_response)?;
            let lxm = path.strip_prefix("/xrpc/").unwrap_or_default();
            verifier.verify(&token, lxm).await.map(Self).map_err(IntoResponse::into_response)
        }
    }
}
