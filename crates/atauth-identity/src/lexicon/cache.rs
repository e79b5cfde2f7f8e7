//! Permission-set caching with the SCOPE-11 lifetimes (permission spec §Resolution and Caching), set
//! by [`LexiconCachePolicy`].
//!
//! The cache is a [`LexiconCache`] trait so the server can keep entries in its persistent store; its
//! errors are logged and treated as a miss (the network is asked), never as a resolution failure.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use atauth_crypto::{Clock, SystemClock};
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use serde::{Deserialize, Serialize};

use super::{LexiconDir, LexiconResolveError, LexiconResolver, ResolvedLexicon};
use crate::syntax::Nsid;

/// Default "stale" lifetime: 1 hour.
pub const DEFAULT_LEXICON_STALE_AFTER: Duration = Duration::from_secs(60 * 60);

/// SCOPE-11's firm upper bound on the "stale" lifetime: 24 hours.
pub const MAX_LEXICON_STALE_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// Default maximum age for new authorization requests: 90 days (SCOPE-11's recommended expiration).
pub const DEFAULT_LEXICON_MAX_AGE: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// Default pause between refresh attempts of a stale entry after one failed: 5 minutes.
pub const DEFAULT_LEXICON_RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5 * 60);

/// Default maximum number of entries of a [`MemoryLexiconCache`].
pub const DEFAULT_LEXICON_CACHE_CAPACITY: usize = 10_000;

/// Why a [`LexiconCachePolicy`] breaks SCOPE-11.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LexiconCachePolicyError {
    /// `stale_after` is above the firm 24 h maximum.
    #[error("permission-set cache stale lifetime {stale_after:?} exceeds the 24 h maximum (SCOPE-11)")]
    StaleAfterTooLong {
        /// The value asked for.
        stale_after: Duration,
    },
    /// `stale_after` is below the access-token lifetime.
    #[error(
        "permission-set cache stale lifetime {stale_after:?} is shorter than the access-token lifetime \
         {access_token_lifetime:?} (SCOPE-11)"
    )]
    StaleAfterBelowAccessTokenLifetime {
        /// The value asked for.
        stale_after: Duration,
        /// The server's access-token lifetime.
        access_token_lifetime: Duration,
    },
    /// `max_age` is below `stale_after`.
    #[error(
        "permission-set cache maximum age {max_age:?} is shorter than its stale lifetime {stale_after:?}"
    )]
    MaxAgeBelowStaleAfter {
        /// The maximum age asked for.
        max_age: Duration,
        /// The stale lifetime.
        stale_after: Duration,
    },
}

/// The lifetimes of cached permission sets (SCOPE-11):
///
/// - **Stale after** ([`LexiconCachePolicy::stale_after`], default [`DEFAULT_LEXICON_STALE_AFTER`] = 1 h):
///   a cached document younger than this is used without asking the network. SCOPE-11 bounds it: at
///   most 24 h ([`MAX_LEXICON_STALE_AFTER`], the spec's firm maximum) and at least the access-token
///   lifetime. The default is shorter than the spec's recommended 24 h because `_lexicon` DNS changes
///   are not announced anywhere (Lexicon spec: "resolving services should not cache DNS resolution
///   results for long time periods") and the reference refreshes every 5 minutes.
/// - **Refresh failure**: a stale document is refreshed; if that fails, the stale document keeps being
///   served, and the network is not asked again for [`LexiconCachePolicy::retry_after_failure`]
///   (default 5 min), so an authority outage does not add a timeout to every authorization request.
/// - **Maximum age** ([`LexiconCachePolicy::max_age`], default [`DEFAULT_LEXICON_MAX_AGE`] = 90 days,
///   the spec's recommended "expiration"): for a *new* authorization request, a document last fetched
///   longer ago than this is not used; the request fails if the refresh fails. Existing sessions (token
///   refresh, [`LexiconResolver::resolve_lexicon_for_existing_session`]) are not affected by it.
/// - Pinned documents ([`LexiconDir`]) are never cached and never refreshed.
/// - Concurrent requests needing the network for one NSID share a single resolution (and its
///   result, success or failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LexiconCachePolicy {
    stale_after: Duration,
    max_age: Duration,
    retry_after_failure: Duration,
}

