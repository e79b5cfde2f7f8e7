//! Identifier syntax against the atproto interop fixtures (checklist §4.4) and property tests against
//! the reference regexes (ID-HANDLE-01, ID-HANDLE-02, ID-DID-01), per type: `Handle`, `Did`, `Nsid`,
//! `AtIdentifier`. Moved from atauth-identity with the types; every assertion kept.
//!
//! Fixture source: `bluesky-social/atproto-interop-tests`, `syntax/*_syntax_{valid,invalid}.txt`. The
//! files were read from the copies the atproto projects keep in sync with it (the interop-tests
//! repository itself was not available to read):
//!
//! - handles valid: `bluesky-social/indigo` `atproto/syntax/testdata/handle_syntax_valid.txt` @ `35723e40`
//! - handles invalid: `bluesky-social/atproto` `interop-test-files/syntax/handle_syntax_invalid.txt` @ `09596d95`
//! - DIDs valid: `bluesky-social/atproto` `interop-test-files/syntax/did_syntax_valid.txt` @ `4fc3b5fb`
//!   (24 cases, as counted in the checklist)
//! - DIDs invalid: `bluesky-social/indigo` `atproto/syntax/testdata/did_syntax_invalid.txt` @ `2d761ca8`
//! - NSIDs valid/invalid: `bluesky-social/atproto` `interop-test-files/syntax/nsid_syntax_*.txt` @
//!   `516c5eb6` / `5e3e6726`
//!
//! Later revisions of `did_syntax_invalid.txt` additionally reject malformed percent-escapes
//! (`did:method:val%ZZ`, even `did:method:-:_:.:%ab`, which the valid file above accepts). We follow the
//! DID spec text and checklist ID-DID-01 ("implementations need not validate percent decoding"), so
//! those lines are not quoted here.

use atauth_syntax::{AtIdentifier, Did, Handle, Nsid, TldPolicy};
use proptest::prelude::*;

const HANDLE_VALID: &[&str] = &[
    // # allows valid handles
    "A.ISI.EDU",
    "XX.LCS.MIT.EDU",
    "SRI-NIC.ARPA",
    "john.test",
    "jan.test",
    "a234567890123456789.test",
    "john2.test",
    "john-john.test",
    "john.bsky.app",
    "jo.hn",
    "a.co",
    "a.org",
    "joh.n",
    "j0.h0",
    "jaymome-johnber123456.test",
    "jay.mome-johnber123456.test",
    "john.test.bsky.app",
    // # NOTE: this probably isn't ever going to be a real domain, but my read of the RFC is that it
    // # would be possible
    "john.t",
    // # allows .local and .arpa handles (proto-level)
    "laptop.local",
    "laptop.arpa",
    // # allows punycode handles
    // # 💩.test
    "xn--ls8h.test",
    // # bücher.tld
    "xn--bcher-kva.tld",
    "xn--3jk.com",
    "xn--w3d.com",
    "xn--vqb.com",
    "xn--ppd.com",
    "xn--cs9a.com",
    "xn--8r9a.com",
    "xn--cfd.com",
    "xn--5jk.com",
    "xn--2lb.com",
    // # allows onion (Tor) handles
    "expyuzz4wqqyqhjn.onion",
    "friend.expyuzz4wqqyqhjn.onion",
    "g2zyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion",
    "friend.g2zyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion",
    "friend.g2zyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion",
    "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion",
    "friend.2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion",
    // # correctly validates corner cases (modern vs. old RFCs)
    "12345.test",
    "8.cn",
    "4chan.org",
    "4chan.o-g",
    "blah.4chan.org",
    "thing.a01",
    "120.0.0.1.com",
    "0john.test",
    "9sta--ck.com",
    "99stack.com",
    "0ohn.test",
    "john.t--t",
    "thing.0aa.thing",
    // # examples from stackoverflow
    "stack.com",
    "sta-ck.com",
    "sta---ck.com",
    "sta--ck9.com",
    "stack99.com",
    "sta99ck.com",
    "google.com.uk",
    "google.co.in",
    "google.com",
    "maselkowski.pl",
    "m.maselkowski.pl",
    "xn--masekowski-d0b.pl",
    "xn--fiqa61au8b7zsevnm8ak20mc4a87e.xn--fiqs8s",
    "xn--stackoverflow.com",
    "stackoverflow.xn--com",
    "stackoverflow.co.uk",
    "xn--masekowski-d0b.pl",
    "xn--fiqa61au8b7zsevnm8ak20mc4a87e.xn--fiqs8s",
];

