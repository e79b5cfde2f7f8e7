//! Elliptic-curve keys for atproto: P-256 (`ES256`, on AWS-LC) and secp256k1 (`ES256K`, on
//! libsecp256k1).
//!
//! Both curves sign with SHA-256 and produce raw 64-byte `r‖s` signatures, always in low-S form
//! (SPEC-CRYPTO §ECDSA Signature Malleability). Verification takes a [`SignaturePolicy`]: atproto
//! record and service-auth signatures require low-S; JOSE signatures (DPoP proofs, client
//! assertions, access tokens) accept either half, because WebCrypto and most JOSE libraries do not
//! normalise `s`, and replay protection there rests on `jti`, not on signature bytes.
//!
//! Public keys are parsed once: a [`PublicKey`] holds the curve library's parsed form, so a server
//! verifying with its own key, or a cached DID signing key, never re-parses per operation.
//! [`PublicKey`] and [`PrivateKey`] are `Arc`s around that form (`aws_lc_rs` `ParsedPublicKey` /
//! `EcdsaKeyPair`, `secp256k1::PublicKey`), so cloning is a reference-count bump.
//!
//! Import and export: JWK (with and without `d`), PKCS#8 (P-256), raw hex scalars (secp256k1 repo
//! and PLC rotation keys), Multikey / `did:key` (multicodec `0x1200` / `0xe7`, base58btc) and the
//! legacy uncompressed multibase form. A compressed P-256 point is decompressed by letting AWS-LC
//! parse it and re-serialise it (its SubjectPublicKeyInfo ends with the uncompressed point), which
//! avoids a second curve library.
//!
//! Low-S: libsecp256k1 always signs low-S; AWS-LC does not, so a P-256 `s` is folded into the lower
//! half of the group order after signing. DER-encoded signatures are always refused (wrong length),
//! as atproto requires.
//!
//! Secret memory: secp256k1 secret keys are `Copy` in their crate, so [`PrivateKey`] erases its copy
//! on drop; AWS-LC cleanses freed key memory itself.

use std::sync::Arc;

use aws_lc_rs::encoding::{AsBigEndian as _, AsDer as _};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, ParsedPublicKey,
};

use crate::{SecretBytes, SecretString, b64, hash::sha256, jwk::Jwk};

/// An asymmetric JWS algorithm supported by atproto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256 (`ES256`). Required for DPoP and client assertions.
    Es256,
    /// ECDSA on secp256k1 with SHA-256 (`ES256K`, RFC 8812). Common for atproto signing keys.
    Es256k,
}

impl Algorithm {
    /// The JWS `alg` name.
    pub const fn jws_name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es256k => "ES256K",
        }
    }

    /// Parses a JWS `alg` name (case-sensitive, RFC 7515 §4.1.1).
    pub fn from_jws_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Self::Es256),
            "ES256K" => Some(Self::Es256k),
            _ => None,
        }
    }

    /// The JWK `crv` name (RFC 7518 §6.2.1.1, RFC 8812 §3.1).
    pub const fn jwk_curve(self) -> &'static str {
        match self {
            Self::Es256 => "P-256",
            Self::Es256k => "secp256k1",
        }
    }

    /// The multicodec prefix (unsigned varint) for a compressed public key of this curve:
    /// `p256-pub` (0x1200) or `secp256k1-pub` (0xe7).
    const fn multicodec_prefix(self) -> [u8; 2] {
        match self {
            Self::Es256 => [0x80, 0x24],
            Self::Es256k => [0xe7, 0x01],
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.jws_name())
    }
}

/// Whether a verifier accepts high-S ECDSA signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignaturePolicy {
    /// Only low-S signatures (atproto records and inter-service JWTs, SVC-04).
    RequireLowS,
    /// Either half of the curve order (JOSE: DPoP proofs, client assertions, OAuth tokens).
    AllowHighS,
}