impl Default for LexiconCachePolicy {
    /// Stale after 1 h, maximum age 90 days, 5 min between failed refreshes. Valid for access tokens of
    /// up to 1 h.
    fn default() -> Self {
        Self {
            stale_after: DEFAULT_LEXICON_STALE_AFTER,
            max_age: DEFAULT_LEXICON_MAX_AGE,
            retry_after_failure: DEFAULT_LEXICON_RETRY_AFTER_FAILURE,
        }
    }
}

impl LexiconCachePolicy {
    /// A policy checked against SCOPE-11 for a server issuing access tokens valid for
    /// `access_token_lifetime`: `access_token_lifetime <= stale_after <= 24 h` and
    /// `stale_after <= max_age`.
    pub fn new(
        stale_after: Duration,
        max_age: Duration,
        access_token_lifetime: Duration,
    ) -> Result<Self, LexiconCachePolicyError> {
        if stale_after > MAX_LEXICON_STALE_AFTER {
            return Err(LexiconCachePolicyError::StaleAfterTooLong { stale_after });
        }
        if stale_after < access_token_lifetime {
            return Err(LexiconCachePolicyError::StaleAfterBelowAccessTokenLifetime {
                stale_after,
                access_token_lifetime,
            });
        }
        if max_age < stale_after {
            return Err(LexiconCachePolicyError::MaxAgeBelowStaleAfter { max_age, stale_after });
        }
        Ok(Self { stale_after, max_age, retry_after_failure: DEFAULT_LEXICON_RETRY_AFTER_FAILURE })
    }

    /// The default lifetimes, checked against `access_token_lifetime` (fails if it is over 1 h).
    pub fn for_access_token_lifetime(
        access_token_lifetime: Duration,
    ) -> Result<Self, LexiconCachePolicyError> {
        Self::new(DEFAULT_LEXICON_STALE_AFTER, DEFAULT_LEXICON_MAX_AGE, access_token_lifetime)
    }

    /// How long to serve a stale entry without asking the network again after a failed refresh.
    /// Default 5 min. Values above `stale_after` are capped to it.
    #[must_use]
    pub fn retry_after_failure(mut self, pause: Duration) -> Self {
        self.retry_after_failure = pause.min(self.stale_after);
        self
    }

    /// The "stale" lifetime.
    pub fn stale_after(&self) -> Duration {
        self.stale_after
    }

    /// The maximum age for new authorization requests.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The pause between refresh attempts after a failure.
    pub fn retry_after_failure_pause(&self) -> Duration {
        self.retry_after_failure
    }
}

/// One cache entry: a network-resolved Lexicon and when it was fetched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedLexicon {
    /// The resolved document.
    pub lexicon: ResolvedLexicon,
    /// When it was last fetched successfully. Its age decides staleness and expiry.
    pub fetched_at: SystemTime,
    /// When the last refresh attempt failed, if the latest attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_at: Option<SystemTime>,
}

/// A cache backend failure (I/O, SQL). Logged by [`CachedLexiconResolver`] and treated as a miss.
#[derive(Debug, Clone, thiserror::Error)]
#[error("Lexicon cache backend failed: {0}")]
pub struct LexiconCacheError(#[source] pub Arc<dyn std::error::Error + Send + Sync>);

impl LexiconCacheError {
    /// Wraps a backend error.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(error))
    }
}

/// Storage for resolved Lexicons, shared by every account and session of a server (SCOPE-11). A
/// backend stores and returns entries as given; freshness is decided by [`CachedLexiconResolver`].
#[async_trait::async_trait]
pub trait LexiconCache: Send + Sync + 'static {
    /// The entry for `nsid`, if any.
    async fn get(&self, nsid: &Nsid) -> Result<Option<CachedLexicon>, LexiconCacheError>;

    /// Inserts or replaces the entry for `entry.lexicon.nsid`.
    async fn put(&self, entry: &CachedLexicon) -> Result<(), LexiconCacheError>;

    /// Removes the entry for `nsid` (no error if there is none).
    async fn remove(&self, nsid: &Nsid) -> Result<(), LexiconCacheError>;
}

