//! Cryptography for the AT Protocol auth stack: P-256 and secp256k1 keys, JWK and RFC 7638
//! thumbprints, compact JWS, DPoP proofs (RFC 9449), PKCE (RFC 7636), did:key multikeys, random
//! identifiers, and secret newtypes that never reach a log.
//!
//! P-256 (`ES256`) runs on AWS-LC, secp256k1 (`ES256K`) on libsecp256k1; every signature produced
//! is a raw 64-byte `r‖s` in low-S form. Verification takes an explicit algorithm allowlist and a
//! [`SignaturePolicy`]. Keys are parsed once and cheap to clone.
//!
//! # Example: a DPoP-bound request, end to end
//!
//! ```
//! use atauth_crypto::{Algorithm, PrivateKey, PublicKey, SignaturePolicy};
//! use atauth_crypto::dpop::{DpopNonces, DpopRequest, DpopSigner, DpopVerifier, ProofParams};
//! use atauth_crypto::pkce::{PkceVerifier, verify_s256};
//!
//! // Client: PKCE and a per-session DPoP key.
//! let verifier = PkceVerifier::generate();
//! let challenge = verifier.challenge();
//! let signer = DpopSigner::generate();
//!
//! // Server: stateless rotating nonces from a shared secret.
//! let nonces = DpopNonces::new(&DpopNonces::generate_secret(), DpopNonces::DEFAULT_PERIOD).unwrap();
//! let now = 1_750_000_000;
//! let nonce = nonces.current(now);
//!
//! let proof = signer.proof(&ProofParams {
//!     method: "POST",
//!     url: "https://auth.example.com/oauth/token",
//!     nonce: Some(&nonce),
//!     access_token: None,
//!     iat: now,
//! });
//! let checked = DpopVerifier::default()
//!     .verify(&proof, &DpopRequest::new("POST", "https://auth.example.com/oauth/token"), now, Some(&nonces))
//!     .unwrap();
//! assert_eq!(checked.jkt, signer.jkt());
//! assert!(verify_s256(&verifier, &challenge));
//!
//! // Signing keys round-trip through did:key, and signatures are low-S.
//! let key = PrivateKey::generate(Algorithm::Es256k);
//! let did_key = key.public_key().to_did_key();
//! let public = PublicKey::from_did_key(&did_key).unwrap();
//! let sig = key.sign(b"commit bytes");
//! public.verify(b"commit bytes", &sig, SignaturePolicy::RequireLowS).unwrap();
//! ```

pub mod b64;
pub mod clock;
pub mod dpop;
pub mod hash;
pub mod json;
pub mod jwk;
pub mod jws;
pub mod keys;
pub mod pkce;
pub mod random;
pub mod secret;
pub mod totp;

pub use clock::{Clock, ManualClock, SystemClock};
pub use jwk::{Jwk, Jwks};
pub use jws::HmacKey;
pub use keys::{Algorithm, KeyError, PrivateKey, PublicKey, SignatureError, SignaturePolicy};
pub use secret::{SecretBytes, SecretString};
