//! The one conformance suite every store backend passes. Each function panics (with a message
//! naming the broken rule) when the backend under test misbehaves; call them from a test:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use atauth_server::store::{MemoryStore, conformance};
//! conformance::run_all(&MemoryStore::default()).await;
//! # });
//! ```
//!
//! A new backend (Postgres, Redis for replay) adds one test calling [`run_all`] (or the per-trait
//! suites for a backend that implements only some traits).

mod factors;
pub mod legacy;
mod limits;

pub use factors::factor_store_suite;
pub use limits::sign_in_limit_suite;

use atauth_crypto::SecretString;

use super::{
    AccountRecord, AccountStatus, AccountStore, AuthorizationRequest, ClientAuthBinding, ClientMetadataCache,
    CodeRecord, DeviceAccount, DeviceSession, DeviceStore, InviteCode, InviteCodeUse, InviteRedeemOutcome,
    PendingRequest, RedeemOutcome, RefreshKey, ReplayStore, RequestReplayStore, RequestStore, RotateOutcome,
    Rotation, SessionRecord, StoreError, TokenHash, TokenStore,
};

const T0: i64 = 1_800_000_000;

fn account(did: &str, handle: &str, email: Option<&str>) -> AccountRecord {
    AccountRecord {
        did: did.to_owned(),
        handle: handle.to_owned(),
        email: email.map(str::to_owned),
        password_hash: SecretString::new("73616c74:abcd"),
        signing_key_hex: Some(SecretString::new("11".repeat(32))),
        created_at: T0,
        status: AccountStatus::Active,
    }
}

/// Accounts: create, unique DID/handle/email, lookups, status and password updates.
pub async fn account_store_suite<S: AccountStore + ?Sized>(s: &S) {
    let a = account("did:plc:conformancealice00000000", "alice.conf.test", Some("alice@conf.test"));
    s.create_account(a.clone()).await.expect("create account");
    assert_eq!(
        s.account_by_did(&a.did).await.expect("by did"),
        Some(a.clone()),
        "account round-trips by DID"
    );
    assert_eq!(s.account_by_handle("alice.conf.test").await.expect("by handle"), Some(a.clone()));
    assert_eq!(s.account_by_email("alice@conf.test").await.expect("by email"), Some(a.clone()));
    assert_eq!(s.account_by_handle("nobody.conf.test").await.expect("missing"), None);

    let dup_did = account(&a.did, "other.conf.test", None);
    assert!(
        matches!(s.create_account(dup_did).await, Err(StoreError::Conflict("did"))),
        "duplicate DID refused"
    );
    let dup_handle = account("did:plc:conformancebob0000000000", "alice.conf.test", None);
    assert!(
        matches!(s.create_account(dup_handle).await, Err(StoreError::Conflict("handle"))),
        "duplicate handle refused"
    );
    let dup_email = account("did:plc:conformancebob0000000000", "bob.conf.test", Some("alice@conf.test"));
    assert!(
        matches!(s.create_account(dup_email).await, Err(StoreError::Conflict("email"))),
        "duplicate email refused"
    );
    assert_eq!(
        s.account_by_handle("bob.conf.test").await.expect("lookup"),
        None,
        "a refused insert leaves nothing"
    );
    // Accounts without email do not conflict with each other.
    s.create_account(account("did:plc:conformancenomail1000000", "nomail1.conf.test", None))
        .await
        .expect("no email 1");
    s.create_account(account("did:plc:conformancenomail2000000", "nomail2.conf.test", None))
        .await
        .expect("no email 2");

    assert!(s.set_account_status(&a.did, AccountStatus::Takendown).await.expect("status"));
    assert_eq!(
        s.account_by_did(&a.did).await.expect("by did").map(|x| x.status),
        Some(AccountStatus::Takendown)
    );
    assert!(!s.set_account_status("did:plc:missing", AccountStatus::Active).await.expect("status missing"));
    let new_hash = SecretString::new("6e6577:beef");
    assert!(s.set_password_hash(&a.did, &new_hash).await.expect("password"));
    assert_eq!(s.account_by_did(&a.did).await.expect("by did").map(|x| x.password_hash), Some(new_hash));
}

fn invite(code: &str, uses_allowed: u32, created_at: i64) -> InviteCode {
    InviteCode { code: code.to_owned(), uses_allowed, disabled: false, created_at, uses: Vec::new() }
}

