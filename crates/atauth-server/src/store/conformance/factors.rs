//! The conformance suite every [`FactorStore`] backend passes (issue 16): factors unique by name
//! per account and kind and by credential id across accounts, the counter that only moves forward
//! (TOTP replay protection, passkey clone detection), recovery codes that work exactly once, and
//! pending second-factor states that expire and are taken once. The races run the calls
//! concurrently (on Postgres over several pool connections): exactly one winner each.

use atauth_crypto::SecretString;

use crate::store::{FactorKind, FactorRecord, FactorStore, PendingFactor, StoreError, TokenHash};

const T0: i64 = 1_800_000_000;
const ALICE: &str = "did:plc:conformancefactoralice0";
const BOB: &str = "did:plc:conformancefactorbob000";

fn factor(did: &str, id: &str, kind: FactorKind, name: &str, credential_id: Option<&str>) -> FactorRecord {
    FactorRecord {
        did: did.to_owned(),
        id: id.to_owned(),
        kind,
        name: name.to_owned(),
        credential_id: credential_id.map(str::to_owned),
        data: SecretString::new(format!("{{\"id\":\"{id}\"}}")),
        counter: 0,
        created_at: T0,
        last_used_at: None,
    }
}

/// Every check; the store must hold no factors of the suite's accounts.
///
/// # Panics
/// When the backend does not behave as [`FactorStore`] documents.
pub async fn factor_store_suite<S: FactorStore + ?Sized>(s: &S) {
    factor_cases(s).await;
    counter_cases(s).await;
    recovery_cases(s).await;
    pending_cases(s).await;
}

async fn factor_cases<S: FactorStore + ?Sized>(s: &S) {
    let totp = factor(ALICE, "f-totp", FactorKind::Totp, "Phone", None);
    s.add_factor(totp.clone()).await.expect("add totp");
    let mut key = factor(ALICE, "f-key", FactorKind::Passkey, "Phone", Some("Y3JlZC1h"));
    key.created_at = T0 + 1;
    s.add_factor(key.clone()).await.expect("the same name for another kind is fine");
    let mut bob_totp = factor(BOB, "f-totp", FactorKind::Totp, "Phone", None);
    bob_totp.created_at = T0 + 2;
    s.add_factor(bob_totp.clone()).await.expect("the same id and name for another account");
    assert_eq!(
        s.factors_for_account(ALICE).await.expect("list"),
        vec![totp.clone(), key.clone()],
        "round-trip, oldest first"
    );

    let dup_name = factor(ALICE, "f-other", FactorKind::Totp, "Phone", None);
    assert!(
        matches!(s.add_factor(dup_name).await, Err(StoreError::Conflict("factor name"))),
        "a name is unique per account and kind"
    );
    let dup_cred = factor(BOB, "f-key2", FactorKind::Passkey, "Laptop", Some("Y3JlZC1h"));
    assert!(
        matches!(s.add_factor(dup_cred).await, Err(StoreError::Conflict("credential id"))),
        "a credential id is unique across accounts"
    );
    let dup_id = factor(ALICE, "f-totp", FactorKind::Passkey, "Other", Some("Y3JlZC1i"));
    assert!(matches!(s.add_factor(dup_id).await, Err(StoreError::Conflict("factor id"))));
    assert_eq!(s.factors_for_account(BOB).await.expect("bob").len(), 1, "refused inserts store nothing");
    assert_eq!(s.factor_by_credential_id("Y3JlZC1i").await.expect("by cred"), None);

    assert_eq!(s.factor_by_credential_id("Y3JlZC1h").await.expect("by cred"), Some(key.clone()));
    assert_eq!(s.factor_by_credential_id("nope").await.expect("missing"), None);

    let new_data = SecretString::new("{\"updated\":true}");
    assert!(s.set_factor_data(ALICE, "f-key", &new_data).await.expect("set data"));
    assert!(!s.set_factor_data(BOB, "f-key", &new_data).await.expect("other account"));
    let stored = s.factor_by_credential_id("Y3JlZC1h").await.expect("by cred").expect("present");
    assert_eq!(stored.data.expose_secret(), "{\"updated\":true}");

    assert!(!s.remove_factor(BOB, "f-key").await.expect("other account's id"), "removes nothing");
    assert_eq!(s.factors_for_account(ALICE).await.expect("list").len(), 2);
    assert!(s.remove_factor(ALICE, "f-key").await.expect("remove"));
    assert!(!s.remove_factor(ALICE, "f-key").await.expect("twice"));
    assert_eq!(s.factor_by_credential_id("Y3JlZC1h").await.expect("gone"), None);
    assert_eq!(s.factors_for_account(ALICE).await.expect("list"), vec![totp]);
    assert_eq!(s.factors_for_account(BOB).await.expect("bob"), vec![bob_totp], "other account untouched");
    // The credential id is free again.
    s.add_factor(factor(BOB, "f-key3", FactorKind::Passkey, "Key", Some("Y3JlZC1h"))).await.expect("reuse");
    assert!(s.remove_factor(BOB, "f-key3").await.expect("remove"));
}

