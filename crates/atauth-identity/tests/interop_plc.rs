//! Interop: resolve accounts of the reference PDS (`@atproto/pds`) through its PLC directory
//! (`@did-plc/server`), both started by `interop/ref-pds.mjs` on loopback.
//!
//! Checks ID-DID-03 (PLC directory URL override), ID-DID-05/06/07 on real documents, ID-DID-08 (XRPC
//! `resolveHandle` on the PDS for `.test` handles) and ID-HANDLE-07 end to end.
//!
//! The harness lives in `interop/` (override with `ATAUTH_INTEROP_DIR`). If it is not installed the test
//! **fails** and says to run `interop/setup.sh`, unless `ATAUTH_SKIP_INTEROP=1` is set.

use std::time::Duration;

use atauth_crypto::PublicKey;
use atauth_identity::did::KeyEncoding;
use atauth_identity::http::SafeHttpClient;
use atauth_identity::{
    AtprotoDidResolver, Did, DidResolver, Handle, HandleResolver, IdentityErrorKind, IdentityResolver,
    TldPolicy, XrpcHandleResolver,
};
use atauth_testkit::interop::{RefPds, RefPeers};
use serde::Deserialize;
use url::Url;

/// `GET <plc>/<did>/data`: the DID's current PLC operation data.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlcData {
    verification_methods: PlcVerificationMethods,
}

#[derive(Debug, Deserialize)]
struct PlcVerificationMethods {
    atproto: String,
}

/// Starts the reference PLC + PDS through the shared test kit (`None`: skipped on request).
fn start_ref_pds() -> Option<(RefPeers, RefPds)> {
    let dir = atauth_testkit::interop::installed()?;
    Some(atauth_testkit::interop::start_ref_pds(&dir, Duration::from_secs(600)))
}

fn dev_http() -> SafeHttpClient {
    SafeHttpClient::builder()
        .allow_http_loopback(true)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_reference_pds_accounts_resolve_through_local_plc() {
    let Some((_pds, ready)) = start_ref_pds() else {
        return;
    };
    let plc = Url::parse(&ready.plc_url).expect("plcUrl");
    let pds = Url::parse(&ready.pds_url).expect("pdsUrl");
    assert!(ready.accounts.len() >= 2, "alice.test and bob.test: {ready:?}");
    let http = dev_http();

    // DID → document through the local PLC directory (ID-DID-03), checked (ID-DID-05/06/07).
    let dids = AtprotoDidResolver::new(http.clone()).plc_directory(plc.clone());
    for account in &ready.accounts {
        let did = Did::new(account.did.as_str()).expect("the PDS returns valid DIDs");
        assert!(did.is_plc());
        let doc = dids.resolve_did(&did).await.expect("PLC document");
        assert_eq!(doc.id, did);
        assert_eq!(doc.claimed_handle(), Some(Handle::new(account.handle.as_str()).expect("handle")));
        assert_eq!(doc.pds_endpoint().expect("#atproto_pds"), pds);
        // @did-plc/server 0.0.1 renders the key in the legacy form (ID-DID-07 allows both).
        let material = doc.signing_key_material().expect("#atproto key");
        assert!(
            matches!(
                material.encoding,
                KeyEncoding::Multikey | KeyEncoding::LegacyK256 | KeyEncoding::LegacyP256
            ),
            "{material:?}"
        );
        let key = doc.signing_key().expect("the signing key parses");
        // The PLC's raw operation data names the same key as a did:key.
        let mut data_url = plc.clone();
        data_url.set_path(&format!("/{did}/data"));
        let data: PlcData = http.get_json_exact_200(&data_url, 64 * 1024).await.expect("PLC /data");
        assert_eq!(
            PublicKey::from_did_key(&data.verification_methods.atproto).expect("did:key"),
            key,
            "document key and PLC data key differ for {did}"
        );
    }

    // Handle → DID through XRPC on the PDS (ID-DID-08); `.test` needs the development policy.
    let alice = &ready.accounts[0];
    let xrpc = XrpcHandleResolver::new(http.clone(), pds.clone()).tld_policy(TldPolicy::development());
    let resolved = xrpc
        .resolve_handle(&Handle::new(alice.handle.as_str()).expect("handle"))
        .await
        .expect("resolveHandle");
    assert_eq!(resolved.as_str(), alice.did);
    assert!(
        xrpc.resolve_handle(&Handle::new("nobody.test").expect("handle"))
            .await
            .expect_err("unknown handle")
            .is_not_found()
    );

    // The whole stack, both directions (ID-HANDLE-07).
    let identity = IdentityResolver::builder(http)
        .plc_directory(plc)
        .xrpc_handle_resolver(pds.clone())
        .tld_policy(TldPolicy::development())
        .build()
        .expect("resolver");
    let input = format!("@{}", alice.handle.to_ascii_uppercase());
    let id = identity.resolve_input(&input).await.expect("alice");
    assert_eq!(id.did.as_str(), alice.did);
    assert_eq!(id.handle.as_ref().map(Handle::as_str), Some(alice.handle.as_str()));
    assert_eq!(id.pds_endpoint, pds);
    let bob = &ready.accounts[1];
    let id = identity.resolve_input(&bob.did).await.expect("bob by DID");
    assert_eq!(id.handle.as_ref().map(Handle::as_str), Some(bob.handle.as_str()));
    let fresh =
        identity.resolve_fresh(&atauth_identity::AtIdentifier::Did(id.did.clone())).await.expect("fresh");
    assert_eq!(fresh.signing_key, id.signing_key);

    // Unknown identifiers are "not found", not failures.
    let err = identity.resolve_input("did:plc:zzzzzzzzzzzzzzzzzzzzzzzz").await.expect_err("unknown DID");
    assert_eq!(err.kind(), IdentityErrorKind::NotFound);

    // Without the development switch, the loopback PLC and PDS are out of reach (CL-DISC-07).
    let prod = AtprotoDidResolver::new(SafeHttpClient::builder().build().expect("client"))
        .plc_directory(Url::parse(&ready.plc_url).expect("plcUrl"));
    assert!(prod.resolve_did(&Did::new(alice.did.as_str()).expect("did")).await.is_err());
}
