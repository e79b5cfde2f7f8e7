//! One account's identity, resolvable without the network: a DID document naming a handle and a
//! PDS, and an [`IdentityResolver`] over in-memory handle and DID resolvers that allows test TLDs.

use std::sync::Arc;

use atauth_identity::{
    Did, DidDocument, Handle, IdentityResolver, MemoryDidResolver, MemoryHandleResolver, TldPolicy,
};

/// A DID document for `did` with `handle` (`alsoKnownAs`), a fixed secp256k1 `#atproto` key and
/// `pds` as its `#atproto_pds` service.
///
/// # Panics
/// If `did` or `pds` make the document invalid.
pub fn did_doc(did: &str, handle: &str, pds: &str) -> DidDocument {
    serde_json::from_value(serde_json::json!({
        "id": did,
        "alsoKnownAs": [format!("at://{handle}")],
        "verificationMethod": [{ "id": format!("{did}#atproto"), "type": "Multikey", "controller": did,
            "publicKeyMultibase": "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF" }],
        "service": [{ "id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": pds }]
    }))
    .unwrap_or_else(|e| panic!("test DID document for {did}: {e}"))
}

/// Resolves `handle` ↔ `did` (with [`did_doc`]) in memory, under the development TLD policy (so
/// `.test` handles resolve).
///
/// # Panics
/// If `did` or `handle` is not valid syntax.
pub fn resolver(did: &str, handle: &str, pds: &str) -> IdentityResolver {
    let (d, h) = (
        Did::new(did).unwrap_or_else(|e| panic!("{did}: {e}")),
        Handle::new(handle).unwrap_or_else(|e| panic!("{handle}: {e}")),
    );
    IdentityResolver::new(
        Arc::new(MemoryHandleResolver::new().with(h, d)),
        Arc::new(MemoryDidResolver::new().with(did_doc(did, handle, pds))),
    )
    .tld_policy(TldPolicy::development())
}
