//! The common atproto jobs on an [`Agent`], without a typed-API crate: post text (with link and
//! mention facets at UTF-8 byte offsets), like, follow, upload a blob, read a profile and the
//! timeline, read, list (with cursors) and delete records, each a thin JSON call over the session
//! (so DPoP, nonces, refresh and routing are the session's), with [`ApiError`] naming the failures
//! an app handles: [`ExpiredToken`](ApiError::ExpiredToken),
//! [`RateLimited { reset }`](ApiError::RateLimited), [`ScopeMissing { needed }`](ApiError::ScopeMissing).
//!
//! For the whole API with generated types, see the `atauth-atrium` crate (atrium-api over the same
//! sessions).
//!
//! ```no_run
//! # async fn demo(session: atauth_client::OAuthSession) -> Result<(), atauth_client::api::ApiError> {
//! use atauth_client::Agent;
//! use atauth_client::api::ApiError;
//!
//! let agent = Agent::new(session);
//! let post = agent.post("hello @bob.test, see https://atproto.com").await?;
//! agent.like(&post).await?;
//! match agent.get_timeline(Some(30), None).await {
//!     Ok(page) => println!("{} posts, more: {}", page.items.len(), page.cursor.is_some()),
//!     Err(ApiError::RateLimited { reset }) => println!("rate limited until {reset:?}"),
//!     Err(ApiError::ScopeMissing { needed }) => println!("log in again granting {needed:?}"),
//!     Err(e) => return Err(e),
//! }
//! # Ok(()) }
//! ```

use atauth_crypto::clock::{UtcDateTime, unix_seconds};
use atauth_identity::Handle;
use atauth_identity::http::HttpResponse;
use bytes::Bytes;
use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::agent::{Agent, XrpcSession};
use crate::error::{RequestError, XrpcErrorBody};

/// A failed API call, by what the caller does about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The access token was refused as expired even after the session's refresh (or could not be
    /// refreshed): sign in again.
    #[error("the access token has expired; sign in again")]
    ExpiredToken,
    /// 429: wait until `reset` (Unix seconds, from `ratelimit-reset`) before retrying.
    #[error("rate limited (reset at {reset:?})")]
    RateLimited {
        /// When the limit resets (Unix seconds), if the server said.
        reset: Option<i64>,
    },
    /// 403 `ScopeMissingError` (RS-WWW-02): the session was not granted `needed`; sign in again
    /// asking for it.
    #[error("the session lacks the scope {needed:?}")]
    ScopeMissing {
        /// The scope the server named, if it did.
        needed: Option<String>,
    },
    /// Any other XRPC error answer.
    #[error("XRPC error {status}: {error:?}: {message:?}")]
    Xrpc {
        /// HTTP status.
        status: u16,
        /// The `error` name (`RecordNotFound`, `InvalidRequest`, …).
        error: Option<String>,
        /// The message.
        message: Option<String>,
    },
    /// The request could not be made (transport, refresh failure, invalid input).
    #[error(transparent)]
    Request(RequestError),
    /// A success answer without the expected fields.
    #[error("unexpected response: {0}")]
    InvalidResponse(String),
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::Xrpc { status, body } => classify(status, body, None),
            other => Self::Request(other),
        }
    }
}

/// The [`ApiError`] of an XRPC error answer.
fn classify(status: u16, body: Option<XrpcErrorBody>, reset: Option<i64>) -> ApiError {
    let (error, message) = body.map_or((None, None), |b| (Some(b.error), b.message));
    match (status, error.as_deref()) {
        (429, _) => ApiError::RateLimited { reset },
        (403, Some("ScopeMissingError")) => ApiError::ScopeMissing {
            // `Missing required scope "repo:app.bsky.feed.post?action=create"` (reference and ours).
            needed: message.as_deref().and_then(|m| m.split('"').nth(1)).map(str::to_owned),
        },
        (400 | 401, Some("ExpiredToken" | "invalid_token")) => ApiError::ExpiredToken,
        _ => ApiError::Xrpc { status, error, message },
    }
}

