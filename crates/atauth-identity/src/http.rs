//! The one outbound HTTP layer of the project: [`SafeHttpClient`], an SSRF-hardened client over
//! `reqwest` (CL-DISC-07, AS-CMD-01).
//!
//! Every fetch of a URL that came from outside (handles, DID documents, OAuth protected-resource and
//! authorization-server metadata, client-metadata documents, JWKS, PAR/token endpoints) must go through
//! it. What it guarantees:
//!
//! - **Destination checks on resolved addresses.** Host names are resolved by an injectable
//!   [`AddressLookup`] and every address is classified by [`classify_ip`]; special-use addresses (RFC
//!   6890: private, loopback, link-local incl. `169.254.169.254`, CGNAT, ULA, documentation, multicast,
//!   IPv4-mapped/compatible/NAT64/6to4 forms of those, …) are dropped before connecting. IP-literal
//!   hosts (which `reqwest` never resolves) are checked against the same rules before the request.
//!   Refused addresses are filtered, not fatal: a name with one stray private record still connects
//!   to its public ones, and only when nothing is left does the request fail with
//!   [`HttpError::Blocked`]. The resolver's refusals travel through `reqwest`'s error chain and are
//!   recovered by downcasting, so the caller sees the typed reason.
//!   Proxies are disabled, so the check cannot be bypassed through an environment proxy.
//! - **`https` only.** With the development switch
//!   [`allow_http_loopback`](SafeHttpClientBuilder::allow_http_loopback), plain `http://` is accepted
//!   *to loopback addresses only*, and `https://` may reach loopback too; every other private range stays
//!   blocked. Plain `http://` goes through a second internal `reqwest` client whose resolver accepts
//!   loopback only, so the switch cannot open anything else.
//! - **No redirects.** A 3xx answer is [`HttpError::Redirect`]; it is never followed.
//! - **Bounded.** Connect and total timeouts ([`HttpError::Timeout`]); the total timeout is applied by
//!   `reqwest` and again around the whole fetch including the body. A `Content-Length` over the cap is
//!   refused up front; the body is read in chunks, and the fetch aborts as soon as it exceeds the cap
//!   ([`HttpError::TooLarge`]), before buffering more. Compression is not negotiated, so the cap is on
//!   bytes received.
//!
//! # Use from the OAuth client and server
//!
//! ```no_run
//! use atauth_identity::http::{HttpError, SafeHttpClient, HttpRequest};
//! use url::Url;
//!
//! # #[derive(serde::Deserialize)] struct ClientMetadata { client_id: String }
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let http = SafeHttpClient::builder().build()?;
//!
//! // AS-CMD-01: client-metadata document: exactly 200, JSON only, small cap, no redirects.
//! let client_id = Url::parse("https://app.example.com/oauth-client-metadata.json")?;
//! let meta: ClientMetadata = http.get_json_exact_200(&client_id, 5 * 1024).await?;
//!
//! // Anything else (POST, custom headers, any status): `send`, then check what you need.
//! let res = http
//!     .send(HttpRequest::post_form(Url::parse("https://pds.example.com/oauth/par")?, &[("client_id", "…")])
//!         .header(http::header::HeaderName::from_static("dpop"), http::HeaderValue::from_static("…"))
//!         .max_response_bytes(64 * 1024))
//!     .await?;
//! let nonce = res.headers.get("dpop-nonce");
//! # let _ = (meta.client_id, nonce);
//! # Ok(()) }
//! ```
//!
//! Errors are typed ([`HttpError`]); map them to `invalid_client_metadata` and friends in one place.

pub(crate) mod ip;
pub(crate) mod resolve;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use serde::de::DeserializeOwned;
use url::{Host, Url};

pub use ip::{BlockReason, classify_ip, is_loopback_destination};
pub use resolve::{AddressLookup, StaticAddressLookup, SystemAddressLookup};

use resolve::{AddressPolicy, FilteringResolver, Refusal, ResolveRejection};

