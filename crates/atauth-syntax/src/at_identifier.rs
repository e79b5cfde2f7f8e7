//! `AtIdentifier`: a handle or a DID, as typed by a user or found in an `at://` authority.

use crate::{Did, DidSyntaxError, Handle, HandleSyntaxError};

/// Either a DID or a handle: what a user types to log in, or the authority of an `at://` URI.
///
/// ```
/// use atauth_syntax::AtIdentifier;
///
/// let id = AtIdentifier::parse_user_input("@Alice.Bsky.Social")?;
/// assert_eq!(id.to_string(), "alice.bsky.social");
/// assert!(matches!(AtIdentifier::parse_user_input("did:plc:abc")?, AtIdentifier::Did(_)));
/// # Ok::<(), atauth_syntax::AtIdentifierError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AtIdentifier {
    /// A DID.
    Did(Did),
    /// A handle (lowercase).
    Handle(Handle),
}

/// Why a string is neither a DID nor a handle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AtIdentifierError {
    /// The input starts with `did:` but is not a valid DID.
    #[error("invalid DID: {0}")]
    Did(#[source] DidSyntaxError),
    /// The input is not a valid handle.
    #[error("invalid handle: {0}")]
    Handle(#[source] HandleSyntaxError),
}

impl AtIdentifier {
    /// Parses strictly: a string starting with `did:` must be a DID, anything else a handle (which is
    /// lowercased, ID-HANDLE-02).
    pub fn new(s: impl AsRef<str>) -> Result<Self, AtIdentifierError> {
        let s = s.as_ref();
        if s.starts_with("did:") {
            Did::new(s).map(Self::Did).map_err(AtIdentifierError::Did)
        } else {
            Handle::new(s).map(Self::Handle).map_err(AtIdentifierError::Handle)
        }
    }

    /// Parses what a user typed: trims whitespace; a leading `@` is stripped from handles
    /// (ID-HANDLE-02).
    pub fn parse_user_input(input: &str) -> Result<Self, AtIdentifierError> {
        let trimmed = input.trim();
        if trimmed.starts_with("did:") {
            Did::new(trimmed).map(Self::Did).map_err(AtIdentifierError::Did)
        } else {
            Handle::parse_user_input(trimmed).map(Self::Handle).map_err(AtIdentifierError::Handle)
        }
    }

    /// The identifier as a string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Did(d) => d.as_str(),
            Self::Handle(h) => h.as_str(),
        }
    }
}

impl From<Did> for AtIdentifier {
    fn from(d: Did) -> Self {
        Self::Did(d)
    }
}

impl From<Handle> for AtIdentifier {
    fn from(h: Handle) -> Self {
        Self::Handle(h)
    }
}

string_id!(text AtIdentifier, AtIdentifierError);
