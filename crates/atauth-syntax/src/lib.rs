//! atproto identifier syntax: [`Did`], [`Handle`], [`Nsid`] and [`AtIdentifier`] (handle or DID), with
//! the [`TldPolicy`] that says which handles may be resolved.
//!
//! These are pure value types: parsing never touches the network, and the crate depends on nothing but
//! serde and thiserror (why, and where it sits among the crates: docs/ARCHITECTURE.md).
//! atauth-identity re-exports everything here at its old paths (`atauth_identity::Did`,
//! `atauth_identity::syntax::…`).
//!
//! Each type has one error enum whose variants name the rule that failed (ID-HANDLE-01, ID-DID-01).
//! Every type parses with `new`, [`FromStr`](std::str::FromStr) and `TryFrom<String>`/`TryFrom<&str>`,
//! prints with `Display`, borrows with `AsRef<str>`, and (de)serialises as a JSON string that is
//! validated on the way in.
//!
//! ```
//! use atauth_syntax::{AtIdentifier, Did, Handle, TldPolicy};
//!
//! let did: Did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz".parse()?;
//! let handle = Handle::parse_user_input(" @Alice.Example.COM ")?;
//! assert_eq!(handle.as_str(), "alice.example.com"); // ID-HANDLE-02
//! assert!(handle.is_resolvable(TldPolicy::production()));
//! assert_eq!(AtIdentifier::from(did.clone()).to_string(), did.as_str());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

/// The trait impls every string identifier shares, all routed through `Self::new` (validation) and
/// `Self::as_str` (the stored text), so no type can parse or print differently on one path.
///
/// `string_id!(text Type, Error)` is for any type with `fn new(impl Into<String> or AsRef<str>) ->
/// Result<Self, Error>` and `fn as_str(&self) -> &str`: `FromStr`, `TryFrom<String>`,
/// `TryFrom<&str>`, `AsRef<str>`, `Display`, `Serialize` and `Deserialize` (as strings).
///
/// `string_id!(newtype Type, Error)` is for a `struct Type(String)` holding the validated text: the
/// above plus `as_str`, `into_string`, `From<Type> for String` and a `Debug` of the form
/// `Type("…")`.
macro_rules! string_id {
    (text $ty:ident, $err:ty) => {
        impl ::std::str::FromStr for $ty {
            type Err = $err;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = $err;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = $err;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                Self::new(s).map_err(::serde::de::Error::custom)
            }
        }
    };
    (newtype $ty:ident, $err:ty) => {
        string_id!(text $ty, $err);

        impl $ty {
            /// The identifier as a string, exactly as stored (after any normalisation `new` applies).
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Consumes the identifier and returns the inner string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl From<$ty> for String {
            fn from(id: $ty) -> Self {
                id.0
            }
        }

        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, concat!(stringify!($ty), "({:?})"), self.0)
            }
        }
    };
}

mod at_identifier;
mod did;
mod handle;
mod nsid;

pub use at_identifier::{AtIdentifier, AtIdentifierError};
pub use did::{Did, DidSyntaxError, MAX_DID_LEN};
pub use handle::{
    DISALLOWED_TLDS, Handle, HandleSyntaxError, INVALID_HANDLE_SENTINEL, MAX_HANDLE_LEN, MAX_LABEL_LEN,
    TldPolicy, UnresolvableHandle, validate_dns_name,
};
pub use nsid::{MAX_NSID_LEN, MAX_NSID_SEGMENT_LEN, Nsid, NsidSyntaxError};