/// `application/json`.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default total timeout (connect + request + whole body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default response body cap when a request does not set one.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Why an outbound fetch failed. One variant per check.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The URL's scheme is not `https` (or `http` with the development switch).
    #[error("URL scheme {scheme:?} is not allowed (https only)")]
    SchemeNotAllowed {
        /// The scheme found.
        scheme: String,
    },
    /// The URL has no host.
    #[error("URL has no host")]
    MissingHost,
    /// The URL contains a user name or password.
    #[error("URL must not contain credentials")]
    CredentialsInUrl,
    /// The destination address (an IP literal, or every address the host resolved to) is special-use.
    #[error("destination {addr} is not allowed: {reason}")]
    Blocked {
        /// The refused address (the first one, when a name resolved to several).
        addr: IpAddr,
        /// Why it was refused.
        reason: BlockReason,
    },
    /// Plain `http://` (development mode) to an address that is not loopback.
    #[error("plain http is only allowed to loopback addresses, not {addr}")]
    PlainHttpToNonLoopback {
        /// The refused address.
        addr: IpAddr,
    },
    /// Looking up the host name failed.
    #[error("could not resolve {host}: {source}")]
    Dns {
        /// The host name.
        host: String,
        /// The resolver's error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The host name resolved to no addresses.
    #[error("{host} resolved to no addresses")]
    NoAddresses {
        /// The host name.
        host: String,
    },
    /// The connect or total timeout elapsed.
    #[error("request timed out")]
    Timeout,
    /// The TCP/TLS connection could not be established.
    #[error("connection failed: {0}")]
    Connect(#[source] Arc<reqwest::Error>),
    /// Any other transport or protocol error.
    #[error("HTTP transport error: {0}")]
    Transport(#[source] Arc<reqwest::Error>),
    /// The server answered with a redirect; redirects are never followed.
    #[error("redirect ({status}) refused")]
    Redirect {
        /// The 3xx status.
        status: StatusCode,
        /// The `Location` header, if any (for diagnostics only).
        location: Option<String>,
    },
    /// The status is not the one required.
    #[error("unexpected HTTP status {status}")]
    UnexpectedStatus {
        /// The status received.
        status: StatusCode,
    },
    /// The `Content-Type` is missing or not one of the accepted types.
    #[error("unexpected content type {found:?}")]
    UnexpectedContentType {
        /// The media type received (without parameters), if any.
        found: Option<String>,
    },
    /// The body exceeded the cap (detected while streaming, or from `Content-Length`).
    #[error("response body exceeds {limit} bytes")]
    TooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// The body is not valid JSON for the expected type.
    #[error("invalid JSON body: {0}")]
    InvalidJson(#[source] Arc<serde_json::Error>),
    /// The body is not UTF-8 text.
    #[error("response body is not UTF-8")]
    InvalidUtf8,
}

impl HttpError {
    fn from_refusal(addr: IpAddr, refusal: Refusal) -> Self {
        match refusal {
            Refusal::Blocked(reason) => Self::Blocked { addr, reason },
            Refusal::NotLoopback => Self::PlainHttpToNonLoopback { addr },
        }
    }

    fn from_reqwest(err: reqwest::Error) -> Self {
        // Our resolver's rejections travel inside reqwest's error chain.
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        while let Some(e) = source {
            if let Some(r) = e.downcast_ref::<ResolveRejection>() {
                return match r {
                    ResolveRejection::Refused { addr, refusal } => Self::from_refusal(*addr, *refusal),
                    ResolveRejection::LookupFailed { host, source } => {
                        Self::Dns { host: host.clone(), source: Arc::clone(source) }
                    }
                    ResolveRejection::NoAddresses { host } => Self::NoAddresses { host: host.clone() },
                };
            }
            source = e.source();
        }
        if err.is_timeout() {
            Self::Timeout
        } else if err.is_connect() {
            Self::Connect(Arc::new(err))
        } else {
            Self::Transport(Arc::new(err))
        }
    }

    /// Whether retrying later might succeed (timeouts, connection and DNS failures, 5xx). Policy
    /// refusals, 4xx, bad content and oversize bodies are permanent for the same URL.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout | Self::Connect(_) | Self::Transport(_) | Self::Dns { .. } => true,
            Self::UnexpectedStatus { status } => status.is_server_error(),
            _ => false,
        }
    }
}

/// Failure to build a [`SafeHttpClient`] (TLS backend initialisation).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpBuildError {
    /// `reqwest` could not build its client.
    #[error("could not build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The user agent is not a valid header value.
    #[error("invalid user agent")]
    InvalidUserAgent,
}

/// An outbound request for [`SafeHttpClient::send`].
#[derive(Debug, Clone)]
pub struct HttpRequest {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Bytes>,
    max_response_bytes: Option<usize>,
    timeout: Option<Duration>,
}

impl HttpRequest {
    /// A request with `method` to `url`, no body.
    pub fn new(method: Method, url: Url) -> Self {
        Self { method, url, headers: HeaderMap::new(), body: None, max_response_bytes: None, timeout: None }
    }

    /// A `GET` request.
    pub fn get(url: Url) -> Self {
        Self::new(Method::GET, url)
    }

