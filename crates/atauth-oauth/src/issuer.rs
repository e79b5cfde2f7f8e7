//! [`Issuer`]: an authorization-server issuer identifier in canonical origin form.
//!
//! Implements CL-DISC-03 / AS-META-03: the issuer is a bare origin, `https`, with no userinfo,
//! path, query, fragment, default port or trailing slash, and every comparison against it is an exact
//! string comparison (trap T-09). The development switch [`IssuerPolicy::allow_http_loopback`]
//! additionally accepts `http://localhost[:port]`, `http://127.0.0.1[:port]` and `http://[::1][:port]`
//! (the offline interop harness runs its PDS at `http://localhost:PORT`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

/// Which issuers are acceptable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IssuerPolicy {
    /// **Development only.** Accept plain `http` issuers on loopback hosts (`localhost`,
    /// `127.0.0.1`, `[::1]`), with or without a port. Default `false`.
    pub allow_http_loopback: bool,
}

impl IssuerPolicy {
    /// Production: `https` origins only.
    pub const fn production() -> Self {
        Self { allow_http_loopback: false }
    }

    /// Development: also `http://localhost[:port]` and loopback IP literals.
    pub const fn development() -> Self {
        Self { allow_http_loopback: true }
    }
}

/// Why a string is not an acceptable issuer (CL-DISC-03). One variant per failed rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// Not an absolute URL.
    #[error("issuer is not an absolute URL")]
    NotAUrl,
    /// The scheme is not `https` (or `http` to loopback in development).
    #[error("issuer scheme {scheme:?} is not allowed")]
    SchemeNotAllowed {
        /// The scheme found.
        scheme: String,
    },
    /// Plain `http` to a host that is not loopback, or `http` while the development switch is off.
    #[error("plain http issuers are only allowed for loopback hosts in development")]
    HttpNotAllowed,
    /// The URL has no host.
    #[error("issuer has no host")]
    MissingHost,
    /// The URL contains a user name or password.
    #[error("issuer must not contain credentials")]
    HasCredentials,
    /// The URL has a path (a lone trailing `/` counts: T-09).
    #[error("issuer must not have a path or trailing slash")]
    HasPath,
    /// The URL has a query.
    #[error("issuer must not have a query")]
    HasQuery,
    /// The URL has a fragment.
    #[error("issuer must not have a fragment")]
    HasFragment,
    /// The string is a valid origin but not in canonical form (upper-case host, explicit default port, …).
    #[error("issuer is not in canonical form; expected {canonical:?}")]
    NotCanonical {
        /// The canonical spelling.
        canonical: String,
    },
}

/// A validated issuer identifier: a canonical origin such as `https://bsky.social`.
///
/// ```
/// use atauth_oauth::{Issuer, IssuerError, IssuerPolicy};
///
/// let iss = Issuer::parse("https://bsky.social")?;
/// assert_eq!(iss.as_str(), "https://bsky.social");
/// // T-09: a trailing slash is a different string, and not an issuer.
/// assert_eq!(Issuer::parse("https://bsky.social/"), Err(IssuerError::HasPath));
/// assert!(Issuer::parse("http://localhost:2583").is_err());
/// assert!(Issuer::parse_with("http://localhost:2583", IssuerPolicy::development()).is_ok());
/// # Ok::<(), IssuerError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Issuer(String);

fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => *d == "localhost",
        url::Host::Ipv4(v4) => v4.is_loopback(),
        url::Host::Ipv6(v6) => v6.is_loopback(),
    }
}

impl Issuer {
    /// Parses a production issuer (`https` only).
    pub fn parse(s: &str) -> Result<Self, IssuerError> {
        Self::parse_with(s, IssuerPolicy::production())
    }

