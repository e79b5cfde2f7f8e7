//! `Handle`: an atproto handle (a DNS name), normalised to lowercase.
//!
//! Implements checklist ID-HANDLE-01 (syntax), ID-HANDLE-02 (case-insensitive, `@` is UI-only) and
//! ID-HANDLE-03 (TLDs that must never be resolved, `.test` only in development, `handle.invalid`).

/// Maximum length of a handle in bytes (ID-HANDLE-01).
pub const MAX_HANDLE_LEN: usize = 253;

/// Maximum length of one dot-separated label (ID-HANDLE-01).
pub const MAX_LABEL_LEN: usize = 63;

/// TLDs whose handles are syntactically valid but must fail resolution (ID-HANDLE-03).
///
/// `.test` is not in this list: it is refused by [`TldPolicy::production`] and allowed by
/// [`TldPolicy::development`].
pub const DISALLOWED_TLDS: [&str; 8] =
    ["alt", "arpa", "example", "internal", "invalid", "local", "localhost", "onion"];

/// The sentinel handle meaning "this account has no verified handle" (ID-HANDLE-03).
pub const INVALID_HANDLE_SENTINEL: &str = "handle.invalid";

/// Why a string is not a syntactically valid handle (ID-HANDLE-01). One variant per failed rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandleSyntaxError {
    /// The input is empty.
    #[error("handle is empty")]
    Empty,
    /// The input contains non-ASCII characters (internationalised names must be punycode).
    #[error("handle must be ASCII (use punycode for international names)")]
    NonAscii,
    /// The input is longer than [`MAX_HANDLE_LEN`].
    #[error("handle is {len} bytes long, the maximum is {MAX_HANDLE_LEN}")]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
    },
    /// Fewer than two dot-separated labels.
    #[error("handle needs at least two dot-separated labels")]
    TooFewLabels,
    /// An empty label: leading, trailing or doubled dot.
    #[error("handle has an empty label (leading, trailing or doubled `.`)")]
    EmptyLabel,
    /// A label longer than [`MAX_LABEL_LEN`].
    #[error("handle label is {len} bytes long, the maximum is {MAX_LABEL_LEN}")]
    LabelTooLong {
        /// Length of the label in bytes.
        len: usize,
    },
    /// A character outside `[a-zA-Z0-9-]` in a label.
    #[error("handle contains the character {ch:?}, allowed are ASCII letters, digits, `-` and `.`")]
    InvalidCharacter {
        /// The offending character.
        ch: char,
    },
    /// A label starts or ends with `-`.
    #[error("handle label starts or ends with `-`")]
    LabelHyphen,
    /// The last label (TLD) starts with a digit.
    #[error("handle TLD must start with a letter")]
    TldStartsWithDigit,
}

/// Why a syntactically valid handle must not be resolved (ID-HANDLE-03).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnresolvableHandle {
    /// The handle is `handle.invalid`, the sentinel for "no verified handle".
    #[error("`handle.invalid` is a sentinel meaning \"no verified handle\", not an identifier")]
    InvalidSentinel,
    /// The handle's TLD is one of [`DISALLOWED_TLDS`].
    #[error("handles under `.{tld}` are never resolved")]
    DisallowedTld {
        /// The TLD (lowercase, without the dot).
        tld: String,
    },
    /// The handle is under `.test` and the policy is not a development one.
    #[error("`.test` handles are only resolved in development mode")]
    TestTldNotAllowed,
}

/// Which TLDs may be resolved: production refuses `.test`, development allows it (ID-HANDLE-03).
///
/// The [`DISALLOWED_TLDS`] and the `handle.invalid` sentinel are refused in both modes. The same policy
/// applies to `did:web` hostnames (ID-DID-04).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TldPolicy {
    allow_test: bool,
}

impl TldPolicy {
    /// The production policy: `.test` is refused.
    pub const fn production() -> Self {
        Self { allow_test: false }
    }

    /// The development policy: `.test` handles may be resolved (e.g. through an XRPC resolver).
    pub const fn development() -> Self {
        Self { allow_test: true }
    }

    /// Whether `.test` is allowed.
    pub const fn allows_test_tld(self) -> bool {
        self.allow_test
    }

