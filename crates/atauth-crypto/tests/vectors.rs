//! Published test vectors: RFC 7636, RFC 7638, RFC 9449 and the atproto interop signature
//! fixtures (checklist §4).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use atauth_crypto::dpop::{DpopError, DpopRequest, DpopVerifier};
use atauth_crypto::jwk::rfc7638_thumbprint;
use atauth_crypto::{Algorithm, Jwk, PublicKey, SignatureError, SignaturePolicy};
use base64::Engine as _;

/// RFC 9449 §4.1 example key (checklist §4.3).
const RFC9449_JWK: &str = r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}"#;
/// RFC 9449 §4.1 token-request proof, iat 1562262616.
const RFC9449_TOKEN_PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
/// RFC 9449 §5 refresh-request proof, iat 1562265296 (same header as above).
const RFC9449_REFRESH_PROOF_PAYLOAD_AND_SIG: &str = "eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjY1Mjk2fQ.pAqut2IRDm_De6PR93SYmGBPXpwrAk90e8cP2hjiaG5QsGSuKDYW7_X620BxqhvYC8ynrrvZLTk41mSRroapUA";
/// RFC 9449 §7.1 resource-request proof with `ath`, iat 1562262618.
const RFC9449_RESOURCE_PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA";
const RFC9449_ACCESS_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";

