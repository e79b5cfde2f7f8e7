//! Passkeys (WebAuthn Level 3) as a second factor: the registration and authentication ceremonies,
//! framework-free (issue 16).
//!
//! What the server does, in the order of the spec's steps:
//!
//! - **Options** ([`registration_options`], [`authentication_options`]): a fresh 32-byte challenge,
//!   the relying party (RP ID = the issuer's host, origin = the issuer's origin, [`RelyingParty`]),
//!   user verification *preferred* (user presence always required), attestation `none`, the
//!   algorithms we verify (ES256, EdDSA, RS256). The [`Challenge`] goes into a server-side store
//!   for [`CHALLENGE_LIFETIME_SECS`], bound by its key to the device session and the account, and
//!   is taken (once) when the answer arrives.
//! - **Registration** ([`verify_registration`], WebAuthn §7.1): `clientDataJSON` type, challenge,
//!   origin, not cross-origin (steps 7–11); the attestation object (step 12); the RP ID hash, user
//!   presence, backup flags, the attested credential data and its algorithm (steps 13–18);
//!   attestation format `none`, or `packed` self-attestation whose signature is checked with the
//!   new key (steps 19–21); the credential id's length (step 24). Formats that need a certificate
//!   chain are refused: we ask for `none`, so browsers send `none`. That the credential id is new
//!   (step 25) is the store's unique `credential_id`.
//! - **Authentication** ([`verify_assertion`], §7.2): the credential was offered and belongs to the
//!   account of the pending sign-in (an assertion with another account's passkey is refused as
//!   [`PasskeyError::OtherAccount`]), the user handle matches (step 6), `clientDataJSON` (steps
//!   10–14), the RP ID hash, user presence and backup flags (15–18), the signature over
//!   `authenticatorData ‖ SHA-256(clientDataJSON)` (19–20) and the signature counter (21): the
//!   caller then stores the new count with `FactorStore::advance_factor_counter`, whose
//!   conditional update is what decides a race between two copies of one credential.
//!
//! Why our own code on aws-lc-rs and not webauthn-rs is in docs/ARCHITECTURE.md ("Passkeys"). The
//! CBOR reader is `cbor`; tests use attestations and assertions captured from Chromium's virtual
//! authenticator (`tests/fixtures/passkey/`).

mod cbor;
mod flow;

pub use flow::PasskeyFlowError;

