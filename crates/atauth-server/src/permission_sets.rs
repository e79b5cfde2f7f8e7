//! Permission sets (`include:<nsid>`, SCOPE-10/11) on the authorization server.
//!
//! PAR resolves every `include:` a request names (pinned `--lexicon-dir` files, then the cache, then
//! the network through [`atauth_identity::lexicon`]) and checks the document
//! ([`PermissionSet::from_document`]); a failure is `invalid_scope` with a description that names
//! the set and the failed step, and nothing is stored. The request, the code and the token family
//! keep the scope as granted, `include:` entries and all; each access token's `scope` is computed
//! at issuance by replacing every `include:` with what its set grants (SCOPE-12), from a fresh
//! resolution for a new session and from the cache (stale values allowed) at refresh, so a set that
//! changes takes effect at the next refresh and never mid-token (SCOPE-11).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use atauth_identity::Nsid;
use atauth_identity::lexicon::{LexiconResolveError, LexiconResolver};
use atauth_identity::{HickoryTxtLookup, TxtLookup, TxtLookupError};
use atauth_oauth::ScopeSet;
use atauth_oauth::scope::{PermissionSet, PermissionSetError};

use crate::server::AuthServer;

/// Why a granted or requested scope's permission sets could not be used. Its `Display` is the
/// `invalid_scope` error description.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PermissionSetFailure {
    /// The set could not be resolved (DNS, DID, PDS, size, …; SCOPE-10).
    #[error("{}", .0.oauth_error_description())]
    Resolve(#[source] LexiconResolveError),
    /// The set was found but is not a valid permission set (SCOPE-10).
    #[error("permission set {nsid} is invalid: {error}")]
    Invalid {
        /// The set.
        nsid: Nsid,
        /// What is wrong with it.
        #[source]
        error: PermissionSetError,
    },
    /// A set the scope names was not among those resolved (cannot happen through
    /// `PermissionSets::resolve_all`, which resolves them all).
    #[error("permission set {0} is not resolved")]
    NotResolved(Nsid),
}

/// Resolves and checks permission sets for PAR, the consent screen and token issuance.
#[derive(Clone)]
pub(crate) struct PermissionSets {
    resolver: Arc<dyn LexiconResolver>,
    checked: Arc<Mutex<HashMap<Nsid, CheckedSet>>>,
}

/// A document already checked by [`PermissionSet::from_document`], and the result. The resolver
/// hands out the same `Arc` for as long as it serves the same cached or pinned document, so a pointer
/// comparison tells that the check need not run again; a refreshed document is a new `Arc`.
struct CheckedSet {
    document: Arc<serde_json::Value>,
    set: Arc<PermissionSet>,
}

/// Bound on remembered checks; past it the map starts over (the resolver's cache is the real store).
const MAX_CHECKED_SETS: usize = 1_000;

impl PermissionSets {
    pub(crate) fn new(resolver: Arc<dyn LexiconResolver>) -> Self {
        Self { resolver, checked: Arc::default() }
    }

    /// `document` checked as the permission set `nsid`, from memory when this very document was
    /// checked before.
    fn check(
        &self,
        nsid: &Nsid,
        document: &Arc<serde_json::Value>,
    ) -> Result<Arc<PermissionSet>, PermissionSetFailure> {
        let lock = || self.checked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(known) = lock().get(nsid).filter(|c| Arc::ptr_eq(&c.document, document)) {
            return Ok(Arc::clone(&known.set));
        }
        let set = PermissionSet::from_document(nsid, document)
            .map(Arc::new)
            .map_err(|error| PermissionSetFailure::Invalid { nsid: nsid.clone(), error })?;
        let mut checked = lock();
        if checked.len() >= MAX_CHECKED_SETS {
            checked.clear();
        }
        checked.insert(nsid.clone(), CheckedSet { document: Arc::clone(document), set: Arc::clone(&set) });
        Ok(set)
    }

    /// Every set `scope` includes, resolved and checked, in order. `existing_session`: a refresh may
    /// use a cached set past its freshness (SCOPE-11); a new session may not use one past its max age.
    pub(crate) async fn resolve_all(
        &self,
        scope: &ScopeSet,
        existing_session: bool,
    ) -> Result<Vec<Arc<PermissionSet>>, PermissionSetFailure> {
        let mut sets = Vec::new();
        for nsid in scope.included_sets() {
            let resolved = if existing_session {
                self.resolver.resolve_lexicon_for_existing_session(&nsid).await
            } else {
                self.resolver.resolve_lexicon(&nsid).await
            }
            .map_err(PermissionSetFailure::Resolve)?;
            sets.push(self.check(&nsid, &resolved.document)?);
        }
        Ok(sets)
    }
}

