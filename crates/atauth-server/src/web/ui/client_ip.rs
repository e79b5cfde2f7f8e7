//! The client's address for the sign-in rate limits ([`crate::ratelimit`]).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;

use crate::server::AuthServer;

/// The client's address: the configured proxy header's (right-most) address, else the TCP peer
/// from `ConnectInfo` (recorded by [`crate::web::serve`]); `None` when neither is known, and then
/// only the per-identifier limit applies.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S> FromRequestParts<S> for ClientIp
where
    AuthServer: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let server = AuthServer::from_ref(state);
        if let Some(name) = server.config().client_ip_header.as_deref() {
            let from_header = parts
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .next_back();
            if from_header.is_some() {
                return Ok(Self(from_header));
            }
        }
        Ok(Self(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}
