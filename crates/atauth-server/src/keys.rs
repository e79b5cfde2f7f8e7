//! The server's token-signing keys and JWKS, and the other secrets kept in the data directory.
//!
//! Access tokens are ES256 JWTs signed with the newest key; every key in the set verifies (so a
//! rotation keeps tokens signed with the previous key valid until they expire) and is published in
//! the JWKS. Keys are parsed once at startup; the JWKS JSON is rendered once.
//!
//! Files (created with mode 0600 when absent, never logged):
//!
//! | file | content |
//! |---|---|
//! | `oauth-signing-keys.json` | `{"keys":[<private JWK with kid>, …]}`, newest first |
//! | `dpop-nonce.secret` | 32 random bytes, hex: the DPoP nonce HMAC secret (share it between instances; the SQLite default mixes random bytes of the process into it, so its nonces do not survive a restart: docs/ARCHITECTURE.md, "Replay records in memory") |
//! | `plc-rotation-key.hex` | secp256k1 scalar, hex: the PLC rotation key for DIDs this server registers |

use std::path::Path;

use atauth_crypto::{Algorithm, Jwk, Jwks, PrivateKey, PublicKey, SecretBytes, SecretString, b64, jws};

/// File name of the signing key set in the data directory.
pub const SIGNING_KEYS_FILE: &str = "oauth-signing-keys.json";
/// File name of the DPoP nonce secret.
pub const NONCE_SECRET_FILE: &str = "dpop-nonce.secret";
/// File name of the PLC rotation key.
pub const PLC_ROTATION_KEY_FILE: &str = "plc-rotation-key.hex";

/// Why keys could not be loaded or stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// Reading or writing a key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A key file does not parse.
    #[error("key file {path} is invalid: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// Why (never contains key material).
        reason: String,
    },
    /// The set is empty.
    #[error("a signing key set needs at least one key")]
    Empty,
}

struct SigningKey {
    kid: String,
    key: PrivateKey,
    header_b64: String,
}

/// The token-signing keys (newest first). Cheap to share behind an `Arc`.
pub struct SigningKeys {
    keys: Vec<SigningKey>,
    jwks_json: String,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("kids", &self.keys.iter().map(|k| &k.kid).collect::<Vec<_>>())
            .finish()
    }
}

/// The `kid` the server gives a key: its RFC 7638 thumbprint (stable across restarts).
pub fn kid_for(key: &PublicKey) -> String {
    key.thumbprint()
}

impl SigningKeys {
    /// A set from private keys, newest first.
    pub fn new(keys: Vec<PrivateKey>) -> Result<Self, KeyStoreError> {
        if keys.is_empty() {
            return Err(KeyStoreError::Empty);
        }
        let keys: Vec<SigningKey> = keys
            .into_iter()
            .map(|key| {
                let kid = kid_for(key.public_key());
                let header =
                    jws::JwsHeader::new(key.algorithm().jws_name(), Some("at+jwt")).with_kid(kid.clone());
                let header_b64 = b64::encode(atauth_crypto::json::to_vec(&header));
                SigningKey { kid, key, header_b64 }
            })
            .collect();
        let jwks = Jwks {
            keys: keys
                .iter()
                .map(|k| {
                    let mut jwk = k.key.public_key().to_jwk().with_kid(k.kid.clone());
                    jwk.alg = Some(k.key.algorithm().jws_name().to_owned());
                    jwk.use_ = Some("sig".to_owned());
                    jwk
                })
                .collect(),
        };
        let jwks_json = serde_json::to_string(&jwks).unwrap_or_else(|_| "{\"keys\":[]}".to_owned());
        Ok(Self { keys, jwks_json })
    }

    /// A set with one fresh ES256 key (tests, throwaway servers).
    pub fn generate() -> Self {
        Self::new(vec![PrivateKey::generate(Algorithm::Es256)]).unwrap_or_else(|_| unreachable!())
    }

    /// Loads `<dir>/oauth-signing-keys.json`, or generates one ES256 key and writes it (0600).
    pub fn load_or_generate(dir: &Path) -> Result<Self, KeyStoreError> {
        let path = dir.join(SIGNING_KEYS_FILE);
        if path.exists() {
            return Self::load(&path);
        }
        let set = Self::new(vec![PrivateKey::generate(Algorithm::Es256)])?;
        set.save(&path)?;
        Ok(set)
    }

