//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP) for the second factor of the
//! authorization server: HMAC-SHA-1 on AWS-LC, 6 digits, 30-second steps, and base32 (RFC 4648 §6)
//! for showing the secret to authenticator apps. No I/O; the time comes in from the caller.
//!
//! SHA-1 is what every authenticator app implements for `otpauth://totp` URIs without an
//! `algorithm` parameter; HMAC-SHA-1 is not affected by SHA-1's collision attacks (RFC 6238 §5.1
//! leaves the choice to the verifier).

use crate::SecretBytes;
use crate::random::random_bytes;
use crate::secret::ct_eq;

/// Seconds per time step (RFC 6238 §4.1, `X`).
pub const STEP_SECONDS: u64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Steps accepted before and after the current one (clock drift, a code typed at a step's end).
pub const WINDOW: u64 = 1;
/// Bytes of a generated secret: 160 bits, the HMAC-SHA-1 block-free key length RFC 4226 §4
/// recommends.
pub const SECRET_BYTES: usize = 20;

/// A TOTP shared secret. `Debug` never prints it; [`Self::expose_secret`] reaches the bytes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TotpSecret(SecretBytes);

impl TotpSecret {
    /// A new random secret of [`SECRET_BYTES`].
    pub fn generate() -> Self {
        Self(SecretBytes::new(random_bytes::<SECRET_BYTES>().to_vec()))
    }

    /// A secret from its bytes (at least 10, RFC 4226 §4 R6), or `None`.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        (bytes.len() >= 10).then(|| Self(SecretBytes::new(bytes.to_vec())))
    }

    /// Parses the base32 form ([`Self::to_base32`]): case, spaces and `=` padding are ignored.
    pub fn from_base32(s: &str) -> Option<Self> {
        Self::from_bytes(&base32_decode(s)?)
    }

    /// The raw secret.
    pub fn expose_secret(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// Unpadded upper-case base32, as authenticator apps take it (`secret=` of the URI).
    pub fn to_base32(&self) -> String {
        base32_encode(self.expose_secret())
    }

    /// [`Self::to_base32`] in groups of four separated by spaces, for typing by hand.
    pub fn to_base32_grouped(&self) -> String {
        let b = self.to_base32();
        b.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
    }

    /// The key URI authenticator apps import (the Google Authenticator "Key Uri Format"):
    /// `otpauth://totp/<issuer>:<account>?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        let label = format!("{}:{}", encode_component(issuer), encode_component(account));
        format!(
            "otpauth://totp/{label}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            self.to_base32(),
            encode_component(issuer)
        )
    }

    /// The code for time step `step`, zero-padded to [`DIGITS`].
    pub fn code_at_step(&self, step: u64) -> String {
        format!("{:0width$}", hotp(self.expose_secret(), step, DIGITS), width = DIGITS as usize)
    }

    /// Checks `code` at `unix_seconds` against the current step and [`WINDOW`] steps either side,
    /// considering only steps after `last_step` (the last accepted one: a code is good once,
    /// RFC 6238 §5.2). Returns the matched step (the newest that matches), to be recorded as the
    /// new last step. `code` may contain spaces; anything but [`DIGITS`] digits fails. Every
    /// candidate is compared in constant time.
    pub fn verify(&self, code: &str, unix_seconds: u64, last_step: u64) -> Option<u64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let now = time_step(unix_seconds);
        let mut found = None;
        for step in now.saturating_sub(WINDOW)..=now + WINDOW {
            if step > last_step && ct_eq(self.code_at_step(step).as_bytes(), code.as_bytes()) {
                found = Some(step);
            }
        }
        found
    }
}

/// The time step of `unix_seconds` (RFC 6238 §4.2, `T0` = 0).
pub fn time_step(unix_seconds: u64) -> u64 {
    unix_seconds / STEP_SECONDS
}