/// The response if it is a success, else its [`ApiError`].
fn check(res: HttpResponse) -> Result<HttpResponse, ApiError> {
    if res.status.is_success() {
        return Ok(res);
    }
    let reset = res.headers.get("ratelimit-reset").and_then(|v| v.to_str().ok()?.trim().parse().ok());
    let status = res.status.as_u16();
    // A refused DPoP token after the session's one refresh: 401 + `WWW-Authenticate: DPoP
    // error="invalid_token"` (the body may be an XRPC error or nothing).
    if crate::dpop::is_invalid_token(&res) {
        return Err(ApiError::ExpiredToken);
    }
    Err(classify(status, serde_json::from_slice(&res.body).ok(), reset))
}

fn parse<T: serde::de::DeserializeOwned>(res: &HttpResponse) -> Result<T, ApiError> {
    serde_json::from_slice(&res.body).map_err(|e| ApiError::InvalidResponse(e.to_string()))
}

/// A reference to one version of a record: what `createRecord` returns and what likes and replies
/// point at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrongRef {
    /// `at://did/collection/rkey`.
    pub uri: String,
    /// The record's CID.
    pub cid: String,
}

/// One record as `getRecord` / `listRecords` return it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// `at://did/collection/rkey`.
    pub uri: String,
    /// The record's CID.
    #[serde(default)]
    pub cid: Option<String>,
    /// The record.
    pub value: Value,
}

/// One page of a list, and the cursor of the next page (`None`: the last page).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass it back to get the next page.
    pub cursor: Option<String>,
}

/// A rich-text facet: a byte range of the text (UTF-8 offsets, as the lexicon requires) and what
/// it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facet {
    /// First byte.
    pub byte_start: usize,
    /// One past the last byte.
    pub byte_end: usize,
    /// What the range is.
    pub feature: FacetFeature,
}

/// What a [`Facet`] marks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FacetFeature {
    /// A link (`app.bsky.richtext.facet#link`).
    Link(String),
    /// A mention (`app.bsky.richtext.facet#mention`), by DID.
    Mention(String),
}

impl Facet {
    /// The `app.bsky.richtext.facet` JSON.
    pub fn to_json(&self) -> Value {
        let feature = match &self.feature {
            FacetFeature::Link(uri) => json!({ "$type": "app.bsky.richtext.facet#link", "uri": uri }),
            FacetFeature::Mention(did) => json!({ "$type": "app.bsky.richtext.facet#mention", "did": did }),
        };
        json!({ "index": { "byteStart": self.byte_start, "byteEnd": self.byte_end }, "features": [feature] })
    }
}

/// A candidate found in text, before mentions are resolved to DIDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detected {
    /// `http(s)://…` at these bytes.
    Link {
        /// First byte.
        start: usize,
        /// One past the last byte.
        end: usize,
        /// The URL.
        uri: String,
    },
    /// `@handle` at these bytes (the `@` included).
    Mention {
        /// First byte (the `@`).
        start: usize,
        /// One past the last byte.
        end: usize,
        /// The handle, without `@`.
        handle: String,
    },
}

/// Trailing characters that end a sentence rather than a URL or handle.
fn trim_trailing(word: &str) -> &str {
    let mut w = word.trim_end_matches(['.', ',', ';', ':', '!', '?', '"', '\'']);
    // A closing parenthesis belongs to the URL only if it opened one inside it.
    while w.ends_with(')') && w.matches('(').count() < w.matches(')').count() {
        w = w[..w.len() - 1].trim_end_matches(['.', ',', ';', ':', '!', '?', '"', '\'']);
    }
    w
}

/// Finds links (`http://`, `https://`) and `@handle` mentions in `text`, with UTF-8 byte offsets.
/// Handles must be valid handle syntax; a mention must start the text or follow whitespace or `(`.
///
/// ```
/// use atauth_client::api::{detect_facets, Detected};
/// let found = detect_facets("✨ @bob.test https://x.example/a.");
/// assert_eq!(found[0], Detected::Mention { start: 4, end: 13, handle: "bob.test".into() });
/// assert_eq!(found[1], Detected::Link { start: 14, end: 33, uri: "https://x.example/a".into() });
/// ```
pub fn detect_facets(text: &str) -> Vec<Detected> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        if !c.is_whitespace() {
            continue;
        }
        let word = &text[start..i];
        let word_start = start;
        start = i + c.len_utf8();
        let lead = word.len() - word.trim_start_matches('(').len();
        let (word, at) = (&word[lead..], word_start + lead);
        if word.starts_with("https://") || word.starts_with("http://") {
            let uri = trim_trailing(word);
            if url::Url::parse(uri).is_ok_and(|u| u.host_str().is_some_and(|h| !h.is_empty())) {
                out.push(Detected::Link { start: at, end: at + uri.len(), uri: uri.to_owned() });
            }
        } else if let Some(rest) = word.strip_prefix('@') {
            let handle = trim_trailing(rest);
            if Handle::new(handle).is_ok() {
                out.push(Detected::Mention {
                    start: at,
                    end: at + 1 + handle.len(),
                    handle: handle.to_owned(),
                });
            }
        }
    }
    out
}

