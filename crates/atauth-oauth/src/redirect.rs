//! Redirect URI classification and matching.
//!
//! Matching is exact string equality (T-18), with one exception for loopback-IP redirect URIs
//! (CL-MD-LOOP-03, RFC 8252 §7.3): when the registered URI is `http://127.0.0.1[:port]/…` or
//! `http://[::1][:port]/…` and has **no** port, any port matches; if it has a port, the ports must
//! be equal. Scheme, host, path, query and fragment must be identical in every case.

use url::Url;

/// What kind of redirect URI a string is (CL-MD-15, CL-MD-NAT-02/04).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedirectUriKind {
    /// `https://…`.
    Https,
    /// `http://127.0.0.1[:port]/…` or `http://[::1][:port]/…`.
    LoopbackIp,
    /// `http://localhost…` (refused as a redirect URI: use the IP literal, CL-MD-15).
    LoopbackName,
    /// Any other `http://` URI.
    PlainHttp,
    /// A private-use (custom) scheme such as `com.example.app:/callback`.
    PrivateUse {
        /// The scheme.
        scheme: String,
    },
}

/// Classifies a redirect URI; `None` if it is not an absolute URL.
pub fn classify(uri: &str) -> Option<RedirectUriKind> {
    let url = Url::parse(uri).ok()?;
    Some(match url.scheme() {
        "https" => RedirectUriKind::Https,
        "http" => match url.host() {
            Some(url::Host::Ipv4(v4)) if v4.octets() == [127, 0, 0, 1] => RedirectUriKind::LoopbackIp,
            Some(url::Host::Ipv6(v6)) if v6.is_loopback() => RedirectUriKind::LoopbackIp,
            Some(url::Host::Domain(d)) if d == "localhost" || d.ends_with(".localhost") => {
                RedirectUriKind::LoopbackName
            }
            _ => RedirectUriKind::PlainHttp,
        },
        other => RedirectUriKind::PrivateUse { scheme: other.to_owned() },
    })
}

/// Whether `requested` matches the registered redirect URI `registered` (T-18, CL-MD-LOOP-03).
///
/// ```
/// use atauth_oauth::redirect::redirect_uri_matches;
///
/// assert!(redirect_uri_matches("https://app.example.com/cb", "https://app.example.com/cb"));
/// assert!(!redirect_uri_matches("https://app.example.com/cb", "https://app.example.com/cb/"));
/// // Loopback: a registered URI without a port matches any port ...
/// assert!(redirect_uri_matches("http://127.0.0.1/cb", "http://127.0.0.1:53124/cb"));
/// // ... but the path must be the same, and a registered port must match.
/// assert!(!redirect_uri_matches("http://127.0.0.1/cb", "http://127.0.0.1:53124/other"));
/// assert!(!redirect_uri_matches("http://127.0.0.1:8080/cb", "http://127.0.0.1:9090/cb"));
/// ```
pub fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    if classify(registered) != Some(RedirectUriKind::LoopbackIp) {
        return false;
    }
    let (Ok(reg), Ok(req)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    if reg.port().is_some() && reg.port() != req.port() {
        return false;
    }
    reg.scheme() == req.scheme()
        && reg.host() == req.host()
        && reg.username() == req.username()
        && reg.password() == req.password()
        && reg.path() == req.path()
        && reg.query() == req.query()
        && reg.fragment() == req.fragment()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cl_md_loop_03_port_rule() {
        assert!(redirect_uri_matches("http://127.0.0.1/", "http://127.0.0.1:1234/"));
        assert!(redirect_uri_matches("http://[::1]/", "http://[::1]:1234/"));
        assert!(redirect_uri_matches("http://127.0.0.1:8080/cb", "http://127.0.0.1:8080/cb"));
        assert!(!redirect_uri_matches("http://127.0.0.1/cb", "http://127.0.0.1:1/cb?x=1"));
        assert!(!redirect_uri_matches("http://127.0.0.1/cb", "http://[::1]:1/cb"));
        assert!(!redirect_uri_matches("http://127.0.0.1/cb", "https://127.0.0.1:1/cb"));
        assert!(!redirect_uri_matches("http://127.0.0.1/cb", "http://localhost:1/cb"));
        // Non-loopback URIs never get the port exception (T-18).
        assert!(!redirect_uri_matches("https://app.example.com/cb", "https://app.example.com:8443/cb"));
    }

    #[test]
    fn classify_kinds() {
        assert_eq!(classify("https://a.example.com/cb"), Some(RedirectUriKind::Https));
        assert_eq!(classify("http://127.0.0.1:9/cb"), Some(RedirectUriKind::LoopbackIp));
        assert_eq!(classify("http://[::1]/"), Some(RedirectUriKind::LoopbackIp));
        assert_eq!(classify("http://localhost/"), Some(RedirectUriKind::LoopbackName));
        assert_eq!(classify("http://127.0.0.2/"), Some(RedirectUriKind::PlainHttp));
        assert_eq!(
            classify("com.example.app:/cb"),
            Some(RedirectUriKind::PrivateUse { scheme: "com.example.app".into() })
        );
        assert_eq!(classify("not a url"), None);
    }
}
