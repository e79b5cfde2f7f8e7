//! [atrium-api](https://crates.io/crates/atrium-api)'s typed atproto client over an atauth session.
//!
//! [`AtriumSession`] implements atrium-xrpc's [`HttpClient`] and [`XrpcClient`] and atrium-api's
//! [`SessionManager`] over any [`XrpcSession`] of atauth-client: an OAuth session
//! ([`OAuthSession`](atauth_client::OAuthSession)) or a legacy app-password session
//! ([`PasswordSession`](atauth_client::PasswordSession)). atrium builds the typed request; the
//! session sends it, so every call gets what the session does for its own requests:
//!
//! - DPoP proofs (with `ath`) and per-origin nonces with exactly one retry (CL-RES-01, T-01 … T-04),
//!   or the legacy `Bearer` token;
//! - refresh ahead of expiry and once on `invalid_token` (legacy: on 401 or 400 `ExpiredToken`,
//!   T-24), single-flight across tasks (and processes, with a shared store), CL-RES-03;
//! - routing to the PDS that the account's DID document names, which a refresh may change, and
//!   never to another origin (CL-RES-02);
//! - the `atproto-proxy` header for calls a PDS forwards to an app view or the chat service:
//!   for one client ([`AtriumSession::with_proxy`], or atrium's `Agent::api_with_proxy`) or per
//!   NSID namespace ([`AtriumSession::with_namespace_proxy`]).
//!
//! The versions are pinned exactly (atrium-api `=0.26.0`, atrium-xrpc `=0.12.4`), with the
//! `namespace-appbsky` feature; enable more namespaces (`namespace-chatbsky`, …) on your own
//! atrium-api dependency and cargo unifies them.
//!
//! # Example
//!
//! ```no_run
//! use atauth_atrium::AtriumSession;
//! use atrium_api::agent::Agent;
//! use atrium_api::types::string::{Datetime, Nsid};
//! use atrium_api::types::TryIntoUnknown;
//!
//! # async fn demo(session: atauth_client::OAuthSession) -> Result<(), Box<dyn std::error::Error>> {
//! let agent = Agent::new(AtriumSession::new(session).await);
//! let did = agent.did().await.ok_or("no session")?;
//! let post = atrium_api::app::bsky::feed::post::RecordData {
//!     text: "hello from atauth".into(),
//!     created_at: Datetime::now(),
//!     embed: None, entities: None, facets: None, labels: None, langs: None, reply: None, tags: None,
//! };
//! let created = agent
//!     .api.com.atproto.repo
//!     .create_record(
//!         atrium_api::com::atproto::repo::create_record::InputData {
//!             collection: Nsid::new("app.bsky.feed.post".into())?,
//!             record: post.try_into_unknown()?,
//!             repo: did.into(),
//!             rkey: None, swap_commit: None, validate: None,
//!         }
//!         .into(),
//!     )
//!     .await?;
//! println!("{}", created.uri);
//! # Ok(()) }
//! ```

use std::sync::Arc;

use atauth_client::{RequestError, XrpcSession};
use atrium_api::agent::{CloneWithProxy, SessionManager};
use atrium_api::types::string::Did;
use atrium_xrpc::http::header::{HeaderName, HeaderValue};
use atrium_xrpc::http::{Request, Response};
use atrium_xrpc::{HttpClient, XrpcClient};
use bytes::Bytes;

pub use atauth_client;
pub use atrium_api;
pub use atrium_xrpc;

/// The `atproto-proxy` request header: which service (`did#service_id`) the PDS forwards to.
pub const ATPROTO_PROXY: HeaderName = HeaderName::from_static("atproto-proxy");
/// Bluesky's app view as a proxy target (`app.bsky.*` calls).
pub const BSKY_APPVIEW: &str = "did:web:api.bsky.app#bsky_appview";
/// Bluesky's chat service as a proxy target (`chat.bsky.*` calls, which PDSes do not route by
/// default).
pub const BSKY_CHAT: &str = "did:web:api.bsky.chat#bsky_chat";

/// Default cap on response bodies (as atauth-client's [`Agent`](atauth_client::Agent)).
const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// The `base_uri` of a session that cannot say where its PDS is (a third-party [`XrpcSession`]):
/// a reserved name (RFC 2606), only used to build request URIs that the session then routes.
const UNKNOWN_PDS: &str = "https://pds.invalid";

/// Why a proxy target was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidProxy(String);

impl std::fmt::Display for InvalidProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} is not a proxy target of the form did:method:id#service_id", self.0)
    }
}

impl std::error::Error for InvalidProxy {}

