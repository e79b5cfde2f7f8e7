//! [`ProofReplaySet`]: the one-time identifiers of short-lived proofs (DPoP `jti`s, AS-DPOP-05) held
//! in process memory, for the single-instance SQLite default. Issue 18: the SQLite store wrote one
//! row per request for them, a WAL write on every PAR, refresh and resource request, for records
//! that live at most a few minutes.
//!
//! **Sharded, bounded, expiring.** Keys are SHA-256 digests, so the first byte picks one of
//! [`SHARDS`] mutex-protected maps evenly and requests on different cores rarely wait for each
//! other. A shard sweeps its expired records every [`SWEEP_EVERY_SECS`] seconds (of the callers'
//! clock) and whenever it is full; a shard still full after its sweep refuses the new record with
//! a [`StoreError`] (the request is answered `server_error`) rather than forget a live one, because
//! a forgotten `jti` could be replayed. The default bound, [`DEFAULT_CAPACITY`] records, is about
//! 11 000 proofs a second sustained over the 190 s a proof is remembered. Memory follows the load:
//! a table slot is 25 bytes and the tables double as they grow, so 25–50 bytes per live record
//! (about 25–50 MiB at 5 000 proofs a second), about 105 MiB at the bound.
//!
//! **Each record is 16 bytes of the key and its expiry.** The stored half of a SHA-256 digest keeps
//! 128 bits: two different proofs sharing it is a 2⁻¹²⁸ event per pair, and the only effect of such
//! a collision would be to refuse the second proof (fail closed), never to accept a replay.
//!
//! **What a restart loses, and why it does not matter.** The records die with the process. The
//! server that uses this set binds its DPoP nonces to the process ([`crate::AuthServerBuilder`]:
//! the nonce key mixes in random bytes drawn at start), and every proof must carry a current nonce
//! (AS-DPOP-03), so no proof made before a restart is accepted after it (`use_dpop_nonce`): the
//! lost records were for proofs that can no longer pass anyway. See docs/ARCHITECTURE.md,
//! "Replay records in memory".

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::store::{ReplayStore, StoreError};

/// Number of shards (a power of two: the first key byte's low bits pick one).
pub const SHARDS: usize = 16;
/// Records held at most by [`ProofReplaySet::default`].
pub const DEFAULT_CAPACITY: usize = 1 << 21;
/// How often (seconds of the callers' clock) a shard drops its expired records.
pub const SWEEP_EVERY_SECS: i64 = 30;

#[derive(Default)]
struct Shard {
    /// First 16 bytes of the key → Unix second until which the record holds. A byte array, not a
    /// `u128`: its alignment of 1 keeps a table slot at 24 bytes instead of 32.
    live: HashMap<[u8; 16], i64>,
    /// The callers' `now` at which this shard sweeps next.
    next_sweep: i64,
}

impl Shard {
    /// Drops records expired by `now`; returns how many went. Gives memory back after a peak.
    fn sweep(&mut self, now: i64) -> usize {
        let before = self.live.len();
        self.live.retain(|_, until| *until > now);
        if self.live.capacity() > 4 * self.live.len().max(1024) {
            self.live.shrink_to(2 * self.live.len());
        }
        self.next_sweep = now.saturating_add(SWEEP_EVERY_SECS);
        before - self.live.len()
    }
}

/// An in-process [`ReplayStore`]; see the module docs. Cheap to share behind an `Arc`.
pub struct ProofReplaySet {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
}

impl ProofReplaySet {
    /// A set holding at most `capacity` unexpired records (at least one per shard).
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    /// The records currently held, expired ones included until their shard's next sweep.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).live.len()).sum()
    }

    /// Whether no records are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most records held at once.
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    fn shard(&self, key: &[u8; 32]) -> MutexGuard<'_, Shard> {
        lock(&self.shards[usize::from(key[0]) % SHARDS])
    }
}

