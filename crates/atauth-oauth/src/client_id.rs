//! [`ClientId`]: a discoverable `https://` client-metadata URL (CL-MD-01/02) or an atproto loopback
//! development client `http://localhost?…` (CL-MD-LOOP-01 … 04).
//!
//! The loopback form is parsed from the raw string, not through the URL parser, which would hide a
//! `:80` or repair a path that the rules must refuse. Loopback ids are built with the encoding of
//! JavaScript's `encodeURIComponent`, the form the reference client produces.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

use crate::client_metadata::ClientMetadata;
use crate::redirect::{RedirectUriKind, classify};
use crate::scope::{ScopeSet, ScopeSyntaxError};

/// The loopback client-id origin (CL-MD-LOOP-01).
pub const LOOPBACK_CLIENT_ID_ORIGIN: &str = "http://localhost";

/// Default redirect URIs of a loopback client that names none (CL-MD-LOOP-02).
pub const LOOPBACK_DEFAULT_REDIRECT_URIS: [&str; 2] = ["http://127.0.0.1/", "http://[::1]/"];

/// TLDs and names REF treats as local and refuses in a discoverable `client_id` (CL-MD-02).
const LOCAL_TLDS: [&str; 5] = ["test", "local", "localhost", "invalid", "example"];

/// Which client ids are acceptable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientIdPolicy {
    /// **Development only.** Accept discoverable client ids served over `http` from loopback
    /// (`http://127.0.0.1:PORT/…`, `http://localhost:PORT/…`), and ports on `https` ids. Default off.
    pub allow_http_loopback: bool,
}

/// Why a string is not a valid client id. One variant per failed rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientIdError {
    /// Not an absolute URL (CL-MD-01).
    #[error("client_id is not an absolute URL")]
    NotAUrl,
    /// Neither `https:` nor the `http://localhost` loopback form (CL-MD-01).
    #[error("client_id must be an https URL or http://localhost")]
    SchemeNotAllowed,
    /// Contains a user name or password (CL-MD-02).
    #[error("client_id must not contain credentials")]
    HasCredentials,
    /// Has a fragment (CL-MD-02, CL-MD-LOOP-02).
    #[error("client_id must not have a fragment")]
    HasFragment,
    /// Has a port (CL-MD-01: "no port number"; CL-MD-LOOP-01).
    #[error("client_id must not have a port")]
    HasPort,
    /// Path is `/` or ends in `/` (CL-MD-02, REF).
    #[error("client_id must have a path that does not end in '/'")]
    BadPath,
    /// The host is an IP literal (CL-MD-02).
    #[error("client_id host must not be an IP address")]
    IpHost,
    /// The host is a single label or under a local TLD (CL-MD-02).
    #[error("client_id host {host:?} is a local name")]
    LocalHost {
        /// The host.
        host: String,
    },
    /// Not in canonical URL form (dot segments, un-normalised encoding, upper case, …) (CL-MD-02).
    #[error("client_id is not in canonical form; canonical is {canonical:?}")]
    NotCanonical {
        /// The canonical spelling.
        canonical: String,
    },
    /// Loopback id: a path other than empty or `/` (CL-MD-LOOP-01).
    #[error("loopback client_id must not have a path")]
    LoopbackPath,
    /// Loopback id: a query key other than `redirect_uri` and `scope` (CL-MD-LOOP-02).
    #[error("loopback client_id has the unknown query parameter {key:?}")]
    LoopbackUnknownParameter {
        /// The key.
        key: String,
    },
    /// Loopback id: `scope` given more than once (CL-MD-LOOP-02).
    #[error("loopback client_id has more than one scope parameter")]
    LoopbackRepeatedScope,
    /// Loopback id: `scope` does not parse (SCOPE-02).
    #[error("loopback client_id scope is invalid: {0}")]
    LoopbackInvalidScope(#[source] ScopeSyntaxError),
    /// Loopback id: `scope` lacks `atproto` (CL-MD-LOOP-02, SCOPE-01).
    #[error("loopback client_id scope must include atproto")]
    LoopbackScopeWithoutAtproto,
    /// Loopback id: a `redirect_uri` that is not `http://127.0.0.1…` or `http://[::1]…`
    /// (`localhost` is refused, CL-MD-LOOP-02, CL-MD-15).
    #[error("loopback client_id redirect_uri {uri:?} must be http://127.0.0.1 or http://[::1]")]
    LoopbackBadRedirectUri {
        /// The URI.
        uri: String,
    },
}

/// A discoverable client id: the `https://` URL of the client-metadata document (CL-MD-01/02).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DiscoverableClientId {
    raw: String,
    url: Url,
}

