//! [`Permission`]: the meaning of one scope string, parsed from its [`ScopeSyntax`] and written back in
//! the normalised form.

use std::fmt;

use atauth_syntax::Nsid;

use super::syntax::{encode_positional, encode_query};
use super::values::is_accept;
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
///
/// Parsing follows `@atproto/oauth-scopes` 0.5.12 value for value (SCOPE-04 … 10): a string is
/// accepted here iff the reference accepts it, and [`Display`](fmt::Display) writes the reference's
/// normal form (two documented exceptions for `%` and `+`, docs/DEVIATIONS.md). Values are kept as
/// the matcher needs them (blob `accept` as written, since the reference matches it
/// case-sensitively), so compare two permissions by their normal form ([`Permission::normalized`]
/// or `to_string()`), not with `==`.
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
        match syn.resource.as_str() {
            "atproto" | "transition" => Err(PermissionError::InvalidStaticScope { scope: s.to_owned() }),
            "repo" | "rpc" | "blob" | "account" | "identity" | "include" => {
                let params = Params::from_syntax(&syn);
                Self::from_params(&syn.resource, &params)
            }
            _ => Err(PermissionError::UnknownResource { resource: syn.resource }),
        }
    }

    /// Builds a permission from named parameters (a scope string's, or a permission-set entry's,
    /// SCOPE-10), applying the reference parser's rules: unknown keys refused, a single-valued key
    /// at most once, the positional value only when the key is not also named (SCOPE-04).
    pub(super) fn from_params(resource: &str, p: &Params<'_>) -> Result<Self, PermissionError> {
        let r = resource.to_owned();
        let invalid = |key: &'static str, value: &str| PermissionError::InvalidValue {
            resource: r.clone(),
            key,
            value: value.to_owned(),
        };
        match resource {
            "repo" => {
                p.check_known_keys(resource, &["collection", "action"])?;
                let collections = p
                    .multi(resource, "collection", true)?
                    .ok_or_else(|| PermissionError::MissingParameter {
                        resource: r.clone(),
                        key: "collection",
                    })?
                    .iter()
                    .map(|c| NsidOrWildcard::parse(resource, "collection", c))
                    .collect::<Result<Vec<_>, _>>()?;
                let actions = match p.multi(resource, "action", false)? {
                    None => RepoAction::ALL.to_vec(),
                    Some(listed) => {
                        let listed = listed
                            .iter()
                            .map(|a| RepoAction::parse(a).ok_or_else(|| invalid("action", a)))
                            .collect::<Result<Vec<_>, _>>()?;
                        RepoAction::ALL.into_iter().filter(|a| listed.contains(a)).collect()
                    }
                };
                Ok(Self::Repo(RepoPermission { collections: normalize_nsids(collections), actions }))
            }
            "rpc" => {
                p.check_known_keys(resource, &["lxm", "aud"])?;
                let lxm = p
                    .multi(resource, "lxm", true)?
                    .ok_or_else(|| PermissionError::MissingParameter { resource: r.clone(), key: "lxm" })?
                    .iter()
                    .map(|m| NsidOrWildcard::parse(resource, "lxm", m))
                    .collect::<Result<Vec<_>, _>>()?;
                let aud = p
                    .single(resource, "aud", false)?
                    .ok_or_else(|| PermissionError::MissingParameter { resource: r.clone(), key: "aud" })?;
                let aud = Audience::parse(resource, aud)?;
                // SCOPE-06: `rpc:*?aud=*` is refused.
                if aud == Audience::Any && lxm.contains(&NsidOrWildcard::Any) {
                    return Err(PermissionError::RpcWildcardBoth);
                }
                Ok(Self::Rpc(RpcPermission { lxm: normalize_nsids(lxm), aud }))
            }
            "blob" => {
                p.check_known_keys(resource, &["accept"])?;
                let accept = p.multi(resource, "accept", true)?.ok_or_else(|| {
                    PermissionError::MissingParameter { resource: r.clone(), key: "accept" }
                })?;
                if let Some(bad) = accept.iter().find(|a| !is_accept(a)) {
                    return Err(invalid("accept", bad));
                }
                Ok(Self::Blob(BlobPermission { accept: accept.iter().map(|a| (*a).to_owned()).collect() }))
            }
            "account" => {
                p.check_known_keys(resource, &["attr", "action"])?;
                let attr = p
                    .single(resource, "attr", true)?
                    .ok_or_else(|| PermissionError::MissingParameter { resource: r.clone(), key: "attr" })?;
                let attr = match attr {
                    "email" => AccountAttr::Email,
                    "repo" => AccountAttr::Repo,
                    "status" => AccountAttr::Status,
                    other => return Err(invalid("attr", other)),
                };
                let mut actions = Vec::new();
                for a in p.multi(resource, "action", false)?.unwrap_or_else(|| vec!["read"]) {
                    let action = match a {
                        "read" => AccountAction::Read,
                        "manage" => AccountAction::Manage,
                        other => return Err(invalid("action", other)),
                    };
                    if !actions.contains(&action) {
                        actions.push(action);
                    }
                }
                let action = if actions.contains(&AccountAction::Manage) {
                    AccountAction::Manage
                } else {
                    AccountAction::Read
                };
                Ok(Self::Account(AccountPermission { attr, action, actions }))
            }
            "identity" => {
                p.check_known_keys(resource, &["attr"])?;
                match p.single(resource, "attr", true)? {
                    None => Err(PermissionError::MissingParameter { resource: r, key: "attr" }),
                    Some("handle") => Ok(Self::Identity(IdentityAttr::Handle)),
                    Some("*") => Ok(Self::Identity(IdentityAttr::Any)),
                    Some(other) => Err(invalid("attr", other)),
                }
            }
            "include" => {
                p.check_known_keys(resource, &["nsid", "aud"])?;
                let nsid = p
                    .single(resource, "nsid", true)?
                    .ok_or_else(|| PermissionError::MissingParameter { resource: r.clone(), key: "nsid" })?;
                let nsid = Nsid::new(nsid).map_err(|_| invalid("nsid", nsid))?;
                // SCOPE-10: the `aud` handed to the set is a DID reference, never `*`.
                let aud = p
                    .single(resource, "aud", false)?
                    .map(|a| Audience::parse_did_ref(resource, a))
                    .transpose()?;
                Ok(Self::Include(IncludePermission { nsid, aud }))
            }
            _ => Err(PermissionError::UnknownResource { resource: r }),
        }
    }

    /// The normal form as a permission: what parsing [`to_string()`](ToString::to_string) gives back.
    pub fn normalized(&self) -> Self {
        match self {
            Self::Blob(b) => Self::Blob(BlobPermission { accept: normalize_accept(&b.accept) }),
            other => other.clone(),
        }
    }

    /// Whether this is a granular resource permission (`repo`, `rpc`, `blob`, `account`,
    /// `identity`), as opposed to `atproto`, a transitional scope or an `include:`.
    pub fn is_resource(&self) -> bool {
        matches!(self, Self::Repo(_) | Self::Rpc(_) | Self::Blob(_) | Self::Account(_) | Self::Identity(_))
    }
}

