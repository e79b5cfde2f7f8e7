//! The typed values of granular permissions (SCOPE-03, 05 … 10): one type per resource and per parameter
//! domain, each with its own parse of a single value.
//!
//! The value checks follow the reference (`@atproto/oauth-scopes` 0.5.12, with `@atproto/did` and
//! `@atproto/syntax`) exactly, so that a scope string is accepted here iff the reference accepts it;
//! `tests/vectors/oauth-scopes.json` holds the evidence.

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

/// A `repo` record action (SCOPE-05). The order (`create`, `update`, `delete`) is the reference's
/// normal-form order.
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
    /// The three actions, in normal-form order.
    pub const ALL: [Self; 3] = [Self::Create, Self::Update, Self::Delete];

    /// The parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }

    pub(super) fn parse(v: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == v)
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

    /// `*` or the NSID.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Any => "*",
            Self::Nsid(n) => n.as_str(),
        }
    }
}

/// `repo:<collection>[?action=…]` (SCOPE-05).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPermission {
    /// Collections (NSIDs or `*`), at least one; normalised as the reference does (several
    /// including `*` become `[*]`, otherwise deduplicated and sorted).
    pub collections: Vec<NsidOrWildcard>,
    /// Allowed actions, deduplicated, in `create`, `update`, `delete` order; all three when none
    /// was given.
    pub actions: Vec<RepoAction>,
}

/// An `aud` value: `*` or an atproto DID (`did:plc` or `did:web` without path) with a service
/// fragment (SCOPE-06).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Audience {
    /// `*`: any service.
    Any,
    /// `did#service_id`.
    Service {
        /// The service DID.
        did: Did,
        /// The fragment, without `#`, as written (RFC 3986 fragment characters).
        fragment: String,
    },
}

impl Audience {
    /// `*` or a DID reference ([`Self::parse_did_ref`]).
    pub(super) fn parse(resource: &str, v: &str) -> Result<Self, PermissionError> {
        if v == "*" {
            return Ok(Self::Any);
        }
        Self::parse_did_ref(resource, v)
    }

    /// An absolute atproto DID reference `did#fragment` (no `*`), as `include:`'s `aud` requires.
    pub(super) fn parse_did_ref(resource: &str, v: &str) -> Result<Self, PermissionError> {
        let bad = || PermissionError::InvalidValue {
            resource: resource.to_owned(),
            key: "aud",
            value: v.to_owned(),
        };
        if !is_atproto_did_ref_absolute(v) {
            return Err(bad());
        }
        let (did, fragment) = v.split_once('#').ok_or_else(bad)?;
        let did = Did::new(did).map_err(|_| bad())?;
        Ok(Self::Service { did, fragment: fragment.to_owned() })
    }

    /// Whether a request's audience string is covered: `*` covers all, a DID reference only
    /// itself, compared as strings like the reference.
    pub fn covers(&self, aud: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Service { did, fragment } => {
                aud.strip_prefix(did.as_str()).and_then(|r| r.strip_prefix('#')) == Some(fragment.as_str())
            }
        }
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
    /// Methods (NSIDs or `*`), at least one; normalised like [`RepoPermission::collections`].
    pub lxm: Vec<NsidOrWildcard>,
    /// The audience.
    pub aud: Audience,
}

/// `blob:<accept>` (SCOPE-07).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobPermission {
    /// MIME types or globs (`*/*`, `video/*`, `text/html`), at least one, as written: the reference
    /// matches them case-sensitively and lowercases only in the normal form.
    pub accept: Vec<String>,
}

/// An `account` attribute (SCOPE-08).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountAttr {
    /// `email`.
    Email,
    /// `repo` (`manage` = CAR import).
    Repo,
    /// `status` (REF: account activation).
    Status,
}

impl AccountAttr {
    /// The parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Repo => "repo",
            Self::Status => "status",
        }
    }
}

/// An `account` action (SCOPE-08).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountAction {
    /// `read` (default).
    Read,
    /// `manage` (implies read).
    Manage,
}

impl AccountAction {
    /// The parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Manage => "manage",
        }
    }
}

/// `account:<attr>[?action=read|manage]` (SCOPE-08).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPermission {
    /// The attribute.
    pub attr: AccountAttr,
    /// The effective action: [`AccountAction::Manage`] when `manage` is listed (it implies read).
    pub action: AccountAction,
    /// The listed actions, deduplicated, in the order given (`[read]` when none was): the
    /// reference repeats `action` (`?action=read&action=manage`) and keeps that order in its normal
    /// form.
    pub actions: Vec<AccountAction>,
}

/// An `identity` attribute (SCOPE-09).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityAttr {
    /// `handle`.
    Handle,
    /// `*`: DID document and handle.
    Any,
}

impl IdentityAttr {
    /// The parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Handle => "handle",
            Self::Any => "*",
        }
    }
}

/// `include:<nsid>[?aud=did#svc]` (SCOPE-10): a reference to a permission set, expanded with
/// [`PermissionSet`](super::PermissionSet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncludePermission {
    /// The permission-set NSID.
    pub nsid: Nsid,
    /// The audience handed to `inheritAud` permissions; never `*` (REF `include-scope.ts`).
    pub aud: Option<Audience>,
}

/// Two parts around exactly one `/`, both non-empty, no space (REF `lib/mime.ts`).
fn is_string_slash_string(v: &str) -> bool {
    let Some((t, s)) = v.split_once('/') else { return false };
    !t.is_empty() && !s.is_empty() && !s.contains('/') && !v.contains(' ')
}

