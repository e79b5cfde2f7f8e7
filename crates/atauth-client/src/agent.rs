//! [`Agent`]: an authenticated XRPC client over any [`XrpcSession`] — an OAuth session (DPoP-bound)
//! or a legacy app-password session — with queries and procedures for any NSID, JSON in and out,
//! raw bodies for blobs, and typed XRPC errors.

use atauth_identity::http::HttpResponse;
use atauth_identity::{Did, Nsid};
use bytes::Bytes;
use http::Method;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{RequestError, XrpcErrorBody};
use crate::session::{DEFAULT_MAX_XRPC_RESPONSE_BYTES, OAuthSession};

/// A session that can send authenticated requests to its PDS.
#[async_trait::async_trait]
pub trait XrpcSession: Send + Sync {
    /// The account DID.
    fn did(&self) -> &Did;

    /// Sends a request to `path_and_query` (e.g. `/xrpc/com.atproto.server.getSession`) on the PDS,
    /// handling authentication, nonces and refresh.
    async fn send_xrpc(
        &self,
        method: Method,
        path_and_query: &str,
        content_type: Option<&str>,
        body: Option<Bytes>,
        max_response_bytes: usize,
    ) -> Result<HttpResponse, RequestError>;

    /// Like [`send_xrpc`](Self::send_xrpc), with extra request headers: `Content-Type`,
    /// `atproto-proxy`, `atproto-accept-labelers`, `Accept`, … (typed-API adapters such as
    /// `atauth-atrium` forward what their client sets). Headers that carry credentials or framing
    /// (`Authorization`, `DPoP`, `Host`, `Content-Length`, …) are the session's own and refused
    /// ([`check_extra_headers`]).
    ///
    /// The default implementation sends only `Content-Type` and refuses any other header, so a
    /// session type written before this method existed never drops a header silently; both
    /// sessions of this crate forward every allowed header.
    async fn send_xrpc_with_headers(
        &self,
        method: Method,
        path_and_query: &str,
        headers: HeaderMap,
        body: Option<Bytes>,
        max_response_bytes: usize,
    ) -> Result<HttpResponse, RequestError> {
        check_extra_headers(&headers)?;
        if headers.keys().any(|k| *k != header::CONTENT_TYPE) {
            return Err(RequestError::InvalidRequest("this session type cannot send extra headers"));
        }
        let content_type = content_type(&headers)?;
        self.send_xrpc(method, path_and_query, content_type.as_deref(), body, max_response_bytes).await
    }

    /// The URL of the PDS requests go to now, if the session knows it (it can change on refresh,
    /// when the account's DID document names another PDS).
    async fn pds_url(&self) -> Option<String> {
        None
    }
}

/// Request headers a caller may not set: the session adds the credentials (`Authorization`,
/// `DPoP`) itself, and the transport owns the framing and the connection.
const RESERVED_HEADERS: [HeaderName; 7] = [
    header::AUTHORIZATION,
    HeaderName::from_static("dpop"),
    header::HOST,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::CONNECTION,
    header::COOKIE,
];

/// Refuses extra headers that would replace the session's credentials or the transport's framing
/// ([`XrpcSession::send_xrpc_with_headers`]).
pub fn check_extra_headers(headers: &HeaderMap) -> Result<(), RequestError> {
    if RESERVED_HEADERS.iter().any(|h| headers.contains_key(h)) {
        return Err(RequestError::InvalidRequest(
            "Authorization, DPoP, Host, Cookie and framing headers are set by the session",
        ));
    }
    Ok(())
}

/// The single `Content-Type` of `headers`, if any.
fn content_type(headers: &HeaderMap) -> Result<Option<String>, RequestError> {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(RequestError::InvalidRequest("more than one Content-Type"));
    }
    first
        .map(|v| v.to_str().map(str::to_owned))
        .transpose()
        .map_err(|_| RequestError::InvalidRequest("content type"))
}

/// `headers` with `Content-Type: content_type` added, for the sessions' `send_xrpc`.
pub(crate) fn with_content_type(content_type: Option<&str>) -> Result<HeaderMap, RequestError> {
    let mut headers = HeaderMap::new();
    if let Some(ct) = content_type {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(ct).map_err(|_| RequestError::InvalidRequest("content type"))?,
        );
    }
    Ok(headers)
}

#[async_trait::async_trait]
impl XrpcSession for OAuthSession {
    fn did(&self) -> &Did {
        OAuthSession::did(self)
    }

    async fn send_xrpc(
        &self,
        method: Method,
        path_and_query: &str,
        content_type: Option<&str>,
        body: Option<Bytes>,
        max_response_bytes: usize,
    ) -> Result<HttpResponse, RequestError> {
        self.send(method, path_and_query, content_type, body, max_response_bytes).await
    }

