//! [`ScopeSet`]: a list of scopes as it travels on the wire, and the matching between sets.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{ATPROTO_SCOPE, MAX_SCOPE_STRING_LEN, Scope, ScopeSyntaxError};

/// A space-separated list of scopes, in the order given.
///
/// [`parse`](Self::parse) accepts duplicates (an authorization request may repeat a scope);
/// [`parse_unique`](Self::parse_unique) refuses them (client metadata, CL-MD-07).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    /// Parses `"atproto transition:generic"`: single spaces between valid tokens (SCOPE-02).
    pub fn parse(s: &str) -> Result<Self, ScopeSyntaxError> {
        if s.is_empty() {
            return Err(ScopeSyntaxError::Empty);
        }
        if s.len() > MAX_SCOPE_STRING_LEN {
            return Err(ScopeSyntaxError::TooLong { len: s.len() });
        }
        s.split(' ')
            .map(|t| if t.is_empty() { Err(ScopeSyntaxError::EmptyToken) } else { Scope::new(t) })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Like [`parse`](Self::parse), refusing duplicates.
    pub fn parse_unique(s: &str) -> Result<Self, ScopeSyntaxError> {
        let set = Self::parse(s)?;
        let mut seen = std::collections::HashSet::new();
        for scope in &set.0 {
            if !seen.insert(scope.as_str()) {
                return Err(ScopeSyntaxError::Duplicate { scope: scope.as_str().to_owned() });
            }
        }
        Ok(set)
    }

    /// A set from scopes.
    pub fn from_scopes(scopes: impl IntoIterator<Item = Scope>) -> Self {
        Self(scopes.into_iter().collect())
    }

    /// Whether `atproto` is included (SCOPE-01).
    pub fn has_atproto(&self) -> bool {
        self.contains(ATPROTO_SCOPE)
    }

    /// Whether the exact scope string is included.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s.as_str() == scope)
    }

    /// Whether every scope of `self` is in `other` (string comparison; SCOPE-12 / T-23).
    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        self.0.iter().all(|s| other.contains(s.as_str()))
    }

    /// The scopes.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// Number of scopes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no scopes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(s.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopeSet({:?})", self.to_string())
    }
}

impl FromStr for ScopeSet {
    type Err = ScopeSyntaxError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_02_grammar() {
        assert!(ScopeSet::parse("atproto transition:generic").is_ok());
        assert_eq!(ScopeSet::parse(""), Err(ScopeSyntaxError::Empty));
        assert_eq!(ScopeSet::parse("atproto  x"), Err(ScopeSyntaxError::EmptyToken));
        assert_eq!(ScopeSet::parse(" atproto"), Err(ScopeSyntaxError::EmptyToken));
        assert_eq!(ScopeSet::parse("atproto\"x"), Err(ScopeSyntaxError::InvalidCharacter { ch: '"' }));
        assert_eq!(ScopeSet::parse("a\\b"), Err(ScopeSyntaxError::InvalidCharacter { ch: '\\' }));
        assert_eq!(ScopeSet::parse("a\tb"), Err(ScopeSyntaxError::InvalidCharacter { ch: '\t' }));
        assert!(matches!(ScopeSet::parse_unique("atproto atproto"), Err(ScopeSyntaxError::Duplicate { .. })));
        assert!(ScopeSet::parse("atproto atproto").is_ok());
    }

    #[test]
    fn scope_01_atproto_detection() {
        assert!(ScopeSet::parse("transition:generic atproto").unwrap().has_atproto());
        assert!(!ScopeSet::parse("transition:generic").unwrap().has_atproto());
        assert!(!ScopeSet::parse("atproto2").unwrap().has_atproto());
    }
}