impl Default for ProofReplaySet {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl std::fmt::Debug for ProofReplaySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofReplaySet").field("capacity", &self.capacity()).finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // A panic while holding a shard cannot leave a half-written map entry behind.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The stored half of a key (see the module docs).
fn short(key: &[u8; 32]) -> [u8; 16] {
    let mut half = [0u8; 16];
    half.copy_from_slice(&key[..16]);
    half
}

/// Why a full set refused a record.
#[derive(Debug, thiserror::Error)]
#[error("the in-memory replay set is full ({0} live records in one shard); refusing rather than forgetting")]
struct ReplaySetFull(usize);

#[async_trait]
impl ReplayStore for ProofReplaySet {
    async fn check_and_record(&self, key: [u8; 32], expires_at: i64, now: i64) -> Result<bool, StoreError> {
        let short = short(&key);
        let mut shard = self.shard(&key);
        if now >= shard.next_sweep {
            shard.sweep(now);
        }
        if let Some(until) = shard.live.get_mut(&short) {
            if *until > now {
                return Ok(false);
            }
            // An expired record is taken over, as on every other backend.
            *until = expires_at;
            return Ok(true);
        }
        if shard.live.len() >= self.per_shard && shard.sweep(now) == 0 {
            return Err(StoreError::Backend(Box::new(ReplaySetFull(shard.live.len()))));
        }
        shard.live.insert(short, expires_at);
        Ok(true)
    }

    async fn purge_expired_replay(&self, now: i64) -> Result<u64, StoreError> {
        let purged: usize = self.shards.iter().map(|s| lock(s).sweep(now)).sum();
        Ok(u64::try_from(purged).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000;

    fn key(i: u32) -> [u8; 32] {
        atauth_crypto::hash::sha256(i.to_le_bytes())
    }

    #[tokio::test]
    async fn a_full_set_refuses_new_records_until_old_ones_expire() {
        let set = ProofReplaySet::new(SHARDS); // one record per shard
        // Fill every shard with a record that lives until T0 + 10.
        let mut filled = vec![None; SHARDS];
        let mut i = 0;
        while filled.iter().any(Option::is_none) {
            let k = key(i);
            let s = usize::from(k[0]) % SHARDS;
            if filled[s].is_none() {
                assert!(set.check_and_record(k, T0 + 10, T0).await.unwrap());
                filled[s] = Some(k);
            }
            i += 1;
        }
        assert_eq!(set.len(), SHARDS);
        // Another key of a full shard is refused with an error, and its record is not forgotten.
        let extra = key(i);
        let err = set.check_and_record(extra, T0 + 10, T0 + 1).await.unwrap_err();
        assert!(err.to_string().contains("full"), "{err}");
        let s = usize::from(extra[0]) % SHARDS;
        let held = filled[s].unwrap();
        assert!(!set.check_and_record(held, T0 + 10, T0 + 1).await.unwrap(), "the live record still holds");
        // Once the old record has expired, the shard has room again.
        assert!(set.check_and_record(extra, T0 + 30, T0 + 10).await.unwrap());
        assert!(!set.check_and_record(extra, T0 + 30, T0 + 11).await.unwrap());
    }

    #[tokio::test]
    async fn expired_records_are_swept_as_time_passes() {
        let set = ProofReplaySet::default();
        for i in 0..1000 {
            assert!(set.check_and_record(key(i), T0 + 5, T0).await.unwrap());
        }
        assert_eq!(set.len(), 1000);
        // Every shard that is touched after its sweep time drops what expired.
        for i in 1000..3000 {
            assert!(
                set.check_and_record(key(i), T0 + SWEEP_EVERY_SECS + 50, T0 + SWEEP_EVERY_SECS)
                    .await
                    .unwrap()
            );
        }
        assert_eq!(set.len(), 2000, "the 1000 records expired at T0 + 5 are gone");
        assert_eq!(set.purge_expired_replay(T0 + SWEEP_EVERY_SECS + 50).await.unwrap(), 2000);
        assert!(set.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_many_concurrent_callers_recording_one_key_exactly_one_gets_new() {
        let set = std::sync::Arc::new(ProofReplaySet::default());
        for round in 0..50 {
            let k = key(round);
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let set = set.clone();
                    tokio::spawn(async move { set.check_and_record(k, T0 + 100, T0).await.unwrap() })
                })
                .collect();
            let mut fresh = 0;
            for t in tasks {
                fresh += usize::from(t.await.unwrap());
            }
            assert_eq!(fresh, 1, "round {round}");
        }
    }
}