    /// A `POST` with an `application/x-www-form-urlencoded` body built from `pairs`.
    pub fn post_form(url: Url, pairs: &[(&str, &str)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        Self::new(Method::POST, url)
            .header(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"))
            .body(body)
    }

    /// A `POST` with a JSON body.
    pub fn post_json(url: Url, value: &impl serde::Serialize) -> Result<Self, serde_json::Error> {
        let body = serde_json::to_vec(value)?;
        Ok(Self::new(Method::POST, url)
            .header(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_JSON))
            .body(body))
    }

    /// Adds a header (appends; does not replace an existing one).
    #[must_use]
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Sets the request body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Caps the response body (default: the client's
    /// [`default_max_response_bytes`](SafeHttpClientBuilder::default_max_response_bytes)).
    #[must_use]
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = Some(limit);
        self
    }

    /// Overrides the client's total timeout for this request.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The request URL.
    pub fn url(&self) -> &Url {
        &self.url
    }
}

/// A complete response: status, headers and the (capped) body.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpResponse {
    /// The status (never 3xx: redirects are errors).
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole body, at most the request's cap.
    pub body: Bytes,
    /// The URL that was fetched.
    pub url: Url,
}

impl HttpResponse {
    /// The media type of `Content-Type`, lowercase and without parameters (`application/json` for
    /// `Application/JSON; charset=utf-8`).
    pub fn media_type(&self) -> Option<String> {
        let value = self.headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        let essence = value.split(';').next().unwrap_or("").trim();
        (!essence.is_empty()).then(|| essence.to_ascii_lowercase())
    }

    /// Requires exactly `expected` as the status.
    pub fn require_status(self, expected: StatusCode) -> Result<Self, HttpError> {
        if self.status == expected {
            Ok(self)
        } else {
            Err(HttpError::UnexpectedStatus { status: self.status })
        }
    }

    /// Requires the media type to be one of `accepted` (compared case-insensitively, parameters
    /// ignored).
    pub fn require_media_type(self, accepted: &[&str]) -> Result<Self, HttpError> {
        match self.media_type() {
            Some(found) if accepted.iter().any(|a| a.eq_ignore_ascii_case(&found)) => Ok(self),
            found => Err(HttpError::UnexpectedContentType { found }),
        }
    }

    /// Parses the body as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::InvalidJson(Arc::new(e)))
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, HttpError> {
        std::str::from_utf8(&self.body).map_err(|_| HttpError::InvalidUtf8)
    }
}

/// Builder for [`SafeHttpClient`].
#[derive(Clone)]
pub struct SafeHttpClientBuilder {
    connect_timeout: Duration,
    timeout: Duration,
    allow_http_loopback: bool,
    user_agent: String,
    default_max_response_bytes: usize,
    lookup: Arc<dyn AddressLookup>,
}

impl std::fmt::Debug for SafeHttpClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafeHttpClientBuilder")
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("allow_http_loopback", &self.allow_http_loopback)
            .field("user_agent", &self.user_agent)
            .field("default_max_response_bytes", &self.default_max_response_bytes)
            .finish_non_exhaustive()
    }
}

impl Default for SafeHttpClientBuilder {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            allow_http_loopback: false,
            user_agent: concat!("atauth/", env!("CARGO_PKG_VERSION")).to_owned(),
            default_max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            lookup: Arc::new(SystemAddressLookup),
        }
    }
}

impl SafeHttpClientBuilder {
    /// Timeout for establishing the TCP (and TLS) connection. Default 5 s.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Total timeout: connect, request, and reading the whole body. Default 10 s.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// **Development only.** Allow plain `http://` URLs, but only to loopback addresses, and allow
    /// `https://` to reach loopback addresses. Every other special-use range stays blocked. Default off.
    #[must_use]
    pub fn allow_http_loopback(mut self, allow: bool) -> Self {
        self.allow_http_loopback = allow;
        self
    }

    /// The `User-Agent` header. Default `atauth/<version>`.
    #[must_use]
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Response body cap for requests that do not set their own. Default 1 MiB.
    #[must_use]
    pub fn default_max_response_bytes(mut self, limit: usize) -> Self {
        self.default_max_response_bytes = limit;
        self
    }

    /// The host-name resolver (default: [`SystemAddressLookup`]). The SSRF checks apply to whatever it
    /// returns.
    #[must_use]
    pub fn address_lookup(mut self, lookup: impl AddressLookup) -> Self {
        self.lookup = Arc::new(lookup);
        self
    }

