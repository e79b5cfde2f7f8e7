//! Sign-up: a person creates their own account on this server (issue 16), from the sign-up page
//! of the UI (`prompt=create`, or the "Create an account" link; [`crate::ui`]).
//!
//! [`AuthServer::sign_up`] is [`AuthServer::create_account`] (handle under one of the server's
//! handle domains, `did:plc` registration, storage) behind what a public form needs:
//!
//! 1. **A rate limit per client address** (IPv6 per /64), taken before anything else from the
//!    bucket `signup:<address>` of the sign-in limit store ([`crate::ratelimit`]), so it is shared
//!    by the instances exactly where the sign-in limits are (Redis or Postgres), and a shared
//!    store that cannot be reached refuses the sign-up (fail closed). Default: 10 at once, then one
//!    every 6 minutes ([`SignUpConfig::per_ip`]).
//! 2. **Every check that can fail before the DID is registered**: handle syntax (atauth-syntax,
//!    ID-HANDLE-01) and domain, name length, email, the password rules ([`check_password`]),
//!    the invite code (present when [`SignUpConfig::invite_required`]; known, enabled and not used
//!    up), handle and email not taken. A refused sign-up leaves no account, no PLC operation and
//!    every invite code as it was.
//! 3. Then the scrypt hash, the PLC genesis operation, and one store transaction that inserts the
//!    account and takes one use of the invite code
//!    ([`crate::store::AccountStore::create_account_with_invite`]): both or neither.
//!
//! **Races.** Two sign-ups for the same handle (or the same invite code) in one process are
//! serialised (`CreationLocks`): the second waits, then finds the handle taken (or the code used
//! up) before registering anything. Across instances the store decides (unique handle; the code's
//! row lock), so exactly one account is created; the loser may then have registered a `did:plc`
//! that no account uses, as the reference PDS may. Its `alsoKnownAs` handle does not resolve back
//! to it, so the orphan DID is inert (ID-HANDLE-07).
//!
//! **Invite codes** are `xxxxx-xxxxx-xxxxx` (15 base32 characters, 75 random bits), created and
//! listed by the operator (`atauth account invite …`), single use by default or usable `n` times,
//! and disabled rather than deleted so that their uses stay listed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atauth_crypto::SecretString;

use crate::account::{CreateAccountError, NewAccount};
use crate::config::RateLimit;
use crate::ratelimit::LimitError;
use crate::server::AuthServer;
use crate::store::{AccountRecord, InviteCode};

/// The shortest password sign-up accepts, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The fewest different characters a sign-up password must have.
pub const MIN_DISTINCT_CHARS: usize = 5;

/// Sign-up settings ([`crate::AuthServerBuilder::invite_required`],
/// [`crate::AuthServerBuilder::sign_up_limit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignUpConfig {
    /// Whether sign-up needs an invite code (`atauth serve --invite-required`). Default off: the
    /// field is optional, and a code that is given must still be valid.
    pub invite_required: bool,
    /// Sign-up attempts per client address. Default 10 at once, then one every 6 minutes.
    pub per_ip: RateLimit,
}

impl Default for SignUpConfig {
    fn default() -> Self {
        Self {
            invite_required: false,
            per_ip: RateLimit { burst: 10, refill_every: Duration::from_secs(360) },
        }
    }
}

/// What the sign-up form sends.
#[derive(Debug, Clone)]
pub struct SignUp {
    /// The full handle (name and one of the server's handle domains).
    pub handle: String,
    /// Email address (required for sign-up).
    pub email: String,
    /// The new password ([`check_password`]).
    pub password: SecretString,
    /// Invite code, if one was typed.
    pub invite_code: Option<String>,
}

/// Why a password is refused for a new account ([`check_password`]). The messages are written
/// for the person choosing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WeakPassword {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    #[error("Use at least 8 characters for your password.")]
    TooShort,
    /// More than [`crate::password::NEW_PASSWORD_MAX_LEN`] characters.
    #[error("Use at most 256 characters for your password.")]
    TooLong,
    /// Fewer than [`MIN_DISTINCT_CHARS`] different characters (`aaaaaaaa`, `abababab`).
    #[error("Use at least 5 different characters in your password.")]
    TooRepetitive,
    /// A run of consecutive characters (`12345678`, `abcdefgh`, `98765432`).
    #[error("Your password is a simple sequence. Choose something harder to guess.")]
    Sequence,
    /// One of the most common passwords.
    #[error("This password is one of the most common ones. Choose something harder to guess.")]
    Common,
    /// Contains the handle's name or the email's local part.
    #[error("Do not use your handle or email address in your password.")]
    ContainsIdentity,
}

