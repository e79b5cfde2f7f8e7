//! Fuzzes atauth-oauth's permission-set document check and `include:` expansion (SCOPE-10): the
//! input is a permission-set Lexicon document's JSON (as fetched for `app.example.authFull`),
//! optionally preceded by a line holding an `include:` scope.
//!
//! Asserts besides "no panic": a document over the size limit is refused before parsing; every
//! expanded permission is a `repo:`/`rpc:` with no wildcard and every NSID under the set's
//! namespace authority (never a partial grant beyond it), whose normal form parses back to the same
//! normal form; expanding twice gives the same answer; each entry is either granted or ignored.
#![no_main]

use atauth_oauth::Scope;
use atauth_oauth::scope::{
    MAX_PERMISSION_SET_BYTES, NsidOrWildcard, Permission, PermissionSet, PermissionSetError, ScopeSet,
};
use libfuzzer_sys::fuzz_target;

const SET: &str = "app.example.authFull";

fuzz_target!(|data: &[u8]| {
    let (include, json) = match data.iter().position(|&b| b == b'\n') {
        Some(i) if data.starts_with(b"include:") => (std::str::from_utf8(&data[..i]).ok(), &data[i + 1..]),
        _ => (None, data),
    };
    let nsid = atauth_identity::Nsid::new(SET).expect("valid NSID");
    let set = match PermissionSet::from_json(&nsid, json) {
        Ok(set) => set,
        Err(PermissionSetError::TooLarge { len }) => {
            assert!(json.len() > MAX_PERMISSION_SET_BYTES && len == json.len());
            return;
        }
        Err(_) => return,
    };
    assert!(json.len() <= MAX_PERMISSION_SET_BYTES);
    let include = match include.map(Permission::parse) {
        Some(Ok(Permission::Include(i))) => i,
        _ => match Permission::parse(&format!("include:{SET}?aud=did:web:api.example.com%23svc")) {
            Ok(Permission::Include(i)) => i,
            other => panic!("fixed include scope: {other:?}"),
        },
    };
    let expansion = include.expand(&set);
    if include.nsid != set.nsid {
        assert!(expansion.permissions.is_empty());
        return;
    }
    assert_eq!(expansion.permissions.len() + expansion.ignored.len(), set.permissions.len());
    assert_eq!(include.expand(&set), expansion, "expansion is not deterministic");
    let authority = "app.example.";
    for p in &expansion.permissions {
        let names: &[NsidOrWildcard] = match p {
            Permission::Repo(r) => &r.collections,
            Permission::Rpc(r) => &r.lxm,
            other => panic!("a set granted {other}"),
        };
        for n in names {
            let NsidOrWildcard::Nsid(n) = n else { panic!("a set granted a wildcard: {p}") };
            assert!(n.as_str().starts_with(authority), "{p} is outside {authority}");
        }
        let normal = p.to_string();
        assert!(Scope::new(normal.as_str()).is_ok(), "{normal:?} is not a scope token");
        let again = Permission::parse(&normal).unwrap_or_else(|e| panic!("{normal:?} does not parse: {e}"));
        assert_eq!(again.to_string(), normal);
    }
    // The token scope built from it holds exactly the expansion and the other scopes.
    let requested = ScopeSet::parse(&format!("atproto {}", Permission::Include(include.clone())))
        .expect("valid scope list");
    let token = requested.token_scope(|_| Some(&set)).expect("set given");
    assert_eq!(token.len(), expansion.permissions.len() + 1);
});
