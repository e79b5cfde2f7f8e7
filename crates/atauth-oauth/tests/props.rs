//! Property tests for the parsers: no panics on arbitrary input, and round trips.
#![allow(clippy::unwrap_used)]

use atauth_oauth::scope::{Access, AccountAction, AccountAttr, Permission, RepoAction, ScopeSyntax};
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

    /// SCOPE-04: parse → normal form → parse, over every resource type and the ways of writing a
    /// value (positional or named, repeated, percent-encoded): the normal form is a valid scope
    /// token, means the same, and is a fixed point after at most one more step (one step when no
    /// value is repeated).
    #[test]
    fn scope_04_normal_forms_round_trip(scope in any_permission_string()) {
        let (s, repeats) = scope;
        let p = Permission::parse(&s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        let n1 = p.to_string();
        prop_assert!(Scope::new(n1.as_str()).is_ok(), "{:?} is not a scope token", n1);
        let p1 = Permission::parse(&n1).unwrap_or_else(|e| panic!("{s:?} -> {n1:?}: {e}"));
        let n2 = p1.to_string();
        if !repeats {
            prop_assert_eq!(&n2, &n1, "{:?}", s);
        }
        let n3 = Permission::parse(&n2).unwrap().to_string();
        prop_assert_eq!(&n3, &n2, "{:?}", s);
        prop_assert_eq!(p1.normalized(), Permission::parse(&n2).unwrap().normalized());
    }

    /// RS-SCOPE-01: the scope a 403 names allows the request it was named for (for well-formed
    /// values), and a set without it does not.
    #[test]
    fn rs_scope_01_the_missing_scope_allows_the_access(access in any_access()) {
        let needed = access.scope_needed();
        let p = Permission::parse(&needed).unwrap_or_else(|e| panic!("{needed:?}: {e}"));
        prop_assert!(p.allows(&access), "{} does not allow {:?}", needed, access);
        let with = ScopeSet::parse(&format!("atproto {needed}")).unwrap();
        prop_assert_eq!(with.check(&access), Ok(()));
        let without = ScopeSet::parse("atproto").unwrap();
        prop_assert_eq!(without.check(&access).unwrap_err().scope, needed);
    }
}

fn nsid() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,6}\\.[a-z][a-z0-9-]{0,5}[a-z]\\.[a-zA-Z][a-zA-Z0-9]{0,8}"
}

fn aud() -> impl Strategy<Value = String> {
    prop_oneof![
        "did:web:[a-z]{1,8}\\.example\\.com#[a-zA-Z0-9_~.-]{1,10}",
        "did:plc:[a-z2-7]{24}#[a-z_]{1,10}",
        "did:web:localhost%3A[1-9][0-9]{1,3}#[a-z_]{1,10}",
    ]
}

fn mime() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*/*".to_owned()),
        "[a-zA-Z]{1,8}/\\*",
        "[a-zA-Z]{1,8}/[a-zA-Z0-9.+-]{1,10}",
        "[a-z]{1,5}/[a-z]{1,5}[;=%~!'()é]{1,2}[a-z]{0,3}",
    ]
}

/// Writes one value of a scope: as is, or with its characters percent-encoded (positional part) /
/// form-encoded (query), both of which parse to the same value.
fn enc(v: &str, query: bool, encode: bool) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        let plain = b.is_ascii_alphanumeric() || b"-._*".contains(&b) || (!query && b"/:@".contains(&b));
        if plain && !(encode && b == b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `resource`, its main key, and main values written positionally (one value) or named.
fn write(
    resource: &str,
    key: &str,
    values: &[String],
    rest: &[(String, String)],
    named: bool,
    encode: bool,
) -> String {
    let mut s = resource.to_owned();
    let mut params: Vec<(String, String)> = Vec::new();
    if values.len() == 1 && !named {
        s.push(':');
        s.push_str(&enc(&values[0], false, encode));
    } else {
        params.extend(values.iter().map(|v| (key.to_owned(), v.clone())));
    }
    params.extend(rest.iter().cloned());
    for (i, (k, v)) in params.iter().enumerate() {
        s.push(if i == 0 { '?' } else { '&' });
        s.push_str(k);
        s.push('=');
        s.push_str(&enc(v, true, encode));
    }
    s
}

fn has_repeats(v: &[String]) -> bool {
    (1..v.len()).any(|i| v[..i].contains(&v[i]))
}

/// A valid granular scope string of any resource, and whether a value repeats.
fn any_permission_string() -> impl Strategy<Value = (String, bool)> {
    let flags = (any::<bool>(), any::<bool>());
    prop_oneof![
        (
            proptest::collection::vec(prop_oneof![nsid(), Just("*".to_owned())], 1..4),
            proptest::sample::subsequence(vec!["create", "update", "delete"], 0..=3),
            flags
        )
            .prop_map(|(cols, actions, (named, encode))| {
                let rest: Vec<(String, String)> =
                    actions.iter().map(|a| ("action".to_owned(), (*a).to_owned())).collect();
                let repeats = has_repeats(&cols);
                (write("repo", "collection", &cols, &rest, named, encode), repeats)
            }),
        (proptest::collection::vec(nsid(), 1..4), prop_oneof![aud(), Just("*".to_owned())], flags).prop_map(
            |(lxm, aud, (named, encode))| {
                let repeats = has_repeats(&lxm);
                (write("rpc", "lxm", &lxm, &[("aud".to_owned(), aud)], named, encode), repeats)
            }
        ),
        (proptest::collection::vec(mime(), 1..4), flags).prop_map(|(accept, (named, encode))| {
            let lower: Vec<String> = accept.iter().map(|a| a.to_lowercase()).collect();
            (write("blob", "accept", &accept, &[], named, encode), has_repeats(&lower))
        }),
        (
            prop_oneof![Just("email"), Just("repo"), Just("status")],
            proptest::collection::vec(prop_oneof![Just("read"), Just("manage")], 0..3),
            flags
        )
            .prop_map(|(attr, actions, (named, encode))| {
                let rest: Vec<(String, String)> =
                    actions.iter().map(|a| ("action".to_owned(), (*a).to_owned())).collect();
                (write("account", "attr", &[attr.to_owned()], &rest, named, encode), false)
            }),
        (prop_oneof![Just("handle"), Just("*")], flags).prop_map(|(attr, (named, encode))| (
            write("identity", "attr", &[attr.to_owned()], &[], named, encode),
            false
        )),
        (nsid(), proptest::option::of(aud()), flags).prop_map(|(n, aud, (named, encode))| {
            let rest: Vec<(String, String)> = aud.into_iter().map(|a| ("aud".to_owned(), a)).collect();
            (write("include", "nsid", &[n], &rest, named, encode), false)
        }),
    ]
}

fn any_access() -> impl Strategy<Value = Access> {
    let action = prop_oneof![Just(RepoAction::Create), Just(RepoAction::Update), Just(RepoAction::Delete)];
    let attr = prop_oneof![Just(AccountAttr::Email), Just(AccountAttr::Repo), Just(AccountAttr::Status)];
    let acc = prop_oneof![Just(AccountAction::Read), Just(AccountAction::Manage)];
    prop_oneof![
        (action, nsid()).prop_map(|(a, c)| Access::repo(a, c)),
        "[a-z]{1,8}/[a-z0-9.+-]{1,10}".prop_map(Access::blob),
        (nsid(), aud()).prop_map(|(l, a)| Access::rpc(l, a)),
        (attr, acc).prop_map(|(a, b)| Access::account(a, b)),
        Just(Access::handle()),
        Just(Access::identity_full()),
    ]
}
