//! Server nonces (AS-DPOP-03, AS-DPOP-07): the [`NonceValidator`] trait and the stateless
//! [`DpopNonces`] that implements it.

use std::time::Duration;

use crate::{HmacKey, SecretBytes, b64, secret::ct_eq};

/// Decides whether a nonce in a proof is current. Implemented by [`DpopNonces`]; a server with
/// another scheme implements it itself.
pub trait NonceValidator: Send + Sync {
    /// Whether `nonce` is acceptable at Unix time `now`.
    fn is_valid(&self, nonce: &str, now: i64) -> bool;
}

/// Stateless rotating server nonces (AS-DPOP-03, AS-DPOP-07): a nonce is
/// base64url(HMAC-SHA256(secret, period counter)). The server always hands out the *next*
/// period's nonce and accepts the previous, current and next, so a nonce stays usable for two to
/// three periods, and instances that share the secret agree without talking to each other.
pub struct DpopNonces {
    key: HmacKey,
    period_secs: i64,
}

impl DpopNonces {
    /// The default rotation period: 60 s (the reference's value).
    pub const DEFAULT_PERIOD: Duration = Duration::from_secs(60);

    /// Nonces keyed by `secret` (at least 32 bytes), rotating every `period` (at least 1 s).
    pub fn new(secret: &SecretBytes, period: Duration) -> Option<Self> {
        let period_secs = i64::try_from(period.as_secs()).ok().filter(|p| *p >= 1)?;
        Some(Self { key: HmacKey::new(secret)?, period_secs })
    }

    /// A fresh random 32-byte secret.
    pub fn generate_secret() -> SecretBytes {
        SecretBytes::new(crate::random::random_bytes::<32>().to_vec())
    }

    fn for_counter(&self, counter: i64) -> String {
        b64::encode(self.key.sign(&counter.to_be_bytes()))
    }

    /// The nonce to send in `DPoP-Nonce` at Unix time `now`.
    pub fn current(&self, now: i64) -> String {
        self.for_counter(now.div_euclid(self.period_secs) + 1)
    }
}

impl NonceValidator for DpopNonces {
    fn is_valid(&self, nonce: &str, now: i64) -> bool {
        let counter = now.div_euclid(self.period_secs);
        (counter - 1..=counter + 1).any(|c| ct_eq(self.for_counter(c).as_bytes(), nonce.as_bytes()))
    }
}

impl std::fmt::Debug for DpopNonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopNonces").field("period_secs", &self.period_secs).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_rotate_and_accept_neighbours() {
        let nonces = DpopNonces::new(&SecretBytes::new(vec![1u8; 32]), Duration::from_secs(60)).unwrap();
        let n = nonces.current(600); // issued for counter 11
        assert!(nonces.is_valid(&n, 600)); // counter 10: accepts 9..=11
        assert!(nonces.is_valid(&n, 660)); // counter 11
        assert!(nonces.is_valid(&n, 720)); // counter 12: accepts 11..=13
        assert!(!nonces.is_valid(&n, 780)); // counter 13: 11 is too old
        assert!(!nonces.is_valid(&n, 539)); // counter 8: 11 is not yet valid
        assert!(!nonces.is_valid("garbage", 600));
        let other = DpopNonces::new(&SecretBytes::new(vec![2u8; 32]), Duration::from_secs(60)).unwrap();
        assert!(!other.is_valid(&n, 600));
        assert!(DpopNonces::new(&SecretBytes::new(vec![1u8; 16]), Duration::from_secs(60)).is_none());
    }
}
