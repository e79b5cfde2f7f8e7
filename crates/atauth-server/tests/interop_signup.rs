//! Sign-up (`atauth_server::signup`, issue 16) through the router, on a real SQLite store, with the
//! DIDs registered in the reference PLC directory (`@did-plc/server` from `interop/`):
//!
//! - `prompt=create` shows the sign-up page; a new account is registered in the PLC, signed in on
//!   the device, and goes straight on to the consent screen; the app gets a code whose token is
//!   for the new DID;
//! - every bad input gets a clear message on the re-rendered form and changes nothing: no
//!   account, no invite-code use, no PLC operation (counted with the directory's `/export`);
//! - two sign-ups racing for one handle: exactly one account and one PLC operation.
//!
//! If the harness is not installed the tests **fail** and say to run `interop/setup.sh`, unless
//! `ATAUTH_SKIP_INTEROP=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use atauth_identity::http::{HttpRequest, SafeHttpClient};
use atauth_server::store::{InviteCode, SqliteStore, Stores};
use atauth_testkit::form::{encode as form, param as get, redirect_params, with_param as with};
use atauth_testkit::interop::RefPeers;
use atauth_testkit::server::*;
use http::StatusCode;
use url::Url;

const GOOD_PASSWORD: &str = "correct horse battery";

fn loopback_http() -> SafeHttpClient {
    SafeHttpClient::builder().allow_http_loopback(true).timeout(Duration::from_secs(15)).build().unwrap()
}

/// A harness on a temporary SQLite store whose PLC directory is the reference one.
struct SignUpHarness {
    h: Harness,
    plc: Url,
    _plc_proc: RefPeers,
}

impl SignUpHarness {
    /// `None` when interop tests are skipped on request.
    async fn start(invite_required: bool) -> Option<Self> {
        let dir = atauth_testkit::interop::installed()?;
        let (plc_proc, plc) = atauth_testkit::interop::start_plc(&dir, Duration::from_secs(170));
        let plc = Url::parse(&plc).unwrap();
        let directory = plc.clone();
        let h = Harness::with(move |b| {
            b.stores(Stores::single(SqliteStore::open_temp().unwrap()))
                .plc_directory(directory)
                .http_client(loopback_http())
                .invite_required(invite_required)
        })
        .await;
        Some(Self { h, plc, _plc_proc: plc_proc })
    }

    /// How many operations the PLC directory holds.
    async fn plc_ops(&self) -> usize {
        let res = loopback_http().send(HttpRequest::get(self.plc.join("/export").unwrap())).await.unwrap();
        assert_eq!(res.status, StatusCode::OK);
        String::from_utf8(res.body.to_vec()).unwrap().lines().filter(|l| !l.trim().is_empty()).count()
    }

    async fn invite(&self, code: &str, uses: u32) {
        let i = InviteCode {
            code: code.into(),
            uses_allowed: uses,
            disabled: false,
            created_at: self.h.now(),
            uses: Vec::new(),
        };
        self.h.server.stores().accounts.put_invite_code(i).await.unwrap();
    }

    async fn remaining(&self, code: &str) -> u32 {
        self.h.server.stores().accounts.invite_code(code).await.unwrap().unwrap().remaining()
    }

    async fn exists(&self, handle: &str) -> bool {
        self.h.server.stores().accounts.account_by_handle(handle).await.unwrap().is_some()
    }
}

/// PAR for `prompt=create` without a `login_hint`; returns the `request_uri`.
async fn par_create(h: &Harness, c: &TestClient) -> String {
    let p = with(&with(&c.par_params(), "login_hint", None), "prompt", Some("create"));
    let r = c.par_with(h, &p).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    r.body["request_uri"].as_str().unwrap().to_owned()
}

