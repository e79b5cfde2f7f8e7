//! Fuzzes atauth-server's WebAuthn verification (issue 16, `passkey::verify_registration` and
//! `verify_assertion`): the bounded CBOR reader, attestation objects, authenticator data, COSE keys
//! and `clientDataJSON`, all attacker-supplied bytes.
//!
//! Every input starts from a real ceremony captured from Chromium's virtual authenticator
//! (`crates/atauth-server/tests/fixtures/passkey/chromium.json`) and replaces one of its binary
//! fields with the fuzzer's bytes, so everything around that field stays valid and the mutation
//! reaches the deep checks: byte 0 picks the ceremony, byte 1 the field, the rest is the field.
//! Besides not panicking: an assertion whose signed parts (authenticator data, `clientDataJSON`)
//! differ from the captured ones never verifies, and a registration that verifies names the
//! response's own credential id.
#![no_main]

use std::sync::OnceLock;

use atauth_crypto::b64;
use atauth_server::passkey::{
    AssertionResponse, Ceremony, Challenge, KnownPasskey, RegistrationResponse, RelyingParty, StoredPasskey,
    verify_assertion, verify_registration,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const FIXTURE: &str = include_str!("../../crates/atauth-server/tests/fixtures/passkey/chromium.json");
const NOW: i64 = 1_800_000_000;

struct Case {
    challenge: Challenge,
    registration: Option<RegistrationResponse>,
    assertion: Option<(AssertionResponse, String, StoredPasskey)>,
}

struct Harness {
    rp: RelyingParty,
    cases: Vec<Case>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let f: Value = serde_json::from_str(FIXTURE).expect("fixture parses");
        let rp = RelyingParty::for_issuer(f["origin"].as_str().expect("origin"), "fuzz").expect("rp");
        let did = |account: &Value| {
            f["accounts"][account.as_str().expect("account")]["did"].as_str().expect("did").to_owned()
        };
        let mut cases = Vec::new();
        let mut stored = std::collections::HashMap::new();
        // In key order, whatever order the map keeps (the committed seeds name cases by index).
        let sorted = |v: &Value| {
            let mut entries: Vec<(String, Value)> =
                v.as_object().expect("object").iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries.into_iter().map(|(_, v)| v).collect::<Vec<_>>()
        };
        for r in &sorted(&f["registrations"]) {
            let challenge = Challenge {
                ceremony: Ceremony::Register,
                did: did(&r["account"]),
                challenge: r["challenge"].as_str().expect("challenge").to_owned(),
                credentials: Vec::new(),
                expires_at: NOW + 60,
            };
            let response: RegistrationResponse =
                serde_json::from_value(r["response"].clone()).expect("registration");
            if let Ok(new) = verify_registration(&rp, &challenge, &response, NOW) {
                stored.insert(new.credential_id.clone(), (challenge.did.clone(), new.stored));
            }
            cases.push(Case { challenge, registration: Some(response), assertion: None });
        }
        for a in &sorted(&f["assertions"]) {
            let credential = a["credential"].as_str().expect("credential").to_owned();
            let Some((owner, passkey)) = stored.get(&credential).cloned() else { continue };
            let challenge = Challenge {
                ceremony: Ceremony::Authenticate,
                did: owner,
                challenge: a["challenge"].as_str().expect("challenge").to_owned(),
                credentials: vec![credential.clone()],
                expires_at: NOW + 60,
            };
            let response: AssertionResponse =
                serde_json::from_value(a["response"].clone()).expect("assertion");
            cases.push(Case {
                challenge,
                registration: None,
                assertion: Some((response, credential, passkey)),
            });
        }
        assert!(cases.iter().any(|c| c.assertion.is_some()), "the fixture's assertions verify");
        Harness { rp, cases }
    })
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let [case, field, bytes @ ..] = data else { return };
    let case = &h.cases[usize::from(*case) % h.cases.len()];
    let replacement = b64::encode(bytes);
    if let Some(original) = &case.registration {
        let mut r = original.clone();
        match field % 2 {
            0 => r.response.client_data_json = replacement.clone(),
            _ => r.response.attestation_object = replacement.clone(),
        }
        if let Ok(new) = verify_registration(&h.rp, &case.challenge, &r, NOW) {
            assert_eq!(new.credential_id, r.id, "a verified registration names the response's credential");
        }
    }
    if let Some((original, credential, passkey)) = &case.assertion {
        let mut a = original.clone();
        let before = match field % 3 {
            0 => std::mem::replace(&mut a.response.client_data_json, replacement),
            1 => std::mem::replace(&mut a.response.authenticator_data, replacement),
            _ => std::mem::replace(&mut a.response.signature, replacement),
        };
        let known =
            KnownPasskey { did: &case.challenge.did, credential_id: credential, stored: passkey, counter: 0 };
        // The signed parts only: an ECDSA signature has a second valid form (s and n - s).
        if field % 3 != 2 && verify_assertion(&h.rp, &case.challenge, &a, known, NOW).is_ok() {
            let same = b64::decode(&before).is_ok_and(|b| b == bytes);
            assert!(same, "an assertion with changed signed bytes verified");
        }
    }
});
