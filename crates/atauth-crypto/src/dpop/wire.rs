//! The DPoP wire format around the proof: header names, the `WWW-Authenticate: DPoP` challenge (built
//! by servers, parsed by clients) and the nonce-challenge detection (RFC 9449 §7.1, §8, §9).
//!
//! It lives here, next to the proof signer and verifier, because every party that speaks DPoP (the
//! server, our client, the load generator) already depends on this crate, and the format needs no HTTP
//! types: header names are plain lowercase strings each side turns into its own header type.
//!
//! Checklist: RS-WWW-01 (the challenge), AS-DPOP-03 / RS-DPOP-03 (`DPoP-Nonce`), CL-DPOP-04 and
//! trap T-03 (a nonce challenge in either form, on either kind of server).
//!
//! ```
//! use atauth_crypto::dpop::wire::{self, WwwAuthenticate};
//!
//! let header = WwwAuthenticate::dpop()
//!     .with_error("invalid_dpop_proof")
//!     .with_error_description(r#"`htm` is "GET", expected "POST""#)
//!     .with_algs(["ES256", "ES256K"])
//!     .to_string();
//! assert_eq!(
//!     header,
//!     r#"DPoP error="invalid_dpop_proof", error_description="`htm` is \"GET\", expected \"POST\"", algs="ES256 ES256K""#
//! );
//! let parsed = WwwAuthenticate::parse(&header).expect("one challenge");
//! assert_eq!(parsed.error_description.as_deref(), Some(r#"`htm` is "GET", expected "POST""#));
//!
//! // The reference PDS's resource-server nonce challenge (RFC 9449 §9).
//! let rs = r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#;
//! assert!(wire::is_nonce_challenge(401, [rs], b""));
//! // The authorization-server form (RFC 9449 §8).
//! assert!(wire::is_nonce_challenge(400, [], br#"{"error":"use_dpop_nonce"}"#));
//! ```

use std::fmt;

/// The `DPoP` request header carrying the proof (RFC 9449 §4.1), lowercase as HTTP/2 and
/// `http::HeaderName::from_static` require; header names are case-insensitive on the wire.
pub const DPOP_HEADER: &str = "dpop";

/// The `DPoP-Nonce` response header carrying a server nonce (RFC 9449 §8, §9), lowercase.
pub const DPOP_NONCE_HEADER: &str = "dpop-nonce";

/// The authentication scheme of `Authorization: DPoP <token>` and of the `WWW-Authenticate`
/// challenge (RFC 9449 §7.1). Compared case-insensitively.
pub const DPOP_SCHEME: &str = "DPoP";

/// The error code asking the client to retry with the nonce from `DPoP-Nonce` (RFC 9449 §8, §9).
pub const USE_DPOP_NONCE: &str = "use_dpop_nonce";

/// One `WWW-Authenticate` challenge: a scheme and the parameters RFC 9449 §7.1 and RFC 6750 §3 define
/// for it. Build one with [`WwwAuthenticate::dpop`] and the `with_*` methods and send its `Display`;
/// read one with [`WwwAuthenticate::parse`].
///
/// Unknown parameters are kept in [`other`](Self::other) when parsing (in order) and written after the
/// known ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WwwAuthenticate {
    /// The auth scheme, e.g. `DPoP` or `Bearer`, as written.
    pub scheme: String,
    /// `realm`.
    pub realm: Option<String>,
    /// `error`: the OAuth error code (`invalid_token`, `invalid_dpop_proof`, `use_dpop_nonce`, …).
    pub error: Option<String>,
    /// `error_description`: human-readable text.
    pub error_description: Option<String>,
    /// `algs`: the accepted proof algorithms (space-separated on the wire).
    pub algs: Vec<String>,
    /// Any other parameters, names lowercased, in order.
    pub other: Vec<(String, String)>,
}