/// Passwords people choose most often, at least 8 characters long (lowercase; compared with the
/// lowercased password). Written from the well-known top entries of public breach-frequency lists;
/// short on purpose: the length, variety and sequence rules catch the rest of their shapes.
const COMMON_PASSWORDS: &[&str] = &[
    "password",
    "password1",
    "password12",
    "password123",
    "password!",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "iloveyou",
    "iloveyou1",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "basketball",
    "superman",
    "batman123",
    "starwars",
    "whatever",
    "trustno1",
    "letmein1",
    "letmein!",
    "welcome1",
    "welcome123",
    "qwertyuiop",
    "qwerty123",
    "qwerty12",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "q1w2e3r4",
    "zaq12wsx",
    "1qaz2wsx",
    "asdfghjkl",
    "asdfasdf",
    "zxcvbnm1",
    "qazwsxedc",
    "michael1",
    "jennifer",
    "jordan23",
    "charlie1",
    "monkey123",
    "dragon12",
    "shadow12",
    "master12",
    "mustang1",
    "computer",
    "internet",
    "whatever1",
    "11111111",
    "12341234",
    "12121212",
    "11223344",
    "87654321",
    "abcd1234",
    "1234abcd",
    "a1b2c3d4",
    "aa123456",
    "abc12345",
    "admin123",
    "administrator",
    "changeme",
    "secret123",
    "loveyou1",
    "blink182",
    "liverpool",
    "chelsea1",
    "arsenal1",
    "pokemon1",
    "minecraft",
    "fortnite",
    "bluesky1",
    "blueskyy",
];

/// The password rules of sign-up, in the order they are checked; the first that fails is
/// answered. `handle` is the full handle, `email` the address (both as typed; compared
/// case-insensitively):
///
/// 1. 8 to 256 characters (NIST SP 800-63B's minimum; 256 is the reference PDS's maximum);
/// 2. at least 5 different characters;
/// 3. not a run of consecutive characters (`12345678`, `abcdefgh`, `98765432`);
/// 4. not one of the most common passwords;
/// 5. not containing the handle's name or the email's local part (when 3 characters or longer).
///
/// No composition rules (a digit, a symbol): they make passwords harder to remember, not to
/// guess (NIST SP 800-63B §5.1.1.2).
pub fn check_password(password: &str, handle: &str, email: &str) -> Result<(), WeakPassword> {
    let chars: Vec<char> = password.chars().collect();
    if chars.len() < MIN_PASSWORD_CHARS {
        return Err(WeakPassword::TooShort);
    }
    if chars.len() > crate::password::NEW_PASSWORD_MAX_LEN {
        return Err(WeakPassword::TooLong);
    }
    let mut distinct = chars.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < MIN_DISTINCT_CHARS {
        return Err(WeakPassword::TooRepetitive);
    }
    let steps: Vec<i64> =
        chars.windows(2).map(|w| i64::from(u32::from(w[1])) - i64::from(u32::from(w[0]))).collect();
    if steps.iter().all(|s| *s == 1) || steps.iter().all(|s| *s == -1) {
        return Err(WeakPassword::Sequence);
    }
    let lower = password.to_lowercase();
    if COMMON_PASSWORDS.contains(&lower.as_str()) {
        return Err(WeakPassword::Common);
    }
    let name = handle.trim().split('.').next().unwrap_or_default().to_lowercase();
    let local = email.trim().split('@').next().unwrap_or_default().to_lowercase();
    if [name, local].iter().any(|part| part.chars().count() >= 3 && lower.contains(part.as_str())) {
        return Err(WeakPassword::ContainsIdentity);
    }
    Ok(())
}

/// A fresh invite code: `xxxxx-xxxxx-xxxxx`, 15 lowercase base32 characters (75 random bits).
pub fn generate_invite_code() -> String {
    let raw = crate::plc::base32_lower(&atauth_crypto::random::random_bytes::<10>());
    format!("{}-{}-{}", &raw[0..5], &raw[5..10], &raw[10..15])
}

/// A new invite code record, usable `uses` times (at least once), created `now`.
pub fn new_invite_code(uses: u32, now: i64) -> InviteCode {
    InviteCode {
        code: generate_invite_code(),
        uses_allowed: uses.max(1),
        disabled: false,
        created_at: now,
        uses: Vec::new(),
    }
}

/// An invite code as typed: trimmed and lowercased (codes are generated lowercase).
pub fn normalize_invite_code(code: &str) -> String {
    code.trim().to_ascii_lowercase()
}

/// In-process serialisation of account creations by handle and invite code, so that of two
/// sign-ups racing in one process the second sees the first's account before it registers a DID
/// (see the module docs). Entries live only while someone holds or waits for them.
#[derive(Default)]
pub(crate) struct CreationLocks {
    map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The locks one creation holds; releasing drops the map entries nobody else holds or waits for.
pub(crate) struct CreationGuard<'a> {
    locks: &'a CreationLocks,
    held: Vec<(String, Arc<tokio::sync::Mutex<()>>, tokio::sync::OwnedMutexGuard<()>)>,
}

impl CreationLocks {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the locks of `keys`, in sorted order (no deadlock between two creations).
    pub(crate) async fn lock(&self, mut keys: Vec<String>) -> CreationGuard<'_> {
        keys.sort();
        keys.dedup();
        let mut held = Vec::with_capacity(keys.len());
        for key in keys {
            let lock = self.map().entry(key.clone()).or_default().clone();
            let guard = lock.clone().lock_owned().await;
            held.push((key, lock, guard));
        }
        CreationGuard { locks: self, held }
    }
}

