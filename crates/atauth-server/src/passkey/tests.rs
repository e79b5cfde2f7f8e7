//! The ceremonies against data captured from Chromium 156's virtual authenticator
//! (`interop/passkey-fixtures.mjs` → `tests/fixtures/passkey/chromium.json`): every check that can
//! fail, on real attestations and assertions.

use super::*;

const FIXTURE: &str = include_str!("../../tests/fixtures/passkey/chromium.json");

fn fixture() -> serde_json::Value {
    serde_json::from_str(FIXTURE).unwrap()
}

/// The fixture's relying party (RP ID `localhost`, the capture's origin).
fn rp() -> RelyingParty {
    RelyingParty::for_issuer(fixture()["origin"].as_str().unwrap(), "atauth fixtures").unwrap()
}

const NOW: i64 = 1_800_000_000;

fn did_of(account: &str) -> String {
    fixture()["accounts"][account]["did"].as_str().unwrap().to_owned()
}

fn registration(name: &str) -> (Challenge, RegistrationResponse) {
    let f = fixture();
    let r = &f["registrations"][name];
    let state = Challenge {
        ceremony: Ceremony::Register,
        did: did_of(r["account"].as_str().unwrap()),
        challenge: r["challenge"].as_str().unwrap().to_owned(),
        credentials: Vec::new(),
        expires_at: NOW + 60,
    };
    (state, serde_json::from_value(r["response"].clone()).unwrap())
}

fn registered(name: &str) -> NewPasskey {
    let (state, response) = registration(name);
    verify_registration(&rp(), &state, &response, NOW).unwrap()
}

fn assertion(name: &str) -> (Challenge, AssertionResponse) {
    let f = fixture();
    let a = &f["assertions"][name];
    let state = Challenge {
        ceremony: Ceremony::Authenticate,
        did: did_of(a["account"].as_str().unwrap()),
        challenge: a["challenge"].as_str().unwrap().to_owned(),
        credentials: vec![a["credential"].as_str().unwrap().to_owned()],
        expires_at: NOW + 60,
    };
    (state, serde_json::from_value(a["response"].clone()).unwrap())
}

fn known<'a>(did: &'a str, p: &'a NewPasskey, counter: i64) -> KnownPasskey<'a> {
    KnownPasskey { did, credential_id: &p.credential_id, stored: &p.stored, counter }
}

#[test]
fn rp_is_the_issuers_host_and_origin_and_never_an_ip_address() {
    let rp = RelyingParty::for_issuer("https://PDS.example.com/", "x").unwrap();
    assert_eq!((rp.id(), rp.origin()), ("pds.example.com", "https://pds.example.com"));
    let dev = RelyingParty::for_issuer("http://localhost:2583", "x").unwrap();
    assert_eq!((dev.id(), dev.origin()), ("localhost", "http://localhost:2583"));
    for ip in ["http://127.0.0.1:2583", "http://[::1]:2583"] {
        assert!(matches!(RelyingParty::for_issuer(ip, "x"), Err(PasskeyError::InvalidRpId(_))), "{ip}");
    }
}

#[test]
fn options_carry_the_challenge_rp_user_handle_and_policy() {
    let rp = rp();
    let (opts, state) = registration_options(&rp, "did:plc:abc", "alice.test", vec!["AAAA".into()], NOW);
    assert_eq!(opts["challenge"], state.challenge.as_str());
    assert_eq!(b64::decode(&state.challenge).unwrap().len(), 32);
    assert_eq!(opts["rp"]["id"], "localhost");
    assert_eq!(opts["user"]["id"], b64::encode(user_handle("did:plc:abc")).as_str());
    assert_eq!(opts["user"]["name"], "alice.test");
    assert_eq!(opts["authenticatorSelection"]["userVerification"], "preferred");
    assert_eq!(opts["attestation"], "none");
    assert_eq!(opts["excludeCredentials"][0]["id"], "AAAA");
    assert_eq!(state.expires_at, NOW + CHALLENGE_LIFETIME_SECS);
    let algs: Vec<i64> =
        opts["pubKeyCredParams"].as_array().unwrap().iter().map(|p| p["alg"].as_i64().unwrap()).collect();
    assert_eq!(algs, [-7, -8, -257]);

    let (opts, state) =
        authentication_options(&rp, "did:plc:abc", &[("AAAA".into(), vec!["internal".into()])], NOW);
    assert_eq!(opts["rpId"], "localhost");
    assert_eq!(opts["userVerification"], "preferred");
    assert_eq!(opts["allowCredentials"][0]["transports"][0], "internal");
    assert_eq!(state.credentials, ["AAAA"]);
    assert_ne!(
        state.challenge,
        registration_options(&rp, "d", "h", vec![], NOW).1.challenge,
        "fresh challenges"
    );
}