    /// Loads a key set file.
    pub fn load(path: &Path) -> Result<Self, KeyStoreError> {
        let text = SecretString::new(read(path)?);
        let invalid =
            |reason: &str| KeyStoreError::Invalid { path: path.display().to_string(), reason: reason.into() };
        let jwks: Jwks =
            serde_json::from_str(text.expose_secret()).map_err(|_| invalid("not a JWKS document"))?;
        let keys = jwks
            .keys
            .iter()
            .map(|jwk| PrivateKey::from_jwk(jwk).map_err(|e| invalid(&e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(keys)
    }

    /// Writes the private key set (mode 0600).
    pub fn save(&self, path: &Path) -> Result<(), KeyStoreError> {
        let private = Jwks {
            keys: self
                .keys
                .iter()
                .map(|k| {
                    let mut jwk: Jwk = k.key.to_private_jwk();
                    jwk.kid = Some(k.kid.clone());
                    jwk
                })
                .collect(),
        };
        // A JWKS of plain strings always serialises; were it ever to fail, nothing is written.
        let json = serde_json::to_string_pretty(&private).map_err(|e| KeyStoreError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        let json = SecretString::new(json);
        write_private(path, json.expose_secret().as_bytes())
    }

    /// Adds a fresh ES256 key as the new signing key, keeping the others for verification and in
    /// the JWKS (remove old keys once tokens they signed have expired), and saves the set if `path`
    /// is given.
    pub fn rotate(&self, path: Option<&Path>) -> Result<Self, KeyStoreError> {
        let mut keys = vec![PrivateKey::generate(Algorithm::Es256)];
        keys.extend(self.keys.iter().map(|k| k.key.clone()));
        let set = Self::new(keys)?;
        if let Some(p) = path {
            set.save(p)?;
        }
        Ok(set)
    }

    /// The current signing key's `kid`.
    pub fn current_kid(&self) -> &str {
        &self.keys[0].kid
    }

    /// The public JWKS as JSON (rendered once).
    pub fn jwks_json(&self) -> &str {
        &self.jwks_json
    }

    /// The public key with this `kid`.
    pub fn public_key(&self, kid: &str) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.kid == kid).map(|k| k.key.public_key())
    }

    /// Signs JSON claims as an `at+jwt` with the current key.
    pub fn sign_access_token(&self, claims_json: &[u8]) -> String {
        let k = &self.keys[0];
        jws::sign_encoded(&k.header_b64, claims_json, &k.key)
    }
}

fn read(path: &Path) -> Result<String, KeyStoreError> {
    std::fs::read_to_string(path)
        .map_err(|source| KeyStoreError::Io { path: path.display().to_string(), source })
}

/// Writes a file readable only by its owner (0600 on Unix), replacing it atomically.
pub(crate) fn write_private(path: &Path, data: &[u8]) -> Result<(), KeyStoreError> {
    use std::io::Write as _;
    let io = |source| KeyStoreError::Io { path: path.display().to_string(), source };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)
}

/// Loads a hex secret file, or creates it with `generate()` (0600).
pub(crate) fn load_or_create_hex(
    path: &Path,
    generate: impl FnOnce() -> Vec<u8>,
) -> Result<SecretBytes, KeyStoreError> {
    if path.exists() {
        let text = SecretString::new(read(path)?);
        let bytes = hex::decode(text.expose_secret().trim()).map_err(|_| KeyStoreError::Invalid {
            path: path.display().to_string(),
            reason: "not hex".into(),
        })?;
        return Ok(SecretBytes::new(bytes));
    }
    let bytes = SecretBytes::new(generate());
    let text = SecretString::new(hex::encode(bytes.expose_secret()));
    write_private(path, text.expose_secret().as_bytes())?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_persist_with_owner_only_mode_and_rotate() {
        let dir = std::env::temp_dir()
            .join(format!("atauth-keys-{}", hex::encode(atauth_crypto::random::random_bytes::<6>())));
        let a = SigningKeys::load_or_generate(&dir).unwrap();
        let b = SigningKeys::load_or_generate(&dir).unwrap();
        assert_eq!(a.current_kid(), b.current_kid(), "the key survives a restart");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join(SIGNING_KEYS_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let rotated = b.rotate(Some(&dir.join(SIGNING_KEYS_FILE))).unwrap();
        assert_ne!(rotated.current_kid(), a.current_kid());
        assert!(rotated.public_key(a.current_kid()).is_some(), "old key still verifies");
        let jwks: serde_json::Value = serde_json::from_str(rotated.jwks_json()).unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2, "old key stays in the JWKS");
        assert!(!rotated.jwks_json().contains("\"d\""), "JWKS is public only");
        let reloaded = SigningKeys::load_or_generate(&dir).unwrap();
        assert_eq!(reloaded.current_kid(), rotated.current_kid());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
