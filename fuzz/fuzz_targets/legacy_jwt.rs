//! Fuzzes atauth-server's legacy session token path (LEG-04, LEG-07): the `Authorization` header
//! parse (`bearer_token`) and the HS256 access/refresh token verification of an attacker-supplied
//! token. The signature stops almost every random token, so the input is also read as
//! `<header JSON>\n<claims JSON>` and signed with the server's (fixed, fuzz-only) secret: the claim
//! checks behind the signature (`typ`, `exp`, `aud`, `sub`, `scope`, `lxm`/`cnf`) get fuzzed too.
#![no_main]

use std::sync::{Arc, OnceLock};

use atauth_crypto::{HmacKey, ManualClock, SecretBytes, SecretString, b64};
use atauth_server::AuthServer;
use atauth_server::legacy::{LegacyOptions, bearer_token};
use atauth_server::store::{AccountRecord, AccountStatus, Stores};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8; 32] = b"atauth-fuzz-legacy-jwt-secret-32";
const NOW: u64 = 1_750_000_000;

struct Harness {
    runtime: tokio::runtime::Runtime,
    server: AuthServer,
    key: HmacKey,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
        let server = runtime.block_on(async {
            let server = AuthServer::builder("https://pds.example.com")
                .service_did("did:web:pds.example.com")
                .handle_domains([".example.com"])
                .stores(Stores::memory())
                .clock(Arc::new(ManualClock::at_unix(NOW)))
                .password_hash_concurrency(1)
                .legacy(LegacyOptions {
                    jwt_secret: Some(SecretBytes::new(SECRET.to_vec())),
                    ..LegacyOptions::default()
                })
                .build()
                .expect("server builds");
            for (did, handle, status) in [
                ("did:plc:alice000000000000000000", "alice.example.com", AccountStatus::Active),
                ("did:plc:mallory00000000000000000", "mallory.example.com", AccountStatus::Takendown),
            ] {
                server
                    .stores()
                    .accounts
                    .create_account(AccountRecord {
                        did: did.into(),
                        handle: handle.into(),
                        email: None,
                        password_hash: SecretString::new("unused".to_owned()),
                        signing_key_hex: None,
                        created_at: NOW as i64,
                        status,
                    })
                    .await
                    .expect("account created");
            }
            server
        });
        let key = HmacKey::new(&SecretBytes::new(SECRET.to_vec())).expect("32-byte secret");
        Harness { runtime, server, key }
    })
}

fn verify(h: &Harness, token: &str) {
    let refresh = h.server.verify_legacy_refresh(token, false);
    let expired_ok = h.server.verify_legacy_refresh(token, true);
    // Accepting an expired token is the only difference `allow_expired` makes.
    if refresh.is_ok() {
        assert!(expired_ok.is_ok(), "a refresh token valid now fails with allow_expired");
    }
    if let Ok(r) = &expired_ok {
        assert!(r.did.starts_with("did:"), "refresh token accepted with sub {:?}", r.did);
    }
    if let Ok(access) = h.runtime.block_on(h.server.verify_legacy_access(token)) {
        assert_eq!(access.did, "did:plc:alice000000000000000000", "access for an unknown or taken-down DID");
        // An access token is never a refresh token and the other way round (LEG-04).
        assert!(expired_ok.is_err(), "a token verified as both access and refresh");
    }
    if let Err(e) = &refresh {
        let _ = e.xrpc_error();
    }
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let Ok(text) = std::str::from_utf8(data) else { return };

    if let Ok(token) = bearer_token(Some(text)) {
        verify(h, token);
    }
    verify(h, text);

    // `<header>\n<claims>`, signed with the server's secret.
    if let Some((header, claims)) = text.split_once('\n') {
        let mut token = b64::encode(header);
        token.push('.');
        b64::encode_into(claims, &mut token);
        let tag = h.key.sign(token.as_bytes());
        token.push('.');
        b64::encode_into(tag, &mut token);
        verify(h, &token);
    }
});