use atauth_crypto::{b64, hash::sha256, random::random_bytes};
use aws_lc_rs::signature::{self as sig, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use cbor::Value;

/// How long a ceremony's challenge is valid: five minutes, the `timeout` the browser is given.
pub const CHALLENGE_LIFETIME_SECS: i64 = 300;

/// Longest credential id accepted (WebAuthn §7.1 step 24).
const MAX_CREDENTIAL_ID_LEN: usize = 1023;

/// COSE algorithm ES256 (ECDSA P-256 with SHA-256).
pub const COSE_ES256: i64 = -7;
/// COSE algorithm EdDSA (Ed25519).
pub const COSE_EDDSA: i64 = -8;
/// COSE algorithm RS256 (RSASSA-PKCS1-v1_5 with SHA-256).
pub const COSE_RS256: i64 = -257;

/// The algorithms offered in `pubKeyCredParams`, in order of preference.
const ALGORITHMS: [i64; 3] = [COSE_ES256, COSE_EDDSA, COSE_RS256];

// Authenticator data flags (WebAuthn §6.1).
const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_BE: u8 = 0x08;
const FLAG_BS: u8 = 0x10;
const FLAG_AT: u8 = 0x40;
const FLAG_ED: u8 = 0x80;

/// Why a ceremony failed. One variant per check; nothing is stored on any of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasskeyError {
    /// The issuer's host cannot be an RP ID (an IP address, or no host).
    #[error("the issuer's host {0:?} cannot be a WebAuthn RP ID (IP addresses are not allowed)")]
    InvalidRpId(String),
    /// The browser's answer, or a structure inside it, does not parse.
    #[error("malformed WebAuthn response: {0}")]
    Malformed(&'static str),
    /// The challenge is older than [`CHALLENGE_LIFETIME_SECS`].
    #[error("the WebAuthn challenge expired")]
    Expired,
    /// A registration answer to an authentication challenge, or the reverse.
    #[error("the WebAuthn challenge was issued for another ceremony")]
    WrongCeremony,
    /// `clientDataJSON.type` is not the ceremony's (§7.1 step 7, §7.2 step 11).
    #[error("clientDataJSON type is {found:?}, expected {expected:?}")]
    WrongType {
        /// `webauthn.create` or `webauthn.get`.
        expected: &'static str,
        /// What was sent.
        found: String,
    },
    /// `clientDataJSON.challenge` is not the challenge we issued (§7.1 step 8, §7.2 step 12).
    #[error("clientDataJSON challenge does not match the one issued")]
    ChallengeMismatch,
    /// `clientDataJSON.origin` is not the issuer's origin (§7.1 step 9, §7.2 step 13).
    #[error("clientDataJSON origin {0:?} is not this server's origin")]
    OriginMismatch(String),
    /// The ceremony ran in a cross-origin frame (§7.1 step 10).
    #[error("the WebAuthn ceremony ran in a cross-origin frame")]
    CrossOrigin,
    /// The authenticator data names another RP ID (§7.1 step 13, §7.2 step 15).
    #[error("the authenticator data's RP ID hash is not this server's")]
    RpIdMismatch,
    /// The user-present flag is not set (§7.1 step 14, §7.2 step 16).
    #[error("the authenticator did not confirm user presence")]
    UserNotPresent,
    /// Backup state set without backup eligibility (§6.1 flags, §7.1 step 16).
    #[error("the authenticator data's backup flags are inconsistent")]
    BackupFlags,
    /// Registration without attested credential data (§7.1 step 12).
    #[error("the attestation carries no credential")]
    NoCredential,
    /// A key type or algorithm we do not verify, or one not offered (§7.1 step 18).
    #[error("unsupported credential algorithm or key ({0})")]
    UnsupportedKey(String),
    /// An attestation format other than `none` and self-attested `packed` (§7.1 step 19).
    #[error("unsupported attestation format {0:?}")]
    UnsupportedAttestation(String),
    /// A `none` statement that is not empty, or a `packed` self-attestation that does not verify.
    #[error("the attestation statement is invalid")]
    AttestationInvalid,
    /// Credential id longer than 1023 bytes (§7.1 step 24).
    #[error("the credential id is too long")]
    CredentialIdTooLong,
    /// The credential was not offered for this sign-in (§7.2 step 5).
    #[error("this passkey was not offered for this sign-in")]
    CredentialNotAllowed,
    /// The credential belongs to another account than the one signing in (§7.2 step 6).
    #[error("this passkey belongs to another account")]
    OtherAccount,
    /// `userHandle` is present and is not the account's (§7.2 step 6).
    #[error("the assertion's user handle is not this account's")]
    UserHandleMismatch,
    /// The assertion signature does not verify with the stored key (§7.2 step 20).
    #[error("the assertion signature does not verify")]
    SignatureInvalid,
    /// The signature counter did not increase: the credential may have been cloned (§7.2 step 21).
    #[error(
        "the signature counter did not increase (stored {stored}, received {received}): possibly a cloned authenticator"
    )]
    CounterNotAdvanced {
        /// The count stored for the credential.
        stored: i64,
        /// The count in this assertion.
        received: i64,
    },
}

/// The relying party: this server, as WebAuthn names it.
#[derive(Debug, Clone)]
pub struct RelyingParty {
    id: String,
    origin: String,
    name: String,
    id_hash: [u8; 32],
}