    /// Like [`address_lookup`](Self::address_lookup), for a shared resolver.
    #[must_use]
    pub fn address_lookup_arc(mut self, lookup: Arc<dyn AddressLookup>) -> Self {
        self.lookup = lookup;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<SafeHttpClient, HttpBuildError> {
        if HeaderValue::from_str(&self.user_agent).is_err() {
            return Err(HttpBuildError::InvalidUserAgent);
        }
        let https_policy = AddressPolicy::Public { allow_loopback: self.allow_http_loopback };
        let https = self.reqwest_client(https_policy)?;
        let http = if self.allow_http_loopback {
            Some(self.reqwest_client(AddressPolicy::LoopbackOnly)?)
        } else {
            None
        };
        Ok(SafeHttpClient {
            inner: Arc::new(Inner {
                https,
                https_policy,
                http,
                timeout: self.timeout,
                default_max_response_bytes: self.default_max_response_bytes,
            }),
        })
    }

    fn reqwest_client(&self, policy: AddressPolicy) -> Result<reqwest::Client, HttpBuildError> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .referer(false)
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .user_agent(self.user_agent.as_str())
            .dns_resolver(FilteringResolver { lookup: Arc::clone(&self.lookup), policy })
            .build()
            .map_err(HttpBuildError::Client)
    }
}

struct Inner {
    https: reqwest::Client,
    https_policy: AddressPolicy,
    /// Present only with `allow_http_loopback`; its resolver accepts loopback addresses only.
    http: Option<reqwest::Client>,
    timeout: Duration,
    default_max_response_bytes: usize,
}

