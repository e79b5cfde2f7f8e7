//! `did:plc` registration: the genesis operation, its DAG-CBOR encoding, its signature and the DID
//! derived from it, and the POST to the configured PLC directory.
//!
//! The operation (did:plc spec v0.1, as `@did-plc/lib` builds it):
//!
//! ```json
//! {"type":"plc_operation","rotationKeys":["did:key:…"],"verificationMethods":{"atproto":"did:key:…"},
//!  "alsoKnownAs":["at://alice.example.com"],
//!  "services":{"atproto_pds":{"type":"AtprotoPersonalDataServer","endpoint":"https://pds.example.com"}},
//!  "prev":null,"sig":"…"}
//! ```
//!
//! `sig` = base64url(ES256K low-S signature over the DAG-CBOR encoding of the operation without
//! `sig`), signed with a rotation key; the DID = `did:plc:` + the first 24 characters of
//! base32-lowercase(SHA-256(DAG-CBOR of the signed operation)).

use atauth_crypto::{PrivateKey, PublicKey, b64, hash::sha256};
use atauth_identity::http::{HttpError, HttpRequest, SafeHttpClient};
use url::Url;

/// A value of the DAG-CBOR subset the operation needs.
#[derive(Debug, Clone, PartialEq)]
enum Cbor {
    Null,
    Text(String),
    Array(Vec<Cbor>),
    Map(Vec<(String, Cbor)>),
}