/// Why a key could not be imported or exported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The JWK `kty` is not `EC`.
    #[error("unsupported JWK key type {kty:?}; only \"EC\" is supported")]
    UnsupportedKeyType {
        /// The `kty` found.
        kty: String,
    },
    /// The curve is neither P-256 nor secp256k1.
    #[error("unsupported curve {crv:?}; expected \"P-256\" or \"secp256k1\"")]
    UnsupportedCurve {
        /// The curve name found.
        crv: String,
    },
    /// A required JWK member is absent.
    #[error("JWK member `{0}` is missing")]
    MissingMember(&'static str),
    /// A member or encoded key is not valid base64url/base58/hex, or has the wrong length.
    #[error("{0} is malformed")]
    Malformed(&'static str),
    /// The bytes do not describe a point on the curve.
    #[error("the public key is not a valid point on the curve")]
    InvalidPoint,
    /// The private scalar is zero or not below the group order, or the PKCS#8 document is invalid.
    #[error("the private key is invalid")]
    InvalidPrivateKey,
    /// The private and public parts of a JWK do not belong together.
    #[error("the private key does not match the public key")]
    InconsistentKeyPair,
    /// A multikey carries a multicodec other than `p256-pub` or `secp256k1-pub`.
    #[error("unsupported multicodec prefix in multikey")]
    UnsupportedMulticodec,
    /// A multibase string does not use base58btc (`z` prefix).
    #[error("multibase value must be base58btc (prefix `z`)")]
    UnsupportedMultibase,
    /// The string is not a `did:key:` identifier.
    #[error("not a did:key identifier")]
    NotDidKey,
    /// The operation is defined for the other curve only (for example PKCS#8 export of secp256k1).
    #[error("operation not supported for {alg}")]
    UnsupportedForAlgorithm {
        /// The key's algorithm.
        alg: Algorithm,
    },
    /// The JWK's `alg` member names an algorithm that does not fit its curve.
    #[error("JWK `alg` {alg:?} does not match curve {crv}")]
    AlgorithmMismatch {
        /// The `alg` found.
        alg: String,
        /// The key's curve.
        crv: &'static str,
    },
}

/// Why a signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// ECDSA signatures here are raw 64-byte `r‖s`; DER or truncated values are refused.
    #[error("signature is {len} bytes; expected 64-byte r||s")]
    BadLength {
        /// The length found.
        len: usize,
    },
    /// The signature is in high-S form and the policy requires low-S.
    #[error("signature is not in low-S form")]
    HighS,
    /// The signature does not verify with this key.
    #[error("signature does not verify")]
    Invalid,
}

// ---------------------------------------------------------------------------------------------
// P-256 low-S arithmetic on big-endian 32-byte integers. `s` is public, so nothing here needs to
// be constant-time.

/// The order `n` of the P-256 group.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc,
    0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
/// `n / 2` (rounded down) for P-256: the largest low-S value.
const P256_HALF_N: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xde,
    0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

fn p256_s_is_high(s: &[u8]) -> bool {
    // Big-endian byte strings of equal length compare like the integers they encode.
    s > P256_HALF_N.as_slice()
}

/// Replaces `s` by `n - s` in a raw P-256 signature when `s` is high.
fn p256_normalize_s(sig: &mut [u8; 64]) {
    if !p256_s_is_high(&sig[32..]) {
        return;
    }
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let diff = i16::from(P256_N[i]) - i16::from(sig[32 + i]) - borrow;
        borrow = i16::from(diff < 0);
        // `diff + 256` when negative is the byte value; truncation to u8 is the intent.
        sig[32 + i] = (diff.rem_euclid(256)) as u8;
    }
}

// ---------------------------------------------------------------------------------------------

/// A public key on P-256 or secp256k1, parsed once and cheap to clone.
#[derive(Clone)]
pub struct PublicKey(Arc<PublicInner>);

enum PublicInner {
    P256 { parsed: ParsedPublicKey, uncompressed: [u8; 65] },
    K256(secp256k1::PublicKey),
}

