//! TTL caches in front of [`HandleResolver`] and [`DidResolver`] (ID-HANDLE-08).
//!
//! Only successes are cached. Concurrent lookups of the same key share one resolution. The `*_fresh`
//! methods bypass the cache and store the fresh answer (a fresh "not found" evicts the entry), which is
//! what CL-SUB-02 (re-resolve `sub` before trusting its issuer) and service-auth key rotation need.
//!
//! Every error type of the crate is `Clone` (foreign sources behind `Arc`), so one resolution's error
//! can be handed to every caller that waited on it.

use std::time::Duration;

use moka::future::Cache;

use crate::did::{DidDocument, DidResolveError, DidResolver};
use crate::handle::{HandleResolveError, HandleResolver};
use crate::syntax::{Did, Handle};

/// Default time to live: 5 minutes, under the 10-minute ceiling of ID-HANDLE-08.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5 * 60);

/// Default maximum number of entries per cache.
pub const DEFAULT_CACHE_CAPACITY: u64 = 10_000;

/// Size and lifetime of a resolver cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    ttl: Duration,
    capacity: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self { ttl: DEFAULT_CACHE_TTL, capacity: DEFAULT_CACHE_CAPACITY }
    }
}

impl CacheConfig {
    /// Time to live of an entry. Keep it under 10 minutes for auth flows (ID-HANDLE-08).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Maximum number of entries.
    #[must_use]
    pub fn capacity(mut self, capacity: u64) -> Self {
        self.capacity = capacity;
        self
    }

    fn build<K, V>(self) -> Cache<K, V>
    where
        K: std::hash::Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        Cache::builder().max_capacity(self.capacity).time_to_live(self.ttl).build()
    }
}

/// A resolver `R` with a TTL cache of its successful answers in front. Use it through
/// [`CachedHandleResolver`] and [`CachedDidResolver`].
pub struct CachedResolver<R, K, V> {
    inner: R,
    cache: Cache<K, V>,
}

impl<R, K, V> std::fmt::Debug for CachedResolver<R, K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedResolver").field("entries", &self.cache.entry_count()).finish_non_exhaustive()
    }
}

impl<R, K, V> CachedResolver<R, K, V>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Wraps `inner` with a cache.
    pub fn new(inner: R, config: CacheConfig) -> Self {
        Self { inner, cache: config.build() }
    }

    /// Drops the cached entry for `key`.
    pub async fn invalidate(&self, key: &K) {
        self.cache.invalidate(key).await;
    }

    /// Drops every cached entry.
    pub fn clear(&self) {
        self.cache.invalidate_all();
    }

    /// The cached answer, or `fetch`'s (shared by concurrent callers; only successes are kept).
    async fn get_or_fetch<E>(
        &self,
        key: &K,
        fetch: impl std::future::Future<Output = Result<V, E>>,
    ) -> Result<V, E>
    where
        E: Clone + Send + Sync + 'static,
    {
        self.cache.try_get_with_by_ref(key, fetch).await.map_err(|e| E::clone(&e))
    }

    /// Stores a fresh answer: a success replaces the entry, a "not found" evicts it, any other
    /// failure (a network error) leaves it alone.
    async fn store_fresh<E>(&self, key: &K, result: &Result<V, E>, is_not_found: impl Fn(&E) -> bool) {
        match result {
            Ok(value) => self.cache.insert(key.clone(), value.clone()).await,
            Err(e) if is_not_found(e) => self.cache.invalidate(key).await,
            Err(_) => {}
        }
    }
}

/// A caching [`HandleResolver`].
///
/// ```
/// use atauth_identity::{CacheConfig, CachedHandleResolver, Did, Handle, HandleResolver, MemoryHandleResolver};
///
/// # tokio_test_block_on(async {
/// let inner = MemoryHandleResolver::new()
///     .with(Handle::new("alice.test")?, Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")?);
/// let cached = CachedHandleResolver::new(inner, CacheConfig::default());
/// let did = cached.resolve_handle(&Handle::new("alice.test")?).await?;
/// assert_eq!(did.as_str(), "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa");
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt").block_on(f)
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type CachedHandleResolver<R> = CachedResolver<R, Handle, Did>;

#[async_trait::async_trait]
impl<R: HandleResolver> HandleResolver for CachedHandleResolver<R> {
    async fn resolve_handle(&self, handle: &Handle) -> Result<Did, HandleResolveError> {
        self.get_or_fetch(handle, self.inner.resolve_handle(handle)).await
    }

    async fn resolve_handle_fresh(&self, handle: &Handle) -> Result<Did, HandleResolveError> {
        let result = self.inner.resolve_handle_fresh(handle).await;
        self.store_fresh(handle, &result, HandleResolveError::is_not_found).await;
        result
    }
}

/// A caching [`DidResolver`].
pub type CachedDidResolver<R> = CachedResolver<R, Did, DidDocument>;

#[async_trait::async_trait]
impl<R: DidResolver> DidResolver for CachedDidResolver<R> {
    async fn resolve_did(&self, did: &Did) -> Result<DidDocument, DidResolveError> {
        self.get_or_fetch(did, self.inner.resolve_did(did)).await
    }

    async fn resolve_did_fresh(&self, did: &Did) -> Result<DidDocument, DidResolveError> {
        let result = self.inner.resolve_did_fresh(did).await;
        self.store_fresh(did, &result, DidResolveError::is_not_found).await;
        result
    }
}