/// Invite codes (sign-up, [`crate::signup`]): create, list, disable, and the atomic
/// "take one use and create the account" — both or neither, and of two racing for a code's last
/// use or for one handle exactly one wins.
pub async fn invite_code_suite<S: AccountStore + ?Sized>(s: &S) {
    let one = invite("conf1-aaaaa-bbbbb", 1, T0);
    s.put_invite_code(one.clone()).await.expect("put invite");
    assert!(
        matches!(s.put_invite_code(invite("conf1-aaaaa-bbbbb", 5, T0)).await, Err(StoreError::Conflict(_))),
        "a duplicate code is refused"
    );
    assert_eq!(s.invite_code("conf1-aaaaa-bbbbb").await.expect("get"), Some(one.clone()), "round-trips");
    assert_eq!(s.invite_code("nope").await.expect("get missing"), None);

    // Unknown code: nothing stored.
    let carol = account("did:plc:conformanceinvitecarol00", "carol.invite.test", Some("carol@invite.test"));
    assert_eq!(
        s.create_account_with_invite(carol.clone(), "nope").await.expect("unknown"),
        InviteRedeemOutcome::UnknownCode
    );
    assert_eq!(s.account_by_did(&carol.did).await.expect("lookup"), None, "no account for an unknown code");

    // Taken handle: the code keeps its use.
    let taken = account("did:plc:conformanceinvitetaken00", "carol.invite.test", None);
    s.create_account(account("did:plc:conformanceinviteowner00", "carol.invite.test", None))
        .await
        .expect("owner of the handle");
    assert!(
        matches!(
            s.create_account_with_invite(taken.clone(), "conf1-aaaaa-bbbbb").await,
            Err(StoreError::Conflict("handle"))
        ),
        "a taken handle is refused"
    );
    assert_eq!(s.invite_code("conf1-aaaaa-bbbbb").await.expect("get").map(|i| i.remaining()), Some(1));
    assert_eq!(s.account_by_did(&taken.did).await.expect("lookup"), None);

    // The use: account stored and use recorded, then the code is spent.
    let dave = account("did:plc:conformanceinvitedave000", "dave.invite.test", None);
    assert_eq!(
        s.create_account_with_invite(dave.clone(), "conf1-aaaaa-bbbbb").await.expect("redeem"),
        InviteRedeemOutcome::Created
    );
    assert_eq!(s.account_by_did(&dave.did).await.expect("lookup"), Some(dave.clone()));
    let spent = s.invite_code("conf1-aaaaa-bbbbb").await.expect("get").expect("exists");
    assert_eq!(spent.uses, vec![InviteCodeUse { did: dave.did.clone(), used_at: T0 }]);
    assert_eq!(spent.remaining(), 0);
    let erin = account("did:plc:conformanceinviteerin000", "erin.invite.test", None);
    assert_eq!(
        s.create_account_with_invite(erin.clone(), "conf1-aaaaa-bbbbb").await.expect("spent"),
        InviteRedeemOutcome::UsedUp
    );
    assert_eq!(s.account_by_did(&erin.did).await.expect("lookup"), None, "no account for a spent code");

    // Several uses, then disabled.
    s.put_invite_code(invite("conf2-ccccc-ddddd", 3, T0 + 1)).await.expect("put multi");
    assert_eq!(
        s.create_account_with_invite(erin.clone(), "conf2-ccccc-ddddd").await.expect("multi"),
        InviteRedeemOutcome::Created
    );
    assert!(s.disable_invite_code("conf2-ccccc-ddddd").await.expect("disable"));
    assert!(!s.disable_invite_code("nope").await.expect("disable missing"));
    let frank = account("did:plc:conformanceinvitefrank00", "frank.invite.test", None);
    assert_eq!(
        s.create_account_with_invite(frank.clone(), "conf2-ccccc-ddddd").await.expect("disabled"),
        InviteRedeemOutcome::Disabled
    );
    assert_eq!(s.account_by_did(&frank.did).await.expect("lookup"), None);
    let listed = s.list_invite_codes().await.expect("list");
    let codes: Vec<(&str, usize, bool)> =
        listed.iter().map(|i| (i.code.as_str(), i.uses.len(), i.disabled)).collect();
    assert_eq!(codes, [("conf1-aaaaa-bbbbb", 1, false), ("conf2-ccccc-ddddd", 1, true)], "oldest first");

    // Two sign-ups racing for a code's last use: exactly one wins, the other stores nothing.
    s.put_invite_code(invite("conf3-eeeee-fffff", 1, T0 + 2)).await.expect("put race");
    let (g, h) = (
        account("did:plc:conformanceinviterace1000", "race1.invite.test", None),
        account("did:plc:conformanceinviterace2000", "race2.invite.test", None),
    );
    let (a, b) = tokio::join!(
        s.create_account_with_invite(g.clone(), "conf3-eeeee-fffff"),
        s.create_account_with_invite(h.clone(), "conf3-eeeee-fffff")
    );
    let mut outcomes = [a.expect("race a"), b.expect("race b")];
    outcomes.sort_by_key(|o| *o != InviteRedeemOutcome::Created);
    assert_eq!(outcomes, [InviteRedeemOutcome::Created, InviteRedeemOutcome::UsedUp], "one use, one winner");
    let stored = [s.account_by_did(&g.did).await.expect("g"), s.account_by_did(&h.did).await.expect("h")];
    assert_eq!(stored.iter().filter(|a| a.is_some()).count(), 1, "exactly one account");

    // Two sign-ups racing for one handle with two codes: one account, the loser's code unspent.
    s.put_invite_code(invite("conf4-ggggg-hhhhh", 1, T0 + 3)).await.expect("put 4");
    s.put_invite_code(invite("conf5-iiiii-jjjjj", 1, T0 + 3)).await.expect("put 5");
    let (i, j) = (
        account("did:plc:conformanceinvitesame1000", "same.invite.test", None),
        account("did:plc:conformanceinvitesame2000", "same.invite.test", None),
    );
    let (a, b) = tokio::join!(
        s.create_account_with_invite(i.clone(), "conf4-ggggg-hhhhh"),
        s.create_account_with_invite(j.clone(), "conf5-iiiii-jjjjj")
    );
    let won = [&a, &b].iter().filter(|r| matches!(r, Ok(InviteRedeemOutcome::Created))).count();
    let lost = [&a, &b].iter().filter(|r| matches!(r, Err(StoreError::Conflict("handle")))).count();
    assert_eq!((won, lost), (1, 1), "one account per handle: {a:?} {b:?}");
    let left: u32 = [
        s.invite_code("conf4-ggggg-hhhhh").await.expect("4"),
        s.invite_code("conf5-iiiii-jjjjj").await.expect("5"),
    ]
    .iter()
    .flatten()
    .map(InviteCode::remaining)
    .sum();
    assert_eq!(left, 1, "the loser's code keeps its use");
}

fn request(client_id: &str) -> AuthorizationRequest {
    AuthorizationRequest {
        client_id: client_id.to_owned(),
        redirect_uri: "http://127.0.0.1/cb".to_owned(),
        scope: "atproto".to_owned(),
        state: Some("st".to_owned()),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned(),
        login_hint: None,
        prompt: None,
        response_mode: None,
    }
}

/// An unbound request pushed at `T0`, expiring five minutes later.
fn pending_request(id: &str) -> PendingRequest {
    PendingRequest {
        id: id.to_owned(),
        request: request("http://localhost"),
        dpop_jkt: "jkt1".to_owned(),
        client_auth: ClientAuthBinding::None,
        created_at: T0,
        expires_at: T0 + 300,
        device_id: None,
    }
}

/// Pending PAR requests: expiry, device binding, single-use take.
pub async fn request_store_suite<S: RequestStore + ?Sized>(s: &S) {
    let r = pending_request("req-conformance-1");
    s.put_request(r.clone()).await.expect("put request");
    assert!(matches!(s.put_request(r.clone()).await, Err(StoreError::Conflict(_))), "duplicate id refused");
    assert_eq!(s.get_request(&r.id, T0).await.expect("get"), Some(r.clone()));
    assert_eq!(s.get_request(&r.id, T0 + 300).await.expect("get expired"), None, "expired requests are gone");
    assert_eq!(s.get_request("req-missing", T0).await.expect("missing"), None);

    assert!(s.bind_request_device(&r.id, "dev-a", T0).await.expect("bind"), "first device binds");
    assert!(s.bind_request_device(&r.id, "dev-a", T0).await.expect("bind again"), "same device ok");
    assert!(!s.bind_request_device(&r.id, "dev-b", T0).await.expect("bind other"), "other device refused");
    assert_eq!(
        s.get_request(&r.id, T0).await.expect("get").and_then(|x| x.device_id).as_deref(),
        Some("dev-a")
    );

    let taken = s.take_request(&r.id, T0 + 1).await.expect("take");
    assert_eq!(taken.map(|x| x.id), Some(r.id.clone()));
    assert_eq!(s.take_request(&r.id, T0 + 1).await.expect("take twice"), None, "request_uri is single use");
    assert_eq!(s.get_request(&r.id, T0 + 1).await.expect("get after take"), None);

    let mut expired = r.clone();
    expired.id = "req-conformance-2".to_owned();
    s.put_request(expired.clone()).await.expect("put");
    assert_eq!(
        s.take_request(&expired.id, T0 + 301).await.expect("take expired"),
        None,
        "expired cannot be taken"
    );
}