/// HOTP (RFC 4226 §5.3): HMAC-SHA-1 of the big-endian counter, dynamically truncated, modulo
/// `10^digits` (`digits` at most 9).
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> u32 {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let tag = aws_lc_rs::hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let bin = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
    bin % 10u32.pow(digits.min(9))
}

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Base32 (RFC 4648 §6) without padding.
pub fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buf >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buf << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes base32 (RFC 4648 §6), ignoring case, spaces, hyphens and trailing `=`; `None` for any
/// other character.
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.trim_end_matches('=').bytes().filter(|c| !matches!(c, b' ' | b'-')) {
        let v = ALPHABET.iter().position(|a| *a == c.to_ascii_uppercase())?;
        buf = (buf << 5) | u32::try_from(v).ok()?;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buf >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for the URI's label and issuer).
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: the SHA-1 column, secret "12345678901234567890" (ASCII), 8 digits.
    #[test]
    fn rfc6238_appendix_b_sha1_vectors() {
        let key = b"12345678901234567890";
        for (time, expected) in [
            (59_u64, 94_287_082_u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            assert_eq!(hotp(key, time_step(time), 8), expected, "T = {time}");
        }
        // The same vectors at 6 digits are their last six (RFC 4226 §5.3 truncation).
        let secret = TotpSecret::from_bytes(key).unwrap();
        assert_eq!(secret.code_at_step(time_step(59)), "287082");
        assert_eq!(secret.code_at_step(time_step(1_111_111_109)), "081804", "zero-padded");
    }

    /// RFC 4226 Appendix D: HOTP values for counters 0..9 (6 digits).
    #[test]
    fn rfc4226_appendix_d_hotp_vectors() {
        let expected =
            [755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871, 520_489];
        for (counter, want) in expected.iter().enumerate() {
            assert_eq!(hotp(b"12345678901234567890", counter as u64, 6), *want, "counter {counter}");
        }
    }

    #[test]
    fn verify_accepts_one_step_either_side_once() {
        let s = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        let t = 1_111_111_111; // step 37037037
        let now = time_step(t);
        assert_eq!(s.verify(&s.code_at_step(now), t, 0), Some(now));
        assert_eq!(s.verify(&s.code_at_step(now - 1), t, 0), Some(now - 1), "one step late");
        assert_eq!(s.verify(&s.code_at_step(now + 1), t, 0), Some(now + 1), "one step early");
        assert_eq!(s.verify(&s.code_at_step(now - 2), t, 0), None, "two steps late");
        assert_eq!(s.verify(&s.code_at_step(now + 2), t, 0), None, "two steps early");
        assert_eq!(s.verify(&s.code_at_step(now), t, now), None, "the accepted step is not accepted again");
        assert_eq!(s.verify(&s.code_at_step(now - 1), t, now), None, "nor an older one");
        let spaced = format!("{} {}", &s.code_at_step(now)[..3], &s.code_at_step(now)[3..]);
        assert_eq!(s.verify(&spaced, t, 0), Some(now), "spaces are ignored");
        assert_eq!(s.verify("12345", t, 0), None);
        assert_eq!(s.verify("12345a", t, 0), None);
        assert_eq!(s.verify("", t, 0), None);
    }

    /// RFC 4648 §10 test vectors (base32, padding stripped).
    #[test]
    fn base32_rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(plain.as_bytes()), enc);
            assert_eq!(base32_decode(enc).unwrap(), plain.as_bytes());
        }
        assert_eq!(base32_decode("mzxw 6ytb-oi======").unwrap(), b"foobar");
        assert_eq!(base32_decode("MZXW1"), None, "1 is not base32");
    }

    #[test]
    fn secrets_are_random_and_round_trip() {
        let (a, b) = (TotpSecret::generate(), TotpSecret::generate());
        assert_ne!(a, b);
        assert_eq!(a.to_base32().len(), 32);
        assert_eq!(TotpSecret::from_base32(&a.to_base32_grouped()).unwrap(), a);
        assert_eq!(a.to_base32_grouped().split(' ').count(), 8);
        assert!(!format!("{a:?}").contains(&a.to_base32()), "Debug redacts");
        assert_eq!(TotpSecret::from_bytes(b"short"), None);
        let uri = a.otpauth_uri("PDS Example", "alice.example.com");
        assert_eq!(
            uri,
            format!(
                "otpauth://totp/PDS%20Example:alice.example.com?secret={}&issuer=PDS%20Example&algorithm=SHA1&digits=6&period=30",
                a.to_base32()
            )
        );
    }
}
