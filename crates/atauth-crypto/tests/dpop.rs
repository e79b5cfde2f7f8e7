//! DPoP proof verification: every RFC 9449 §4.3 check has a negative test asserting the exact
//! error (checklist §4.3 "test idea", AS-DPOP-01 … AS-DPOP-06).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::time::Duration;

use atauth_crypto::dpop::{
    DpopConfig, DpopError, DpopNonces, DpopRequest, DpopSigner, DpopVerifier, MemoryReplayGuard, ProofParams,
};
use atauth_crypto::jws::{self, JwsHeader};
use atauth_crypto::{Algorithm, ManualClock, PrivateKey, SecretBytes, b64};
use serde_json::json;

const NOW: i64 = 1_750_000_000;
const URL: &str = "https://auth.example.com/oauth/token";

fn token_request() -> DpopRequest<'static> {
    DpopRequest::new("POST", URL)
}

fn params(nonce: Option<&str>) -> ProofParams<'_> {
    ProofParams { method: "POST", url: URL, nonce, access_token: None, iat: NOW }
}

/// Signs arbitrary header and claims with `key`, for malformed-proof cases.
fn forge(key: &PrivateKey, header: impl serde::Serialize, claims: impl serde::Serialize) -> String {
    let header_b64 = b64::encode(serde_json::to_vec(&header).unwrap());
    jws::sign_encoded(&header_b64, &serde_json::to_vec(&claims).unwrap(), key)
}

fn good_header(key: &PrivateKey) -> serde_json::Value {
    json!({"typ": "dpop+jwt", "alg": key.algorithm().jws_name(), "jwk": key.public_key().to_jwk()})
}

fn good_claims() -> serde_json::Value {
    json!({"jti": "abc123", "htm": "POST", "htu": URL, "iat": NOW})
}

fn verify(proof: &str) -> Result<atauth_crypto::dpop::VerifiedDpop, DpopError> {
    DpopVerifier::default().verify(proof, &token_request(), NOW, None)
}

#[test]
fn own_proofs_verify_for_both_curves() {
    for alg in [Algorithm::Es256, Algorithm::Es256k] {
        let signer = DpopSigner::new(PrivateKey::generate(alg));
        let v = verify(&signer.proof(&params(None))).unwrap();
        assert_eq!(v.jkt, signer.jkt());
        assert_eq!(v.public_key, *signer.key().public_key());
    }
}

#[test]
fn forged_baseline_is_accepted() {
    // Guards the negative tests below: only the mutated part makes them fail.
    let key = PrivateKey::generate(Algorithm::Es256);
    verify(&forge(&key, good_header(&key), good_claims())).unwrap();
}

#[test]
fn rejects_lowercase_htm() {
    let key = PrivateKey::generate(Algorithm::Es256);
    let mut c = good_claims();
    c["htm"] = json!("post");
    assert!(matches!(
        verify(&forge(&key, good_header(&key), c)),
        Err(DpopError::MethodMismatch { expected, found }) if expected == "POST" && found == "post"
    ));
}

#[test]
fn accepts_query_in_htu_by_default_and_rejects_it_when_configured() {
    // RFC 9449 §4.3 item 9: `htu` is compared with the request URI ignoring query and fragment, as
    // the reference does (issue 15; deliberately looser than checklist T-04, see docs/DEVIATIONS.md).
    let key = PrivateKey::generate(Algorithm::Es256);
    for htu in [format!("{URL}?x=1"), format!("{URL}#frag"), format!("{URL}?a=b&c=d#frag")] {
        let mut c = good_claims();
        c["htu"] = json!(htu);
        let proof = forge(&key, good_header(&key), c);
        verify(&proof).unwrap();
        let strict = DpopVerifier::new(DpopConfig { allow_htu_query: false, ..DpopConfig::default() });
        assert!(matches!(
            strict.verify(&proof, &token_request(), NOW, None),
            Err(DpopError::HtuHasQueryOrFragment)
        ));
    }
    assert!(DpopConfig::default().allow_htu_query, "the documented default");
}

