//! Compact JWS (RFC 7515) signing and verification with an explicit algorithm allowlist.
//!
//! Only `ES256`, `ES256K` and `HS256` exist here; `none`, RSA and the other HMAC sizes are refused
//! by name before any key is touched, and a key only verifies tokens whose `alg` matches its own
//! type, so algorithm substitution (`alg: none`, `HS256` signed with a public key) cannot work.
//! Decoding is bounded ([`MAX_COMPACT_LEN`]) and strict (base64url without padding, JSON objects,
//! no `crit`).

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};

use crate::{Algorithm, Jwk, PrivateKey, PublicKey, SecretBytes, SignatureError, SignaturePolicy, b64};

/// The longest compact JWS accepted by [`decode`] (16 KiB): DPoP proofs and tokens are far smaller.
pub const MAX_COMPACT_LEN: usize = 16 * 1024;

/// A JWS protected header, as far as atproto uses it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JwsHeader {
    /// Algorithm name (`ES256`, `ES256K`, `HS256`).
    pub alg: String,
    /// Media type of the whole JWS (`dpop+jwt`, `at+jwt`, `refresh+jwt`, `JWT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Embedded public key (DPoP proofs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwk: Option<Jwk>,
    // Presence of `crit` makes the token unacceptable: we implement no extensions (RFC 7515 §4.1.11).
    #[serde(default, skip_serializing)]
    crit: Option<IgnoredAny>,
}

impl JwsHeader {
    /// A header with `alg` and `typ`.
    pub fn new(alg: &str, typ: Option<&str>) -> Self {
        Self { alg: alg.to_owned(), typ: typ.map(str::to_owned), kid: None, jwk: None, crit: None }
    }

    /// Sets `kid`.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Sets `jwk` (public members only).
    #[must_use]
    pub fn with_jwk(mut self, jwk: &Jwk) -> Self {
        self.jwk = Some(jwk.to_public());
        self
    }
}