impl RelyingParty {
    /// The RP of a server whose issuer (public URL) is `issuer`: RP ID = its host, origin = its
    /// origin; `name` is what authenticators show. An IP address cannot be an RP ID (the browser
    /// refuses it), so a server reached by address has no passkeys: use a name (`localhost` in
    /// development).
    pub fn for_issuer(issuer: &str, name: &str) -> Result<Self, PasskeyError> {
        let url = url::Url::parse(issuer).map_err(|_| PasskeyError::InvalidRpId(issuer.to_owned()))?;
        let id = match url.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            _ => return Err(PasskeyError::InvalidRpId(url.host_str().unwrap_or_default().to_owned())),
        };
        Ok(Self {
            id_hash: sha256(id.as_bytes()),
            id,
            origin: url.origin().ascii_serialization(),
            name: name.to_owned(),
        })
    }

    /// The RP ID (the issuer's host).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The origin every `clientDataJSON` must name.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// Which ceremony a challenge is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ceremony {
    /// Adding a passkey to an account.
    Register,
    /// Using one at sign-in.
    Authenticate,
}

/// A ceremony's server-side state: kept in a store under a key bound to the device session and the
/// account (and, at sign-in, the request), taken once when the browser answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// Registration or authentication.
    pub ceremony: Ceremony,
    /// The account the ceremony is for.
    pub did: String,
    /// The challenge, base64url.
    pub challenge: String,
    /// Registration: the account's credential ids (excluded); authentication: the ids offered.
    pub credentials: Vec<String>,
    /// Unix seconds.
    pub expires_at: i64,
}

impl Challenge {
    fn new(ceremony: Ceremony, did: &str, credentials: Vec<String>, now: i64) -> Self {
        Self {
            ceremony,
            did: did.to_owned(),
            challenge: b64::encode(random_bytes::<32>()),
            credentials,
            expires_at: now + CHALLENGE_LIFETIME_SECS,
        }
    }

    fn check(&self, ceremony: Ceremony, now: i64) -> Result<(), PasskeyError> {
        if self.ceremony != ceremony {
            return Err(PasskeyError::WrongCeremony);
        }
        if now >= self.expires_at {
            return Err(PasskeyError::Expired);
        }
        Ok(())
    }
}

/// The WebAuthn user handle of an account: 32 bytes derived from its DID, the same for every
/// passkey of the account (so an authenticator keeps one credential per account) and not the DID
/// itself (§14.6.1: no personal data in the handle).
pub fn user_handle(did: &str) -> [u8; 32] {
    sha256([b"atauth-webauthn-user\0".as_slice(), did.as_bytes()].concat())
}

/// `PublicKeyCredentialCreationOptions` (as JSON, binary members base64url) for adding a passkey
/// to `did` (shown as `handle`), excluding the account's `existing` credential ids, and the state
/// to keep.
pub fn registration_options(
    rp: &RelyingParty,
    did: &str,
    handle: &str,
    existing: Vec<String>,
    now: i64,
) -> (serde_json::Value, Challenge) {
    let state = Challenge::new(Ceremony::Register, did, existing, now);
    let options = serde_json::json!({
        "rp": { "id": rp.id, "name": rp.name },
        "user": { "id": b64::encode(user_handle(did)), "name": handle, "displayName": handle },
        "challenge": state.challenge,
        "pubKeyCredParams": ALGORITHMS.iter().map(|a| serde_json::json!({ "type": "public-key", "alg": a })).collect::<Vec<_>>(),
        "timeout": CHALLENGE_LIFETIME_SECS * 1000,
        "excludeCredentials": state.credentials.iter().map(|id| serde_json::json!({ "type": "public-key", "id": id })).collect::<Vec<_>>(),
        "authenticatorSelection": { "residentKey": "preferred", "requireResidentKey": false, "userVerification": "preferred" },
        "attestation": "none",
    });
    (options, state)
}