/// `createdAt` for a record: now, RFC 3339 UTC.
fn now_rfc3339() -> String {
    let t = UtcDateTime::from_unix(unix_seconds(std::time::SystemTime::now()));
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z", t.year, t.month, t.day, t.hour, t.minute, t.second)
}

/// `at://did/collection/rkey` → its three parts.
fn split_at_uri(uri: &str) -> Result<(&str, &str, &str), ApiError> {
    let rest = uri
        .strip_prefix("at://")
        .ok_or(ApiError::Request(RequestError::InvalidRequest("not an at:// URI")))?;
    let mut parts = rest.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(repo), Some(collection), Some(rkey))
            if !repo.is_empty() && !collection.is_empty() && !rkey.is_empty() =>
        {
            Ok((repo, collection, rkey))
        }
        _ => Err(ApiError::Request(RequestError::InvalidRequest(
            "at:// URI without repo, collection and rkey",
        ))),
    }
}

fn query_path(nsid: &str, params: &[(&str, &str)]) -> String {
    let mut path = format!("/xrpc/{nsid}");
    if !params.is_empty() {
        path.push('?');
        path.push_str(&url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish());
    }
    path
}

impl<S: XrpcSession> Agent<S> {
    async fn api_get<T: serde::de::DeserializeOwned>(
        &self,
        nsid: &str,
        params: &[(&str, &str)],
    ) -> Result<T, ApiError> {
        let res = self
            .session()
            .send_xrpc(Method::GET, &query_path(nsid, params), None, None, self.response_cap())
            .await?;
        parse(&check(res)?)
    }

