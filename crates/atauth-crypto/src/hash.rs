//! SHA-256 helpers for thumbprints, PKCE and `ath`.

use aws_lc_rs::digest;

/// SHA-256 of `data`.
pub fn sha256(data: impl AsRef<[u8]>) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data.as_ref());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The DPoP `ath` claim for an access token: base64url(SHA-256(ASCII(token))) (RFC 9449 §4.2).
pub fn access_token_hash(access_token: &str) -> String {
    crate::b64::encode(sha256(access_token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ath_matches_rfc9449_example() {
        // Checklist §4.3, RFC 9449 §7.1 example access token.
        assert_eq!(
            access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }
}
