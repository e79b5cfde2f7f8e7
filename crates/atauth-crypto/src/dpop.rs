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

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;

use crate::jws::{self, JwsError};
use crate::{
    Algorithm, HmacKey, KeyError, PrivateKey, PublicKey, SecretBytes, SignatureError, SignaturePolicy, b64,
    hash::access_token_hash, hash::sha256, random::generate_jti, secret::ct_eq,
};

/// The JWS `typ` of a DPoP proof.
pub const DPOP_JWT_TYPE: &str = "dpop+jwt";

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
        let header_json = serde_json::to_vec(&header).unwrap_or_default();
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
    out.push_str(&serde_json::to_string(value).unwrap_or_default());
}

/// The `htu` for a request URL: the URL without its query and fragment (RFC 9449 §4.2, T-04).
pub fn htu_of(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

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

// ---------------------------------------------------------------------------------------------

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

/// A replay store failure (I/O, connection), reported by a [`ReplayGuard`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReplayStoreError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Decides whether a nonce in a proof is current. Implemented by [`DpopNonces`]; a server with
/// another scheme implements it itself.
pub trait NonceValidator: Send + Sync {
    /// Whether `nonce` is acceptable at Unix time `now`.
    fn is_valid(&self, nonce: &str, now: i64) -> bool;
}

/// Remembers proof identifiers so each is accepted once (AS-DPOP-05). Backed by a store in the
/// server (SQLite, Redis); [`MemoryReplayGuard`] serves one process.
pub trait ReplayGuard: Send + Sync {
    /// Atomically records `key` until Unix time `expires_at`. Returns `true` if the key was new,
    /// `false` if it was already recorded and has not expired.
    fn check_and_record(
        &self,
        key: [u8; 32],
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, ReplayStoreError>> + Send;
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

// ---------------------------------------------------------------------------------------------

/// Stateless rotating server nonces (AS-DPOP-03, AS-DPOP-07): a nonce is
/// base64url(HMAC-SHA256(secret, period counter)). The server always hands out the *next*
/// period's nonce and accepts the previous, current and next, so a nonce stays usable for two to
/// three periods, and instances that share the secret agree without talking to each other.
pub struct DpopNonces {
    key: HmacKey,
    period_secs: i64,
}

impl DpopNonces {
    /// The default rotation period: 60 s (the reference's value).
    pub const DEFAULT_PERIOD: Duration = Duration::from_secs(60);

    /// Nonces keyed by `secret` (at least 32 bytes), rotating every `period` (at least 1 s).
    pub fn new(secret: &SecretBytes, period: Duration) -> Option<Self> {
        let period_secs = i64::try_from(period.as_secs()).ok().filter(|p| *p >= 1)?;
        Some(Self { key: HmacKey::new(secret)?, period_secs })
    }

    /// A fresh random 32-byte secret.
    pub fn generate_secret() -> SecretBytes {
        SecretBytes::new(crate::random::random_bytes::<32>().to_vec())
    }

    fn for_counter(&self, counter: i64) -> String {
        b64::encode(self.key.sign(&counter.to_be_bytes()))
    }

    /// The nonce to send in `DPoP-Nonce` at Unix time `now`.
    pub fn current(&self, now: i64) -> String {
        self.for_counter(now.div_euclid(self.period_secs) + 1)
    }
}

impl NonceValidator for DpopNonces {
    fn is_valid(&self, nonce: &str, now: i64) -> bool {
        let counter = now.div_euclid(self.period_secs);
        (counter - 1..=counter + 1).any(|c| ct_eq(self.for_counter(c).as_bytes(), nonce.as_bytes()))
    }
}

impl std::fmt::Debug for DpopNonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopNonces").field("period_secs", &self.period_secs).finish_non_exhaustive()
    }
}

/// An in-process [`ReplayGuard`] with a bounded number of live entries. For a single process;
/// several server instances need a shared store.
pub struct MemoryReplayGuard {
    entries: Mutex<HashMap<[u8; 32], i64>>,
    capacity: usize,
    clock: Box<dyn crate::Clock>,
}

impl MemoryReplayGuard {
    /// A guard holding at most `capacity` unexpired entries, reading time from `clock`.
    pub fn new(capacity: usize, clock: impl crate::Clock) -> Self {
        Self { entries: Mutex::new(HashMap::new()), capacity, clock: Box::new(clock) }
    }

    /// Number of entries currently held (expired ones included until the next prune).
    pub fn len(&self) -> usize {
        self.entries.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether no entries are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for MemoryReplayGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryReplayGuard").field("capacity", &self.capacity).finish_non_exhaustive()
    }
}

impl Default for MemoryReplayGuard {
    fn default() -> Self {
        Self::new(1_000_000, crate::SystemClock)
    }
}

/// The error a full [`MemoryReplayGuard`] reports.
#[derive(Debug, thiserror::Error)]
#[error("replay cache is full ({0} live entries)")]
struct ReplayCacheFull(usize);

impl ReplayGuard for MemoryReplayGuard {
    async fn check_and_record(&self, key: [u8; 32], expires_at: i64) -> Result<bool, ReplayStoreError> {
        let now = self.clock.unix_now();
        let mut map = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(&exp) = map.get(&key)
            && exp >= now
        {
            return Ok(false);
        }
        if map.len() >= self.capacity {
            map.retain(|_, exp| *exp >= now);
            if map.len() >= self.capacity {
                // Refusing is safer than forgetting: a forgotten jti could be replayed.
                return Err(ReplayStoreError(Box::new(ReplayCacheFull(map.len()))));
            }
        }
        map.insert(key, expires_at);
        Ok(true)
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

    #[test]
    fn nonces_rotate_and_accept_neighbours() {
        let nonces = DpopNonces::new(&SecretBytes::new(vec![1u8; 32]), Duration::from_secs(60)).unwrap();
        let n = nonces.current(600); // issued for counter 11
        assert!(nonces.is_valid(&n, 600)); // counter 10: accepts 9..=11
        assert!(nonces.is_valid(&n, 660)); // counter 11
        assert!(nonces.is_valid(&n, 720)); // counter 12: accepts 11..=13
        assert!(!nonces.is_valid(&n, 780)); // counter 13: 11 is too old
        assert!(!nonces.is_valid(&n, 539)); // counter 8: 11 is not yet valid
        assert!(!nonces.is_valid("garbage", 600));
        let other = DpopNonces::new(&SecretBytes::new(vec![2u8; 32]), Duration::from_secs(60)).unwrap();
        assert!(!other.is_valid(&n, 600));
        assert!(DpopNonces::new(&SecretBytes::new(vec![1u8; 16]), Duration::from_secs(60)).is_none());
    }
}
