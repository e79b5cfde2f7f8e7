//! The server side: [`DpopVerifier`] runs every RFC 9449 §4.3 check (AS-DPOP-01 … 06, RS-DPOP-01),
//! with nonces and replay decided through the [`NonceValidator`] and [`ReplayGuard`] traits.
//!
//! The checks run in a fixed order: structure, `typ`, `alg` allowlist, `jwk` without private
//! members, signature, required claims, `htm` exact, `htu` normalised and compared without query or
//! fragment, `iat` window, `ath`, nonce; each failure is its own `DpopError` variant. `error_code()`
//! maps a failure to `use_dpop_nonce` or `invalid_dpop_proof`, and the caller picks the status (400
//! JSON at an authorization server, 401 `WWW-Authenticate` at a resource server).
//!
//! `NonceValidator` is synchronous (the shipped `DpopNonces` is a stateless HMAC, nothing to await);
//! `ReplayGuard` is async because servers back it with a database. The replay key is SHA-256 over the
//! key thumbprint and `jti`: fixed size, and one client cannot pre-empt another client's identifiers.
//!
//! `htu` with a query or fragment is accepted by default ([`DpopConfig::allow_htu_query`]): RFC 9449
//! §4.3 item 9 compares `htu` with the request URI ignoring both, the reference does the same, and
//! atrium-oauth puts the query into `htu`. This deliberately reads checklist T-04 (RFC 9449 §4.2,
//! "without query and fragment") as a rule for senders, which our own signer follows.

use std::time::Duration;

use serde::Deserialize;

use super::{DPOP_JWT_TYPE, NonceValidator, ReplayGuard, ReplayStoreError, htu_of};
use crate::jws::{self, JwsError};
use crate::{
    Algorithm, KeyError, PublicKey, SignatureError, SignaturePolicy, hash::access_token_hash, hash::sha256,
    secret::ct_eq,
};

/// Normalises an absolute http(s) URL for `htu` comparison (RFC 9449 §4.3 item 9, RFC 3986
/// §6.2.2–6.2.3): lower-case scheme and host, default port dropped, empty path as `/`.
fn normalize_htu(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
        return None;
    }
    let mut s = parsed.as_str().to_owned();
    if let Some(i) = s.find(['?', '#']) {
        s.truncate(i);
    }
    Some(s)
}