    async fn api_post<T: serde::de::DeserializeOwned>(
        &self,
        nsid: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<T, ApiError> {
        let res = self
            .session()
            .send_xrpc(
                Method::POST,
                &query_path(nsid, &[]),
                Some(content_type),
                Some(body),
                self.response_cap(),
            )
            .await?;
        let res = check(res)?;
        let body: &[u8] = if res.body.is_empty() { b"null" } else { &res.body };
        serde_json::from_slice(body).map_err(|e| ApiError::InvalidResponse(e.to_string()))
    }

    async fn api_post_json<T: serde::de::DeserializeOwned>(
        &self,
        nsid: &str,
        input: &Value,
    ) -> Result<T, ApiError> {
        self.api_post(nsid, "application/json", Bytes::from(input.to_string())).await
    }

    /// `com.atproto.repo.createRecord` in the session's repo.
    pub async fn create_record(&self, collection: &str, record: Value) -> Result<StrongRef, ApiError> {
        let input = json!({ "repo": self.did(), "collection": collection, "record": record });
        self.api_post_json("com.atproto.repo.createRecord", &input).await
    }

    /// `com.atproto.repo.getRecord` of `at://did/collection/rkey` (any repo).
    pub async fn get_record(&self, uri: &str) -> Result<Record, ApiError> {
        let (repo, collection, rkey) = split_at_uri(uri)?;
        self.api_get(
            "com.atproto.repo.getRecord",
            &[("repo", repo), ("collection", collection), ("rkey", rkey)],
        )
        .await
    }

    /// `com.atproto.repo.deleteRecord` of `at://did/collection/rkey` in the session's repo.
    pub async fn delete_record(&self, uri: &str) -> Result<(), ApiError> {
        let (repo, collection, rkey) = split_at_uri(uri)?;
        let input = json!({ "repo": repo, "collection": collection, "rkey": rkey });
        let _: Value = self.api_post_json("com.atproto.repo.deleteRecord", &input).await?;
        Ok(())
    }

    /// One page of `com.atproto.repo.listRecords` of `collection` in `repo` (newest first);
    /// pass the returned cursor back for the next page.
    ///
    /// ```no_run
    /// # async fn demo(agent: atauth_client::Agent<atauth_client::OAuthSession>) -> Result<(), atauth_client::api::ApiError> {
    /// let did = agent.did().to_string();
    /// let mut cursor = None;
    /// loop {
    ///     let page = agent.list_records(&did, "app.bsky.feed.post", 50, cursor.as_deref()).await?;
    ///     for record in &page.items { println!("{}", record.uri); }
    ///     match page.cursor { Some(c) => cursor = Some(c), None => break }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_records(
        &self,
        repo: &str,
        collection: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Record>, ApiError> {
        #[derive(Deserialize)]
        struct Out {
            records: Vec<Record>,
            cursor: Option<String>,
        }
        let limit = limit.to_string();
        let mut params = vec![("repo", repo), ("collection", collection), ("limit", limit.as_str())];
        if let Some(c) = cursor {
            params.push(("cursor", c));
        }
        let out: Out = self.api_get("com.atproto.repo.listRecords", &params).await?;
        // An empty page ends the list even if the server still sent a cursor.
        let cursor = out.cursor.filter(|_| !out.records.is_empty());
        Ok(Page { items: out.records, cursor })
    }

    /// Posts `text` (`app.bsky.feed.post`), with facets for its links and for the mentions whose
    /// handle resolves (through the PDS's `com.atproto.identity.resolveHandle`; unresolvable
    /// mentions stay plain text).
    pub async fn post(&self, text: &str) -> Result<StrongRef, ApiError> {
        let mut facets = Vec::new();
        for found in detect_facets(text) {
            match found {
                Detected::Link { start, end, uri } => {
                    facets.push(Facet { byte_start: start, byte_end: end, feature: FacetFeature::Link(uri) });
                }
                Detected::Mention { start, end, handle } => {
                    #[derive(Deserialize)]
                    struct Out {
                        did: String,
                    }
                    match self
                        .api_get::<Out>("com.atproto.identity.resolveHandle", &[("handle", &handle)])
                        .await
                    {
                        Ok(out) => facets.push(Facet {
                            byte_start: start,
                            byte_end: end,
                            feature: FacetFeature::Mention(out.did),
                        }),
                        Err(ApiError::Xrpc { status: 400, .. }) => {} // unknown handle: plain text
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        self.post_with_facets(text, &facets).await
    }

    /// Posts `text` with the given facets (offsets are checked against the text).
    pub async fn post_with_facets(&self, text: &str, facets: &[Facet]) -> Result<StrongRef, ApiError> {
        if facets.iter().any(|f| {
            f.byte_start >= f.byte_end
                || f.byte_end > text.len()
                || !text.is_char_boundary(f.byte_start)
                || !text.is_char_boundary(f.byte_end)
        }) {
            return Err(ApiError::Request(RequestError::InvalidRequest(
                "facet outside the text or inside a character",
            )));
        }
        let mut record = json!({ "$type": "app.bsky.feed.post", "text": text, "createdAt": now_rfc3339() });
        if !facets.is_empty() {
            record["facets"] = facets.iter().map(Facet::to_json).collect();
        }
        self.create_record("app.bsky.feed.post", record).await
    }

    /// Likes a record (`app.bsky.feed.like`).
    pub async fn like(&self, subject: &StrongRef) -> Result<StrongRef, ApiError> {
        let record = json!({ "$type": "app.bsky.feed.like", "subject": subject, "createdAt": now_rfc3339() });
        self.create_record("app.bsky.feed.like", record).await
    }

    /// Follows an account (`app.bsky.graph.follow`).
    pub async fn follow(&self, did: &str) -> Result<StrongRef, ApiError> {
        if atauth_identity::Did::new(did).is_err() {
            return Err(ApiError::Request(RequestError::InvalidRequest("not a DID")));
        }
        let record = json!({ "$type": "app.bsky.graph.follow", "subject": did, "createdAt": now_rfc3339() });
        self.create_record("app.bsky.graph.follow", record).await
    }

    /// `com.atproto.repo.uploadBlob`: returns the blob reference (`{"$type": "blob", "ref": …,
    /// "mimeType", "size"}`) to put into a record.
    pub async fn upload_blob(&self, bytes: Bytes, mime_type: &str) -> Result<Value, ApiError> {
        let out: Value = self.api_post("com.atproto.repo.uploadBlob", mime_type, bytes).await?;
        out.get("blob").cloned().ok_or_else(|| ApiError::InvalidResponse("uploadBlob: no blob".into()))
    }

    /// `app.bsky.actor.getProfile` (served by the app view the PDS forwards to).
    pub async fn get_profile(&self, actor: &str) -> Result<Value, ApiError> {
        self.api_get("app.bsky.actor.getProfile", &[("actor", actor)]).await
    }

    /// One page of `app.bsky.feed.getTimeline`; pass the cursor back for the next.
    pub async fn get_timeline(
        &self,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page<Value>, ApiError> {
        let limit = limit.map(|l| l.to_string());
        let mut params = Vec::new();
        if let Some(l) = &limit {
            params.push(("limit", l.as_str()));
        }
        if let Some(c) = cursor {
            params.push(("cursor", c));
        }
        let mut out: Value = self.api_get("app.bsky.feed.getTimeline", &params).await?;
        let items = match out.get_mut("feed").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => return Err(ApiError::InvalidResponse("getTimeline: no feed".into())),
        };
        let cursor =
            out.get("cursor").and_then(Value::as_str).map(str::to_owned).filter(|_| !items.is_empty());
        Ok(Page { items, cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facets_use_utf8_byte_offsets() {
        let text = "héllo @alice.test! (see https://example.com/a_(b)), @not_a_handle and @bob.test.";
        let found = detect_facets(text);
        assert_eq!(found.len(), 3, "{found:?}");
        let Detected::Mention { start, end, handle } = &found[0] else { panic!("{found:?}") };
        assert_eq!((&text[*start..*end], handle.as_str()), ("@alice.test", "alice.test"));
        assert_eq!(*start, 7, "é is two bytes");
        let Detected::Link { start, end, uri } = &found[1] else { panic!("{found:?}") };
        assert_eq!(&text[*start..*end], "https://example.com/a_(b)");
        assert_eq!(uri, "https://example.com/a_(b)");
        let Detected::Mention { start, end, .. } = &found[2] else { panic!("{found:?}") };
        assert_eq!(&text[*start..*end], "@bob.test");
    }

    #[test]
    fn no_facets_in_plain_text_or_email_addresses() {
        assert!(detect_facets("mail me at bob@example.com or ftp://x or http:// later").is_empty());
        assert!(detect_facets("").is_empty());
    }

    #[test]
    fn errors_are_classified_by_status_and_name() {
        let body = |e: &str, m: &str| Some(XrpcErrorBody { error: e.into(), message: Some(m.into()) });
        assert!(matches!(
            classify(429, body("RateLimitExceeded", "slow down"), Some(1_700_000_000)),
            ApiError::RateLimited { reset: Some(1_700_000_000) }
        ));
        match classify(
            403,
            body("ScopeMissingError", "Missing required scope \"repo:app.bsky.feed.post?action=create\""),
            None,
        ) {
            ApiError::ScopeMissing { needed } => {
                assert_eq!(needed.as_deref(), Some("repo:app.bsky.feed.post?action=create"));
            }
            e => panic!("{e:?}"),
        }
        assert!(matches!(
            classify(400, body("ExpiredToken", "Token has expired"), None),
            ApiError::ExpiredToken
        ));
        assert!(matches!(
            classify(400, body("RecordNotFound", "nope"), None),
            ApiError::Xrpc { status: 400, error: Some(e), .. } if e == "RecordNotFound"
        ));
    }

    #[test]
    fn at_uris_split_or_are_refused() {
        assert_eq!(
            split_at_uri("at://did:plc:x/app.bsky.feed.post/3k").ok(),
            Some(("did:plc:x", "app.bsky.feed.post", "3k"))
        );
        for bad in ["https://x/y/z", "at://did:plc:x/app.bsky.feed.post", "at://did:plc:x//r"] {
            assert!(split_at_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn created_at_is_rfc3339_utc() {
        let s = now_rfc3339();
        assert_eq!(s.len(), 24, "{s}");
        assert!(s.ends_with(".000Z") && s.as_bytes()[10] == b'T', "{s}");
    }
}