/// An `accept` value: `*/*`, `type/*` or a concrete `type/subtype` (SCOPE-07). As lax as the
/// reference: any characters but space, `*` only as the whole subtype.
pub(super) fn is_accept(v: &str) -> bool {
    v == "*/*" || (is_string_slash_string(v) && (!v.contains('*') || v.ends_with("/*")))
}

/// A concrete MIME type (what a request names): `type/subtype`, no `*`.
pub(super) fn is_mime(v: &str) -> bool {
    is_string_slash_string(v) && !v.contains('*')
}

/// Whether `accept` covers `mime` (REF `matchesAccept`, case-sensitive).
pub(super) fn accept_matches(accept: &str, mime: &str) -> bool {
    if accept == "*/*" {
        return true;
    }
    match accept.strip_suffix('*') {
        Some(prefix) if accept.ends_with("/*") => mime.starts_with(prefix),
        _ => accept == mime,
    }
}

/// `did#fragment` with an atproto DID: `did:plc` (32 chars, base32) or `did:web` without a path
/// and without a port except on localhost (REF `@atproto/did` `isAtprotoDidRefAbsolute`).
fn is_atproto_did_ref_absolute(v: &str) -> bool {
    let Some((did, fragment)) = v.split_once('#') else { return false };
    !fragment.is_empty()
        && !fragment.contains('#')
        && is_fragment(fragment)
        && is_did(did)
        && is_atproto_did(did)
}

/// RFC 3986 §3.5 fragment characters, with `%` followed by two hex digits.
fn is_fragment(v: &str) -> bool {
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            c if c.is_ascii_alphanumeric() => {}
            b'-' | b'.' | b'_' | b'~' => {}
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' => {}
            b':' | b'@' | b'/' | b'?' => {}
            b'%' => {
                if !(i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                    return false;
                }
                i += 2;
            }
            _ => return false,
        }
        i += 1;
    }
    true
}

/// W3C DID syntax as the reference checks it (method `[a-z0-9]+`, method-specific id of
/// `[A-Za-z0-9._-]`, `:` not last, `%` + two upper-case hex digits; at most 2048 chars).
fn is_did(v: &str) -> bool {
    if v.len() > 2048 {
        return false;
    }
    let Some(rest) = v.strip_prefix("did:") else { return false };
    let Some((method, msid)) = rest.split_once(':') else { return false };
    if method.is_empty() || !method.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return false;
    }
    let b = msid.as_bytes();
    if b.is_empty() {
        return false;
    }
    let upper_hex = |c: Option<&u8>| matches!(c, Some(b'0'..=b'9' | b'A'..=b'F'));
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            c if c.is_ascii_alphanumeric() => {}
            b'.' | b'-' | b'_' => {}
            b':' if i + 1 < b.len() => {}
            b'%' if upper_hex(b.get(i + 1)) && upper_hex(b.get(i + 2)) => i += 2,
            _ => return false,
        }
        i += 1;
    }
    true
}

/// The two blessed methods, with the atproto restrictions on `did:web`.
fn is_atproto_did(did: &str) -> bool {
    if let Some(id) = did.strip_prefix("did:plc:") {
        return did.len() == 32 && id.bytes().all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c));
    }
    let Some(host) = did.strip_prefix("did:web:") else { return false };
    if host.starts_with(':') || host.contains(':') {
        // A leading colon is invalid; any other colon is a path, which atproto forbids.
        return false;
    }
    let localhost = did == "did:web:localhost" || did.starts_with("did:web:localhost%3A");
    if !localhost && host.contains("%3A") {
        return false;
    }
    let host = host.replace("%3A", ":");
    let proto = if host == "localhost" || host.starts_with("localhost:") { "http" } else { "https" };
    url::Url::parse(&format!("{proto}://{host}")).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_06_atproto_did_refs() {
        for ok in [
            "did:web:api.bsky.app#bsky_appview",
            "did:plc:abcdefghijklmnopqrstuvwx#svc",
            "did:web:localhost%3A2583#svc",
            "did:web:example.com#a%20b",
        ] {
            assert!(is_atproto_did_ref_absolute(ok), "{ok}");
        }
        for bad in [
            "did:web:api.bsky.app",
            "did:web:api.bsky.app#",
            "did:web:api.bsky.app#a#b",
            "did:plc:111#svc",
            "did:key:zabc#svc",
            "did:web:example.com:path#svc",
            "did:web:example.com%3A443#svc",
            "did:web:example.com%3a443#svc",
            "did:web:localhost%3Aabc#svc",
            "did:web:exa mple.com#svc",
            "did:web:example.com#a b",
        ] {
            assert!(!is_atproto_did_ref_absolute(bad), "{bad}");
        }
    }

    #[test]
    fn scope_07_accept_and_match() {
        assert!(is_accept("*/*") && is_accept("image/*") && is_accept("image/png") && is_accept("a*b/*"));
        assert!(!is_accept("*/png") && !is_accept("image") && !is_accept("/png") && !is_accept("a/b/c"));
        assert!(accept_matches("image/*", "image/png") && !accept_matches("image/*", "video/mp4"));
        assert!(accept_matches("*/*", "x/y") && accept_matches("Image/PNG", "Image/PNG"));
        assert!(!accept_matches("image/png", "image/PNG"), "case-sensitive like the reference");
        assert!(is_mime("image/png") && !is_mime("image/*"));
    }

    #[test]
    fn audience_covers_by_string() {
        let a = Audience::parse("rpc", "did:web:api.bsky.app#bsky_appview").unwrap_or(Audience::Any);
        assert!(a.covers("did:web:api.bsky.app#bsky_appview"));
        assert!(!a.covers("did:web:api.bsky.app#bsky_chat"));
        assert!(!a.covers("did:web:api.bsky.app"));
        assert!(Audience::Any.covers("anything"));
    }
}