/// Why a JWS was refused or could not be produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwsError {
    /// Longer than [`MAX_COMPACT_LEN`].
    #[error("JWS is {len} bytes; the limit is {max}")]
    TooLong {
        /// The length found.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not three dot-separated parts.
    #[error("not a compact JWS (expected three dot-separated parts)")]
    NotCompact,
    /// A part is not base64url without padding.
    #[error("JWS {0} is not valid base64url")]
    Base64(&'static str),
    /// The header is not a JSON object of the expected shape.
    #[error("JWS header is invalid: {0}")]
    InvalidHeader(#[source] serde_json::Error),
    /// The payload is not a JSON object of the expected shape.
    #[error("JWS claims are invalid: {0}")]
    InvalidClaims(#[source] serde_json::Error),
    /// `alg` is not on the allowlist (`none`, `RS256`, `HS512`, …).
    #[error("JWS algorithm {alg:?} is not accepted")]
    UnsupportedAlgorithm {
        /// The `alg` found.
        alg: String,
    },
    /// `alg` does not fit the verifying key's type (algorithm substitution).
    #[error("JWS algorithm {alg:?} does not match the verification key ({key})")]
    AlgorithmKeyMismatch {
        /// The `alg` found.
        alg: String,
        /// The key's algorithm.
        key: &'static str,
    },
    /// `typ` is missing or different from what this kind of token must carry.
    #[error("JWS type is {found:?}, expected {expected:?}")]
    WrongType {
        /// The expected media type.
        expected: &'static str,
        /// The `typ` found.
        found: Option<String>,
    },
    /// The header has `crit`: an extension we do not implement.
    #[error("JWS header has a `crit` member; no extensions are supported")]
    CriticalHeader,
    /// The signature does not verify.
    #[error("JWS signature: {0}")]
    Signature(#[from] SignatureError),
    /// Serialising the header or claims failed (only for unserialisable custom claim types).
    #[error("could not serialise JWS part: {0}")]
    Serialize(#[source] serde_json::Error),
}

/// A decoded but not yet verified compact JWS.
#[derive(Debug)]
pub struct UnverifiedJws<'a> {
    signing_input: &'a str,
    header: JwsHeader,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

/// Splits and decodes a compact JWS without verifying it.
pub fn decode(token: &str) -> Result<UnverifiedJws<'_>, JwsError> {
    if token.len() > MAX_COMPACT_LEN {
        return Err(JwsError::TooLong { len: token.len(), max: MAX_COMPACT_LEN });
    }
    let (signing_input, sig_b64) = token.rsplit_once('.').ok_or(JwsError::NotCompact)?;
    let (header_b64, payload_b64) = signing_input.split_once('.').ok_or(JwsError::NotCompact)?;
    if payload_b64.contains('.') {
        return Err(JwsError::NotCompact);
    }
    let header_bytes = b64::decode(header_b64).map_err(|_| JwsError::Base64("header"))?;
    let header: JwsHeader = serde_json::from_slice(&header_bytes).map_err(JwsError::InvalidHeader)?;
    if header.crit.is_some() {
        return Err(JwsError::CriticalHeader);
    }
    let payload = b64::decode(payload_b64).map_err(|_| JwsError::Base64("payload"))?;
    let signature = b64::decode(sig_b64).map_err(|_| JwsError::Base64("signature"))?;
    Ok(UnverifiedJws { signing_input, header, payload, signature })
}

/// Compares media types per RFC 7515 §4.1.9: case-insensitive, `application/` prefix optional.
fn media_type_eq(found: &str, expected: &str) -> bool {
    let strip = |s: &str| -> String {
        let lower = s.to_ascii_lowercase();
        lower.strip_prefix("application/").map(str::to_owned).unwrap_or(lower)
    };
    strip(found) == strip(expected)
}

impl UnverifiedJws<'_> {
    /// The protected header.
    pub fn header(&self) -> &JwsHeader {
        &self.header
    }

    /// The decoded payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The asymmetric algorithm named by `alg`, if it is on the allowlist.
    pub fn algorithm(&self) -> Result<Algorithm, JwsError> {
        Algorithm::from_jws_name(&self.header.alg)
            .ok_or_else(|| JwsError::UnsupportedAlgorithm { alg: self.header.alg.clone() })
    }

    /// Requires `typ` to equal `expected` (for example `dpop+jwt`, `at+jwt`).
    pub fn require_type(&self, expected: &'static str) -> Result<(), JwsError> {
        match self.header.typ.as_deref() {
            Some(found) if media_type_eq(found, expected) => Ok(()),
            found => Err(JwsError::WrongType { expected, found: found.map(str::to_owned) }),
        }
    }

    /// Verifies the signature with `key`; `alg` must name the key's algorithm.
    pub fn verify(&self, key: &PublicKey, policy: SignaturePolicy) -> Result<(), JwsError> {
        let alg = self.algorithm()?;
        if alg != key.algorithm() {
            return Err(JwsError::AlgorithmKeyMismatch {
                alg: self.header.alg.clone(),
                key: key.algorithm().jws_name(),
            });
        }
        key.verify(self.signing_input.as_bytes(), &self.signature, policy)?;
        Ok(())
    }

    /// Verifies an `HS256` signature with `key`; any other `alg` is refused.
    pub fn verify_hmac(&self, key: &HmacKey) -> Result<(), JwsError> {
        if self.header.alg != "HS256" {
            return Err(if Algorithm::from_jws_name(&self.header.alg).is_some() {
                JwsError::AlgorithmKeyMismatch { alg: self.header.alg.clone(), key: "HS256" }
            } else {
                JwsError::UnsupportedAlgorithm { alg: self.header.alg.clone() }
            });
        }
        aws_lc_rs::hmac::verify(&key.0, self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| JwsError::Signature(SignatureError::Invalid))
    }

    /// Deserialises the payload as JSON claims.
    pub fn claims<T: DeserializeOwned>(&self) -> Result<T, JwsError> {
        serde_json::from_slice(&self.payload).map_err(JwsError::InvalidClaims)
    }
}

/// An HMAC-SHA256 key for `HS256` tokens (legacy session JWTs). At least 32 bytes.
pub struct HmacKey(aws_lc_rs::hmac::Key);

impl HmacKey {
    /// The shortest secret accepted: 32 bytes (256 bits), the HS256 security level.
    pub const MIN_LEN: usize = 32;

    /// Builds a key from a secret of at least [`Self::MIN_LEN`] bytes; `None` if shorter.
    pub fn new(secret: &SecretBytes) -> Option<Self> {
        (secret.len() >= Self::MIN_LEN)
            .then(|| Self(aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.expose_secret())))
    }

    /// Raw HMAC-SHA256 of `data` (also used for stateless DPoP nonces).
    pub fn sign(&self, data: &[u8]) -> [u8; 32] {
        let tag = aws_lc_rs::hmac::sign(&self.0, data);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey([redacted])")
    }
}

/// Signs `claims` with `key` under `header` (whose `alg` is set from the key).
pub fn sign(header: &JwsHeader, claims: &impl Serialize, key: &PrivateKey) -> Result<String, JwsError> {
    let mut header = header.clone();
    key.algorithm().jws_name().clone_into(&mut header.alg);
    let header_json = serde_json::to_vec(&header).map_err(JwsError::Serialize)?;
    let payload_json = serde_json::to_vec(claims).map_err(JwsError::Serialize)?;
    Ok(sign_encoded(&b64::encode(header_json), &payload_json, key))
}

/// Signs `payload_json` under an already base64url-encoded header (whose `alg` must match `key`).
/// The fast path for repeated signing with one header, such as DPoP proofs.
pub fn sign_encoded(header_b64: &str, payload_json: &[u8], key: &PrivateKey) -> String {
    let mut out = String::with_capacity(header_b64.len() + payload_json.len() * 4 / 3 + 92);
    out.push_str(header_b64);
    out.push('.');
    b64::encode_into(payload_json, &mut out);
    let sig = key.sign(out.as_bytes());
    out.push('.');
    b64::encode_into(sig, &mut out);
    out
}

/// Signs `claims` with an `HS256` key under `header` (whose `alg` is set to `HS256`).
pub fn sign_hmac(header: &JwsHeader, claims: &impl Serialize, key: &HmacKey) -> Result<String, JwsError> {
    let mut header = header.clone();
    "HS256".clone_into(&mut header.alg);
    let mut out = b64::encode(serde_json::to_vec(&header).map_err(JwsError::Serialize)?);
    out.push('.');
    b64::encode_into(serde_json::to_vec(claims).map_err(JwsError::Serialize)?, &mut out);
    let tag = key.sign(out.as_bytes());
    out.push('.');
    b64::encode_into(tag, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_comparison_follows_rfc7515() {
        assert!(media_type_eq("dpop+jwt", "dpop+jwt"));
        assert!(media_type_eq("DPoP+JWT", "dpop+jwt"));
        assert!(media_type_eq("application/dpop+jwt", "dpop+jwt"));
        assert!(!media_type_eq("JWT", "dpop+jwt"));
        assert!(!media_type_eq("dpop+jwt ", "dpop+jwt"));
    }

    #[test]
    fn decode_rejects_structural_garbage() {
        assert!(matches!(decode("a.b"), Err(JwsError::NotCompact)));
        assert!(matches!(decode("a.b.c.d"), Err(JwsError::NotCompact)));
        assert!(matches!(decode("!!.e30.AA"), Err(JwsError::Base64("header"))));
        // `e30` is `{}`: a header without `alg` is invalid.
        assert!(matches!(decode("e30.e30.AA"), Err(JwsError::InvalidHeader(_))));
        let long = "a".repeat(MAX_COMPACT_LEN + 1);
        assert!(matches!(decode(&long), Err(JwsError::TooLong { .. })));
    }

    #[test]
    fn crit_header_is_refused() {
        let header = b64::encode(br#"{"alg":"ES256","crit":["exp"]}"#);
        let token = format!("{header}.e30.AA");
        assert!(matches!(decode(&token), Err(JwsError::CriticalHeader)));
    }

    #[test]
    fn hmac_round_trip_and_substitution() {
        let key = HmacKey::new(&SecretBytes::new(vec![7u8; 32])).unwrap();
        assert!(HmacKey::new(&SecretBytes::new(vec![7u8; 31])).is_none());
        let token =
            sign_hmac(&JwsHeader::new("HS256", Some("at+jwt")), &serde_json::json!({"sub":"x"}), &key)
                .unwrap();
        let jws = decode(&token).unwrap();
        jws.require_type("at+jwt").unwrap();
        jws.verify_hmac(&key).unwrap();
        let other = HmacKey::new(&SecretBytes::new(vec![8u8; 32])).unwrap();
        assert!(matches!(jws.verify_hmac(&other), Err(JwsError::Signature(SignatureError::Invalid))));
        // An ES256 key must not accept an HS256 token.
        let es = PrivateKey::generate(Algorithm::Es256);
        assert!(matches!(
            jws.verify(es.public_key(), SignaturePolicy::AllowHighS),
            Err(JwsError::UnsupportedAlgorithm { .. })
        ));
    }
}
