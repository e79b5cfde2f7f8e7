//! Fuzzes atauth-oauth's client id parsing and client-metadata JSON parsing and validation: the
//! document is validated against its own `client_id` (so the checks past CL-MD-04 run), under the
//! production and the development client-id policies, and against a fixed discoverable id.
#![no_main]

use atauth_oauth::{ClientId, ClientIdPolicy, ClientMetadata};
use libfuzzer_sys::fuzz_target;

const FIXED_ID: &str = "https://app.example.com/oauth-client-metadata.json";

fuzz_target!(|data: &[u8]| {
    // The raw input as a client id (a loopback id carries its metadata in the query).
    if let Ok(text) = std::str::from_utf8(data) {
        for policy in [ClientIdPolicy::default(), ClientIdPolicy { allow_http_loopback: true }] {
            if let Ok(id) = ClientId::parse_with(text, policy) {
                let _ = id.is_loopback();
                if let ClientId::Loopback(l) = &id {
                    let metadata = l.metadata();
                    let _ = metadata.validate(&id);
                }
                // The id prints as a string that parses to the same id.
                let again = ClientId::parse_with(id.as_str(), policy)
                    .unwrap_or_else(|e| panic!("{text:?} -> {:?} does not re-parse: {e}", id.as_str()));
                assert_eq!(again.as_str(), id.as_str());
            }
        }
    }

    let Ok(metadata) = serde_json::from_slice::<ClientMetadata>(data) else { return };
    let _ = metadata.application_type();
    let _ = metadata.auth_method();
    let _ = metadata.scope_set();
    for policy in [ClientIdPolicy::default(), ClientIdPolicy { allow_http_loopback: true }] {
        if let Ok(id) = ClientId::parse_with(&metadata.client_id, policy)
            && let Err(e) = metadata.validate(&id)
        {
            let _ = e.oauth_error_code();
            let _ = e.to_string();
        }
    }
    if let Ok(fixed) = ClientId::parse(FIXED_ID) {
        let _ = metadata.validate(&fixed);
    }
    // What the server caches is the serialised document: it must read back the same.
    let json = serde_json::to_vec(&metadata).expect("a parsed document serialises");
    let back: ClientMetadata = serde_json::from_slice(&json).expect("a serialised document parses");
    // (Unknown members are compared loosely: JSON floats need not survive a round trip bit for bit.)
    assert_eq!(
        (
            &back.client_id,
            &back.redirect_uris,
            &back.scope,
            &back.grant_types,
            &back.token_endpoint_auth_method
        ),
        (
            &metadata.client_id,
            &metadata.redirect_uris,
            &metadata.scope,
            &metadata.grant_types,
            &metadata.token_endpoint_auth_method
        )
    );
    assert_eq!(back.extra.len(), metadata.extra.len());
});
