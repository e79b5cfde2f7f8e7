//! A reader for the CBOR (RFC 8949) that WebAuthn sends: the attestation object, COSE keys and
//! authenticator extensions. Definite lengths only (CTAP2's canonical encoding has no other), no
//! tags, nesting at most [`MAX_DEPTH`] deep, every length checked against the input before it is
//! used. Floats and simple values are read (an extension may carry one) but nothing here uses them.

use super::PasskeyError;

/// Deepest nesting accepted (a COSE key is depth 2, an attestation object 3).
const MAX_DEPTH: usize = 8;

/// One CBOR data item, borrowing byte and text strings from the input.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value<'a> {
    /// Major type 0.
    Unsigned(u64),
    /// Major type 1: the value is `-1 - n`, kept as `i128` so every `n` fits.
    Negative(i128),
    /// Major type 2.
    Bytes(&'a [u8]),
    /// Major type 3.
    Text(&'a str),
    /// Major type 4.
    Array(Vec<Value<'a>>),
    /// Major type 5, in the order sent.
    Map(Vec<(Value<'a>, Value<'a>)>),
    /// `false` / `true`.
    Bool(bool),
    /// `null`, `undefined`, another simple value or a float: present, never read.
    Other,
}

impl<'a> Value<'a> {
    /// The integer value of an unsigned or negative integer.
    pub(super) fn as_int(&self) -> Option<i128> {
        match self {
            Self::Unsigned(n) => Some(i128::from(*n)),
            Self::Negative(n) => Some(*n),
            _ => None,
        }
    }

    /// A map entry by integer key (COSE keys).
    pub(super) fn get_int(&self, key: i128) -> Option<&Value<'a>> {
        match self {
            Self::Map(entries) => entries.iter().find(|(k, _)| k.as_int() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A map entry by text key (attestation objects and statements).
    pub(super) fn get_text(&self, key: &str) -> Option<&Value<'a>> {
        match self {
            Self::Map(entries) => {
                entries.iter().find(|(k, _)| matches!(k, Self::Text(t) if *t == key)).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// The bytes of a byte string.
    pub(super) fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Self::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

/// Reads one data item from the start of `input`; answers it and the bytes after it.
pub(super) fn read(input: &[u8]) -> Result<(Value<'_>, &[u8]), PasskeyError> {
    read_at(input, 0)
}

/// Reads exactly one data item: trailing bytes are an error.
pub(super) fn read_exact(input: &[u8]) -> Result<Value<'_>, PasskeyError> {
    match read(input)? {
        (v, []) => Ok(v),
        _ => Err(PasskeyError::Malformed("trailing bytes after CBOR item")),
    }
}

fn malformed(what: &'static str) -> PasskeyError {
    PasskeyError::Malformed(what)
}

fn take(input: &[u8], n: u64) -> Result<(&[u8], &[u8]), PasskeyError> {
    let n = usize::try_from(n).map_err(|_| malformed("CBOR length too large"))?;
    if n > input.len() {
        return Err(malformed("CBOR item longer than its input"));
    }
    Ok(input.split_at(n))
}

/// The argument of a head: the additional information or the 1/2/4/8 bytes after it.
fn argument(info: u8, rest: &[u8]) -> Result<(u64, &[u8]), PasskeyError> {
    let width = match info {
        0..=23 => return Ok((u64::from(info), rest)),
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        // 28–30 are reserved; 31 is an indefinite length, which CTAP2 never sends.
        _ => return Err(malformed("indefinite or reserved CBOR length")),
    };
    let (bytes, rest) = take(rest, width)?;
    Ok((bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)), rest))
}

fn read_at(input: &[u8], depth: usize) -> Result<(Value<'_>, &[u8]), PasskeyError> {
    if depth > MAX_DEPTH {
        return Err(malformed("CBOR nested too deep"));
    }
    let (&head, rest) = input.split_first().ok_or_else(|| malformed("CBOR input ends early"))?;
    let (major, info) = (head >> 5, head & 0x1f);
    if major == 7 {
        return match info {
            20 => Ok((Value::Bool(false), rest)),
            21 => Ok((Value::Bool(true), rest)),
            0..=23 => Ok((Value::Other, rest)),
            // A one-byte simple value, or a half, single or double float.
            24..=27 => Ok((Value::Other, argument(info, rest)?.1)),
            _ => Err(malformed("CBOR break or reserved simple value")),
        };
    }
    let (arg, rest) = argument(info, rest)?;
    match major {
        0 => Ok((Value::Unsigned(arg), rest)),
        1 => Ok((Value::Negative(-1 - i128::from(arg)), rest)),
        2 => {
            let (bytes, rest) = take(rest, arg)?;
            Ok((Value::Bytes(bytes), rest))
        }
        3 => {
            let (bytes, rest) = take(rest, arg)?;
            let text = std::str::from_utf8(bytes).map_err(|_| malformed("CBOR text is not UTF-8"))?;
            Ok((Value::Text(text), rest))
        }
        4 => {
            // Each item takes at least one byte: a count beyond the input is refused before
            // anything is allocated for it.
            if arg > rest.len() as u64 {
                return Err(malformed("CBOR array longer than its input"));
            }
            let mut items = Vec::with_capacity(arg as usize);
            let mut rest = rest;
            for _ in 0..arg {
                let (v, r) = read_at(rest, depth + 1)?;
                items.push(v);
                rest = r;
            }
            Ok((Value::Array(items), rest))
        }
        5 => {
            if arg.saturating_mul(2) > rest.len() as u64 {
                return Err(malformed("CBOR map longer than its input"));
            }
            let mut entries = Vec::with_capacity(arg as usize);
            let mut rest = rest;
            for _ in 0..arg {
                let (k, r) = read_at(rest, depth + 1)?;
                let (v, r) = read_at(r, depth + 1)?;
                if entries.iter().any(|(seen, _)| *seen == k) {
                    return Err(malformed("CBOR map with a duplicate key"));
                }
                entries.push((k, v));
                rest = r;
            }
            Ok((Value::Map(entries), rest))
        }
        // Major type 6: tags have no place in WebAuthn's structures.
        _ => Err(malformed("CBOR tag")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rfc8949_appendix_a_examples() {
        // RFC 8949 Appendix A.
        assert_eq!(read_exact(&[0x00]).unwrap(), Value::Unsigned(0));
        assert_eq!(read_exact(&[0x18, 0x64]).unwrap(), Value::Unsigned(100));
        assert_eq!(
            read_exact(&[0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap(),
            Value::Unsigned(u64::MAX)
        );
        assert_eq!(read_exact(&[0x38, 0x63]).unwrap(), Value::Negative(-100));
        assert_eq!(read_exact(&[0x26]).unwrap(), Value::Negative(-7));
        assert_eq!(read_exact(&[0x39, 0x01, 0x00]).unwrap(), Value::Negative(-257));
        assert_eq!(read_exact(&[0x44, 1, 2, 3, 4]).unwrap(), Value::Bytes(&[1, 2, 3, 4]));
        assert_eq!(read_exact(&[0x64, 0x49, 0x45, 0x54, 0x46]).unwrap(), Value::Text("IETF"));
        assert_eq!(read_exact(&[0xf5]).unwrap(), Value::Bool(true));
        assert_eq!(read_exact(&[0xf9, 0x3c, 0x00]).unwrap(), Value::Other); // 1.0 as a half float
        let map = read_exact(&[0xa2, 0x01, 0x02, 0x03, 0x04]).unwrap();
        assert_eq!(map.get_int(3), Some(&Value::Unsigned(4)));
        let arr = read_exact(&[0x83, 0x01, 0x82, 0x02, 0x03, 0x82, 0x04, 0x05]).unwrap();
        assert!(matches!(arr, Value::Array(ref a) if a.len() == 3));
    }

    #[test]
    fn refuses_what_webauthn_never_sends_and_lengths_beyond_the_input() {
        for bad in [
            &[0x5f, 0x41, 0x00, 0xff][..], // indefinite byte string
            &[0xc1, 0x00][..],             // a tag
            &[0x45, 1, 2][..],             // byte string longer than the input
            &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..], // huge array count
            &[0xa1, 0x01][..],             // map missing its value
            &[0xa2, 0x01, 0x02, 0x01, 0x03][..], // duplicate key
            &[0x62, 0xff, 0xfe][..],       // text that is not UTF-8
            &[0x01, 0x02][..],             // trailing byte
            &[][..],
        ] {
            assert!(read_exact(bad).is_err(), "{bad:02x?}");
        }
        let deep: Vec<u8> = std::iter::repeat_n(0x81, 20).chain([0x00]).collect();
        assert!(read_exact(&deep).is_err(), "nesting limit");
    }
}