impl PublicKey {
    /// Parses a SEC1 point, compressed (33 bytes) or uncompressed (65 bytes).
    pub fn from_sec1_bytes(alg: Algorithm, bytes: &[u8]) -> Result<Self, KeyError> {
        match alg {
            Algorithm::Es256 => {
                let parsed = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, bytes)
                    .map_err(|_| KeyError::InvalidPoint)?;
                let uncompressed = if bytes.len() == 65 {
                    let mut u = [0u8; 65];
                    u.copy_from_slice(bytes);
                    u
                } else {
                    // AWS-LC serialises SubjectPublicKeyInfo with the uncompressed point last.
                    let der = parsed.as_der().map_err(|_| KeyError::InvalidPoint)?;
                    let der = der.as_ref();
                    let tail = der.get(der.len().saturating_sub(65)..).ok_or(KeyError::InvalidPoint)?;
                    let mut u = [0u8; 65];
                    u.copy_from_slice(tail);
                    if u[0] != 0x04 {
                        return Err(KeyError::InvalidPoint);
                    }
                    u
                };
                Ok(Self(Arc::new(PublicInner::P256 { parsed, uncompressed })))
            }
            Algorithm::Es256k => secp256k1::PublicKey::from_slice(bytes)
                .map(|k| Self(Arc::new(PublicInner::K256(k))))
                .map_err(|_| KeyError::InvalidPoint),
        }
    }

    /// Builds a key from its affine coordinates (32 bytes each, big-endian).
    pub fn from_coordinates(alg: Algorithm, x: &[u8; 32], y: &[u8; 32]) -> Result<Self, KeyError> {
        let mut point = [0u8; 65];
        point[0] = 0x04;
        point[1..33].copy_from_slice(x);
        point[33..].copy_from_slice(y);
        Self::from_sec1_bytes(alg, &point)
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match &*self.0 {
            PublicInner::P256 { .. } => Algorithm::Es256,
            PublicInner::K256(_) => Algorithm::Es256k,
        }
    }

    /// The uncompressed SEC1 point (`04 ‖ x ‖ y`).
    pub fn to_uncompressed(&self) -> [u8; 65] {
        match &*self.0 {
            PublicInner::P256 { uncompressed, .. } => *uncompressed,
            PublicInner::K256(k) => k.serialize_uncompressed(),
        }
    }

    /// The compressed SEC1 point (`02|03 ‖ x`).
    pub fn to_compressed(&self) -> [u8; 33] {
        match &*self.0 {
            PublicInner::P256 { uncompressed, .. } => {
                let mut out = [0u8; 33];
                out[0] = 0x02 | (uncompressed[64] & 1);
                out[1..].copy_from_slice(&uncompressed[1..33]);
                out
            }
            PublicInner::K256(k) => k.serialize(),
        }
    }

    /// Parses an atproto Multikey value (`publicKeyMultibase` of a `Multikey` verification
    /// method): base58btc with a `z` prefix over a multicodec-tagged compressed point (ID-DID-07).
    pub fn from_multikey(multibase: &str) -> Result<Self, KeyError> {
        let bytes = decode_base58btc(multibase)?;
        let (alg, point) = if let Some(p) = bytes.strip_prefix(&Algorithm::Es256.multicodec_prefix()) {
            (Algorithm::Es256, p)
        } else if let Some(p) = bytes.strip_prefix(&Algorithm::Es256k.multicodec_prefix()) {
            (Algorithm::Es256k, p)
        } else {
            return Err(KeyError::UnsupportedMulticodec);
        };
        // Multikey carries compressed points only (SPEC-CRYPTO §Public Key Encoding).
        if point.len() != 33 {
            return Err(KeyError::Malformed("multikey point"));
        }
        Self::from_sec1_bytes(alg, point)
    }

    /// Encodes the key as an atproto Multikey string (`z…`).
    pub fn to_multikey(&self) -> String {
        let mut bytes = Vec::with_capacity(35);
        bytes.extend_from_slice(&self.algorithm().multicodec_prefix());
        bytes.extend_from_slice(&self.to_compressed());
        format!("z{}", bs58::encode(bytes).into_string())
    }

    /// Parses a legacy `publicKeyMultibase` (verification-method types
    /// `EcdsaSecp256r1VerificationKey2019` / `EcdsaSecp256k1VerificationKey2019`): base58btc of
    /// a bare SEC1 point without a multicodec prefix (ID-DID-07).
    pub fn from_legacy_multibase(alg: Algorithm, multibase: &str) -> Result<Self, KeyError> {
        let bytes = decode_base58btc(multibase)?;
        Self::from_sec1_bytes(alg, &bytes)
    }

    /// Parses a `did:key:z…` identifier.
    pub fn from_did_key(did_key: &str) -> Result<Self, KeyError> {
        let multikey = did_key.strip_prefix("did:key:").ok_or(KeyError::NotDidKey)?;
        Self::from_multikey(multikey)
    }

    /// Formats the key as `did:key:z…`.
    pub fn to_did_key(&self) -> String {
        format!("did:key:{}", self.to_multikey())
    }

    /// The public JWK (`kty`, `crv`, `x`, `y`; no `kid`, `alg` or `use`).
    pub fn to_jwk(&self) -> Jwk {
        let u = self.to_uncompressed();
        Jwk::ec(self.algorithm().jwk_curve(), b64::encode(&u[1..33]), b64::encode(&u[33..]))
    }

    /// The RFC 7638 JWK SHA-256 thumbprint, base64url: the DPoP `jkt` (RFC 9449 §6.1, AS-FMT-03).
    pub fn thumbprint(&self) -> String {
        let u = self.to_uncompressed();
        let mut canonical = String::with_capacity(140);
        // RFC 7638 §3.2: required members only, lexicographic order, no whitespace.
        canonical.push_str("{\"crv\":\"");
        canonical.push_str(self.algorithm().jwk_curve());
        canonical.push_str("\",\"kty\":\"EC\",\"x\":\"");
        b64::encode_into(&u[1..33], &mut canonical);
        canonical.push_str("\",\"y\":\"");
        b64::encode_into(&u[33..], &mut canonical);
        canonical.push_str("\"}");
        b64::encode(sha256(canonical.as_bytes()))
    }

    /// Verifies a raw `r‖s` signature over `message` (hashed with SHA-256).
    pub fn verify(
        &self,
        message: &[u8],
        signature: &[u8],
        policy: SignaturePolicy,
    ) -> Result<(), SignatureError> {
        if signature.len() != 64 {
            return Err(SignatureError::BadLength { len: signature.len() });
        }
        match &*self.0 {
            PublicInner::P256 { parsed, .. } => {
                if policy == SignaturePolicy::RequireLowS && p256_s_is_high(&signature[32..]) {
                    return Err(SignatureError::HighS);
                }
                parsed.verify_sig(message, signature).map_err(|_| SignatureError::Invalid)
            }
            PublicInner::K256(key) => {
                let mut sig = secp256k1::ecdsa::Signature::from_compact(signature)
                    .map_err(|_| SignatureError::Invalid)?;
                let before = sig;
                // libsecp256k1 only verifies low-S signatures; normalise when policy allows.
                sig.normalize_s();
                if sig != before && policy == SignaturePolicy::RequireLowS {
                    return Err(SignatureError::HighS);
                }
                let msg = secp256k1::Message::from_digest(sha256(message));
                secp256k1::ecdsa::verify(&sig, msg, key).map_err(|_| SignatureError::Invalid)
            }
        }
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm() == other.algorithm() && self.to_compressed() == other.to_compressed()
    }
}

