//! Lexicon documents pinned by the operator (`atauth serve --lexicon-dir DIR`, issue 13): used before
//! the cache and the network, so air-gapped servers and tests resolve permission sets offline.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{LexiconOrigin, LexiconResolveError, ResolvedLexicon, check_document};
use crate::syntax::{Nsid, NsidSyntaxError};

/// Why a Lexicon directory could not be loaded. One variant per failed check; each names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LexiconDirError {
    /// The directory cannot be listed.
    #[error("cannot read the Lexicon directory {}: {source}", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A `*.json` file cannot be read.
    #[error("cannot read the Lexicon file {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is larger than the cap ([`super::DEFAULT_MAX_LEXICON_BYTES`], the same as for records).
    #[error("the Lexicon file {} is larger than {limit} bytes", path.display())]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// The cap in bytes.
        limit: usize,
    },
    /// A file is not valid JSON.
    #[error("the Lexicon file {} is not valid JSON: {source}", path.display())]
    InvalidJson {
        /// The file.
        path: PathBuf,
        /// The parser's error (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// A file is not a Lexicon document: not an object, no string `id`, or `lexicon` is not 1.
    #[error("the Lexicon file {} is not a Lexicon document: {reason}", path.display())]
    NotALexicon {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// A file's `id` is not a valid NSID.
    #[error("the Lexicon file {} has an invalid id {id}: {source}", path.display())]
    InvalidId {
        /// The file.
        path: PathBuf,
        /// The `id` value.
        id: String,
        /// Why it is not an NSID.
        #[source]
        source: NsidSyntaxError,
    },
    /// Two files define the same NSID.
    #[error("the Lexicon {nsid} is defined twice: in {} and in {}", first.display(), second.display())]
    DuplicateId {
        /// The NSID.
        nsid: Nsid,
        /// The first file.
        first: PathBuf,
        /// The second file.
        second: PathBuf,
    },
}

/// Lexicon documents loaded from the `*.json` files of one directory, keyed by their `id`.
///
/// Every file whose name ends in `.json` (case-sensitive) directly in the directory is loaded;
/// subdirectories and other files are ignored. Each must be a Lexicon document: a JSON object with
/// `"lexicon": 1` and an NSID `id`; the file name does not matter. Any unreadable, oversized or
/// malformed file, or two files with the same `id`, fails the whole load, so a typo is reported at
/// start-up rather than as an `invalid_scope` later. The documents are returned as they are; whether
/// one is a valid permission set is for the caller to check, as for network results.
///
/// Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct LexiconDir {
    root: Option<PathBuf>,
    docs: Arc<HashMap<Nsid, ResolvedLexicon>>,
}

impl LexiconDir {
    /// An empty set of pinned Lexicons.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Loads every `*.json` file of `dir` (sorted by name, so errors are reported deterministically).
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, LexiconDirError> {
        let dir = dir.as_ref();
        let read_dir = |source| LexiconDirError::ReadDir { path: dir.to_owned(), source };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_dir)? {
            let path = entry.map_err(read_dir)?.path();
            if path.extension().is_some_and(|e| e == "json") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut docs: HashMap<Nsid, ResolvedLexicon> = HashMap::new();
        let mut sources: HashMap<Nsid, PathBuf> = HashMap::new();
        for path in files {
            let lexicon = load_file(&path)?;
            if let Some(first) = sources.insert(lexicon.nsid.clone(), path.clone()) {
                return Err(LexiconDirError::DuplicateId { nsid: lexicon.nsid, first, second: path });
            }
            docs.insert(lexicon.nsid.clone(), lexicon);
        }
        Ok(Self { root: Some(dir.to_owned()), docs: Arc::new(docs) })
    }

    /// The directory loaded, if any.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// The pinned document for `nsid`.
    pub fn get(&self, nsid: &Nsid) -> Option<&ResolvedLexicon> {
        self.docs.get(nsid)
    }

    /// The NSIDs pinned, sorted.
    pub fn nsids(&self) -> Vec<&Nsid> {
        let mut v: Vec<&Nsid> = self.docs.keys().collect();
        v.sort();
        v
    }

    /// How many documents are pinned.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether nothing is pinned.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}

fn load_file(path: &Path) -> Result<ResolvedLexicon, LexiconDirError> {
    let limit = super::DEFAULT_MAX_LEXICON_BYTES;
    let read_file = |source| LexiconDirError::ReadFile { path: path.to_owned(), source };
    let file = std::fs::File::open(path).map_err(read_file)?;
    let mut bytes = Vec::new();
    // Read one byte past the cap to tell "exactly at the cap" from "over it" without reading it all.
    file.take(limit as u64 + 1).read_to_end(&mut bytes).map_err(read_file)?;
    if bytes.len() > limit {
        return Err(LexiconDirError::FileTooLarge { path: path.to_owned(), limit });
    }
    let document: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|source| LexiconDirError::InvalidJson { path: path.to_owned(), source })?;
    let not_a_lexicon =
        |reason: &str| LexiconDirError::NotALexicon { path: path.to_owned(), reason: reason.to_owned() };
    if !document.is_object() {
        return Err(not_a_lexicon("the file is not a JSON object"));
    }
    let id = document.get("id").and_then(|v| v.as_str()).ok_or_else(|| not_a_lexicon("no string id"))?;
    let nsid = Nsid::new(id).map_err(|source| LexiconDirError::InvalidId {
        path: path.to_owned(),
        id: id.to_owned(),
        source,
    })?;
    check_document(&nsid, &document).map_err(|e| match e {
        LexiconResolveError::UnsupportedLexiconVersion { found, .. } => {
            not_a_lexicon(&format!("lexicon is {found}, expected 1"))
        }
        other => not_a_lexicon(&other.to_string()),
    })?;
    Ok(ResolvedLexicon {
        nsid,
        document: std::sync::Arc::new(document),
        origin: LexiconOrigin::LocalFile { path: path.to_owned() },
    })
}
