//! Two instances, one service (issue 14): two `AuthServer`s over one Postgres database (two pools),
//! sharing the signing-key file and the DPoP nonce secret as `atauth serve` instances do. A login
//! and its refreshes may land on either; what one instance did, the other knows.

use std::sync::Arc;

use atauth_crypto::SecretBytes;
use atauth_server::keys::SigningKeys;
use atauth_server::store::postgres::testing::TestDatabase;
use atauth_server::store::{PostgresLegacyStore, PostgresStore, Stores};
use http::StatusCode;

use crate::common::*;

/// Instance A (which created the accounts) and instance B, on one database and one clock.
struct Pair {
    a: Harness,
    b: Harness,
    _db: TestDatabase,
    _dir: atauth_testkit::fs::TempDir,
}

/// The builder settings of one instance: its own pool on the database, the shared key file, nonce
/// secret and legacy secret.
fn instance(
    store: &PostgresStore,
    keys_file: &std::path::Path,
    nonce: &SecretBytes,
) -> impl FnOnce(atauth_server::AuthServerBuilder) -> atauth_server::AuthServerBuilder {
    let legacy = atauth_server::legacy::LegacyOptions {
        jwt_secret: Some(SecretBytes::new(vec![7; 32])),
        store: Some(Arc::new(PostgresLegacyStore::in_store(store))),
        ..Default::default()
    };
    let (stores, keys, nonce) =
        (Stores::single(store.clone()), SigningKeys::load(keys_file).unwrap(), nonce.clone());
    move |b| b.stores(stores).signing_keys(keys).nonce_secret(nonce).legacy(legacy)
}

async fn pair() -> Pair {
    let db = TestDatabase::create().await;
    let dir = atauth_testkit::fs::TempDir::new("two-instances");
    let keys_file = dir.path().join("keys.json");
    SigningKeys::generate().save(&keys_file).unwrap();
    let nonce = SecretBytes::new(atauth_crypto::random::random_bytes::<32>().to_vec());
    let a = Harness::with(instance(&db.store().await, &keys_file, &nonce)).await;
    let b_server = instance(&db.store().await, &keys_file, &nonce)(builder(&a.clock)).build().unwrap();
    let b = Harness {
        router: atauth_server::web::router(b_server.clone()),
        server: b_server,
        clock: a.clock.clone(),
    };
    Pair { a, b, _db: db, _dir: dir }
}

/// A PAR request pushed on A is approved on B; the code is redeemed on A and once more on B, which
/// is the reuse that revokes what it issued (AS-CODE-02) — on both instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn par_on_a_consent_on_b_and_a_code_redeems_once_across_instances() {
    let Pair { a, b, _db, _dir } = pair().await; // `_db` (not `..`): the database lives to the end
    let c = TestClient::loopback();
    let request_uri = c.par(&a).await;
    let params = c.consent(&b, &request_uri, "alice.test").await;
    let code = get(&params, "code").unwrap().to_owned();
    let t = c.token_with(&a, &c.code_params(&code)).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.raw);
    let at = t.body["access_token"].as_str().unwrap();
    assert_eq!(c.get_session(&b, at).await.status, StatusCode::OK, "B accepts A's access token");

    let again = c.token_with(&b, &c.code_params(&code)).await;
    assert_eq!((again.status, again.error()), (StatusCode::BAD_REQUEST, "invalid_grant"), "{}", again.raw);
    assert_eq!(
        c.get_session(&a, at).await.status,
        StatusCode::UNAUTHORIZED,
        "the reuse on B revoked A's session"
    );
    let r = c.token_with(&a, &c.refresh_params(t.body["refresh_token"].as_str().unwrap())).await;
    assert_eq!((r.status, r.error()), (StatusCode::BAD_REQUEST, "invalid_grant"));
}

/// Logged in through A, refreshed through B; the rotated-away token replayed on A (after the retry
/// grace) revokes the family on both (AS-REF-01).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_on_b_and_a_replay_on_a_revokes_on_both() {
    let Pair { a, b, _db, _dir } = pair().await; // `_db` (not `..`): the database lives to the end
    let c = TestClient::loopback();
    let t = c.login(&a).await;
    let r1 = t["refresh_token"].as_str().unwrap();
    let r = c.token_with(&b, &c.refresh_params(r1)).await;
    assert_eq!(r.status, StatusCode::OK, "B refreshes A's session: {}", r.raw);
    let (at2, r2) = (r.body["access_token"].as_str().unwrap(), r.body["refresh_token"].as_str().unwrap());
    assert_ne!(r1, r2);
    assert_eq!(c.get_session(&a, at2).await.status, StatusCode::OK, "A accepts B's new access token");

    a.advance(60);
    let replay = c.token_with(&a, &c.refresh_params(r1)).await;
    assert_eq!((replay.status, replay.error()), (StatusCode::BAD_REQUEST, "invalid_grant"), "{}", replay.raw);
    let r = c.token_with(&b, &c.refresh_params(r2)).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_grant"),
        "the family is gone on B too"
    );
    assert_eq!(c.get_session(&b, at2).await.status, StatusCode::UNAUTHORIZED);
}

/// A DPoP proof used on A is a replay on B (AS-DPOP-05); a revocation on A is seen by B's resource
/// check (AS-REV-01).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_used_on_a_is_refused_on_b_and_revocation_on_a_holds_on_b() {
    let Pair { a, b, _db, _dir } = pair().await; // `_db` (not `..`): the database lives to the end
    let c = TestClient::loopback();
    let t = c.login(&a).await;
    let at = t["access_token"].as_str().unwrap();
    let path = "/xrpc/com.atproto.server.getSession";
    let proof = c.proof(&a, "GET", path, Some(at));
    let req = |proof: String| {
        http::Request::get(path)
            .header("authorization", format!("DPoP {at}"))
            .header("dpop", proof)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    assert_eq!(a.send(req(proof.clone())).await.status, StatusCode::OK);
    let replayed = b.send(req(proof)).await;
    assert_eq!(replayed.status, StatusCode::UNAUTHORIZED, "the same proof on B: {}", replayed.raw);
    assert_eq!(
        b.send(req(c.proof(&b, "GET", path, Some(at)))).await.status,
        StatusCode::OK,
        "a fresh proof works"
    );

    let revoke = a
        .post_form(
            "/oauth/revoke",
            &[("token", t["refresh_token"].as_str().unwrap()), ("client_id", &c.client_id)],
            Some(&c.proof(&a, "POST", "/oauth/revoke", None)),
        )
        .await;
    assert_eq!(revoke.status, StatusCode::OK);
    assert_eq!(c.get_session(&b, at).await.status, StatusCode::UNAUTHORIZED, "B sees A's revocation");
}