impl DiscoverableClientId {
    /// The client id string.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The metadata URL (the client id itself).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The host name, for the native custom-scheme rule (CL-MD-NAT-02).
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    fn parse(s: &str, policy: ClientIdPolicy) -> Result<Self, ClientIdError> {
        let url = Url::parse(s).map_err(|_| ClientIdError::NotAUrl)?;
        let dev_http = policy.allow_http_loopback
            && url.scheme() == "http"
            && matches!(url.host(), Some(url::Host::Domain("localhost")))
                | matches!(url.host(), Some(url::Host::Ipv4(v4)) if v4.is_loopback())
                | matches!(url.host(), Some(url::Host::Ipv6(v6)) if v6.is_loopback());
        if url.scheme() != "https" && !dev_http {
            return Err(ClientIdError::SchemeNotAllowed);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ClientIdError::HasCredentials);
        }
        if url.fragment().is_some() {
            return Err(ClientIdError::HasFragment);
        }
        if url.port().is_some() && !policy.allow_http_loopback {
            return Err(ClientIdError::HasPort);
        }
        if url.path() == "/" || url.path().ends_with('/') {
            return Err(ClientIdError::BadPath);
        }
        if !dev_http {
            match url.host() {
                Some(url::Host::Domain(host)) => {
                    let tld = host.rsplit('.').next().unwrap_or(host);
                    if !host.contains('.') || LOCAL_TLDS.contains(&tld) {
                        return Err(ClientIdError::LocalHost { host: host.to_owned() });
                    }
                }
                Some(_) => return Err(ClientIdError::IpHost),
                None => return Err(ClientIdError::NotAUrl),
            }
        }
        if url.as_str() != s {
            return Err(ClientIdError::NotCanonical { canonical: url.to_string() });
        }
        Ok(Self { raw: s.to_owned(), url })
    }
}

/// An atproto loopback development client id, `http://localhost[/][?redirect_uri=…&scope=…]`
/// (CL-MD-LOOP-01/02). Its metadata is not fetched: the AS builds it ([`Self::metadata`]).
///
/// ```
/// use atauth_oauth::{ClientId, LoopbackClientId, ScopeSet};
///
/// // What a CLI uses: an exact redirect URI on 127.0.0.1 and the scopes it needs.
/// let id = LoopbackClientId::new(
///     &["http://127.0.0.1:8080/callback"],
///     &ScopeSet::parse("atproto transition:generic")?,
/// )?;
/// assert_eq!(
///     id.as_str(),
///     "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcallback&scope=atproto%20transition%3Ageneric"
/// );
/// let parsed = ClientId::parse(id.as_str())?;
/// assert_eq!(parsed, ClientId::Loopback(id));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LoopbackClientId {
    raw: String,
    redirect_uris: Vec<String>,
    scope: ScopeSet,
}

/// `encodeURIComponent`: keeps `A-Z a-z 0-9 - _ . ! ~ * ' ( )`, percent-encodes everything else.
fn encode_uri_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn check_loopback_redirect(uri: &str) -> Result<(), ClientIdError> {
    let bad = || ClientIdError::LoopbackBadRedirectUri { uri: uri.to_owned() };
    if classify(uri) != Some(RedirectUriKind::LoopbackIp) {
        return Err(bad());
    }
    let url = Url::parse(uri).map_err(|_| bad())?;
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(bad());
    }
    Ok(())
}

impl LoopbackClientId {
    /// Builds the client id for these redirect URIs (each `http://127.0.0.1…` or `http://[::1]…`)
    /// and scopes (which must include `atproto`). No redirect URIs means the defaults.
    pub fn new(redirect_uris: &[&str], scope: &ScopeSet) -> Result<Self, ClientIdError> {
        if !scope.has_atproto() {
            return Err(ClientIdError::LoopbackScopeWithoutAtproto);
        }
        let mut raw = String::from(LOOPBACK_CLIENT_ID_ORIGIN);
        let mut sep = '?';
        for uri in redirect_uris {
            check_loopback_redirect(uri)?;
            raw.push(sep);
            raw.push_str("redirect_uri=");
            raw.push_str(&encode_uri_component(uri));
            sep = '&';
        }
        let scope_str = scope.to_string();
        if scope_str != crate::scope::ATPROTO_SCOPE {
            raw.push(sep);
            raw.push_str("scope=");
            raw.push_str(&encode_uri_component(&scope_str));
        }
        Self::parse(&raw)
    }

