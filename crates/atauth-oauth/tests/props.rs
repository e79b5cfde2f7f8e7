//! Property tests for the parsers: no panics on arbitrary input, and round trips.
#![allow(clippy::unwrap_used)]

use atauth_oauth::scope::{Permission, ScopeSyntax};
use atauth_oauth::*;
use proptest::prelude::*;

proptest! {
    #[test]
    fn parsers_never_panic(s in "\\PC{0,80}") {
        let _ = ScopeSet::parse(&s);
        let _ = ScopeSyntax::parse(&s);
        let _ = Permission::parse(&s);
        let _ = ClientId::parse(&s);
        let _ = Issuer::parse_with(&s, IssuerPolicy::development());
        let _ = CallbackParams::from_query(&s);
        let _ = redirect_uri_matches(&s, &s);
    }

    #[test]
    fn scope_sets_round_trip(tokens in proptest::collection::vec("[!#-\\[\\]-~]{1,12}", 1..6)) {
        let joined = tokens.join(" ");
        let set = ScopeSet::parse(&joined).unwrap();
        prop_assert_eq!(set.to_string(), joined);
        prop_assert_eq!(set.len(), tokens.len());
    }

    #[test]
    fn valid_permissions_round_trip(
        nsid in "[a-z]{1,8}\\.[a-z]{1,8}\\.[a-z][a-zA-Z]{0,8}",
        actions in proptest::sample::subsequence(vec!["create", "update", "delete"], 0..=3),
        frag in "[a-z_]{1,10}",
    ) {
        let mut repo = format!("repo:{nsid}");
        for (i, a) in actions.iter().enumerate() {
            repo.push(if i == 0 { '?' } else { '&' });
            repo.push_str("action=");
            repo.push_str(a);
        }
        let p = Permission::parse(&repo).unwrap();
        let again = Permission::parse(&p.to_string()).unwrap();
        prop_assert_eq!(p, again);
        let rpc = format!("rpc:{nsid}?aud=did:web:api.example.com%23{frag}");
        let p = Permission::parse(&rpc).unwrap();
        prop_assert_eq!(p.to_string(), rpc);
    }

    #[test]
    fn loopback_ids_round_trip(port in 1u16.., path in "/[a-z]{0,10}", extra in proptest::option::of("transition:generic")) {
        let uri = format!("http://127.0.0.1:{port}{path}");
        let scope = match &extra { Some(e) => format!("atproto {e}"), None => "atproto".to_owned() };
        let id = LoopbackClientId::new(&[uri.as_str()], &ScopeSet::parse(&scope).unwrap()).unwrap();
        let parsed = ClientId::parse(id.as_str()).unwrap();
        let ClientId::Loopback(l) = parsed else { panic!("not loopback") };
        prop_assert_eq!(l.redirect_uris(), &[uri.clone()][..]);
        prop_assert_eq!(l.scope().to_string(), scope);
        prop_assert!(l.metadata().validate(&ClientId::Loopback(l)).is_ok());
        // CL-MD-LOOP-03: registered with port, same port matches.
        prop_assert!(redirect_uri_matches(&uri, &uri));
    }

    #[test]
    fn loopback_redirect_without_port_matches_any_port(port in 1u16.., path in "/[a-z]{0,10}") {
        let registered = format!("http://127.0.0.1{path}");
        let requested = format!("http://127.0.0.1:{port}{path}");
        prop_assert!(redirect_uri_matches(&registered, &requested));
        let other_path = format!("http://127.0.0.1:{port}{path}x");
        prop_assert!(!redirect_uri_matches(&registered, &other_path));
    }
}