fn code(hash: TokenHash, expires_at: i64) -> CodeRecord {
    CodeRecord {
        code_hash: hash,
        request: request("https://app.example.com/client-metadata.json"),
        sub: "did:plc:conformancealice00000000".to_owned(),
        scope: "atproto".to_owned(),
        dpop_jkt: "jkt1".to_owned(),
        client_auth: ClientAuthBinding::None,
        created_at: T0,
        expires_at,
        used: false,
        session_id: None,
        device_id: Some("dev-a".to_owned()),
    }
}

fn session(id: &str, refresh: TokenHash, access_jti: &str) -> SessionRecord {
    SessionRecord {
        id: id.to_owned(),
        client_id: "https://app.example.com/client-metadata.json".to_owned(),
        sub: "did:plc:conformancealice00000000".to_owned(),
        scope: "atproto".to_owned(),
        dpop_jkt: "jkt1".to_owned(),
        client_auth: ClientAuthBinding::None,
        created_at: T0,
        expires_at: T0 + 14 * 86_400,
        refresh_hash: refresh,
        refresh_expires_at: T0 + 14 * 86_400,
        access_jti: access_jti.to_owned(),
        access_expires_at: T0 + 900,
        updated_at: T0,
        device_id: Some("dev-a".to_owned()),
    }
}

fn rotation(now: i64, new_refresh: TokenHash, new_jti: &str) -> Rotation {
    Rotation {
        now,
        client_id: "https://app.example.com/client-metadata.json".to_owned(),
        dpop_jkt: "jkt1".to_owned(),
        client_auth: ClientAuthBinding::None,
        new_refresh_hash: new_refresh,
        new_refresh_expires_at: now + 14 * 86_400,
        new_access_jti: new_jti.to_owned(),
        new_access_expires_at: now + 900,
        retry_grace: 0,
    }
}

/// A rotation with the lost-response retry grace on (30 s, the server's default).
fn rotation_with_grace(now: i64, new_refresh: TokenHash, new_jti: &str) -> Rotation {
    Rotation { retry_grace: 30, ..rotation(now, new_refresh, new_jti) }
}

/// A fresh family `id` whose current refresh token is `ref-<id>`.
async fn new_family<S: TokenStore + ?Sized>(s: &S, id: &str) -> TokenHash {
    let c = TokenHash::of(&format!("cod-{id}"));
    let rh = TokenHash::of(&format!("ref-{id}"));
    s.put_code(code(c, T0 + 300)).await.expect("put code");
    assert_eq!(
        s.redeem_code(&c, T0, session(id, rh, &format!("tok-{id}"))).await.expect("redeem"),
        RedeemOutcome::Redeemed
    );
    rh
}