/// An in-process [`LexiconCache`]: a map bounded to a number of entries; when full, inserting a new
/// NSID evicts the entry fetched longest ago.
#[derive(Debug)]
pub struct MemoryLexiconCache {
    entries: Mutex<HashMap<Nsid, CachedLexicon>>,
    capacity: usize,
}

impl Default for MemoryLexiconCache {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_LEXICON_CACHE_CAPACITY)
    }
}

impl MemoryLexiconCache {
    /// An empty cache of [`DEFAULT_LEXICON_CACHE_CAPACITY`] entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty cache of at most `capacity` entries (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self { entries: Mutex::new(HashMap::new()), capacity: capacity.max(1) }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Nsid, CachedLexicon>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl LexiconCache for MemoryLexiconCache {
    async fn get(&self, nsid: &Nsid) -> Result<Option<CachedLexicon>, LexiconCacheError> {
        Ok(self.lock().get(nsid).cloned())
    }

    async fn put(&self, entry: &CachedLexicon) -> Result<(), LexiconCacheError> {
        let mut entries = self.lock();
        if !entries.contains_key(&entry.lexicon.nsid) && entries.len() >= self.capacity {
            let oldest = entries.iter().min_by_key(|(_, e)| e.fetched_at).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(entry.lexicon.nsid.clone(), entry.clone());
        Ok(())
    }

    async fn remove(&self, nsid: &Nsid) -> Result<(), LexiconCacheError> {
        self.lock().remove(nsid);
        Ok(())
    }
}

/// A [`MemoryLexiconCache`] in front of a durable [`LexiconCache`] (the server's database): reads are
/// answered from memory when they can be, so a permission set in use costs no database read and no
/// JSON parse per authorization request; misses read the durable cache once and keep the entry in
/// memory; writes and removals go to both.
///
/// Several processes sharing one durable cache each keep their own memory copy. An entry refreshed
/// by another process is not seen here until this process's copy goes stale and is refreshed: each
/// process still follows the SCOPE-11 lifetimes on its own, which is what the spec asks of a resolver.
pub struct LayeredLexiconCache {
    memory: MemoryLexiconCache,
    durable: Arc<dyn LexiconCache>,
}

impl LayeredLexiconCache {
    /// `durable` behind a memory cache of [`DEFAULT_LEXICON_CACHE_CAPACITY`] entries.
    pub fn new(durable: Arc<dyn LexiconCache>) -> Self {
        Self { memory: MemoryLexiconCache::new(), durable }
    }
}

impl std::fmt::Debug for LayeredLexiconCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayeredLexiconCache").field("memory_entries", &self.memory.len()).finish()
    }
}

#[async_trait::async_trait]
impl LexiconCache for LayeredLexiconCache {
    async fn get(&self, nsid: &Nsid) -> Result<Option<CachedLexicon>, LexiconCacheError> {
        if let Some(entry) = self.memory.get(nsid).await? {
            return Ok(Some(entry));
        }
        let entry = self.durable.get(nsid).await?;
        if let Some(entry) = &entry {
            self.memory.put(entry).await?;
        }
        Ok(entry)
    }

    async fn put(&self, entry: &CachedLexicon) -> Result<(), LexiconCacheError> {
        // Durable first: if it fails, memory is not ahead of it and the error is reported.
        self.durable.put(entry).await?;
        self.memory.put(entry).await
    }

    async fn remove(&self, nsid: &Nsid) -> Result<(), LexiconCacheError> {
        self.memory.remove(nsid).await?;
        self.durable.remove(nsid).await
    }
}

/// Who is asking: decides whether [`LexiconCachePolicy::max_age`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    NewSession,
    ExistingSession,
}

