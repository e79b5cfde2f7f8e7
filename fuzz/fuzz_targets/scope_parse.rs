//! Fuzzes atauth-oauth's scope parsing: the scope-list grammar (`ScopeSet::parse`,
//! `parse_unique`), the generic `resource:positional?k=v` structure and the semantic
//! `Permission` parse, its normal form and the matcher (`Permission::allows`). Asserts the round
//! trips: a parsed list prints back to the same string; a permission's normal form is a scope token
//! that parses, is a fixed point after at most two steps, and allows the same requests.
#![no_main]

use atauth_oauth::scope::{Access, AccountAction, Permission, RepoAction, Scope, ScopeSet, ScopeSyntax};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };

    if let Ok(set) = ScopeSet::parse(text) {
        // Single spaces between valid tokens: printing gives the input back, and parses the same.
        let printed = set.to_string();
        assert_eq!(printed, text, "ScopeSet does not print back its input");
        assert_eq!(ScopeSet::parse(&printed).as_ref(), Ok(&set));
        let unique = ScopeSet::parse_unique(text);
        let mut names: Vec<&str> = set.iter().map(Scope::as_str).collect();
        names.sort_unstable();
        let has_duplicate = names.windows(2).any(|w| w[0] == w[1]);
        assert_eq!(unique.is_err(), has_duplicate, "parse_unique disagrees with the duplicate count");
        assert!(set.is_subset_of(&set));
        let _ = set.has_atproto();
        for scope in set.iter() {
            check_scope(scope.as_str());
        }
    } else {
        assert!(ScopeSet::parse_unique(text).is_err());
    }
    // A single token, even one the list grammar refuses (spaces are then invalid characters).
    check_scope(text);
    // The serde path used by client metadata and token responses.
    let _ = serde_json::from_slice::<ScopeSet>(data);
});

fn check_scope(s: &str) {
    let _ = ScopeSyntax::parse(s);
    let Ok(permission) = Permission::parse(s) else { return };
    // SCOPE-04 normalisation: the normal form is a scope token that parses to a permission with
    // the same meaning; like the reference, a second step may shorten it once more (a repeated
    // value written as a one-item list), after which it is a fixed point.
    let normalised = permission.to_string();
    assert!(Scope::new(normalised.as_str()).is_ok(), "{normalised:?} is not a scope token");
    let again = Permission::parse(&normalised)
        .unwrap_or_else(|e| panic!("{s:?} normalises to {normalised:?}, which does not parse: {e}"));
    let twice = again.to_string();
    let thrice = Permission::parse(&twice)
        .unwrap_or_else(|e| panic!("{normalised:?} normalises to {twice:?}, which does not parse: {e}"));
    assert_eq!(thrice.to_string(), twice, "normalisation of {s:?} is not stable after two steps");
    // Same meaning: the matcher answers the same for the normal form, written or parsed back
    // (blob types are matched case-sensitively as written; the normal form lower-cases them).
    let normal = permission.normalized();
    for access in accesses_for(&permission) {
        assert_eq!(normal.allows(&access), again.allows(&access), "{s:?} vs {normalised:?} on {access:?}");
    }
}

/// Requests built from the permission's own values, so that the matcher is exercised on hits too.
fn accesses_for(p: &Permission) -> Vec<Access> {
    match p {
        Permission::Repo(r) => r
            .collections
            .iter()
            .flat_map(|c| RepoAction::ALL.map(|a| Access::repo(a, c.as_str())))
            .chain([Access::repo_create("com.example.other")])
            .collect(),
        Permission::Rpc(r) => r
            .lxm
            .iter()
            .map(|m| Access::rpc(m.as_str(), r.aud.to_string()))
            .chain([Access::rpc("com.example.other", "did:web:example.com#x")])
            .collect(),
        Permission::Blob(b) => {
            b.accept.iter().map(|a| Access::blob(a.replace('*', "x").to_lowercase())).collect()
        }
        Permission::Account(a) => {
            vec![Access::account(a.attr, AccountAction::Read), Access::account(a.attr, AccountAction::Manage)]
        }
        Permission::Identity(_) => vec![Access::handle(), Access::identity_full()],
        _ => Vec::new(),
    }
}
