//! Identifier syntax types: [`Did`], [`Handle`], [`Nsid`] and [`AtIdentifier`] (handle or DID).
//!
//! These are pure value types: parsing never touches the network. Each type has one error enum whose
//! variants name the rule that failed (ID-HANDLE-01, ID-DID-01).

pub(crate) mod did;
pub(crate) mod handle;
pub(crate) mod nsid;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use did::{Did, DidSyntaxError, MAX_DID_LEN};
pub use handle::{
    DISALLOWED_TLDS, Handle, HandleSyntaxError, INVALID_HANDLE_SENTINEL, MAX_HANDLE_LEN, MAX_LABEL_LEN,
    TldPolicy, UnresolvableHandle,
};
pub use nsid::{MAX_NSID_LEN, MAX_NSID_SEGMENT_LEN, Nsid, NsidSyntaxError};

/// Either a DID or a handle: what a user types to log in, or the authority of an `at://` URI.
///
/// ```
/// use atauth_identity::AtIdentifier;
///
/// let id = AtIdentifier::parse_user_input("@Alice.Bsky.Social")?;
/// assert_eq!(id.to_string(), "alice.bsky.social");
/// assert!(matches!(AtIdentifier::parse_user_input("did:plc:abc")?, AtIdentifier::Did(_)));
/// # Ok::<(), atauth_identity::AtIdentifierError>(())
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
    pub fn new(s: &str) -> Result<Self, AtIdentifierError> {
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

impl FromStr for AtIdentifier {
    type Err = AtIdentifierError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for AtIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AtIdentifier {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AtIdentifier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}