/// The resolver the server uses (SCOPE-10/11): pinned [`LexiconDir`] first, then the
/// [`LexiconCache`] under a [`LexiconCachePolicy`], then the network resolver (if any).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use atauth_identity::lexicon::{CachedLexiconResolver, LexiconCachePolicy, MemoryLexiconCache};
///
/// // A server whose access tokens live 30 minutes: the default policy (stale after 1 h) fits.
/// let policy = LexiconCachePolicy::for_access_token_lifetime(Duration::from_secs(30 * 60))?;
/// let resolver = CachedLexiconResolver::new(Arc::new(MemoryLexiconCache::new()), policy);
/// # let _ = resolver;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct CachedLexiconResolver {
    local: LexiconDir,
    cache: Arc<dyn LexiconCache>,
    network: Option<Arc<dyn LexiconResolver>>,
    policy: LexiconCachePolicy,
    clock: Arc<dyn Clock>,
    inflight: Arc<Mutex<Inflight>>,
}

/// The network resolution shared by every concurrent request for one NSID.
type SharedResolution = Shared<BoxFuture<'static, Result<ResolvedLexicon, LexiconResolveError>>>;

/// Network resolutions in progress, by NSID, each with a generation number so only its own creator's
/// waiters remove it.
#[derive(Default)]
struct Inflight {
    next: u64,
    running: HashMap<Nsid, (u64, SharedResolution)>,
}

impl std::fmt::Debug for CachedLexiconResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedLexiconResolver")
            .field("pinned", &self.local.len())
            .field("network", &self.network.is_some())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl CachedLexiconResolver {
    /// A resolver over `cache` with `policy`, nothing pinned, no network (every unknown NSID fails with
    /// [`LexiconResolveError::NetworkDisabled`] until [`network`](Self::network) is set), system clock.
    pub fn new(cache: Arc<dyn LexiconCache>, policy: LexiconCachePolicy) -> Self {
        Self {
            local: LexiconDir::empty(),
            cache,
            network: None,
            policy,
            clock: Arc::new(SystemClock),
            inflight: Arc::default(),
        }
    }

    /// Documents pinned by the operator, used before the cache and the network.
    #[must_use]
    pub fn local_dir(mut self, dir: LexiconDir) -> Self {
        self.local = dir;
        self
    }

    /// The network resolver (normally [`AtprotoLexiconResolver`](super::AtprotoLexiconResolver)).
    #[must_use]
    pub fn network(mut self, resolver: Arc<dyn LexiconResolver>) -> Self {
        self.network = Some(resolver);
        self
    }

    /// The clock deciding entry ages (tests use a manual one).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The policy in force.
    pub fn policy(&self) -> LexiconCachePolicy {
        self.policy
    }

    async fn resolve(&self, nsid: &Nsid, purpose: Purpose) -> Result<ResolvedLexicon, LexiconResolveError> {
        if let Some(pinned) = self.local.get(nsid) {
            return Ok(pinned.clone());
        }
        let now = self.clock.now();
        let cached = match self.cache.get(nsid).await {
            Ok(entry) => entry.filter(|e| e.lexicon.nsid == *nsid),
            Err(error) => {
                tracing::warn!(%nsid, %error, "Lexicon cache read failed; resolving over the network");
                None
            }
        };
        let age_of = |t: SystemTime| now.duration_since(t).unwrap_or(Duration::ZERO);
        // An entry past the maximum age is not used for new sessions (SCOPE-11 "expiration").
        let usable = cached
            .filter(|e| purpose == Purpose::ExistingSession || age_of(e.fetched_at) < self.policy.max_age);
        if let Some(entry) = &usable {
            if age_of(entry.fetched_at) < self.policy.stale_after {
                return Ok(entry.lexicon.clone());
            }
            if entry.last_failure_at.is_some_and(|t| age_of(t) < self.policy.retry_after_failure) {
                return Ok(entry.lexicon.clone());
            }
        }
        let Some(network) = &self.network else {
            // Nothing to refresh with: a stale entry is still the best answer (air-gapped server).
            return usable
                .map(|e| e.lexicon)
                .ok_or_else(|| LexiconResolveError::NetworkDisabled { nsid: nsid.clone() });
        };
        match self.resolve_shared(network, nsid).await {
            Ok(lexicon) => {
                let entry = CachedLexicon { lexicon, fetched_at: now, last_failure_at: None };
                self.store(&entry).await;
                Ok(entry.lexicon)
            }
            Err(error) => match usable {
                // SCOPE-11: on a failed refresh keep the stale value.
                Some(mut entry) => {
                    tracing::warn!(%nsid, %error, "permission set refresh failed; serving the cached copy");
                    entry.last_failure_at = Some(now);
                    self.store(&entry).await;
                    Ok(entry.lexicon)
                }
                // SCOPE-11: unresolvable and not cached at session start → fail.
                None => Err(error),
            },
        }
    }

    /// Asks the network once for all concurrent requests for `nsid`: a burst of authorization requests
    /// for a new (or stale) set costs one DNS lookup and one `getRecord`, and every waiter gets the same
    /// answer, failures included (no queue of timeouts one after the other).
    async fn resolve_shared(
        &self,
        network: &Arc<dyn LexiconResolver>,
        nsid: &Nsid,
    ) -> Result<ResolvedLexicon, LexiconResolveError> {
        let (generation, resolution) = {
            let mut inflight = self.inflight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((generation, running)) = inflight.running.get(nsid) {
                (*generation, running.clone())
            } else {
                let (network, key) = (Arc::clone(network), nsid.clone());
                let resolution: SharedResolution =
                    async move { network.resolve_lexicon(&key).await }.boxed().shared();
                inflight.next += 1;
                let generation = inflight.next;
                inflight.running.insert(nsid.clone(), (generation, resolution.clone()));
                (generation, resolution)
            }
        };
        let result = resolution.await;
        let mut inflight = self.inflight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if inflight.running.get(nsid).is_some_and(|(g, _)| *g == generation) {
            inflight.running.remove(nsid);
        }
        result
    }

    async fn store(&self, entry: &CachedLexicon) {
        if let Err(error) = self.cache.put(entry).await {
            tracing::warn!(nsid = %entry.lexicon.nsid, %error, "Lexicon cache write failed");
        }
    }
}