fn write_head(out: &mut Vec<u8>, major: u8, len: u64) {
    let m = major << 5;
    // Shortest form (DAG-CBOR requires minimal encodings). Truncations below are guarded by ranges.
    match len {
        0..=23 => out.push(m | len as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, len as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
}

impl Cbor {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Null => out.push(0xf6),
            Self::Text(s) => {
                write_head(out, 3, s.len() as u64);
                out.extend_from_slice(s.as_bytes());
            }
            Self::Array(items) => {
                write_head(out, 4, items.len() as u64);
                for i in items {
                    i.encode(out);
                }
            }
            Self::Map(entries) => {
                // DAG-CBOR canonical key order: shorter keys first, then bytewise.
                let mut sorted: Vec<&(String, Cbor)> = entries.iter().collect();
                sorted.sort_by(|a, b| {
                    a.0.len().cmp(&b.0.len()).then_with(|| a.0.as_bytes().cmp(b.0.as_bytes()))
                });
                write_head(out, 5, sorted.len() as u64);
                for (k, v) in sorted {
                    write_head(out, 3, k.len() as u64);
                    out.extend_from_slice(k.as_bytes());
                    v.encode(out);
                }
            }
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        self.encode(&mut out);
        out
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Null => serde_json::Value::Null,
            Self::Text(s) => serde_json::Value::String(s.clone()),
            Self::Array(items) => serde_json::Value::Array(items.iter().map(Self::to_json).collect()),
            Self::Map(entries) => {
                serde_json::Value::Object(entries.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }
}

/// RFC 4648 base32, lowercase, without padding (multibase `b` alphabet, as did:plc uses).
pub fn base32_lower(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &byte in data {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// A signed genesis operation and the DID it creates.
#[derive(Debug, Clone)]
pub struct GenesisOp {
    /// `did:plc:…`.
    pub did: String,
    /// The signed operation, as posted to the directory.
    pub operation: serde_json::Value,
}

/// What the genesis operation says.
#[derive(Debug, Clone)]
pub struct GenesisParams<'a> {
    /// Rotation keys (secp256k1 or P-256), in priority order. The first one signs.
    pub rotation_keys: &'a [PublicKey],
    /// The account's repo signing key (`verificationMethods.atproto`).
    pub signing_key: &'a PublicKey,
    /// The handle (`alsoKnownAs: ["at://<handle>"]`).
    pub handle: &'a str,
    /// The PDS URL (`services.atproto_pds.endpoint`).
    pub pds_endpoint: &'a str,
}

fn unsigned_op(p: &GenesisParams<'_>) -> Vec<(String, Cbor)> {
    vec![
        ("type".into(), Cbor::Text("plc_operation".into())),
        (
            "rotationKeys".into(),
            Cbor::Array(p.rotation_keys.iter().map(|k| Cbor::Text(k.to_did_key())).collect()),
        ),
        (
            "verificationMethods".into(),
            Cbor::Map(vec![("atproto".into(), Cbor::Text(p.signing_key.to_did_key()))]),
        ),
        ("alsoKnownAs".into(), Cbor::Array(vec![Cbor::Text(format!("at://{}", p.handle))])),
        (
            "services".into(),
            Cbor::Map(vec![(
                "atproto_pds".into(),
                Cbor::Map(vec![
                    ("type".into(), Cbor::Text("AtprotoPersonalDataServer".into())),
                    ("endpoint".into(), Cbor::Text(p.pds_endpoint.to_owned())),
                ]),
            )]),
        ),
        ("prev".into(), Cbor::Null),
    ]
}

/// Builds and signs a genesis operation with `signer` (which should be `rotation_keys[0]`'s private
/// half) and derives its DID.
pub fn genesis_op(p: &GenesisParams<'_>, signer: &PrivateKey) -> GenesisOp {
    let mut op = unsigned_op(p);
    // PrivateKey::sign hashes with SHA-256 and always returns low-S (SPEC-CRYPTO).
    let sig = signer.sign(&Cbor::Map(op.clone()).to_bytes());
    op.push(("sig".into(), Cbor::Text(b64::encode(sig))));
    let signed = Cbor::Map(op);
    let digest = sha256(signed.to_bytes());
    let did = format!("did:plc:{}", &base32_lower(&digest)[..24]);
    GenesisOp { did, operation: signed.to_json() }
}

/// Why registering a DID failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlcError {
    /// The directory URL could not be joined with the DID.
    #[error("invalid PLC directory URL")]
    BadDirectoryUrl,
    /// The request failed.
    #[error("PLC directory request failed: {0}")]
    Http(#[from] HttpError),
    /// The directory refused the operation.
    #[error("PLC directory answered {status}: {body}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The start of the body (the directory's message; no secrets in it).
        body: String,
    },
}

/// Account registration at the PLC directory: the client and the rotation key every genesis
/// operation is signed with.
pub(crate) struct PlcRegistrar {
    pub(crate) client: PlcClient,
    pub(crate) rotation_key: atauth_crypto::PrivateKey,
}

/// Posts operations to a PLC directory through the SSRF-safe client.
#[derive(Debug, Clone)]
pub struct PlcClient {
    http: SafeHttpClient,
    directory: Url,
}

impl PlcClient {
    /// A client for the directory at `directory` (e.g. `https://plc.directory`).
    pub fn new(http: SafeHttpClient, directory: Url) -> Self {
        Self { http, directory }
    }

    /// The directory URL.
    pub fn directory(&self) -> &Url {
        &self.directory
    }

    /// `POST <directory>/<did>` with the operation as JSON.
    pub async fn submit(&self, op: &GenesisOp) -> Result<(), PlcError> {
        let url = self.directory.join(&format!("/{}", op.did)).map_err(|_| PlcError::BadDirectoryUrl)?;
        let req = HttpRequest::post_json(url, &op.operation).map_err(|_| PlcError::BadDirectoryUrl)?;
        let res = self.http.send(req.max_response_bytes(16 * 1024)).await?;
        if res.status.is_success() {
            Ok(())
        } else {
            let body = String::from_utf8_lossy(&res.body).chars().take(300).collect();
            Err(PlcError::Rejected { status: res.status.as_u16(), body })
        }
    }

    /// Fetches the current DID document JSON (for checks).
    pub async fn document(&self, did: &str) -> Result<serde_json::Value, PlcError> {
        let url = self.directory.join(&format!("/{did}")).map_err(|_| PlcError::BadDirectoryUrl)?;
        Ok(self
            .http
            .get_json_exact_200_with_types(&url, 64 * 1024, &["application/json", "application/did+ld+json"])
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atauth_crypto::Algorithm;

    #[test]
    fn base32_matches_rfc4648_vectors() {
        // RFC 4648 §10 (lowercased, unpadded).
        for (input, out) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(base32_lower(input.as_bytes()), out);
        }
    }

    #[test]
    fn cbor_maps_sort_by_length_then_bytes() {
        let m =
            Cbor::Map(vec![("bb".into(), Cbor::Null), ("a".into(), Cbor::Null), ("c".into(), Cbor::Null)]);
        assert_eq!(m.to_bytes(), vec![0xa3, 0x61, b'a', 0xf6, 0x61, b'c', 0xf6, 0x62, b'b', b'b', 0xf6]);
        let long = Cbor::Text("x".repeat(300));
        assert_eq!(&long.to_bytes()[..3], &[0x79, 0x01, 0x2c]);
    }

    #[test]
    fn genesis_signature_verifies_and_did_is_derived_from_signed_op() {
        let rotation = PrivateKey::generate(Algorithm::Es256k);
        let signing = PrivateKey::generate(Algorithm::Es256k);
        let p = GenesisParams {
            rotation_keys: &[rotation.public_key().clone()],
            signing_key: signing.public_key(),
            handle: "alice.test",
            pds_endpoint: "https://pds.example.com",
        };
        let op = genesis_op(&p, &rotation);
        assert!(op.did.starts_with("did:plc:") && op.did.len() == 32);
        let sig = b64::decode(op.operation["sig"].as_str().unwrap()).unwrap();
        let unsigned = Cbor::Map(unsigned_op(&p)).to_bytes();
        rotation.public_key().verify(&unsigned, &sig, atauth_crypto::SignaturePolicy::RequireLowS).unwrap();
        assert_eq!(op.operation["alsoKnownAs"][0], "at://alice.test");
        assert_eq!(op.operation["prev"], serde_json::Value::Null);
    }
}