/// Codes and token families: single-use codes, reuse revokes (AS-CODE-02), rotation, replay revokes
/// the family (AS-REF-01), binding mismatches revoke (AS-REF-02), lifetimes capped (AS-REF-03),
/// stateful access-token lookup.
pub async fn token_store_suite<S: TokenStore + ?Sized>(s: &S) {
    // --- codes
    let c1 = TokenHash::of("cod-conformance-1");
    s.put_code(code(c1, T0 + 300)).await.expect("put code");
    assert!(
        matches!(s.put_code(code(c1, T0 + 300)).await, Err(StoreError::Conflict(_))),
        "duplicate code refused"
    );
    assert_eq!(s.get_code(&c1).await.expect("get code").map(|c| c.used), Some(false));
    let r1 = TokenHash::of("ref-1");
    let fam = session("fam-1", r1, "tok-1");
    assert_eq!(s.redeem_code(&c1, T0 + 10, fam.clone()).await.expect("redeem"), RedeemOutcome::Redeemed);
    assert_eq!(s.session("fam-1").await.expect("session"), Some(fam.clone()), "family stored with the code");
    let used = s.get_code(&c1).await.expect("get code").expect("code kept for reuse detection");
    assert!(used.used);
    assert_eq!(used.session_id.as_deref(), Some("fam-1"));
    assert_eq!(
        s.redeem_code(&c1, T0 + 11, session("fam-x", TokenHash::of("ref-x"), "tok-x")).await.expect("reuse"),
        RedeemOutcome::Reused,
        "a code redeems once"
    );
    assert_eq!(
        s.session("fam-1").await.expect("session"),
        None,
        "reuse revokes what the code issued (AS-CODE-02)"
    );
    assert_eq!(s.session("fam-x").await.expect("session"), None, "reuse issues nothing");
    assert_eq!(s.session_by_access_jti("tok-1", T0 + 12).await.expect("jti"), None);

    let c2 = TokenHash::of("cod-conformance-2");
    s.put_code(code(c2, T0 + 300)).await.expect("put code");
    assert_eq!(
        s.redeem_code(&c2, T0 + 300, session("fam-2", TokenHash::of("ref-2"), "tok-2"))
            .await
            .expect("expired"),
        RedeemOutcome::Expired
    );
    assert_eq!(s.session("fam-2").await.expect("session"), None, "an expired code issues nothing");
    assert_eq!(
        s.redeem_code(&TokenHash::of("nope"), T0, session("fam-3", TokenHash::of("ref-3"), "tok-3"))
            .await
            .expect("missing"),
        RedeemOutcome::NotFound
    );
    assert_eq!(s.session("fam-3").await.expect("session"), None);

    // --- rotation
    let c4 = TokenHash::of("cod-conformance-4");
    s.put_code(code(c4, T0 + 300)).await.expect("put code");
    let r4 = TokenHash::of("ref-4");
    assert_eq!(
        s.redeem_code(&c4, T0, session("fam-4", r4, "tok-4")).await.expect("redeem"),
        RedeemOutcome::Redeemed
    );
    assert_eq!(
        s.session_by_access_jti("tok-4", T0 + 1).await.expect("jti").map(|x| x.id).as_deref(),
        Some("fam-4")
    );
    assert_eq!(s.session_by_access_jti("tok-4", T0 + 900).await.expect("jti"), None, "expired access token");
    let r4b = TokenHash::of("ref-4b");
    let RotateOutcome::Rotated(after) =
        s.rotate_refresh(&r4.into(), rotation(T0 + 100, r4b, "tok-4b")).await.expect("rotate")
    else {
        panic!("rotation should succeed")
    };
    assert_eq!(after.refresh_hash, r4b);
    assert_eq!(after.access_jti, "tok-4b");
    assert_eq!(after.updated_at, T0 + 100);
    assert_eq!(
        after.refresh_expires_at,
        T0 + 14 * 86_400,
        "refresh end capped at the family's end (AS-REF-03)"
    );
    assert_eq!(s.session("fam-4").await.expect("session"), Some(after.clone()), "rotation persisted");
    assert_eq!(
        s.session_by_access_jti("tok-4", T0 + 101).await.expect("old jti"),
        None,
        "old access token dead"
    );
    assert!(s.session_by_access_jti("tok-4b", T0 + 101).await.expect("new jti").is_some());
    assert_eq!(
        s.session_by_refresh(&r4.into()).await.expect("by old refresh").map(|x| x.id).as_deref(),
        Some("fam-4")
    );
    // Replay of the rotated token revokes the whole family, including the new token.
    assert_eq!(
        s.rotate_refresh(&r4.into(), rotation(T0 + 200, TokenHash::of("ref-4c"), "tok-4c"))
            .await
            .expect("replay"),
        RotateOutcome::Replayed
    );
    assert_eq!(s.session("fam-4").await.expect("session"), None, "replay revokes the family (AS-REF-01)");
    assert_eq!(
        s.rotate_refresh(&r4b.into(), rotation(T0 + 201, TokenHash::of("ref-4d"), "tok-4d"))
            .await
            .expect("after revoke"),
        RotateOutcome::NotFound,
        "the newest token of a revoked family is dead too"
    );
    assert_eq!(s.session_by_access_jti("tok-4b", T0 + 202).await.expect("jti"), None);

    // --- a lost response's retry (issue 15, bluesky-social/atproto#4656): the token the latest
    // rotation replaced, presented again within the grace by the same client and key, rotates the
    // family afresh once; the undelivered successor dies; every other replay still revokes.
    let a = new_family(s, "fam-g1").await;
    let (b, c2, d) = (TokenHash::of("ref-g1-b"), TokenHash::of("ref-g1-c"), TokenHash::of("ref-g1-d"));
    assert!(matches!(
        s.rotate_refresh(&a.into(), rotation_with_grace(T0 + 100, b, "tok-g1-b")).await.expect("rotate"),
        RotateOutcome::Rotated(_)
    ));
    let RotateOutcome::Retried(after) =
        s.rotate_refresh(&a.into(), rotation_with_grace(T0 + 130, c2, "tok-g1-c")).await.expect("retry")
    else {
        panic!("a retry 30 s after the rotation is within the grace")
    };
    assert_eq!((after.refresh_hash, after.access_jti.as_str()), (c2, "tok-g1-c"));
    assert_eq!(s.session("fam-g1").await.expect("session"), Some(after), "retry persisted");
    assert_eq!(
        s.session_by_access_jti("tok-g1-b", T0 + 131).await.expect("jti"),
        None,
        "lost access token dead"
    );
    assert!(matches!(
        s.rotate_refresh(&c2.into(), rotation_with_grace(T0 + 140, d, "tok-g1-d")).await.expect("rotate on"),
        RotateOutcome::Rotated(_)
    ));
    // The retry was spent: the same old token again is a replay.
    let e = TokenHash::of("ref-g1-e");
    assert_eq!(
        s.rotate_refresh(&a.into(), rotation_with_grace(T0 + 141, e, "tok-g1-e"))
            .await
            .expect("second retry"),
        RotateOutcome::Replayed
    );
    assert_eq!(s.session("fam-g1").await.expect("session"), None, "a second retry revokes the family");

    // The undelivered successor presented later is a replay (it was never handed out).
    let a = new_family(s, "fam-g2").await;
    let (b, c2) = (TokenHash::of("ref-g2-b"), TokenHash::of("ref-g2-c"));
    s.rotate_refresh(&a.into(), rotation_with_grace(T0 + 100, b, "tok-g2-b")).await.expect("rotate");
    assert!(matches!(
        s.rotate_refresh(&a.into(), rotation_with_grace(T0 + 101, c2, "tok-g2-c")).await.expect("retry"),
        RotateOutcome::Retried(_)
    ));
    assert_eq!(
        s.rotate_refresh(&b.into(), rotation_with_grace(T0 + 102, TokenHash::of("ref-g2-x"), "tok-g2-x"))
            .await
            .expect("successor"),
        RotateOutcome::Replayed
    );
    assert_eq!(s.session("fam-g2").await.expect("session"), None);

    // Another DPoP key inside the window (a thief with the token) revokes (AS-REF-02).
    let a = new_family(s, "fam-g3").await;
    s.rotate_refresh(&a.into(), rotation_with_grace(T0 + 100, TokenHash::of("ref-g3-b"), "tok-g3-b"))
        .await
        .expect("rotate");
    let mut thief = rotation_with_grace(T0 + 101, TokenHash::of("ref-g3-c"), "tok-g3-c");
    thief.dpop_jkt = "attacker".into();
    assert_eq!(s.rotate_refresh(&a.into(), thief).await.expect("thief"), RotateOutcome::DpopKeyMismatch);
    assert_eq!(s.session("fam-g3").await.expect("session"), None, "the thief revoked the family");

    // After the window, or with the grace off, it is a replay (AS-REF-01).
    for (id, now, grace) in [("fam-g4", T0 + 131, 30), ("fam-g5", T0 + 101, 0)] {
        let a = new_family(s, id).await;
        let next = TokenHash::of(&format!("ref-{id}-b"));
        s.rotate_refresh(&a.into(), rotation_with_grace(T0 + 100, next, "tok-b")).await.expect("rotate");
        let mut late = rotation(now, TokenHash::of(&format!("ref-{id}-c")), &format!("tok-{id}-c"));
        late.retry_grace = grace;
        assert_eq!(s.rotate_refresh(&a.into(), late).await.expect("late"), RotateOutcome::Replayed, "{id}");
        assert_eq!(s.session(id).await.expect("session"), None, "{id}");
    }

    // Only the latest replaced token may retry: one from an earlier rotation is a replay.
    let a = new_family(s, "fam-g6").await;
    let (b, c2) = (TokenHash::of("ref-g6-b"), TokenHash::of("ref-g6-c"));
    s.rotate_refresh(&a.into(), rotation_with_grace(T0 + 100, b, "tok-g6-b")).await.expect("rotate");
    s.rotate_refresh(&b.into(), rotation_with_grace(T0 + 105, c2, "tok-g6-c")).await.expect("rotate again");
    assert_eq!(
        s.rotate_refresh(&a.into(), rotation_with_grace(T0 + 110, TokenHash::of("ref-g6-x"), "tok-g6-x"))
            .await
            .expect("old"),
        RotateOutcome::Replayed
    );
    assert_eq!(s.session("fam-g6").await.expect("session"), None);

    // --- binding mismatches revoke (AS-REF-02)
    for (i, (mutate, expected)) in [
        (
            Box::new(|r: &mut Rotation| r.client_id = "https://evil.example.com/c.json".into())
                as Box<dyn Fn(&mut Rotation) + Send + Sync>,
            RotateOutcome::ClientMismatch,
        ),
        (Box::new(|r: &mut Rotation| r.dpop_jkt = "other".into()), RotateOutcome::DpopKeyMismatch),
        (Box::new(|r: &mut Rotation| r.now = T0 + 14 * 86_400), RotateOutcome::Expired),
    ]
    .into_iter()
    .enumerate()
    {
        let c = TokenHash::of(&format!("cod-mismatch-{i}"));
        let id = format!("fam-m{i}");
        let rh = TokenHash::of(&format!("ref-m{i}"));
        s.put_code(code(c, T0 + 300)).await.expect("put code");
        assert_eq!(
            s.redeem_code(&c, T0, session(&id, rh, &format!("tok-m{i}"))).await.expect("redeem"),
            RedeemOutcome::Redeemed
        );
        let mut rot = rotation(T0 + 50, TokenHash::of(&format!("ref-m{i}-next")), &format!("tok-m{i}-next"));
        mutate(&mut rot);
        assert_eq!(s.rotate_refresh(&rh.into(), rot).await.expect("mismatch"), expected);
        assert_eq!(s.session(&id).await.expect("session"), None, "{expected:?} revokes the family");
    }
    // Confidential family: other key → revoked; public family may upgrade.
    let conf = ClientAuthBinding::PrivateKeyJwt { kid: "k1".into(), alg: "ES256".into(), jkt: "ck1".into() };
    let c = TokenHash::of("cod-conf");
    s.put_code(code(c, T0 + 300)).await.expect("put code");
    let mut fam = session("fam-conf", TokenHash::of("ref-conf"), "tok-conf");
    fam.client_auth = conf.clone();
    assert_eq!(s.redeem_code(&c, T0, fam).await.expect("redeem"), RedeemOutcome::Redeemed);
    let mut rot = rotation(T0 + 1, TokenHash::of("ref-conf-2"), "tok-conf-2");
    rot.client_auth = ClientAuthBinding::None;
    assert_eq!(
        s.rotate_refresh(&TokenHash::of("ref-conf").into(), rot).await.expect("downgrade"),
        RotateOutcome::ClientAuthMismatch
    );
    assert_eq!(s.session("fam-conf").await.expect("session"), None);

    let c = TokenHash::of("cod-upgrade");
    s.put_code(code(c, T0 + 300)).await.expect("put code");
    assert_eq!(
        s.redeem_code(&c, T0, session("fam-up", TokenHash::of("ref-up"), "tok-up")).await.expect("redeem"),
        RedeemOutcome::Redeemed
    );
    let mut rot = rotation(T0 + 1, TokenHash::of("ref-up-2"), "tok-up-2");
    rot.client_auth = conf.clone();
    assert!(matches!(
        s.rotate_refresh(&TokenHash::of("ref-up").into(), rot).await.expect("upgrade"),
        RotateOutcome::Rotated(_)
    ));
    assert_eq!(s.session("fam-up").await.expect("session").map(|x| x.client_auth), Some(conf));

    // --- listing, revocation, purge
    let listed = s.sessions_for_account("did:plc:conformancealice00000000", T0 + 2).await.expect("list");
    assert_eq!(listed.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), vec!["fam-up"]);
    assert!(s.revoke_session("fam-up").await.expect("revoke"));
    assert!(!s.revoke_session("fam-up").await.expect("revoke twice"));
    assert_eq!(
        s.rotate_refresh(
            &TokenHash::of("ref-up-2").into(),
            rotation(T0 + 3, TokenHash::of("ref-up-3"), "tok-up-3")
        )
        .await
        .expect("after revoke"),
        RotateOutcome::NotFound
    );
    let c = TokenHash::of("cod-purge");
    s.put_code(code(c, T0 + 300)).await.expect("put code");
    let mut short = session("fam-purge", TokenHash::of("ref-purge"), "tok-purge");
    short.expires_at = T0 + 1000;
    assert_eq!(s.redeem_code(&c, T0, short).await.expect("redeem"), RedeemOutcome::Redeemed);
    assert!(s.purge_expired_tokens(T0 + 1000).await.expect("purge") >= 1);
    assert_eq!(s.session("fam-purge").await.expect("session"), None, "expired family purged");
    assert_eq!(s.get_code(&c).await.expect("code"), None, "expired code purged");

    revoke_account_sessions_cases(s).await;
    keyed_refresh_cases(s).await;
}