/// The parameters of one permission: from a scope string (positional + query) or from a
/// permission-set entry (SCOPE-10: named only, each value a string or a list of strings).
pub(super) struct Params<'a> {
    /// The positional value (scope strings only).
    pub(super) positional: Option<&'a str>,
    /// The named values, in order.
    pub(super) named: Vec<(&'a str, ParamValue<'a>)>,
    /// From a permission-set entry: a repeatable key takes one JSON list, a single one a string.
    pub(super) lexicon: bool,
}

/// One named value: a scope string repeats a key for several values, a permission-set entry
/// gives a JSON list.
pub(super) enum ParamValue<'a> {
    /// One string.
    One(&'a str),
    /// A JSON list of strings (permission sets only).
    List(Vec<&'a str>),
    /// A JSON value no permission accepts (boolean, number, a list with one): refused by every
    /// parameter, as the reference's validators do.
    Other,
}

impl<'a> Params<'a> {
    fn from_syntax(syn: &'a ScopeSyntax) -> Self {
        Self {
            positional: syn.positional.as_deref(),
            named: syn
                .params
                .iter()
                .flatten()
                .map(|(k, v)| (k.as_str(), ParamValue::One(v.as_str())))
                .collect(),
            lexicon: false,
        }
    }

    fn check_known_keys(&self, resource: &str, known: &[&'static str]) -> Result<(), PermissionError> {
        match self.named.iter().find(|(k, _)| !known.contains(k)) {
            Some((k, _)) => {
                Err(PermissionError::UnknownParameter { resource: resource.to_owned(), key: (*k).to_owned() })
            }
            None => Ok(()),
        }
    }

    fn values(&self, key: &str) -> impl Iterator<Item = &ParamValue<'a>> {
        self.named.iter().filter(move |(k, _)| *k == key).map(|(_, v)| v)
    }

    /// A repeatable parameter: `None` when absent. `positional`: whether the key may be given
    /// positionally instead.
    fn multi(
        &self,
        resource: &str,
        key: &'static str,
        positional: bool,
    ) -> Result<Option<Vec<&'a str>>, PermissionError> {
        let invalid =
            |value: String| PermissionError::InvalidValue { resource: resource.to_owned(), key, value };
        let given: Vec<&ParamValue<'a>> = self.values(key).collect();
        let named: Option<Vec<&'a str>> = if given.is_empty() {
            None
        } else if !self.lexicon {
            Some(
                given
                    .iter()
                    .filter_map(|v| if let ParamValue::One(s) = v { Some(*s) } else { None })
                    .collect(),
            )
        } else {
            // A permission-set entry: exactly one JSON list of strings.
            match given.as_slice() {
                [ParamValue::List(l)] if !l.is_empty() => Some(l.clone()),
                [ParamValue::List(_)] => return Err(invalid("[]".to_owned())),
                [ParamValue::One(s)] => return Err(invalid((*s).to_owned())),
                _ => return Err(invalid("(not a list of strings)".to_owned())),
            }
        };
        self.with_positional(resource, key, positional, named, |p| vec![p])
    }

    /// A single-valued parameter: `None` when absent; given twice, or as a list, is an error.
    fn single(
        &self,
        resource: &str,
        key: &'static str,
        positional: bool,
    ) -> Result<Option<&'a str>, PermissionError> {
        let given: Vec<&ParamValue<'a>> = self.values(key).collect();
        let named = match given.as_slice() {
            [] => None,
            [ParamValue::One(s)] => Some(*s),
            [_] if self.lexicon => {
                return Err(PermissionError::InvalidValue {
                    resource: resource.to_owned(),
                    key,
                    value: "(not a string)".to_owned(),
                });
            }
            _ => return Err(PermissionError::RepeatedParameter { resource: resource.to_owned(), key }),
        };
        self.with_positional(resource, key, positional, named, |p| p)
    }

    fn with_positional<T>(
        &self,
        resource: &str,
        key: &'static str,
        positional: bool,
        named: Option<T>,
        from_positional: impl FnOnce(&'a str) -> T,
    ) -> Result<Option<T>, PermissionError> {
        match (positional.then_some(self.positional).flatten(), named) {
            (Some(_), Some(_)) => {
                Err(PermissionError::PositionalAndNamed { resource: resource.to_owned(), key })
            }
            (Some(""), None) => Err(PermissionError::EmptyPositional { resource: resource.to_owned() }),
            (Some(p), None) => Ok(Some(from_positional(p))),
            (None, named) => Ok(named),
        }
    }
}

