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

use std::sync::{Arc, OnceLock};

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
}

impl PermissionSets {
    pub(crate) fn new(resolver: Arc<dyn LexiconResolver>) -> Self {
        Self { resolver }
    }

    /// Every set `scope` includes, resolved and checked, in order. `existing_session`: a refresh may
    /// use a cached set past its freshness (SCOPE-11); a new session may not use one past its max age.
    pub(crate) async fn resolve_all(
        &self,
        scope: &ScopeSet,
        existing_session: bool,
    ) -> Result<Vec<PermissionSet>, PermissionSetFailure> {
        let mut sets = Vec::new();
        for nsid in scope.included_sets() {
            let resolved = if existing_session {
                self.resolver.resolve_lexicon_for_existing_session(&nsid).await
            } else {
                self.resolver.resolve_lexicon(&nsid).await
            }
            .map_err(PermissionSetFailure::Resolve)?;
            let set = PermissionSet::from_document(&nsid, &resolved.document)
                .map_err(|error| PermissionSetFailure::Invalid { nsid: nsid.clone(), error })?;
            sets.push(set);
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
            .token_scope(|nsid| sets.iter().find(|s| &s.nsid == nsid))
            .map_err(|missing| PermissionSetFailure::NotResolved(missing.nsid))?;
        Ok(expanded.to_string())
    }

    /// The permission sets a scope includes, resolved for a new session (PAR, the consent screen).
    pub async fn permission_sets(
        &self,
        scope: &ScopeSet,
    ) -> Result<Vec<PermissionSet>, PermissionSetFailure> {
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