/// Our own boundary cases, one step inside the invalid file's "max over all handle" and "max segment"
/// lines: 253 bytes in total, and a 63-byte label.
const HANDLE_VALID_BOUNDARY: &[&str] = &[
    "shoooort.loooooooooooooooooooooooooong.loooooooooooooooooooooooooong.loooooooooooooooooooooooooong.loooooooooooooooooooooooooong.loooooooooooooooooooooooooong.loooooooooooooooooooooooooong.loooooooooooooooooooooooooong.loooooooooooooooooooooooooong.test",
    "short.ooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooo.test",
];

const HANDLE_INVALID: &[&str] = &[
    // # throws on invalid handles
    "did:thing.test",
    "did:thing",
    "john-.test",
    "john.0",
    "john.-",
    "xn--bcher-.tld",
    "john..test",
    "jo_hn.test",
    "-john.test",
    ".john.test",
    "jo!hn.test",
    "jo%hn.test",
    "jo&hn.test",
    "jo@hn.test",
    "jo*hn.test",
    "jo|hn.test",
    "jo:hn.test",
    "jo/hn.test",
    "john💩.test",
    "bücher.test",
    "john .test",
    "john.test.",
    "john",
    "john.",
    ".john",
    "john.test.",
    ".john.test",
    " john.test",
    "john.test ",
    "joh-.test",
    "john.-est",
    "john.tes-",
    // # max over all handle: 'shoooort' + '.loooooooooooooooooooooooooong'.repeat(9) + '.test'
    "shoooort.loooooooooooooooooooooooooong.loooooooooooooooooooooooooong.loooooooooooooooooooooooooong.loooooooooooooooooooooooooong.loooooooooooooooooooooooooong.loooooooooooooooooooooooooong.loooooooooooooooooooooooooong.loooooooooooooooooooooooooong.loooooooooooooooooooooooooong.test",
    // # max segment: 'short.' + 'o'.repeat(64) + '.test'
    "short.oooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooo.test",
    // # throws on "dotless" TLD handles
    "org",
    "ai",
    "gg",
    "io",
    // # correctly validates corner cases (modern vs. old RFCs)
    "cn.8",
    "thing.0aa",
    "thing.0aa",
    // # does not allow IP addresses as handles
    "127.0.0.1",
    "192.168.0.142",
    "fe80::7325:8a97:c100:94b",
    "2600:3c03::f03c:9100:feb0:af1f",
    // # examples from stackoverflow
    "-notvalid.at-all",
    "-thing.com",
    "www.masełkowski.pl.com",
];

const DID_VALID: &[&str] = &[
    "did:method:val",
    "did:method:VAL",
    "did:method:val123",
    "did:method:123",
    "did:method:val-two",
    "did:method:val_two",
    "did:method:val.two",
    "did:method:val:two",
    "did:method:val%BB",
    "did:method:vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv",
    "did:m:v",
    "did:method::::val",
    "did:method:-",
    "did:method:-:_:.:%ab",
    "did:method:.",
    "did:method:_",
    "did:method::.",
    // # allows some real DID values
    "did:onion:2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid",
    "did:example:123456789abcdefghi",
    "did:plc:7iza6de2dwap2sbkpav7c6c6",
    "did:web:example.com",
    "did:web:localhost%3A1234",
    "did:key:zQ3shZc2QzApp2oymGvQbzP8eKheVshBHbU4ZYjeXqwSKEn6N",
    "did:ethr:0xb9c5714089478a327f09197987f16f9e5d936e8a",
];

