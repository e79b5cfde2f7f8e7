//! Property tests: key encodings round-trip, signatures verify and are always low-S, and the
//! parsers never panic on arbitrary input.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use atauth_crypto::dpop::{DpopRequest, DpopSigner, DpopVerifier, ProofParams};
use atauth_crypto::jws::{self, JwsHeader};
use atauth_crypto::{Algorithm, Jwk, PrivateKey, PublicKey, SignatureError, SignaturePolicy, b64};
use proptest::prelude::*;

fn any_alg() -> impl Strategy<Value = Algorithm> {
    prop_oneof![Just(Algorithm::Es256), Just(Algorithm::Es256k)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn signatures_verify_under_the_strict_policy(alg in any_alg(), msg in proptest::collection::vec(any::<u8>(), 0..512)) {
        let key = PrivateKey::generate(alg);
        let sig = key.sign(&msg);
        // Every signature we produce is low-S, so the atproto policy accepts it.
        prop_assert_eq!(key.public_key().verify(&msg, &sig, SignaturePolicy::RequireLowS), Ok(()));
        let mut tampered = msg;
        tampered.push(1);
        prop_assert_eq!(
            key.public_key().verify(&tampered, &sig, SignaturePolicy::AllowHighS),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn key_encodings_round_trip(alg in any_alg()) {
        let key = PrivateKey::generate(alg);
        let public = key.public_key();
        prop_assert_eq!(&PublicKey::from_did_key(&public.to_did_key()).unwrap(), public);
        prop_assert_eq!(&PublicKey::from_multikey(&public.to_multikey()).unwrap(), public);
        prop_assert_eq!(&PublicKey::from_jwk(&public.to_jwk()).unwrap(), public);
        prop_assert_eq!(&PublicKey::from_sec1_bytes(alg, &public.to_compressed()).unwrap(), public);
        prop_assert_eq!(&PublicKey::from_sec1_bytes(alg, &public.to_uncompressed()).unwrap(), public);

        let via_jwk = PrivateKey::from_jwk(&key.to_private_jwk()).unwrap();
        prop_assert_eq!(via_jwk.public_key(), public);
        let via_hex = PrivateKey::from_hex(alg, key.to_hex().expose_secret()).unwrap();
        prop_assert_eq!(via_hex.public_key(), public);
        if alg == Algorithm::Es256 {
            let via_pkcs8 = PrivateKey::from_pkcs8_der(key.to_pkcs8_der().unwrap().expose_secret()).unwrap();
            prop_assert_eq!(via_pkcs8.public_key(), public);
        }
        // A JWK serialised and parsed keeps its thumbprint.
        let json = serde_json::to_string(&public.to_jwk()).unwrap();
        let parsed: Jwk = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(PublicKey::from_jwk(&parsed).unwrap().thumbprint(), public.thumbprint());
    }

    #[test]
    fn jws_round_trips(alg in any_alg(), sub in "[a-z:0-9]{1,40}", typ in "(at\\+jwt|JWT|refresh\\+jwt)") {
        let key = PrivateKey::generate(alg);
        let header = JwsHeader::new(alg.jws_name(), Some(&typ)).with_kid("k1");
        let token = jws::sign(&header, &serde_json::json!({ "sub": sub }), &key).unwrap();
        let decoded = jws::decode(&token).unwrap();
        prop_assert_eq!(decoded.header().kid.as_deref(), Some("k1"));
        decoded.verify(key.public_key(), SignaturePolicy::RequireLowS).unwrap();
        let claims: serde_json::Value = decoded.claims().unwrap();
        prop_assert_eq!(claims["sub"].as_str(), Some(sub.as_str()));
        // A key of the other curve is refused by algorithm, not by a failed signature check.
        let other = PrivateKey::generate(if alg == Algorithm::Es256 { Algorithm::Es256k } else { Algorithm::Es256 });
        let is_mismatch = matches!(
            decoded.verify(other.public_key(), SignaturePolicy::AllowHighS),
            Err(jws::JwsError::AlgorithmKeyMismatch { .. })
        );
        prop_assert!(is_mismatch);
    }

    #[test]
    fn dpop_round_trips(alg in any_alg(), path in "/[a-zA-Z0-9._/-]{0,40}", query in proptest::option::of("[a-z=&]{1,20}"), iat in 1_600_000_000i64..1_900_000_000) {
        let signer = DpopSigner::new(PrivateKey::generate(alg));
        let mut url = format!("https://pds.example.com{path}");
        if let Some(q) = &query {
            url.push('?');
            url.push_str(q);
        }
        let proof = signer.proof(&ProofParams { method: "GET", url: &url, nonce: Some("n"), access_token: Some("tok"), iat });
        let req = DpopRequest::new("GET", &url).with_access_token("tok");
        let v = DpopVerifier::default().verify(&proof, &req, iat, None).unwrap();
        prop_assert_eq!(v.jkt.as_str(), signer.jkt());
    }

    #[test]
    fn parsers_never_panic(input in ".{0,300}") {
        let _ = jws::decode(&input);
        let _ = PublicKey::from_did_key(&input);
        let _ = PublicKey::from_multikey(&input);
        let _ = serde_json::from_str::<Jwk>(&input).map(|j| PublicKey::from_jwk(&j));
        let _ = DpopVerifier::default().verify(&input, &DpopRequest::new("GET", "https://a.example/"), 0, None);
        let _ = b64::decode(&input);
    }

    #[test]
    fn dpop_verifier_never_panics_on_mangled_proofs(cut in 0usize..400, byte in any::<u8>()) {
        let signer = DpopSigner::generate();
        let proof = signer.proof(&ProofParams { method: "POST", url: "https://a.example/t", nonce: None, access_token: None, iat: 1 });
        let mut bytes = proof.into_bytes();
        let i = cut % bytes.len();
        bytes[i] = byte;
        if let Ok(mangled) = String::from_utf8(bytes) {
            let _ = DpopVerifier::default().verify(&mangled, &DpopRequest::new("POST", "https://a.example/t"), 1, None);
        }
    }
}

#[test]
fn p256_signatures_are_low_s_across_many_signings() {
    // AWS-LC does not normalise S; about half of raw signatures are high-S before our fix-up.
    let key = PrivateKey::generate(Algorithm::Es256);
    for i in 0..200u32 {
        let sig = key.sign(&i.to_be_bytes());
        assert_eq!(key.public_key().verify(&i.to_be_bytes(), &sig, SignaturePolicy::RequireLowS), Ok(()));
    }
}