/// `PublicKeyCredentialRequestOptions` (as JSON) for a sign-in of `did` with one of `credentials`
/// (the account's passkeys: id and transports), and the state to keep.
pub fn authentication_options(
    rp: &RelyingParty,
    did: &str,
    credentials: &[(String, Vec<String>)],
    now: i64,
) -> (serde_json::Value, Challenge) {
    let ids = credentials.iter().map(|(id, _)| id.clone()).collect();
    let state = Challenge::new(Ceremony::Authenticate, did, ids, now);
    let allow: Vec<_> = credentials
        .iter()
        .map(|(id, transports)| {
            let mut c = serde_json::json!({ "type": "public-key", "id": id });
            if !transports.is_empty() {
                c["transports"] = serde_json::json!(transports);
            }
            c
        })
        .collect();
    let options = serde_json::json!({
        "challenge": state.challenge,
        "rpId": rp.id,
        "timeout": CHALLENGE_LIFETIME_SECS * 1000,
        "allowCredentials": allow,
        "userVerification": "preferred",
    });
    (options, state)
}

// ---------------------------------------------------------------------------- browser answers ---

/// What the browser sends after `navigator.credentials.create()`: the `PublicKeyCredential` in the
/// shape of its `toJSON()` (binary members base64url). Unknown members are ignored.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationResponse {
    /// The credential id, base64url.
    pub id: String,
    /// The same, base64url (`rawId`).
    pub raw_id: String,
    /// `public-key`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The attestation response.
    pub response: AttestationJson,
}

/// `AuthenticatorAttestationResponse` as JSON.
#[derive(Debug, Clone, Deserialize)]
pub struct AttestationJson {
    /// base64url.
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    /// base64url.
    #[serde(rename = "attestationObject")]
    pub attestation_object: String,
    /// `getTransports()`, when the browser has it.
    #[serde(default)]
    pub transports: Vec<String>,
}

/// What the browser sends after `navigator.credentials.get()`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssertionResponse {
    /// The credential id, base64url.
    pub id: String,
    /// The same, base64url (`rawId`).
    pub raw_id: String,
    /// `public-key`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The assertion response.
    pub response: AssertionJson,
}

/// `AuthenticatorAssertionResponse` as JSON.
#[derive(Debug, Clone, Deserialize)]
pub struct AssertionJson {
    /// base64url.
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    /// base64url.
    #[serde(rename = "authenticatorData")]
    pub authenticator_data: String,
    /// base64url.
    pub signature: String,
    /// base64url, or absent / `null` / empty.
    #[serde(default, rename = "userHandle")]
    pub user_handle: Option<String>,
}

impl AssertionResponse {
    /// The credential id the assertion claims (base64url), checked to be well formed; the caller
    /// looks it up to find its account and key.
    pub fn credential_id(&self) -> Result<String, PasskeyError> {
        credential_id(&self.kind, &self.id, &self.raw_id)
    }
}

fn credential_id(kind: &str, id: &str, raw_id: &str) -> Result<String, PasskeyError> {
    if kind != "public-key" {
        return Err(PasskeyError::Malformed("credential type is not public-key"));
    }
    let raw = b64::decode(raw_id).map_err(|_| PasskeyError::Malformed("rawId is not base64url"))?;
    if raw.is_empty() || b64::encode(&raw) != id {
        return Err(PasskeyError::Malformed("id and rawId differ"));
    }
    if raw.len() > MAX_CREDENTIAL_ID_LEN {
        return Err(PasskeyError::CredentialIdTooLong);
    }
    Ok(raw_id.to_owned())
}

fn decode(field: &str, what: &'static str) -> Result<Vec<u8>, PasskeyError> {
    b64::decode(field).map_err(|_| PasskeyError::Malformed(what))
}

// -------------------------------------------------------------------------------- client data ---

#[derive(Deserialize)]
struct ClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(default, rename = "crossOrigin")]
    cross_origin: Option<bool>,
}

