//! JSON serialisation for values whose serialisation cannot fail.
//!
//! `serde_json::to_string(..)` returns a `Result` because a `Serialize` impl may fail (a map with
//! non-string keys, a custom impl returning an error). The documents this project writes (JOSE
//! headers and claims, metadata, JWKS) are plain structs of strings, numbers, booleans, options,
//! vectors and string-keyed maps, for which it never fails. Writing `.unwrap_or_default()` at such a
//! call site would turn the impossible failure into an *empty document*, which could then be signed
//! or served. These helpers make the assumption explicit in one place instead: if it is ever wrong
//! (a new field of a type that can fail), they panic with the type's name, loudly, in the first test
//! that serialises the value, rather than producing an empty document.

use serde::Serialize;

/// `value` as a JSON string. Panics only if `T`'s `Serialize` fails, which the plain data types
/// this is meant for cannot (see the module docs).
#[track_caller]
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> String {
    match serde_json::to_string(value) {
        Ok(s) => s,
        Err(e) => cannot_fail::<T>(&e),
    }
}

/// `value` as JSON bytes. Panics only if `T`'s `Serialize` fails (see [`to_string`]).
#[track_caller]
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    match serde_json::to_vec(value) {
        Ok(v) => v,
        Err(e) => cannot_fail::<T>(&e),
    }
}

#[cold]
#[track_caller]
fn cannot_fail<T: ?Sized>(e: &serde_json::Error) -> ! {
    // An invariant of the types passed here, not an input error: no request can reach this.
    panic!("serialising {} to JSON failed: {e}", std::any::type_name::<T>())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn plain_values_serialise() {
        assert_eq!(to_string("a\"b"), r#""a\"b""#);
        assert_eq!(to_vec(&serde_json::json!({"k": [1, null]})), br#"{"k":[1,null]}"#.to_vec());
    }

    #[test]
    #[should_panic(expected = "to JSON failed")]
    fn a_failing_serialisation_panics_instead_of_yielding_an_empty_document() {
        // Non-string map keys are the one thing serde_json refuses in plain data.
        let mut m = BTreeMap::new();
        m.insert(vec![1u8], 1);
        let _ = to_string(&m);
    }
}
