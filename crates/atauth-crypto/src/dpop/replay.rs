//! `jti` replay (AS-DPOP-05): the [`ReplayGuard`] trait a server backs with its store, and the
//! in-process [`MemoryReplayGuard`].
//!
//! When full, [`MemoryReplayGuard`] refuses new entries rather than forgetting live ones: forgetting
//! would let a captured proof be replayed.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

/// A replay store failure (I/O, connection), reported by a [`ReplayGuard`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReplayStoreError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Remembers proof identifiers so each is accepted once (AS-DPOP-05). Backed by a store in the
/// server (SQLite, Redis); [`MemoryReplayGuard`] serves one process.
pub trait ReplayGuard: Send + Sync {
    /// Atomically records `key` until Unix time `expires_at`. Returns `true` if the key was new,
    /// `false` if it was already recorded and has not expired.
    fn check_and_record(
        &self,
        key: [u8; 32],
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, ReplayStoreError>> + Send;
}

/// An in-process [`ReplayGuard`] with a bounded number of live entries. For a single process;
/// several server instances need a shared store.
pub struct MemoryReplayGuard {
    entries: Mutex<HashMap<[u8; 32], i64>>,
    capacity: usize,
    clock: Box<dyn crate::Clock>,
}

impl MemoryReplayGuard {
    /// A guard holding at most `capacity` unexpired entries, reading time from `clock`.
    pub fn new(capacity: usize, clock: impl crate::Clock) -> Self {
        Self { entries: Mutex::new(HashMap::new()), capacity, clock: Box::new(clock) }
    }

    /// Number of entries currently held (expired ones included until the next prune).
    pub fn len(&self) -> usize {
        self.entries.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether no entries are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for MemoryReplayGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryReplayGuard").field("capacity", &self.capacity).finish_non_exhaustive()
    }
}

impl Default for MemoryReplayGuard {
    fn default() -> Self {
        Self::new(1_000_000, crate::SystemClock)
    }
}

/// The error a full [`MemoryReplayGuard`] reports.
#[derive(Debug, thiserror::Error)]
#[error("replay cache is full ({0} live entries)")]
struct ReplayCacheFull(usize);

impl ReplayGuard for MemoryReplayGuard {
    async fn check_and_record(&self, key: [u8; 32], expires_at: i64) -> Result<bool, ReplayStoreError> {
        let now = self.clock.unix_now();
        let mut map = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(&exp) = map.get(&key)
            && exp >= now
        {
            return Ok(false);
        }
        if map.len() >= self.capacity {
            map.retain(|_, exp| *exp >= now);
            if map.len() >= self.capacity {
                // Refusing is safer than forgetting: a forgotten jti could be replayed.
                return Err(ReplayStoreError(Box::new(ReplayCacheFull(map.len()))));
            }
        }
        map.insert(key, expires_at);
        Ok(true)
    }
}
