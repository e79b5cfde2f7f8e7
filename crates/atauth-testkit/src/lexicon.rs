//! The conformance suite every [`LexiconCache`] backend runs (house style: one trait, several backends,
//! one suite). `atauth_identity::lexicon::MemoryLexiconCache` runs it in atauth-identity's tests; a
//! persistent backend in atauth-server calls [`lexicon_cache_suite`] from its own test.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atauth_identity::lexicon::{CachedLexicon, LexiconCache, LexiconOrigin, ResolvedLexicon};
use atauth_identity::{Did, Nsid};

/// A network-origin entry for `nsid` fetched at `fetched_at_unix` (whole seconds, so backends that
/// store seconds round-trip it exactly).
///
/// # Panics
/// If `nsid` is not a valid NSID.
pub fn entry(nsid: &str, fetched_at_unix: u64, title: &str) -> CachedLexicon {
    let did = Did::new("did:plc:ewvi7nxzyoun6zhxrhs64oiz").unwrap_or_else(|e| panic!("{e}"));
    CachedLexicon {
        lexicon: ResolvedLexicon {
            nsid: Nsid::new(nsid).unwrap_or_else(|e| panic!("{nsid}: {e}")),
            document: std::sync::Arc::new(serde_json::json!({
                "$type": "com.atproto.lexicon.schema",
                "lexicon": 1,
                "id": nsid,
                "defs": { "main": { "type": "permission-set", "title": title, "permissions": [
                    { "type": "permission", "resource": "repo", "collection": [format!("{nsid}Record")] }
                ] } }
            })),
            origin: LexiconOrigin::Network {
                uri: format!("at://{did}/com.atproto.lexicon.schema/{nsid}"),
                did,
                cid: Some("bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm".to_owned()),
                pds: "https://pds.example.com/".to_owned(),
            },
        },
        fetched_at: UNIX_EPOCH + Duration::from_secs(fetched_at_unix),
        last_failure_at: None,
    }
}

/// Runs every check against an empty `cache`: miss, put/get round trip (document, origin, times),
/// replace, failure time, independent keys, remove. Leaves the cache empty.
///
/// # Panics
/// On the first check the backend fails, naming it.
pub async fn lexicon_cache_suite(cache: &dyn LexiconCache) {
    let a = entry("com.example.perms.authBasic", 1_700_000_000, "Basic");
    let b = entry("com.example.perms.authFull", 1_700_000_100, "Full");
    let nsid_a = a.lexicon.nsid.clone();
    let nsid_b = b.lexicon.nsid.clone();

    assert_eq!(cache.get(&nsid_a).await.expect("get on empty cache"), None, "empty cache returns None");

    cache.put(&a).await.expect("put a");
    assert_eq!(cache.get(&nsid_a).await.expect("get a"), Some(a.clone()), "put/get round trip");
    assert_eq!(cache.get(&nsid_b).await.expect("get b"), None, "keys are independent");

    cache.put(&b).await.expect("put b");
    let mut a2 = entry("com.example.perms.authBasic", 1_700_003_600, "Basic v2");
    a2.last_failure_at = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_004_000));
    cache.put(&a2).await.expect("replace a");
    assert_eq!(
        cache.get(&nsid_a).await.expect("get a2"),
        Some(a2.clone()),
        "put replaces, failure time kept"
    );
    assert_eq!(cache.get(&nsid_b).await.expect("get b"), Some(b.clone()), "replacing a leaves b");

    let mut a3 = a2.clone();
    a3.last_failure_at = None;
    cache.put(&a3).await.expect("clear failure");
    assert_eq!(cache.get(&nsid_a).await.expect("get a3"), Some(a3), "failure time can be cleared");

    cache.remove(&nsid_a).await.expect("remove a");
    assert_eq!(cache.get(&nsid_a).await.expect("get removed"), None, "remove deletes");
    cache.remove(&nsid_a).await.expect("removing a missing entry is not an error");
    cache.remove(&nsid_b).await.expect("remove b");
    assert_eq!(cache.get(&nsid_b).await.expect("get b"), None);
}