/// The sign-up form's fields of `page` (hidden ones included) with these values.
fn sign_up_fields(
    page: &Resp,
    name: &str,
    email: &str,
    password: &str,
    invite: &str,
) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = ["client_id", "request_uri", "csrf_token", "domain"]
        .iter()
        .filter_map(|k| hidden(page, k).map(|v| ((*k).to_owned(), v)))
        .collect();
    for (k, v) in [("handle", name), ("email", email), ("password", password), ("invite_code", invite)] {
        f.push((k.to_owned(), v.to_owned()));
    }
    f
}

async fn post(b: &mut Browser<'_>, path: &str, fields: &[(String, String)]) -> Resp {
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    b.post(path, &pairs).await
}

/// The scope inputs the consent form submits.
fn ticked_scopes(page: &Resp) -> Vec<String> {
    page.raw
        .split("name=\"scope\" value=\"")
        .skip(1)
        .map(|s| s.split_once('"').unwrap().0.to_owned())
        .collect()
}

/// The form's error message (the alert), if any.
fn alert(page: &Resp) -> &str {
    page.raw
        .split_once("role=\"alert\" id=\"form-error\">")
        .and_then(|(_, rest)| rest.split_once("</div>"))
        .map_or("<no alert>", |(m, _)| m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_prompt_create_signs_up_registers_the_did_and_goes_on_to_consent() {
    let Some(s) = SignUpHarness::start(false).await else { return };
    let h = &s.h;
    let c = TestClient::loopback();
    let uri = par_create(h, &c).await;
    let mut b = Browser::new(h);
    let page = b.open(&c.client_id, &uri).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.raw);
    assert!(page.raw.contains("<h1>Create an account</h1>"), "prompt=create shows sign-up: {}", page.raw);
    for label in ["for=\"handle\"", "for=\"email\"", "for=\"password\"", "for=\"invite_code\""] {
        assert!(page.raw.contains(label), "every field is labelled: {label}");
    }
    assert!(page.raw.contains("Invite code <span class=\"optional\">(optional)</span>"));
    assert_eq!(hidden(&page, "domain").as_deref(), Some(".test"));
    let before = s.plc_ops().await;

    let fields = sign_up_fields(&page, "Carol", "Carol@Example.com", GOOD_PASSWORD, "");
    let r = post(&mut b, "/oauth/authorize/sign-up", &fields).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
    let account = h.server.stores().accounts.account_by_handle("carol.test").await.unwrap().unwrap();
    assert_eq!(account.email.as_deref(), Some("carol@example.com"));
    let loc = r.header("location").unwrap().to_owned();
    assert!(loc.contains(&format!("account={}", account.did.replace(':', "%3A"))), "{loc}");
    assert_eq!(s.plc_ops().await, before + 1, "one genesis operation");

    // The PLC serves the document we meant.
    let doc: serde_json::Value = loopback_http()
        .get_json_exact_200_with_types(
            &s.plc.join(&format!("/{}", account.did)).unwrap(),
            64 * 1024,
            &["application/json", "application/did+ld+json"],
        )
        .await
        .unwrap();
    assert_eq!(doc["alsoKnownAs"][0], "at://carol.test");

    // Straight on to consent for the new account, then a code for it.
    let consent = b.get(&loc).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.raw);
    assert!(consent.raw.contains("Allow access to your account?"), "{}", consent.raw);
    assert!(consent.raw.contains("@carol.test"));
    let scopes = ticked_scopes(&consent);
    let mut f = vec![
        ("client_id".to_owned(), hidden(&consent, "client_id").unwrap()),
        ("request_uri".to_owned(), hidden(&consent, "request_uri").unwrap()),
        ("csrf_token".to_owned(), hidden(&consent, "csrf_token").unwrap()),
        ("account".to_owned(), account.did.clone()),
        ("decision".to_owned(), "allow".to_owned()),
    ];
    f.extend(scopes.into_iter().map(|v| ("scope".to_owned(), v)));
    let r = post(&mut b, "/oauth/authorize/consent", &f).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
    let params = redirect_params(r.header("location").unwrap());
    let code = get(&params, "code").expect("a code").to_owned();
    let t = c.token_with(h, &c.code_params(&code)).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.raw);
    assert_eq!(t.body["sub"], account.did, "the token is for the new account");

    // Replaying the sign-up form after the request was decided: the request is gone, nothing new.
    let replay = post(&mut b, "/oauth/authorize/sign-up", &fields).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.raw);
    assert_eq!(replay.page_code(), "invalid_request_uri");
    assert_eq!(s.plc_ops().await, before + 1, "no second PLC operation");

    // The standalone page works too, and signs the browser in on the account page.
    let mut b2 = Browser::new(h);
    let page = b2.get("/account/sign-up").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.raw);
    assert!(!page.raw.contains("name=\"remember\""), "the account page always remembers");
    let fields = sign_up_fields(&page, "dora", "dora@example.com", GOOD_PASSWORD, "");
    let r = post(&mut b2, "/account/sign-up", &fields).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
    let page = b2.get(r.header("location").unwrap()).await;
    assert!(page.raw.contains("Your account is ready"), "{}", page.raw);
    assert!(page.raw.contains("@dora.test"));
    assert_eq!(s.plc_ops().await, before + 2);
}