#[test]
fn htu_with_query_must_still_match_scheme_host_port_and_path() {
    // RFC 9449 §4.3 item 9: only query and fragment are ignored.
    let key = PrivateKey::generate(Algorithm::Es256);
    for htu in [
        "https://auth.example.com/oauth/par?x=1",        // another path
        "https://other.example.com/oauth/token?x=1",     // another host
        "http://auth.example.com/oauth/token?x=1",       // another scheme
        "https://auth.example.com:8443/oauth/token?x=1", // another port
        "https://auth.example.com/oauth/token/?x=1",     // trailing slash is another path
    ] {
        let mut c = good_claims();
        c["htu"] = json!(htu);
        assert!(
            matches!(verify(&forge(&key, good_header(&key), c)), Err(DpopError::UrlMismatch { .. })),
            "{htu}"
        );
    }
    // Normalisation still applies with a query present.
    let mut c = good_claims();
    c["htu"] = json!("HTTPS://Auth.Example.com:443/oauth/token?x=1");
    verify(&forge(&key, good_header(&key), c)).unwrap();
    // A request URL with a query matches an `htu` with another query.
    let url = "https://pds.example.com/xrpc/com.atproto.repo.getRecord?repo=did:plc:x";
    let mut c = good_claims();
    c["htm"] = json!("GET");
    c["htu"] = json!("https://pds.example.com/xrpc/com.atproto.repo.getRecord?repo=other");
    DpopVerifier::default()
        .verify(&forge(&key, good_header(&key), c), &DpopRequest::new("GET", url), NOW, None)
        .unwrap();
}

#[test]
fn request_query_is_ignored_when_comparing_htu() {
    // XRPC GET parameters live in the query; the proof's `htu` has none (T-04).
    let signer = DpopSigner::generate();
    let url = "https://pds.example.com/xrpc/com.atproto.repo.getRecord?repo=did:plc:x&rkey=self";
    let proof = signer.proof(&ProofParams { method: "GET", url, nonce: None, access_token: None, iat: NOW });
    DpopVerifier::default().verify(&proof, &DpopRequest::new("GET", url), NOW, None).unwrap();
}

#[test]
fn rejects_htu_for_another_url() {
    let key = PrivateKey::generate(Algorithm::Es256);
    let mut c = good_claims();
    c["htu"] = json!("https://auth.example.com/oauth/par");
    assert!(matches!(verify(&forge(&key, good_header(&key), c)), Err(DpopError::UrlMismatch { .. })));
    let mut c = good_claims();
    c["htu"] = json!("not a url");
    assert!(matches!(verify(&forge(&key, good_header(&key), c)), Err(DpopError::UrlMismatch { .. })));
}

#[test]
fn htu_comparison_normalises_case_and_default_port() {
    let key = PrivateKey::generate(Algorithm::Es256);
    let mut c = good_claims();
    c["htu"] = json!("HTTPS://Auth.Example.com:443/oauth/token");
    verify(&forge(&key, good_header(&key), c)).unwrap();
}

#[test]
fn rejects_typ_jwt() {
    let key = PrivateKey::generate(Algorithm::Es256);
    let mut h = good_header(&key);
    h["typ"] = json!("JWT");
    assert!(matches!(
        verify(&forge(&key, h, good_claims())),
        Err(DpopError::WrongType { found: Some(t) }) if t == "JWT"
    ));
    let mut h = good_header(&key);
    h.as_object_mut().unwrap().remove("typ");
    assert!(matches!(verify(&forge(&key, h, good_claims())), Err(DpopError::WrongType { found: None })));
}

#[test]
fn rejects_jwk_with_private_key() {
    let key = PrivateKey::generate(Algorithm::Es256);
    let mut h = good_header(&key);
    h["jwk"] = serde_json::to_value(key.to_private_jwk()).unwrap();
    assert!(h["jwk"]["d"].is_string());
    assert!(matches!(verify(&forge(&key, h, good_claims())), Err(DpopError::JwkHasPrivateKey)));
}

#[test]
fn rejects_missing_or_invalid_jwk() {
    let key = PrivateKey::generate(Algorithm::Es256);
    let mut h = good_header(&key);
    h.as_object_mut().unwrap().remove("jwk");
    assert!(matches!(verify(&forge(&key, h, good_claims())), Err(DpopError::MissingJwk)));
    let mut h = good_header(&key);
    h["jwk"]["x"] = json!(b64::encode([0u8; 32]));
    assert!(matches!(verify(&forge(&key, h, good_claims())), Err(DpopError::InvalidJwk(_))));
}

#[test]
fn rejects_iat_outside_window() {
    let signer = DpopSigner::generate();
    // Accepted: now − 190 s … now + 180 s (AS-DPOP-04).
    for iat in [NOW - 190, NOW + 180] {
        verify(&signer.proof(&ProofParams { iat, ..params(None) })).unwrap();
    }
    assert!(matches!(
        verify(&signer.proof(&ProofParams { iat: NOW - 191, ..params(None) })),
        Err(DpopError::IssuedAtOutOfWindow { skew_secs: -1 })
    ));
    assert!(matches!(
        verify(&signer.proof(&ProofParams { iat: NOW + 181, ..params(None) })),
        Err(DpopError::IssuedAtOutOfWindow { skew_secs: 1 })
    ));
}

