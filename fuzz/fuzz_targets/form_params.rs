//! Fuzzes the request-parameter parsers: atauth-server's `Params` (form body, JSON body, query)
//! with its RFC 6749 §3.1 duplicate check, for every parameter name the PAR, token, revoke and
//! authorize endpoints read; the `request_uri` parse of the authorize endpoint; and the client's
//! callback parser (`CallbackParams::from_query`). Asserts the duplicate rule against an
//! independent count, and that form encoding then decoding keeps every value.
#![no_main]

use atauth_oauth::CallbackParams;
use atauth_server::Params;
use atauth_server::authorize::request_id_from_uri;
use libfuzzer_sys::fuzz_target;

/// Every name the endpoints read from a `Params`.
const NAMES: [&str; 25] = [
    "client_id",
    "client_assertion_type",
    "client_assertion",
    "request_uri",
    "request",
    "nonce",
    "claims",
    "id_token_hint",
    "response_type",
    "code_challenge",
    "code_challenge_method",
    "redirect_uri",
    "state",
    "scope",
    "login_hint",
    "prompt",
    "response_mode",
    "dpop_jkt",
    "grant_type",
    "code",
    "code_verifier",
    "refresh_token",
    "token",
    "token_type_hint",
    "handle",
];

fn exercise(params: &Params) {
    for name in NAMES {
        if let Ok(Some(v)) = params.get(name) {
            assert!(!v.is_empty(), "an empty value must read as absent");
            if name == "request_uri" {
                let _ = request_id_from_uri(v);
            }
        }
        let _ = params.contains(name);
    }
    let _ = format!("{params:?}");
}

fuzz_target!(|data: &[u8]| {
    let form = Params::from_form(data);
    exercise(&form);
    if let Some(json) = Params::from_json(data) {
        exercise(&json);
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = CallbackParams::from_query(text);
    let _ = request_id_from_uri(text);

    // Raw `k=v&k=v` pairs (no decoding): `get` must match an independent count.
    let pairs: Vec<(String, String)> = text
        .split('&')
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let params = Params::new(pairs.clone());
    // The first distinct keys of the input and the endpoint names (bounded: `get` is linear).
    let mut keys: Vec<&str> = Vec::new();
    for (k, _) in pairs.iter().take(64) {
        if !keys.contains(&k.as_str()) {
            keys.push(k);
        }
    }
    keys.extend(NAMES);
    for &key in &keys {
        let found: Vec<&str> = pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect();
        let got = params.get(key);
        match found.as_slice() {
            [] => assert_eq!(got.ok(), Some(None), "{key:?} absent"),
            [one] => assert_eq!(got.ok(), Some((!one.is_empty()).then_some(*one)), "{key:?} once"),
            _ => assert!(got.is_err(), "{key:?} sent {} times is not a duplicate", found.len()),
        }
        assert_eq!(params.contains(key), !found.is_empty());
    }

    // Encoding the pairs as a form body and decoding it gives the same answers.
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
    let decoded = Params::from_form(body.as_bytes());
    for key in keys {
        assert_eq!(decoded.get(key), params.get(key), "{key:?} changed through form encoding");
    }
});