async fn counter_cases<S: FactorStore + ?Sized>(s: &S) {
    // Counting from 0: a non-counting authenticator may present 0 while nothing was counted.
    let c = factor(ALICE, "f-count", FactorKind::Passkey, "Counter", Some("Y291bnQ"));
    s.add_factor(c).await.expect("add");
    assert!(s.advance_factor_counter(ALICE, "f-count", 0, T0 + 5).await.expect("0 on 0"));
    assert!(s.advance_factor_counter(ALICE, "f-count", 0, T0 + 6).await.expect("0 on 0 again"));
    assert!(s.advance_factor_counter(ALICE, "f-count", 7, T0 + 7).await.expect("7"));
    assert!(
        !s.advance_factor_counter(ALICE, "f-count", 7, T0 + 8).await.expect("7 again"),
        "equal is a replay"
    );
    assert!(!s.advance_factor_counter(ALICE, "f-count", 6, T0 + 8).await.expect("6"), "backwards refused");
    assert!(
        !s.advance_factor_counter(ALICE, "f-count", 0, T0 + 8).await.expect("0 after 7"),
        "0 once counted"
    );
    assert!(!s.advance_factor_counter(BOB, "f-count", 100, T0 + 8).await.expect("other"), "other account");
    assert!(!s.advance_factor_counter(ALICE, "missing", 100, T0 + 8).await.expect("missing"));
    let f = s.factor_by_credential_id("Y291bnQ").await.expect("get").expect("present");
    assert_eq!((f.counter, f.last_used_at), (7, Some(T0 + 7)), "refusals change nothing");

    // Four callers presenting the same time step at once: exactly one wins.
    let go = |n| s.advance_factor_counter(ALICE, "f-count", 9, T0 + n);
    let (a, b, c, d) = tokio::join!(go(10), go(11), go(12), go(13));
    let wins = [a, b, c, d].into_iter().map(|r| r.expect("race")).filter(|w| *w).count();
    assert_eq!(wins, 1, "one winner for one step");
    let f = s.factor_by_credential_id("Y291bnQ").await.expect("get").expect("present");
    assert_eq!(f.counter, 9);
    assert!(s.remove_factor(ALICE, "f-count").await.expect("remove"));
}