const DID_INVALID: &[&str] = &[
    "did",
    "didmethodval",
    "method:did:val",
    "did:method:",
    "didmethod:val",
    "did:methodval)",
    ":did:method:val",
    "did.method.val",
    "did:method:val:",
    "did:method:val%",
    "DID:method:val",
    "did:METHOD:val",
    "did:method:val/two",
    "did:method:val?two",
    "did:method:val#two",
    "did:method:val%",
    // + the fixture's 2,503-character `did:method:vvv…` line, built in `did_fixtures` below.
];

const NSID_VALID: &[&str] = &[
    // # length checks
    "com.ooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooo.foo",
    "com.example.ooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooo",
    "com.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.foo",
    // # valid examples
    "com.example.fooBar",
    "com.example.fooBarV2",
    "net.users.bob.ping",
    "a.b.c",
    "m.xn--masekowski-d0b.pl",
    "one.two.three",
    "one.two.three.four-and.FiVe",
    "one.2.three",
    "a-0.b-1.c",
    "a0.b1.cc",
    "cn.8.lex.stuff",
    "test.12345.record",
    "a01.thing.record",
    "a.0.c",
    "xn--fiqs8s.xn--fiqa61au8b7zsevnm8ak20mc4a87e.record.two",
    "a0.b1.c3",
    "com.example.f00",
    // # allows onion (Tor) NSIDs
    "onion.expyuzz4wqqyqhjn.spec.getThing",
    "onion.g2zyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.lex.deleteThing",
    // # allows starting-with-numeric segments (same as domains)
    "org.4chan.lex.getThing",
    "cn.8.lex.stuff",
    "onion.2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.lex.deleteThing",
];

const NSID_INVALID: &[&str] = &[
    // # length checks
    "com.oooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooo.foo",
    "com.example.oooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooo",
    "com.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.middle.foo",
    // # invalid examples
    "com.example.foo.*",
    "com.example.foo.blah*",
    "com.example.foo.*blah",
    "com.exa💩ple.thing",
    "a-0.b-1.c-3",
    "a-0.b-1.c-o",
    "1.0.0.127.record",
    "0two.example.foo",
    "example.com",
    "com.example",
    "a.",
    ".one.two.three",
    "one.two.three ",
    "one.two..three",
    "one .two.three",
    " one.two.three",
    "com.exa💩ple.thing",
    "com.atproto.feed.p@st",
    "com.atproto.feed.p_st",
    "com.atproto.feed.p*st",
    "com.atproto.feed.po#t",
    "com.atproto.feed.p!ot",
    "com.example-.foo",
    "com.example.fooBar.2",
];

#[test]
fn handle_fixtures() {
    // ID-HANDLE-01
    // The indigo copy quoted here has 69 valid lines; the interop-tests revision the checklist counts
    // (71) adds the two maximum-length cases, covered by `HANDLE_VALID_BOUNDARY`.
    assert_eq!(HANDLE_VALID.len(), 69, "quoted fixture lines");
    assert_eq!(HANDLE_VALID_BOUNDARY[0].len(), 253);
    assert_eq!(HANDLE_VALID_BOUNDARY[1].split('.').nth(1).map(str::len), Some(63));
    for s in HANDLE_VALID.iter().chain(HANDLE_VALID_BOUNDARY) {
        let h = Handle::new(*s).unwrap_or_else(|e| panic!("{s:?} must be valid: {e}"));
        assert_eq!(h.as_str(), s.to_ascii_lowercase(), "ID-HANDLE-02 lowercases");
    }
    assert_eq!(HANDLE_INVALID.len(), 48, "fixture count (checklist §4.4)");
    for s in HANDLE_INVALID {
        assert!(Handle::new(*s).is_err(), "{s:?} must be invalid");
    }
}

