//! Fuzzes atauth-oauth's scope parsing: the scope-list grammar (`ScopeSet::parse`,
//! `parse_unique`), the generic `resource:positional?k=v` structure and the semantic
//! `Permission` parse. Asserts the round trips: a parsed list prints back to the same string, and
//! a permission's normalised string parses to the same permission and prints the same again.
#![no_main]

use atauth_oauth::scope::{Permission, Scope, ScopeSet, ScopeSyntax};
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
    // SCOPE-04 normalisation: stable after one step.
    let normalised = permission.to_string();
    let again = Permission::parse(&normalised)
        .unwrap_or_else(|e| panic!("{s:?} normalises to {normalised:?}, which does not parse: {e}"));
    assert_eq!(again, permission, "{s:?} -> {normalised:?} parses to another permission");
    assert_eq!(again.to_string(), normalised, "normalisation of {s:?} is not stable");
    assert!(Scope::new(normalised.as_str()).is_ok(), "{normalised:?} is not a scope token");
}