/// A key naming family `id` (the keyed token format, [`RefreshKey`]).
fn keyed(id: &str, hash: TokenHash) -> RefreshKey {
    RefreshKey { hash, family: Some(id.to_owned()) }
}

/// Keyed refresh tokens (issue 18): the same outcomes as tokens found by hash, and a token that
/// names a live family without being one of its last two is a replay.
async fn keyed_refresh_cases<S: TokenStore + ?Sized>(s: &S) {
    let a = new_family(s, "fam-k1").await;
    let (b, c2, d) = (TokenHash::of("ref-k1-b"), TokenHash::of("ref-k1-c"), TokenHash::of("ref-k1-d"));
    let RotateOutcome::Rotated(after) = s
        .rotate_refresh(&keyed("fam-k1", a), rotation_with_grace(T0 + 100, b, "tok-k1-b"))
        .await
        .expect("rotate")
    else {
        panic!("the family's first token, keyed, rotates")
    };
    assert_eq!((after.refresh_hash, after.access_jti.as_str()), (b, "tok-k1-b"));
    assert_eq!(s.session("fam-k1").await.expect("session"), Some(after), "rotation persisted");
    assert!(s.session_by_access_jti("tok-k1-b", T0 + 101).await.expect("jti").is_some());
    assert_eq!(
        s.session_by_access_jti("tok-k1", T0 + 101).await.expect("jti"),
        None,
        "old access token dead"
    );
    assert!(matches!(
        s.rotate_refresh(&keyed("fam-k1", b), rotation_with_grace(T0 + 105, c2, "tok-k1-c"))
            .await
            .expect("again"),
        RotateOutcome::Rotated(_)
    ));
    assert_eq!(
        s.session_by_refresh(&keyed("fam-k1", b)).await.expect("by key").map(|x| x.id).as_deref(),
        Some("fam-k1"),
        "a keyed token finds its family"
    );
    // The lost response's retry: the token the latest rotation replaced, within the grace.
    let RotateOutcome::Retried(after) = s
        .rotate_refresh(&keyed("fam-k1", b), rotation_with_grace(T0 + 110, d, "tok-k1-d"))
        .await
        .expect("retry")
    else {
        panic!("the replaced token within the grace is retried")
    };
    assert_eq!(after.refresh_hash, d);
    // The undelivered successor is a replay now, and revokes the family.
    assert_eq!(
        s.rotate_refresh(&keyed("fam-k1", c2), rotation_with_grace(T0 + 111, TokenHash::of("x"), "tok-k1-x"))
            .await
            .expect("successor"),
        RotateOutcome::Replayed
    );
    assert_eq!(s.session("fam-k1").await.expect("session"), None, "replay revokes the family (AS-REF-01)");
    assert_eq!(
        s.rotate_refresh(&keyed("fam-k1", d), rotation(T0 + 112, TokenHash::of("y"), "tok-k1-y"))
            .await
            .expect("dead"),
        RotateOutcome::NotFound,
        "the current token of a revoked family is dead"
    );

    // A token two rotations back, and one that names the family but was never seen: replays.
    for (n, never_issued) in [(2, None), (3, Some(TokenHash::of("ref-k3-never-issued")))] {
        let id = format!("fam-k{n}");
        let first = new_family(s, &id).await;
        let presented = never_issued.unwrap_or(first);
        let (b, c2) = (TokenHash::of(&format!("{id}-b")), TokenHash::of(&format!("{id}-c")));
        s.rotate_refresh(&keyed(&id, first), rotation(T0 + 100, b, &format!("tok-{id}-b")))
            .await
            .expect("rotate");
        s.rotate_refresh(&keyed(&id, b), rotation(T0 + 200, c2, &format!("tok-{id}-c")))
            .await
            .expect("rotate");
        assert_eq!(
            s.rotate_refresh(&keyed(&id, presented), rotation(T0 + 300, TokenHash::of("z"), "tok-z"))
                .await
                .expect("replay"),
            RotateOutcome::Replayed,
            "{id}"
        );
        assert_eq!(s.session(&id).await.expect("session"), None, "{id}: revoked");
    }
    // A key naming no family is simply unknown, and changes nothing.
    assert_eq!(
        s.rotate_refresh(
            &keyed("fam-none", TokenHash::of("ref-none")),
            rotation(T0 + 1, TokenHash::of("n"), "tok-n")
        )
        .await
        .expect("unknown"),
        RotateOutcome::NotFound
    );
    assert_eq!(
        s.session_by_refresh(&keyed("fam-none", TokenHash::of("ref-none"))).await.expect("by key"),
        None
    );

    // A mis-bound keyed token revokes like any other (AS-REF-02).
    let first = new_family(s, "fam-k4").await;
    let mut thief = rotation(T0 + 100, TokenHash::of("ref-k4-b"), "tok-k4-b");
    thief.dpop_jkt = "another-key".to_owned();
    assert_eq!(
        s.rotate_refresh(&keyed("fam-k4", first), thief).await.expect("thief"),
        RotateOutcome::DpopKeyMismatch
    );
    assert_eq!(s.session("fam-k4").await.expect("session"), None);

    // A family whose tokens were found by hash (issued before keyed tokens) goes on keyed, and its
    // rotated tokens stay replays.
    let first = new_family(s, "fam-k5").await;
    let (b, c2) = (TokenHash::of("ref-k5-b"), TokenHash::of("ref-k5-c"));
    s.rotate_refresh(&first.into(), rotation(T0 + 100, b, "tok-k5-b")).await.expect("by hash");
    assert!(matches!(
        s.rotate_refresh(&keyed("fam-k5", b), rotation(T0 + 200, c2, "tok-k5-c")).await.expect("keyed"),
        RotateOutcome::Rotated(_)
    ));
    assert_eq!(
        s.rotate_refresh(&first.into(), rotation(T0 + 300, TokenHash::of("w"), "tok-w")).await.expect("old"),
        RotateOutcome::Replayed
    );
    assert_eq!(s.session("fam-k5").await.expect("session"), None);
}