#[test]
fn handle_spec_examples_and_resolvability() {
    // Spec examples (checklist §4.4) and ID-HANDLE-03.
    for s in ["jay.bsky.social", "8.cn", "XX.LCS.MIT.EDU", "xn--ls8h.test"] {
        assert!(Handle::new(s).is_ok(), "{s}");
    }
    for s in ["jo@hn.test", "john..test", "john.0", "org", "name.org."] {
        assert!(Handle::new(s).is_err(), "{s}");
    }
    for s in ["laptop.local", "blah.arpa", "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion"] {
        let h = Handle::new(s).expect("syntax-valid");
        assert!(!h.is_resolvable(TldPolicy::development()), "{s} must never resolve");
    }
}

#[test]
fn did_fixtures() {
    // ID-DID-01
    assert_eq!(DID_VALID.len(), 24, "fixture count (checklist §4.4)");
    for s in DID_VALID {
        let d = Did::new(*s).unwrap_or_else(|e| panic!("{s:?} must be valid: {e}"));
        assert_eq!(d.as_str(), *s, "DIDs are not normalised");
    }
    let long = format!("did:method:{}", "v".repeat(2492));
    assert_eq!(long.len(), 2503);
    for s in DID_INVALID.iter().copied().chain([long.as_str()]) {
        assert!(Did::new(s).is_err(), "{s:?} must be invalid");
    }
}

#[test]
fn nsid_fixtures() {
    for s in NSID_VALID {
        let n = Nsid::new(*s).unwrap_or_else(|e| panic!("{s:?} must be valid: {e}"));
        assert_eq!(n.as_str(), *s);
    }
    for s in NSID_INVALID {
        assert!(Nsid::new(*s).is_err(), "{s:?} must be invalid");
    }
}

/// ID-HANDLE-01 reference regex (SPEC-HANDLE), plus the 253-byte limit.
fn handle_regex() -> regex::Regex {
    regex::Regex::new(
        r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$",
    )
    .expect("regex")
}

/// ID-DID-01 reference regex, plus the 2048-byte limit.
fn did_regex() -> regex::Regex {
    regex::Regex::new(r"^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$").expect("regex")
}