impl WwwAuthenticate {
    /// An empty challenge for `scheme`.
    pub fn new(scheme: impl Into<String>) -> Self {
        Self { scheme: scheme.into(), ..Self::default() }
    }

    /// An empty `DPoP` challenge.
    pub fn dpop() -> Self {
        Self::new(DPOP_SCHEME)
    }

    /// Sets `realm`.
    #[must_use]
    pub fn with_realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// Sets `error`.
    #[must_use]
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }

    /// Sets `error_description`.
    #[must_use]
    pub fn with_error_description(mut self, description: impl Into<String>) -> Self {
        self.error_description = Some(description.into());
        self
    }

    /// Sets `algs`.
    #[must_use]
    pub fn with_algs<S: Into<String>>(mut self, algs: impl IntoIterator<Item = S>) -> Self {
        self.algs = algs.into_iter().map(Into::into).collect();
        self
    }

    /// Whether the scheme is `DPoP` (case-insensitive, RFC 7235 §2.1).
    pub fn is_dpop(&self) -> bool {
        self.scheme.eq_ignore_ascii_case(DPOP_SCHEME)
    }

    /// Whether this is a `DPoP` challenge with `error="use_dpop_nonce"` (RFC 9449 §9).
    pub fn is_use_dpop_nonce(&self) -> bool {
        self.is_dpop() && self.error.as_deref() == Some(USE_DPOP_NONCE)
    }

    /// Parses the first challenge of a `WWW-Authenticate` header value, or `None` if the value does
    /// not start with one (no scheme, or a malformed parameter list).
    pub fn parse(value: &str) -> Option<Self> {
        Self::parse_all(value).into_iter().next()
    }

    /// Parses every challenge of a `WWW-Authenticate` header value (RFC 7235 §4.1 allows a
    /// comma-separated list, e.g. `Bearer realm="x", DPoP algs="ES256"`). Parsing stops at the first
    /// malformed part; the challenges before it are returned.
    pub fn parse_all(value: &str) -> Vec<Self> {
        let mut out = Vec::new();
        let mut p = Parser { s: value.as_bytes(), i: 0 };
        loop {
            p.skip_list_separators();
            let Some(scheme) = p.token() else { break };
            let mut challenge = Self::new(scheme);
            // A challenge without parameters ends here or at a comma.
            if p.skip_spaces() == 0 {
                out.push(challenge);
                if p.at_end() || p.peek() == Some(b',') {
                    continue;
                }
                break;
            }
            let mut complete = true;
            loop {
                let save = p.i;
                let Some(name) = p.token() else { break };
                p.skip_spaces();
                if p.peek() != Some(b'=') {
                    // `name` is the next challenge's scheme (or a token68, which DPoP never uses).
                    p.i = save;
                    break;
                }
                p.i += 1;
                p.skip_spaces();
                let value = match p.peek() {
                    Some(b'"') => p.quoted_string(),
                    _ => p.token().map(str::to_owned),
                };
                let Some(value) = value else {
                    complete = false;
                    break;
                };
                challenge.set_param(name, value);
                p.skip_spaces();
                match p.peek() {
                    None => break,
                    Some(b',') => {
                        p.i += 1;
                        p.skip_list_separators();
                    }
                    Some(_) => {
                        complete = false;
                        break;
                    }
                }
            }
            out.push(challenge);
            if !complete {
                break;
            }
        }
        out
    }

    fn set_param(&mut self, name: &str, value: String) {
        match name.to_ascii_lowercase().as_str() {
            "realm" => self.realm = Some(value),
            "error" => self.error = Some(value),
            "error_description" => self.error_description = Some(value),
            "algs" => self.algs = value.split_ascii_whitespace().map(str::to_owned).collect(),
            other => self.other.push((other.to_owned(), value)),
        }
    }
}

