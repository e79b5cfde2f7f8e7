//! Client cost per authenticated request: nonce lookup, DPoP proof with `ath` and `nonce`, and the
//! `Authorization`/`DPoP` header values (the per-request work of `OAuthSession::send` besides I/O).
//! Goal: ≤ 25 µs (design.md). Run: `cargo bench -p atauth-client --bench request`.
#![allow(missing_docs, clippy::unwrap_used)]

use atauth_client::dpop::NonceCache;
use atauth_crypto::dpop::{DpopSigner, ProofParams};
use http::HeaderValue;

fn main() {
    divan::main();
}

#[divan::bench]
fn authenticated_request_overhead(bencher: divan::Bencher<'_, '_>) {
    let signer = DpopSigner::generate();
    let nonces = NonceCache::default();
    nonces.set("https://pds.example.com", "eyJ7S_zG.eyJH0-Z.HX4w-7v");
    let token = "eyJhbGciOiJFUzI1NksiLCJ0eXAiOiJhdCtqd3QifQ.eyJzY29wZSI6ImF0cHJvdG8iLCJzdWIiOiJkaWQ6cGxjOmFiYyJ9.c2lnbmF0dXJl";
    let url = "https://pds.example.com/xrpc/app.bsky.feed.getTimeline?limit=50&cursor=abc";
    bencher.bench_local(|| {
        let nonce = nonces.get("https://pds.example.com");
        let proof = signer.proof(&ProofParams {
            method: "GET",
            url: divan::black_box(url),
            nonce: nonce.as_deref(),
            access_token: Some(token),
            iat: 1_750_000_000,
        });
        let dpop = HeaderValue::from_str(&proof).unwrap();
        let auth = HeaderValue::from_str(&format!("DPoP {token}")).unwrap();
        divan::black_box((dpop, auth))
    });
}