/// Steps 7–11 of §7.1 (11–14 of §7.2): type, challenge, origin, not cross-origin.
fn check_client_data(
    rp: &RelyingParty,
    state: &Challenge,
    json: &[u8],
    expected: &'static str,
) -> Result<(), PasskeyError> {
    let cd: ClientData =
        serde_json::from_slice(json).map_err(|_| PasskeyError::Malformed("clientDataJSON does not parse"))?;
    if cd.kind != expected {
        return Err(PasskeyError::WrongType { expected, found: cd.kind });
    }
    let sent = b64::decode(&cd.challenge).map_err(|_| PasskeyError::ChallengeMismatch)?;
    let issued = b64::decode(&state.challenge).map_err(|_| PasskeyError::ChallengeMismatch)?;
    if sent != issued {
        return Err(PasskeyError::ChallengeMismatch);
    }
    if cd.origin != rp.origin {
        return Err(PasskeyError::OriginMismatch(cd.origin));
    }
    if cd.cross_origin == Some(true) {
        return Err(PasskeyError::CrossOrigin);
    }
    Ok(())
}

// ------------------------------------------------------------------------- authenticator data ---

/// Parsed authenticator data (§6.1).
struct AuthData<'a> {
    rp_id_hash: &'a [u8],
    flags: u8,
    sign_count: u32,
    credential: Option<AttestedCredential<'a>>,
}

struct AttestedCredential<'a> {
    aaguid: &'a [u8],
    id: &'a [u8],
    /// The COSE_Key exactly as sent (stored, and parsed again at each sign-in).
    public_key: &'a [u8],
}

fn parse_auth_data(data: &[u8]) -> Result<AuthData<'_>, PasskeyError> {
    const HEAD: usize = 37;
    if data.len() < HEAD {
        return Err(PasskeyError::Malformed("authenticator data too short"));
    }
    let (rp_id_hash, flags) = (&data[..32], data[32]);
    let sign_count = u32::from_be_bytes([data[33], data[34], data[35], data[36]]);
    let mut rest = &data[HEAD..];
    let credential = if flags & FLAG_AT != 0 {
        if rest.len() < 18 {
            return Err(PasskeyError::Malformed("attested credential data too short"));
        }
        let aaguid = &rest[..16];
        let len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
        rest = &rest[18..];
        if len > MAX_CREDENTIAL_ID_LEN {
            return Err(PasskeyError::CredentialIdTooLong);
        }
        if rest.len() < len {
            return Err(PasskeyError::Malformed("credential id longer than the data"));
        }
        let (id, after) = rest.split_at(len);
        let (_, after_key) = cbor::read(after)?;
        let public_key = &after[..after.len() - after_key.len()];
        rest = after_key;
        Some(AttestedCredential { aaguid, id, public_key })
    } else {
        None
    };
    if flags & FLAG_ED != 0 {
        // Extension outputs: one CBOR map, read (to find its end) but not acted on.
        let (ext, after) = cbor::read(rest)?;
        if !matches!(ext, Value::Map(_)) {
            return Err(PasskeyError::Malformed("extensions are not a map"));
        }
        rest = after;
    }
    if !rest.is_empty() {
        return Err(PasskeyError::Malformed("trailing bytes in authenticator data"));
    }
    Ok(AuthData { rp_id_hash, flags, sign_count, credential })
}

/// The checks on authenticator data both ceremonies make: the RP ID hash, user presence, and
/// consistent backup flags.
fn check_auth_data(rp: &RelyingParty, auth: &AuthData<'_>) -> Result<(), PasskeyError> {
    if auth.rp_id_hash != rp.id_hash {
        return Err(PasskeyError::RpIdMismatch);
    }
    if auth.flags & FLAG_UP == 0 {
        return Err(PasskeyError::UserNotPresent);
    }
    if auth.flags & FLAG_BS != 0 && auth.flags & FLAG_BE == 0 {
        return Err(PasskeyError::BackupFlags);
    }
    Ok(())
}

