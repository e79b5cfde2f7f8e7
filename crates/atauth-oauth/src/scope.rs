//! OAuth scopes under the atproto profile: the RFC 6749 grammar, `atproto`, transitional scopes and
//! granular permissions.
//!
//! - [`Scope`]: one scope token, checked against SCOPE-02 (`%x21 / %x23-5B / %x5D-7E`, non-empty).
//! - [`ScopeSet`]: a space-separated list (single spaces, SCOPE-02) with `atproto` checks (SCOPE-01).
//! - [`ScopeSyntax`]: the generic `<resource>[:<positional>][?<k>=<v>&…]` structure (SCOPE-04).
//! - [`Permission`]: the semantic parse of a scope: `atproto`, `transition:*` (SCOPE-03), `repo`,
//!   `rpc`, `blob`, `account`, `identity` (SCOPE-05 … 09) and `include:` (SCOPE-10, syntax only: sets
//!   are not resolved here).
//!
//! ```
//! use atauth_oauth::scope::{Permission, ScopeSet};
//!
//! let set = ScopeSet::parse("atproto transition:generic repo:app.bsky.feed.post?action=create")?;
//! assert!(set.has_atproto());
//! let perms: Vec<Permission> = set.iter().map(|s| s.permission()).collect::<Result<_, _>>()?;
//! assert!(matches!(perms[2], Permission::Repo(_)));
//! assert_eq!(perms[2].to_string(), "repo:app.bsky.feed.post?action=create");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::str::FromStr;

use atauth_syntax::{Did, Nsid};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The scope every atproto authorization must include (SCOPE-01).
pub const ATPROTO_SCOPE: &str = "atproto";

/// The longest scope string [`ScopeSet::parse`] accepts (bounded parsing of untrusted input).
pub const MAX_SCOPE_STRING_LEN: usize = 16 * 1024;

/// Why a scope string does not parse (SCOPE-02, SCOPE-04).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeSyntaxError {
    /// The scope list is empty.
    #[error("scope is empty")]
    Empty,
    /// The scope list is longer than [`MAX_SCOPE_STRING_LEN`].
    #[error("scope string is {len} bytes; the limit is {MAX_SCOPE_STRING_LEN}")]
    TooLong {
        /// The length found.
        len: usize,
    },
    /// Two spaces in a row, or a leading/trailing space (SCOPE-02: single-space separated).
    #[error("scope list has an empty entry (leading, trailing or double space)")]
    EmptyToken,
    /// A character outside the RFC 6749 scope-token set (non-ASCII, control, space, `"`, `\`).
    #[error("scope contains the character {ch:?}, which is not allowed in a scope token")]
    InvalidCharacter {
        /// The offending character.
        ch: char,
    },
    /// A `%` not followed by two hex digits, or an escape that decodes to invalid UTF-8.
    #[error("scope contains an invalid percent-encoding")]
    InvalidPercentEncoding,
    /// The resource name is empty (the scope starts with `:` or `?`).
    #[error("scope has an empty resource name")]
    EmptyResource,
    /// The same scope appears twice (REF rejects duplicates in client metadata, CL-MD-07).
    #[error("scope {scope:?} appears more than once")]
    Duplicate {
        /// The duplicated scope.
        scope: String,
    },
}

/// One scope token (SCOPE-02).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(String);

impl Scope {
    /// Validates a single token.
    pub fn new(s: impl Into<String>) -> Result<Self, ScopeSyntaxError> {
        let s = s.into();
        if s.is_empty() {
            return Err(ScopeSyntaxError::Empty);
        }
        if let Some(ch) = s.chars().find(|&c| !is_scope_char(c)) {
            return Err(ScopeSyntaxError::InvalidCharacter { ch });
        }
        Ok(Self(s))
    }

    /// The scope string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is `atproto`.
    pub fn is_atproto(&self) -> bool {
        self.0 == ATPROTO_SCOPE
    }

    /// The generic structure (SCOPE-04).
    pub fn syntax(&self) -> Result<ScopeSyntax, ScopeSyntaxError> {
        ScopeSyntax::parse(&self.0)
    }

    /// The semantic meaning (SCOPE-01, 03, 05 … 10).
    pub fn permission(&self) -> Result<Permission, PermissionError> {
        Permission::parse(&self.0)
    }
}

fn is_scope_char(c: char) -> bool {
    matches!(c, '\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E')
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({:?})", self.0)
    }
}