/// A family `id` of account `sub` and client `client`, approved on `device`.
async fn family_of<S: TokenStore + ?Sized>(s: &S, id: &str, sub: &str, client: &str, device: &str) {
    let c = TokenHash::of(&format!("cod-{id}"));
    let mut code = code(c, T0 + 300);
    code.sub = sub.to_owned();
    s.put_code(code).await.expect("put code");
    let mut fam = session(id, TokenHash::of(&format!("ref-{id}")), &format!("tok-{id}"));
    (fam.sub, fam.client_id, fam.device_id) = (sub.to_owned(), client.to_owned(), Some(device.to_owned()));
    assert_eq!(s.redeem_code(&c, T0, fam).await.expect("redeem"), RedeemOutcome::Redeemed);
}

/// The account page's sign-outs: every family of one account, narrowed to one client and/or one
/// device, goes at once (its refresh token and access token with it); nobody else's does.
async fn revoke_account_sessions_cases<S: TokenStore + ?Sized>(s: &S) {
    let (carol, dave) = ("did:plc:conformancecarol000000", "did:plc:conformancedave0000000");
    let (app1, app2) =
        ("https://one.example/client-metadata.json", "https://two.example/client-metadata.json");
    family_of(s, "rv-c11", carol, app1, "dev-a").await;
    family_of(s, "rv-c21", carol, app2, "dev-a").await;
    family_of(s, "rv-c12", carol, app1, "dev-b").await;
    family_of(s, "rv-d11", dave, app1, "dev-a").await;
    let ids = |v: Vec<SessionRecord>| {
        let mut v: Vec<String> = v.into_iter().map(|x| x.id).collect();
        v.sort();
        v
    };
    assert_eq!(ids(s.sessions_for_account(carol, T0).await.expect("list")), ["rv-c11", "rv-c12", "rv-c21"]);

    // One app, every device.
    assert_eq!(s.revoke_account_sessions(carol, Some(app1), None).await.expect("app"), 2);
    assert_eq!(ids(s.sessions_for_account(carol, T0).await.expect("list")), ["rv-c21"]);
    assert_eq!(
        s.rotate_refresh(
            &TokenHash::of("ref-rv-c11").into(),
            rotation(T0 + 1, TokenHash::of("ref-rv-x"), "tok-rv-x")
        )
        .await
        .expect("refresh after revoke"),
        RotateOutcome::NotFound,
        "a revoked family's refresh token is gone"
    );
    assert_eq!(s.session_by_access_jti("tok-rv-c12", T0 + 1).await.expect("jti"), None);
    assert!(s.session("rv-d11").await.expect("other account").is_some(), "another account's family stays");

    // One device, every app.
    family_of(s, "rv-c13", carol, app1, "dev-b").await;
    assert_eq!(s.revoke_account_sessions(carol, None, Some("dev-a")).await.expect("device"), 1);
    assert_eq!(ids(s.sessions_for_account(carol, T0).await.expect("list")), ["rv-c13"]);
    assert_eq!(s.revoke_account_sessions(carol, Some(app2), Some("dev-b")).await.expect("both"), 0);

    // Everything of one account.
    assert_eq!(s.revoke_account_sessions(carol, None, None).await.expect("all"), 1);
    assert!(s.sessions_for_account(carol, T0).await.expect("list").is_empty());
    assert_eq!(s.revoke_account_sessions(carol, None, None).await.expect("again"), 0);
    assert_eq!(ids(s.sessions_for_account(dave, T0).await.expect("list")), ["rv-d11"]);
    assert_eq!(s.revoke_account_sessions(dave, None, None).await.expect("dave"), 1);
}