impl Eq for PublicKey {}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PublicKey").field(&self.to_did_key()).finish()
    }
}

fn decode_base58btc(multibase: &str) -> Result<Vec<u8>, KeyError> {
    let body = multibase.strip_prefix('z').ok_or(KeyError::UnsupportedMultibase)?;
    // The longest value here is a 65-byte point (about 89 characters); refuse absurd input early.
    if body.len() > 128 {
        return Err(KeyError::Malformed("base58btc value"));
    }
    bs58::decode(body).into_vec().map_err(|_| KeyError::Malformed("base58btc value"))
}

// ---------------------------------------------------------------------------------------------

/// A private signing key on P-256 or secp256k1. Cheap to clone; `Debug` never prints the secret.
///
/// Signatures are raw `r‖s`, deterministic in form for secp256k1 (RFC 6979) and always low-S.
#[derive(Clone)]
pub struct PrivateKey(Arc<PrivateInner>);

struct PrivateInner {
    secret: SecretInner,
    public: PublicKey,
}

enum SecretInner {
    // AWS-LC cleanses key memory when the EVP_PKEY is freed.
    P256(EcdsaKeyPair),
    K256(K256Secret),
}

/// A secp256k1 secret scalar, erased when dropped.
struct K256Secret(secp256k1::SecretKey);