impl FromStr for Scope {
    type Err = ScopeSyntaxError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// A space-separated list of scopes, in the order given.
///
/// [`parse`](Self::parse) accepts duplicates (an authorization request may repeat a scope);
/// [`parse_unique`](Self::parse_unique) refuses them (client metadata, CL-MD-07).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    /// Parses `"atproto transition:generic"`: single spaces between valid tokens (SCOPE-02).
    pub fn parse(s: &str) -> Result<Self, ScopeSyntaxError> {
        if s.is_empty() {
            return Err(ScopeSyntaxError::Empty);
        }
        if s.len() > MAX_SCOPE_STRING_LEN {
            return Err(ScopeSyntaxError::TooLong { len: s.len() });
        }
        s.split(' ')
            .map(|t| if t.is_empty() { Err(ScopeSyntaxError::EmptyToken) } else { Scope::new(t) })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Like [`parse`](Self::parse), refusing duplicates.
    pub fn parse_unique(s: &str) -> Result<Self, ScopeSyntaxError> {
        let set = Self::parse(s)?;
        let mut seen = std::collections::HashSet::new();
        for scope in &set.0 {
            if !seen.insert(scope.as_str()) {
                return Err(ScopeSyntaxError::Duplicate { scope: scope.0.clone() });
            }
        }
        Ok(set)
    }

    /// A set from scopes.
    pub fn from_scopes(scopes: impl IntoIterator<Item = Scope>) -> Self {
        Self(scopes.into_iter().collect())
    }

    /// Whether `atproto` is included (SCOPE-01).
    pub fn has_atproto(&self) -> bool {
        self.contains(ATPROTO_SCOPE)
    }

    /// Whether the exact scope string is included.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s.0 == scope)
    }

    /// Whether every scope of `self` is in `other` (string comparison; SCOPE-12 / T-23).
    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        self.0.iter().all(|s| other.contains(&s.0))
    }

    /// The scopes.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// Number of scopes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no scopes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(&s.0)?;
        }
        Ok(())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopeSet({:?})", self.to_string())
    }
}

impl FromStr for ScopeSet {
    type Err = ScopeSyntaxError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

// ------------------------------------------------------------------------------------------------

/// The generic structure of a scope string: `<resource>[:<positional>][?<k>=<v>&…]` (SCOPE-04).
/// Values are percent-decoded; repeated keys keep their order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSyntax {
    /// The resource name (`repo`, `rpc`, …).
    pub resource: String,
    /// The positional part after `:`, decoded. `Some("")` for `resource:`.
    pub positional: Option<String>,
    /// The query parameters, decoded, in order. `Some(vec![])` for `resource?`.
    pub params: Option<Vec<(String, String)>>,
}

fn percent_decode(s: &str) -> Result<String, ScopeSyntaxError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(ScopeSyntaxError::InvalidPercentEncoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| ScopeSyntaxError::InvalidPercentEncoding)?;
            let v = u8::from_str_radix(hex, 16).map_err(|_| ScopeSyntaxError::InvalidPercentEncoding)?;
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ScopeSyntaxError::InvalidPercentEncoding)
}

/// Percent-encodes what would break the scope structure or grammar (`%`, `#`, `&`, `=`, `?`,
/// space, `"`, `\`, and anything non-printable or non-ASCII).
fn percent_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        let c = b as char;
        if is_scope_char(c) && !matches!(c, '%' | '#' | '&' | '=' | '?') {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

impl ScopeSyntax {
    /// Parses one scope string (not a list).
    pub fn parse(s: &str) -> Result<Self, ScopeSyntaxError> {
        let scope = Scope::new(s)?;
        let s = scope.as_str();
        let (head, query) = match s.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (s, None),
        };
        let (resource, positional) = match head.split_once(':') {
            Some((r, p)) => (r, Some(percent_decode(p)?)),
            None => (head, None),
        };
        if resource.is_empty() {
            return Err(ScopeSyntaxError::EmptyResource);
        }
        let params = match query {
            None => None,
            Some(q) => {
                let mut params = Vec::new();
                for pair in q.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    params.push((percent_decode(k)?, percent_decode(v)?));
                }
                Some(params)
            }
        };
        Ok(Self { resource: resource.to_owned(), positional, params })
    }

    fn values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.params.iter().flatten().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn check_known_keys(&self, known: &[&'static str]) -> Result<(), PermissionError> {
        for (k, _) in self.params.iter().flatten() {
            if !known.contains(&k.as_str()) {
                return Err(PermissionError::UnknownParameter {
                    resource: self.resource.clone(),
                    key: k.clone(),
                });
            }
        }
        Ok(())
    }

    /// The values of a parameter that may be given positionally or as (repeatable) `key=`; both
    /// at once is an error (SCOPE-04).
    fn positional_or_values(&self, key: &'static str) -> Result<Vec<String>, PermissionError> {
        let named: Vec<String> = self.values(key).map(str::to_owned).collect();
        match &self.positional {
            Some(p) if !named.is_empty() => {
                let _ = p;
                Err(PermissionError::PositionalAndNamed { resource: self.resource.clone(), key })
            }
            Some(p) if p.is_empty() => {
                Err(PermissionError::EmptyPositional { resource: self.resource.clone() })
            }
            Some(p) => Ok(vec![p.clone()]),
            None => Ok(named),
        }
    }
}