    async fn send_xrpc_with_headers(
        &self,
        method: Method,
        path_and_query: &str,
        headers: HeaderMap,
        body: Option<Bytes>,
        max_response_bytes: usize,
    ) -> Result<HttpResponse, RequestError> {
        self.send_with_headers(method, path_and_query, headers, body, max_response_bytes).await
    }

    async fn pds_url(&self) -> Option<String> {
        Some(OAuthSession::pds_url(self).await)
    }
}

/// An authenticated XRPC client.
///
/// ```no_run
/// # async fn demo(session: atauth_client::OAuthSession) -> Result<(), atauth_client::RequestError> {
/// use atauth_client::Agent;
///
/// let agent = Agent::new(session);
/// let me: serde_json::Value = agent.query("com.atproto.server.getSession", &[]).await?;
/// let _record: serde_json::Value = agent
///     .procedure("com.atproto.repo.createRecord", &serde_json::json!({
///         "repo": agent.did(), "collection": "app.bsky.feed.post",
///         "record": { "text": "hello", "createdAt": "2026-01-01T00:00:00Z" }
///     }))
///     .await?;
/// let _blob: serde_json::Value = agent.procedure_raw("com.atproto.repo.uploadBlob", "image/png", vec![0u8; 16].into()).await?;
/// # let _ = me; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Agent<S> {
    session: S,
    max_response_bytes: usize,
}

fn xrpc_path(nsid: &str, params: &[(&str, &str)]) -> Result<String, RequestError> {
    Nsid::new(nsid).map_err(|_| RequestError::InvalidRequest("invalid NSID"))?;
    let mut path = format!("/xrpc/{nsid}");
    if !params.is_empty() {
        path.push('?');
        path.push_str(&url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish());
    }
    Ok(path)
}

fn check(res: HttpResponse) -> Result<HttpResponse, RequestError> {
    if res.status.is_success() {
        Ok(res)
    } else {
        Err(RequestError::Xrpc {
            status: res.status.as_u16(),
            body: serde_json::from_slice::<XrpcErrorBody>(&res.body).ok(),
        })
    }
}

fn json<T: DeserializeOwned>(res: &HttpResponse) -> Result<T, RequestError> {
    let body: &[u8] = if res.body.is_empty() { b"null" } else { &res.body };
    serde_json::from_slice(body).map_err(RequestError::InvalidBody)
}

impl<S: XrpcSession> Agent<S> {
    /// An agent over `session`.
    pub fn new(session: S) -> Self {
        Self { session, max_response_bytes: DEFAULT_MAX_XRPC_RESPONSE_BYTES }
    }

    /// Caps response bodies (default 16 MiB).
    #[must_use]
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// The session.
    pub fn session(&self) -> &S {
        &self.session
    }

    /// The account DID.
    pub fn did(&self) -> &Did {
        self.session.did()
    }

    /// The response-body cap.
    pub(crate) fn response_cap(&self) -> usize {
        self.max_response_bytes
    }

    /// `GET /xrpc/<nsid>?params` with a JSON response.
    pub async fn query<T: DeserializeOwned>(
        &self,
        nsid: &str,
        params: &[(&str, &str)],
    ) -> Result<T, RequestError> {
        let res = self
            .session
            .send_xrpc(Method::GET, &xrpc_path(nsid, params)?, None, None, self.max_response_bytes)
            .await?;
        json(&check(res)?)
    }

    /// `GET /xrpc/<nsid>?params`, returning the content type and raw body (e.g. `getBlob`).
    pub async fn query_raw(
        &self,
        nsid: &str,
        params: &[(&str, &str)],
    ) -> Result<(Option<String>, Bytes), RequestError> {
        let res = check(
            self.session
                .send_xrpc(Method::GET, &xrpc_path(nsid, params)?, None, None, self.max_response_bytes)
                .await?,
        )?;
        Ok((res.media_type(), res.body))
    }

    /// `POST /xrpc/<nsid>` with a JSON body and a JSON response (empty responses parse as `null`,
    /// so `()` works as `T`).
    pub async fn procedure<I: Serialize + ?Sized + Sync, T: DeserializeOwned>(
        &self,
        nsid: &str,
        input: &I,
    ) -> Result<T, RequestError> {
        let body = serde_json::to_vec(input).map_err(RequestError::InvalidBody)?;
        let res = self
            .session
            .send_xrpc(
                Method::POST,
                &xrpc_path(nsid, &[])?,
                Some("application/json"),
                Some(body.into()),
                self.max_response_bytes,
            )
            .await?;
        json(&check(res)?)
    }

    /// `POST /xrpc/<nsid>` with a raw body (e.g. `uploadBlob`) and a JSON response.
    pub async fn procedure_raw<T: DeserializeOwned>(
        &self,
        nsid: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<T, RequestError> {
        let res = self
            .session
            .send_xrpc(
                Method::POST,
                &xrpc_path(nsid, &[])?,
                Some(content_type),
                Some(body),
                self.max_response_bytes,
            )
            .await?;
        json(&check(res)?)
    }
}
