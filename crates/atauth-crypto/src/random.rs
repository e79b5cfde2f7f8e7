//! Random values from the operating system's CSPRNG (through AWS-LC).

use crate::b64;

/// Fills a new array with random bytes.
///
/// # Panics
/// Panics only if the operating system's random source fails, which no caller can recover from.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(&mut out).expect("the OS random source failed");
    out
}

/// A random base64url string carrying `N` random bytes (`N * 8` bits of entropy).
pub fn random_token<const N: usize>() -> String {
    b64::encode(random_bytes::<N>())
}

/// A random OAuth `state` value (256 bits, base64url). CL-STATE-01.
pub fn generate_state() -> String {
    random_token::<32>()
}

/// A random JWT `jti` (128 bits, base64url: above the 96 bits CL-DPOP-02 asks for).
pub fn generate_jti() -> String {
    random_token::<16>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_and_sized() {
        let a = generate_state();
        let b = generate_state();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(generate_jti().len(), 22);
    }
}