// ------------------------------------------------------------------------------------------------

/// Why a syntactically valid scope has no valid meaning (SCOPE-03 … 10).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PermissionError {
    /// The string does not parse at all.
    #[error(transparent)]
    Syntax(#[from] ScopeSyntaxError),
    /// The resource is not one this crate knows.
    #[error("unknown scope resource {resource:?}")]
    UnknownResource {
        /// The resource name.
        resource: String,
    },
    /// `atproto` or a `transition:` scope with extra parts, or an unknown `transition:` scope.
    #[error("invalid static scope {scope:?}")]
    InvalidStaticScope {
        /// The scope.
        scope: String,
    },
    /// A parameter the resource does not define.
    #[error("`{resource}` scopes have no parameter {key:?}")]
    UnknownParameter {
        /// The resource.
        resource: String,
        /// The unknown key.
        key: String,
    },
    /// A parameter given both positionally and by name (SCOPE-04).
    #[error("`{resource}` scope gives `{key}` both positionally and as a parameter")]
    PositionalAndNamed {
        /// The resource.
        resource: String,
        /// The parameter.
        key: &'static str,
    },
    /// `resource:` with nothing after the colon.
    #[error("`{resource}` scope has an empty positional value")]
    EmptyPositional {
        /// The resource.
        resource: String,
    },
    /// A required parameter is missing.
    #[error("`{resource}` scope requires `{key}`")]
    MissingParameter {
        /// The resource.
        resource: String,
        /// The parameter.
        key: &'static str,
    },
    /// A parameter that may appear at most once appears more often.
    #[error("`{resource}` scope has more than one `{key}`")]
    RepeatedParameter {
        /// The resource.
        resource: String,
        /// The parameter.
        key: &'static str,
    },
    /// A value outside the parameter's domain (bad NSID, partial wildcard, unknown action, …).
    #[error("`{resource}` scope: invalid {key} {value:?}")]
    InvalidValue {
        /// The resource.
        resource: String,
        /// The parameter.
        key: &'static str,
        /// The value.
        value: String,
    },
    /// `rpc` with `lxm=*` and `aud=*` (SCOPE-06).
    #[error("`rpc` scope must not combine lxm `*` with aud `*`")]
    RpcWildcardBoth,
}

/// A transitional scope (SCOPE-03).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransitionScope {
    /// `transition:generic`: app-password-like access.
    Generic,
    /// `transition:chat.bsky`: chat RPC (only together with `transition:generic`).
    ChatBsky,
    /// `transition:email`: email in `getSession`.
    Email,
}

impl TransitionScope {
    /// The scope string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generic => "transition:generic",
            Self::ChatBsky => "transition:chat.bsky",
            Self::Email => "transition:email",
        }
    }
}

/// A `repo` record action (SCOPE-05).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RepoAction {
    /// `create`.
    Create,
    /// `update`.
    Update,
    /// `delete`.
    Delete,
}

impl RepoAction {
    const ALL: [Self; 3] = [Self::Create, Self::Update, Self::Delete];

    /// The parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// An NSID or `*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NsidOrWildcard {
    /// `*`: any.
    Any,
    /// A specific NSID.
    Nsid(Nsid),
}

impl NsidOrWildcard {
    fn parse(resource: &str, key: &'static str, v: &str) -> Result<Self, PermissionError> {
        if v == "*" {
            return Ok(Self::Any);
        }
        Nsid::new(v).map(Self::Nsid).map_err(|_| PermissionError::InvalidValue {
            resource: resource.to_owned(),
            key,
            value: v.to_owned(),
        })
    }

    fn as_str(&self) -> &str {
        match self {
            Self::Any => "*",
            Self::Nsid(n) => n.as_str(),
        }
    }
}