/// The header value: `Scheme name="value", …`, values as quoted strings with `"` and `\` escaped.
/// Control characters, which a quoted string cannot carry, are written as spaces, and non-ASCII
/// characters as `?` (`http::HeaderValue::from_str` refuses them, which would drop the whole header).
impl fmt::Display for WwwAuthenticate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        let algs = (!self.algs.is_empty()).then(|| self.algs.join(" "));
        let known = [
            ("realm", self.realm.as_deref()),
            ("error", self.error.as_deref()),
            ("error_description", self.error_description.as_deref()),
            ("algs", algs.as_deref()),
        ];
        let params = known
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .chain(self.other.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        for (i, (name, value)) in params.enumerate() {
            f.write_str(if i == 0 { " " } else { ", " })?;
            f.write_str(name)?;
            f.write_str("=\"")?;
            for c in value.chars() {
                match c {
                    '"' | '\\' => write!(f, "\\{c}")?,
                    c if c.is_control() => f.write_str(" ")?,
                    c if !c.is_ascii() => f.write_str("?")?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("\"")?;
        }
        Ok(())
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn skip_spaces(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
        self.i - start
    }

    fn skip_list_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    /// An RFC 7230 `token` (tchar+).
    fn token(&mut self) -> Option<&'a str> {
        let start = self.i;
        while self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) {
            self.i += 1;
        }
        // Only ASCII was consumed, so the slice is valid UTF-8.
        (self.i > start).then(|| std::str::from_utf8(&self.s[start..self.i]).ok()).flatten()
    }

    /// An RFC 7230 `quoted-string`, unescaped. `None` if it is not terminated.
    fn quoted_string(&mut self) -> Option<String> {
        self.i += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return String::from_utf8(out).ok();
                }
                b'\\' => {
                    out.push(*self.s.get(self.i + 1)?);
                    self.i += 2;
                }
                b => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
    }
}

/// Whether a response is a DPoP nonce challenge in either form (CL-DPOP-04, T-03): a 400 or 401 whose
/// `WWW-Authenticate` values carry a `DPoP` challenge with `error="use_dpop_nonce"` (the resource-server
/// form, RFC 9449 §9), or whose JSON body has `"error": "use_dpop_nonce"` (the authorization-server
/// form, §8). Both forms are recognised at both statuses, because servers mix them.
pub fn is_nonce_challenge<'a>(
    status: u16,
    www_authenticate: impl IntoIterator<Item = &'a str>,
    body: &[u8],
) -> bool {
    if !matches!(status, 400 | 401) {
        return false;
    }
    www_authenticate
        .into_iter()
        .any(|v| WwwAuthenticate::parse_all(v).iter().any(WwwAuthenticate::is_use_dpop_nonce))
        || is_use_dpop_nonce_body(body)
}

