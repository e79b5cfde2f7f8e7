//! The DID document and the atproto-specific reads on it: PDS endpoint (ID-DID-06), handle claim
//! (ID-HANDLE-07) and signing key (ID-DID-07). Document `id` equality (ID-DID-05) is checked by
//! [`DidDocument::check_id`], which every resolver in this crate calls.
//!
//! Only what atproto reads is typed. The signing key is decoded from `Multikey` or from the legacy
//! `EcdsaSecp256{r,k}1VerificationKey2019` forms: the reference PLC directory (`@did-plc/server`
//! 0.0.1) still serves the legacy form, so both paths run in the interop test.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::syntax::{Did, Handle};

/// The `type` of the PDS service entry.
pub const PDS_SERVICE_TYPE: &str = "AtprotoPersonalDataServer";
/// The fragment of the PDS service entry id (`#atproto_pds`).
pub const PDS_SERVICE_FRAGMENT: &str = "atproto_pds";
/// The fragment of the atproto signing key's verification method id (`#atproto`).
pub const SIGNING_KEY_FRAGMENT: &str = "atproto";

/// Why a DID document is unusable. One variant per failed check.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// The document's `id` is not the DID that was resolved (ID-DID-05).
    #[error("DID document id {found} does not match the resolved DID {expected}")]
    IdMismatch {
        /// The DID that was resolved.
        expected: Did,
        /// The document's `id`.
        found: Did,
    },
    /// No `#atproto_pds` service of type `AtprotoPersonalDataServer` (ID-DID-06).
    #[error("DID document has no #atproto_pds service of type AtprotoPersonalDataServer")]
    NoPdsEndpoint,
    /// The PDS service's `serviceEndpoint` is not a string (ID-DID-06).
    #[error("the #atproto_pds serviceEndpoint is not a string")]
    PdsEndpointNotString,
    /// The PDS endpoint is not a valid absolute URL (ID-DID-06).
    #[error("the #atproto_pds serviceEndpoint {endpoint:?} is not a valid URL")]
    PdsEndpointInvalidUrl {
        /// The endpoint string.
        endpoint: String,
    },
    /// The PDS endpoint's scheme is neither `https` nor `http` (ID-DID-06).
    #[error("the #atproto_pds serviceEndpoint {endpoint:?} must use https (or http)")]
    PdsEndpointScheme {
        /// The endpoint string.
        endpoint: String,
    },
    /// The PDS endpoint has a path, query, fragment or credentials: only scheme, host and optional
    /// port are allowed (ID-DID-06).
    #[error("the #atproto_pds serviceEndpoint {endpoint:?} must be scheme, host and optional port only")]
    PdsEndpointNotOrigin {
        /// The endpoint string.
        endpoint: String,
    },
    /// No `#atproto` verification method controlled by the DID (ID-DID-07).
    #[error("DID document has no #atproto verification method controlled by the DID")]
    NoSigningKey,
    /// The `#atproto` verification method has no `publicKeyMultibase` (ID-DID-07).
    #[error("the #atproto verification method has no publicKeyMultibase")]
    SigningKeyMissingMultibase,
    /// The `#atproto` verification method's type is not `Multikey` or a supported legacy type
    /// (ID-DID-07).
    #[error("unsupported verification method type {key_type:?} for the #atproto key")]
    UnsupportedKeyType {
        /// The `type` found.
        key_type: String,
    },
    /// The signing key does not decode to a P-256 or secp256k1 public key (ID-DID-07).
    #[error("the #atproto signing key is invalid: {0}")]
    InvalidSigningKey(#[source] Arc<atauth_crypto::KeyError>),
}

/// A DID document, as served by a PLC directory or a `did:web` host.
///
/// Only the members atproto uses are typed; unknown members are ignored. Deserialising fails if `id`
/// is not a valid DID or a listed member has the wrong shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DidDocument {
    /// JSON-LD `@context` (kept for round-tripping, not interpreted).
    #[serde(rename = "@context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
    /// The DID the document describes.
    pub id: Did,
    /// Other identifiers for the subject; atproto handles appear as `at://<handle>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_known_as: Vec<String>,
    /// Public keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verification_method: Vec<VerificationMethod>,
    /// Service endpoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service: Vec<Service>,
}

/// A `verificationMethod` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMethod {
    /// `#atproto` or `<did>#atproto` for the atproto signing key.
    pub id: String,
    /// `Multikey`, or a legacy `EcdsaSecp256r1VerificationKey2019` / `EcdsaSecp256k1VerificationKey2019`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The DID controlling the key.
    pub controller: String,
    /// The key, multibase-encoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_multibase: Option<String>,
}

/// A `service` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// `#atproto_pds` or `<did>#atproto_pds` for the PDS.
    pub id: String,
    /// The service type (a string, or a set of strings per DID Core).
    #[serde(rename = "type")]
    pub type_: ServiceType,
    /// The endpoint: a URL string, or a map/set per DID Core (not used by atproto).
    pub service_endpoint: serde_json::Value,
}

/// A service `type`: one string or several (DID Core §5.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServiceType {
    /// A single type.
    One(String),
    /// A set of types.
    Many(Vec<String>),
}

impl ServiceType {
    /// Whether `ty` is (one of) the type(s).
    pub fn contains(&self, ty: &str) -> bool {
        match self {
            Self::One(t) => t == ty,
            Self::Many(ts) => ts.iter().any(|t| t == ty),
        }
    }
}