/// `repo:<collection>[?action=…]` (SCOPE-05).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPermission {
    /// Collections (NSIDs or `*`), at least one.
    pub collections: Vec<NsidOrWildcard>,
    /// Allowed actions; all three when none was given.
    pub actions: Vec<RepoAction>,
}

/// An `aud` value: `*` or a DID with a service fragment (SCOPE-06).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Audience {
    /// `*`: any service.
    Any,
    /// `did#service_id`.
    Service {
        /// The service DID.
        did: Did,
        /// The fragment, without `#`.
        fragment: String,
    },
}

impl Audience {
    fn parse(resource: &str, v: &str) -> Result<Self, PermissionError> {
        if v == "*" {
            return Ok(Self::Any);
        }
        let bad = || PermissionError::InvalidValue {
            resource: resource.to_owned(),
            key: "aud",
            value: v.to_owned(),
        };
        let (did, fragment) = v.split_once('#').ok_or_else(bad)?;
        if fragment.is_empty() || !fragment.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-~".contains(&b))
        {
            return Err(bad());
        }
        let did = Did::new(did).map_err(|_| bad())?;
        Ok(Self::Service { did, fragment: fragment.to_owned() })
    }
}

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::Service { did, fragment } => write!(f, "{did}#{fragment}"),
        }
    }
}

/// `rpc:<lxm>?aud=…` (SCOPE-06).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcPermission {
    /// Methods (NSIDs or `*`), at least one.
    pub lxm: Vec<NsidOrWildcard>,
    /// The audience.
    pub aud: Audience,
}

/// `blob:<accept>` (SCOPE-07).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobPermission {
    /// MIME types or globs (`*/*`, `video/*`, `text/html`), at least one.
    pub accept: Vec<String>,
}

/// An `account` attribute (SCOPE-08).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountAttr {
    /// `email`.
    Email,
    /// `repo` (`manage` = CAR import).
    Repo,
    /// `status` (REF).
    Status,
}

/// An `account` action (SCOPE-08).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountAction {
    /// `read` (default).
    Read,
    /// `manage` (implies read).
    Manage,
}

/// `account:<attr>[?action=read|manage]` (SCOPE-08).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPermission {
    /// The attribute.
    pub attr: AccountAttr,
    /// The action.
    pub action: AccountAction,
}

/// An `identity` attribute (SCOPE-09).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityAttr {
    /// `handle`.
    Handle,
    /// `*`: DID document and handle.
    Any,
}

/// `include:<nsid>[?aud=…]` (SCOPE-10; parsed only, not resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncludePermission {
    /// The permission-set NSID.
    pub nsid: Nsid,
    /// The audience handed to `inheritAud` permissions.
    pub aud: Option<Audience>,
}

/// The meaning of one scope string.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Permission {
    /// `atproto` (SCOPE-01).
    Atproto,
    /// A transitional scope (SCOPE-03).
    Transition(TransitionScope),
    /// `repo:` (SCOPE-05).
    Repo(RepoPermission),
    /// `rpc:` (SCOPE-06).
    Rpc(RpcPermission),
    /// `blob:` (SCOPE-07).
    Blob(BlobPermission),
    /// `account:` (SCOPE-08).
    Account(AccountPermission),
    /// `identity:` (SCOPE-09).
    Identity(IdentityAttr),
    /// `include:` (SCOPE-10).
    Include(IncludePermission),
}

fn is_mime_or_glob(v: &str) -> bool {
    let Some((t, s)) = v.split_once('/') else { return false };
    let token =
        |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
    match (t, s) {
        ("*", "*") => true,
        ("*", _) => false,
        (t, "*") => token(t),
        (t, s) => token(t) && token(s),
    }
}

