//! Fixed TXT answers for development servers and tests (issue 13: "its `_lexicon` TXT answered by a
//! test-only DNS override that the server accepts only in `--dev`/test builds").

use std::collections::HashMap;
use std::sync::Arc;

use crate::handle::{TxtLookup, TxtLookupError};

/// **Development and tests only.** A [`TxtLookup`] that answers the names it was given from a fixed
/// table and passes every other name to a fallback (or answers "not found" without one).
///
/// Its purpose is to point `_lexicon.<authority>` at a DID on a local PDS, so a permission set
/// published in a development repository resolves through the rest of the real path (DID document,
/// PDS, `getRecord`, SSRF policy). A server must accept it only when started with `--dev` (or in
/// tests): in production it would let configuration override DNS for any name it lists, which is
/// exactly what DNS-based Lexicon authority (SCOPE-10) must not allow.
///
/// ```
/// use std::sync::Arc;
/// use atauth_identity::TxtLookup;
/// use atauth_identity::lexicon::DevOnlyTxtOverride;
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let txt = DevOnlyTxtOverride::new()
///     .with_did("_lexicon.perms.example.com", "did:plc:ewvi7nxzyoun6zhxrhs64oiz");
/// assert_eq!(txt.txt("_lexicon.perms.example.com").await?, ["did=did:plc:ewvi7nxzyoun6zhxrhs64oiz"]);
/// assert!(txt.txt("_lexicon.other.example.com").await.is_err()); // not listed, no fallback
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct DevOnlyTxtOverride {
    table: HashMap<String, Vec<String>>,
    fallback: Option<Arc<dyn TxtLookup>>,
}

impl std::fmt::Debug for DevOnlyTxtOverride {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevOnlyTxtOverride")
            .field("names", &self.table.keys().collect::<Vec<_>>())
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl DevOnlyTxtOverride {
    /// An empty table without fallback: every lookup is "not found".
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `name` (matched case-insensitively, trailing dot ignored) with these TXT values,
    /// replacing any earlier answer for it.
    #[must_use]
    pub fn with_records(mut self, name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.table.insert(normalise(name), values.into_iter().map(Into::into).collect());
        self
    }

    /// Answers `name` with the single TXT value `did=<did>`.
    #[must_use]
    pub fn with_did(self, name: &str, did: &str) -> Self {
        self.with_records(name, [format!("did={did}")])
    }

    /// Names not in the table go to `fallback` (e.g. the system resolver) instead of "not found".
    #[must_use]
    pub fn fallback(mut self, fallback: Arc<dyn TxtLookup>) -> Self {
        self.fallback = Some(fallback);
        self
    }
}

#[async_trait::async_trait]
impl TxtLookup for DevOnlyTxtOverride {
    async fn txt(&self, name: &str) -> Result<Vec<String>, TxtLookupError> {
        match self.table.get(&normalise(name)) {
            Some(values) if values.is_empty() => Err(TxtLookupError::NotFound),
            Some(values) => Ok(values.clone()),
            None => match &self.fallback {
                Some(fallback) => fallback.txt(name).await,
                None => Err(TxtLookupError::NotFound),
            },
        }
    }
}