// ----------------------------------------------------------------------------------- COSE keys ---

/// A credential public key we can verify with.
enum CoseKey<'a> {
    /// ES256: the uncompressed point `04 ‖ x ‖ y`.
    Es256(Vec<u8>),
    /// EdDSA over Ed25519: the 32-byte key.
    Ed25519(&'a [u8]),
    /// RS256: modulus and exponent, big-endian.
    Rs256 { n: &'a [u8], e: &'a [u8] },
}

impl CoseKey<'_> {
    fn alg(&self) -> i64 {
        match self {
            Self::Es256(_) => COSE_ES256,
            Self::Ed25519(_) => COSE_EDDSA,
            Self::Rs256 { .. } => COSE_RS256,
        }
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            // WebAuthn ES256 signatures are ASN.1 DER (§6.5.6), unlike JOSE's r‖s.
            Self::Es256(point) => {
                UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_ASN1, point).verify(message, signature).is_ok()
            }
            Self::Ed25519(key) => {
                UnparsedPublicKey::new(&sig::ED25519, key).verify(message, signature).is_ok()
            }
            Self::Rs256 { n, e } => sig::RsaPublicKeyComponents { n: *n, e: *e }
                .verify(&sig::RSA_PKCS1_2048_8192_SHA256, message, signature)
                .is_ok(),
        }
    }
}

fn bytes_of<'a>(key: &Value<'a>, label: i128) -> Result<&'a [u8], PasskeyError> {
    key.get_int(label)
        .and_then(Value::as_bytes)
        .ok_or(PasskeyError::UnsupportedKey(format!("missing {label}")))
}

/// Parses a COSE_Key (RFC 9053) of the three kinds we verify, checking that its `alg` fits its
/// key type and curve, and that the key itself is valid (a point on P-256, an Ed25519 key, an RSA
/// modulus of 2048 to 8192 bits).
fn parse_cose_key(bytes: &[u8]) -> Result<CoseKey<'_>, PasskeyError> {
    let key = cbor::read_exact(bytes)?;
    let int = |label| key.get_int(label).and_then(Value::as_int);
    let (kty, alg) = (int(1), int(3));
    let unsupported = || PasskeyError::UnsupportedKey(format!("kty {kty:?}, alg {alg:?}"));
    let parsed = match (kty, alg) {
        // EC2, ES256, crv P-256.
        (Some(2), Some(-7)) if int(-1) == Some(1) => {
            let (x, y) = (bytes_of(&key, -2)?, bytes_of(&key, -3)?);
            if x.len() != 32 || y.len() != 32 {
                return Err(unsupported());
            }
            let point = [&[0x04][..], x, y].concat();
            sig::ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_ASN1, &point)
                .map_err(|_| PasskeyError::UnsupportedKey("not a P-256 point".into()))?;
            CoseKey::Es256(point)
        }
        // OKP, EdDSA, crv Ed25519.
        (Some(1), Some(-8)) if int(-1) == Some(6) => {
            let x = bytes_of(&key, -2)?;
            sig::ParsedPublicKey::new(&sig::ED25519, x)
                .map_err(|_| PasskeyError::UnsupportedKey("not an Ed25519 key".into()))?;
            CoseKey::Ed25519(x)
        }
        // RSA, RS256.
        (Some(3), Some(-257)) => {
            let (n, e) = (bytes_of(&key, -1)?, bytes_of(&key, -2)?);
            let bits = n.iter().position(|b| *b != 0).map_or(0, |i| (n.len() - i) * 8);
            if !(2048..=8192).contains(&bits) || e.is_empty() || e.len() > 4 {
                return Err(PasskeyError::UnsupportedKey(format!("RSA modulus of {bits} bits")));
            }
            CoseKey::Rs256 { n, e }
        }
        _ => return Err(unsupported()),
    };
    Ok(parsed)
}

// -------------------------------------------------------------------------------- registration ---

