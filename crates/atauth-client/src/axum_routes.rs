//! axum routes a web app mounts (feature `axum`): its client-metadata document and JWKS (200,
//! `application/json`, no redirects: T-16), and the OAuth callback.
//!
//! ```no_run
//! # async fn demo(client: atauth_client::OAuthClient) {
//! use atauth_client::axum_routes::{ClientRoutes, router};
//! use axum::response::{IntoResponse, Redirect};
//!
//! let app = router(client, &ClientRoutes::default(), |done: atauth_client::CallbackResult| async move {
//!     // Remember done.session.key() in your own (signed) cookie, then go home.
//!     Redirect::to("/").into_response()
//! });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```

use std::future::Future;

use axum::Router;
use axum::extract::RawQuery;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::client::{CallbackResult, OAuthClient};
use crate::error::CallbackError;

/// Where the routes live.
#[derive(Debug, Clone)]
pub struct ClientRoutes {
    /// Path of the client-metadata document (its full URL is the client id). Default
    /// `/oauth-client-metadata.json`.
    pub metadata_path: String,
    /// Path of the JWKS. Default `/jwks.json`.
    pub jwks_path: String,
    /// Path of the callback (a registered redirect URI). Default `/oauth/callback`.
    pub callback_path: String,
}

impl Default for ClientRoutes {
    fn default() -> Self {
        Self {
            metadata_path: "/oauth-client-metadata.json".to_owned(),
            jwks_path: "/jwks.json".to_owned(),
            callback_path: "/oauth/callback".to_owned(),
        }
    }
}

fn json_response(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "public, max-age=300")],
        body,
    )
        .into_response()
}

/// The user-facing answer for a failed callback: a status and a short text, no internal detail.
impl IntoResponse for CallbackError {
    fn into_response(self) -> Response {
        tracing::info!(error = %self, "OAuth callback failed");
        let (status, text) = match &self {
            Self::AuthorizationError(_) => (StatusCode::FORBIDDEN, "Sign-in was cancelled or refused."),
            Self::UnknownState | Self::Params(_) | Self::MissingIssuer | Self::IssuerMismatch { .. } => {
                (StatusCode::BAD_REQUEST, "This sign-in link is invalid or expired. Please start again.")
            }
            Self::SubMismatch { .. } | Self::IssuerNotAuthoritative { .. } | Self::ScopeNotGranted { .. } => {
                (StatusCode::FORBIDDEN, "The account could not be verified. Please start again.")
            }
            _ => (StatusCode::BAD_GATEWAY, "Sign-in failed. Please try again."),
        };
        (status, text).into_response()
    }
}

/// A router serving the metadata document, the JWKS, and the callback; `on_login` turns a
/// successful callback into the response (set a cookie, redirect, …).
pub fn router<F, Fut>(client: OAuthClient, routes: &ClientRoutes, on_login: F) -> Router
where
    F: Fn(CallbackResult) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let metadata = atauth_crypto::json::to_string(client.config().metadata());
    let jwks = atauth_crypto::json::to_string(&client.config().jwks());
    Router::new()
        .route(&routes.metadata_path, get(move || std::future::ready(json_response(metadata.clone()))))
        .route(&routes.jwks_path, get(move || std::future::ready(json_response(jwks.clone()))))
        .route(
            &routes.callback_path,
            get(move |RawQuery(query): RawQuery| {
                let (client, on_login) = (client.clone(), on_login.clone());
                async move {
                    match client.callback_query(query.as_deref().unwrap_or_default()).await {
                        Ok(done) => on_login(done).await,
                        Err(e) => e.into_response(),
                    }
                }
            }),
        )
}