/// Why a DPoP proof was refused. One variant per failed check of RFC 9449 §4.3.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// The request had no `DPoP` header where one is required.
    #[error("DPoP proof is missing")]
    Missing,
    /// More than one `DPoP` header (RFC 9449 §4.3 item 1).
    #[error("more than one DPoP header")]
    MultipleHeaders,
    /// Not a well-formed JWS (item 2).
    #[error("DPoP proof is not a well-formed JWS: {0}")]
    Malformed(#[source] JwsError),
    /// `typ` is not `dpop+jwt` (item 4).
    #[error("DPoP proof `typ` is {found:?}, expected \"dpop+jwt\"")]
    WrongType {
        /// The `typ` found.
        found: Option<String>,
    },
    /// `alg` is not an accepted asymmetric algorithm (item 5): `none`, `HS256`, …
    #[error("DPoP proof `alg` {alg:?} is not accepted")]
    UnsupportedAlgorithm {
        /// The `alg` found.
        alg: String,
    },
    /// No `jwk` header.
    #[error("DPoP proof has no `jwk` header")]
    MissingJwk,
    /// The `jwk` header contains a private key member (item 7).
    #[error("DPoP proof `jwk` contains private key material")]
    JwkHasPrivateKey,
    /// The `jwk` header is not a usable public key.
    #[error("DPoP proof `jwk` is invalid: {0}")]
    InvalidJwk(#[source] KeyError),
    /// `alg` does not match the `jwk`'s curve.
    #[error("DPoP proof `alg` {alg:?} does not match its `jwk`")]
    AlgorithmKeyMismatch {
        /// The `alg` found.
        alg: String,
    },
    /// The signature does not verify with the embedded key (item 6).
    #[error("DPoP proof signature is invalid")]
    BadSignature,
    /// The claims are not a JSON object of the expected types.
    #[error("DPoP proof claims are invalid: {0}")]
    InvalidClaims(#[source] serde_json::Error),
    /// A required claim is absent (item 3: `jti`, `htm`, `htu`, `iat`).
    #[error("DPoP proof is missing the `{0}` claim")]
    MissingClaim(&'static str),
    /// `jti` is longer than the verifier accepts.
    #[error("DPoP proof `jti` is {len} bytes; the limit is {max}")]
    JtiTooLong {
        /// The length found.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `htm` differs from the request method (item 8; exact, case-sensitive).
    #[error("DPoP proof `htm` is {found:?}, expected {expected:?}")]
    MethodMismatch {
        /// The request's method.
        expected: String,
        /// The `htm` found.
        found: String,
    },
    /// `htu` carries a query or fragment and [`DpopConfig::allow_htu_query`] is off (RFC 9449 §4.2
    /// tells senders to leave them out; T-04).
    #[error("DPoP proof `htu` contains a query or fragment")]
    HtuHasQueryOrFragment,
    /// `htu` differs from the request URL (item 9).
    #[error("DPoP proof `htu` is {found:?}, expected {expected:?}")]
    UrlMismatch {
        /// The request's URL without query.
        expected: String,
        /// The `htu` found.
        found: String,
    },
    /// `iat` is outside the accepted window (item 11).
    #[error("DPoP proof `iat` is {skew_secs}s outside the accepted window")]
    IssuedAtOutOfWindow {
        /// How far outside the window (negative: too old; positive: too far in the future).
        skew_secs: i64,
    },
    /// The server requires a nonce and the proof has none (item 10).
    #[error("DPoP proof has no `nonce`; the server requires one")]
    NonceRequired,
    /// The proof's nonce is unknown or expired (item 10).
    #[error("DPoP proof `nonce` is invalid or expired")]
    InvalidNonce,
    /// An access token was presented and the proof has no `ath` (item 12).
    #[error("DPoP proof has no `ath` for the presented access token")]
    MissingAth,
    /// `ath` does not hash the presented access token (item 12).
    #[error("DPoP proof `ath` does not match the access token")]
    AthMismatch,
    /// `ath` is present though no access token was presented (AS endpoints, AS-DPOP-06).
    #[error("DPoP proof has `ath` but no access token was presented")]
    UnexpectedAth,
    /// The `jti` was seen before within its window (AS-DPOP-05).
    #[error("DPoP proof `jti` was already used")]
    Replayed,
    /// The replay store failed; the request cannot be judged.
    #[error("DPoP replay store failed: {0}")]
    ReplayStore(#[source] ReplayStoreError),
}

impl DpopError {
    /// The RFC 9449 error code: `use_dpop_nonce` for nonce problems (the client should retry with
    /// the nonce in the response's `DPoP-Nonce` header), `server_error` when the replay store
    /// failed, `invalid_dpop_proof` otherwise. The caller picks the status: 400 JSON at the
    /// authorization server, 401 `WWW-Authenticate: DPoP` at a resource server (AS-DPOP-03).
    pub fn error_code(&self) -> &'static str {
        match self {
            Self::NonceRequired | Self::InvalidNonce => "use_dpop_nonce",
            Self::ReplayStore(_) => "server_error",
            _ => "invalid_dpop_proof",
        }
    }

    /// Whether the client should retry with the server's current nonce.
    pub fn is_nonce_error(&self) -> bool {
        matches!(self, Self::NonceRequired | Self::InvalidNonce)
    }
}

/// The parts of the HTTP request a proof is checked against.
#[derive(Debug, Clone, Copy)]
pub struct DpopRequest<'a> {
    /// The request method.
    pub method: &'a str,
    /// The request's public URL, built from configuration, not from `Host` (T-05). A query or
    /// fragment is ignored.
    pub url: &'a str,
    /// The access token presented in `Authorization: DPoP …`, if any.
    pub access_token: Option<&'a str>,
}

impl<'a> DpopRequest<'a> {
    /// A request without an access token (authorization-server endpoints).
    pub fn new(method: &'a str, url: &'a str) -> Self {
        Self { method, url, access_token: None }
    }

    /// Adds the presented access token (resource requests).
    #[must_use]
    pub fn with_access_token(mut self, token: &'a str) -> Self {
        self.access_token = Some(token);
        self
    }
}

/// A proof that passed every check.
#[derive(Debug, Clone)]
pub struct VerifiedDpop {
    /// The proof key's RFC 7638 thumbprint: bind tokens to it (`cnf.jkt`).
    pub jkt: String,
    /// The proof key.
    pub public_key: PublicKey,
    /// The proof's `jti`.
    pub jti: String,
    /// The proof's `iat`.
    pub iat: i64,
    /// The proof's `nonce`, if any.
    pub nonce: Option<String>,
}

impl VerifiedDpop {
    /// The replay-store key for this proof: SHA-256 over the key thumbprint and `jti`, so stored
    /// keys are fixed-size and one client cannot block another's identifiers.
    pub fn replay_key(&self) -> [u8; 32] {
        let mut input = Vec::with_capacity(self.jkt.len() + self.jti.len() + 6);
        input.extend_from_slice(b"dpop\0");
        input.extend_from_slice(self.jkt.as_bytes());
        input.push(0);
        input.extend_from_slice(self.jti.as_bytes());
        sha256(input)
    }
}

/// Limits a verifier applies.
#[derive(Debug, Clone)]
pub struct DpopConfig {
    /// Algorithms accepted for proofs. Default: ES256 and ES256K.
    pub algorithms: Vec<Algorithm>,
    /// How old a proof may be, beyond the clock tolerance. Default 10 s (the reference's value).
    pub max_age: Duration,
    /// Allowed clock difference in either direction. Default 180 s (the reference's value), so
    /// `iat` is accepted from now − 190 s to now + 180 s (AS-DPOP-04).
    pub clock_tolerance: Duration,
    /// The longest `jti` accepted, in bytes. Default 128.
    pub max_jti_len: usize,
    /// Accept an `htu` carrying a query or fragment, which the comparison ignores (RFC 9449 §4.3
    /// item 9: `htu` is compared with the request URI without query and fragment). Default `true`,
    /// like the reference: atrium-oauth and other clients put the query into `htu`. Scheme, host,
    /// port and path must match either way. `false` refuses such a proof with
    /// [`DpopError::HtuHasQueryOrFragment`], the stricter reading of checklist T-04.
    pub allow_htu_query: bool,
}

impl Default for DpopConfig {
    fn default() -> Self {
        Self {
            algorithms: vec![Algorithm::Es256, Algorithm::Es256k],
            max_age: Duration::from_secs(10),
            clock_tolerance: Duration::from_secs(180),
            max_jti_len: 128,
            allow_htu_query: true,
        }
    }
}

/// Verifies DPoP proofs (RFC 9449 §4.3).
#[derive(Debug, Clone, Default)]
pub struct DpopVerifier {
    config: DpopConfig,
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<serde_json::Number>,
    nonce: Option<String>,
    ath: Option<String>,
}

impl DpopVerifier {
    /// A verifier with `config`.
    pub fn new(config: DpopConfig) -> Self {
        Self { config }
    }

    /// The configuration.
    pub fn config(&self) -> &DpopConfig {
        &self.config
    }

    /// Unix time until which a proof issued at `iat` stays acceptable, and so must be remembered.
    pub fn replay_window_end(&self, iat: i64) -> i64 {
        let window = self.config.max_age.saturating_add(self.config.clock_tolerance);
        iat.saturating_add(i64::try_from(window.as_secs()).unwrap_or(i64::MAX))
    }

    /// Runs every stateless check of RFC 9449 §4.3 and the nonce check. `nonces: None` means the
    /// verifier does not require nonces (clients, tests); a server passes its validator.
    /// The `jti` is not recorded: use [`Self::verify_and_record`] on servers.
    pub fn verify(
        &self,
        proof: &str,
        request: &DpopRequest<'_>,
        now: i64,
        nonces: Option<&dyn NonceValidator>,
    ) -> Result<VerifiedDpop, DpopError> {
        let jws = jws::decode(proof).map_err(DpopError::Malformed)?;
        let header = jws.header();
        if let Err(JwsError::WrongType { found, .. }) = jws.require_type(DPOP_JWT_TYPE) {
            return Err(DpopError::WrongType { found });
        }
        let alg = Algorithm::from_jws_name(&header.alg)
            .filter(|a| self.config.algorithms.contains(a))
            .ok_or_else(|| DpopError::UnsupportedAlgorithm { alg: header.alg.clone() })?;
        let jwk = header.jwk.as_ref().ok_or(DpopError::MissingJwk)?;
        if jwk.has_private_members() {
            return Err(DpopError::JwkHasPrivateKey);
        }
        let key = PublicKey::from_jwk(jwk).map_err(DpopError::InvalidJwk)?;
        if key.algorithm() != alg {
            return Err(DpopError::AlgorithmKeyMismatch { alg: header.alg.clone() });
        }
        // JOSE signers (WebCrypto, jose) emit high-S half the time; replay protection rests on jti.
        jws.verify(&key, SignaturePolicy::AllowHighS).map_err(|e| match e {
            JwsError::Signature(
                SignatureError::BadLength { .. } | SignatureError::Invalid | SignatureError::HighS,
            ) => DpopError::BadSignature,
            other => DpopError::Malformed(other),
        })?;

        let claims: ProofClaims = jws.claims().map_err(|e| match e {
            JwsError::InvalidClaims(e) => DpopError::InvalidClaims(e),
            other => DpopError::Malformed(other),
        })?;
        let jti = claims.jti.filter(|j| !j.is_empty()).ok_or(DpopError::MissingClaim("jti"))?;
        let htm = claims.htm.ok_or(DpopError::MissingClaim("htm"))?;
        let htu = claims.htu.ok_or(DpopError::MissingClaim("htu"))?;
        let iat = claims.iat.ok_or(DpopError::MissingClaim("iat"))?;
        let iat = iat
            .as_i64()
            .or_else(|| iat.as_f64().filter(|f| f.is_finite()).map(|f| f.floor() as i64))
            .ok_or(DpopError::MissingClaim("iat"))?;
        if jti.len() > self.config.max_jti_len {
            return Err(DpopError::JtiTooLong { len: jti.len(), max: self.config.max_jti_len });
        }

        if htm != request.method {
            return Err(DpopError::MethodMismatch { expected: request.method.to_owned(), found: htm });
        }
        if !self.config.allow_htu_query && htu.contains(['?', '#']) {
            return Err(DpopError::HtuHasQueryOrFragment);
        }
        let expected_htu = normalize_htu(request.url);
        if expected_htu.is_none() || expected_htu != normalize_htu(&htu) {
            return Err(DpopError::UrlMismatch { expected: htu_of(request.url).to_owned(), found: htu });
        }

        let tolerance = i64::try_from(self.config.clock_tolerance.as_secs()).unwrap_or(i64::MAX);
        let max_age = i64::try_from(self.config.max_age.as_secs()).unwrap_or(i64::MAX);
        if iat > now.saturating_add(tolerance) {
            return Err(DpopError::IssuedAtOutOfWindow { skew_secs: iat - now - tolerance });
        }
        let oldest = now.saturating_sub(tolerance).saturating_sub(max_age);
        if iat < oldest {
            return Err(DpopError::IssuedAtOutOfWindow { skew_secs: iat - oldest });
        }

        match (request.access_token, claims.ath.as_deref()) {
            (Some(token), Some(ath)) => {
                if !ct_eq(access_token_hash(token).as_bytes(), ath.as_bytes()) {
                    return Err(DpopError::AthMismatch);
                }
            }
            (Some(_), None) => return Err(DpopError::MissingAth),
            (None, Some(_)) => return Err(DpopError::UnexpectedAth),
            (None, None) => {}
        }

        if let Some(validator) = nonces {
            match claims.nonce.as_deref() {
                None => return Err(DpopError::NonceRequired),
                Some(n) if !validator.is_valid(n, now) => return Err(DpopError::InvalidNonce),
                Some(_) => {}
            }
        }

        Ok(VerifiedDpop { jkt: key.thumbprint(), public_key: key, jti, iat, nonce: claims.nonce })
    }

    /// [`Self::verify`], then records the proof in `replay` so it is accepted once (AS-DPOP-05).
    pub async fn verify_and_record(
        &self,
        proof: &str,
        request: &DpopRequest<'_>,
        now: i64,
        nonces: Option<&dyn NonceValidator>,
        replay: &impl ReplayGuard,
    ) -> Result<VerifiedDpop, DpopError> {
        let verified = self.verify(proof, request, now, nonces)?;
        let expires_at = self.replay_window_end(verified.iat).max(now);
        match replay.check_and_record(verified.replay_key(), expires_at).await {
            Ok(true) => Ok(verified),
            Ok(false) => Err(DpopError::Replayed),
            Err(e) => Err(DpopError::ReplayStore(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_drops_query_and_fragment() {
        assert_eq!(htu_of("https://a.example/x?y=1#z"), "https://a.example/x");
        assert_eq!(htu_of("https://a.example/x#z?y"), "https://a.example/x");
        assert_eq!(htu_of("https://a.example/x"), "https://a.example/x");
    }

    #[test]
    fn htu_normalisation_follows_rfc3986() {
        assert_eq!(
            normalize_htu("HTTPS://Server.Example.com:443").as_deref(),
            Some("https://server.example.com/")
        );
        assert_eq!(
            normalize_htu("http://localhost:2583/xrpc/a?b").as_deref(),
            Some("http://localhost:2583/xrpc/a")
        );
        assert_eq!(normalize_htu("ftp://x.example/"), None);
        assert_eq!(normalize_htu("/relative"), None);
    }
}
