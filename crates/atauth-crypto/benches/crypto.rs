//! Micro-benchmarks for the per-request cryptography: ES256/ES256K sign and verify, DPoP proof
//! creation and verification, and the RFC 7638 thumbprint.
//!
//! Run: `cargo bench -p atauth-crypto --bench crypto` (results go to docs/BENCHMARKS.md).

use atauth_crypto::dpop::{DpopRequest, DpopSigner, DpopVerifier, ProofParams};
use atauth_crypto::{Algorithm, PrivateKey, SignaturePolicy};
use divan::{Bencher, black_box};

fn main() {
    divan::main();
}

const MESSAGE: &[u8] = b"eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2In0.eyJqdGkiOiJhYmMiLCJodG0iOiJQT1NUIn0";
const URL: &str = "https://pds.example.com/oauth/token";
const NOW: i64 = 1_750_000_000;

#[divan::bench(args = [Algorithm::Es256, Algorithm::Es256k])]
fn sign(bencher: Bencher<'_, '_>, alg: Algorithm) {
    let key = PrivateKey::generate(alg);
    bencher.bench_local(|| key.sign(black_box(MESSAGE)));
}

#[divan::bench(args = [Algorithm::Es256, Algorithm::Es256k])]
fn verify(bencher: Bencher<'_, '_>, alg: Algorithm) {
    let key = PrivateKey::generate(alg);
    let sig = key.sign(MESSAGE);
    let public = key.public_key().clone();
    bencher.bench_local(|| public.verify(black_box(MESSAGE), black_box(&sig), SignaturePolicy::AllowHighS));
}

#[divan::bench]
fn dpop_proof_build(bencher: Bencher<'_, '_>) {
    let signer = DpopSigner::generate();
    let params = ProofParams {
        method: "POST",
        url: URL,
        nonce: Some("q0Rm1vu0nRCdYdXr7ix0kx7TqvQDbkUWqM9yGmGvAAU"),
        access_token: None,
        iat: NOW,
    };
    bencher.bench_local(|| signer.proof(black_box(&params)));
}

#[divan::bench(args = [Algorithm::Es256, Algorithm::Es256k])]
fn dpop_proof_verify(bencher: Bencher<'_, '_>, alg: Algorithm) {
    let signer = DpopSigner::new(PrivateKey::generate(alg));
    let proof =
        signer.proof(&ProofParams { method: "POST", url: URL, nonce: None, access_token: None, iat: NOW });
    let verifier = DpopVerifier::default();
    let request = DpopRequest::new("POST", URL);
    bencher.bench_local(|| verifier.verify(black_box(&proof), &request, NOW, None));
}

#[divan::bench]
fn thumbprint(bencher: Bencher<'_, '_>) {
    let key = PrivateKey::generate(Algorithm::Es256);
    let public = key.public_key().clone();
    bencher.bench_local(|| public.thumbprint());
}