#[tokio::test]
async fn rejects_reused_jti() {
    let signer = DpopSigner::generate();
    let clock = ManualClock::at_unix(u64::try_from(NOW).unwrap());
    let guard = MemoryReplayGuard::new(100, clock);
    let verifier = DpopVerifier::default();
    let proof = signer.proof(&params(None));
    verifier.verify_and_record(&proof, &token_request(), NOW, None, &guard).await.unwrap();
    assert!(matches!(
        verifier.verify_and_record(&proof, &token_request(), NOW, None, &guard).await,
        Err(DpopError::Replayed)
    ));
    // A fresh proof from the same key is fine.
    verifier
        .verify_and_record(&signer.proof(&params(None)), &token_request(), NOW, None, &guard)
        .await
        .unwrap();
    assert_eq!(guard.len(), 2);
}

#[tokio::test]
async fn replay_entries_expire_with_the_acceptance_window() {
    let signer = DpopSigner::generate();
    let clock = std::sync::Arc::new(ManualClock::at_unix(u64::try_from(NOW).unwrap()));
    struct Shared(std::sync::Arc<ManualClock>);
    impl atauth_crypto::Clock for Shared {
        fn now(&self) -> std::time::SystemTime {
            self.0.now()
        }
    }
    let guard = MemoryReplayGuard::new(1, Shared(clock.clone()));
    let verifier = DpopVerifier::default();
    let first = signer.proof(&params(None));
    verifier.verify_and_record(&first, &token_request(), NOW, None, &guard).await.unwrap();
    // The guard is full while the first entry is live: refuse rather than forget.
    let second = signer.proof(&params(None));
    assert!(matches!(
        verifier.verify_and_record(&second, &token_request(), NOW, None, &guard).await,
        Err(DpopError::ReplayStore(_))
    ));
    // After the window (iat + 10 s + 180 s) the entry is pruned and space frees up.
    clock.advance(Duration::from_secs(191));
    let later = NOW + 191;
    let third = signer.proof(&ProofParams { iat: later, ..params(None) });
    verifier.verify_and_record(&third, &token_request(), later, None, &guard).await.unwrap();
}

#[test]
fn rejects_wrong_ath_and_missing_ath() {
    let signer = DpopSigner::generate();
    let url = "https://pds.example.com/xrpc/com.atproto.server.getSession";
    let proof = signer.proof(&ProofParams {
        method: "GET",
        url,
        nonce: None,
        access_token: Some("token-a"),
        iat: NOW,
    });
    let with_b = DpopRequest::new("GET", url).with_access_token("token-b");
    assert!(matches!(
        DpopVerifier::default().verify(&proof, &with_b, NOW, None),
        Err(DpopError::AthMismatch)
    ));
    let without_ath =
        signer.proof(&ProofParams { method: "GET", url, nonce: None, access_token: None, iat: NOW });
    let with_a = DpopRequest::new("GET", url).with_access_token("token-a");
    assert!(matches!(
        DpopVerifier::default().verify(&without_ath, &with_a, NOW, None),
        Err(DpopError::MissingAth)
    ));
    DpopVerifier::default().verify(&proof, &with_a, NOW, None).unwrap();
}

#[test]
fn rejects_alg_none_and_hs256() {
    let key = PrivateKey::generate(Algorithm::Es256);
    // alg none with an empty signature.
    let header = b64::encode(
        serde_json::to_vec(&json!({"typ":"dpop+jwt","alg":"none","jwk": key.public_key().to_jwk()})).unwrap(),
    );
    let claims = b64::encode(serde_json::to_vec(&good_claims()).unwrap());
    assert!(matches!(
        verify(&format!("{header}.{claims}.")),
        Err(DpopError::UnsupportedAlgorithm { alg }) if alg == "none"
    ));
    // HS256 keyed with the public JWK's bytes (the classic confusion attack).
    let secret = SecretBytes::new(serde_json::to_vec(&key.public_key().to_jwk()).unwrap());
    let hmac = atauth_crypto::HmacKey::new(&secret).unwrap();
    let mut h = JwsHeader::new("HS256", Some("dpop+jwt")).with_jwk(&key.public_key().to_jwk());
    h.alg = "HS256".into();
    let token = jws::sign_hmac(&h, &good_claims(), &hmac).unwrap();
    assert!(matches!(verify(&token), Err(DpopError::UnsupportedAlgorithm { alg }) if alg == "HS256"));
}

#[test]
fn rejects_algorithms_outside_the_configured_list() {
    let signer = DpopSigner::new(PrivateKey::generate(Algorithm::Es256k));
    let es256_only =
        DpopVerifier::new(DpopConfig { algorithms: vec![Algorithm::Es256], ..DpopConfig::default() });
    assert!(matches!(
        es256_only.verify(&signer.proof(&params(None)), &token_request(), NOW, None),
        Err(DpopError::UnsupportedAlgorithm { alg }) if alg == "ES256K"
    ));
}