/// A passkey verified at registration: what the store keeps. `credential_id` and the first
/// `sign_count` go into the factor's columns, the rest ([`StoredPasskey`]) into its `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPasskey {
    /// base64url.
    pub credential_id: String,
    /// The signature counter at registration.
    pub sign_count: u32,
    /// What verifying its assertions needs.
    pub stored: StoredPasskey,
}

/// The JSON a passkey factor keeps in its `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPasskey {
    /// The COSE algorithm of the key.
    pub alg: i64,
    /// The COSE_Key as the authenticator sent it, base64url.
    pub public_key: String,
    /// The authenticator model (hex), all zeros when the browser hid it (attestation `none`).
    pub aaguid: String,
    /// The transports the browser reported, offered back at sign-in.
    #[serde(default)]
    pub transports: Vec<String>,
    /// Whether the user was verified (PIN, biometrics) at registration.
    pub user_verified: bool,
    /// Whether the credential may be synced (backup eligible).
    pub backup_eligible: bool,
    /// The attestation format that was checked (`none` or `packed`).
    pub attestation_format: String,
}

/// Verifies the answer to a registration challenge (§7.1). `state` is the [`Challenge`] taken from
/// the store; on success the passkey is ready to be stored (a credential id already registered to
/// any account is refused there).
pub fn verify_registration(
    rp: &RelyingParty,
    state: &Challenge,
    response: &RegistrationResponse,
    now: i64,
) -> Result<NewPasskey, PasskeyError> {
    state.check(Ceremony::Register, now)?;
    let credential_id = credential_id(&response.kind, &response.id, &response.raw_id)?;
    let client_data = decode(&response.response.client_data_json, "clientDataJSON is not base64url")?;
    check_client_data(rp, state, &client_data, "webauthn.create")?;
    let object = decode(&response.response.attestation_object, "attestationObject is not base64url")?;
    let object = cbor::read_exact(&object)?;
    let (Some(Value::Text(fmt)), Some(statement), Some(Value::Bytes(auth_bytes))) =
        (object.get_text("fmt"), object.get_text("attStmt"), object.get_text("authData"))
    else {
        return Err(PasskeyError::Malformed("attestation object lacks fmt, attStmt or authData"));
    };
    let auth = parse_auth_data(auth_bytes)?;
    check_auth_data(rp, &auth)?;
    let credential = auth.credential.as_ref().ok_or(PasskeyError::NoCredential)?;
    if b64::encode(credential.id) != credential_id {
        return Err(PasskeyError::Malformed("the attested credential id is not the response's id"));
    }
    let key = parse_cose_key(credential.public_key)?;
    if !ALGORITHMS.contains(&key.alg()) {
        return Err(PasskeyError::UnsupportedKey(format!("alg {}", key.alg())));
    }
    match *fmt {
        // §8.7: an empty statement.
        "none" => {
            if !matches!(statement, Value::Map(m) if m.is_empty()) {
                return Err(PasskeyError::AttestationInvalid);
            }
        }
        // §8.2 self attestation: no x5c, alg is the credential's, the signature verifies with the
        // credential key over authData ‖ SHA-256(clientDataJSON).
        "packed" => {
            if statement.get_text("x5c").is_some() {
                return Err(PasskeyError::UnsupportedAttestation("packed with a certificate".into()));
            }
            let alg = statement.get_text("alg").and_then(Value::as_int);
            let signature = statement.get_text("sig").and_then(Value::as_bytes);
            let signed = [*auth_bytes, &sha256(&client_data)[..]].concat();
            match (alg, signature) {
                (Some(a), Some(s)) if a == i128::from(key.alg()) && key.verify(&signed, s) => {}
                _ => return Err(PasskeyError::AttestationInvalid),
            }
        }
        other => return Err(PasskeyError::UnsupportedAttestation(other.to_owned())),
    }
    if state.credentials.contains(&credential_id) {
        // excludeCredentials was ignored: this account has the credential already.
        return Err(PasskeyError::CredentialNotAllowed);
    }
    Ok(NewPasskey {
        credential_id,
        sign_count: auth.sign_count,
        stored: StoredPasskey {
            alg: key.alg(),
            public_key: b64::encode(credential.public_key),
            aaguid: hex::encode(credential.aaguid),
            transports: response.response.transports.clone(),
            user_verified: auth.flags & FLAG_UV != 0,
            backup_eligible: auth.flags & FLAG_BE != 0,
            attestation_format: (*fmt).to_owned(),
        },
    })
}

