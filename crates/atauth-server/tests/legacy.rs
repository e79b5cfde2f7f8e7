//! Legacy sessions and app passwords through the Router (checklist LEG-01 … LEG-10, T-24): every
//! negative test asserts the exact XRPC status and `error` name, and what changed (nothing).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use atauth_crypto::b64;
use atauth_crypto::jws::{self, JwsHeader};
use atauth_crypto::{Algorithm, ManualClock, PrivateKey, SecretString};
use atauth_server::legacy::{self, LegacyOptions, MemoryLegacyStore, SqliteLegacyStore};
use atauth_server::store::{AccountRecord, AccountStatus, AccountStore, MemoryStore, StoreError, Stores};
use atauth_server::{AuthServer, AuthServerBuilder, RateLimit, SignInLimits};
use atauth_testkit::server::{ALICE_DID, PASSWORD, Resp, T0, account_record, send};
use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const ALICE: &str = ALICE_DID;

/// An account store whose accounts can be deleted (the trait has no delete yet).
#[derive(Default)]
struct DeletableAccounts {
    inner: MemoryStore,
    deleted: Mutex<HashSet<String>>,
}

impl DeletableAccounts {
    fn gone(&self, did: &str) -> bool {
        self.deleted.lock().unwrap().contains(did)
    }
}

#[async_trait]
impl AccountStore for DeletableAccounts {
    async fn create_account(&self, account: AccountRecord) -> Result<(), StoreError> {
        self.inner.create_account(account).await
    }
    async fn account_by_did(&self, did: &str) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self.inner.account_by_did(did).await?.filter(|a| !self.gone(&a.did)))
    }
    async fn account_by_handle(&self, handle: &str) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self.inner.account_by_handle(handle).await?.filter(|a| !self.gone(&a.did)))
    }
    async fn account_by_email(&self, email: &str) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self.inner.account_by_email(email).await?.filter(|a| !self.gone(&a.did)))
    }
    async fn set_account_status(&self, did: &str, status: AccountStatus) -> Result<bool, StoreError> {
        self.inner.set_account_status(did, status).await
    }
    async fn set_password_hash(&self, did: &str, hash: &SecretString) -> Result<bool, StoreError> {
        self.inner.set_password_hash(did, hash).await
    }
}

struct H {
    server: AuthServer,
    router: Router,
    clock: Arc<ManualClock>,
    accounts: Arc<DeletableAccounts>,
}

async fn harness_with(
    legacy_store: Arc<dyn legacy::LegacyStore>,
    customize: impl FnOnce(AuthServerBuilder) -> AuthServerBuilder,
) -> H {
    let clock = Arc::new(ManualClock::at_unix(T0));
    let accounts = Arc::new(DeletableAccounts::default());
    let mut stores = Stores::memory();
    stores.accounts = accounts.clone();
    let builder = AuthServer::builder("https://pds.example.com")
        .service_did("did:web:pds.example.com")
        .handle_domains([".example.com"])
        .stores(stores)
        .clock(clock.clone())
        .password_hash_concurrency(2)
        .legacy(LegacyOptions { store: Some(legacy_store), ..LegacyOptions::default() });
    let server = customize(builder).build().unwrap();
    let key = PrivateKey::generate(Algorithm::Es256k);
    server
        .stores()
        .accounts
        .create_account(AccountRecord {
            signing_key_hex: Some(key.to_hex()),
            ..account_record(ALICE, "alice.example.com", "alice@example.org")
        })
        .await
        .unwrap();
    H { router: atauth_server::web::router(server.clone()), server, clock, accounts }
}

async fn harness() -> H {
    harness_with(Arc::new(MemoryLegacyStore::default()), |b| b).await
}

