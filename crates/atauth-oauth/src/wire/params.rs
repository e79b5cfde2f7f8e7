//! Request parameters (form or JSON body, or query) as name/value pairs, with the RFC 6749 §3.1 rule
//! that a parameter must not appear more than once, and [`ParamError`]: why a typed request could
//! not be read from them.

use crate::wire::OAuthErrorCode;

/// Decoded request parameters.
#[derive(Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be codes, tokens or assertions: print names only.
        f.debug_list().entries(self.0.iter().map(|(k, _)| k)).finish()
    }
}

/// A parameter was sent more than once (RFC 6749 §3.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter {0:?} was sent more than once")]
pub struct DuplicateParam(pub String);

impl Params {
    /// Wraps decoded pairs.
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// Decodes `application/x-www-form-urlencoded` bytes.
    pub fn from_form(body: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    /// Decodes a flat JSON object (string, number and boolean values; the reference also accepts JSON).
    pub fn from_json(body: &[u8]) -> Option<Self> {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body).ok()?;
        let mut out = Vec::with_capacity(map.len());
        for (k, v) in map {
            let v = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Null => continue,
                serde_json::Value::Array(_) | serde_json::Value::Object(_) => return None,
            };
            out.push((k, v));
        }
        Some(Self(out))
    }

    /// Builds from borrowed pairs, e.g. a request's `form_pairs()` (what a client would send).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
    }

    /// The value of `name`; empty values count as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Result<Option<&str>, DuplicateParam> {
        let mut found = None;
        for (k, v) in &self.0 {
            if k == name {
                if found.is_some() {
                    return Err(DuplicateParam(name.to_owned()));
                }
                found = Some(v.as_str());
            }
        }
        Ok(found.filter(|v| !v.is_empty()))
    }

    /// Whether `name` is present at all.
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// The value of `name` as an owned string, absent if missing or empty.
    pub(crate) fn optional(&self, name: &str) -> Result<Option<String>, ParamError> {
        Ok(self.get(name)?.map(str::to_owned))
    }

    /// The value of `name`, which must be present and non-empty.
    pub(crate) fn required(&self, name: &'static str) -> Result<String, ParamError> {
        self.get(name)?.map(str::to_owned).ok_or(ParamError::Missing(name))
    }
}

/// Why a typed request could not be read from its [`Params`]. Each variant names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    /// A parameter was sent more than once (RFC 6749 §3.1).
    #[error(transparent)]
    Repeated(#[from] DuplicateParam),
    /// A required parameter is missing or empty.
    #[error("{0} is required")]
    Missing(&'static str),
    /// `grant_type` is neither `authorization_code` nor `refresh_token` (AS-TOK-05).
    #[error("unsupported grant_type")]
    UnsupportedGrantType(String),
    /// `response_type` is missing or not `code` (the only one of the atproto profile).
    #[error("response_type must be \"code\"")]
    UnsupportedResponseType,
}

impl ParamError {
    /// The parameter this error is about.
    pub fn param(&self) -> &str {
        match self {
            Self::Repeated(DuplicateParam(name)) => name,
            Self::Missing(name) => name,
            Self::UnsupportedGrantType(_) => "grant_type",
            Self::UnsupportedResponseType => "response_type",
        }
    }

    /// The OAuth error code for this failure (RFC 6749 §4.1.2.1, §5.2). Exhaustive on purpose: a
    /// new variant must choose its code.
    pub fn oauth_error_code(&self) -> OAuthErrorCode {
        match self {
            Self::Repeated(_) | Self::Missing(_) => OAuthErrorCode::InvalidRequest,
            Self::UnsupportedGrantType(_) => OAuthErrorCode::UnsupportedGrantType,
            Self::UnsupportedResponseType => OAuthErrorCode::UnsupportedResponseType,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_empty_parameters() {
        let p = Params::from_form(b"a=1&a=2&b=&c=3");
        assert_eq!(p.get("a"), Err(DuplicateParam("a".into())));
        assert_eq!(p.get("b"), Ok(None), "empty counts as absent");
        assert!(p.contains("b"));
        assert_eq!(p.get("c"), Ok(Some("3")));
        assert_eq!(p.required("b"), Err(ParamError::Missing("b")));
        assert_eq!(p.required("a").unwrap_err().param(), "a");
        assert_eq!(format!("{p:?}"), r#"["a", "a", "b", "c"]"#, "Debug prints names only");
    }

    #[test]
    fn json_bodies_are_flat() {
        let p = Params::from_json(br#"{"a":"x","n":3,"t":true,"z":null}"#).unwrap();
        assert_eq!(
            (p.get("a"), p.get("n"), p.get("t"), p.get("z")),
            (Ok(Some("x")), Ok(Some("3")), Ok(Some("true")), Ok(None))
        );
        assert!(Params::from_json(br#"{"a":{"b":1}}"#).is_none());
        assert!(Params::from_json(br#"{"a":[1]}"#).is_none());
    }
}
