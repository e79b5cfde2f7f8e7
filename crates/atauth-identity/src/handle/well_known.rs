//! Handle → DID by `GET https://<handle>/.well-known/atproto-did` (ID-HANDLE-05).

use http::StatusCode;
use url::Url;

use super::{HandleResolveError, HandleResolver};
use crate::http::{HttpError, HttpRequest, SafeHttpClient};
use crate::syntax::{Did, Handle, TldPolicy};

/// Cap on the well-known body: a DID is at most 2048 bytes, plus room for a newline and whitespace.
pub const MAX_WELL_KNOWN_BYTES: usize = 4096;

/// Resolves handles with the HTTPS well-known method (ID-HANDLE-05).
///
/// Any 2xx answer counts; the body's first line, trimmed, must be a valid DID. Redirects are refused
/// (as the reference client does), `Content-Type` is not enforced, 404/410 mean "not found". The
/// request goes through [`SafeHttpClient`], so a handle whose host resolves to a private address is
/// refused.
#[derive(Debug, Clone)]
pub struct WellKnownHandleResolver {
    http: SafeHttpClient,
    dev_http_port: Option<u16>,
    tld_policy: TldPolicy,
}

impl WellKnownHandleResolver {
    /// A resolver fetching `https://<handle>/.well-known/atproto-did` on port 443.
    pub fn new(http: SafeHttpClient) -> Self {
        Self { http, dev_http_port: None, tld_policy: TldPolicy::production() }
    }

    /// **Development only.** Fetch `http://<handle>:<port>/.well-known/atproto-did` instead. Requires a
    /// client built with [`allow_http_loopback`](crate::http::SafeHttpClientBuilder::allow_http_loopback)
    /// and a handle that resolves to a loopback address.
    #[must_use]
    pub fn dev_http_port(mut self, port: Option<u16>) -> Self {
        self.dev_http_port = port;
        self
    }

    /// Which TLDs may be resolved (ID-HANDLE-03).
    #[must_use]
    pub fn tld_policy(mut self, policy: TldPolicy) -> Self {
        self.tld_policy = policy;
        self
    }

    fn url(&self, handle: &Handle) -> Result<Url, HandleResolveError> {
        let s = match self.dev_http_port {
            None => format!("https://{handle}/.well-known/atproto-did"),
            Some(port) => format!("http://{handle}:{port}/.well-known/atproto-did"),
        };
        // A valid handle always makes a valid URL; stay total anyway.
        Url::parse(&s).map_err(|_| HandleResolveError::NotFound { handle: handle.clone() })
    }
}

#[async_trait::async_trait]
impl HandleResolver for WellKnownHandleResolver {
    async fn resolve_handle(&self, handle: &Handle) -> Result<Did, HandleResolveError> {
        super::check_policy(handle, self.tld_policy)?;
        let http_err = |source| HandleResolveError::WellKnownHttp { handle: handle.clone(), source };
        let request = HttpRequest::get(self.url(handle)?).max_response_bytes(MAX_WELL_KNOWN_BYTES);
        let response = self.http.send(request).await.map_err(http_err)?;
        match response.status {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND | StatusCode::GONE => {
                return Err(HandleResolveError::NotFound { handle: handle.clone() });
            }
            status => return Err(http_err(HttpError::UnexpectedStatus { status })),
        }
        let text = response.text().map_err(http_err)?;
        // ID-HANDLE-05: the first line, trimmed, is the DID.
        let first_line = text.lines().next().unwrap_or("").trim();
        Did::new(first_line)
            .map_err(|source| HandleResolveError::InvalidWellKnownDid { handle: handle.clone(), source })
    }
}
