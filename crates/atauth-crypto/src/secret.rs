//! Secret newtypes: values that must never reach a log.
//!
//! `Debug` prints `[redacted]`, memory is zeroized on drop, equality is constant-time, and reading
//! the raw value is an explicit, greppable call: `.expose_secret()`.

use subtle::ConstantTimeEq as _;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A secret string (token, code, password, verifier). See the module docs.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps `value`; the caller gives up the plain copy.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value. Use only where it goes on the wire or into a hash.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Length in bytes (not secret: lengths are public in every protocol here).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time comparison with another secret value.
    pub fn ct_eq(&self, other: &str) -> bool {
        ct_eq(self.0.as_bytes(), other.as_bytes())
    }
}

impl PartialEq for SecretString {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(&other.0)
    }
}

impl Eq for SecretString {}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

/// Secret bytes (key material, HMAC secrets). See the module docs.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps `value`.
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Self(value.into())
    }

    /// The raw bytes. Use only where they are needed for a cryptographic operation or storage.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        ct_eq(&self.0, &other.0)
    }
}

impl Eq for SecretBytes {}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBytes([redacted])")
    }
}

/// Constant-time equality of two byte strings. Lengths are compared first (and leak), which is
/// fine for every use here: the lengths of tokens and digests are public.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Defines a named secret-string newtype with redacted `Debug`, zeroize on drop, constant-time
/// `PartialEq`, and `expose_secret()`.
///
/// ```
/// atauth_crypto::secret_string_newtype! {
///     /// An OAuth refresh token.
///     pub struct RefreshToken;
/// }
/// let t = RefreshToken::new("ref-123");
/// assert_eq!(format!("{t:?}"), "RefreshToken([redacted])");
/// assert_eq!(t.expose_secret(), "ref-123");
/// ```
#[macro_export]
macro_rules! secret_string_newtype {
    ($(#[$meta:meta])* $vis:vis struct $name:ident;) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq)]
        $vis struct $name($crate::SecretString);

        impl $name {
            /// Wraps a raw value.
            pub fn new(value: impl Into<String>) -> Self {
                Self($crate::SecretString::new(value))
            }

            /// The raw value. Use only where it goes on the wire or into a hash.
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }

            /// Constant-time comparison with a raw value.
            pub fn ct_eq(&self, other: &str) -> bool {
                self.0.ct_eq(other)
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_value() {
        let s = SecretString::new("hunter2");
        assert_eq!(format!("{s:?}"), "SecretString([redacted])");
        assert!(!format!("{:?}", Some(&s)).contains("hunter2"));
        let b = SecretBytes::new(b"key".to_vec());
        assert_eq!(format!("{b:?}"), "SecretBytes([redacted])");
    }

    #[test]
    fn equality_is_by_value() {
        assert_eq!(SecretString::new("a"), SecretString::new("a"));
        assert_ne!(SecretString::new("a"), SecretString::new("ab"));
        assert!(SecretString::new("abc").ct_eq("abc"));
        assert!(!SecretString::new("abc").ct_eq("abd"));
        assert!(ct_eq(b"", b""));
        assert!(!ct_eq(b"a", b""));
    }
}