    /// Parses `http://localhost…` (CL-MD-LOOP-01/02).
    pub fn parse(s: &str) -> Result<Self, ClientIdError> {
        let rest = s.strip_prefix(LOOPBACK_CLIENT_ID_ORIGIN).ok_or(ClientIdError::SchemeNotAllowed)?;
        if rest.contains('#') {
            return Err(ClientIdError::HasFragment);
        }
        if rest.starts_with(':') {
            return Err(ClientIdError::HasPort);
        }
        if rest.starts_with('@') || !matches!(rest.chars().next(), None | Some('/' | '?')) {
            return Err(ClientIdError::NotAUrl);
        }
        let rest = rest.strip_prefix('/').unwrap_or(rest);
        let query = match rest.strip_prefix('?') {
            Some(q) => q,
            None if rest.is_empty() => "",
            None => return Err(ClientIdError::LoopbackPath),
        };
        if Url::parse(s).is_err() {
            return Err(ClientIdError::NotAUrl);
        }
        let pairs: Vec<_> = url::form_urlencoded::parse(query.as_bytes()).collect();
        if pairs.iter().filter(|(k, _)| k == "scope").count() > 1 {
            return Err(ClientIdError::LoopbackRepeatedScope);
        }
        let mut redirect_uris = Vec::new();
        let mut scope: Option<ScopeSet> = None;
        for (k, v) in pairs {
            match k.as_ref() {
                "redirect_uri" => {
                    check_loopback_redirect(&v)?;
                    redirect_uris.push(v.into_owned());
                }
                "scope" => {
                    if scope.is_some() {
                        return Err(ClientIdError::LoopbackRepeatedScope);
                    }
                    let set = ScopeSet::parse(&v).map_err(ClientIdError::LoopbackInvalidScope)?;
                    if !set.has_atproto() {
                        return Err(ClientIdError::LoopbackScopeWithoutAtproto);
                    }
                    scope = Some(set);
                }
                other => return Err(ClientIdError::LoopbackUnknownParameter { key: other.to_owned() }),
            }
        }
        if redirect_uris.is_empty() {
            redirect_uris = LOOPBACK_DEFAULT_REDIRECT_URIS.iter().map(|s| (*s).to_owned()).collect();
        }
        let scope = match scope {
            Some(s) => s,
            None => {
                ScopeSet::parse(crate::scope::ATPROTO_SCOPE).map_err(ClientIdError::LoopbackInvalidScope)?
            }
        };
        Ok(Self { raw: s.to_owned(), redirect_uris, scope })
    }

    /// The client id string.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The redirect URIs (or the defaults, CL-MD-LOOP-02).
    pub fn redirect_uris(&self) -> &[String] {
        &self.redirect_uris
    }

    /// The scope (default `atproto`).
    pub fn scope(&self) -> &ScopeSet {
        &self.scope
    }

    /// The virtual client-metadata document the AS builds (CL-MD-LOOP-04): public native client,
    /// `token_endpoint_auth_method: "none"`, DPoP-bound, code + refresh grants, no `client_uri`.
    pub fn metadata(&self) -> ClientMetadata {
        let mut m = ClientMetadata::new(self.raw.clone(), self.redirect_uris.clone(), &self.scope);
        m.client_name = Some("Loopback client".to_owned());
        m.application_type = Some("native".to_owned());
        m.token_endpoint_auth_method = Some("none".to_owned());
        m
    }
}

/// A client id: the exact string used in PAR, authorize, token, refresh and revoke (CL-MD-04, T-17).
///
/// ```
/// use atauth_oauth::{ClientId, ClientIdError};
///
/// assert!(matches!(ClientId::parse("https://app.example.com/client-metadata.json")?, ClientId::Discoverable(_)));
/// assert!(matches!(ClientId::parse("http://localhost")?, ClientId::Loopback(_)));
/// assert_eq!(ClientId::parse("https://app.example.com/"), Err(ClientIdError::BadPath));
/// assert_eq!(ClientId::parse("http://localhost:8080"), Err(ClientIdError::HasPort));
/// # Ok::<(), ClientIdError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientId {
    /// An `https://` metadata URL.
    Discoverable(DiscoverableClientId),
    /// `http://localhost?…`.
    Loopback(LoopbackClientId),
}

impl ClientId {
    /// Parses a client id with the production policy.
    pub fn parse(s: &str) -> Result<Self, ClientIdError> {
        Self::parse_with(s, ClientIdPolicy::default())
    }

    /// Parses a client id under `policy`.
    pub fn parse_with(s: &str, policy: ClientIdPolicy) -> Result<Self, ClientIdError> {
        if s == LOOPBACK_CLIENT_ID_ORIGIN
            || s.starts_with("http://localhost/")
            || s.starts_with("http://localhost?")
            || s.starts_with("http://localhost#")
            || s.starts_with("http://localhost:")
        {
            // A dev discoverable id may live on http://localhost:PORT/path.
            if policy.allow_http_loopback && s.starts_with("http://localhost:") {
                return DiscoverableClientId::parse(s, policy).map(Self::Discoverable);
            }
            return LoopbackClientId::parse(s).map(Self::Loopback);
        }
        DiscoverableClientId::parse(s, policy).map(Self::Discoverable)
    }

    /// The client id string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Discoverable(d) => d.as_str(),
            Self::Loopback(l) => l.as_str(),
        }
    }

    /// Whether this is a loopback development client.
    pub fn is_loopback(&self) -> bool {
        matches!(self, Self::Loopback(_))
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for DiscoverableClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DiscoverableClientId({:?})", self.raw)
    }
}

impl fmt::Debug for LoopbackClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LoopbackClientId({:?})", self.raw)
    }
}

impl Serialize for ClientId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Deserialises with the development policy (a stored id was validated when first used).
impl<'de> Deserialize<'de> for ClientId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse_with(&s, ClientIdPolicy { allow_http_loopback: true }).map_err(serde::de::Error::custom)
    }
}