#[async_trait::async_trait]
impl LexiconResolver for CachedLexiconResolver {
    async fn resolve_lexicon(&self, nsid: &Nsid) -> Result<ResolvedLexicon, LexiconResolveError> {
        self.resolve(nsid, Purpose::NewSession).await
    }

    async fn resolve_lexicon_for_existing_session(
        &self,
        nsid: &Nsid,
    ) -> Result<ResolvedLexicon, LexiconResolveError> {
        self.resolve(nsid, Purpose::ExistingSession).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn policy_bounds_follow_scope_11() {
        assert!(LexiconCachePolicy::new(24 * 60 * MIN, DEFAULT_LEXICON_MAX_AGE, 30 * MIN).is_ok());
        assert_eq!(
            LexiconCachePolicy::new(
                24 * 60 * MIN + Duration::from_secs(1),
                DEFAULT_LEXICON_MAX_AGE,
                30 * MIN
            ),
            Err(LexiconCachePolicyError::StaleAfterTooLong {
                stale_after: 24 * 60 * MIN + Duration::from_secs(1)
            })
        );
        assert_eq!(
            LexiconCachePolicy::new(10 * MIN, DEFAULT_LEXICON_MAX_AGE, 15 * MIN),
            Err(LexiconCachePolicyError::StaleAfterBelowAccessTokenLifetime {
                stale_after: 10 * MIN,
                access_token_lifetime: 15 * MIN
            })
        );
        assert!(matches!(
            LexiconCachePolicy::new(60 * MIN, 30 * MIN, 15 * MIN),
            Err(LexiconCachePolicyError::MaxAgeBelowStaleAfter { .. })
        ));
        // The defaults fit the 15–30 min access tokens of the spec, not a 2 h one.
        assert_eq!(
            LexiconCachePolicy::for_access_token_lifetime(30 * MIN),
            Ok(LexiconCachePolicy::default())
        );
        assert!(LexiconCachePolicy::for_access_token_lifetime(120 * MIN).is_err());
        assert_eq!(
            LexiconCachePolicy::default().retry_after_failure(48 * 60 * MIN).retry_after_failure_pause(),
            60 * MIN
        );
    }
}