    /// Checks a lowercase DNS name's TLD (`name` may be a handle or a `did:web` host, ID-DID-04).
    pub fn check_name(self, name: &str) -> Result<(), UnresolvableHandle> {
        if name == INVALID_HANDLE_SENTINEL {
            return Err(UnresolvableHandle::InvalidSentinel);
        }
        let tld = name.rsplit('.').next().unwrap_or(name);
        if DISALLOWED_TLDS.contains(&tld) {
            return Err(UnresolvableHandle::DisallowedTld { tld: tld.to_owned() });
        }
        if tld == "test" && !self.allow_test {
            return Err(UnresolvableHandle::TestTldNotAllowed);
        }
        Ok(())
    }
}

/// A syntactically valid atproto handle (ID-HANDLE-01), stored in lowercase (ID-HANDLE-02).
///
/// Equality and hashing therefore ignore the case of the input. Syntax validity says nothing about
/// whether the handle may be resolved: see [`Handle::check_resolvable`].
///
/// ```
/// use atauth_syntax::{Handle, TldPolicy};
///
/// let h = Handle::parse_user_input(" @Alice.Bsky.Social ")?;
/// assert_eq!(h.as_str(), "alice.bsky.social");
/// assert!(h.is_resolvable(TldPolicy::production()));
///
/// let local = Handle::new("laptop.local")?; // valid syntax ...
/// assert!(!local.is_resolvable(TldPolicy::development())); // ... but never resolved
/// # Ok::<(), atauth_syntax::HandleSyntaxError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(String);

impl Handle {
    /// Validates `s` (ID-HANDLE-01) and normalises it to lowercase (ID-HANDLE-02).
    pub fn new(s: impl Into<String>) -> Result<Self, HandleSyntaxError> {
        let mut s = s.into();
        validate_dns_name(&s)?;
        s.make_ascii_lowercase();
        Ok(Self(s))
    }

    /// Parses a handle typed by a user: trims whitespace and strips one leading `@` (ID-HANDLE-02), then
    /// validates and lowercases.
    pub fn parse_user_input(input: &str) -> Result<Self, HandleSyntaxError> {
        let trimmed = input.trim();
        Self::new(trimmed.strip_prefix('@').unwrap_or(trimmed))
    }

    /// The `handle.invalid` sentinel (ID-HANDLE-03).
    pub fn invalid_sentinel() -> Self {
        Self(INVALID_HANDLE_SENTINEL.to_owned())
    }

    /// Whether this is the `handle.invalid` sentinel.
    pub fn is_invalid_sentinel(&self) -> bool {
        self.0 == INVALID_HANDLE_SENTINEL
    }

    /// The last label, e.g. `social` for `alice.bsky.social`.
    pub fn tld(&self) -> &str {
        self.0.rsplit('.').next().unwrap_or(&self.0)
    }

    /// Checks whether this handle may be resolved under `policy` (ID-HANDLE-03).
    pub fn check_resolvable(&self, policy: TldPolicy) -> Result<(), UnresolvableHandle> {
        policy.check_name(&self.0)
    }

    /// Whether this handle may be resolved under `policy` (ID-HANDLE-03).
    pub fn is_resolvable(&self, policy: TldPolicy) -> bool {
        self.check_resolvable(policy).is_ok()
    }
}

/// Validates DNS-name syntax per ID-HANDLE-01 without normalising: what [`Handle::new`] checks, also
/// used for `did:web` hosts (ID-DID-04).
pub fn validate_dns_name(s: &str) -> Result<(), HandleSyntaxError> {
    if s.is_empty() {
        return Err(HandleSyntaxError::Empty);
    }
    if !s.is_ascii() {
        return Err(HandleSyntaxError::NonAscii);
    }
    if s.len() > MAX_HANDLE_LEN {
        return Err(HandleSyntaxError::TooLong { len: s.len() });
    }
    let mut labels = 0usize;
    let mut last = "";
    for label in s.split('.') {
        labels += 1;
        if label.is_empty() {
            return Err(HandleSyntaxError::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(HandleSyntaxError::LabelTooLong { len: label.len() });
        }
        if let Some(ch) = label.chars().find(|&c| !(c.is_ascii_alphanumeric() || c == '-')) {
            return Err(HandleSyntaxError::InvalidCharacter { ch });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(HandleSyntaxError::LabelHyphen);
        }
        last = label;
    }
    if labels < 2 {
        return Err(HandleSyntaxError::TooFewLabels);
    }
    if !last.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(HandleSyntaxError::TldStartsWithDigit);
    }
    Ok(())
}