impl Drop for K256Secret {
    fn drop(&mut self) {
        self.0.non_secure_erase();
    }
}

impl PrivateKey {
    /// Generates a fresh key from the operating system's CSPRNG.
    pub fn generate(alg: Algorithm) -> Self {
        match alg {
            Algorithm::Es256 => {
                #[allow(clippy::expect_used)]
                let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                    .expect("P-256 key generation failed: the OS random source is broken");
                Self::from_p256_pair(pair)
            }
            Algorithm::Es256k => loop {
                let bytes = SecretBytes::new(crate::random::random_bytes::<32>().to_vec());
                // A random 32-byte value is outside [1, n) with probability about 2^-128.
                if let Ok(key) = Self::from_raw_scalar(Algorithm::Es256k, bytes.expose_secret()) {
                    return key;
                }
            },
        }
    }

    fn from_p256_pair(pair: EcdsaKeyPair) -> Self {
        let mut uncompressed = [0u8; 65];
        uncompressed.copy_from_slice(pair.public_key().as_ref());
        #[allow(clippy::expect_used)]
        let public = PublicKey::from_sec1_bytes(Algorithm::Es256, &uncompressed)
            .expect("AWS-LC produced an invalid P-256 public key");
        Self(Arc::new(PrivateInner { secret: SecretInner::P256(pair), public }))
    }

    fn from_k256_secret(secret: secp256k1::SecretKey) -> Self {
        let public = PublicKey(Arc::new(PublicInner::K256(secret.public_key())));
        Self(Arc::new(PrivateInner { secret: SecretInner::K256(K256Secret(secret)), public }))
    }

