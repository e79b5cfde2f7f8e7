//! JSON Web Keys (RFC 7517) for EC keys, and key sets with `kid`s.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::{Algorithm, KeyError, PublicKey, SecretString, b64};

/// An EC JSON Web Key, public or private.
///
/// Deserialisation keeps only the members atproto uses and notes whether any private member
/// (`d`, or RSA/oct private members) was present, so a verifier can refuse a `jwk` header that
/// carries private material (RFC 9449 §4.3, AS-DPOP-01). `Debug` redacts `d`.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct Jwk {
    /// Key type; `"EC"` for every key here.
    pub kty: String,
    /// Curve: `"P-256"` or `"secp256k1"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// X coordinate, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// Y coordinate, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// Private scalar, base64url (private keys only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "secret_member")]
    pub d: Option<SecretString>,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Intended algorithm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Intended use (`"sig"`).
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Permitted operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<String>>,
    // Private members of other key types (RFC 7518 §6.3.2, §6.4.1): only their presence matters,
    // so a `jwk` header carrying them is refused (AS-DPOP-01). Never serialised.
    #[serde(default, skip_serializing)]
    p: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    q: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    dp: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    dq: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    qi: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    oth: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    k: Option<IgnoredAny>,
}

mod secret_member {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::SecretString;

    pub(super) fn serialize<S: Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(secret) => s.serialize_str(secret.expose_secret()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(SecretString::new))
    }
}

impl Jwk {
    /// A public EC JWK from its curve name and base64url coordinates.
    pub fn ec(crv: &str, x: String, y: String) -> Self {
        Self {
            kty: "EC".to_owned(),
            crv: Some(crv.to_owned()),
            x: Some(x),
            y: Some(y),
            d: None,
            kid: None,
            alg: None,
            use_: None,
            key_ops: None,
            p: None,
            q: None,
            dp: None,
            dq: None,
            qi: None,
            oth: None,
            k: None,
        }
    }

    /// Whether the key carries any private member (`d`, or a private member of another key type).
    pub fn has_private_members(&self) -> bool {
        self.d.is_some()
            || [self.p, self.q, self.dp, self.dq, self.qi, self.oth, self.k].iter().any(Option::is_some)
    }

    /// This key without private members.
    pub fn to_public(&self) -> Self {
        Self { d: None, p: None, q: None, dp: None, dq: None, qi: None, oth: None, k: None, ..self.clone() }
    }

    /// Sets `kid`, `alg` and `use: "sig"`, as a published JWKS entry should have them.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The algorithm this key is for, from its curve.
    pub fn algorithm(&self) -> Result<Algorithm, KeyError> {
        if self.kty != "EC" {
            return Err(KeyError::UnsupportedKeyType { kty: self.kty.clone() });
        }
        let alg = match self.crv.as_deref() {
            Some("P-256") => Algorithm::Es256,
            Some("secp256k1") => Algorithm::Es256k,
            Some(other) => return Err(KeyError::UnsupportedCurve { crv: other.to_owned() }),
            None => return Err(KeyError::MissingMember("crv")),
        };
        if let Some(named) = self.alg.as_deref()
            && named != alg.jws_name()
        {
            return Err(KeyError::AlgorithmMismatch { alg: named.to_owned(), crv: alg.jwk_curve() });
        }
        Ok(alg)
    }
}

impl std::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwk")
            .field("kty", &self.kty)
            .field("crv", &self.crv)
            .field("x", &self.x)
            .field("y", &self.y)
            .field("d", &self.d.as_ref().map(|_| "[redacted]"))
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// Parses the public part of an EC JWK (private members, if any, are ignored here; callers
    /// that must refuse them check [`Jwk::has_private_members`]).
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        let alg = jwk.algorithm()?;
        let x = jwk.x.as_deref().ok_or(KeyError::MissingMember("x"))?;
        let y = jwk.y.as_deref().ok_or(KeyError::MissingMember("y"))?;
        let x = b64::decode_array::<32>(x).ok_or(KeyError::Malformed("JWK member `x`"))?;
        let y = b64::decode_array::<32>(y).ok_or(KeyError::Malformed("JWK member `y`"))?;
        Self::from_coordinates(alg, &x, &y)
    }
}

/// The RFC 7638 thumbprint over a key's required members, given as `(name, value)` pairs of
/// string members: they are sorted by name and serialised without whitespace (§3.2), hashed with
/// SHA-256 and base64url-encoded. [`PublicKey::thumbprint`] is the fast path for EC keys.
pub fn rfc7638_thumbprint(members: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = members.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut json = String::from("{");
    for (i, (name, value)) in sorted.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        // Serialising a `&str` cannot fail.
        json.push_str(&crate::json::to_string(name));
        json.push(':');
        json.push_str(&crate::json::to_string(value));
    }
    json.push('}');
    b64::encode(crate::hash::sha256(json.as_bytes()))
}

/// A JSON Web Key Set: `{"keys": [...]}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// The key with this `kid`.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }

    /// Whether any key carries private members (a published set must not).
    pub fn has_private_members(&self) -> bool {
        self.keys.iter().any(Jwk::has_private_members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_private_members_of_any_kind() {
        let public: Jwk = serde_json::from_str(r#"{"kty":"EC","crv":"P-256","x":"a","y":"b"}"#).unwrap();
        assert!(!public.has_private_members());
        let with_d: Jwk =
            serde_json::from_str(r#"{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"c"}"#).unwrap();
        assert!(with_d.has_private_members());
        let with_k: Jwk =
            serde_json::from_str(r#"{"kty":"EC","crv":"P-256","x":"a","y":"b","k":"c"}"#).unwrap();
        assert!(with_k.has_private_members());
        assert!(!with_d.to_public().has_private_members());
    }

    #[test]
    fn debug_redacts_d() {
        let jwk: Jwk =
            serde_json::from_str(r#"{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"topsecret"}"#).unwrap();
        assert!(!format!("{jwk:?}").contains("topsecret"));
    }

    #[test]
    fn serialises_public_members_only_when_public() {
        let jwk = Jwk::ec("P-256", "x".into(), "y".into()).with_kid("k1");
        assert_eq!(
            serde_json::to_string(&jwk).unwrap(),
            r#"{"kty":"EC","crv":"P-256","x":"x","y":"y","kid":"k1"}"#
        );
    }

    #[test]
    fn algorithm_checks_kty_crv_and_alg() {
        let mut jwk = Jwk::ec("P-256", "x".into(), "y".into());
        assert_eq!(jwk.algorithm(), Ok(Algorithm::Es256));
        jwk.alg = Some("ES256K".into());
        assert!(matches!(jwk.algorithm(), Err(KeyError::AlgorithmMismatch { .. })));
        let rsa: Jwk = serde_json::from_str(r#"{"kty":"RSA","n":"a","e":"AQAB"}"#).unwrap();
        assert!(matches!(rsa.algorithm(), Err(KeyError::UnsupportedKeyType { .. })));
        let ed = Jwk::ec("Ed25519", "x".into(), "y".into());
        assert!(matches!(ed.algorithm(), Err(KeyError::UnsupportedCurve { .. })));
    }
}
