//! Base64url without padding (RFC 4648 §5), the only base64 flavour JOSE and OAuth use here.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encodes `bytes` as base64url without padding.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Appends the base64url (no padding) encoding of `bytes` to `out`.
pub fn encode_into(bytes: impl AsRef<[u8]>, out: &mut String) {
    URL_SAFE_NO_PAD.encode_string(bytes, out);
}

/// Decodes base64url without padding. Padding, the standard alphabet and whitespace are rejected,
/// as are non-canonical trailing bits, so every value has exactly one accepted spelling.
pub fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD.decode(text)
}

/// Decodes base64url into a fixed-size array; `None` when the text is invalid or the length differs.
pub fn decode_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    // Base64 of N bytes is exactly ceil(4N/3) characters without padding: reject early.
    if text.len() != (N * 4).div_ceil(3) {
        return None;
    }
    let mut out = [0u8; N];
    match URL_SAFE_NO_PAD.decode_slice(text, &mut out) {
        Ok(n) if n == N => Some(out),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_padding_and_std_alphabet() {
        assert_eq!(encode([0xfb, 0xff]), "-_8");
        assert_eq!(decode("-_8").unwrap(), vec![0xfb, 0xff]);
        assert!(decode("-_8=").is_err());
        assert!(decode("+/8").is_err());
        assert!(decode("-_ 8").is_err());
    }

    #[test]
    fn decode_array_checks_length() {
        assert_eq!(decode_array::<2>("-_8"), Some([0xfb, 0xff]));
        assert_eq!(decode_array::<3>("-_8"), None);
        assert_eq!(decode_array::<1>("-_8"), None);
    }

    #[test]
    fn rejects_non_canonical_trailing_bits() {
        // "-_9" decodes to the same two bytes with non-zero trailing bits.
        assert!(decode("-_9").is_err());
    }
}