string_id!(newtype Handle, HandleSyntaxError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_lowercased_and_at_is_ui_only() {
        // ID-HANDLE-02
        let h = Handle::new("XX.LCS.MIT.EDU").expect("valid");
        assert_eq!(h.as_str(), "xx.lcs.mit.edu");
        assert_eq!(h, Handle::new("xx.lcs.mit.edu").expect("valid"));
        assert_eq!(Handle::parse_user_input("@Jay.Bsky.Social").expect("valid").as_str(), "jay.bsky.social");
        // `@` is only stripped from user input, never accepted by the strict constructor.
        assert_eq!(Handle::new("@jay.bsky.social"), Err(HandleSyntaxError::InvalidCharacter { ch: '@' }));
        assert!(Handle::parse_user_input("@@jay.bsky.social").is_err());
    }

    #[test]
    fn each_rule_has_its_own_error() {
        // ID-HANDLE-01
        assert_eq!(Handle::new(""), Err(HandleSyntaxError::Empty));
        assert_eq!(Handle::new("bücher.test"), Err(HandleSyntaxError::NonAscii));
        assert_eq!(Handle::new("org"), Err(HandleSyntaxError::TooFewLabels));
        assert_eq!(Handle::new("john..test"), Err(HandleSyntaxError::EmptyLabel));
        assert_eq!(Handle::new("name.org."), Err(HandleSyntaxError::EmptyLabel));
        assert_eq!(Handle::new("-john.test"), Err(HandleSyntaxError::LabelHyphen));
        assert_eq!(Handle::new("john.0"), Err(HandleSyntaxError::TldStartsWithDigit));
        assert_eq!(Handle::new("jo_hn.test"), Err(HandleSyntaxError::InvalidCharacter { ch: '_' }));
        assert_eq!(
            Handle::new(format!("{}.test", "o".repeat(64))),
            Err(HandleSyntaxError::LabelTooLong { len: 64 })
        );
        let long = format!("{}.test", vec!["a".repeat(63); 4].join("."));
        assert_eq!(Handle::new(long.clone()), Err(HandleSyntaxError::TooLong { len: long.len() }));
    }

    #[test]
    fn disallowed_tlds_are_never_resolvable() {
        // ID-HANDLE-03: syntax-valid but unresolvable, in production and in development.
        for h in [
            "laptop.local",
            "blah.arpa",
            "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion",
            "a.alt",
            "a.example",
            "a.internal",
            "a.invalid",
            "a.localhost",
        ] {
            let h = Handle::new(h).expect("syntax-valid");
            for policy in [TldPolicy::production(), TldPolicy::development()] {
                assert!(
                    matches!(h.check_resolvable(policy), Err(UnresolvableHandle::DisallowedTld { .. })),
                    "{h} must be refused"
                );
            }
        }
    }

    #[test]
    fn test_tld_only_in_development_and_sentinel_never() {
        // ID-HANDLE-03
        let h = Handle::new("alice.test").expect("valid");
        assert_eq!(h.check_resolvable(TldPolicy::production()), Err(UnresolvableHandle::TestTldNotAllowed));
        assert!(h.is_resolvable(TldPolicy::development()));
        let sentinel = Handle::new("Handle.Invalid").expect("valid");
        assert!(sentinel.is_invalid_sentinel());
        assert_eq!(sentinel, Handle::invalid_sentinel());
        assert_eq!(
            sentinel.check_resolvable(TldPolicy::development()),
            Err(UnresolvableHandle::InvalidSentinel)
        );
        assert!(Handle::new("jay.bsky.social").expect("valid").is_resolvable(TldPolicy::production()));
    }

    #[test]
    fn serde_normalises_and_validates() {
        let h: Handle = serde_json::from_str("\"Alice.Example.COM\"").expect("valid");
        assert_eq!(h.as_str(), "alice.example.com");
        assert_eq!(serde_json::to_string(&h).expect("ser"), "\"alice.example.com\"");
        assert!(serde_json::from_str::<Handle>("\"john..test\"").is_err());
    }
}
