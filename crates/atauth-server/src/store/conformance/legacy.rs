//! The conformance suite every [`LegacyStore`] backend passes.

use crate::store::StoreError;
use crate::store::legacy::{AppPasswordRecord, LegacyRefreshRecord, LegacyStore};

fn refresh(id: &str, did: &str, app: Option<&str>, exp: i64) -> LegacyRefreshRecord {
    LegacyRefreshRecord {
        id: id.into(),
        did: did.into(),
        app_password: app.map(Into::into),
        privileged: false,
        expires_at: exp,
        next_id: None,
    }
}

fn app(did: &str, name: &str, at: i64) -> AppPasswordRecord {
    AppPasswordRecord {
        did: did.into(),
        name: name.into(),
        password_hash: atauth_crypto::SecretString::new(format!("salt:{name}")),
        privileged: name.ends_with('p'),
        created_at: at,
    }
}

/// Runs every check against `store` (which must be empty).
///
/// # Panics
/// When the backend does not behave as [`LegacyStore`] documents.
#[allow(clippy::unwrap_used)]
pub async fn run_all<S: LegacyStore>(store: S) {
    // App passwords: unique per account, listed oldest first, revocation ends their sessions (LEG-10).
    store.create_app_password(app("did:a", "one", 1)).await.unwrap();
    store.create_app_password(app("did:a", "twop", 2)).await.unwrap();
    store.create_app_password(app("did:b", "one", 3)).await.unwrap();
    assert!(matches!(
        store.create_app_password(app("did:a", "one", 4)).await,
        Err(StoreError::Conflict("name"))
    ));
    let list = store.list_app_passwords("did:a").await.unwrap();
    assert_eq!(list.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["one", "twop"]);
    assert!(list[1].privileged && !list[0].privileged);
    assert_eq!(list[0].password_hash.expose_secret(), "salt:one");
    store.insert_refresh(refresh("r1", "did:a", Some("one"), 100)).await.unwrap();
    store.insert_refresh(refresh("r2", "did:a", None, 100)).await.unwrap();
    store.insert_refresh(refresh("r3", "did:b", Some("one"), 100)).await.unwrap();
    assert!(store.revoke_app_password("did:a", "one").await.unwrap());
    assert!(!store.revoke_app_password("did:a", "one").await.unwrap());
    assert!(store.refresh_by_id("r1", 0).await.unwrap().is_none());
    assert!(store.refresh_by_id("r2", 0).await.unwrap().is_some());
    assert!(store.refresh_by_id("r3", 0).await.unwrap().is_some(), "other account untouched");
    assert_eq!(store.list_app_passwords("did:b").await.unwrap().len(), 1);

    // Expiry is exclusive at `expires_at`.
    assert!(store.refresh_by_id("r2", 99).await.unwrap().is_some());
    assert!(store.refresh_by_id("r2", 100).await.unwrap().is_none());

    // Rotation (LEG-05): grace cut, idempotent next id, new token inserted once.
    store.insert_refresh(refresh("old", "did:a", Some("twop"), 1000)).await.unwrap();
    let r = store.rotate_refresh("old", 10, 50, "n1", 2000).await.unwrap().unwrap();
    assert_eq!(r.next_id, "n1");
    assert_eq!(r.old.expires_at, 1000);
    let old = store.refresh_by_id("old", 10).await.unwrap().unwrap();
    assert_eq!((old.expires_at, old.next_id.as_deref()), (50, Some("n1")));
    let new = store.refresh_by_id("n1", 10).await.unwrap().unwrap();
    assert_eq!(
        (new.did.as_str(), new.app_password.as_deref(), new.expires_at),
        ("did:a", Some("twop"), 2000)
    );
    let again = store.rotate_refresh("old", 20, 70, "n2", 3000).await.unwrap().unwrap();
    assert_eq!(again.next_id, "n1", "a retry in the grace period gets the same next id");
    assert_eq!(store.refresh_by_id("old", 20).await.unwrap().unwrap().expires_at, 50, "grace never extends");
    assert!(store.refresh_by_id("n2", 20).await.unwrap().is_none());
    assert!(store.rotate_refresh("old", 50, 100, "n3", 3000).await.unwrap().is_none(), "after grace");
    assert!(store.rotate_refresh("missing", 0, 100, "n4", 3000).await.unwrap().is_none());
    assert!(store.refresh_by_id("n4", 0).await.unwrap().is_none(), "refusal inserts nothing");

    // Deletion.
    assert!(store.delete_refresh("n1").await.unwrap());
    assert!(!store.delete_refresh("n1").await.unwrap());
    store.insert_refresh(refresh("x1", "did:c", None, 100)).await.unwrap();
    store.insert_refresh(refresh("x2", "did:c", None, 100)).await.unwrap();
    assert_eq!(store.delete_refresh_for_did("did:c").await.unwrap(), 2);
    store.insert_refresh(refresh("p1", "did:d", None, 5)).await.unwrap();
    assert!(store.purge_expired_refresh(5).await.unwrap() >= 1);
    assert!(store.refresh_by_id("r3", 0).await.unwrap().is_some(), "purge keeps live tokens");
}
