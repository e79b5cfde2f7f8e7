//! Test helpers shared by atauth's integration tests. A dev-dependency only (`publish = false`);
//! nothing here is part of any public API.
//!
//! - [`dns`]: a tiny UDP DNS server on loopback answering TXT queries from a table, and a
//!   `HickoryTxtLookup` that asks it (the production TXT path, offline).
//! - [`lexicon`]: the conformance suite every `LexiconCache` backend runs.
//! - [`fs`]: temporary directories removed on drop.
//! - [`form`]: form bodies and query strings (encode, read a redirect's parameters, change one
//!   parameter of a list) and the hidden inputs of an HTML form.
//! - [`identity`]: one account's DID document and an in-memory identity resolver.
//! - [`process`]: child processes that are stopped with SIGTERM when dropped, and line readers for
//!   their output with timeouts (no sleeps: tests wait for what a process prints).
//! - [`interop`]: the reference peers of `interop/` (Bluesky's PDS with its OAuth provider, a PLC
//!   directory), started on loopback, and the "installed, or fail clearly unless
//!   `ATAUTH_SKIP_INTEROP=1`" rule of the interop tests.
//! - [`consent`]: approving an authorization request programmatically: through the reference
//!   provider's UI API (what `interop/lib.mjs`'s `api` driver does) and through atauth-server's
//!   interim consent API.
//! - `server` (feature `server`): an in-process atauth-server with two accounts, a DPoP-signing
//!   OAuth client and a browser for the sign-in UI; `passkey` (feature `server`): a software
//!   WebAuthn authenticator for the router tests of passkeys.
//!

pub mod consent;
pub mod dns;
pub mod form;
pub mod fs;
pub mod identity;
pub mod interop;
pub mod lexicon;
#[cfg(feature = "server")]
pub mod passkey;
pub mod process;
#[cfg(feature = "server")]
pub mod server;
