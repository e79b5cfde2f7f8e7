//! [`Permission`]: the meaning of one scope string, parsed from its [`ScopeSyntax`] and written back in
//! the normalised form.

use std::fmt;

use atauth_syntax::Nsid;

use super::syntax::percent_encode;
use super::values::is_mime_or_glob;
use super::{
    ATPROTO_SCOPE, AccountAction, AccountAttr, AccountPermission, Audience, BlobPermission, IdentityAttr,
    IncludePermission, NsidOrWildcard, RepoAction, RepoPermission, RpcPermission, ScopeSyntax,
    ScopeSyntaxError, TransitionScope,
};

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

/// The parameter lookups the semantic parse needs; the grammar layer only splits and decodes.
impl ScopeSyntax {
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