#[test]
fn rfc7638_rsa_thumbprint_vector() {
    // RFC 7638 §3.1 (checklist §4.2).
    let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    assert_eq!(
        rfc7638_thumbprint(&[("kty", "RSA"), ("n", n), ("e", "AQAB")]),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn rfc9449_example_key_thumbprint() {
    let jwk: Jwk = serde_json::from_str(RFC9449_JWK).unwrap();
    let key = PublicKey::from_jwk(&jwk).unwrap();
    // RFC 9449 §6.1 `cnf.jkt` example.
    assert_eq!(key.thumbprint(), "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
    // The fast path and the generic canonicalisation agree.
    let (x, y) = (jwk.x.as_deref().unwrap(), jwk.y.as_deref().unwrap());
    assert_eq!(rfc7638_thumbprint(&[("kty", "EC"), ("crv", "P-256"), ("x", x), ("y", y)]), key.thumbprint());
}

#[test]
fn rfc9449_token_request_proof_verifies() {
    let v = DpopVerifier::default()
        .verify(
            RFC9449_TOKEN_PROOF,
            &DpopRequest::new("POST", "https://server.example.com/token"),
            1_562_262_616,
            None,
        )
        .unwrap();
    assert_eq!(v.jkt, "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
    assert_eq!(v.jti, "-BwC3ESc6acc2lTc");
    assert_eq!(v.iat, 1_562_262_616);
    assert_eq!(v.nonce, None);
}

#[test]
fn rfc9449_refresh_request_proof_verifies() {
    let header = RFC9449_TOKEN_PROOF.split('.').next().unwrap();
    let proof = format!("{header}.{RFC9449_REFRESH_PROOF_PAYLOAD_AND_SIG}");
    let v = DpopVerifier::default()
        .verify(&proof, &DpopRequest::new("POST", "https://server.example.com/token"), 1_562_265_296, None)
        .unwrap();
    assert_eq!(v.iat, 1_562_265_296);
}

#[test]
fn rfc9449_resource_request_proof_verifies_with_ath() {
    let req = DpopRequest::new("GET", "https://resource.example.org/protectedresource")
        .with_access_token(RFC9449_ACCESS_TOKEN);
    let v = DpopVerifier::default().verify(RFC9449_RESOURCE_PROOF, &req, 1_562_262_618, None).unwrap();
    assert_eq!(v.jti, "e1j3V_bKic8-LAEB");
    // The same proof with another token fails the `ath` check (RFC 9449 §4.3 item 12).
    let other = DpopRequest::new("GET", "https://resource.example.org/protectedresource")
        .with_access_token("another-token");
    assert!(matches!(
        DpopVerifier::default().verify(RFC9449_RESOURCE_PROOF, &other, 1_562_262_618, None),
        Err(DpopError::AthMismatch)
    ));
    // Presented without the token, at an AS endpoint, `ath` is unexpected (AS-DPOP-06).
    let bare = DpopRequest::new("GET", "https://resource.example.org/protectedresource");
    assert!(matches!(
        DpopVerifier::default().verify(RFC9449_RESOURCE_PROOF, &bare, 1_562_262_618, None),
        Err(DpopError::UnexpectedAth)
    ));
}

// --- atproto interop signature fixtures -------------------------------------------------------
// Source: bluesky-social/atproto-interop-tests `crypto/signature-fixtures.json` (checklist §4.4).
// Message and signatures are standard base64 without padding.

struct Fixture {
    comment: &'static str,
    did_key: &'static str,
    message: &'static str,
    signature: &'static str,
    valid_in_atproto: bool,
}

const FIXTURES: &[Fixture] = &[
    Fixture {
        comment: "valid P-256 key and signature, with low-S signature",
        did_key: "did:key:zDnaembgSGUhZULN2Caob4HLJPaxBh92N7rtH21TErzqf8HQo",
        message: "oWVoZWxsb2V3b3JsZA",
        signature: "2vZNsG3UKvvO/CDlrdvyZRISOFylinBh0Jupc6KcWoJWExHptCfduPleDbG3rko3YZnn9Lw0IjpixVmexJDegg",
        valid_in_atproto: true,
    },
    Fixture {
        comment: "valid K-256 key and signature, with low-S signature",
        did_key: "did:key:zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc",
        message: "oWVoZWxsb2V3b3JsZA",
        signature: "5WpdIuEUUfVUYaozsi8G0B3cWO09cgZbIIwg1t2YKdUn/FEznOndsz/qgiYb89zwxYCbB71f7yQK5Lr7NasfoA",
        valid_in_atproto: true,
    },
    Fixture {
        comment: "P-256 key and signature, with non-low-S signature which is invalid in atproto",
        did_key: "did:key:zDnaembgSGUhZULN2Caob4HLJPaxBh92N7rtH21TErzqf8HQo",
        message: "oWVoZWxsb2V3b3JsZA",
        signature: "2vZNsG3UKvvO/CDlrdvyZRISOFylinBh0Jupc6KcWoKp7O4VS9giSAah8k5IUbXIW00SuOrjfEqQ9HEkN9JGzw",
        valid_in_atproto: false,
    },
    Fixture {
        comment: "K-256 key and signature, with non-low-S signature which is invalid in atproto",
        did_key: "did:key:zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc",
        message: "oWVoZWxsb2V3b3JsZA",
        signature: "5WpdIuEUUfVUYaozsi8G0B3cWO09cgZbIIwg1t2YKdXYA67MYxYiTMAVfdnkDCMN9S5B3vHosRe07aORmoshoQ",
        valid_in_atproto: false,
    },
    Fixture {
        comment: "P-256 key and signature, with DER-encoded signature which is invalid in atproto",
        did_key: "did:key:zDnaeT6hL2RnTdUhAPLij1QBkhYZnmuKyM7puQLW1tkF4Zkt8",
        message: "oWVoZWxsb2V3b3JsZA",
        signature: "MEQCIFxYelWJ9lNcAVt+jK0y/T+DC/X4ohFZ+m8f9SEItkY1AiACX7eXz5sgtaRrz/SdPR8kprnbHMQVde0T2R8yOTBweA",
        valid_in_atproto: false,
    },
    Fixture {
        comment: "K-256 key and signature, with DER-encoded signature which is invalid in atproto",
        did_key: "did:key:zQ3shnriYMXc8wvkbJqfNWh5GXn2bVAeqTC92YuNbek4npqGF",
        message: "oWVoZWxsb2V3b3JsZA",
        signature: "MEUCIQCWumUqJqOCqInXF7AzhIRg2MhwRz2rWZcOEsOjPmNItgIgXJH7RnqfYY6M0eg33wU0sFYDlprwdOcpRn78Sz5ePgk",
        valid_in_atproto: false,
    },
];

fn std_b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD_NO_PAD.decode(s).unwrap()
}

#[test]
fn atproto_signature_fixtures_under_low_s_policy() {
    for f in FIXTURES {
        let key = PublicKey::from_did_key(f.did_key).unwrap();
        let result = key.verify(&std_b64(f.message), &std_b64(f.signature), SignaturePolicy::RequireLowS);
        assert_eq!(result.is_ok(), f.valid_in_atproto, "{}: {result:?}", f.comment);
    }
}

#[test]
fn high_s_fixtures_fail_for_the_stated_reason_and_pass_under_jose_policy() {
    for f in FIXTURES.iter().filter(|f| f.comment.contains("non-low-S")) {
        let key = PublicKey::from_did_key(f.did_key).unwrap();
        let (msg, sig) = (std_b64(f.message), std_b64(f.signature));
        assert_eq!(
            key.verify(&msg, &sig, SignaturePolicy::RequireLowS),
            Err(SignatureError::HighS),
            "{}",
            f.comment
        );
        // The same signature is mathematically valid: JOSE verification accepts it.
        assert_eq!(key.verify(&msg, &sig, SignaturePolicy::AllowHighS), Ok(()), "{}", f.comment);
    }
    for f in FIXTURES.iter().filter(|f| f.comment.contains("DER")) {
        let key = PublicKey::from_did_key(f.did_key).unwrap();
        let sig = std_b64(f.signature);
        assert_eq!(
            key.verify(&std_b64(f.message), &sig, SignaturePolicy::AllowHighS),
            Err(SignatureError::BadLength { len: sig.len() }),
            "{}",
            f.comment
        );
    }
}

#[test]
fn fixture_keys_round_trip_through_did_key() {
    for f in FIXTURES {
        let key = PublicKey::from_did_key(f.did_key).unwrap();
        assert_eq!(key.to_did_key(), f.did_key);
    }
    assert_eq!(PublicKey::from_did_key(FIXTURES[0].did_key).unwrap().algorithm(), Algorithm::Es256);
    assert_eq!(PublicKey::from_did_key(FIXTURES[1].did_key).unwrap().algorithm(), Algorithm::Es256k);
}

#[test]
fn legacy_multibase_matches_multikey() {
    // SPEC-DID §Legacy representation (checklist §4.4): the same K-256 key, uncompressed and
    // without multicodec, versus the current Multikey.
    let legacy = PublicKey::from_legacy_multibase(
        Algorithm::Es256k,
        "zQYEBzXeuTM9UR3rfvNag6L3RNAs5pQZyYPsomTsgQhsxLdEgCrPTLgFna8yqCnxPpNT7DBk6Ym3dgPKNu86vt9GR",
    )
    .unwrap();
    assert_eq!(legacy.to_multikey(), "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF");
    // P-256 legacy form is the compressed point without multicodec (indigo's interop test).
    let p256 =
        PublicKey::from_legacy_multibase(Algorithm::Es256, "zxdM8dSstjrpZaRUwBmDvjGXweKuEMVN95A9oJBFjkWMh")
            .unwrap();
    assert_eq!(p256.to_did_key(), "did:key:zDnaembgSGUhZULN2Caob4HLJPaxBh92N7rtH21TErzqf8HQo");
}
