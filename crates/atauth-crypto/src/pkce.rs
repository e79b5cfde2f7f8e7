//! PKCE with S256 only (RFC 7636; checklist CL-PKCE-01, AS-PAR-03, AS-TOK-03).

use crate::{SecretString, b64, hash::sha256, random::random_bytes, secret::ct_eq};

/// A PKCE `code_verifier`: 43–128 characters of `[A-Za-z0-9-._~]`. Secret until the token request.
#[derive(Clone, PartialEq, Eq)]
pub struct PkceVerifier(SecretString);

/// Why a `code_verifier` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PkceError {
    /// RFC 7636 §4.1: 43 to 128 characters.
    #[error("code_verifier is {len} characters long; it must be 43 to 128")]
    BadLength {
        /// The length found.
        len: usize,
    },
    /// RFC 7636 §4.1: unreserved characters only.
    #[error("code_verifier contains a character outside [A-Za-z0-9-._~]")]
    BadCharacter,
}

impl PkceVerifier {
    /// A fresh verifier from 32 random bytes (43 base64url characters, 256 bits).
    pub fn generate() -> Self {
        Self(SecretString::new(b64::encode(random_bytes::<32>())))
    }

    /// Accepts a verifier received on the wire, checking its syntax (RFC 7636 §4.1).
    pub fn parse(value: &str) -> Result<Self, PkceError> {
        if !(43..=128).contains(&value.len()) {
            return Err(PkceError::BadLength { len: value.len() });
        }
        if !value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')) {
            return Err(PkceError::BadCharacter);
        }
        Ok(Self(SecretString::new(value)))
    }

    /// The S256 `code_challenge`: base64url(SHA-256(ASCII(verifier))).
    pub fn challenge(&self) -> String {
        s256_challenge(self.0.expose_secret())
    }

    /// The raw verifier, for the token request body.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for PkceVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PkceVerifier([redacted])")
    }
}

/// The S256 challenge of a verifier string.
pub fn s256_challenge(verifier: &str) -> String {
    b64::encode(sha256(verifier.as_bytes()))
}

/// Whether `verifier` matches the stored S256 `challenge` (constant-time on the digests).
pub fn verify_s256(verifier: &PkceVerifier, challenge: &str) -> bool {
    let computed = sha256(verifier.expose_secret().as_bytes());
    match b64::decode_array::<32>(challenge) {
        Some(expected) => ct_eq(&computed, &expected),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B (checklist §4.1).
    #[test]
    fn rfc7636_appendix_b_vector() {
        let octets: [u8; 32] = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77, 105,
            214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        let verifier = b64::encode(octets);
        assert_eq!(verifier, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        let v = PkceVerifier::parse(&verifier).unwrap();
        assert_eq!(v.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(verify_s256(&v, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!verify_s256(&v, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"));
        assert!(!verify_s256(&v, "not base64!"));
    }

    #[test]
    fn parse_rejects_bad_syntax() {
        assert_eq!(PkceVerifier::parse("short"), Err(PkceError::BadLength { len: 5 }));
        assert_eq!(PkceVerifier::parse(&"a".repeat(129)), Err(PkceError::BadLength { len: 129 }));
        assert_eq!(PkceVerifier::parse(&format!("{}+", "a".repeat(42))), Err(PkceError::BadCharacter));
        assert!(PkceVerifier::parse(&"a~._-".repeat(9)).is_ok());
    }

    #[test]
    fn generated_verifiers_are_valid_and_distinct() {
        let a = PkceVerifier::generate();
        assert!(PkceVerifier::parse(a.expose_secret()).is_ok());
        assert_ne!(a, PkceVerifier::generate());
        assert_eq!(format!("{a:?}"), "PkceVerifier([redacted])");
    }
}
