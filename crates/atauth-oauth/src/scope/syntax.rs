//! The scope grammar: one token (SCOPE-02) and its generic structure (SCOPE-04), with no meaning attached.

use std::fmt;
use std::str::FromStr;

use super::{ATPROTO_SCOPE, Permission, PermissionError};

/// The longest scope string [`ScopeSet::parse`](super::ScopeSet::parse) accepts (bounded parsing of untrusted input).
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
/// The positional part is percent-decoded strictly (a bad escape is an error, as
/// `decodeURIComponent` throws); the query is form-decoded like `URLSearchParams`; repeated keys
/// keep their order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSyntax {
    /// The resource name (`repo`, `rpc`, …).
    pub resource: String,
    /// The positional part after `:`, decoded. `Some("")` for `resource:`.
    pub positional: Option<String>,
    /// The query parameters, form-decoded, in order. `None` for `resource` and `resource?`.
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

/// Writes a positional value the way the reference does (`encodeURIComponent`, then `:` `/` `+`
/// `,` `@` written plainly), except that `%` stays `%25`: the reference writes it back plainly, so
/// its normal form of a value holding `%` decodes to another value (docs/DEVIATIONS.md).
pub(super) fn encode_positional(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'():/+,@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// Writes a query value the way the reference does (`URLSearchParams`: form encoding, space as
/// `+`, then `:` `/` `,` `@` written plainly), except that `%` stays `%25` and `+` stays `%2B`:
/// the reference writes both plainly, and a plain `+` in a query reads back as a space
/// (docs/DEVIATIONS.md).
pub(super) fn encode_query(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"*-._:/,@".contains(&b) {
            out.push(b as char);
        } else if b == b' ' {
            out.push('+');
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
            // `resource?` with nothing after the `?` has no query at all, like the reference.
            None | Some("") => None,
            Some(q) => {
                // As `URLSearchParams` reads it (REF `syntax-string.ts`): form decoding, `+` is a
                // space, a bad escape stays as written, bad UTF-8 becomes U+FFFD.
                Some(url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            }
        };
        Ok(Self { resource: resource.to_owned(), positional, params })
    }
}