#[test]
fn chromium_registrations_verify_for_es256_eddsa_and_rs256() {
    for (name, alg) in [("a_es256", COSE_ES256), ("a_eddsa", COSE_EDDSA), ("a_rs256", COSE_RS256)] {
        let p = registered(name);
        assert_eq!(p.stored.alg, alg, "{name}");
        assert_eq!(p.stored.attestation_format, "none");
        assert!(p.stored.user_verified, "the virtual authenticator verifies the user");
        // Chromium leaves the virtual authenticator's AAGUID in place under attestation none.
        assert_eq!(p.stored.aaguid, "01020304050607080102030405060708");
        assert_eq!(p.stored.transports, ["internal"]);
        assert_eq!(p.sign_count, 1);
    }
}

#[test]
fn chromium_assertions_verify_and_their_counter_advances() {
    let a = registered("a_es256");
    let did = did_of("a");
    let (state, response) = assertion("a_es256_1");
    assert_eq!(response.response.user_handle.as_deref(), Some(b64::encode(user_handle(&did)).as_str()));
    let first = verify_assertion(&rp(), &state, &response, known(&did, &a, 1), NOW).unwrap();
    assert_eq!(first, Assertion { sign_count: 2, user_verified: true });
    let (state, response) = assertion("a_es256_2");
    let second = verify_assertion(&rp(), &state, &response, known(&did, &a, 2), NOW).unwrap();
    assert_eq!(second.sign_count, 3);
    for (reg, asn) in [("a_eddsa", "a_eddsa_1"), ("a_rs256", "a_rs256_1")] {
        let p = registered(reg);
        let (state, response) = assertion(asn);
        assert_eq!(
            verify_assertion(&rp(), &state, &response, known(&did, &p, 1), NOW).unwrap().sign_count,
            2
        );
    }
}

#[test]
fn registration_refuses_wrong_challenge_origin_rp_id_and_expired_or_other_state() {
    let (state, response) = registration("a_es256");
    let other = Challenge { challenge: b64::encode([7u8; 32]), ..state.clone() };
    assert_eq!(verify_registration(&rp(), &other, &response, NOW), Err(PasskeyError::ChallengeMismatch));

    let elsewhere = RelyingParty::for_issuer("http://localhost:1", "x").unwrap();
    assert!(matches!(
        verify_registration(&elsewhere, &state, &response, NOW),
        Err(PasskeyError::OriginMismatch(_))
    ));

    // Same origin, another RP ID: only the authenticator data's hash can tell.
    let other_id = RelyingParty { id: "example.com".into(), id_hash: sha256(b"example.com"), ..rp() };
    assert_eq!(verify_registration(&other_id, &state, &response, NOW), Err(PasskeyError::RpIdMismatch));

    assert_eq!(verify_registration(&rp(), &state, &response, state.expires_at), Err(PasskeyError::Expired));
    let auth_state = Challenge { ceremony: Ceremony::Authenticate, ..state.clone() };
    assert_eq!(verify_registration(&rp(), &auth_state, &response, NOW), Err(PasskeyError::WrongCeremony));

    // The account has this credential already (excludeCredentials ignored).
    let again = Challenge { credentials: vec![response.id.clone()], ..state.clone() };
    assert_eq!(verify_registration(&rp(), &again, &response, NOW), Err(PasskeyError::CredentialNotAllowed));

    // An assertion's clientDataJSON in a registration: wrong type.
    let (_, asn) = assertion("a_es256_1");
    let mut swapped = response.clone();
    swapped.response.client_data_json = asn.response.client_data_json;
    assert!(matches!(verify_registration(&rp(), &state, &swapped, NOW), Err(PasskeyError::WrongType { .. })));

    let mut renamed = response;
    renamed.id = b64::encode([1u8; 16]);
    assert!(matches!(verify_registration(&rp(), &state, &renamed, NOW), Err(PasskeyError::Malformed(_))));
}