impl H {
    async fn call(&self, method: &str, nsid: &str, auth: Option<&str>, body: Option<Value>) -> Resp {
        let mut req = Request::builder().method(method).uri(format!("/xrpc/{nsid}"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let req = match body {
            Some(b) => req.header("content-type", "application/json").body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        send(&self.router, req).await
    }

    async fn login(&self, identifier: &str, password: &str) -> Resp {
        self.call(
            "POST",
            "com.atproto.server.createSession",
            None,
            Some(json!({ "identifier": identifier, "password": password })),
        )
        .await
    }

    async fn get_session(&self, access: &str) -> Resp {
        self.call("GET", "com.atproto.server.getSession", Some(&format!("Bearer {access}")), None).await
    }

    async fn refresh(&self, refresh: &str) -> Resp {
        self.call("POST", "com.atproto.server.refreshSession", Some(&format!("Bearer {refresh}")), None).await
    }

    async fn app_password(&self, access: &str, name: &str, privileged: bool) -> Resp {
        self.call(
            "POST",
            "com.atproto.server.createAppPassword",
            Some(&format!("Bearer {access}")),
            Some(json!({ "name": name, "privileged": privileged })),
        )
        .await
    }
}

fn header_of(token: &str) -> Value {
    serde_json::from_slice(&b64::decode(token.split('.').next().unwrap()).unwrap()).unwrap()
}

fn claims_of(token: &str) -> Value {
    serde_json::from_slice(&b64::decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

#[tokio::test]
async fn leg01_create_session_by_handle_email_and_did_returns_reference_fields() {
    let h = harness().await;
    for ident in ["alice.example.com", "@Alice.Example.com", "alice@example.org", ALICE] {
        let r = h.login(ident, PASSWORD).await;
        assert_eq!(r.status, StatusCode::OK, "{ident}: {}", r.body);
        assert_eq!(r.s("did"), ALICE);
        assert_eq!(r.s("handle"), "alice.example.com");
        assert_eq!(r.s("email"), "alice@example.org");
        assert_eq!(r.body["emailConfirmed"], json!(false));
        assert_eq!(r.body["active"], json!(true));
        assert_eq!(r.body["didDoc"]["id"], json!(ALICE));
        assert_eq!(r.body["didDoc"]["service"][0]["serviceEndpoint"], json!("https://pds.example.com"));
    }
    // LEG-04: typ, alg, claims as the reference sets them.
    let r = h.login("alice.example.com", PASSWORD).await;
    let (access, refresh) = (r.s("accessJwt"), r.s("refreshJwt"));
    assert_eq!(header_of(&access), json!({ "alg": "HS256", "typ": "at+jwt" }));
    assert_eq!(header_of(&refresh), json!({ "alg": "HS256", "typ": "refresh+jwt" }));
    let (a, f) = (claims_of(&access), claims_of(&refresh));
    assert_eq!((a["sub"].as_str(), a["aud"].as_str()), (Some(ALICE), Some("did:web:pds.example.com")));
    assert_eq!(a["scope"], json!("com.atproto.access"));
    assert_eq!(f["scope"], json!("com.atproto.refresh"));
    assert_eq!(a["exp"].as_i64().unwrap() - a["iat"].as_i64().unwrap(), 120 * 60, "reference default");
    assert_eq!(f["exp"].as_i64().unwrap() - f["iat"].as_i64().unwrap(), 90 * 86_400, "reference default");
    assert!(a["jti"].is_string() && f["jti"].is_string());
    let s = h.get_session(&access).await;
    assert_eq!(
        (s.status, s.s("did"), s.s("email")),
        (StatusCode::OK, ALICE.into(), "alice@example.org".into())
    );
}

#[tokio::test]
async fn leg02_wrong_password_and_unknown_identifier_are_the_same_401() {
    let h = harness().await;
    for (ident, pw) in [
        ("alice.example.com", "wrong-password"),
        ("nobody.example.com", PASSWORD),
        ("nobody@example.org", PASSWORD),
        ("did:plc:nobody00000000000000000", PASSWORD),
        ("alice.example.com", "abcd-efgh-ijkl-mnop"),
    ] {
        let r = h.login(ident, pw).await;
        r.assert_error(StatusCode::UNAUTHORIZED, "AuthenticationRequired");
        assert_eq!(r.s("message"), "Invalid identifier or password");
    }
    assert!(h.server.legacy_store().refresh_by_id("x", 0).await.unwrap().is_none());
    let long = "x".repeat(513);
    h.login("alice.example.com", &long)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "AuthenticationRequired");
    h.call("POST", "com.atproto.server.createSession", None, Some(json!({ "identifier": "a" })))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "InvalidRequest");
}

#[tokio::test]
async fn leg02_taken_down_account_cannot_log_in() {
    let h = harness().await;
    h.server.stores().accounts.set_account_status(ALICE, AccountStatus::Takendown).await.unwrap();
    h.login("alice.example.com", PASSWORD).await.assert_error(StatusCode::UNAUTHORIZED, "AccountTakedown");
}

#[tokio::test]
async fn create_session_is_rate_limited_per_identifier_with_rate_limit_exceeded() {
    let limits = SignInLimits {
        per_identifier_and_ip: RateLimit { burst: 2, refill_every: Duration::from_secs(60) },
        per_identifier: RateLimit { burst: 100, refill_every: Duration::from_secs(1) },
        per_ip: RateLimit { burst: 100, refill_every: Duration::from_secs(1) },
    };
    let h = harness_with(Arc::new(MemoryLegacyStore::default()), |b| b.sign_in_limits(limits)).await;
    h.login("alice.example.com", "wrong")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "AuthenticationRequired");
    h.login("alice.example.com", "wrong")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "AuthenticationRequired");
    let r = h.login("alice.example.com", PASSWORD).await;
    r.assert_error(StatusCode::TOO_MANY_REQUESTS, "RateLimitExceeded");
    // Another identifier of the same account has its own bucket; time earns attempts back.
    assert_eq!(h.login("alice@example.org", PASSWORD).await.status, StatusCode::OK);
    h.clock.advance(Duration::from_secs(61));
    assert_eq!(h.login("alice.example.com", PASSWORD).await.status, StatusCode::OK);
}

/// createSession reads the client address from the trusted proxy header the same way as the sign-in
/// page: its right-most entry, the one the proxy appended. The left-most is whatever the client sent,
/// so keying the per-address limit on it let a client pick a fresh address per attempt.
#[tokio::test]
async fn create_session_per_address_limit_uses_the_proxy_appended_address() {
    let limits = SignInLimits {
        per_identifier_and_ip: RateLimit { burst: 100, refill_every: Duration::from_secs(1) },
        per_identifier: RateLimit { burst: 100, refill_every: Duration::from_secs(1) },
        per_ip: RateLimit { burst: 2, refill_every: Duration::from_secs(60) },
    };
    let h = harness_with(Arc::new(MemoryLegacyStore::default()), |b| {
        b.sign_in_limits(limits).client_ip_header("x-forwarded-for")
    })
    .await;
    let attempt = |spoofed: String| {
        let req = Request::post("/xrpc/com.atproto.server.createSession")
            .header("content-type", "application/json")
            .header("x-forwarded-for", format!("{spoofed}, 192.0.2.1"))
            .body(Body::from(json!({ "identifier": "alice.example.com", "password": "wrong" }).to_string()))
            .unwrap();
        let router = h.router.clone();
        async move { router.oneshot(req).await.unwrap().status() }
    };
    for i in 0..2 {
        assert_eq!(attempt(format!("198.51.100.{i}")).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        attempt("198.51.100.9".into()).await,
        StatusCode::TOO_MANY_REQUESTS,
        "a new spoofed left-most address does not escape the limit"
    );
}

#[tokio::test]
async fn t24_expired_access_token_is_400_expired_token() {
    let h = harness().await;
    let r = h.login("alice.example.com", PASSWORD).await;
    let access = r.s("accessJwt");
    h.clock.advance(Duration::from_secs(120 * 60));
    let s = h.get_session(&access).await;
    s.assert_error(StatusCode::BAD_REQUEST, "ExpiredToken");
    // The refresh token still works and gives a fresh access token.
    let f = h.refresh(&r.s("refreshJwt")).await;
    assert_eq!(f.status, StatusCode::OK, "{}", f.body);
    assert_eq!(h.get_session(&f.s("accessJwt")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn leg04_refresh_token_as_access_token_and_the_reverse_are_invalid_token() {
    let h = harness().await;
    let r = h.login("alice.example.com", PASSWORD).await;
    h.get_session(&r.s("refreshJwt")).await.assert_error(StatusCode::BAD_REQUEST, "InvalidToken");
    h.refresh(&r.s("accessJwt")).await.assert_error(StatusCode::BAD_REQUEST, "InvalidToken");
    h.call("POST", "com.atproto.server.deleteSession", Some(&format!("Bearer {}", r.s("accessJwt"))), None)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "InvalidToken");
    // Nothing changed: the refresh token still rotates.
    assert_eq!(h.refresh(&r.s("refreshJwt")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn leg04_alg_substitution_and_tampering_are_invalid_token() {
    let h = harness().await;
    let r = h.login("alice.example.com", PASSWORD).await;
    let access = r.s("accessJwt");
    let claims = claims_of(&access);
    let payload_b64 = access.split('.').nth(1).unwrap().to_owned();
    let forge = |header: Value, sig: &[u8]| {
        format!("{}.{payload_b64}.{}", b64::encode(header.to_string()), b64::encode(sig))
    };
    let none = forge(json!({ "alg": "none", "typ": "at+jwt" }), b"");
    let hs512 = forge(json!({ "alg": "HS512", "typ": "at+jwt" }), &[7u8; 64]);
    let es256 =
        jws::sign(&JwsHeader::new("ES256", Some("at+jwt")), &claims, &PrivateKey::generate(Algorithm::Es256))
            .unwrap();
    let mut tampered = access.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let mut resigned_claims = claims.clone();
    resigned_claims["sub"] = json!("did:plc:mallory0000000000000000");
    let other_payload = format!(
        "{}.{}.{}",
        access.split('.').next().unwrap(),
        b64::encode(resigned_claims.to_string()),
        access.split('.').nth(2).unwrap()
    );
    for (what, token) in [
        ("none", none),
        ("HS512", hs512),
        ("ES256", es256),
        ("tampered", tampered),
        ("payload", other_payload),
    ] {
        let s = h.get_session(&token).await;
        assert_eq!(
            (s.status, s.body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("InvalidToken")),
            "{what}"
        );
    }
    h.get_session("not-a-jwt").await.assert_error(StatusCode::BAD_REQUEST, "InvalidToken");
}

#[tokio::test]
async fn leg07_missing_or_malformed_authorization() {
    let h = harness().await;
    h.call("GET", "com.atproto.server.getSession", None, None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "AuthMissing");
    h.call("POST", "com.atproto.server.refreshSession", Some("Basic YWRtaW46c2VjcmV0LXRva2Vu"), None)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "InvalidToken");
    h.call("GET", "com.atproto.server.getSession", Some("Bearer a b"), None)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "InvalidToken");
    h.call("POST", "com.atproto.server.refreshSession", None, None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "AuthMissing");
}

#[tokio::test]
async fn combined_layer_routes_dpop_to_the_oauth_verifier_with_its_own_error() {
    let h = harness().await;
    let res = h
        .router
        .clone()
        .oneshot(
            Request::get("/xrpc/com.atproto.server.getSession")
                .header("authorization", "DPoP not-a-token")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().get("www-authenticate").unwrap().to_str().unwrap().starts_with("DPoP"));
    assert!(res.headers().contains_key("dpop-nonce"));
    // A legacy token presented under the DPoP scheme is an OAuth failure too, never a legacy success.
    let access = h.login("alice.example.com", PASSWORD).await.s("accessJwt");
    let r = h.call("GET", "com.atproto.server.getSession", Some(&format!("DPoP {access}")), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn token_of_a_deleted_account_is_403_account_not_found() {
    let h = harness().await;
    let r = h.login("alice.example.com", PASSWORD).await;
    h.accounts.deleted.lock().unwrap().insert(ALICE.into());
    h.get_session(&r.s("accessJwt")).await.assert_error(StatusCode::FORBIDDEN, "AccountNotFound");
    h.refresh(&r.s("refreshJwt")).await.assert_error(StatusCode::FORBIDDEN, "AccountNotFound");
}

#[tokio::test]
async fn leg05_refresh_rotates_with_an_idempotent_grace_period_then_fails() {
    let h = harness().await;
    let r = h.login("alice.example.com", PASSWORD).await;
    let old = r.s("refreshJwt");
    let first = h.refresh(&old).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let next_id = claims_of(&first.s("refreshJwt"))["jti"].clone();
    assert_ne!(next_id, claims_of(&old)["jti"]);
    // A retry inside the grace period gets a token with the same next id (LEG-05).
    h.clock.advance(Duration::from_secs(3600));
    let retry = h.refresh(&old).await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(claims_of(&retry.s("refreshJwt"))["jti"], next_id);
    // After the grace period (2 h from the first rotation): 400 ExpiredToken "Token has been revoked".
    h.clock.advance(Duration::from_secs(3600));
    let late = h.refresh(&old).await;
    late.assert_error(StatusCode::BAD_REQUEST, "ExpiredToken");
    assert_eq!(late.s("message"), "Token has been revoked");
    // The rotated token keeps working.
    assert_eq!(h.refresh(&first.s("refreshJwt")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn leg06_delete_session_revokes_the_refresh_token_even_when_expired() {
    let h = harness().await;
    let r = h.login("alice.example.com", PASSWORD).await;
    let refresh = r.s("refreshJwt");
    let del =
        h.call("POST", "com.atproto.server.deleteSession", Some(&format!("Bearer {refresh}")), None).await;
    assert_eq!(del.status, StatusCode::OK);
    h.refresh(&refresh).await.assert_error(StatusCode::BAD_REQUEST, "ExpiredToken");
    // An expired refresh token is accepted by deleteSession (LEG-06), refused by refreshSession.
    let r2 = h.login("alice.example.com", PASSWORD).await;
    h.clock.advance(Duration::from_secs(91 * 86_400));
    h.refresh(&r2.s("refreshJwt")).await.assert_error(StatusCode::BAD_REQUEST, "ExpiredToken");
    let del2 = h
        .call(
            "POST",
            "com.atproto.server.deleteSession",
            Some(&format!("Bearer {}", r2.s("refreshJwt"))),
            None,
        )
        .await;
    assert_eq!(del2.status, StatusCode::OK);
}

#[tokio::test]
async fn leg10_app_passwords_log_in_with_reduced_scope_and_revocation_ends_their_sessions() {
    let h = harness().await;
    let full = h.login("alice.example.com", PASSWORD).await.s("accessJwt");
    let created = h.app_password(&full, "phone", false).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let pw = created.s("password");
    assert!(legacy::is_app_password_shape(&pw), "{pw}");
    assert_eq!(created.body["privileged"], json!(false));
    assert!(created.s("createdAt").ends_with('Z'));
    let priv_pw = h.app_password(&full, "bot", true).await.s("password");
    h.app_password(&full, "phone", false).await.assert_error(StatusCode::BAD_REQUEST, "InvalidRequest");
    let list =
        h.call("GET", "com.atproto.server.listAppPasswords", Some(&format!("Bearer {full}")), None).await;
    assert_eq!(list.body["passwords"].as_array().unwrap().len(), 2);
    assert!(list.body["passwords"][0].get("password").is_none(), "shown once");

    let app = h.login("alice.example.com", &pw).await;
    assert_eq!(app.status, StatusCode::OK, "{}", app.body);
    assert_eq!(claims_of(&app.s("accessJwt"))["scope"], json!("com.atproto.appPass"));
    let privileged = h.login("alice@example.org", &priv_pw).await;
    assert_eq!(claims_of(&privileged.s("accessJwt"))["scope"], json!("com.atproto.appPassPrivileged"));
    assert_eq!(h.get_session(&app.s("accessJwt")).await.status, StatusCode::OK);
    // Refresh keeps the reduced scope.
    let refreshed = h.refresh(&app.s("refreshJwt")).await;
    assert_eq!(claims_of(&refreshed.s("accessJwt"))["scope"], json!("com.atproto.appPass"));

    // App-password sessions cannot manage app passwords (LEG-10), privileged or not.
    for token in [app.s("accessJwt"), privileged.s("accessJwt")] {
        h.app_password(&token, "evil", false).await.assert_error(StatusCode::BAD_REQUEST, "InvalidToken");
        h.call("GET", "com.atproto.server.listAppPasswords", Some(&format!("Bearer {token}")), None)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "InvalidToken");
        h.call(
            "POST",
            "com.atproto.server.revokeAppPassword",
            Some(&format!("Bearer {token}")),
            Some(json!({ "name": "phone" })),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, "InvalidToken");
    }
    assert_eq!(h.server.legacy_store().list_app_passwords(ALICE).await.unwrap().len(), 2, "nothing changed");

    // Revocation: the password stops working and its sessions end.
    let rev = h
        .call(
            "POST",
            "com.atproto.server.revokeAppPassword",
            Some(&format!("Bearer {full}")),
            Some(json!({ "name": "phone" })),
        )
        .await;
    assert_eq!(rev.status, StatusCode::OK);
    h.login("alice.example.com", &pw).await.assert_error(StatusCode::UNAUTHORIZED, "AuthenticationRequired");
    h.refresh(&refreshed.s("refreshJwt")).await.assert_error(StatusCode::BAD_REQUEST, "ExpiredToken");
    assert_eq!(
        h.login("alice.example.com", &priv_pw).await.status,
        StatusCode::OK,
        "other app password kept"
    );
}

#[tokio::test]
async fn generated_app_passwords_are_distinct_and_well_formed() {
    let a: HashSet<String> =
        (0..200).map(|_| legacy::generate_app_password().expose_secret().to_owned()).collect();
    assert_eq!(a.len(), 200);
    assert!(a.iter().all(|p| legacy::is_app_password_shape(p)));
}

#[tokio::test]
async fn jwt_secret_is_generated_0600_and_persists_across_restarts() {
    let dir = std::env::temp_dir()
        .join(format!("atauth-legacy-{}", hex::encode(atauth_crypto::random::random_bytes::<6>())));
    let build = || {
        AuthServer::builder("https://pds.example.com")
            .service_did("did:web:pds.example.com")
            .data_dir(&dir)
            .build()
            .unwrap()
    };
    let s1 = build();
    let path = dir.join(legacy::JWT_SECRET_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim().len(), 64);
    let r1 = s1.verify_legacy_refresh("x", false).unwrap_err();
    assert!(matches!(r1, legacy::LegacyError::InvalidToken));
    drop(s1);
    let s2 = build();
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim().len(), 64);
    drop(s2);
    // A short configured secret is refused at build time.
    let short = AuthServer::builder("https://pds.example.com")
        .legacy(LegacyOptions {
            jwt_secret: Some(atauth_crypto::SecretBytes::new(vec![1u8; 31])),
            ..LegacyOptions::default()
        })
        .build();
    assert!(matches!(
        short,
        Err(atauth_server::BuildError::Legacy(legacy::LegacyBuildError::SecretTooShort))
    ));
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn tokens_survive_a_restart_with_the_sqlite_store_and_persisted_secret() {
    let store: Arc<dyn legacy::LegacyStore> = Arc::new(SqliteLegacyStore::open_temp().unwrap());
    let h = harness_with(store, |b| b).await;
    let r = h.login("alice.example.com", PASSWORD).await;
    let f = h.refresh(&r.s("refreshJwt")).await;
    assert_eq!(f.status, StatusCode::OK, "{}", f.body);
    assert_eq!(h.get_session(&f.s("accessJwt")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn legacy_store_conformance_memory() {
    atauth_server::store::conformance::legacy::run_all(MemoryLegacyStore::default()).await;
}

#[tokio::test]
async fn legacy_store_conformance_sqlite_temp() {
    atauth_server::store::conformance::legacy::run_all(SqliteLegacyStore::open_temp().unwrap()).await;
}

/// The server's default: the legacy tables in the OAuth store's database, on its threads. Both
/// suites run at the same time against the one database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_store_conformance_sharing_the_oauth_sqlite_store() {
    let oauth = atauth_server::store::SqliteStore::open_temp().unwrap();
    let legacy_store = SqliteLegacyStore::in_store(&oauth).unwrap();
    tokio::join!(
        atauth_server::store::conformance::legacy::run_all(legacy_store),
        atauth_server::store::conformance::run_all(&oauth)
    );
}

#[tokio::test]
async fn legacy_store_conformance_sqlite_file() {
    let dir = std::env::temp_dir()
        .join(format!("atauth-legacy-store-{}", hex::encode(atauth_crypto::random::random_bytes::<6>())));
    std::fs::create_dir_all(&dir).unwrap();
    atauth_server::store::conformance::legacy::run_all(
        SqliteLegacyStore::open(dir.join("db.sqlite")).unwrap(),
    )
    .await;
    std::fs::remove_dir_all(&dir).ok();
}

// ------------------------------------------------------------------------- service auth (SVC-*) ---

mod service_auth {
    use super::*;
    use atauth_identity::{Did, DidDocument, DidResolveError, DidResolver};
    use atauth_server::service_auth::{ServiceAuthVerifier, ServiceClaims, sign_service_jwt};
    use atauth_server::web::service_auth::ServiceAuth;

    const SVC: &str = "did:web:feed.example.com#bsky_fg";
    const LXM: &str = "app.bsky.feed.getFeedSkeleton";

    fn doc(did: &str, key: &PrivateKey) -> DidDocument {
        serde_json::from_value(json!({
            "id": did,
            "alsoKnownAs": ["at://alice.example.com"],
            "verificationMethod": [{
                "id": format!("{did}#atproto"),
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": key.public_key().to_multikey(),
            }],
            "service": [],
        }))
        .unwrap()
    }

    /// Cached answers differ from fresh ones (key rotation); counts fresh resolutions.
    struct Rotating {
        cached: Mutex<DidDocument>,
        fresh: Mutex<DidDocument>,
        fresh_calls: Mutex<u32>,
    }

    #[async_trait]
    impl DidResolver for Rotating {
        async fn resolve_did(&self, _did: &Did) -> Result<DidDocument, DidResolveError> {
            Ok(self.cached.lock().unwrap().clone())
        }
        async fn resolve_did_fresh(&self, _did: &Did) -> Result<DidDocument, DidResolveError> {
            *self.fresh_calls.lock().unwrap() += 1;
            let d = self.fresh.lock().unwrap().clone();
            *self.cached.lock().unwrap() = d.clone();
            Ok(d)
        }
    }

    fn verifier(
        clock: Arc<ManualClock>,
        cached: DidDocument,
        fresh: DidDocument,
    ) -> (ServiceAuthVerifier, Arc<Rotating>) {
        let r = Arc::new(Rotating {
            cached: Mutex::new(cached),
            fresh: Mutex::new(fresh),
            fresh_calls: Mutex::new(0),
        });
        (ServiceAuthVerifier::new(SVC, r.clone(), Arc::new(MemoryStore::default()), clock), r)
    }

    fn claims(aud: &str, lxm: Option<&str>, exp: i64) -> ServiceClaims {
        ServiceClaims {
            iat: T0 as i64,
            iss: ALICE.into(),
            aud: aud.into(),
            exp,
            lxm: lxm.map(Into::into),
            jti: atauth_crypto::random::generate_jti(),
        }
    }

    async fn alice_key(h: &H) -> PrivateKey {
        let a = h.server.stores().accounts.account_by_did(ALICE).await.unwrap().unwrap();
        PrivateKey::from_hex(Algorithm::Es256k, a.signing_key_hex.unwrap().expose_secret()).unwrap()
    }

    async fn get_service_auth(h: &H, access: &str, query: &str) -> Resp {
        h.call(
            "GET",
            &format!("com.atproto.server.getServiceAuth?{query}"),
            Some(&format!("Bearer {access}")),
            None,
        )
        .await
    }

    #[tokio::test]
    async fn svc07_get_service_auth_mints_a_current_form_token_the_verifier_accepts_once() {
        let h = harness().await;
        let access = h.login("alice.example.com", PASSWORD).await.s("accessJwt");
        let r =
            get_service_auth(&h, &access, &format!("aud=did%3Aweb%3Afeed.example.com%23bsky_fg&lxm={LXM}"))
                .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let token = r.s("token");
        assert_eq!(header_of(&token), json!({ "typ": "JWT", "alg": "ES256K" }));
        let c = claims_of(&token);
        assert_eq!(
            (c["iss"].as_str(), c["aud"].as_str(), c["lxm"].as_str()),
            (Some(ALICE), Some(SVC), Some(LXM))
        );
        assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 60, "T-27 form, 60 s default");
        let key = alice_key(&h).await;
        let (v, _) = verifier(h.clock.clone(), doc(ALICE, &key), doc(ALICE, &key));
        let caller = v.verify(&token, LXM).await.unwrap();
        assert_eq!(caller.claims.iss, ALICE);
        // SVC-06: a second presentation is refused.
        assert_eq!(v.verify(&token, LXM).await.unwrap_err().xrpc_error().error, "JwtReplayed");
    }

    #[tokio::test]
    async fn svc07_get_service_auth_refusals() {
        let h = harness().await;
        let full = h.login("alice.example.com", PASSWORD).await.s("accessJwt");
        let now = T0 as i64;
        let aud = "aud=did%3Aweb%3Afeed.example.com%23bsky_fg";
        for (query, status, error) in [
            (format!("{aud}&lxm={LXM}&exp={}", now - 1), StatusCode::BAD_REQUEST, "BadExpiration"),
            (format!("{aud}&lxm={LXM}&exp={}", now + 3601), StatusCode::BAD_REQUEST, "BadExpiration"),
            (format!("{aud}&exp={}", now + 61), StatusCode::BAD_REQUEST, "BadExpiration"),
            (
                format!("{aud}&lxm=com.atproto.server.createAppPassword"),
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
            ),
            ("aud=not-a-did".to_owned(), StatusCode::BAD_REQUEST, "InvalidRequest"),
            (format!("{aud}&lxm=not%20an%20nsid"), StatusCode::BAD_REQUEST, "InvalidRequest"),
        ] {
            get_service_auth(&h, &full, &query).await.assert_error(status, error);
        }
        assert_eq!(
            get_service_auth(&h, &full, &format!("{aud}&lxm={LXM}&exp={}", now + 3600)).await.status,
            StatusCode::OK
        );
        // LEG-10: a non-privileged app password cannot ask for privileged methods; a privileged one can.
        let pw = h.app_password(&full, "phone", false).await.s("password");
        let app = h.login("alice.example.com", &pw).await.s("accessJwt");
        get_service_auth(&h, &app, &format!("{aud}&lxm=chat.bsky.convo.getLog"))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "InvalidRequest");
        assert_eq!(get_service_auth(&h, &app, &format!("{aud}&lxm={LXM}")).await.status, StatusCode::OK);
        let ppw = h.app_password(&full, "bot", true).await.s("password");
        let papp = h.login("alice.example.com", &ppw).await.s("accessJwt");
        assert_eq!(
            get_service_auth(&h, &papp, &format!("{aud}&lxm=chat.bsky.convo.getLog")).await.status,
            StatusCode::OK
        );
        h.call("GET", &format!("com.atproto.server.getServiceAuth?{aud}"), None, None)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "AuthMissing");
    }

    #[tokio::test]
    async fn svc05_verifier_refuses_wrong_aud_lxm_expired_type_and_foreign_keys() {
        let clock = Arc::new(ManualClock::at_unix(T0));
        let key = PrivateKey::generate(Algorithm::Es256k);
        let (v, _) = verifier(clock.clone(), doc(ALICE, &key), doc(ALICE, &key));
        let now = T0 as i64;
        let sign = |c: &ServiceClaims| sign_service_jwt(&key, c).unwrap();
        let cases = [
            (
                "wrong aud",
                sign(&claims("did:web:other.example.com#bsky_fg", Some(LXM), now + 60)),
                "BadJwtAudience",
            ),
            ("bare aud", sign(&claims("did:web:feed.example.com", Some(LXM), now + 60)), "BadJwtAudience"),
            (
                "wrong lxm",
                sign(&claims(SVC, Some("app.bsky.feed.getPosts"), now + 60)),
                "BadJwtLexiconMethod",
            ),
            ("no lxm", sign(&claims(SVC, None, now + 60)), "BadJwtLexiconMethod"),
            ("expired", sign(&claims(SVC, Some(LXM), now - 1)), "JwtExpired"),
            (
                "foreign key",
                sign_service_jwt(&PrivateKey::generate(Algorithm::Es256k), &claims(SVC, Some(LXM), now + 60))
                    .unwrap(),
                "BadJwtSignature",
            ),
            (
                "at+jwt",
                jws::sign(&JwsHeader::new("ES256K", Some("at+jwt")), &claims(SVC, Some(LXM), now + 60), &key)
                    .unwrap(),
                "BadJwtType",
            ),
            ("garbage", "a.b.c".to_owned(), "BadJwt"),
        ];
        for (what, token, error) in cases {
            let e = v.verify(&token, LXM).await.unwrap_err().xrpc_error();
            assert_eq!((e.status, e.error), (StatusCode::UNAUTHORIZED, error), "{what}");
        }
        let mut iss_frag = claims(SVC, Some(LXM), now + 60);
        iss_frag.iss = format!("{ALICE}#atproto");
        assert_eq!(v.verify(&sign(&iss_frag), LXM).await.unwrap_err().xrpc_error().error, "BadJwtIss");
        // The legacy bare-DID audience only when configured (T-27).
        let bare_ok = v.clone().accept_bare_did_audience(true);
        assert!(
            bare_ok
                .verify(&sign(&claims("did:web:feed.example.com", Some(LXM), now + 60)), LXM)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn svc05_es256_keys_and_one_fresh_resolution_on_rotation() {
        let clock = Arc::new(ManualClock::at_unix(T0));
        let old = PrivateKey::generate(Algorithm::Es256k);
        let new = PrivateKey::generate(Algorithm::Es256);
        let (v, r) = verifier(clock, doc(ALICE, &old), doc(ALICE, &new));
        let token = sign_service_jwt(&new, &claims(SVC, Some(LXM), T0 as i64 + 60)).unwrap();
        assert_eq!(header_of(&token)["alg"], json!("ES256"));
        assert!(v.verify(&token, LXM).await.is_ok(), "rotated key found by the fresh resolution");
        assert_eq!(*r.fresh_calls.lock().unwrap(), 1);
        // A token from a key in neither document: one fresh resolution, then BadJwtSignature.
        let stranger = sign_service_jwt(
            &PrivateKey::generate(Algorithm::Es256),
            &claims(SVC, Some(LXM), T0 as i64 + 60),
        )
        .unwrap();
        assert_eq!(v.verify(&stranger, LXM).await.unwrap_err().xrpc_error().error, "BadJwtSignature");
        assert_eq!(*r.fresh_calls.lock().unwrap(), 2);
    }

    #[tokio::test]
    async fn service_auth_extractor_checks_the_called_method() {
        let clock = Arc::new(ManualClock::at_unix(T0));
        let key = PrivateKey::generate(Algorithm::Es256k);
        let (v, _) = verifier(clock, doc(ALICE, &key), doc(ALICE, &key));
        async fn whoami(ServiceAuth(c): ServiceAuth) -> String {
            c.claims.iss
        }
        let app = Router::new()
            .route(&format!("/xrpc/{LXM}"), axum::routing::get(whoami))
            .route("/xrpc/app.bsky.feed.getPosts", axum::routing::get(whoami))
            .with_state(v);
        let token = sign_service_jwt(&key, &claims(SVC, Some(LXM), T0 as i64 + 60)).unwrap();
        let call = |path: String, token: String| {
            let app = app.clone();
            async move {
                let res = app
                    .oneshot(
                        Request::get(path)
                            .header("authorization", format!("Bearer {token}"))
                            .body(Body::empty())
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                let status = res.status();
                let body = res.into_body().collect().await.unwrap().to_bytes();
                (status, String::from_utf8_lossy(&body).into_owned())
            }
        };
        let (s, b) = call("/xrpc/app.bsky.feed.getPosts".into(), token.clone()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(b.contains("BadJwtLexiconMethod"), "{b}");
        assert_eq!(call(format!("/xrpc/{LXM}"), token).await, (StatusCode::OK, ALICE.to_owned()));
    }
}