impl Permission {
    /// Parses one scope string semantically.
    pub fn parse(s: &str) -> Result<Self, PermissionError> {
        match s {
            ATPROTO_SCOPE => return Ok(Self::Atproto),
            "transition:generic" => return Ok(Self::Transition(TransitionScope::Generic)),
            "transition:chat.bsky" => return Ok(Self::Transition(TransitionScope::ChatBsky)),
            "transition:email" => return Ok(Self::Transition(TransitionScope::Email)),
            _ => {}
        }
        let syn = ScopeSyntax::parse(s)?;
        let r = syn.resource.clone();
        let invalid = |key: &'static str, value: &str| PermissionError::InvalidValue {
            resource: r.clone(),
            key,
            value: value.to_owned(),
        };
        match syn.resource.as_str() {
            "atproto" | "transition" => Err(PermissionError::InvalidStaticScope { scope: s.to_owned() }),
            "repo" => {
                syn.check_known_keys(&["collection", "action"])?;
                let collections = syn.positional_or_values("collection")?;
                if collections.is_empty() {
                    return Err(PermissionError::MissingParameter { resource: r, key: "collection" });
                }
                let collections = collections
                    .iter()
                    .map(|c| NsidOrWildcard::parse(&r, "collection", c))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut actions = Vec::new();
                for a in syn.values("action") {
                    let action = RepoAction::ALL
                        .into_iter()
                        .find(|x| x.as_str() == a)
                        .ok_or_else(|| invalid("action", a))?;
                    if !actions.contains(&action) {
                        actions.push(action);
                    }
                }
                if actions.is_empty() {
                    actions = RepoAction::ALL.to_vec();
                }
                actions.sort();
                Ok(Self::Repo(RepoPermission { collections, actions }))
            }
            "rpc" => {
                syn.check_known_keys(&["lxm", "aud"])?;
                let lxm = syn.positional_or_values("lxm")?;
                if lxm.is_empty() {
                    return Err(PermissionError::MissingParameter { resource: r, key: "lxm" });
                }
                let lxm =
                    lxm.iter().map(|m| NsidOrWildcard::parse(&r, "lxm", m)).collect::<Result<Vec<_>, _>>()?;
                let auds: Vec<&str> = syn.values("aud").collect();
                let aud = match auds.as_slice() {
                    [] => return Err(PermissionError::MissingParameter { resource: r, key: "aud" }),
                    [one] => Audience::parse(&r, one)?,
                    _ => return Err(PermissionError::RepeatedParameter { resource: r, key: "aud" }),
                };
                if aud == Audience::Any && lxm.contains(&NsidOrWildcard::Any) {
                    return Err(PermissionError::RpcWildcardBoth);
                }
                Ok(Self::Rpc(RpcPermission { lxm, aud }))
            }
            "blob" => {
                syn.check_known_keys(&["accept"])?;
                let accept = syn.positional_or_values("accept")?;
                if accept.is_empty() {
                    return Err(PermissionError::MissingParameter { resource: r, key: "accept" });
                }
                if let Some(bad) = accept.iter().find(|a| !is_mime_or_glob(a)) {
                    return Err(invalid("accept", bad));
                }
                Ok(Self::Blob(BlobPermission { accept }))
            }
            "account" => {
                syn.check_known_keys(&["attr", "action"])?;
                let attrs = syn.positional_or_values("attr")?;
                let attr = match attrs.as_slice() {
                    [] => return Err(PermissionError::MissingParameter { resource: r, key: "attr" }),
                    [one] => match one.as_str() {
                        "email" => AccountAttr::Email,
                        "repo" => AccountAttr::Repo,
                        "status" => AccountAttr::Status,
                        other => return Err(invalid("attr", other)),
                    },
                    _ => return Err(PermissionError::RepeatedParameter { resource: r, key: "attr" }),
                };
                let actions: Vec<&str> = syn.values("action").collect();
                let action = match actions.as_slice() {
                    [] | ["read"] => AccountAction::Read,
                    ["manage"] => AccountAction::Manage,
                    [other] => return Err(invalid("action", other)),
                    _ => return Err(PermissionError::RepeatedParameter { resource: r, key: "action" }),
                };
                Ok(Self::Account(AccountPermission { attr, action }))
            }
            "identity" => {
                syn.check_known_keys(&["attr"])?;
                let attrs = syn.positional_or_values("attr")?;
                match attrs.as_slice() {
                    [] => Err(PermissionError::MissingParameter { resource: r, key: "attr" }),
                    [one] if one == "handle" => Ok(Self::Identity(IdentityAttr::Handle)),
                    [one] if one == "*" => Ok(Self::Identity(IdentityAttr::Any)),
                    [other] => Err(invalid("attr", other)),
                    _ => Err(PermissionError::RepeatedParameter { resource: r, key: "attr" }),
                }
            }
            "include" => {
                syn.check_known_keys(&["nsid", "aud"])?;
                let nsids = syn.positional_or_values("nsid")?;
                let nsid = match nsids.as_slice() {
                    [] => return Err(PermissionError::MissingParameter { resource: r, key: "nsid" }),
                    [one] => Nsid::new(one.as_str()).map_err(|_| invalid("nsid", one))?,
                    _ => return Err(PermissionError::RepeatedParameter { resource: r, key: "nsid" }),
                };
                let auds: Vec<&str> = syn.values("aud").collect();
                let aud = match auds.as_slice() {
                    [] => None,
                    [one] => Some(Audience::parse(&r, one)?),
                    _ => return Err(PermissionError::RepeatedParameter { resource: r, key: "aud" }),
                };
                Ok(Self::Include(IncludePermission { nsid, aud }))
            }
            _ => Err(PermissionError::UnknownResource { resource: r }),
        }
    }
}