/// Device sessions: put/get/expiry, several accounts per device (upsert moves an account last and
/// extends the expiry, never shortens it), removing one account or the unremembered ones,
/// delete, purge.
pub async fn device_store_suite<S: DeviceStore + ?Sized>(s: &S) {
    let alice = DeviceAccount {
        did: "did:plc:conformancealice00000000".into(),
        authenticated_at: T0,
        remember: true,
        consents: Vec::new(),
        last_seen_at: T0,
        ip: None,
    };
    let bob = DeviceAccount {
        did: "did:plc:conformancebob0000000000".into(),
        authenticated_at: T0,
        remember: false,
        consents: Vec::new(),
        last_seen_at: T0,
        ip: None,
    };
    let d = DeviceSession {
        id: TokenHash::of("dev-cookie-1"),
        accounts: vec![alice.clone()],
        created_at: T0,
        expires_at: T0 + 100,
        user_agent: Some("test-agent".into()),
    };
    s.put_device(d.clone()).await.expect("put device");
    assert_eq!(s.get_device(&d.id, T0).await.expect("get"), Some(d.clone()));
    assert_eq!(s.get_device(&d.id, T0 + 100).await.expect("get expired"), None);

    assert!(s.upsert_device_account(&d.id, bob.clone(), T0 + 200, T0).await.expect("add bob"));
    let got = s.get_device(&d.id, T0).await.expect("get").expect("device");
    assert_eq!(got.accounts, vec![alice.clone(), bob.clone()], "second account added");
    assert_eq!(got.expires_at, T0 + 200, "expiry extended");
    let alice2 = DeviceAccount { authenticated_at: T0 + 5, ..alice.clone() };
    assert!(s.upsert_device_account(&d.id, alice2.clone(), T0 + 150, T0 + 5).await.expect("re-auth alice"));
    let got = s.get_device(&d.id, T0).await.expect("get").expect("device");
    assert_eq!(
        got.accounts,
        vec![bob.clone(), alice2.clone()],
        "re-authenticated account replaced, moved last"
    );
    assert_eq!(got.expires_at, T0 + 200, "expiry never shortened");
    assert!(
        !s.upsert_device_account(&TokenHash::of("no-such-device"), bob.clone(), T0 + 200, T0)
            .await
            .expect("missing"),
        "no device, no account"
    );
    assert!(
        !s.upsert_device_account(&d.id, bob.clone(), T0 + 900, T0 + 200).await.expect("expired"),
        "expired device"
    );

    // AS-AUTHZ-05: a remembered consent is stored with the account, and signing in again (an
    // entry without consents) keeps it.
    let consent = crate::store::RememberedConsent {
        client_id: "https://app.example.com/client-metadata.json".into(),
        scope: "atproto transition:generic".into(),
        granted_at: T0 + 6,
    };
    let alice3 = DeviceAccount { consents: vec![consent.clone()], ..alice2.clone() };
    assert!(s.upsert_device_account(&d.id, alice3.clone(), T0 + 150, T0 + 6).await.expect("consent"));
    assert!(s.upsert_device_account(&d.id, alice2.clone(), T0 + 150, T0 + 7).await.expect("re-sign-in"));
    let got = s.get_device(&d.id, T0).await.expect("get").expect("device");
    assert_eq!(got.accounts.last().map(|a| a.consents.clone()), Some(vec![consent]), "consent kept");
    assert!(
        got.accounts[got.accounts.len() - 1]
            .consent_covers("https://app.example.com/client-metadata.json", "atproto")
    );
    let alice2 = got.accounts.last().cloned().expect("alice");
    assert_eq!(s.remove_device_accounts(&d.id, None).await.expect("forget unremembered"), 1);
    assert_eq!(s.get_device(&d.id, T0).await.expect("get").expect("device").accounts, vec![alice2.clone()]);
    assert_eq!(s.remove_device_accounts(&d.id, Some(&alice.did)).await.expect("sign out"), 1);
    assert_eq!(s.remove_device_accounts(&d.id, Some(&alice.did)).await.expect("again"), 0);
    assert!(s.get_device(&d.id, T0).await.expect("get").expect("device").accounts.is_empty());
    assert_eq!(s.remove_device_accounts(&TokenHash::of("no-such-device"), None).await.expect("missing"), 0);

    assert!(s.delete_device(&d.id).await.expect("delete"));
    assert!(!s.delete_device(&d.id).await.expect("delete twice"));
    s.put_device(d.clone()).await.expect("put again");
    assert_eq!(s.purge_expired_devices(T0 + 100).await.expect("purge"), 1);
    assert_eq!(s.get_device(&d.id, T0).await.expect("get"), None);

    account_page_device_cases(s).await;
}

/// The account page's device queries: the devices an account is signed in on, last seen and
/// address, forgetting one app's consent everywhere, signing out everywhere.
async fn account_page_device_cases<S: DeviceStore + ?Sized>(s: &S) {
    let (erin, frank) = ("did:plc:conformanceerin00000000", "did:plc:conformancefrank0000000");
    let (app1, app2) =
        ("https://one.example/client-metadata.json", "https://two.example/client-metadata.json");
    let consent = |client: &str| crate::store::RememberedConsent {
        client_id: client.to_owned(),
        scope: "atproto".to_owned(),
        granted_at: T0,
    };
    let entry = |did: &str, consents: Vec<crate::store::RememberedConsent>| DeviceAccount {
        did: did.to_owned(),
        authenticated_at: T0,
        remember: true,
        consents,
        last_seen_at: T0,
        ip: None,
    };
    let device = |cookie: &str, accounts: Vec<DeviceAccount>, expires_at: i64| DeviceSession {
        id: TokenHash::of(cookie),
        accounts,
        created_at: T0,
        expires_at,
        user_agent: Some(format!("agent of {cookie}")),
    };
    let laptop = device("ap-laptop", vec![entry(erin, vec![consent(app1), consent(app2)])], T0 + 1000);
    let phone = device("ap-phone", vec![entry(frank, vec![]), entry(erin, vec![consent(app1)])], T0 + 1000);
    let franks = device("ap-franks", vec![entry(frank, vec![consent(app1)])], T0 + 1000);
    let old = device("ap-old", vec![entry(erin, vec![])], T0 + 10);
    for d in [&laptop, &phone, &franks, &old] {
        s.put_device(d.clone()).await.expect("put device");
    }
    let ids = |v: Vec<DeviceSession>| {
        let mut v: Vec<TokenHash> = v.into_iter().map(|d| d.id).collect();
        v.sort();
        v
    };
    let mut want = vec![laptop.id, phone.id];
    want.sort();
    assert_eq!(ids(s.devices_for_account(erin, T0 + 20).await.expect("list")), want, "live devices only");
    let listed = s.devices_for_account(frank, T0 + 20).await.expect("list");
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&franks), "devices come back whole");
    assert!(s.devices_for_account("did:plc:conformancenobody0000000", T0).await.expect("none").is_empty());

    // Last seen and address, on every account of the device.
    assert!(s.touch_device(&phone.id, T0 + 100, Some("192.0.2.7")).await.expect("touch"));
    let got = s.get_device(&phone.id, T0 + 100).await.expect("get").expect("device");
    assert!(got.accounts.iter().all(|a| a.last_seen_at == T0 + 100 && a.ip.as_deref() == Some("192.0.2.7")));
    assert!(s.touch_device(&phone.id, T0 + 400, None).await.expect("touch without address"));
    let got = s.get_device(&phone.id, T0 + 400).await.expect("get").expect("device");
    assert!(got.accounts.iter().all(|a| a.last_seen_at == T0 + 400 && a.ip.as_deref() == Some("192.0.2.7")));
    assert!(!s.touch_device(&old.id, T0 + 400, None).await.expect("expired"), "expired device");
    assert!(!s.touch_device(&TokenHash::of("ap-none"), T0, None).await.expect("missing"), "missing device");

    // Forgetting app1 for erin: on both of her devices, not frank's, not app2.
    assert_eq!(s.forget_consents(erin, app1).await.expect("forget"), 2);
    assert_eq!(s.forget_consents(erin, app1).await.expect("forget again"), 0);
    let got = s.get_device(&laptop.id, T0).await.expect("get").expect("device");
    assert_eq!(got.accounts[0].consents, vec![consent(app2)]);
    let got = s.get_device(&phone.id, T0).await.expect("get").expect("device");
    assert!(got.accounts.iter().all(|a| a.consents.is_empty()));
    let got = s.get_device(&franks.id, T0).await.expect("get").expect("device");
    assert_eq!(got.accounts[0].consents, vec![consent(app1)], "another account's consent stays");

    // Signing erin out everywhere: her entries go, frank's stay, the devices stay.
    assert_eq!(s.remove_account_everywhere(erin).await.expect("everywhere"), 3, "laptop, phone, old");
    assert!(s.devices_for_account(erin, T0).await.expect("list").is_empty());
    let got = s.get_device(&phone.id, T0).await.expect("get").expect("device");
    assert_eq!(got.accounts.iter().map(|a| a.did.as_str()).collect::<Vec<_>>(), [frank]);
    assert!(s.get_device(&laptop.id, T0).await.expect("get").expect("device").accounts.is_empty());
    assert_eq!(s.remove_account_everywhere(erin).await.expect("again"), 0);
    for d in [&laptop, &phone, &franks, &old] {
        s.delete_device(&d.id).await.expect("clean up");
    }
}