#[test]
fn registration_refuses_attestation_with_a_certificate_chain() {
    // attestation "direct": Chromium sends packed with x5c, which we do not evaluate.
    let (state, response) = registration("a_direct");
    assert!(matches!(
        verify_registration(&rp(), &state, &response, NOW),
        Err(PasskeyError::UnsupportedAttestation(f)) if f.starts_with("packed")
    ));
}

#[test]
fn assertion_with_another_accounts_passkey_is_refused() {
    // Bob's passkey answering Alice's sign-in: the server found it by credential id, and it is
    // Bob's. Refused before anything else, whatever else is right.
    let b = registered("b_es256");
    let (mut state, response) = assertion("b_es256_1");
    state.did = did_of("a");
    let bob = did_of("b");
    assert_eq!(
        verify_assertion(&rp(), &state, &response, known(&bob, &b, 1), NOW),
        Err(PasskeyError::OtherAccount)
    );
}

#[test]
fn assertion_refusals_one_per_check() {
    let a = registered("a_es256");
    let did = did_of("a");
    let (state, response) = assertion("a_es256_1");
    let check = |state: &Challenge, response: &AssertionResponse, counter: i64| {
        verify_assertion(&rp(), state, response, known(&did, &a, counter), NOW)
    };
    assert!(check(&state, &response, 1).is_ok());

    // Replayed or lower counter: possibly a cloned authenticator.
    assert_eq!(check(&state, &response, 2), Err(PasskeyError::CounterNotAdvanced { stored: 2, received: 2 }));
    assert_eq!(check(&state, &response, 9), Err(PasskeyError::CounterNotAdvanced { stored: 9, received: 2 }));

    let other = Challenge { challenge: b64::encode([7u8; 32]), ..state.clone() };
    assert_eq!(check(&other, &response, 1), Err(PasskeyError::ChallengeMismatch));
    assert_eq!(
        verify_assertion(
            &rp(),
            &Challenge { expires_at: NOW, ..state.clone() },
            &response,
            known(&did, &a, 1),
            NOW
        ),
        Err(PasskeyError::Expired)
    );
    let reg_state = Challenge { ceremony: Ceremony::Register, ..state.clone() };
    assert_eq!(check(&reg_state, &response, 1), Err(PasskeyError::WrongCeremony));
    let not_offered = Challenge { credentials: vec!["AAAA".into()], ..state.clone() };
    assert_eq!(check(&not_offered, &response, 1), Err(PasskeyError::CredentialNotAllowed));

    let elsewhere = RelyingParty::for_issuer("http://localhost:1", "x").unwrap();
    assert!(matches!(
        verify_assertion(&elsewhere, &state, &response, known(&did, &a, 1), NOW),
        Err(PasskeyError::OriginMismatch(_))
    ));
    let other_id = RelyingParty { id: "example.com".into(), id_hash: sha256(b"example.com"), ..rp() };
    assert_eq!(
        verify_assertion(&other_id, &state, &response, known(&did, &a, 1), NOW),
        Err(PasskeyError::RpIdMismatch)
    );

    let mut handle = response.clone();
    handle.response.user_handle = Some(b64::encode(user_handle(&did_of("b"))));
    assert_eq!(check(&state, &handle, 1), Err(PasskeyError::UserHandleMismatch));

    // Authenticator data and signature tampered with.
    let auth = b64::decode(&response.response.authenticator_data).unwrap();
    let with_auth = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = auth.clone();
        f(&mut bytes);
        let mut r = response.clone();
        r.response.authenticator_data = b64::encode(&bytes);
        r
    };
    assert_eq!(check(&state, &with_auth(&|b| b[32] &= !FLAG_UP), 1), Err(PasskeyError::UserNotPresent));
    assert_eq!(check(&state, &with_auth(&|b| b[32] |= FLAG_BS), 1), Err(PasskeyError::BackupFlags));
    assert_eq!(check(&state, &with_auth(&|b| b[36] = 9), 1), Err(PasskeyError::SignatureInvalid));
    assert!(matches!(check(&state, &with_auth(&|b| b.push(0)), 1), Err(PasskeyError::Malformed(_))));
    let mut signature = b64::decode(&response.response.signature).unwrap();
    let last = signature.len() - 1;
    signature[last] ^= 1;
    let mut bad_sig = response.clone();
    bad_sig.response.signature = b64::encode(&signature);
    assert_eq!(check(&state, &bad_sig, 1), Err(PasskeyError::SignatureInvalid));

    // The key of another passkey of the same account does not verify this assertion.
    let ed = registered("a_eddsa");
    let wrong_key = KnownPasskey { stored: &ed.stored, ..known(&did, &a, 1) };
    assert_eq!(
        verify_assertion(&rp(), &state, &response, wrong_key, NOW),
        Err(PasskeyError::SignatureInvalid)
    );
}