#[test]
fn rejects_alg_that_does_not_match_the_jwk() {
    let key = PrivateKey::generate(Algorithm::Es256);
    let mut h = good_header(&key);
    h["alg"] = json!("ES256K");
    assert!(matches!(verify(&forge(&key, h, good_claims())), Err(DpopError::AlgorithmKeyMismatch { .. })));
}

#[test]
fn rejects_bad_signature() {
    let key = PrivateKey::generate(Algorithm::Es256);
    let other = PrivateKey::generate(Algorithm::Es256);
    // Header names `key`, signature by `other`.
    assert!(matches!(verify(&forge(&other, good_header(&key), good_claims())), Err(DpopError::BadSignature)));
    // Tampered claims under a valid signature.
    let proof = forge(&key, good_header(&key), good_claims());
    let mut parts: Vec<&str> = proof.split('.').collect();
    let mut c = good_claims();
    c["iat"] = json!(NOW + 1);
    let tampered = b64::encode(serde_json::to_vec(&c).unwrap());
    parts[1] = &tampered;
    assert!(matches!(verify(&parts.join(".")), Err(DpopError::BadSignature)));
    // A DER-length signature.
    let der_sig = b64::encode([0x30u8; 70]);
    let der = format!("{}.{}.{der_sig}", proof.split('.').next().unwrap(), proof.split('.').nth(1).unwrap());
    assert!(matches!(verify(&der), Err(DpopError::BadSignature)));
}

#[test]
fn rejects_missing_claims() {
    let key = PrivateKey::generate(Algorithm::Es256);
    for claim in ["jti", "htm", "htu", "iat"] {
        let mut c = good_claims();
        c.as_object_mut().unwrap().remove(claim);
        let err = verify(&forge(&key, good_header(&key), c)).unwrap_err();
        assert!(matches!(err, DpopError::MissingClaim(name) if name == claim), "{claim}: {err:?}");
    }
    let mut c = good_claims();
    c["jti"] = json!("");
    assert!(matches!(verify(&forge(&key, good_header(&key), c)), Err(DpopError::MissingClaim("jti"))));
}

#[test]
fn rejects_wrongly_typed_claims_and_oversized_jti() {
    let key = PrivateKey::generate(Algorithm::Es256);
    let mut c = good_claims();
    c["iat"] = json!("1750000000");
    assert!(matches!(verify(&forge(&key, good_header(&key), c)), Err(DpopError::InvalidClaims(_))));
    let mut c = good_claims();
    c["jti"] = json!("j".repeat(129));
    assert!(matches!(
        verify(&forge(&key, good_header(&key), c)),
        Err(DpopError::JtiTooLong { len: 129, max: 128 })
    ));
}

#[test]
fn nonce_is_required_and_checked_when_the_server_asks() {
    let nonces = DpopNonces::new(&SecretBytes::new(vec![9u8; 32]), Duration::from_secs(60)).unwrap();
    let signer = DpopSigner::generate();
    let verifier = DpopVerifier::default();
    let err =
        verifier.verify(&signer.proof(&params(None)), &token_request(), NOW, Some(&nonces)).unwrap_err();
    assert!(matches!(err, DpopError::NonceRequired));
    assert_eq!(err.error_code(), "use_dpop_nonce");
    let err = verifier
        .verify(&signer.proof(&params(Some("stale"))), &token_request(), NOW, Some(&nonces))
        .unwrap_err();
    assert!(matches!(err, DpopError::InvalidNonce));
    assert!(err.is_nonce_error());
    let current = nonces.current(NOW);
    let v = verifier
        .verify(&signer.proof(&params(Some(&current))), &token_request(), NOW, Some(&nonces))
        .unwrap();
    assert_eq!(v.nonce.as_deref(), Some(current.as_str()));
}

#[test]
fn error_codes_follow_rfc9449() {
    let key = PrivateKey::generate(Algorithm::Es256);
    let err = verify(&forge(&key, good_header(&key), json!({}))).unwrap_err();
    assert_eq!(err.error_code(), "invalid_dpop_proof");
}

#[test]
fn proofs_are_fresh_every_time_and_carry_no_iss() {
    let signer = DpopSigner::generate();
    let a = verify(&signer.proof(&params(None))).unwrap();
    let b = verify(&signer.proof(&params(None))).unwrap();
    assert_ne!(a.jti, b.jti);
    let proof = signer.proof(&params(Some("n")));
    let claims: serde_json::Value = jws::decode(&proof).unwrap().claims().unwrap();
    assert!(claims.get("iss").is_none());
    assert_eq!(claims["nonce"], "n");
    assert_eq!(claims["htu"], URL);
}
