//! Permission sets at the authorization server (SCOPE-10/11/12, AS-PAR-06): `include:` accepted at
//! PAR when its set resolves, refused with `invalid_scope` (and nothing recorded) when it does not,
//! the token `scope` expanded at issuance and recomputed at refresh.

use std::sync::{Arc, Mutex};

use atauth_identity::Nsid;
use atauth_identity::lexicon::{
    AtprotoLexiconResolver, LexiconOrigin, LexiconResolveError, LexiconResolver, ResolvedLexicon,
};
use atauth_testkit::dns::TestDnsServer;
use atauth_testkit::fs::TempDir;
use http::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

const SET: &str = "app.example.authFull";
const APPVIEW: &str = "did:web:api.bsky.app#bsky_appview";

/// A permission set as its author publishes it: two repo entries, an rpc entry with `aud: "*"` and
/// one that inherits the `include:`'s `aud`.
fn set_document() -> Value {
    json!({
        "lexicon": 1,
        "id": SET,
        "defs": { "main": {
            "type": "permission-set",
            "title": "Full app access",
            "detail": "Everything the app needs.",
            "permissions": [
                { "type": "permission", "resource": "repo", "collection": ["app.example.post", "app.example.like"] },
                { "type": "permission", "resource": "repo", "collection": ["app.example.profile"], "action": ["update"] },
                { "type": "permission", "resource": "rpc", "lxm": ["app.example.getFeed"], "aud": "*" },
                { "type": "permission", "resource": "rpc", "lxm": ["app.example.sub.getThing", "app.example.getOther"], "inheritAud": true }
            ]
        } }
    })
}

/// The scope of `include:app.example.authFull?aud=<appview>`, expanded as the reference does
/// (SCOPE-12; the same strings as the `typical` vector of `@atproto/oauth-scopes`).
const EXPANDED: &str = "repo?collection=app.example.like&collection=app.example.post \
    repo:app.example.profile?action=update rpc:app.example.getFeed?aud=* \
    rpc?lxm=app.example.getOther&lxm=app.example.sub.getThing&aud=did:web:api.bsky.app%23bsky_appview";

fn include_scope() -> String {
    format!("include:{SET}?aud={}", APPVIEW.replace('#', "%23"))
}

