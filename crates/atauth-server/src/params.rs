//! Request parameters (form or JSON body, or query) as name/value pairs, with the RFC 6749 §3.1 rule
//! that a parameter must not appear more than once.

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
                _ => return None,
            };
            out.push((k, v));
        }
        Some(Self(out))
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
}