/// How the signing key is encoded in the document (ID-DID-07).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyEncoding {
    /// `Multikey`: multicodec-tagged compressed point, base58btc.
    Multikey,
    /// Legacy `EcdsaSecp256r1VerificationKey2019`: bare P-256 point, base58btc.
    LegacyP256,
    /// Legacy `EcdsaSecp256k1VerificationKey2019`: bare secp256k1 point, base58btc.
    LegacyK256,
}

/// The raw `#atproto` signing key entry: type and multibase value, before decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyMaterial {
    /// The verification method id as written in the document.
    pub id: String,
    /// The key encoding, from the method's `type`.
    pub encoding: KeyEncoding,
    /// The `publicKeyMultibase` value.
    pub public_key_multibase: String,
}

impl SigningKeyMaterial {
    /// Decodes the key with `atauth-crypto`.
    pub fn to_public_key(&self) -> Result<atauth_crypto::PublicKey, DocumentError> {
        use atauth_crypto::{Algorithm, PublicKey};
        let mb = self.public_key_multibase.as_str();
        let parsed = match self.encoding {
            KeyEncoding::Multikey => PublicKey::from_multikey(mb),
            KeyEncoding::LegacyP256 => PublicKey::from_legacy_multibase(Algorithm::Es256, mb),
            KeyEncoding::LegacyK256 => PublicKey::from_legacy_multibase(Algorithm::Es256k, mb),
        };
        parsed.map_err(|e| DocumentError::InvalidSigningKey(Arc::new(e)))
    }
}

impl DidDocument {
    /// Checks that the document's `id` is `did` (ID-DID-05).
    pub fn check_id(&self, did: &Did) -> Result<(), DocumentError> {
        if &self.id == did {
            Ok(())
        } else {
            Err(DocumentError::IdMismatch { expected: did.clone(), found: self.id.clone() })
        }
    }

    /// Whether `id` names `#fragment` of this document: either `#fragment` or `<did>#fragment`.
    fn is_local_id(&self, id: &str, fragment: &str) -> bool {
        match id.split_once('#') {
            Some(("", f)) => f == fragment,
            Some((base, f)) => f == fragment && base == self.id.as_str(),
            None => false,
        }
    }

    /// The first service whose id is `#<fragment>` or `<did>#<fragment>` and whose type includes
    /// `service_type`. Later matches are ignored.
    pub fn service(&self, fragment: &str, service_type: &str) -> Option<&Service> {
        self.service.iter().find(|s| self.is_local_id(&s.id, fragment) && s.type_.contains(service_type))
    }

    /// The PDS endpoint (ID-DID-06): the first `#atproto_pds` service of type
    /// `AtprotoPersonalDataServer`, whose `serviceEndpoint` must be an `https` (or `http`, for
    /// development) URL with only scheme, host and optional port. Later matches are ignored, even if
    /// the first one is invalid.
    pub fn pds_endpoint(&self) -> Result<Url, DocumentError> {
        let service =
            self.service(PDS_SERVICE_FRAGMENT, PDS_SERVICE_TYPE).ok_or(DocumentError::NoPdsEndpoint)?;
        let endpoint = service.service_endpoint.as_str().ok_or(DocumentError::PdsEndpointNotString)?;
        parse_origin_url(endpoint)
    }

    /// The handle claimed by the document: the first `alsoKnownAs` entry of the form `at://<handle>`
    /// with a syntactically valid handle, lowercased (ID-HANDLE-07). The claim is *not* verified; use
    /// [`crate::IdentityResolver`] for a verified handle.
    pub fn claimed_handle(&self) -> Option<Handle> {
        self.also_known_as.iter().find_map(|aka| {
            let rest = aka.strip_prefix("at://")?;
            Handle::new(rest).ok()
        })
    }

    /// The raw `#atproto` signing key entry (ID-DID-07): the first verification method whose id is
    /// `#atproto` or `<did>#atproto` and whose `controller` is the document's DID.
    pub fn signing_key_material(&self) -> Result<SigningKeyMaterial, DocumentError> {
        let vm = self
            .verification_method
            .iter()
            .find(|vm| self.is_local_id(&vm.id, SIGNING_KEY_FRAGMENT) && vm.controller == self.id.as_str())
            .ok_or(DocumentError::NoSigningKey)?;
        let encoding = match vm.type_.as_str() {
            "Multikey" => KeyEncoding::Multikey,
            "EcdsaSecp256r1VerificationKey2019" => KeyEncoding::LegacyP256,
            "EcdsaSecp256k1VerificationKey2019" => KeyEncoding::LegacyK256,
            other => {
                return Err(DocumentError::UnsupportedKeyType { key_type: other.to_owned() });
            }
        };
        let public_key_multibase =
            vm.public_key_multibase.clone().ok_or(DocumentError::SigningKeyMissingMultibase)?;
        Ok(SigningKeyMaterial { id: vm.id.clone(), encoding, public_key_multibase })
    }

    /// The decoded atproto signing key (ID-DID-07).
    pub fn signing_key(&self) -> Result<atauth_crypto::PublicKey, DocumentError> {
        self.signing_key_material()?.to_public_key()
    }
}

/// Parses a service endpoint that must be an origin: `http(s)://host[:port]` with an empty (or `/`)
/// path and no query, fragment or credentials (ID-DID-06).
fn parse_origin_url(endpoint: &str) -> Result<Url, DocumentError> {
    let url = Url::parse(endpoint)
        .map_err(|_| DocumentError::PdsEndpointInvalidUrl { endpoint: endpoint.to_owned() })?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(DocumentError::PdsEndpointScheme { endpoint: endpoint.to_owned() });
    }
    let origin_only = url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    if origin_only {
        Ok(url)
    } else {
        Err(DocumentError::PdsEndpointNotOrigin { endpoint: endpoint.to_owned() })
    }
}