#[test]
fn counter_rule_matches_the_store() {
    assert!(counter_advances(0, 0), "authenticators that never count");
    assert!(counter_advances(0, 1));
    assert!(counter_advances(4, 5));
    assert!(!counter_advances(5, 5));
    assert!(!counter_advances(5, 0), "a counting authenticator falling back to 0");
    assert!(!counter_advances(5, 4));
}

// --------------------------------------------------------------- packed self-attestation ---

/// A minimal CBOR head (major type, length).
fn head(major: u8, len: usize, out: &mut Vec<u8>) {
    match len {
        0..=23 => out.push((major << 5) | len as u8),
        24..=255 => out.extend([(major << 5) | 24, len as u8]),
        _ => out.extend([(major << 5) | 25, (len >> 8) as u8, len as u8]),
    }
}

fn text(s: &str, out: &mut Vec<u8>) {
    head(3, s.len(), out);
    out.extend(s.as_bytes());
}

fn bytes(b: &[u8], out: &mut Vec<u8>) {
    head(2, b.len(), out);
    out.extend(b);
}

/// A registration with `packed` self-attestation made here (Chromium only sends it with a
/// certificate): a fresh P-256 key signs `authData ‖ SHA-256(clientDataJSON)`.
fn packed_self(tamper: bool) -> (Challenge, RegistrationResponse) {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
    let rp = rp();
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
    let point = key.public_key().as_ref().to_vec();
    let mut cose = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21];
    bytes(&point[1..33], &mut cose);
    cose.push(0x22);
    bytes(&point[33..], &mut cose);
    let cred_id = [9u8; 16];
    let mut auth = sha256(rp.id().as_bytes()).to_vec();
    auth.push(FLAG_UP | FLAG_AT);
    auth.extend([0, 0, 0, 0]);
    auth.extend([0u8; 16]);
    auth.extend([0, 16]);
    auth.extend(cred_id);
    auth.extend(&cose);
    let state = Challenge {
        ceremony: Ceremony::Register,
        did: "did:plc:selfattested".into(),
        challenge: b64::encode([3u8; 32]),
        credentials: vec![],
        expires_at: NOW + 60,
    };
    let client_data =
        serde_json::json!({ "type": "webauthn.create", "challenge": state.challenge, "origin": rp.origin() })
            .to_string();
    let mut signed = auth.clone();
    signed.extend(sha256(client_data.as_bytes()));
    if tamper {
        signed[0] ^= 1;
    }
    let signature = key.sign(&SystemRandom::new(), &signed).unwrap();
    let mut obj = vec![0xa3];
    text("fmt", &mut obj);
    text("packed", &mut obj);
    text("attStmt", &mut obj);
    obj.push(0xa2);
    text("alg", &mut obj);
    obj.push(0x26);
    text("sig", &mut obj);
    bytes(signature.as_ref(), &mut obj);
    text("authData", &mut obj);
    bytes(&auth, &mut obj);
    let response = serde_json::from_value(serde_json::json!({
        "id": b64::encode(cred_id), "rawId": b64::encode(cred_id), "type": "public-key",
        "response": { "clientDataJSON": b64::encode(client_data), "attestationObject": b64::encode(&obj) },
    }))
    .unwrap();
    (state, response)
}

#[test]
fn packed_self_attestation_is_verified_with_the_new_key() {
    let (state, response) = packed_self(false);
    let p = verify_registration(&rp(), &state, &response, NOW).unwrap();
    assert_eq!((p.stored.attestation_format.as_str(), p.stored.alg, p.sign_count), ("packed", COSE_ES256, 0));
    assert!(!p.stored.user_verified);
    let (state, response) = packed_self(true);
    assert_eq!(verify_registration(&rp(), &state, &response, NOW), Err(PasskeyError::AttestationInvalid));
}