impl Drop for CreationGuard<'_> {
    fn drop(&mut self) {
        let mut map = self.locks.map();
        for (key, lock, guard) in self.held.drain(..) {
            drop(guard);
            // Clones are only made under the map lock: two references (the map's and ours) mean
            // nobody else holds or waits for this key.
            if Arc::strong_count(&lock) == 2 {
                map.remove(&key);
            }
        }
    }
}

impl AuthServer {
    /// Creates an account from the sign-up form (see the module docs): the per-address rate
    /// limit, every check (the password rules, an invite code when one is given or required),
    /// then [`Self::create_account`]'s registration, with the invite code's use taken in the same
    /// store transaction as the account. `client_ip` is the client's address when known.
    pub async fn sign_up(
        &self,
        form: SignUp,
        client_ip: Option<IpAddr>,
    ) -> Result<AccountRecord, CreateAccountError> {
        use CreateAccountError as E;
        let config = self.config().sign_up;
        self.inner
            .passwords
            .limiter
            .check_sign_up(client_ip, config.per_ip, self.inner.clock.now())
            .await
            .map_err(|e| match e {
                LimitError::Limited(r) => E::RateLimited(r),
                LimitError::Unavailable(e) => E::LimiterUnavailable(e),
            })?;
        let invite = form.invite_code.as_deref().map(normalize_invite_code).filter(|c| !c.is_empty());
        let new = NewAccount {
            handle: form.handle.trim().trim_start_matches('@').to_ascii_lowercase(),
            email: Some(form.email.clone()),
            password: form.password.clone(),
        };
        let checks = SignUpChecks {
            email_required: true,
            password: Some((&form.handle, &form.email)),
            invite_required: config.invite_required,
            invite,
        };
        self.create_account_checked(new, checks).await
    }
}

/// What a public sign-up checks beyond what an operator's [`AuthServer::create_account`] does.
#[derive(Debug, Default)]
pub(crate) struct SignUpChecks<'a> {
    /// An email address must be given.
    pub(crate) email_required: bool,
    /// Check the password rules against this (handle, email).
    pub(crate) password: Option<(&'a str, &'a str)>,
    /// An invite code must be given.
    pub(crate) invite_required: bool,
    /// The invite code given (normalised).
    pub(crate) invite: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_rules_each_refuse_with_their_own_message() {
        fn ok(p: &str) -> Result<(), WeakPassword> {
            check_password(p, "alice.test", "alice@example.com")
        }
        assert_eq!(ok("short7!"), Err(WeakPassword::TooShort));
        assert_eq!(ok(&"abcdefghij".repeat(26)), Err(WeakPassword::TooLong));
        assert_eq!(ok("abababab"), Err(WeakPassword::TooRepetitive));
        assert_eq!(ok("12345678"), Err(WeakPassword::Sequence));
        assert_eq!(ok("hgfedcba"), Err(WeakPassword::Sequence));
        assert_eq!(ok("Password123"), Err(WeakPassword::Common), "case-insensitive");
        assert_eq!(ok("my-Alice-pass"), Err(WeakPassword::ContainsIdentity));
        assert_eq!(
            check_password("bob-secret-9", "carol.test", "bob@example.com"),
            Err(WeakPassword::ContainsIdentity),
            "the email's local part"
        );
        assert_eq!(ok("correct horse battery"), Ok(()));
        assert_eq!(ok("tr0ub4dor&3"), Ok(()));
        assert_eq!(ok("żółw-ćma-ważka"), Ok(()), "any Unicode");
    }

    #[test]
    fn invite_codes_are_three_groups_of_five_base32_characters() {
        let c = generate_invite_code();
        assert_eq!(c.len(), 17);
        let groups: Vec<&str> = c.split('-').collect();
        assert_eq!(groups.len(), 3);
        assert!(
            groups
                .iter()
                .all(|g| g.len() == 5
                    && g.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)))
        );
        assert_ne!(c, generate_invite_code());
        assert_eq!(normalize_invite_code("  ABCDE-fghij-23456 "), "abcde-fghij-23456");
        assert_eq!(new_invite_code(0, 5).uses_allowed, 1);
    }

    #[tokio::test]
    async fn creation_locks_serialise_one_key_and_forget_it_afterwards() {
        let locks = CreationLocks::default();
        let first = locks.lock(vec!["handle:a.test".into(), "invite:x".into()]).await;
        let waiting = locks.lock(vec!["invite:x".into()]);
        tokio::pin!(waiting);
        let pending = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::future::Future::poll(waiting.as_mut(), cx).is_pending())
        })
        .await;
        assert!(pending, "the same key waits");
        let other = locks.lock(vec!["handle:b.test".into()]).await;
        drop(other);
        drop(first);
        let second = waiting.await;
        drop(second);
        assert!(locks.map().is_empty(), "no entry outlives its holders");
    }
}