// ------------------------------------------------------------------------------ authentication ---

/// A verified assertion: the caller advances the stored counter to `sign_count`
/// (`FactorStore::advance_factor_counter`) and refuses the sign-in if that fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assertion {
    /// The authenticator's signature counter in this assertion.
    pub sign_count: u32,
    /// Whether the user was verified.
    pub user_verified: bool,
}

/// The stored passkey an assertion names, as the caller found it by credential id.
#[derive(Debug, Clone, Copy)]
pub struct KnownPasskey<'a> {
    /// The account it belongs to.
    pub did: &'a str,
    /// Its credential id (base64url).
    pub credential_id: &'a str,
    /// Its data.
    pub stored: &'a StoredPasskey,
    /// Its stored signature counter.
    pub counter: i64,
}

/// The counter rule (§7.2 step 21), the same as the store's conditional update: the new count must
/// be greater than the stored one, except that an authenticator that never counts (both 0) passes.
pub fn counter_advances(stored: i64, received: i64) -> bool {
    received > stored || (received == 0 && stored == 0)
}

/// Verifies an assertion (§7.2) for the sign-in of `state.did`, made with `known` (the passkey the
/// response's credential id names). An assertion with another account's passkey is refused
/// ([`PasskeyError::OtherAccount`]) before anything else is looked at.
pub fn verify_assertion(
    rp: &RelyingParty,
    state: &Challenge,
    response: &AssertionResponse,
    known: KnownPasskey<'_>,
    now: i64,
) -> Result<Assertion, PasskeyError> {
    state.check(Ceremony::Authenticate, now)?;
    let credential_id = response.credential_id()?;
    if credential_id != known.credential_id {
        return Err(PasskeyError::Malformed("the passkey found is not the one named"));
    }
    if known.did != state.did {
        return Err(PasskeyError::OtherAccount);
    }
    if !state.credentials.contains(&credential_id) {
        return Err(PasskeyError::CredentialNotAllowed);
    }
    match response.response.user_handle.as_deref() {
        None | Some("") => {}
        Some(h) => {
            if decode(h, "userHandle is not base64url")? != user_handle(&state.did) {
                return Err(PasskeyError::UserHandleMismatch);
            }
        }
    }
    let client_data = decode(&response.response.client_data_json, "clientDataJSON is not base64url")?;
    check_client_data(rp, state, &client_data, "webauthn.get")?;
    let auth_bytes = decode(&response.response.authenticator_data, "authenticatorData is not base64url")?;
    let auth = parse_auth_data(&auth_bytes)?;
    check_auth_data(rp, &auth)?;
    let public_key = decode(&known.stored.public_key, "stored key is not base64url")?;
    let key = parse_cose_key(&public_key)?;
    let signature = decode(&response.response.signature, "signature is not base64url")?;
    let signed = [&auth_bytes[..], &sha256(&client_data)[..]].concat();
    if !key.verify(&signed, &signature) {
        return Err(PasskeyError::SignatureInvalid);
    }
    let received = i64::from(auth.sign_count);
    if !counter_advances(known.counter, received) {
        return Err(PasskeyError::CounterNotAdvanced { stored: known.counter, received });
    }
    Ok(Assertion { sign_count: auth.sign_count, user_verified: auth.flags & FLAG_UV != 0 })
}

#[cfg(test)]
mod tests;