/// Checks `did#service_id` (what `atproto-proxy` carries) and returns it as a header value.
fn proxy_value(target: &str) -> Result<HeaderValue, InvalidProxy> {
    let bad = || InvalidProxy(target.to_owned());
    let (did, service) = target.split_once('#').ok_or_else(bad)?;
    let service_ok = !service.is_empty()
        && service.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if Did::new(did.to_owned()).is_err() || !service_ok {
        return Err(bad());
    }
    HeaderValue::from_str(target).map_err(|_| bad())
}

/// An atauth session as atrium's XRPC client and session manager. Cheap to clone (clones share the
/// session; a clone made by [`CloneWithProxy`] has its own proxy target).
///
/// `S` is any [`XrpcSession`]: [`OAuthSession`](atauth_client::OAuthSession) or
/// [`PasswordSession`](atauth_client::PasswordSession).
pub struct AtriumSession<S> {
    session: Arc<S>,
    /// `None` only if atrium's DID syntax refused a DID atauth accepted (they implement the same
    /// atproto rule); atrium's agent then reports no session instead of a panic here.
    did: Option<Did>,
    base: String,
    /// An invalid target given through [`CloneWithProxy`] (which cannot fail) is kept as the error
    /// and fails each request, rather than silently sending none.
    proxy: Option<Result<HeaderValue, InvalidProxy>>,
    namespace_proxies: Arc<Vec<(String, HeaderValue)>>,
    labelers: Option<Vec<String>>,
    max_response_bytes: usize,
}

impl<S> Clone for AtriumSession<S> {
    fn clone(&self) -> Self {
        Self {
            session: Arc::clone(&self.session),
            did: self.did.clone(),
            base: self.base.clone(),
            proxy: self.proxy.clone(),
            namespace_proxies: Arc::clone(&self.namespace_proxies),
            labelers: self.labelers.clone(),
            max_response_bytes: self.max_response_bytes,
        }
    }
}

impl<S> std::fmt::Debug for AtriumSession<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtriumSession")
            .field("did", &self.did.as_ref().map(Did::as_str))
            .field("base", &self.base)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