/// Whether a JSON error body is `{"error": "use_dpop_nonce", …}` (RFC 9449 §8).
pub fn is_use_dpop_nonce_body(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct ErrorBody<'a> {
        #[serde(borrow)]
        error: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<ErrorBody<'_>>(body).is_ok_and(|b| b.error.as_deref() == Some(USE_DPOP_NONCE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_writes_the_servers_form() {
        let h = WwwAuthenticate::dpop()
            .with_error("use_dpop_nonce")
            .with_error_description("Resource server requires nonce in DPoP proof")
            .with_algs(["ES256", "ES256K"]);
        assert_eq!(
            h.to_string(),
            r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof", algs="ES256 ES256K""#
        );
        assert_eq!(WwwAuthenticate::dpop().with_algs(["ES256"]).to_string(), r#"DPoP algs="ES256""#);
        assert_eq!(WwwAuthenticate::dpop().to_string(), "DPoP");
        assert_eq!(
            WwwAuthenticate::dpop().with_realm("pds").with_error("invalid_token").to_string(),
            r#"DPoP realm="pds", error="invalid_token""#
        );
    }

    #[test]
    fn quoted_strings_escape_and_unescape() {
        let description = r#"a "quoted" \ back\slash"#;
        let h = WwwAuthenticate::dpop().with_error("invalid_dpop_proof").with_error_description(description);
        let s = h.to_string();
        assert_eq!(s, r#"DPoP error="invalid_dpop_proof", error_description="a \"quoted\" \\ back\\slash""#);
        assert_eq!(WwwAuthenticate::parse(&s), Some(h));
        // Control characters cannot travel in a quoted string.
        let h = WwwAuthenticate::dpop().with_error_description("line\nbreak, bücher");
        assert_eq!(h.to_string(), r#"DPoP error_description="line break, b?cher""#);
    }

    #[test]
    fn parses_real_world_challenges() {
        // The reference PDS (@atproto/oauth-provider) at a resource endpoint, RFC 9449 §9.
        let rs = r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#;
        let c = WwwAuthenticate::parse(rs).expect("challenge");
        assert!(c.is_dpop() && c.is_use_dpop_nonce());
        assert_eq!(c.error_description.as_deref(), Some("Resource server requires nonce in DPoP proof"));
        // RFC 9449 §7.1's example, with a bare challenge before it and odd spacing and case.
        let v =
            r#"Bearer, dpop  ALGS="ES256 PS256" ,error=invalid_token,  error_description="Invalid token""#;
        let all = WwwAuthenticate::parse_all(v);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0], WwwAuthenticate::new("Bearer"));
        assert!(all[1].is_dpop());
        assert_eq!(all[1].algs, ["ES256", "PS256"]);
        assert_eq!(all[1].error.as_deref(), Some("invalid_token"));
        assert!(!all[1].is_use_dpop_nonce());
        // Two challenges with parameters; unknown parameters are kept.
        let v = r#"Bearer realm="example", scope="a b", DPoP error="use_dpop_nonce""#;
        let all = WwwAuthenticate::parse_all(v);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].realm.as_deref(), Some("example"));
        assert_eq!(all[0].other, [("scope".to_owned(), "a b".to_owned())]);
        assert!(all[1].is_use_dpop_nonce());
    }

    #[test]
    fn malformed_values_stop_the_parse() {
        assert_eq!(WwwAuthenticate::parse(""), None);
        assert_eq!(WwwAuthenticate::parse("  "), None);
        assert_eq!(WwwAuthenticate::parse("=x"), None);
        // Unterminated quoted string: the challenge is returned without the broken parameter.
        let c = WwwAuthenticate::parse(r#"DPoP error="use_dpop_nonce"#).expect("scheme");
        assert_eq!(c.error, None);
        // Junk after a value ends the parse after that challenge.
        let all = WwwAuthenticate::parse_all(r#"DPoP error="x" junk, Bearer"#);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].error.as_deref(), Some("x"));
    }

    #[test]
    fn nonce_challenge_in_either_form() {
        let rs = r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#;
        assert!(is_nonce_challenge(401, [rs], b""));
        assert!(is_nonce_challenge(400, [rs], b"")); // T-03: either form at either status
        assert!(is_nonce_challenge(400, [], br#"{"error":"use_dpop_nonce","error_description":"x"}"#));
        assert!(is_nonce_challenge(401, ["Bearer"], br#"{"error":"use_dpop_nonce"}"#));
        assert!(is_nonce_challenge(401, ["Bearer realm=\"x\"", rs], b""));
        // Not a nonce challenge.
        assert!(!is_nonce_challenge(200, [rs], br#"{"error":"use_dpop_nonce"}"#));
        assert!(!is_nonce_challenge(401, [r#"DPoP error="invalid_token""#], b""));
        assert!(!is_nonce_challenge(401, [r#"Bearer error="use_dpop_nonce""#], b""));
        assert!(!is_nonce_challenge(400, [], br#"{"error":"invalid_dpop_proof"}"#));
        assert!(!is_nonce_challenge(400, [], b"use_dpop_nonce"));
        assert!(!is_nonce_challenge(401, [r#"DPoP error_description="use_dpop_nonce""#], b""));
    }
}
