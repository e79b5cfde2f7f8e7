//! Handle → DID through a service's XRPC `com.atproto.identity.resolveHandle` (ID-DID-08).
//!
//! Needed offline for `.test` handles (the reference PDS answers for its own `serviceHandleDomains`)
//! and for environments without DNS TXT access. The bidirectional check (ID-HANDLE-07) still applies
//! to whatever this returns: [`crate::IdentityResolver`] performs it.

use http::StatusCode;
use http::header::{self, HeaderValue};
use serde::Deserialize;
use url::Url;

use super::{HandleResolveError, HandleResolver};
use crate::http::{CONTENT_TYPE_JSON, HttpError, HttpRequest, SafeHttpClient};
use crate::syntax::{Did, Handle, TldPolicy};

/// The NSID of the method.
pub const RESOLVE_HANDLE_NSID: &str = "com.atproto.identity.resolveHandle";

/// Cap on the response size.
pub const MAX_XRPC_RESPONSE_BYTES: usize = 16 * 1024;

/// Resolves handles by asking a trusted service (`GET <base>/xrpc/com.atproto.identity.resolveHandle`).
///
/// 200 with `{"did": …}` is a result; 400 (the reference PDS answers `InvalidRequest` "Unable to
/// resolve handle") and 404 mean "not found".
#[derive(Debug, Clone)]
pub struct XrpcHandleResolver {
    http: SafeHttpClient,
    base: Url,
    tld_policy: TldPolicy,
}

#[derive(Deserialize)]
struct ResolveHandleOutput {
    did: String,
}

impl XrpcHandleResolver {
    /// A resolver asking the service at `base` (its origin; any path is replaced by `/xrpc/…`).
    pub fn new(http: SafeHttpClient, base: Url) -> Self {
        Self { http, base, tld_policy: TldPolicy::production() }
    }

    /// Which TLDs may be resolved (ID-HANDLE-03). Use [`TldPolicy::development`] for `.test` handles.
    #[must_use]
    pub fn tld_policy(mut self, policy: TldPolicy) -> Self {
        self.tld_policy = policy;
        self
    }

    fn url(&self, handle: &Handle) -> Url {
        let mut url = self.base.clone();
        url.set_path(&format!("/xrpc/{RESOLVE_HANDLE_NSID}"));
        url.set_fragment(None);
        url.query_pairs_mut().clear().append_pair("handle", handle.as_str());
        url
    }
}

#[async_trait::async_trait]
impl HandleResolver for XrpcHandleResolver {
    async fn resolve_handle(&self, handle: &Handle) -> Result<Did, HandleResolveError> {
        super::check_policy(handle, self.tld_policy)?;
        let http_err = |source| HandleResolveError::XrpcHttp { handle: handle.clone(), source };
        let request = HttpRequest::get(self.url(handle))
            .header(header::ACCEPT, HeaderValue::from_static(CONTENT_TYPE_JSON))
            .max_response_bytes(MAX_XRPC_RESPONSE_BYTES);
        let response = self.http.send(request).await.map_err(http_err)?;
        match response.status {
            StatusCode::OK => {}
            StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND => {
                return Err(HandleResolveError::NotFound { handle: handle.clone() });
            }
            status => return Err(http_err(HttpError::UnexpectedStatus { status })),
        }
        let output: ResolveHandleOutput =
            response.require_media_type(&[CONTENT_TYPE_JSON]).and_then(|r| r.json()).map_err(http_err)?;
        Did::new(output.did)
            .map_err(|source| HandleResolveError::InvalidXrpcDid { handle: handle.clone(), source })
    }
}