impl<S: XrpcSession + 'static> AtriumSession<S> {
    /// Wraps `session`. Its PDS URL becomes atrium's `base_uri`; requests are still routed to
    /// the session's PDS *at send time* (a refresh may move the account), and a request URI on any
    /// other origin is refused.
    ///
    /// ```no_run
    /// # async fn demo(session: atauth_client::PasswordSession) -> Result<(), Box<dyn std::error::Error>> {
    /// use atauth_atrium::AtriumSession;
    /// use atrium_api::client::AtpServiceClient;
    ///
    /// let client = AtpServiceClient::new(AtriumSession::new(session).await);
    /// let me = client.service.com.atproto.server.get_session().await?;
    /// println!("{}", me.handle.as_str());
    /// # Ok(()) }
    /// ```
    pub async fn new(session: S) -> Self {
        let base = session.pds_url().await.unwrap_or_else(|| UNKNOWN_PDS.to_owned());
        let did = Did::new(session.did().as_str().to_owned()).ok();
        Self {
            session: Arc::new(session),
            did,
            base: base.trim_end_matches('/').to_owned(),
            proxy: None,
            namespace_proxies: Arc::new(Vec::new()),
            labelers: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// Sends `atproto-proxy: target` (`did#service_id`, e.g. [`BSKY_APPVIEW`]) with every request
    /// of this client (atrium-api's `Agent::api_with_proxy` does the same for one service tree).
    ///
    /// ```no_run
    /// # async fn demo(session: atauth_client::OAuthSession) -> Result<(), Box<dyn std::error::Error>> {
    /// let appview = atauth_atrium::AtriumSession::new(session).await.with_proxy(atauth_atrium::BSKY_APPVIEW)?;
    /// # let _ = appview; Ok(()) }
    /// ```
    pub fn with_proxy(mut self, target: &str) -> Result<Self, InvalidProxy> {
        self.proxy = Some(Ok(proxy_value(target)?));
        Ok(self)
    }

    /// Sends `atproto-proxy: target` with the requests whose NSID starts with `namespace`
    /// (`"chat.bsky."` → [`BSKY_CHAT`]), unless the request already names a proxy. One client
    /// then serves PDS, app-view and chat calls.
    ///
    /// ```no_run
    /// # async fn demo(session: atauth_client::OAuthSession) -> Result<(), Box<dyn std::error::Error>> {
    /// use atauth_atrium::{AtriumSession, BSKY_CHAT};
    /// let client = AtriumSession::new(session).await.with_namespace_proxy("chat.bsky.", BSKY_CHAT)?;
    /// # let _ = client; Ok(()) }
    /// ```
    pub fn with_namespace_proxy(mut self, namespace: &str, target: &str) -> Result<Self, InvalidProxy> {
        let value = proxy_value(target)?;
        Arc::make_mut(&mut self.namespace_proxies).push((namespace.to_owned(), value));
        Ok(self)
    }

    /// Sends `atproto-accept-labelers` (labeler DIDs, `;redact` where wanted) with every request.
    #[must_use]
    pub fn with_labelers(mut self, labelers: Vec<String>) -> Self {
        self.labelers = Some(labelers);
        self
    }

    /// Caps response bodies (default 16 MiB).
    #[must_use]
    pub fn with_max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// The atauth session.
    pub fn session(&self) -> &S {
        &self.session
    }

    /// The proxy target of a request to `path` (`/xrpc/<nsid>`), if any.
    fn proxy_for(&self, path: &str) -> Result<Option<HeaderValue>, RequestError> {
        match &self.proxy {
            Some(Ok(v)) => Ok(Some(v.clone())),
            Some(Err(_)) => Err(RequestError::InvalidRequest("invalid atproto-proxy target")),
            None => {
                let nsid = path.strip_prefix("/xrpc/").unwrap_or_default();
                Ok(self
                    .namespace_proxies
                    .iter()
                    .find(|(ns, _)| nsid.starts_with(ns.as_str()))
                    .map(|(_, v)| v.clone()))
            }
        }
    }

    /// Sends one request through the session.
    async fn send(&self, request: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, RequestError> {
        let (parts, body) = request.into_parts();
        // CL-RES-02: only URIs on the base we gave atrium; the session picks the real PDS.
        let uri = parts.uri.to_string();
        let path_and_query = match uri.strip_prefix(&self.base) {
            Some(rest) if rest.starts_with('/') => rest,
            _ => return Err(RequestError::InvalidRequest("request URI is not on the session's PDS")),
        };
        let mut headers = parts.headers;
        if !headers.contains_key(&ATPROTO_PROXY)
            && let Some(proxy) = self.proxy_for(parts.uri.path())?
        {
            headers.insert(ATPROTO_PROXY, proxy);
        }
        let body = (!body.is_empty()).then(|| Bytes::from(body));
        let res = self
            .session
            .send_xrpc_with_headers(parts.method, path_and_query, headers, body, self.max_response_bytes)
            .await?;
        let mut out = Response::new(res.body.to_vec());
        *out.status_mut() = res.status;
        *out.headers_mut() = res.headers;
        Ok(out)
    }
}

/// Every request goes through the session; failures are a boxed [`RequestError`] inside
/// [`atrium_xrpc::Error::HttpClient`] (downcast it for the typed cause, e.g. an ended session).
impl<S: XrpcSession + 'static> HttpClient for AtriumSession<S> {
    async fn send_http(
        &self,
        request: Request<Vec<u8>>,
    ) -> Result<Response<Vec<u8>>, Box<dyn std::error::Error + Send + Sync + 'static>> {
        Ok(self.send(request).await?)
    }
}

/// No `authorization_token`: the session adds `Authorization` (and `DPoP`) itself, per attempt.
impl<S: XrpcSession + 'static> XrpcClient for AtriumSession<S> {
    fn base_uri(&self) -> String {
        self.base.clone()
    }

    async fn atproto_proxy_header(&self) -> Option<String> {
        match &self.proxy {
            Some(Ok(v)) => v.to_str().ok().map(str::to_owned),
            _ => None,
        }
    }

    async fn atproto_accept_labelers_header(&self) -> Option<Vec<String>> {
        self.labelers.clone()
    }
}

impl<S: XrpcSession + 'static> SessionManager for AtriumSession<S> {
    async fn did(&self) -> Option<Did> {
        self.did.clone()
    }
}

/// atrium-api's `Agent::api_with_proxy(did, service_type)` (e.g. `BSKY_CHAT_DID`, `bsky_chat`).
/// An invalid target makes the clone's requests fail with [`RequestError::InvalidRequest`].
impl<S: XrpcSession + 'static> CloneWithProxy for AtriumSession<S> {
    fn clone_with_proxy(&self, did: Did, service_type: impl AsRef<str>) -> Self {
        let mut clone = self.clone();
        clone.proxy = Some(proxy_value(&format!("{}#{}", did.as_str(), service_type.as_ref())));
        clone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_targets_are_checked() {
        assert!(proxy_value(BSKY_APPVIEW).is_ok());
        assert!(proxy_value(BSKY_CHAT).is_ok());
        for bad in ["did:web:api.bsky.app", "api.bsky.app#bsky_appview", "did:web:x#", "did:web:x#a b", "#x"]
        {
            assert_eq!(proxy_value(bad), Err(InvalidProxy(bad.to_owned())), "{bad}");
        }
    }
}
