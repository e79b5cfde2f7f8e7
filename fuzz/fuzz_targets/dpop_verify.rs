//! Fuzzes the untrusted-input parsers of atauth-crypto: compact JWS decoding, DPoP proof
//! verification (every check up to the signature and beyond), JWK parsing and did:key decoding.
//! None may panic, hang or allocate without bound on any input.
#![no_main]

use atauth_crypto::dpop::{DpopRequest, DpopVerifier};
use atauth_crypto::{Jwk, PublicKey, jws};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(decoded) = jws::decode(text) {
        let _ = decoded.algorithm();
        let _ = decoded.require_type("dpop+jwt");
        let _ = decoded.claims::<serde_json::Value>();
        if let Some(jwk) = &decoded.header().jwk {
            let _ = PublicKey::from_jwk(jwk);
        }
    }
    let verifier = DpopVerifier::default();
    let request = DpopRequest::new("POST", "https://server.example.com/token");
    let _ = verifier.verify(text, &request, 1_562_262_616, None);
    let _ = verifier.verify(text, &request.with_access_token("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"), 1_562_262_616, None);
    if let Ok(jwk) = serde_json::from_str::<Jwk>(text) {
        let _ = PublicKey::from_jwk(&jwk);
    }
    let _ = PublicKey::from_did_key(text);
});
