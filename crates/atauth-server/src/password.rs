//! Password hashing in the reference PDS format, so accounts migrated from it keep working.
//!
//! scrypt with N = 16384 (2^14), r = 8, p = 1 and a 64-byte key, stored as `salt:hexhash`, where
//! `salt` is 16 random bytes written as 32 hex characters **and used as UTF-8 bytes** (the hex
//! string, not the decoded bytes) as the scrypt salt. Hashing costs ~50 ms of CPU and 16 MiB of
//! memory, so it runs on tokio's blocking pool behind a semaphore that bounds how many hashes run at
//! once (a sign-in flood queues instead of exhausting memory or starving the runtime).

use std::sync::Arc;

use atauth_crypto::{SecretString, secret::ct_eq};
use tokio::sync::Semaphore;

/// The longest password accepted for new passwords (reference `NEW_PASSWORD_MAX_LENGTH`).
pub const NEW_PASSWORD_MAX_LEN: usize = 256;
/// The longest password accepted at sign-in (reference `OLD_PASSWORD_MAX_LENGTH`).
pub const PASSWORD_MAX_LEN: usize = 512;

/// Why hashing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// The stored value is not `salt:hexhash`.
    #[error("stored password hash is malformed")]
    MalformedHash,
    /// The blocking pool is gone (runtime shutting down).
    #[error("password hashing pool unavailable")]
    PoolClosed,
    /// scrypt rejected its parameters (cannot happen with the fixed ones).
    #[error("scrypt failed")]
    Scrypt,
}

fn derive(password: &[u8], salt: &[u8]) -> Result<[u8; 64], PasswordError> {
    let params = scrypt::Params::new(14, 8, 1, 64).map_err(|_| PasswordError::Scrypt)?;
    let mut out = [0u8; 64];
    scrypt::scrypt(password, salt, &params, &mut out).map_err(|_| PasswordError::Scrypt)?;
    Ok(out)
}

/// Hashes with a given hex salt string, synchronously: `salt:hexhash`.
pub fn hash_with_salt(password: &str, salt: &str) -> Result<SecretString, PasswordError> {
    let key = derive(password.as_bytes(), salt.as_bytes())?;
    Ok(SecretString::new(format!("{salt}:{}", hex::encode(key))))
}

/// Verifies synchronously against a stored `salt:hexhash` (constant-time comparison).
pub fn verify_sync(password: &str, stored: &SecretString) -> Result<bool, PasswordError> {
    let (salt, hash) = stored.expose_secret().split_once(':').ok_or(PasswordError::MalformedHash)?;
    let expected = hex::decode(hash).map_err(|_| PasswordError::MalformedHash)?;
    if expected.len() != 64 {
        return Err(PasswordError::MalformedHash);
    }
    let key = derive(password.as_bytes(), salt.as_bytes())?;
    Ok(ct_eq(&key, &expected))
}

/// The server's password checking: the bounded scrypt pool and the sign-in limits in front of it
/// (shared by the OAuth sign-in page and legacy `createSession`).
pub(crate) struct PasswordChecks {
    pub(crate) hasher: PasswordHasher,
    pub(crate) limiter: crate::ratelimit::SignInLimiter,
}

/// Hashes and verifies passwords on the blocking pool, at most `concurrency` at a time.
#[derive(Clone, Debug)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
}

impl PasswordHasher {
    /// A hasher running at most `concurrency` (≥ 1) hashes at once.
    pub fn new(concurrency: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(concurrency.max(1))) }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let _permit = self.permits.acquire().await.map_err(|_| PasswordError::PoolClosed)?;
        tokio::task::spawn_blocking(f).await.map_err(|_| PasswordError::PoolClosed)?
    }

    /// A new `salt:hexhash` with a fresh random salt.
    pub async fn hash(&self, password: &SecretString) -> Result<SecretString, PasswordError> {
        let password = password.clone();
        self.run(move || {
            let salt = hex::encode(atauth_crypto::random::random_bytes::<16>());
            hash_with_salt(password.expose_secret(), &salt)
        })
        .await
    }

    /// `salt:hexhash` with a caller-chosen salt (app passwords derive it from the DID, so a login
    /// needs one scrypt however many app passwords an account has).
    pub async fn hash_with_salt(
        &self,
        password: &SecretString,
        salt: String,
    ) -> Result<SecretString, PasswordError> {
        let password = password.clone();
        self.run(move || hash_with_salt(password.expose_secret(), &salt)).await
    }

    /// Whether `password` matches `stored`.
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: &SecretString,
    ) -> Result<bool, PasswordError> {
        let (password, stored) = (password.clone(), stored.clone());
        self.run(move || verify_sync(password.expose_secret(), &stored)).await
    }
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new(std::thread::available_parallelism().map(std::num::NonZero::get).unwrap_or(2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed with the reference algorithm: Node 22 `crypto.scryptSync('test-pass-123', salt, 64)`
    /// (interop/node22) and Python `hashlib.scrypt(n=16384, r=8, p=1, dklen=64)`; both agree.
    const VECTOR: &str = "0123456789abcdef0123456789abcdef:c7ce0eba642ae51d4d854f49836057c17db966dd1c6021e0c5842d555a1d9fc4b18e8f721b020e125eb35c523dd7870bf6117f20a936f261803df2b37e9a9f34";

    #[test]
    fn verifies_reference_pds_hash() {
        let stored = SecretString::new(VECTOR);
        assert!(verify_sync("test-pass-123", &stored).unwrap());
        assert!(!verify_sync("test-pass-124", &stored).unwrap());
        assert_eq!(
            hash_with_salt("test-pass-123", "0123456789abcdef0123456789abcdef").unwrap().expose_secret(),
            VECTOR
        );
    }

    #[test]
    fn malformed_hashes_are_errors() {
        for bad in ["", "nocolon", "salt:zz", "salt:abcd"] {
            assert!(matches!(verify_sync("x", &SecretString::new(bad)), Err(PasswordError::MalformedHash)));
        }
    }

    #[tokio::test]
    async fn pool_round_trip() {
        let h = PasswordHasher::new(1);
        let pw = SecretString::new("hunter2-hunter2");
        let stored = h.hash(&pw).await.unwrap();
        let (salt, hash) = stored.expose_secret().split_once(':').unwrap();
        assert_eq!(salt.len(), 32);
        assert_eq!(hash.len(), 128);
        assert!(h.verify(&pw, &stored).await.unwrap());
        assert!(!h.verify(&SecretString::new("nope"), &stored).await.unwrap());
    }
}
