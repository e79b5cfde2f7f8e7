//! Fuzzes atauth-identity's DID document handling: JSON parsing (`DidDocument`), the PDS endpoint
//! (ID-DID-06), the claimed handle (ID-HANDLE-07) and the `#atproto` signing key (ID-DID-07,
//! Multikey and the legacy encodings). A decoded key prints as a did:key that decodes to the same
//! key, and a document written back out gives the same answers.
#![no_main]

use atauth_crypto::PublicKey;
use atauth_identity::DidDocument;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<DidDocument>(data) else { return };
    assert!(doc.check_id(&doc.id).is_ok());
    let pds = doc.pds_endpoint();
    if let Ok(url) = &pds {
        assert!(matches!(url.scheme(), "https" | "http"), "PDS endpoint scheme {}", url.scheme());
        assert!(url.host_str().is_some(), "PDS endpoint without a host");
    }
    let handle = doc.claimed_handle();
    let _ = doc.signing_key_material();
    let key = doc.signing_key();
    if let Ok(key) = &key {
        let did_key = key.to_did_key();
        let back = PublicKey::from_did_key(&did_key)
            .unwrap_or_else(|e| panic!("{did_key} from a DID document does not decode: {e}"));
        assert_eq!(back.to_did_key(), did_key);
    }

    let json = serde_json::to_vec(&doc).expect("a parsed document serialises");
    let again: DidDocument = serde_json::from_slice(&json).expect("a serialised document parses");
    assert_eq!(again.id, doc.id);
    assert_eq!(again.pds_endpoint().ok(), pds.ok());
    assert_eq!(again.claimed_handle(), handle);
    assert_eq!(again.signing_key().ok().map(|k| k.to_did_key()), key.ok().map(|k| k.to_did_key()));
});