async fn recovery_cases<S: FactorStore + ?Sized>(s: &S) {
    let codes: Vec<TokenHash> = (0..10).map(|i| TokenHash::of(&format!("code-{i}"))).collect();
    s.replace_recovery_codes(ALICE, &codes).await.expect("replace");
    s.replace_recovery_codes(BOB, &codes[..2]).await.expect("bob");
    assert_eq!(s.unused_recovery_codes(ALICE).await.expect("count"), 10);
    assert!(s.use_recovery_code(ALICE, &codes[0], T0).await.expect("use"));
    assert!(!s.use_recovery_code(ALICE, &codes[0], T0 + 1).await.expect("again"), "exactly once");
    assert!(!s.use_recovery_code(ALICE, &TokenHash::of("unknown"), T0).await.expect("unknown"));
    assert_eq!(s.unused_recovery_codes(ALICE).await.expect("count"), 9);
    assert_eq!(s.unused_recovery_codes(BOB).await.expect("bob"), 2, "per account");
    assert!(s.use_recovery_code(BOB, &codes[0], T0).await.expect("bob's own copy"));

    // Four callers with the same code at once: exactly one wins.
    let go = |n| s.use_recovery_code(ALICE, &codes[1], T0 + n);
    let (a, b, c, d) = tokio::join!(go(1), go(2), go(3), go(4));
    let wins = [a, b, c, d].into_iter().map(|r| r.expect("race")).filter(|w| *w).count();
    assert_eq!(wins, 1, "one winner per code");
    assert_eq!(s.unused_recovery_codes(ALICE).await.expect("count"), 8);

    // Regenerating kills the old codes, used or not.
    let fresh: Vec<TokenHash> = (0..10).map(|i| TokenHash::of(&format!("fresh-{i}"))).collect();
    s.replace_recovery_codes(ALICE, &fresh).await.expect("regenerate");
    assert_eq!(s.unused_recovery_codes(ALICE).await.expect("count"), 10);
    assert!(!s.use_recovery_code(ALICE, &codes[5], T0).await.expect("old code"), "old codes die");
    assert!(s.use_recovery_code(ALICE, &fresh[5], T0).await.expect("new code"));
    s.replace_recovery_codes(ALICE, &[]).await.expect("clear");
    assert_eq!(s.unused_recovery_codes(ALICE).await.expect("count"), 0);
    assert_eq!(s.unused_recovery_codes(BOB).await.expect("bob"), 1, "other account untouched");
}

async fn pending_cases<S: FactorStore + ?Sized>(s: &S) {
    let key = TokenHash::of("device-1/sign-in/req-1");
    let p = PendingFactor {
        key,
        did: ALICE.to_owned(),
        data: SecretString::new("{\"remember\":true}"),
        expires_at: T0 + 300,
    };
    s.put_pending_factor(p.clone()).await.expect("put");
    assert_eq!(s.pending_factor(&key, T0).await.expect("get"), Some(p.clone()));
    assert_eq!(s.pending_factor(&key, T0 + 1).await.expect("get twice"), Some(p.clone()), "not consumed");
    assert_eq!(s.pending_factor(&key, T0 + 300).await.expect("expired"), None, "expiry is exclusive");
    assert_eq!(s.pending_factor(&TokenHash::of("other"), T0).await.expect("other"), None);

    let replaced = PendingFactor { data: SecretString::new("{\"remember\":false}"), ..p.clone() };
    s.put_pending_factor(replaced.clone()).await.expect("replace");
    assert_eq!(s.pending_factor(&key, T0).await.expect("get"), Some(replaced.clone()));

    // Taken once, even by callers racing.
    let (a, b, c) = tokio::join!(
        s.take_pending_factor(&key, T0),
        s.take_pending_factor(&key, T0),
        s.take_pending_factor(&key, T0)
    );
    let taken: Vec<_> = [a, b, c].into_iter().filter_map(|r| r.expect("take")).collect();
    assert_eq!(taken, vec![replaced], "exactly one taker");
    assert_eq!(s.pending_factor(&key, T0).await.expect("gone"), None);

    // An expired state is not handed out, and purge removes it.
    let old = PendingFactor { key: TokenHash::of("old"), expires_at: T0 + 10, ..p.clone() };
    s.put_pending_factor(old.clone()).await.expect("put old");
    let live = PendingFactor { key: TokenHash::of("live"), expires_at: T0 + 1000, ..p };
    s.put_pending_factor(live.clone()).await.expect("put live");
    assert_eq!(s.take_pending_factor(&old.key, T0 + 10).await.expect("expired take"), None);
    s.put_pending_factor(old.clone()).await.expect("put old again");
    assert!(s.purge_expired_pending_factors(T0 + 10).await.expect("purge") >= 1);
    assert_eq!(s.pending_factor(&old.key, T0).await.expect("purged"), None, "purged");
    assert_eq!(s.pending_factor(&live.key, T0).await.expect("live"), Some(live.clone()), "live stays");
    assert_eq!(s.take_pending_factor(&live.key, T0).await.expect("take live"), Some(live));
}
