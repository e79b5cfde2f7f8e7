//! Identifiers the server mints for rows it stores: time first, then randomness.
//!
//! A random key puts every insert on a random B-tree page, and each touched page is written to the
//! SQLite WAL (and later to the database file) once per commit. A key that starts with the time
//! puts the inserts of one commit on the same last page (issue 18). The random tail (80 bits)
//! keeps each identifier unguessable; the time it reveals is the row's creation time, which the
//! holder learns anyway (an access token's `iat`, a pushed request's answer).

use std::time::{SystemTime, UNIX_EPOCH};

/// `prefix` followed by 32 hex digits: 6 bytes of milliseconds since the Unix epoch
/// (big-endian, so the hex sorts by time) and 10 random bytes.
pub(crate) fn time_ordered(prefix: &str, now: SystemTime) -> String {
    let millis = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let mut id = [0u8; 16];
    id[..6].copy_from_slice(&u64::try_from(millis).unwrap_or(u64::MAX).to_be_bytes()[2..]);
    id[6..].copy_from_slice(&atauth_crypto::random::random_bytes::<10>());
    let mut out = String::with_capacity(prefix.len() + 32);
    out.push_str(prefix);
    out.push_str(&hex::encode(id));
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn ids_sort_by_time_and_differ_within_a_millisecond() {
        let t = UNIX_EPOCH + Duration::from_millis(1_765_000_000_123);
        let (a, b) = (time_ordered("tok-", t), time_ordered("tok-", t));
        let later = time_ordered("tok-", t + Duration::from_millis(1));
        assert_eq!(a.len(), 4 + 32);
        assert_eq!(&a[..16], &b[..16], "same millisecond, same time part");
        assert_ne!(a, b, "the random tail differs");
        assert!(later > a && later > b, "a later millisecond sorts after");
        assert_eq!(&a[4..16], format!("{:012x}", 1_765_000_000_123u64));
    }
}