/// A loopback client declaring `scope` (its client id carries it) and asking for all of it.
fn client_with_scope(scope: &str) -> (TestClient, Vec<(&'static str, String)>) {
    let client_id = format!(
        "http://localhost?{}",
        form(&[("redirect_uri", LOOPBACK_REDIRECT), ("scope", scope)]).replace('+', "%20")
    );
    let c = TestClient { client_id, ..TestClient::loopback() };
    let params = with(&with(&c.par_params(), "client_id", Some(&c.client_id)), "scope", Some(scope));
    (c, params)
}

async fn pinned_harness() -> (Harness, TempDir) {
    let dir = TempDir::new("lexicons");
    std::fs::write(dir.join("authFull.json"), set_document().to_string()).unwrap();
    let h = Harness::with(|b| b.lexicon_dir(dir.path())).await;
    (h, dir)
}

#[tokio::test]
async fn scope10_pinned_set_is_accepted_and_scope12_the_token_scope_is_expanded() {
    let (h, _dir) = pinned_harness().await;
    let scope = format!("atproto {}", include_scope());
    let (c, params) = client_with_scope(&scope);
    let r = c.par_with(&h, &params).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    let uri = r.s("request_uri");
    let code = get(&c.consent(&h, &uri, "alice.test").await, "code").unwrap().to_owned();
    let r = c.token_with(&h, &c.code_params(&code)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let expected = format!("{EXPANDED} atproto");
    assert_eq!(r.s("scope"), expected, "include: replaced by what the set grants, then the rest");
    let claims: Value = serde_json::from_slice(
        &atauth_crypto::b64::decode(r.s("access_token").split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["scope"], expected.as_str(), "the access token carries the expanded scope");
    // The family keeps the granted scope, `include:` and all, so refresh can recompute it.
    let sessions = h.server.stores().tokens.sessions_for_account(ALICE_DID, h.now()).await.unwrap();
    assert_eq!(sessions[0].scope, scope);
    let session = c.get_session(&h, &r.s("access_token")).await;
    assert_eq!(session.status, StatusCode::OK, "{}", session.raw);
}

#[tokio::test]
async fn scope10_unresolvable_set_is_invalid_scope_naming_it_and_records_nothing() {
    // The real network path: `_lexicon` TXT through a UDP DNS server that has no such record.
    let dns = TestDnsServer::start().await;
    let h = Harness::with(|b| {
        let http = atauth_identity::SafeHttpClient::builder().build().unwrap();
        let dids = atauth_identity::AtprotoDidResolver::new(http.clone());
        let network = AtprotoLexiconResolver::new(Arc::new(dns.txt_lookup()), Arc::new(dids), http)
            .tld_policy(atauth_identity::TldPolicy::development());
        b.lexicon_resolver(Arc::new(network))
    })
    .await;
    let scope = "atproto include:app.example.authFull";
    let (c, params) = client_with_scope(scope);
    let r = c.par_with(&h, &params).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_scope");
    let description = r.body["error_description"].as_str().unwrap();
    assert!(description.contains(SET), "the description names the set: {description}");
    assert!(dns.queries().iter().any(|q| q.starts_with("_lexicon.example.app")), "{:?}", dns.queries());
    // Nothing recorded: the same PKCE challenge goes through without the include.
    let plain = with(&params, "scope", Some("atproto"));
    let ok = c.par_with(&h, &plain).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.raw);
}

#[tokio::test]
async fn scope10_a_document_that_is_not_a_permission_set_is_invalid_scope() {
    let dir = TempDir::new("lexicons");
    let mut doc = set_document();
    doc["defs"]["main"]["type"] = json!("query");
    std::fs::write(dir.join("notaset.json"), doc.to_string()).unwrap();
    let h = Harness::with(|b| b.lexicon_dir(dir.path())).await;
    let (c, params) = client_with_scope("atproto include:app.example.authFull");
    let r = c.par_with(&h, &params).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_scope");
    assert!(r.body["error_description"].as_str().unwrap().contains("invalid"), "{}", r.raw);
}

#[tokio::test]
async fn include_not_declared_by_the_client_is_invalid_scope() {
    let (h, _dir) = pinned_harness().await;
    let (c, params) = client_with_scope("atproto transition:generic");
    let params = with(&params, "scope", Some(&format!("atproto {}", include_scope())));
    c.par_with(&h, &params).await.assert_error(StatusCode::BAD_REQUEST, "invalid_scope");
}

/// A publisher whose set can be changed between requests (the network path itself is tested in
/// atauth-identity and by the interop suite; here only when the server asks matters).
struct ChangingSet(Mutex<Value>);

#[async_trait::async_trait]
impl LexiconResolver for ChangingSet {
    async fn resolve_lexicon(&self, nsid: &Nsid) -> Result<ResolvedLexicon, LexiconResolveError> {
        Ok(ResolvedLexicon {
            nsid: nsid.clone(),
            document: Arc::new(self.0.lock().unwrap().clone()),
            origin: LexiconOrigin::LocalFile { path: "test".into() },
        })
    }
    async fn resolve_lexicon_for_existing_session(
        &self,
        nsid: &Nsid,
    ) -> Result<ResolvedLexicon, LexiconResolveError> {
        self.resolve_lexicon(nsid).await
    }
}

#[tokio::test]
async fn scope11_refresh_recomputes_the_token_scope_from_the_current_set() {
    let publisher = Arc::new(ChangingSet(Mutex::new(set_document())));
    let resolver = publisher.clone();
    let h = Harness::with(move |b| b.lexicon_resolver(resolver)).await;
    let scope = format!("atproto include:{SET}");
    let (c, params) = client_with_scope(&scope);
    let r = c.par_with(&h, &params).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    let code = get(&c.consent(&h, &r.s("request_uri"), "alice.test").await, "code").unwrap().to_owned();
    let tokens = c.token_with(&h, &c.code_params(&code)).await;
    assert!(tokens.s("scope").contains("repo:app.example.profile?action=update"), "{}", tokens.raw);

    // The author drops the profile permission: the next refresh grants what the set says now.
    publisher.0.lock().unwrap()["defs"]["main"]["permissions"].as_array_mut().unwrap().remove(1);
    let r = c.token_with(&h, &c.refresh_params(&tokens.s("refresh_token"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(
        r.s("scope"),
        "repo?collection=app.example.like&collection=app.example.post rpc:app.example.getFeed?aud=* atproto"
    );
}

/// Logs `did` (handle `handle`) in with a client that declared and asked for `scope`; returns the
/// client and the access token.
async fn login_with_scope(h: &Harness, scope: &str, handle: &str) -> (TestClient, String) {
    let (c, params) = client_with_scope(scope);
    let params = with(&params, "login_hint", Some(handle));
    let r = c.par_with(h, &params).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    let code = get(&c.consent(h, &r.s("request_uri"), handle).await, "code").unwrap().to_owned();
    let r = c.token_with(h, &c.code_params(&code)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    (c, r.s("access_token"))
}

async fn get_service_auth(h: &Harness, c: &TestClient, at: &str, query: &str) -> Resp {
    let path = "/xrpc/com.atproto.server.getServiceAuth";
    let req = http::Request::get(format!("{path}?{query}"))
        .header("authorization", format!("DPoP {at}"))
        .header("dpop", c.proof(h, "GET", path, Some(at)))
        .body(axum::body::Body::empty())
        .unwrap();
    h.send(req).await
}

/// RS-SCOPE-01: getServiceAuth for an OAuth caller needs `rpc:<lxm>?aud=<aud>` (SCOPE-06); another
/// method or audience is 403 `ScopeMissingError` naming the scope that would allow it.
#[tokio::test]
async fn rs_scope_01_get_service_auth_follows_rpc_permissions() {
    let h = Harness::new().await;
    let carol = "did:plc:carol00000000000000000000";
    let key = atauth_crypto::PrivateKey::generate(atauth_crypto::Algorithm::Es256k);
    let record = atauth_server::store::AccountRecord {
        signing_key_hex: Some(key.to_hex()),
        ..account_record(carol, "carol.test", "carol@example.test")
    };
    h.server.stores().accounts.create_account(record).await.unwrap();
    let feed = "did:web:feed.example.com%23bsky_fg";
    let scope = format!("atproto rpc:app.bsky.feed.getFeedSkeleton?aud={feed}");
    let (c, at) = login_with_scope(&h, &scope, "carol.test").await;

    let ok = get_service_auth(&h, &c, &at, &format!("aud={feed}&lxm=app.bsky.feed.getFeedSkeleton")).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.raw);
    assert!(!ok.s("token").is_empty());

    let other_method =
        get_service_auth(&h, &c, &at, &format!("aud={feed}&lxm=app.bsky.feed.getTimeline")).await;
    other_method.assert_error(StatusCode::FORBIDDEN, "ScopeMissingError");
    assert_eq!(
        other_method.body["message"],
        "Missing required scope \"rpc:app.bsky.feed.getTimeline?aud=did:web:feed.example.com%23bsky_fg\""
    );
    let other_aud = "did:web:other.example.com%23bsky_fg";
    let r =
        get_service_auth(&h, &c, &at, &format!("aud={other_aud}&lxm=app.bsky.feed.getFeedSkeleton")).await;
    r.assert_error(StatusCode::FORBIDDEN, "ScopeMissingError");
    // Without `lxm` the token would be good for any method: that needs `rpc:*`.
    get_service_auth(&h, &c, &at, &format!("aud={feed}"))
        .await
        .assert_error(StatusCode::FORBIDDEN, "ScopeMissingError");
}

/// LEG-08, RS-SCOPE-01: getSession shows the email only when the token may read it
/// (`account:email`, SCOPE-08; `transition:email`, SCOPE-03).
#[tokio::test]
async fn rs_scope_01_get_session_shows_the_email_only_with_account_email() {
    let h = Harness::new().await;
    let (c, at) = login_with_scope(&h, "atproto account:email", "alice.test").await;
    let r = c.get_session(&h, &at).await;
    assert_eq!(
        (r.status, r.body["email"].as_str()),
        (StatusCode::OK, Some("alice@example.test")),
        "{}",
        r.raw
    );

    let (c, at) = login_with_scope(&h, "atproto repo:*", "alice.test").await;
    let r = c.get_session(&h, &at).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert!(r.body.get("email").is_none(), "no email without account:email: {}", r.raw);
}

/// RS-SCOPE-01 for a PDS author's own route: the `DpopAuth` extractor gives the token's
/// permissions, `require(&Access)?` answers the reference's 403 JSON when one is missing.
#[tokio::test]
async fn rs_scope_01_require_in_a_pds_authors_handler() {
    use atauth_oauth::scope::Access;
    use atauth_server::web::xrpc::{DpopAuth, require_dpop_auth};
    async fn post(DpopAuth(access): DpopAuth) -> Result<String, atauth_server::resource::ScopeMissing> {
        access.require(&Access::repo_create("app.bsky.feed.post"))?;
        access.require(&Access::blob("image/png"))?;
        Ok(access.did)
    }
    let h = Harness::new().await;
    let (c, at) = login_with_scope(&h, "atproto repo:app.bsky.feed.post?action=create", "alice.test").await;
    let app: axum::Router = axum::Router::new()
        .route("/xrpc/com.example.post", axum::routing::post(post))
        .route_layer(axum::middleware::from_fn_with_state(h.server.clone(), require_dpop_auth))
        .with_state::<()>(h.server.clone());
    let path = "/xrpc/com.example.post";
    let req = http::Request::post(path)
        .header("authorization", format!("DPoP {at}"))
        .header("dpop", c.proof(&h, "POST", path, Some(&at)))
        .body(axum::body::Body::empty())
        .unwrap();
    let r = send(&app, req).await;
    r.assert_error(StatusCode::FORBIDDEN, "ScopeMissingError");
    assert_eq!(r.body["message"], "Missing required scope \"blob:image/png\"", "the first check passed");
}

/// The consent screen names a permission set as its author does (title, detail) and says what it
/// grants in plain words, with the raw scope as small print (SCOPE-10, AS-AUTHZ-04).
#[tokio::test]
async fn consent_screen_shows_the_set_title_detail_and_what_it_grants() {
    let (h, _dir) = pinned_harness().await;
    let scope = format!("atproto {}", include_scope());
    let (c, params) = client_with_scope(&scope);
    let r = c.par_with(&h, &params).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    let mut b = Browser::new(&h);
    let page = b.open(&c.client_id, &r.s("request_uri")).await;
    let consent = crate::ui::signed_in_consent(&mut b, &page, "alice.test", false).await;
    assert!(consent.raw.contains("Full app access"), "the set's title: {}", consent.raw);
    assert!(consent.raw.contains("Everything the app needs."), "the set's detail");
    assert!(consent.raw.contains("It allows: "), "what it grants, in words");
    assert!(consent.raw.contains("app.example.profile"), "the granted collections are named");
}

/// SCOPE-10 bad input: a `_lexicon` TXT record whose DID names a PDS on a private address. The
/// resolver refuses to fetch from it (the production HTTP policy), and PAR answers `invalid_scope`
/// naming the set and the refused destination, not a server error; nothing is recorded.
#[tokio::test]
async fn scope10_a_set_hosted_on_a_private_address_is_invalid_scope_not_a_server_error() {
    let dns = TestDnsServer::start().await;
    let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
    dns.set_txt("_lexicon.example.app", &[&format!("did={did}")]);
    let h = Harness::with(|b| {
        let http = atauth_identity::SafeHttpClient::builder().build().unwrap();
        let dids = atauth_identity::MemoryDidResolver::new().with(atauth_testkit::identity::did_doc(
            did,
            "publisher.example.app",
            "https://10.0.0.7",
        ));
        let network = AtprotoLexiconResolver::new(Arc::new(dns.txt_lookup()), Arc::new(dids), http)
            .tld_policy(atauth_identity::TldPolicy::development());
        b.lexicon_resolver(Arc::new(network))
    })
    .await;
    let (c, params) = client_with_scope(&format!("atproto include:{SET}"));
    let r = c.par_with(&h, &params).await;
    r.assert_error(StatusCode::BAD_REQUEST, "invalid_scope");
    let description = r.body["error_description"].as_str().unwrap();
    assert!(description.contains(SET), "the description names the set: {description}");
    assert!(description.contains("10.0.0.7"), "and the refused PDS: {description}");
    assert_eq!(dns.queries(), ["_lexicon.example.app."]);
    let plain = with(&params, "scope", Some("atproto"));
    let ok = c.par_with(&h, &plain).await;
    assert_eq!(ok.status, StatusCode::CREATED, "nothing recorded: {}", ok.raw);
}

/// SCOPE-10: a set grants only NSIDs under its own authority (`app.example.*` for
/// `app.example.authFull`). An entry naming another authority's NSID grants nothing, not even its
/// own NSIDs listed beside it (as the reference's `IncludeScope.toScopes`); a look-alike prefix
/// (`app.examplex`) and `*` are other authorities too. The token can then not use them (RS-SCOPE-01).
#[tokio::test]
async fn scope10_a_set_grants_nothing_of_another_authority() {
    let dir = TempDir::new("lexicons");
    let doc = json!({
        "lexicon": 1,
        "id": SET,
        "defs": { "main": {
            "type": "permission-set",
            "permissions": [
                { "type": "permission", "resource": "repo", "collection": ["app.bsky.feed.post"] },
                { "type": "permission", "resource": "repo", "collection": ["app.example.post", "app.bsky.feed.like"] },
                { "type": "permission", "resource": "repo", "collection": ["*"] },
                { "type": "permission", "resource": "rpc", "lxm": ["app.examplex.getFeed"], "aud": "*" },
                { "type": "permission", "resource": "rpc", "lxm": ["app.bsky.feed.getFeedSkeleton"], "inheritAud": true },
                { "type": "permission", "resource": "rpc", "lxm": ["app.example.getFeed"], "inheritAud": true }
            ]
        } }
    });
    std::fs::write(dir.join("set.json"), doc.to_string()).unwrap();
    let h = Harness::with(|b| b.lexicon_dir(dir.path())).await;
    let carol = "did:plc:carol00000000000000000000";
    let key = atauth_crypto::PrivateKey::generate(atauth_crypto::Algorithm::Es256k);
    let record = atauth_server::store::AccountRecord {
        signing_key_hex: Some(key.to_hex()),
        ..account_record(carol, "carol.test", "carol@example.test")
    };
    h.server.stores().accounts.create_account(record).await.unwrap();
    let feed = "did:web:feed.example.com%23bsky_fg";
    let scope = format!("atproto include:{SET}?aud={feed}");
    let (c, params) = client_with_scope(&scope);
    let params = with(&params, "login_hint", Some("carol.test"));
    let r = c.par_with(&h, &params).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    let code = get(&c.consent(&h, &r.s("request_uri"), "carol.test").await, "code").unwrap().to_owned();
    let tokens = c.token_with(&h, &c.code_params(&code)).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.raw);
    assert_eq!(tokens.s("scope"), format!("rpc:app.example.getFeed?aud={feed} atproto"));

    let at = tokens.s("access_token");
    let ok = get_service_auth(&h, &c, &at, &format!("aud={feed}&lxm=app.example.getFeed")).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.raw);
    for lxm in ["app.bsky.feed.getFeedSkeleton", "app.examplex.getFeed"] {
        get_service_auth(&h, &c, &at, &format!("aud={feed}&lxm={lxm}"))
            .await
            .assert_error(StatusCode::FORBIDDEN, "ScopeMissingError");
    }
}
