//! `Did`: a decentralized identifier with atproto's syntax rules.
//!
//! Implements checklist ID-DID-01 (syntax). Which methods can be *resolved* (ID-DID-02) is decided by
//! atauth-identity's `did` module, not here: `did:key:…` or `did:example:…` are syntactically valid DIDs.

/// Maximum length of a DID, in bytes (ID-DID-01: "initial hard limit of 2048 characters").
pub const MAX_DID_LEN: usize = 2048;

/// Why a string is not a valid DID (ID-DID-01). One variant per failed rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DidSyntaxError {
    /// The input is empty.
    #[error("DID is empty")]
    Empty,
    /// The input is longer than [`MAX_DID_LEN`].
    #[error("DID is {len} bytes long, the maximum is {MAX_DID_LEN}")]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
    },
    /// The input does not start with lowercase `did:`.
    #[error("DID must start with lowercase `did:`")]
    MissingPrefix,
    /// There is no `:` after the method name.
    #[error("DID has no `:` after the method name")]
    MissingMethodSeparator,
    /// The method is empty or contains something other than lowercase ASCII letters.
    #[error("DID method must be one or more lowercase ASCII letters")]
    InvalidMethod,
    /// The method-specific identifier is empty.
    #[error("DID method-specific identifier is empty")]
    EmptyIdentifier,
    /// A character outside `[a-zA-Z0-9._:%-]` (this also rejects `/`, `?` and `#`: no paths, queries or
    /// fragments).
    #[error("DID contains the character {ch:?}, allowed are ASCII letters, digits and `._:%-`")]
    InvalidCharacter {
        /// The offending character.
        ch: char,
    },
    /// The DID ends with `:` or `%`.
    #[error("DID must not end with `:` or `%`")]
    InvalidEnding,
}

/// A syntactically valid DID (ID-DID-01), e.g. `did:plc:ewvi7nxzyoun6zhxrhs64oiz`.
///
/// DIDs are case-sensitive and compared byte for byte. The value is guaranteed to match
/// `^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$` and be at most 2048 bytes long. Percent-escapes
/// are not validated, as the spec allows.
///
/// ```
/// use atauth_syntax::Did;
///
/// let did: Did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz".parse()?;
/// assert_eq!(did.method(), "plc");
/// assert_eq!(did.identifier(), "ewvi7nxzyoun6zhxrhs64oiz");
/// assert!("DID:plc:abc".parse::<Did>().is_err());
/// # Ok::<(), atauth_syntax::DidSyntaxError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Did(String);

impl Did {
    /// Validates `s` (ID-DID-01) and wraps it. No normalisation: DIDs are case-sensitive.
    pub fn new(s: impl Into<String>) -> Result<Self, DidSyntaxError> {
        let s = s.into();
        validate_did(&s)?;
        Ok(Self(s))
    }

    /// Parses a DID typed by a user: surrounding whitespace is removed, then the strict rules apply.
    pub fn parse_user_input(input: &str) -> Result<Self, DidSyntaxError> {
        Self::new(input.trim())
    }

    /// The method name, e.g. `plc` for `did:plc:…`.
    pub fn method(&self) -> &str {
        self.split().0
    }

    /// The method-specific identifier (everything after `did:<method>:`).
    pub fn identifier(&self) -> &str {
        self.split().1
    }

    /// Whether this is a `did:plc` DID.
    pub fn is_plc(&self) -> bool {
        self.method() == "plc"
    }

    /// Whether this is a `did:web` DID.
    pub fn is_web(&self) -> bool {
        self.method() == "web"
    }

    fn split(&self) -> (&str, &str) {
        // Invariant (checked in `validate_did`): the string is `did:<method>:<identifier>`.
        let rest = &self.0[4..];
        match rest.split_once(':') {
            Some(parts) => parts,
            None => (rest, ""),
        }
    }
}

fn validate_did(s: &str) -> Result<(), DidSyntaxError> {
    if s.is_empty() {
        return Err(DidSyntaxError::Empty);
    }
    if s.len() > MAX_DID_LEN {
        return Err(DidSyntaxError::TooLong { len: s.len() });
    }
    let rest = s.strip_prefix("did:").ok_or(DidSyntaxError::MissingPrefix)?;
    let (method, identifier) = rest.split_once(':').ok_or(DidSyntaxError::MissingMethodSeparator)?;
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(DidSyntaxError::InvalidMethod);
    }
    if identifier.is_empty() {
        return Err(DidSyntaxError::EmptyIdentifier);
    }
    if let Some(ch) =
        identifier.chars().find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '%' | '-')))
    {
        return Err(DidSyntaxError::InvalidCharacter { ch });
    }
    if identifier.ends_with([':', '%']) {
        return Err(DidSyntaxError::InvalidEnding);
    }
    Ok(())
}

string_id!(newtype Did, DidSyntaxError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_and_identifier_split_at_first_colon() {
        let did = Did::new("did:web:localhost%3A1234").expect("valid");
        assert_eq!(did.method(), "web");
        assert_eq!(did.identifier(), "localhost%3A1234");
        assert!(did.is_web());
        let did = Did::new("did:method::::val").expect("valid");
        assert_eq!(did.identifier(), ":::val");
    }

    #[test]
    fn each_rule_has_its_own_error() {
        assert_eq!(Did::new(""), Err(DidSyntaxError::Empty));
        assert_eq!(Did::new("DID:plc:x"), Err(DidSyntaxError::MissingPrefix));
        assert_eq!(Did::new("did:plc"), Err(DidSyntaxError::MissingMethodSeparator));
        assert_eq!(Did::new("did:PLC:x"), Err(DidSyntaxError::InvalidMethod));
        assert_eq!(Did::new("did::x"), Err(DidSyntaxError::InvalidMethod));
        assert_eq!(Did::new("did:plc:"), Err(DidSyntaxError::EmptyIdentifier));
        assert_eq!(Did::new("did:plc:a#b"), Err(DidSyntaxError::InvalidCharacter { ch: '#' }));
        assert_eq!(Did::new("did:plc:a%"), Err(DidSyntaxError::InvalidEnding));
        let long = format!("did:plc:{}", "a".repeat(MAX_DID_LEN));
        assert_eq!(Did::new(long.clone()), Err(DidSyntaxError::TooLong { len: long.len() }));
    }

    #[test]
    fn parse_user_input_trims_whitespace_only() {
        assert_eq!(Did::parse_user_input("  did:plc:abc \n").expect("valid").as_str(), "did:plc:abc");
        assert!(Did::parse_user_input("did:PLC:abc").is_err());
    }

    #[test]
    fn serde_round_trip_and_rejects_invalid() {
        let did = Did::new("did:plc:abc").expect("valid");
        let json = serde_json::to_string(&did).expect("serialize");
        assert_eq!(json, "\"did:plc:abc\"");
        assert_eq!(serde_json::from_str::<Did>(&json).expect("deserialize"), did);
        assert!(serde_json::from_str::<Did>("\"did:plc:\"").is_err());
    }
}