/// Collections / methods as the reference normalises them: several including `*` become `[*]`;
/// otherwise deduplicated and sorted (`rpc` sorts a single one too, which changes nothing).
fn normalize_nsids(mut v: Vec<NsidOrWildcard>) -> Vec<NsidOrWildcard> {
    if v.len() > 1 && v.contains(&NsidOrWildcard::Any) {
        return vec![NsidOrWildcard::Any];
    }
    v.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    v.dedup();
    v
}

/// `accept` values as the reference normalises them (SCOPE-07): `*/*` alone if present; otherwise
/// lower-cased, a concrete type dropped when its `type/*` is listed, sorted (by UTF-16 code units,
/// as JavaScript sorts). Duplicates stay: the reference removes them only when writing.
fn normalize_accept(accept: &[String]) -> Vec<String> {
    if accept.iter().any(|a| a == "*/*") {
        return vec!["*/*".to_owned()];
    }
    let lower: Vec<String> = accept.iter().map(|a| a.to_lowercase()).collect();
    let mut out: Vec<String> = lower
        .iter()
        .filter(|a| {
            a.ends_with("/*") || {
                let base = a.split('/').next().unwrap_or("");
                !lower.iter().any(|o| o.len() == base.len() + 2 && o.starts_with(base) && o.ends_with("/*"))
            }
        })
        .cloned()
        .collect();
    out.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
    out
}

