//! The reference's answers (`@atproto/oauth-scopes`, `@atproto/lex-document`, pinned in
//! interop/package.json) recorded by interop/scope-vectors.mjs in tests/vectors/oauth-scopes.json,
//! and atauth's answers to the same questions (issue 13: SCOPE-02 … 12, RS-SCOPE-01).
//!
//! `interop/node22 interop/scope-vectors.mjs --check` regenerates the file from the pinned packages
//! and fails when it differs, so these vectors are the reference's, not ours.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use atauth_oauth::scope::{
    Access, AccountAction, AccountAttr, Permission, PermissionSet, RepoAction, ScopeSet,
};
use atauth_syntax::Nsid;
use serde_json::Value;

fn vectors() -> Value {
    let text = include_str!("vectors/oauth-scopes.json");
    serde_json::from_str(text).expect("vector file is JSON")
}

fn list<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key].as_array().unwrap_or_else(|| panic!("vectors have no {key} list"))
}

/// SCOPE-02/04 … 10: the same strings accepted, with the same normal form (or the documented
/// deviation, which must itself be a fixed point).
#[test]
fn scope_04_to_10_accept_reject_and_normal_form_like_the_reference() {
    let v = vectors();
    let mut checked = 0;
    for case in list(&v, "scopes") {
        let input = case["input"].as_str().unwrap();
        let ours = Permission::parse(input);
        let valid = case["valid"].as_bool().unwrap();
        assert_eq!(ours.is_ok(), valid, "{input:?}: reference says valid={valid}, we say {ours:?}");
        if let Ok(p) = ours {
            let expected = case["deviation"]["ours"].as_str().or(case["normal"].as_str()).unwrap();
            assert_eq!(p.to_string(), expected, "{input:?}: normal form");
            // Our normal form parses (the deviations exist for this), and normalising it again
            // reaches a fixed point (in one more step at most, like the reference).
            let again =
                Permission::parse(expected).unwrap_or_else(|e| panic!("{expected:?} does not parse: {e}"));
            let twice = again.to_string();
            assert_eq!(Permission::parse(&twice).unwrap().to_string(), twice, "{input:?}");
        }
        checked += 1;
    }
    assert!(checked > 150, "only {checked} scope vectors");
}

/// SCOPE-12: a list's normal form (`normalizeAtprotoOauthScope`): normalised, unknown dropped, sorted.
#[test]
fn scope_12_list_normal_form_like_the_reference() {
    let v = vectors();
    for case in list(&v, "lists") {
        let input = case["input"].as_str().unwrap();
        let set = ScopeSet::parse(input).unwrap();
        assert_eq!(set.normalized().to_string(), case["normalized"].as_str().unwrap(), "{input:?}");
    }
}

fn access(r: &Value) -> Access {
    let s = |k: &str| r[k].as_str().unwrap().to_owned();
    match r["kind"].as_str().unwrap() {
        "repo" => {
            let action = match r["action"].as_str().unwrap() {
                "create" => RepoAction::Create,
                "update" => RepoAction::Update,
                _ => RepoAction::Delete,
            };
            Access::repo(action, s("collection"))
        }
        "blob" => Access::blob(s("mime")),
        "rpc" => Access::rpc(s("lxm"), s("aud")),
        "account" => {
            let attr = match r["attr"].as_str().unwrap() {
                "email" => AccountAttr::Email,
                "repo" => AccountAttr::Repo,
                _ => AccountAttr::Status,
            };
            let action = if r["action"] == "manage" { AccountAction::Manage } else { AccountAction::Read };
            Access::account(attr, action)
        }
        "identity" => {
            if r["attr"] == "*" {
                Access::identity_full()
            } else {
                Access::handle()
            }
        }
        other => panic!("unknown request kind {other}"),
    }
}

