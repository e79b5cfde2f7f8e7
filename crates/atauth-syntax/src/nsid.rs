//! `Nsid`: a Namespaced Identifier naming a Lexicon schema, e.g. `com.atproto.identity.resolveHandle`.
//!
//! Syntax per the atproto Lexicon/NSID specification: a reversed domain name (the authority) followed by
//! a name segment. Case is preserved (the name segment is case-sensitive).

/// Maximum total length of an NSID in bytes.
pub const MAX_NSID_LEN: usize = 317;

/// Maximum length of one NSID segment.
pub const MAX_NSID_SEGMENT_LEN: usize = 63;

/// Why a string is not a valid NSID. One variant per failed rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NsidSyntaxError {
    /// The input is empty.
    #[error("NSID is empty")]
    Empty,
    /// The input contains non-ASCII characters.
    #[error("NSID must be ASCII")]
    NonAscii,
    /// The input is longer than [`MAX_NSID_LEN`].
    #[error("NSID is {len} bytes long, the maximum is {MAX_NSID_LEN}")]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
    },
    /// Fewer than three segments (two for the authority, one for the name).
    #[error("NSID needs at least three dot-separated segments")]
    TooFewSegments,
    /// An empty segment: leading, trailing or doubled dot.
    #[error("NSID has an empty segment")]
    EmptySegment,
    /// A segment longer than [`MAX_NSID_SEGMENT_LEN`].
    #[error("NSID segment is {len} bytes long, the maximum is {MAX_NSID_SEGMENT_LEN}")]
    SegmentTooLong {
        /// Length of the segment in bytes.
        len: usize,
    },
    /// A character outside `[a-zA-Z0-9-]` in an authority segment.
    #[error("NSID authority contains the character {ch:?}")]
    InvalidAuthorityCharacter {
        /// The offending character.
        ch: char,
    },
    /// An authority segment starts or ends with `-`.
    #[error("NSID authority segment starts or ends with `-`")]
    AuthorityHyphen,
    /// The first authority segment (the TLD) starts with a digit.
    #[error("NSID must start with a letter")]
    FirstSegmentStartsWithDigit,
    /// A character outside `[a-zA-Z0-9]` in the name segment.
    #[error("NSID name contains the character {ch:?}, only ASCII letters and digits are allowed")]
    InvalidNameCharacter {
        /// The offending character.
        ch: char,
    },
    /// The name segment starts with a digit.
    #[error("NSID name must start with a letter")]
    NameStartsWithDigit,
}

/// A syntactically valid NSID.
///
/// ```
/// use atauth_syntax::Nsid;
///
/// let nsid: Nsid = "com.atproto.identity.resolveHandle".parse()?;
/// assert_eq!(nsid.authority(), "com.atproto.identity");
/// assert_eq!(nsid.name(), "resolveHandle");
/// # Ok::<(), atauth_syntax::NsidSyntaxError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nsid(String);

impl Nsid {
    /// Validates `s` and wraps it.
    pub fn new(s: impl Into<String>) -> Result<Self, NsidSyntaxError> {
        let s = s.into();
        validate_nsid(&s)?;
        Ok(Self(s))
    }

    /// The authority part in NSID order (everything before the last `.`), e.g. `com.atproto.identity`.
    pub fn authority(&self) -> &str {
        self.0.rsplit_once('.').map_or("", |(a, _)| a)
    }

    /// The name segment (after the last `.`), e.g. `resolveHandle`.
    pub fn name(&self) -> &str {
        self.0.rsplit_once('.').map_or(self.0.as_str(), |(_, n)| n)
    }
}

fn validate_nsid(s: &str) -> Result<(), NsidSyntaxError> {
    if s.is_empty() {
        return Err(NsidSyntaxError::Empty);
    }
    if !s.is_ascii() {
        return Err(NsidSyntaxError::NonAscii);
    }
    if s.len() > MAX_NSID_LEN {
        return Err(NsidSyntaxError::TooLong { len: s.len() });
    }
    let segments: Vec<&str> = s.split('.').collect();
    if segments.len() < 3 {
        return Err(NsidSyntaxError::TooFewSegments);
    }
    for seg in &segments {
        if seg.is_empty() {
            return Err(NsidSyntaxError::EmptySegment);
        }
        if seg.len() > MAX_NSID_SEGMENT_LEN {
            return Err(NsidSyntaxError::SegmentTooLong { len: seg.len() });
        }
    }
    let (name, authority) = match segments.split_last() {
        Some(parts) => parts,
        None => return Err(NsidSyntaxError::TooFewSegments),
    };
    for seg in authority {
        if let Some(ch) = seg.chars().find(|&c| !(c.is_ascii_alphanumeric() || c == '-')) {
            return Err(NsidSyntaxError::InvalidAuthorityCharacter { ch });
        }
        if seg.starts_with('-') || seg.ends_with('-') {
            return Err(NsidSyntaxError::AuthorityHyphen);
        }
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(NsidSyntaxError::FirstSegmentStartsWithDigit);
    }
    if let Some(ch) = name.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(NsidSyntaxError::InvalidNameCharacter { ch });
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(NsidSyntaxError::NameStartsWithDigit);
    }
    Ok(())
}

string_id!(newtype Nsid, NsidSyntaxError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_has_its_own_error() {
        assert_eq!(Nsid::new(""), Err(NsidSyntaxError::Empty));
        assert_eq!(Nsid::new("com.example"), Err(NsidSyntaxError::TooFewSegments));
        assert_eq!(Nsid::new("one.two..three"), Err(NsidSyntaxError::EmptySegment));
        assert_eq!(
            Nsid::new("com.exa_mple.thing"),
            Err(NsidSyntaxError::InvalidAuthorityCharacter { ch: '_' })
        );
        assert_eq!(Nsid::new("com.example-.foo"), Err(NsidSyntaxError::AuthorityHyphen));
        assert_eq!(Nsid::new("0two.example.foo"), Err(NsidSyntaxError::FirstSegmentStartsWithDigit));
        assert_eq!(Nsid::new("a-0.b-1.c-3"), Err(NsidSyntaxError::InvalidNameCharacter { ch: '-' }));
        assert_eq!(Nsid::new("com.example.fooBar.2"), Err(NsidSyntaxError::NameStartsWithDigit));
    }

    #[test]
    fn case_is_preserved() {
        let n = Nsid::new("one.two.three.four-and.FiVe").expect("valid");
        assert_eq!(n.name(), "FiVe");
        assert_eq!(n.authority(), "one.two.three.four-and");
    }
}
