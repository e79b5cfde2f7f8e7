//! [`ScopeSet`]: a list of scopes as it travels on the wire, and the matching between sets.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use atauth_syntax::Nsid;

use super::access::transition_allows;
use super::{
    ATPROTO_SCOPE, Access, MAX_SCOPE_STRING_LEN, Permission, PermissionSet, Scope, ScopeMissing,
    ScopeSyntaxError,
};

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

    /// The permissions of the scopes that have a meaning, in order; the others are skipped (an
    /// unknown scope grants nothing).
    pub fn permissions(&self) -> Vec<Permission> {
        self.0.iter().filter_map(|s| s.permission().ok()).collect()
    }

    /// Whether the scopes allow `access` (RS-SCOPE-01): a transitional scope's grant (SCOPE-03) or
    /// one granular permission that covers it. Scopes without a meaning, `atproto` and unexpanded
    /// `include:` allow nothing; a token's scope has its `include:`s expanded (SCOPE-12).
    pub fn allows(&self, access: &Access) -> bool {
        transition_allows(|t| self.contains(t.as_str()), access)
            || self.0.iter().any(|s| s.permission().is_ok_and(|p| p.allows(access)))
    }

    /// [`allows`](Self::allows), or the reference's 403 naming the scope that would allow it.
    pub fn check(&self, access: &Access) -> Result<(), ScopeMissing> {
        if self.allows(access) { Ok(()) } else { Err(ScopeMissing::for_access(access)) }
    }

    /// What the reference AS keeps of a requested scope (SCOPE-12, REF `request-manager.ts`): each
    /// scope once (first occurrence), scopes without a meaning dropped silently, order kept.
    pub fn understood(&self) -> ScopeSet {
        let mut out: Vec<Scope> = Vec::with_capacity(self.0.len());
        for s in &self.0 {
            if !out.contains(s) && s.permission().is_ok() {
                out.push(s.clone());
            }
        }
        Self(out)
    }

    /// The reference's normal form of a scope list (`normalizeAtprotoOauthScope`): each scope in
    /// its normal form ([`Permission`]'s `Display`), scopes without a meaning dropped, sorted by
    /// code unit like JavaScript's `sort()`. Duplicates stay, as in the reference; chain
    /// [`dedup`](Self::dedup) to drop them.
    pub fn normalized(&self) -> ScopeSet {
        let mut out: Vec<Scope> = self
            .0
            .iter()
            .filter_map(|s| s.permission().ok())
            .filter_map(|p| Scope::new(p.to_string()).ok())
            .collect();
        out.sort_by(|a, b| a.as_str().encode_utf16().cmp(b.as_str().encode_utf16()));
        Self(out)
    }

    /// The same scopes, each once (first occurrence kept).
    pub fn dedup(&self) -> ScopeSet {
        let mut out: Vec<Scope> = Vec::with_capacity(self.0.len());
        for s in &self.0 {
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
        Self(out)
    }

    /// The access token's `scope` (SCOPE-12, REF `lexicon-manager.ts` `buildTokenScope`): every
    /// `include:` replaced by the normal forms of what its set grants (SCOPE-10), in the order of
    /// the `include:`s, followed by the other scopes as they are. Without an `include:` the scope is
    /// returned unchanged. Apply it to [`understood`](Self::understood) scopes, as the reference
    /// does. `sets` looks up a resolved set by NSID; a missing one is an error (the reference
    /// refuses the token request).
    pub fn token_scope<'a>(
        &self,
        sets: impl Fn(&Nsid) -> Option<&'a PermissionSet>,
    ) -> Result<ScopeSet, MissingPermissionSet> {
        let mut expanded: Vec<Scope> = Vec::new();
        let mut others: Vec<Scope> = Vec::new();
        let mut any_include = false;
        for s in &self.0 {
            match s.permission() {
                Ok(Permission::Include(include)) => {
                    any_include = true;
                    let set = sets(&include.nsid)
                        .ok_or_else(|| MissingPermissionSet { nsid: include.nsid.clone() })?;
                    for p in include.expand(set).permissions {
                        // Normal forms are always valid scope tokens (SCOPE-02).
                        if let Ok(scope) = Scope::new(p.to_string()) {
                            expanded.push(scope);
                        }
                    }
                }
                _ => others.push(s.clone()),
            }
        }
        if !any_include {
            return Ok(self.clone());
        }
        expanded.extend(others);
        Ok(Self(expanded))
    }

    /// The NSIDs of the `include:` scopes, each once, in order: the sets to resolve (SCOPE-10).
    pub fn included_sets(&self) -> Vec<Nsid> {
        let mut out: Vec<Nsid> = Vec::new();
        for s in &self.0 {
            if let Ok(Permission::Include(i)) = s.permission()
                && !out.contains(&i.nsid)
            {
                out.push(i.nsid);
            }
        }
        out
    }
}

/// [`ScopeSet::token_scope`] was not given the set an `include:` names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("permission set {nsid} is not resolved")]
pub struct MissingPermissionSet {
    /// The set's NSID.
    pub nsid: Nsid,
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