/// RS-SCOPE-01 and SCOPE-03: every granted list × every request, allowed exactly when the
/// reference PDS's `ScopePermissionsTransition` allows it; the 403 names the reference's scope.
#[test]
fn rs_scope_01_allow_and_deny_like_the_reference() {
    let v = vectors();
    let requests: Vec<(Access, &Value)> = list(&v, "requests").iter().map(|r| (access(r), r)).collect();
    for (a, r) in &requests {
        let missing = r["missing"].as_str().expect("the reference denies every request to an empty scope");
        assert_eq!(a.scope_needed(), missing, "{r}");
    }
    let mut allowed_count = 0;
    for grant in list(&v, "grants") {
        let scope = grant["scope"].as_str().unwrap();
        let set = ScopeSet::parse(scope).unwrap();
        let expected: Vec<bool> = grant["allowed"].as_str().unwrap().chars().map(|c| c == '1').collect();
        assert_eq!(expected.len(), requests.len());
        for ((a, r), want) in requests.iter().zip(expected) {
            assert_eq!(set.allows(a), want, "{scope:?} x {r}");
            match set.check(a) {
                Ok(()) => assert!(want),
                Err(e) => {
                    assert!(!want);
                    assert_eq!(
                        e.to_string(),
                        format!("Missing required scope \"{}\"", r["missing"].as_str().unwrap())
                    );
                }
            }
            allowed_count += usize::from(want);
        }
    }
    assert!(allowed_count > 50, "the vectors allow too little to test anything ({allowed_count})");
}

/// SCOPE-10/12: permission-set documents accepted or refused like the reference, and each
/// `include:` expands to the same token-scope strings.
#[test]
fn scope_10_permission_sets_and_expansion_like_the_reference() {
    let v = vectors();
    let mut expansions = 0;
    for case in list(&v, "permission_sets") {
        let name = case["name"].as_str().unwrap();
        let nsid = Nsid::new(case["nsid"].as_str().unwrap()).unwrap();
        let ours = PermissionSet::from_document(&nsid, &case["document"]);
        let valid = case["valid"].as_bool().unwrap();
        assert_eq!(ours.is_ok(), valid, "{name}: reference says valid={valid}, we say {ours:?}");
        let Ok(set) = ours else { continue };
        for inc in case["includes"].as_array().unwrap() {
            let scope = inc["scope"].as_str().unwrap();
            let Ok(Permission::Include(include)) = Permission::parse(scope) else {
                panic!("{scope} is an include")
            };
            let got: Vec<String> = include.expand(&set).permissions.iter().map(ToString::to_string).collect();
            let want = inc["deviation"]["ours"].as_array().or(inc["expanded"].as_array()).unwrap();
            let want: Vec<&str> = want.iter().map(|s| s.as_str().unwrap()).collect();
            assert_eq!(got, want, "{name} / {scope}");
            expansions += want.len();
        }
    }
    assert!(expansions > 10, "only {expansions} expanded permissions in the vectors");
}

/// SCOPE-12 end to end on the vectors' typical set: the token scope replaces the `include:` with
/// its expansion (before the other scopes), and the result allows what the set grants.
#[test]
fn scope_12_token_scope_expands_includes() {
    let v = vectors();
    let case = list(&v, "permission_sets").iter().find(|c| c["name"] == "typical").unwrap();
    let nsid = Nsid::new(case["nsid"].as_str().unwrap()).unwrap();
    let set = PermissionSet::from_document(&nsid, &case["document"]).unwrap();
    let inc = &case["includes"][1];
    let requested = ScopeSet::parse(&format!(
        "atproto {} repo:app.bsky.feed.post bogus:x atproto",
        inc["scope"].as_str().unwrap()
    ))
    .unwrap();
    let kept = requested.understood();
    assert_eq!(kept.len(), 3, "unknown and repeated scopes dropped: {kept}");
    let token = kept.token_scope(|n| (n == &nsid).then_some(&set)).unwrap();
    let mut want: Vec<&str> =
        inc["expanded"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    want.extend(["atproto", "repo:app.bsky.feed.post"]);
    assert_eq!(token.to_string(), want.join(" "));
    assert!(token.allows(&Access::repo_create("app.example.post")));
    assert!(token.allows(&Access::rpc("app.example.sub.getThing", "did:web:api.bsky.app#bsky_appview")));
    assert!(!token.allows(&Access::rpc("app.example.sub.getThing", "did:web:other.example#x")));
    assert!(!token.allows(&Access::repo_create("app.example.other")));
    // Unresolved set: an error naming it, never a silent grant.
    let err = kept.token_scope(|_| None).unwrap_err();
    assert_eq!(err.nsid, nsid);
    // Consent screen text: the set's own title, translated when asked.
    assert_eq!(set.title_for(&["fr-CA", "en"]), Some("Accès complet"));
    assert_eq!(set.title_for(&["pt-BR"]), Some("Acesso total"));
    assert_eq!(set.title_for(&["de"]), Some("Full app access"));
    assert_eq!(set.detail_for(&["de"]), Some("Everything the app needs."));
}