/// Whether a scope string names any permission set (cheap: no parsing on the common path).
pub(crate) fn has_include(scope: &str) -> bool {
    scope.split(' ').any(|s| s.starts_with("include:"))
}

impl AuthServer {
    /// The access token's `scope` for a granted scope (SCOPE-12): unchanged without `include:`,
    /// otherwise every `include:` replaced by the permissions its set grants.
    pub(crate) async fn access_token_scope(
        &self,
        granted: &str,
        existing_session: bool,
    ) -> Result<String, PermissionSetFailure> {
        if !has_include(granted) {
            return Ok(granted.to_owned());
        }
        // A stored scope was checked when it was granted; an unparseable one grants what parses.
        let set = ScopeSet::parse(granted).unwrap_or_default();
        let sets = self.inner.permission_sets.resolve_all(&set, existing_session).await?;
        let expanded = set
            .token_scope(|nsid| sets.iter().find(|s| &s.nsid == nsid).map(|s| &**s))
            .map_err(|missing| PermissionSetFailure::NotResolved(missing.nsid))?;
        Ok(expanded.to_string())
    }

    /// The permission sets a scope includes, resolved for a new session (PAR, the consent screen).
    pub async fn permission_sets(
        &self,
        scope: &ScopeSet,
    ) -> Result<Vec<Arc<PermissionSet>>, PermissionSetFailure> {
        self.inner.permission_sets.resolve_all(scope, false).await
    }
}

/// The system DNS resolver, built on first use (building it outside a Tokio runtime is not
/// allowed, and most servers never resolve a permission set).
#[derive(Default)]
pub(crate) struct SystemTxtLookup {
    resolver: OnceLock<Result<HickoryTxtLookup, TxtLookupError>>,
}

#[async_trait::async_trait]
impl TxtLookup for SystemTxtLookup {
    async fn txt(&self, name: &str) -> Result<Vec<String>, TxtLookupError> {
        match self.resolver.get_or_init(HickoryTxtLookup::from_system_conf) {
            Ok(resolver) => resolver.txt(name).await,
            Err(e) => Err(e.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use atauth_identity::lexicon::{CachedLexiconResolver, LexiconCachePolicy, MemoryLexiconCache};

    use super::*;

    fn sets() -> PermissionSets {
        let cache = Arc::new(MemoryLexiconCache::new());
        PermissionSets::new(Arc::new(CachedLexiconResolver::new(cache, LexiconCachePolicy::default())))
    }

    fn nsid() -> Nsid {
        Nsid::new("com.example.cookbook.authFull").unwrap_or_else(|e| panic!("{e}"))
    }

    fn document(collection: &str) -> Arc<serde_json::Value> {
        Arc::new(serde_json::json!({
            "lexicon": 1,
            "id": "com.example.cookbook.authFull",
            "defs": { "main": { "type": "permission-set", "permissions": [
                { "type": "permission", "resource": "repo", "collection": [collection] }
            ] } }
        }))
    }

    /// SCOPE-10's check runs once per document the resolver hands out, not once per request.
    #[test]
    fn the_same_document_is_checked_once_and_a_new_one_again() {
        let sets = sets();
        let doc = document("com.example.cookbook.recipe");
        let first = sets.check(&nsid(), &doc).unwrap_or_else(|e| panic!("{e}"));
        let again = sets.check(&nsid(), &Arc::clone(&doc)).unwrap_or_else(|e| panic!("{e}"));
        assert!(Arc::ptr_eq(&first, &again), "the remembered check is used");

        // A refreshed document (a new Arc) is checked again, and its grants are the new ones.
        let refreshed = document("com.example.cookbook.review");
        let second = sets.check(&nsid(), &refreshed).unwrap_or_else(|e| panic!("{e}"));
        assert!(!Arc::ptr_eq(&first, &second));
        assert_ne!(*first, *second);
    }

    /// SCOPE-10: a document that is not a permission set is refused every time, and a refused
    /// document does not replace the remembered good one.
    #[test]
    fn an_invalid_document_is_refused_and_not_remembered() {
        let sets = sets();
        let good = document("com.example.cookbook.recipe");
        let checked = sets.check(&nsid(), &good).unwrap_or_else(|e| panic!("{e}"));
        let bad = Arc::new(serde_json::json!({
            "lexicon": 1, "id": "com.example.cookbook.authFull", "defs": { "main": { "type": "query" } }
        }));
        for _ in 0..2 {
            let err = sets.check(&nsid(), &bad).map(|_| ()).expect_err("not a permission set");
            assert!(matches!(err, PermissionSetFailure::Invalid { .. }), "{err}");
        }
        let still = sets.check(&nsid(), &good).unwrap_or_else(|e| panic!("{e}"));
        assert!(Arc::ptr_eq(&checked, &still));
    }
}