/// Writes `resource[:positional][?k=v&…]` like the reference's `Parser.format`: the key that may
/// be positional is written positionally when it has exactly one value (counted before removing
/// duplicates), otherwise as repeated parameters without duplicates; then the other parameters.
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
        encode_positional(one, &mut out);
    } else {
        let mut seen: Vec<&str> = Vec::new();
        for m in main {
            if !seen.contains(m) {
                seen.push(m);
                params.push((main_key, m));
            }
        }
    }
    params.extend(rest.iter().map(|(k, v)| (*k, v.as_str())));
    for (i, (k, v)) in params.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        encode_query(v, &mut out);
    }
    f.write_str(&out)
}

/// The normalised scope string (the reference's `toString()`, SCOPE-04 / SCOPE-12).
impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Atproto => f.write_str(ATPROTO_SCOPE),
            Self::Transition(t) => f.write_str(t.as_str()),
            Self::Repo(p) => {
                let cols = normalize_nsids(p.collections.clone());
                let cols: Vec<&str> = cols.iter().map(NsidOrWildcard::as_str).collect();
                // The default (all three) is not written.
                let actions: Vec<RepoAction> =
                    RepoAction::ALL.into_iter().filter(|a| p.actions.contains(a)).collect();
                let rest: Vec<(&str, String)> = if actions.len() == RepoAction::ALL.len() {
                    Vec::new()
                } else {
                    actions.iter().map(|a| ("action", a.as_str().to_owned())).collect()
                };
                write_scope(f, "repo", "collection", &cols, &rest)
            }
            Self::Rpc(p) => {
                let lxm = normalize_nsids(p.lxm.clone());
                let lxm: Vec<&str> = lxm.iter().map(NsidOrWildcard::as_str).collect();
                write_scope(f, "rpc", "lxm", &lxm, &[("aud", p.aud.to_string())])
            }
            Self::Blob(p) => {
                let accept = normalize_accept(&p.accept);
                let accept: Vec<&str> = accept.iter().map(String::as_str).collect();
                write_scope(f, "blob", "accept", &accept, &[])
            }
            Self::Account(p) => {
                let mut actions: Vec<AccountAction> = Vec::new();
                for a in if p.actions.is_empty() { std::slice::from_ref(&p.action) } else { &p.actions } {
                    if !actions.contains(a) {
                        actions.push(*a);
                    }
                }
                // The default (`read` alone, however often) is not written.
                let rest: Vec<(&str, String)> = if actions.is_empty() || actions == [AccountAction::Read] {
                    Vec::new()
                } else {
                    actions.iter().map(|a| ("action", a.as_str().to_owned())).collect()
                };
                write_scope(f, "account", "attr", &[p.attr.as_str()], &rest)
            }
            Self::Identity(a) => write_scope(f, "identity", "attr", &[a.as_str()], &[]),
            Self::Include(p) => {
                let rest: Vec<(&str, String)> = p.aud.iter().map(|a| ("aud", a.to_string())).collect();
                write_scope(f, "include", "nsid", &[p.nsid.as_str()], &rest)
            }
        }
    }
}
