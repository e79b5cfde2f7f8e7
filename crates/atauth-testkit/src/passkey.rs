//! A software WebAuthn authenticator for the router tests of passkeys: a real P-256 key that
//! answers `navigator.credentials.create()` / `get()` options (the JSON the server sends) with the
//! JSON the server's script posts back, as a browser on `origin` would: `clientDataJSON`, an
//! attestation object with format `none`, authenticator data with the RP ID hash, flags and
//! counter, and an ES256 signature. Nothing is mocked on the server side: it verifies these as it
//! verifies Chromium's (the Chromium case in `interop/passkey.mjs` is the browser end to end).

use atauth_crypto::{b64, hash::sha256};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

/// One credential in a software authenticator.
pub struct SoftPasskey {
    key: EcdsaKeyPair,
    /// The credential id.
    pub id: Vec<u8>,
    /// The signature counter of the next use (raise or lower it to test the counter check).
    pub counter: u32,
    /// The origin the "browser" puts into `clientDataJSON`.
    pub origin: String,
    /// Whether the flags say the user was verified.
    pub user_verified: bool,
}

fn head(major: u8, len: usize, out: &mut Vec<u8>) {
    match len {
        0..=23 => out.push((major << 5) | len as u8),
        24..=255 => out.extend([(major << 5) | 24, len as u8]),
        _ => out.extend([(major << 5) | 25, (len >> 8) as u8, len as u8]),
    }
}

fn text(s: &str, out: &mut Vec<u8>) {
    head(3, s.len(), out);
    out.extend(s.as_bytes());
}

fn bytes(b: &[u8], out: &mut Vec<u8>) {
    head(2, b.len(), out);
    out.extend(b);
}

impl SoftPasskey {
    /// A new credential with a fresh key and a random 16-byte id, used from `origin`.
    pub fn new(origin: &str) -> Self {
        Self {
            key: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("P-256 key"),
            id: atauth_crypto::random::random_bytes::<16>().to_vec(),
            counter: 1,
            origin: origin.to_owned(),
            user_verified: true,
        }
    }

    /// The credential id, base64url.
    pub fn id_b64(&self) -> String {
        b64::encode(&self.id)
    }

    fn client_data(&self, kind: &str, challenge: &str) -> String {
        json!({ "type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false })
            .to_string()
    }

    fn auth_data(&self, rp_id: &str, attested: bool) -> Vec<u8> {
        let mut out = sha256(rp_id.as_bytes()).to_vec();
        let uv = if self.user_verified { 0x04 } else { 0 };
        out.push(0x01 | uv | if attested { 0x40 } else { 0 });
        out.extend(self.counter.to_be_bytes());
        if attested {
            let point = self.key.public_key().as_ref();
            out.extend([0u8; 16]);
            out.extend(u16::try_from(self.id.len()).expect("short id").to_be_bytes());
            out.extend(&self.id);
            // COSE_Key: {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}
            out.extend([0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21]);
            bytes(&point[1..33], &mut out);
            out.push(0x22);
            bytes(&point[33..65], &mut out);
        }
        out
    }

    /// The answer to creation `options` (the server's `publicKey` object): the registration JSON.
    pub fn create(&mut self, options: &Value) -> Value {
        let rp_id = options["rp"]["id"].as_str().expect("rp.id");
        let challenge = options["challenge"].as_str().expect("challenge");
        let client_data = self.client_data("webauthn.create", challenge);
        let auth = self.auth_data(rp_id, true);
        let mut obj = vec![0xa3];
        text("fmt", &mut obj);
        text("none", &mut obj);
        text("attStmt", &mut obj);
        obj.push(0xa0);
        text("authData", &mut obj);
        bytes(&auth, &mut obj);
        self.counter += 1;
        json!({
            "id": self.id_b64(), "rawId": self.id_b64(), "type": "public-key",
            "response": {
                "clientDataJSON": b64::encode(client_data), "attestationObject": b64::encode(&obj),
                "transports": ["internal"],
            },
        })
    }

    /// The answer to request `options` (the server's `publicKey` object) with this credential,
    /// whether or not the options offered it (a test may answer with another account's passkey).
    pub fn get(&mut self, options: &Value, user_handle: Option<&[u8]>) -> Value {
        let rp_id = options["rpId"].as_str().expect("rpId");
        let challenge = options["challenge"].as_str().expect("challenge");
        let client_data = self.client_data("webauthn.get", challenge);
        let auth = self.auth_data(rp_id, false);
        let mut signed = auth.clone();
        signed.extend(sha256(client_data.as_bytes()));
        let signature = self.key.sign(&SystemRandom::new(), &signed).expect("signature");
        self.counter += 1;
        json!({
            "id": self.id_b64(), "rawId": self.id_b64(), "type": "public-key",
            "response": {
                "clientDataJSON": b64::encode(client_data), "authenticatorData": b64::encode(&auth),
                "signature": b64::encode(signature.as_ref()), "userHandle": user_handle.map(b64::encode),
            },
        })
    }
}