/// The SSRF-hardened outbound HTTP client. Cheap to clone (shared connection pools).
///
/// See the [module documentation](self) for the guarantees and usage.
#[derive(Clone)]
pub struct SafeHttpClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SafeHttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafeHttpClient")
            .field("allow_http_loopback", &self.inner.http.is_some())
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl SafeHttpClient {
    /// A builder with production defaults (https only, 5 s connect, 10 s total, 1 MiB bodies).
    pub fn builder() -> SafeHttpClientBuilder {
        SafeHttpClientBuilder::default()
    }

    /// Whether the development switch [`SafeHttpClientBuilder::allow_http_loopback`] is on.
    pub fn allows_http_loopback(&self) -> bool {
        self.inner.http.is_some()
    }

    /// Checks a URL without fetching it: scheme, credentials, host, and IP-literal hosts against the
    /// address policy. (Host names are checked after resolution, when fetching.)
    pub fn check_url(&self, url: &Url) -> Result<(), HttpError> {
        self.client_for(url).map(|_| ())
    }

    fn client_for(&self, url: &Url) -> Result<&reqwest::Client, HttpError> {
        if !url.username().is_empty() || url.password().is_some() {
            return Err(HttpError::CredentialsInUrl);
        }
        let (client, policy) = match url.scheme() {
            "https" => (&self.inner.https, self.inner.https_policy),
            "http" => match &self.inner.http {
                Some(client) => (client, AddressPolicy::LoopbackOnly),
                None => {
                    return Err(HttpError::SchemeNotAllowed { scheme: "http".to_owned() });
                }
            },
            other => {
                return Err(HttpError::SchemeNotAllowed { scheme: other.to_owned() });
            }
        };
        // reqwest connects to IP-literal hosts directly, without asking the resolver: check them here.
        let literal = match url.host() {
            None => return Err(HttpError::MissingHost),
            Some(Host::Domain("")) => return Err(HttpError::MissingHost),
            Some(Host::Domain(_)) => None,
            Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        };
        if let Some(addr) = literal {
            policy.check(addr).map_err(|refusal| HttpError::from_refusal(addr, refusal))?;
        }
        Ok(client)
    }

    /// Sends `request` and reads the whole body (capped). Redirects are errors; any other status is
    /// returned for the caller to judge.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let HttpRequest { method, url, headers, body, max_response_bytes, timeout } = request;
        let client = self.client_for(&url)?;
        let limit = max_response_bytes.unwrap_or(self.inner.default_max_response_bytes);
        let total = timeout.unwrap_or(self.inner.timeout);
        let fetch = async {
            let mut builder = client.request(method, url.clone()).headers(headers).timeout(total);
            if let Some(body) = body {
                builder = builder.body(body);
            }
            let mut response = builder.send().await.map_err(HttpError::from_reqwest)?;
            let status = response.status();
            if status.is_redirection() {
                let location =
                    response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
                return Err(HttpError::Redirect { status, location });
            }
            let declared = response.content_length();
            if declared.is_some_and(|len| len > limit as u64) {
                return Err(HttpError::TooLarge { limit });
            }
            let headers = std::mem::take(response.headers_mut());
            let capacity = declared.map_or(0, |len| usize::try_from(len).unwrap_or(limit));
            let mut buf = BytesMut::with_capacity(capacity.min(limit));
            while let Some(chunk) = response.chunk().await.map_err(HttpError::from_reqwest)? {
                if buf.len().saturating_add(chunk.len()) > limit {
                    return Err(HttpError::TooLarge { limit });
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(HttpResponse { status, headers, body: buf.freeze(), url: url.clone() })
        };
        match tokio::time::timeout(total, fetch).await {
            Ok(result) => result,
            Err(_elapsed) => Err(HttpError::Timeout),
        }
    }

    /// `GET url` requiring status exactly 200 and `Content-Type: application/json`, body at most
    /// `max_bytes`, parsed as `T`. This is the shape for client-metadata (AS-CMD-01), OAuth
    /// protected-resource and authorization-server metadata, and JWKS fetches.
    pub async fn get_json_exact_200<T: DeserializeOwned>(
        &self,
        url: &Url,
        max_bytes: usize,
    ) -> Result<T, HttpError> {
        self.get_json_exact_200_with_types(url, max_bytes, &[CONTENT_TYPE_JSON]).await
    }

    /// Like [`get_json_exact_200`](Self::get_json_exact_200), accepting any of `media_types` (e.g.
    /// `application/did+ld+json` for DID documents).
    pub async fn get_json_exact_200_with_types<T: DeserializeOwned>(
        &self,
        url: &Url,
        max_bytes: usize,
        media_types: &[&str],
    ) -> Result<T, HttpError> {
        let accept = media_types.join(", ");
        let mut request = HttpRequest::get(url.clone()).max_response_bytes(max_bytes);
        if let Ok(value) = HeaderValue::from_str(&accept) {
            request = request.header(header::ACCEPT, value);
        }
        self.send(request).await?.require_status(StatusCode::OK)?.require_media_type(media_types)?.json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(dev: bool) -> SafeHttpClient {
        SafeHttpClient::builder().allow_http_loopback(dev).build().expect("client")
    }

    fn url(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    #[test]
    fn url_checks_without_network() {
        let prod = client(false);
        assert!(prod.check_url(&url("https://example.com/x")).is_ok());
        assert!(matches!(
            prod.check_url(&url("http://example.com/")),
            Err(HttpError::SchemeNotAllowed { scheme }) if scheme == "http"
        ));
        assert!(matches!(
            prod.check_url(&url("ftp://example.com/")),
            Err(HttpError::SchemeNotAllowed { .. })
        ));
        assert!(matches!(
            prod.check_url(&url("https://user:pw@example.com/")),
            Err(HttpError::CredentialsInUrl)
        ));
        assert!(matches!(
            prod.check_url(&url("https://127.0.0.1/")),
            Err(HttpError::Blocked { reason: BlockReason::Loopback, .. })
        ));
        // WHATWG URL parsing normalises odd IPv4 spellings, so they are still caught.
        assert!(matches!(
            prod.check_url(&url("https://0x7f.1/")),
            Err(HttpError::Blocked { reason: BlockReason::Loopback, .. })
        ));
        assert!(matches!(
            prod.check_url(&url("https://2130706433/")),
            Err(HttpError::Blocked { reason: BlockReason::Loopback, .. })
        ));

        let dev = client(true);
        assert!(dev.check_url(&url("http://127.0.0.1:8080/")).is_ok());
        assert!(dev.check_url(&url("http://[::1]:8080/")).is_ok());
        assert!(dev.check_url(&url("https://127.0.0.1/")).is_ok());
        assert!(matches!(
            dev.check_url(&url("http://10.0.0.1/")),
            Err(HttpError::PlainHttpToNonLoopback { .. })
        ));
        assert!(matches!(
            dev.check_url(&url("https://10.0.0.1/")),
            Err(HttpError::Blocked { reason: BlockReason::Private, .. })
        ));
    }

    #[test]
    fn media_type_ignores_parameters_and_case() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("Application/JSON; charset=utf-8"));
        let res = HttpResponse {
            status: StatusCode::OK,
            headers,
            body: Bytes::new(),
            url: url("https://example.com/"),
        };
        assert_eq!(res.media_type().as_deref(), Some("application/json"));
        assert!(res.require_media_type(&[CONTENT_TYPE_JSON]).is_ok());
    }
}