    /// Imports a raw big-endian private scalar (32 bytes), as atproto stores repo signing and PLC
    /// rotation keys (hex in configuration files).
    pub fn from_raw_scalar(alg: Algorithm, scalar: &[u8]) -> Result<Self, KeyError> {
        let bytes: [u8; 32] = scalar.try_into().map_err(|_| KeyError::Malformed("private scalar"))?;
        match alg {
            Algorithm::Es256k => secp256k1::SecretKey::from_secret_bytes(bytes)
                .map(Self::from_k256_secret)
                .map_err(|_| KeyError::InvalidPrivateKey),
            Algorithm::Es256 => {
                // RFC 5915 ECPrivateKey without the optional public key; AWS-LC derives it.
                let mut der = Vec::with_capacity(51);
                der.extend_from_slice(&[0x30, 0x31, 0x02, 0x01, 0x01, 0x04, 0x20]);
                der.extend_from_slice(&bytes);
                der.extend_from_slice(&[
                    0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
                ]);
                let der = SecretBytes::new(der);
                EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, der.expose_secret())
                    .map(Self::from_p256_pair)
                    .map_err(|_| KeyError::InvalidPrivateKey)
            }
        }
    }

    /// The raw big-endian private scalar (32 bytes).
    pub fn to_raw_scalar(&self) -> SecretBytes {
        match &self.0.secret {
            SecretInner::P256(pair) => match pair.private_key().as_be_bytes() {
                Ok(bin) => SecretBytes::new(bin.as_ref().to_vec()),
                // AWS-LC cannot fail to serialise a key it holds; keep the type total anyway.
                Err(_) => SecretBytes::new(Vec::new()),
            },
            SecretInner::K256(k) => SecretBytes::new(k.0.to_secret_bytes().to_vec()),
        }
    }

    /// Imports a secp256k1 key from 64 hex characters (the reference PDS's
    /// `PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX` format) or a P-256 key given as hex likewise.
    pub fn from_hex(alg: Algorithm, hex_scalar: &str) -> Result<Self, KeyError> {
        let bytes = SecretBytes::new(
            hex::decode(hex_scalar.trim()).map_err(|_| KeyError::Malformed("hex private key"))?,
        );
        Self::from_raw_scalar(alg, bytes.expose_secret())
    }

    /// The private scalar as 64 lowercase hex characters.
    pub fn to_hex(&self) -> SecretString {
        SecretString::new(hex::encode(self.to_raw_scalar().expose_secret()))
    }

    /// Imports a P-256 key from a PKCS#8 v1 or v2 DER document.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map(Self::from_p256_pair)
            .map_err(|_| KeyError::InvalidPrivateKey)
    }

    /// Exports a P-256 key as a PKCS#8 v1 DER document. secp256k1 keys use [`Self::to_hex`].
    pub fn to_pkcs8_der(&self) -> Result<SecretBytes, KeyError> {
        match &self.0.secret {
            SecretInner::P256(pair) => pair
                .to_pkcs8v1()
                .map(|doc| SecretBytes::new(doc.as_ref().to_vec()))
                .map_err(|_| KeyError::InvalidPrivateKey),
            SecretInner::K256(_) => Err(KeyError::UnsupportedForAlgorithm { alg: Algorithm::Es256k }),
        }
    }

    /// Imports a private JWK (`kty: EC`, `crv`, `x`, `y`, `d`); the public part must match `d`.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        let public = PublicKey::from_jwk(jwk)?;
        let d = jwk.d.as_ref().ok_or(KeyError::MissingMember("d"))?;
        let scalar = SecretBytes::new(
            b64::decode_array::<32>(d.expose_secret()).ok_or(KeyError::Malformed("JWK member `d`"))?.to_vec(),
        );
        let key = Self::from_raw_scalar(public.algorithm(), scalar.expose_secret())?;
        if key.public_key() != &public {
            return Err(KeyError::InconsistentKeyPair);
        }
        Ok(key)
    }

    /// The private JWK (with `d`). Handle the result as a secret: it is for storage, never logs.
    pub fn to_private_jwk(&self) -> Jwk {
        let mut jwk = self.public_key().to_jwk();
        jwk.d = Some(SecretString::new(b64::encode(self.to_raw_scalar().expose_secret())));
        jwk
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.0.public.algorithm()
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.0.public
    }

    /// Signs `message` (hashed with SHA-256), returning a low-S raw `r‖s` signature.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        match &self.0.secret {
            SecretInner::P256(pair) => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                #[allow(clippy::expect_used)]
                let sig = pair.sign(&rng, message).expect("P-256 signing failed inside AWS-LC");
                let mut out = [0u8; 64];
                out.copy_from_slice(sig.as_ref());
                p256_normalize_s(&mut out);
                out
            }
            SecretInner::K256(k) => {
                let msg = secp256k1::Message::from_digest(sha256(message));
                // libsecp256k1 always produces low-S signatures.
                secp256k1::ecdsa::sign(msg, &k.0).serialize_compact()
            }
        }
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("alg", &self.algorithm())
            .field("public", &self.public_key().to_did_key())
            .field("secret", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p256_half_n_is_n_shifted_right() {
        let mut shifted = [0u8; 32];
        let mut carry = 0u8;
        for i in 0..32 {
            shifted[i] = (P256_N[i] >> 1) | carry;
            carry = (P256_N[i] & 1) << 7;
        }
        assert_eq!(shifted, P256_HALF_N);
    }

    #[test]
    fn p256_normalize_turns_high_s_into_n_minus_s() {
        let mut sig = [0u8; 64];
        sig[32..].copy_from_slice(&P256_N);
        sig[63] -= 1; // s = n - 1 (high) → n - s = 1
        p256_normalize_s(&mut sig);
        let mut one = [0u8; 32];
        one[31] = 1;
        assert_eq!(&sig[32..], &one);
        // Low values stay as they are.
        let before = sig;
        p256_normalize_s(&mut sig);
        assert_eq!(sig, before);
    }
}
