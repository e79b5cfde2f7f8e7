//! The typed values of granular permissions (SCOPE-03, 05 … 10): one type per resource and per parameter
//! domain, each with its own parse of a single value.

use std::fmt;

use atauth_syntax::{Did, Nsid};

use super::PermissionError;

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
    pub(super) const ALL: [Self; 3] = [Self::Create, Self::Update, Self::Delete];

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
    pub(super) fn parse(resource: &str, key: &'static str, v: &str) -> Result<Self, PermissionError> {
        if v == "*" {
            return Ok(Self::Any);
        }
        Nsid::new(v).map(Self::Nsid).map_err(|_| PermissionError::InvalidValue {
            resource: resource.to_owned(),
            key,
            value: v.to_owned(),
        })
    }

    pub(super) fn as_str(&self) -> &str {
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
    pub(super) fn parse(resource: &str, v: &str) -> Result<Self, PermissionError> {
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

/// Whether `v` is a MIME type or a `type/*` / `*/*` glob (SCOPE-07).
pub(super) fn is_mime_or_glob(v: &str) -> bool {
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