/// Writes `resource[:positional][?k=v&…]`, with the single value positional when there is one.
fn write_scope(
    f: &mut fmt::Formatter<'_>,
    resource: &str,
    main_key: &str,
    main: &[&str],
    rest: &[(&str, String)],
) -> fmt::Result {
    let mut out = String::from(resource);
    let mut params: Vec<(&str, &str)> = Vec::new();
    if let [one] = main {
        out.push(':');
        percent_encode(one, &mut out);
    } else {
        params.extend(main.iter().map(|m| (main_key, *m)));
    }
    params.extend(rest.iter().map(|(k, v)| (*k, v.as_str())));
    for (i, (k, v)) in params.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        percent_encode(v, &mut out);
    }
    f.write_str(&out)
}

/// The normalised scope string (REF's round-trip form, checklist §4.4).
impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Atproto => f.write_str(ATPROTO_SCOPE),
            Self::Transition(t) => f.write_str(t.as_str()),
            Self::Repo(p) => {
                let cols: Vec<&str> = p.collections.iter().map(NsidOrWildcard::as_str).collect();
                let rest: Vec<(&str, String)> = if p.actions.len() == RepoAction::ALL.len() {
                    Vec::new()
                } else {
                    p.actions.iter().map(|a| ("action", a.as_str().to_owned())).collect()
                };
                write_scope(f, "repo", "collection", &cols, &rest)
            }
            Self::Rpc(p) => {
                let lxm: Vec<&str> = p.lxm.iter().map(NsidOrWildcard::as_str).collect();
                write_scope(f, "rpc", "lxm", &lxm, &[("aud", p.aud.to_string())])
            }
            Self::Blob(p) => {
                let accept: Vec<&str> = p.accept.iter().map(String::as_str).collect();
                write_scope(f, "blob", "accept", &accept, &[])
            }
            Self::Account(p) => {
                let attr = match p.attr {
                    AccountAttr::Email => "email",
                    AccountAttr::Repo => "repo",
                    AccountAttr::Status => "status",
                };
                let rest: Vec<(&str, String)> = match p.action {
                    AccountAction::Read => Vec::new(),
                    AccountAction::Manage => vec![("action", "manage".to_owned())],
                };
                write_scope(f, "account", "attr", &[attr], &rest)
            }
            Self::Identity(a) => f.write_str(match a {
                IdentityAttr::Handle => "identity:handle",
                IdentityAttr::Any => "identity:*",
            }),
            Self::Include(p) => {
                let rest: Vec<(&str, String)> = p.aud.iter().map(|a| ("aud", a.to_string())).collect();
                write_scope(f, "include", "nsid", &[p.nsid.as_str()], &rest)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_02_grammar() {
        assert!(ScopeSet::parse("atproto transition:generic").is_ok());
        assert_eq!(ScopeSet::parse(""), Err(ScopeSyntaxError::Empty));
        assert_eq!(ScopeSet::parse("atproto  x"), Err(ScopeSyntaxError::EmptyToken));
        assert_eq!(ScopeSet::parse(" atproto"), Err(ScopeSyntaxError::EmptyToken));
        assert_eq!(ScopeSet::parse("atproto\"x"), Err(ScopeSyntaxError::InvalidCharacter { ch: '"' }));
        assert_eq!(ScopeSet::parse("a\\b"), Err(ScopeSyntaxError::InvalidCharacter { ch: '\\' }));
        assert_eq!(ScopeSet::parse("a\tb"), Err(ScopeSyntaxError::InvalidCharacter { ch: '\t' }));
        assert!(matches!(ScopeSet::parse_unique("atproto atproto"), Err(ScopeSyntaxError::Duplicate { .. })));
        assert!(ScopeSet::parse("atproto atproto").is_ok());
    }

    #[test]
    fn scope_01_atproto_detection() {
        assert!(ScopeSet::parse("transition:generic atproto").unwrap().has_atproto());
        assert!(!ScopeSet::parse("transition:generic").unwrap().has_atproto());
        assert!(!ScopeSet::parse("atproto2").unwrap().has_atproto());
    }
}