/// A bad sign-up: what it is, the form's fields, the status, the message, the field it is about.
type Case<'a> = (&'a str, Vec<(String, String)>, StatusCode, &'a str, Option<&'a str>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_bad_sign_ups_get_a_clear_message_and_change_nothing() {
    let Some(s) = SignUpHarness::start(true).await else { return };
    let h = &s.h;
    s.invite("good1-aaaaa-bbbbb", 1).await;
    s.invite("spent-aaaaa-bbbbb", 1).await;
    s.invite("gone0-aaaaa-bbbbb", 3).await;
    h.server.stores().accounts.disable_invite_code("gone0-aaaaa-bbbbb").await.unwrap();
    let mut b = Browser::new(h);
    let page = b.get("/account/sign-up").await;
    assert!(page.raw.contains("This server is invite-only"), "{}", page.raw);
    assert!(
        page.raw.contains("id=\"invite_code\"")
            && page.raw.contains(" required aria-describedby=\"invite-hint\"")
    );
    // Spend one code on a real sign-up first (its form is replayed below).
    let spend = sign_up_fields(&page, "erin", "erin@example.com", GOOD_PASSWORD, "spent-aaaaa-bbbbb");
    let r = post(&mut b, "/account/sign-up", &spend).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
    assert_eq!(s.remaining("spent-aaaaa-bbbbb").await, 0);
    let ops = s.plc_ops().await;

    let code = "good1-aaaaa-bbbbb";
    let cases: Vec<Case<'_>> = vec![
        (
            "taken handle",
            sign_up_fields(&page, "alice", "new@example.com", GOOD_PASSWORD, code),
            StatusCode::CONFLICT,
            "This handle is already taken. Try another one.",
            Some("handle"),
        ),
        (
            "handle outside the server's domains",
            sign_up_fields(&page, "frank.example.com", "frank@example.com", GOOD_PASSWORD, code),
            StatusCode::BAD_REQUEST,
            "Handles on this server end with .test.",
            Some("handle"),
        ),
        (
            "invalid handle",
            sign_up_fields(&page, "-frank-", "frank@example.com", GOOD_PASSWORD, code),
            StatusCode::BAD_REQUEST,
            "This handle is not valid. Use letters, digits and hyphens, not starting or ending with a hyphen.",
            Some("handle"),
        ),
        (
            "handle name too short",
            sign_up_fields(&page, "fr", "frank@example.com", GOOD_PASSWORD, code),
            StatusCode::BAD_REQUEST,
            "The name in your handle must be 3 to 18 characters, without dots.",
            Some("handle"),
        ),
        (
            "no handle",
            sign_up_fields(&page, "", "frank@example.com", GOOD_PASSWORD, code),
            StatusCode::BAD_REQUEST,
            "Choose a handle.",
            Some("handle"),
        ),
        (
            "invalid email",
            sign_up_fields(&page, "frank", "frank-at-example", GOOD_PASSWORD, code),
            StatusCode::BAD_REQUEST,
            "Enter a valid email address, like name@example.com.",
            Some("email"),
        ),
        (
            "email in use",
            sign_up_fields(&page, "frank", "erin@example.com", GOOD_PASSWORD, code),
            StatusCode::CONFLICT,
            "This email address is already used by another account. Sign in with it instead.",
            Some("email"),
        ),
        (
            "short password",
            sign_up_fields(&page, "frank", "frank@example.com", "x9!k", code),
            StatusCode::BAD_REQUEST,
            "Use at least 8 characters for your password.",
            Some("password"),
        ),
        (
            "common password",
            sign_up_fields(&page, "frank", "frank@example.com", "Password123", code),
            StatusCode::BAD_REQUEST,
            "This password is one of the most common ones. Choose something harder to guess.",
            Some("password"),
        ),
        (
            "sequence",
            sign_up_fields(&page, "frank", "frank@example.com", "12345678", code),
            StatusCode::BAD_REQUEST,
            "Your password is a simple sequence. Choose something harder to guess.",
            Some("password"),
        ),
        (
            "repetitive password",
            sign_up_fields(&page, "frank", "frank@example.com", "aaaabbbb", code),
            StatusCode::BAD_REQUEST,
            "Use at least 5 different characters in your password.",
            Some("password"),
        ),
        (
            "password with the handle",
            sign_up_fields(&page, "frank", "f@example.com", "i-am-frank-99", code),
            StatusCode::BAD_REQUEST,
            "Do not use your handle or email address in your password.",
            Some("password"),
        ),
        (
            "missing invite code",
            sign_up_fields(&page, "frank", "frank@example.com", GOOD_PASSWORD, ""),
            StatusCode::BAD_REQUEST,
            "This server is invite-only. Enter your invite code.",
            Some("invite_code"),
        ),
        (
            "unknown invite code",
            sign_up_fields(&page, "frank", "frank@example.com", GOOD_PASSWORD, "nope0-aaaaa-bbbbb"),
            StatusCode::BAD_REQUEST,
            "This invite code is not valid. Check it and try again.",
            Some("invite_code"),
        ),
        (
            "used invite code",
            sign_up_fields(&page, "frank", "frank@example.com", GOOD_PASSWORD, "SPENT-aaaaa-bbbbb "),
            StatusCode::BAD_REQUEST,
            "This invite code has already been used.",
            Some("invite_code"),
        ),
        (
            "disabled invite code",
            sign_up_fields(&page, "frank", "frank@example.com", GOOD_PASSWORD, "gone0-aaaaa-bbbbb"),
            StatusCode::BAD_REQUEST,
            "This invite code is no longer valid.",
            Some("invite_code"),
        ),
        (
            "replayed form of a sign-up that succeeded",
            spend.clone(),
            StatusCode::CONFLICT,
            "This handle is already taken. Try another one.",
            Some("handle"),
        ),
    ];
    for (what, fields, status, message, field) in cases {
        let r = post(&mut b, "/account/sign-up", &fields).await;
        assert_eq!(r.status, status, "{what}: {}", r.raw);
        assert_eq!(alert(&r), message, "{what}");
        if let Some(field) = field {
            assert!(
                r.raw.contains(&format!("id=\"{field}\"")) && r.raw.contains("aria-invalid=\"true\""),
                "{what}: the field is marked"
            );
        }
        assert!(!r.raw.contains(GOOD_PASSWORD), "{what}: the password is never echoed");
        assert!(!s.exists("frank.test").await, "{what}: no account");
        assert_eq!(s.remaining(code).await, 1, "{what}: the invite code keeps its use");
        assert_eq!(s.plc_ops().await, ops, "{what}: no PLC operation");
    }
    // What was typed stays (the password aside).
    let r =
        post(&mut b, "/account/sign-up", &sign_up_fields(&page, "frank", "frank@example.com", "short", code))
            .await;
    assert!(r.raw.contains("value=\"frank\"") && r.raw.contains("value=\"frank@example.com\""));
    assert!(r.raw.contains(&format!("value=\"{code}\"")));

    // Forged posts: refused before anything is read.
    let good = sign_up_fields(&page, "frank", "frank@example.com", GOOD_PASSWORD, code);
    let mut stranger = Browser::new(h);
    let _ = stranger.get("/account/sign-up").await;
    let r = post(&mut stranger, "/account/sign-up", &good).await;
    assert_eq!(
        (r.status, r.page_code()),
        (StatusCode::FORBIDDEN, "csrf_token_invalid"),
        "another browser's token"
    );
    let no_token: Vec<(String, String)> = good.iter().filter(|(k, _)| k != "csrf_token").cloned().collect();
    let r = post(&mut b, "/account/sign-up", &no_token).await;
    assert_eq!((r.status, r.page_code()), (StatusCode::FORBIDDEN, "csrf_token_invalid"));
    let cross_site = http::Request::post("/account/sign-up")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .header("cookie", b.cookie.clone().unwrap())
        .body(axum::body::Body::from(form(
            &good.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(),
        )))
        .unwrap();
    let r = h.send(cross_site).await;
    assert_eq!((r.status, r.page_code()), (StatusCode::FORBIDDEN, "cross_origin_request"));
    assert!(!s.exists("frank.test").await, "no account from a forged post");
    assert_eq!(s.remaining(code).await, 1);
    assert_eq!(s.plc_ops().await, ops);

    // The same form, sent properly, works and spends the code.
    let r = post(&mut b, "/account/sign-up", &good).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.raw);
    assert!(s.exists("frank.test").await);
    assert_eq!(s.remaining(code).await, 0);
    assert_eq!(s.plc_ops().await, ops + 1);
    let listed = h.server.stores().accounts.invite_code(code).await.unwrap().unwrap();
    let frank = h.server.stores().accounts.account_by_handle("frank.test").await.unwrap().unwrap();
    assert_eq!(listed.uses.iter().map(|u| u.did.as_str()).collect::<Vec<_>>(), [frank.did.as_str()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_two_sign_ups_racing_for_one_handle_make_one_account() {
    let Some(s) = SignUpHarness::start(true).await else { return };
    let h = &s.h;
    s.invite("race1-aaaaa-bbbbb", 1).await;
    s.invite("race2-aaaaa-bbbbb", 1).await;
    let ops = s.plc_ops().await;
    let mut b1 = Browser::new(h);
    let mut b2 = Browser::new(h);
    let p1 = b1.get("/account/sign-up").await;
    let p2 = b2.get("/account/sign-up").await;
    let f1 = sign_up_fields(&p1, "grace", "grace1@example.com", GOOD_PASSWORD, "race1-aaaaa-bbbbb");
    let f2 = sign_up_fields(&p2, "grace", "grace2@example.com", "another good one", "race2-aaaaa-bbbbb");
    let (r1, r2) =
        tokio::join!(post(&mut b1, "/account/sign-up", &f1), post(&mut b2, "/account/sign-up", &f2));
    let mut statuses = [r1.status, r2.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::SEE_OTHER, StatusCode::CONFLICT], "{} / {}", r1.raw, r2.raw);
    let loser = if r1.status == StatusCode::CONFLICT { &r1 } else { &r2 };
    assert_eq!(alert(loser), "This handle is already taken. Try another one.");
    let grace = h.server.stores().accounts.account_by_handle("grace.test").await.unwrap().unwrap();
    let won_with = if r1.status == StatusCode::SEE_OTHER { "race1-aaaaa-bbbbb" } else { "race2-aaaaa-bbbbb" };
    let lost_with = if won_with == "race1-aaaaa-bbbbb" { "race2-aaaaa-bbbbb" } else { "race1-aaaaa-bbbbb" };
    assert_eq!(s.remaining(won_with).await, 0);
    assert_eq!(s.remaining(lost_with).await, 1, "the loser's code is not spent");
    assert_eq!(s.plc_ops().await, ops + 1, "one DID registered: the loser waited and saw the handle taken");
    // The winner's email is the one stored: no half-written account.
    let emails = ["grace1@example.com", "grace2@example.com"];
    assert!(emails.contains(&grace.email.as_deref().unwrap()));
    let other = emails.iter().find(|e| Some(**e) != grace.email.as_deref()).unwrap();
    assert!(h.server.stores().accounts.account_by_email(other).await.unwrap().is_none());

    // The same race through the core, many at once.
    let server = Arc::new(h.server.clone());
    s.invite("many0-aaaaa-bbbbb", 10).await;
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let server = server.clone();
            tokio::spawn(async move {
                server
                    .sign_up(
                        atauth_server::signup::SignUp {
                            handle: "hank.test".into(),
                            email: format!("hank{i}@example.com"),
                            password: atauth_crypto::SecretString::new(GOOD_PASSWORD),
                            invite_code: Some("many0-aaaaa-bbbbb".into()),
                        },
                        None,
                    )
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(a) => {
                won += 1;
                assert_eq!(a.handle, "hank.test");
            }
            Err(atauth_server::account::CreateAccountError::HandleTaken) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(s.remaining("many0-aaaaa-bbbbb").await, 9, "one use taken");
    assert_eq!(s.plc_ops().await, ops + 2);
}

/// Two server instances on one Postgres database (issue 14's scale-out) racing sign-ups for one
/// handle with one invite code: the in-process wait does not span instances, so the store decides.
/// Exactly one account; every loser gets "handle taken" and its invite-code use is rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_two_instances_on_one_postgres_make_one_account_per_handle() {
    use atauth_server::store::postgres::testing::TestDatabase;
    let Some(dir) = atauth_testkit::interop::installed() else { return };
    let (_plc_proc, plc) = atauth_testkit::interop::start_plc(&dir, Duration::from_secs(170));
    let plc = Url::parse(&plc).unwrap();
    let db = TestDatabase::create().await;
    let clock = Arc::new(atauth_crypto::ManualClock::at_unix(T0));
    let mut servers = Vec::new();
    for _ in 0..2 {
        let server = builder(&clock)
            .stores(Stores::single(db.store().await))
            .plc_directory(plc.clone())
            .http_client(loopback_http())
            .build()
            .unwrap();
        servers.push(server);
    }
    let invite = InviteCode {
        code: "pgrace-aaaaa-bbbbb".into(),
        uses_allowed: 10,
        disabled: false,
        created_at: T0 as i64,
        uses: Vec::new(),
    };
    servers[0].stores().accounts.put_invite_code(invite).await.unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let server = servers[i % 2].clone();
            tokio::spawn(async move {
                server
                    .sign_up(
                        atauth_server::signup::SignUp {
                            handle: "ivy.test".into(),
                            email: format!("ivy{i}@example.com"),
                            password: atauth_crypto::SecretString::new(GOOD_PASSWORD),
                            invite_code: Some("pgrace-aaaaa-bbbbb".into()),
                        },
                        None,
                    )
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(a) => winners.push(a),
            Err(atauth_server::account::CreateAccountError::HandleTaken) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "one account per handle");
    for s in &servers {
        let stored = s.stores().accounts.account_by_handle("ivy.test").await.unwrap().unwrap();
        assert_eq!(stored.did, winners[0].did, "both instances see the winner");
    }
    let code = servers[1].stores().accounts.invite_code("pgrace-aaaaa-bbbbb").await.unwrap().unwrap();
    assert_eq!(code.uses.len(), 1, "the losers' uses were rolled back");
    assert_eq!(code.uses[0].did, winners[0].did);
}