/// The reference NSID regex (atproto `@atproto/syntax`), plus the 317-byte limit.
fn nsid_regex() -> regex::Regex {
    regex::Regex::new(
        r"^[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+(\.[a-zA-Z][a-zA-Z0-9]{0,62})$",
    )
    .expect("regex")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// ID-HANDLE-01: the hand-written validator agrees with the spec regex on arbitrary near-miss input.
    #[test]
    fn handle_validator_matches_spec_regex(s in "[a-zA-Z0-9._@-]{0,24}") {
        let expected = handle_regex().is_match(&s) && s.len() <= 253;
        prop_assert_eq!(Handle::new(s.as_str()).is_ok(), expected, "{:?}", s);
    }

    /// ID-HANDLE-01: also on long generated handles around the length limits.
    #[test]
    fn handle_validator_matches_spec_regex_long(labels in prop::collection::vec("[a-z0-9-]{1,64}", 1..6), tld in "[a-z0-9][a-z0-9-]{0,64}") {
        let s = format!("{}.{}", labels.join("."), tld);
        let expected = handle_regex().is_match(&s) && s.len() <= 253;
        prop_assert_eq!(Handle::new(s.as_str()).is_ok(), expected, "{:?}", s);
    }

    /// ID-HANDLE-02: case and a leading `@` never change the parsed handle; serde round-trips.
    #[test]
    fn handle_normalisation(s in "([a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?\\.){1,3}[a-zA-Z]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?") {
        let h = Handle::new(s.as_str()).expect("generated handles are valid");
        prop_assert_eq!(h.as_str(), s.to_ascii_lowercase());
        prop_assert_eq!(&Handle::new(s.to_ascii_uppercase()).expect("valid"), &h);
        prop_assert_eq!(&Handle::parse_user_input(&format!(" @{s} ")).expect("valid"), &h);
        let json = serde_json::to_string(&h).expect("ser");
        prop_assert_eq!(serde_json::from_str::<Handle>(&json).expect("de"), h);
    }

    /// ID-DID-01: the validator agrees with the spec regex.
    #[test]
    fn did_validator_matches_spec_regex(s in "(did:)?[a-zA-Z0-9:%._/#?-]{0,20}") {
        let expected = did_regex().is_match(&s) && s.len() <= 2048;
        prop_assert_eq!(Did::new(s.as_str()).is_ok(), expected, "{:?}", s);
    }

    /// ID-DID-01: valid DIDs round-trip through serde unchanged.
    #[test]
    fn did_serde_round_trip(s in "did:[a-z]{1,5}:[a-zA-Z0-9._:%-]{0,30}[a-zA-Z0-9._-]") {
        let d = Did::new(s.as_str()).expect("generated DIDs are valid");
        let json = serde_json::to_string(&d).expect("ser");
        prop_assert_eq!(json, format!("\"{s}\""));
    }

    /// NSIDs: the validator agrees with the reference regex.
    #[test]
    fn nsid_validator_matches_reference_regex(s in "[a-zA-Z0-9.-]{0,20}") {
        let expected = nsid_regex().is_match(&s) && s.len() <= 317;
        prop_assert_eq!(Nsid::new(s.as_str()).is_ok(), expected, "{:?}", s);
    }

    /// NSIDs: every parse path (`new`, `FromStr`, `TryFrom`, serde) agrees, and printing gives the input.
    #[test]
    fn nsid_parse_paths_agree(s in "[a-z][a-z0-9-]{0,8}[a-z0-9](\\.[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?){1,3}\\.[a-zA-Z][a-zA-Z0-9]{0,10}") {
        let n = Nsid::new(s.as_str()).expect("generated NSIDs are valid");
        prop_assert_eq!(&s.parse::<Nsid>().expect("FromStr"), &n);
        prop_assert_eq!(&Nsid::try_from(s.clone()).expect("TryFrom<String>"), &n);
        prop_assert_eq!(&Nsid::try_from(s.as_str()).expect("TryFrom<&str>"), &n);
        prop_assert_eq!(AsRef::<str>::as_ref(&n), s.as_str());
        prop_assert_eq!(n.to_string(), s);
        let json = serde_json::to_string(&n).expect("ser");
        prop_assert_eq!(serde_json::from_str::<Nsid>(&json).expect("de"), n);
    }

    /// AtIdentifier: a `did:` prefix picks the DID parser, anything else the handle parser; the value
    /// prints, parses and round-trips through serde like the identifier it wraps (ID-HANDLE-02, ID-DID-01).
    #[test]
    fn at_identifier_dispatches_and_round_trips(
        did in "did:[a-z]{1,5}:[a-zA-Z0-9._:%-]{0,30}[a-zA-Z0-9._-]",
        handle in "([a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?\\.){1,3}[a-zA-Z]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?",
    ) {
        let d = AtIdentifier::new(did.as_str()).expect("valid DID");
        prop_assert_eq!(&d, &AtIdentifier::Did(Did::new(did.as_str()).expect("valid")));
        let h = AtIdentifier::parse_user_input(&format!(" @{handle} ")).expect("valid handle");
        prop_assert_eq!(&h, &AtIdentifier::Handle(Handle::new(handle.as_str()).expect("valid")));
        for id in [d, h] {
            prop_assert_eq!(&id.to_string().parse::<AtIdentifier>().expect("reparse"), &id);
            prop_assert_eq!(&AtIdentifier::try_from(id.as_str()).expect("TryFrom"), &id);
            let json = serde_json::to_string(&id).expect("ser");
            prop_assert_eq!(json.clone(), format!("\"{}\"", id.as_str()));
            prop_assert_eq!(serde_json::from_str::<AtIdentifier>(&json).expect("de"), id);
        }
    }

    /// A string that is neither a DID nor a handle is refused by AtIdentifier with the matching error.
    #[test]
    fn at_identifier_refuses_what_both_parsers_refuse(s in "[a-zA-Z0-9:._@-]{0,16}") {
        let expected = if s.starts_with("did:") { Did::new(s.as_str()).is_ok() } else { Handle::new(s.as_str()).is_ok() };
        prop_assert_eq!(AtIdentifier::new(s.as_str()).is_ok(), expected, "{:?}", s);
    }
}
