//! Fuzzes the atproto identifier syntax: `Did`, `Handle`, `Nsid` and `AtIdentifier`, strict and
//! user-input forms. A parsed value's string parses again to the same value (handles are
//! normalised to lowercase once), and the TLD policy checks never panic.
#![no_main]

use atauth_identity::{AtIdentifier, Did, Handle, Nsid, TldPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };

    for did in [Did::new(text), Did::parse_user_input(text)].into_iter().flatten() {
        assert_eq!(Did::new(did.as_str()).as_ref(), Ok(&did), "DID {text:?} does not re-parse");
        assert_eq!(did.to_string(), did.as_str());
        assert_eq!(format!("did:{}:{}", did.method(), did.identifier()), did.as_str());
        let _ = (did.is_plc(), did.is_web());
        let json = serde_json::to_string(&did).expect("a DID serialises");
        assert_eq!(serde_json::from_str::<Did>(&json).ok().as_ref(), Some(&did));
    }

    for handle in [Handle::new(text), Handle::parse_user_input(text)].into_iter().flatten() {
        let again = Handle::new(handle.as_str());
        assert_eq!(again.as_ref(), Ok(&handle), "handle {text:?} does not re-parse");
        assert_eq!(handle.as_str(), handle.as_str().to_ascii_lowercase(), "handle not lowercase");
        assert!(handle.as_str().ends_with(handle.tld()));
        let _ = handle.check_resolvable(TldPolicy::production());
        let _ = handle.is_resolvable(TldPolicy::development());
        let _ = handle.is_invalid_sentinel();
    }

    if let Ok(nsid) = Nsid::new(text) {
        assert_eq!(Nsid::new(nsid.as_str()).as_ref(), Ok(&nsid), "NSID {text:?} does not re-parse");
        assert_eq!(format!("{}.{}", nsid.authority(), nsid.name()), nsid.as_str());
    }

    for id in [AtIdentifier::new(text), AtIdentifier::parse_user_input(text)].into_iter().flatten() {
        let again = AtIdentifier::new(id.as_str());
        assert_eq!(again.as_ref(), Ok(&id), "identifier {text:?} does not re-parse");
        assert_eq!(id.to_string(), id.as_str());
    }
});