    /// Parses an issuer under `policy`. The input must already be in canonical form: no
    /// normalisation is applied, because issuers are compared byte for byte (T-09).
    pub fn parse_with(s: &str, policy: IssuerPolicy) -> Result<Self, IssuerError> {
        let url = Url::parse(s).map_err(|_| IssuerError::NotAUrl)?;
        let host = url.host().ok_or(IssuerError::MissingHost)?;
        match url.scheme() {
            "https" => {}
            "http" => {
                if !(policy.allow_http_loopback && is_loopback_host(&host)) {
                    return Err(IssuerError::HttpNotAllowed);
                }
            }
            other => return Err(IssuerError::SchemeNotAllowed { scheme: other.to_owned() }),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(IssuerError::HasCredentials);
        }
        if url.query().is_some() {
            return Err(IssuerError::HasQuery);
        }
        if url.fragment().is_some() {
            return Err(IssuerError::HasFragment);
        }
        if url.path() != "/" || s.ends_with('/') {
            return Err(IssuerError::HasPath);
        }
        let canonical = url.origin().ascii_serialization();
        if canonical != s {
            return Err(IssuerError::NotCanonical { canonical });
        }
        Ok(Self(canonical))
    }

    /// The canonical origin of `url` as an issuer (e.g. a PDS URL used as issuer, CL-DISC-01).
    pub fn from_origin_of(url: &Url, policy: IssuerPolicy) -> Result<Self, IssuerError> {
        Self::parse_with(&url.origin().ascii_serialization(), policy)
    }

    /// The issuer string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a plain-http development issuer.
    pub fn is_http(&self) -> bool {
        self.0.starts_with("http:")
    }

    /// `<issuer>/.well-known/oauth-authorization-server` (RFC 8414 §3).
    pub fn metadata_url(&self) -> String {
        format!("{}{}", self.0, crate::WELL_KNOWN_AUTHORIZATION_SERVER)
    }

    /// Exact comparison with a received string (RFC 9207 `iss`, metadata `issuer`; T-09).
    pub fn matches(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Issuer({:?})", self.0)
    }
}

impl AsRef<str> for Issuer {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Issuer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Deserialises with the development policy (stored values were validated when first parsed).
impl<'de> Deserialize<'de> for Issuer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse_with(&s, IssuerPolicy::development()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cl_disc_03_accepts_canonical_origins() {
        for ok in ["https://bsky.social", "https://as.example.com:8443", "https://[2001:db8::1]"] {
            assert_eq!(Issuer::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn cl_disc_03_rejects_each_rule() {
        use IssuerError as E;
        assert_eq!(Issuer::parse("bsky.social"), Err(E::NotAUrl));
        assert_eq!(Issuer::parse("ftp://bsky.social"), Err(E::SchemeNotAllowed { scheme: "ftp".into() }));
        assert_eq!(Issuer::parse("http://bsky.social"), Err(E::HttpNotAllowed));
        assert_eq!(Issuer::parse("https://u:p@bsky.social"), Err(E::HasCredentials));
        assert_eq!(Issuer::parse("https://bsky.social/"), Err(E::HasPath));
        assert_eq!(Issuer::parse("https://bsky.social/oauth"), Err(E::HasPath));
        assert_eq!(Issuer::parse("https://bsky.social?x=1"), Err(E::HasQuery));
        assert_eq!(Issuer::parse("https://bsky.social#x"), Err(E::HasFragment));
        assert_eq!(
            Issuer::parse("https://Bsky.Social"),
            Err(E::NotCanonical { canonical: "https://bsky.social".into() })
        );
        assert_eq!(
            Issuer::parse("https://bsky.social:443"),
            Err(E::NotCanonical { canonical: "https://bsky.social".into() })
        );
    }

    #[test]
    fn development_policy_allows_only_loopback_http() {
        let dev = IssuerPolicy::development();
        for ok in ["http://localhost:2583", "http://localhost", "http://127.0.0.1:80", "http://[::1]:9"] {
            let canonical = Url::parse(ok).unwrap().origin().ascii_serialization();
            if canonical == ok {
                assert!(Issuer::parse_with(ok, dev).is_ok(), "{ok}");
            }
        }
        assert!(Issuer::parse_with("http://localhost:2583", dev).unwrap().is_http());
        assert_eq!(Issuer::parse_with("http://10.0.0.1", dev), Err(IssuerError::HttpNotAllowed));
        assert_eq!(Issuer::parse_with("http://example.com", dev), Err(IssuerError::HttpNotAllowed));
    }
}
