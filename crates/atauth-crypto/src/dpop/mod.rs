//! DPoP proofs (RFC 9449): building them (client side) and verifying every §4.3 check (server
//! side), with server nonces and `jti` replay decided through caller-supplied traits.
//!
//! Checklist: CL-DPOP-01/02, CL-RES-01, AS-DPOP-01 … AS-DPOP-07, RS-DPOP-01, traps T-04 and T-05.
//!
//! ```
//! use atauth_crypto::dpop::{DpopSigner, DpopVerifier, DpopRequest, ProofParams};
//!
//! let signer = DpopSigner::generate(); // a fresh ES256 key per session (CL-DPOP-01)
//! let now = 1_700_000_000;
//! let proof = signer.proof(&ProofParams {
//!     method: "POST",
//!     url: "https://pds.example.com/oauth/token",
//!     nonce: None,
//!     access_token: None,
//!     iat: now,
//! });
//! let verified = DpopVerifier::default()
//!     .verify(&proof, &DpopRequest::new("POST", "https://pds.example.com/oauth/token"), now, None)
//!     .unwrap();
//! assert_eq!(verified.jkt, signer.jkt());
//! ```

pub mod wire;

mod nonces;
mod replay;
mod signer;
mod verifier;

pub use nonces::{DpopNonces, NonceValidator};
pub use replay::{MemoryReplayGuard, ReplayGuard, ReplayStoreError};
pub use signer::{DpopSigner, ProofParams, htu_of};
pub use verifier::{DpopConfig, DpopError, DpopRequest, DpopVerifier, VerifiedDpop};

/// The JWS `typ` of a DPoP proof.
pub const DPOP_JWT_TYPE: &str = "dpop+jwt";
