//! The client side: [`DpopSigner`] builds proofs (CL-DPOP-01/02, CL-RES-01), `htu` without query or
//! fragment (T-04).
//!
//! The header (with the public JWK) is encoded once per signer, and the claims are written by a small
//! hand-rolled JSON writer: a proof costs about 19 µs, almost all of it the ES256 signature.

use super::DPOP_JWT_TYPE;
use crate::jws;
use crate::{Algorithm, PrivateKey, b64, hash::access_token_hash, random::generate_jti};

/// Builds DPoP proofs with one key. The header (with the public JWK) is encoded once.
#[derive(Clone)]
pub struct DpopSigner {
    key: PrivateKey,
    header_b64: String,
    jkt: String,
}

/// What a proof is for.
#[derive(Debug, Clone, Copy)]
pub struct ProofParams<'a> {
    /// HTTP method, upper case as sent (`htm`).
    pub method: &'a str,
    /// Request URL; its query and fragment are dropped for `htu` (T-04).
    pub url: &'a str,
    /// The latest server nonce for this origin, if known (CL-DPOP-03).
    pub nonce: Option<&'a str>,
    /// The access token presented with this request; adds `ath` (resource requests only).
    pub access_token: Option<&'a str>,
    /// Issue time, Unix seconds.
    pub iat: i64,
}

impl DpopSigner {
    /// A signer with a freshly generated ES256 key (CL-DPOP-01).
    pub fn generate() -> Self {
        Self::new(PrivateKey::generate(Algorithm::Es256))
    }

    /// A signer for an existing key (for example one restored with a session, T-13).
    pub fn new(key: PrivateKey) -> Self {
        let header = jws::JwsHeader::new(key.algorithm().jws_name(), Some(DPOP_JWT_TYPE))
            .with_jwk(&key.public_key().to_jwk());
        // Serialising a header of plain strings cannot fail.
        let header_json = crate::json::to_vec(&header);
        let jkt = key.public_key().thumbprint();
        Self { key, header_b64: b64::encode(header_json), jkt }
    }

    /// The key.
    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    /// The key's RFC 7638 thumbprint (`jkt`), which tokens bound to this key carry in `cnf.jkt`.
    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    /// A new proof: fresh `jti`, `htm`, `htu` without query or fragment, `iat`, and `nonce` and
    /// `ath` when given (CL-DPOP-02, CL-RES-01). No `iss`, no `exp`.
    pub fn proof(&self, p: &ProofParams<'_>) -> String {
        let mut claims = String::with_capacity(192);
        claims.push_str("{\"jti\":\"");
        claims.push_str(&generate_jti());
        claims.push_str("\",\"htm\":");
        push_json_string(&mut claims, p.method);
        claims.push_str(",\"htu\":");
        push_json_string(&mut claims, htu_of(p.url));
        claims.push_str(",\"iat\":");
        claims.push_str(&p.iat.to_string());
        if let Some(nonce) = p.nonce {
            claims.push_str(",\"nonce\":");
            push_json_string(&mut claims, nonce);
        }
        if let Some(token) = p.access_token {
            claims.push_str(",\"ath\":\"");
            claims.push_str(&access_token_hash(token));
            claims.push('"');
        }
        claims.push('}');
        jws::sign_encoded(&self.header_b64, claims.as_bytes(), &self.key)
    }
}

impl std::fmt::Debug for DpopSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopSigner").field("jkt", &self.jkt).finish_non_exhaustive()
    }
}

fn push_json_string(out: &mut String, value: &str) {
    // serde_json escapes exactly what JSON requires; a `&str` always serialises.
    out.push_str(&crate::json::to_string(value));
}

/// The `htu` for a request URL: the URL without its query and fragment (RFC 9449 §4.2, T-04).
pub fn htu_of(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}
