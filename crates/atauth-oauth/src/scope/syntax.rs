//! The scope grammar: one token (SCOPE-02) and its generic structure (SCOPE-04), with no meaning attached.

use std::fmt;
use std::str::FromStr;

use super::{ATPROTO_SCOPE, Permission, PermissionError};

/// The longest scope string [`ScopeSet::parse`] accepts (bounded parsing of untrusted input).
pub const MAX_SCOPE_STRING_LEN: usize = 16 * 1024;

/// Why a scope string does not parse (SCOPE-02, SCOPE-04).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeSyntaxError {
    /// The scope list is empty.
    #[error("scope is empty")]
    Empty,
    /// The scope list is longer than [`MAX_SCOPE_STRING_LEN`].
    #[error("scope string is {len} bytes; the limit is {MAX_SCOPE_STRING_LEN}")]
    TooLong {
        /// The length found.
        len: usize,
    },
    /// Two spaces in a row, or a leading/trailing space (SCOPE-02: single-space separated).
    #[error("scope list has an empty entry (leading, trailing or double space)")]
    EmptyToken,
    /// A character outside the RFC 6749 scope-token set (non-ASCII, control, space, `"`, `\`).
    #[error("scope contains the character {ch:?}, which is not allowed in a scope token")]
    InvalidCharacter {
        /// The offending character.
        ch: char,
    },
    /// A `%` not followed by two hex digits, or an escape that decodes to invalid UTF-8.
    #[error("scope contains an invalid percent-encoding")]
    InvalidPercentEncoding,
    /// The resource name is empty (the scope starts with `:` or `?`).
    #[error("scope has an empty resource name")]
    EmptyResource,
    /// The same scope appears twice (REF rejects duplicates in client metadata, CL-MD-07).
    #[error("scope {scope:?} appears more than once")]
    Duplicate {
        /// The duplicated scope.
        scope: String,
    },
}

/// One scope token (SCOPE-02).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(String);

impl Scope {
    /// Validates a single token.
    pub fn new(s: impl Into<String>) -> Result<Self, ScopeSyntaxError> {
        let s = s.into();
        if s.is_empty() {
            return Err(ScopeSyntaxError::Empty);
        }
        if let Some(ch) = s.chars().find(|&c| !is_scope_char(c)) {
            return Err(ScopeSyntaxError::InvalidCharacter { ch });
        }
        Ok(Self(s))
    }

    /// The scope string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is `atproto`.
    pub fn is_atproto(&self) -> bool {
        self.0 == ATPROTO_SCOPE
    }

    /// The generic structure (SCOPE-04).
    pub fn syntax(&self) -> Result<ScopeSyntax, ScopeSyntaxError> {
        ScopeSyntax::parse(&self.0)
    }

    /// The semantic meaning (SCOPE-01, 03, 05 … 10).
    pub fn permission(&self) -> Result<Permission, PermissionError> {
        Permission::parse(&self.0)
    }
}

pub(super) fn is_scope_char(c: char) -> bool {
    matches!(c, '\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E')
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({:?})", self.0)
    }
}

impl FromStr for Scope {
    type Err = ScopeSyntaxError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// The generic structure of a scope string: `<resource>[:<positional>][?<k>=<v>&…]` (SCOPE-04).
/// Values are percent-decoded; repeated keys keep their order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSyntax {
    /// The resource name (`repo`, `rpc`, …).
    pub resource: String,
    /// The positional part after `:`, decoded. `Some("")` for `resource:`.
    pub positional: Option<String>,
    /// The query parameters, decoded, in order. `Some(vec![])` for `resource?`.
    pub params: Option<Vec<(String, String)>>,
}

fn percent_decode(s: &str) -> Result<String, ScopeSyntaxError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(ScopeSyntaxError::InvalidPercentEncoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| ScopeSyntaxError::InvalidPercentEncoding)?;
            let v = u8::from_str_radix(hex, 16).map_err(|_| ScopeSyntaxError::InvalidPercentEncoding)?;
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ScopeSyntaxError::InvalidPercentEncoding)
}

/// Percent-encodes what would break the scope structure or grammar (`%`, `#`, `&`, `=`, `?`,
/// space, `"`, `\`, and anything non-printable or non-ASCII).
pub(super) fn percent_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        let c = b as char;
        if is_scope_char(c) && !matches!(c, '%' | '#' | '&' | '=' | '?') {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

impl ScopeSyntax {
    /// Parses one scope string (not a list).
    pub fn parse(s: &str) -> Result<Self, ScopeSyntaxError> {
        let scope = Scope::new(s)?;
        let s = scope.as_str();
        let (head, query) = match s.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (s, None),
        };
        let (resource, positional) = match head.split_once(':') {
            Some((r, p)) => (r, Some(percent_decode(p)?)),
            None => (head, None),
        };
        if resource.is_empty() {
            return Err(ScopeSyntaxError::EmptyResource);
        }
        let params = match query {
            None => None,
            Some(q) => {
                let mut params = Vec::new();
                for pair in q.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    params.push((percent_decode(k)?, percent_decode(v)?));
                }
                Some(params)
            }
        };
        Ok(Self { resource: resource.to_owned(), positional, params })
    }
}