/// Replay: first use accepted, repeats refused until expiry, then the key may be reused.
pub async fn replay_store_suite<S: ReplayStore + ?Sized>(s: &S) {
    let k = [7u8; 32];
    assert!(s.check_and_record(k, T0 + 10, T0).await.expect("first"), "first use accepted");
    assert!(!s.check_and_record(k, T0 + 20, T0 + 5).await.expect("replay"), "replay refused");
    assert!(!s.check_and_record(k, T0 + 20, T0 + 9).await.expect("replay"), "still refused before expiry");
    assert!(
        s.check_and_record(k, T0 + 30, T0 + 10).await.expect("after expiry"),
        "expired record may be reused"
    );
    assert!(!s.check_and_record(k, T0 + 40, T0 + 11).await.expect("replay"), "new record holds");
    assert!(s.check_and_record([8u8; 32], T0 + 5, T0).await.expect("other key"));
    assert_eq!(s.purge_expired_replay(T0 + 6).await.expect("purge"), 1, "only the expired key is purged");
    assert!(!s.check_and_record(k, T0 + 40, T0 + 12).await.expect("replay"), "purge keeps live keys");
}

/// A pushed request with its code challenge's replay record (AS-PAR-07) in one write: both or
/// neither, and the record is the same one [`ReplayStore::check_and_record`] sees.
pub async fn request_replay_suite<S: RequestReplayStore + RequestStore + ReplayStore + ?Sized>(s: &S) {
    let k = [21u8; 32];
    let first = pending_request("req-once-1");
    assert!(s.put_request_once(first.clone(), k, T0 + 100, T0).await.expect("first"), "new challenge");
    assert_eq!(s.get_request(&first.id, T0).await.expect("get"), Some(first.clone()), "request stored");
    assert!(!s.check_and_record(k, T0 + 100, T0 + 1).await.expect("record"), "the record is a replay record");

    // A reused challenge stores nothing.
    let second = pending_request("req-once-2");
    assert!(!s.put_request_once(second.clone(), k, T0 + 100, T0 + 2).await.expect("reuse"), "reuse refused");
    assert_eq!(
        s.get_request(&second.id, T0 + 2).await.expect("get"),
        None,
        "a refused request is not stored"
    );

    // A key recorded by `check_and_record` counts too; an expired one is taken over.
    let k2 = [22u8; 32];
    assert!(s.check_and_record(k2, T0 + 10, T0).await.expect("record"));
    assert!(
        !s.put_request_once(pending_request("req-once-3"), k2, T0 + 100, T0 + 5).await.expect("live"),
        "live record"
    );
    assert!(
        s.put_request_once(pending_request("req-once-3"), k2, T0 + 100, T0 + 10).await.expect("expired"),
        "taken over"
    );

    // A request id that exists fails the write, and leaves the new key unrecorded.
    let k3 = [23u8; 32];
    assert!(
        matches!(s.put_request_once(first.clone(), k3, T0 + 100, T0 + 3).await, Err(StoreError::Conflict(_))),
        "duplicate id refused"
    );
    assert!(s.check_and_record(k3, T0 + 100, T0 + 3).await.expect("record"), "no record from a failed write");
    for id in ["req-once-1", "req-once-3"] {
        s.take_request(id, T0 + 3).await.expect("clean up");
    }
}

/// Client-metadata cache: expiry and removal.
pub async fn client_cache_suite<S: ClientMetadataCache + ?Sized>(s: &S) {
    let id = "https://app.example.com/client-metadata.json";
    assert_eq!(s.get_client(id, T0).await.expect("empty"), None);
    s.put_client(id, "{\"a\":1}", T0 + 600).await.expect("put");
    assert_eq!(s.get_client(id, T0).await.expect("get").as_deref(), Some("{\"a\":1}"));
    assert_eq!(s.get_client(id, T0 + 600).await.expect("expired"), None);
    s.put_client(id, "{\"a\":2}", T0 + 700).await.expect("replace");
    assert_eq!(s.get_client(id, T0 + 600).await.expect("get").as_deref(), Some("{\"a\":2}"));
    s.remove_client(id).await.expect("remove");
    assert_eq!(s.get_client(id, T0).await.expect("removed"), None);
}

/// Every suite, for a backend implementing every trait.
pub async fn run_all<S>(s: &S)
where
    S: AccountStore
        + RequestStore
        + TokenStore
        + DeviceStore
        + ReplayStore
        + ClientMetadataCache
        + super::FactorStore
        + RequestReplayStore,
{
    account_store_suite(s).await;
    invite_code_suite(s).await;
    request_store_suite(s).await;
    token_store_suite(s).await;
    device_store_suite(s).await;
    replay_store_suite(s).await;
    request_replay_suite(s).await;
    client_cache_suite(s).await;
    factor_store_suite(s).await;
}
