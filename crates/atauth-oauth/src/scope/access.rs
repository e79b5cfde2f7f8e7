//! The matcher: [`Access`], one thing a token is used for, checked against granted scopes
//! (SCOPE-03, SCOPE-05 … 09, RS-SCOPE-01), and [`ScopeMissing`], the 403 a resource server answers
//! when no scope allows it.
//!
//! The rules are the reference's (`@atproto/oauth-scopes` 0.5.12, `ScopePermissionsTransition`,
//! which the reference PDS uses): strings are compared exactly (NSIDs, audiences, MIME types are
//! case-sensitive), `*` in a collection / method list or as `aud` matches anything, an `accept` of
//! `type/*` matches by prefix, `account` `manage` implies `read`, `identity:*` covers `handle`.

use std::fmt;

use super::values::{accept_matches, is_mime};
use super::{
    AccountAction, AccountAttr, IdentityAttr, NsidOrWildcard, Permission, RepoAction, TransitionScope,
    syntax::{encode_positional, encode_query},
};

/// One use of a token that a resource server checks (RS-SCOPE-01).
///
/// Values are plain strings, compared as the reference compares them; a value that is not a
/// valid NSID / MIME type simply matches nothing but a wildcard.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Access {
    /// Create, update or delete a record in a collection (`com.atproto.repo.*Record`,
    /// `applyWrites`; SCOPE-05).
    Repo {
        /// The record action.
        action: RepoAction,
        /// The collection NSID.
        collection: String,
    },
    /// Upload a blob of a MIME type (`uploadBlob`; SCOPE-07).
    Blob {
        /// The MIME type of the upload (`image/png`).
        mime: String,
    },
    /// Call a method at a service: a proxied call or a `getServiceAuth` token (SCOPE-06).
    Rpc {
        /// The method NSID (`lxm`); `*` when a service-auth token is asked for without one.
        lxm: String,
        /// The audience: the service DID with its fragment (`did:web:api.bsky.app#bsky_appview`).
        aud: String,
    },
    /// Read or manage an account attribute (SCOPE-08): email in `getSession` (read), email update
    /// (manage), CAR import (`repo` manage), deactivation (`status` manage).
    Account {
        /// The attribute.
        attr: AccountAttr,
        /// The action.
        action: AccountAction,
    },
    /// Change the handle or the whole identity (DID document, PLC operations; SCOPE-09).
    Identity {
        /// [`IdentityAttr::Handle`] for a handle change, [`IdentityAttr::Any`] for the DID document.
        attr: IdentityAttr,
    },
}

impl Access {
    /// Writing a record: `action` in `collection`.
    pub fn repo(action: RepoAction, collection: impl Into<String>) -> Self {
        Self::Repo { action, collection: collection.into() }
    }

    /// Creating a record in `collection`.
    pub fn repo_create(collection: impl Into<String>) -> Self {
        Self::repo(RepoAction::Create, collection)
    }

    /// Updating a record in `collection`.
    pub fn repo_update(collection: impl Into<String>) -> Self {
        Self::repo(RepoAction::Update, collection)
    }

    /// Deleting a record in `collection`.
    pub fn repo_delete(collection: impl Into<String>) -> Self {
        Self::repo(RepoAction::Delete, collection)
    }

    /// Uploading a blob of MIME type `mime`.
    pub fn blob(mime: impl Into<String>) -> Self {
        Self::Blob { mime: mime.into() }
    }

    /// Calling method `lxm` at service `aud` (`did#service_id`).
    pub fn rpc(lxm: impl Into<String>, aud: impl Into<String>) -> Self {
        Self::Rpc { lxm: lxm.into(), aud: aud.into() }
    }

    /// Reading or managing an account attribute.
    pub fn account(attr: AccountAttr, action: AccountAction) -> Self {
        Self::Account { attr, action }
    }

    /// Reading the account's email (`getSession`'s `email`/`emailConfirmed`).
    pub fn email_read() -> Self {
        Self::account(AccountAttr::Email, AccountAction::Read)
    }

    /// Changing the account's email (or asking for its confirmation).
    pub fn email_manage() -> Self {
        Self::account(AccountAttr::Email, AccountAction::Manage)
    }

    /// Importing a repository (CAR import, `com.atproto.repo.importRepo`).
    pub fn repo_import() -> Self {
        Self::account(AccountAttr::Repo, AccountAction::Manage)
    }

    /// Deactivating or reactivating the account.
    pub fn status_manage() -> Self {
        Self::account(AccountAttr::Status, AccountAction::Manage)
    }

    /// Changing the handle.
    pub fn handle() -> Self {
        Self::Identity { attr: IdentityAttr::Handle }
    }

    /// Changing the DID document (PLC operations) and handle.
    pub fn identity_full() -> Self {
        Self::Identity { attr: IdentityAttr::Any }
    }

    /// The one granular scope that would allow this access, as the reference names it in its 403
    /// (`scopeNeededFor`): `repo:<c>?action=<a>`, `blob:<mime lower-cased>`, `rpc:<lxm>?aud=<aud>`,
    /// `account:<attr>[?action=manage]`, `identity:<attr>`.
    pub fn scope_needed(&self) -> String {
        let mut out = String::new();
        match self {
            Self::Repo { action, collection } => {
                out.push_str("repo:");
                encode_positional(collection, &mut out);
                out.push_str("?action=");
                out.push_str(action.as_str());
            }
            Self::Blob { mime } => {
                out.push_str("blob:");
                encode_positional(&mime.to_lowercase(), &mut out);
            }
            Self::Rpc { lxm, aud } => {
                out.push_str("rpc:");
                encode_positional(lxm, &mut out);
                out.push_str("?aud=");
                encode_query(aud, &mut out);
            }
            Self::Account { attr, action } => {
                out.push_str("account:");
                out.push_str(attr.as_str());
                if *action == AccountAction::Manage {
                    out.push_str("?action=manage");
                }
            }
            Self::Identity { attr } => {
                out.push_str("identity:");
                out.push_str(attr.as_str());
            }
        }
        out
    }
}

impl Permission {
    /// Whether this one permission allows `access` (granular resources only; `atproto`,
    /// transitional scopes and `include:` allow nothing by themselves: see
    /// [`ScopeSet::allows`](super::ScopeSet::allows) for the transitional rules).
    pub fn allows(&self, access: &Access) -> bool {
        let listed = |list: &[NsidOrWildcard], v: &str| {
            list.iter().any(|x| matches!(x, NsidOrWildcard::Any)) || list.iter().any(|x| x.as_str() == v)
        };
        match (self, access) {
            (Self::Repo(p), Access::Repo { action, collection }) => {
                p.actions.contains(action) && listed(&p.collections, collection)
            }
            (Self::Rpc(p), Access::Rpc { lxm, aud }) => p.aud.covers(aud) && listed(&p.lxm, lxm),
            (Self::Blob(p), Access::Blob { mime }) => {
                is_mime(mime) && p.accept.iter().any(|a| accept_matches(a, mime))
            }
            (Self::Account(p), Access::Account { attr, action }) => {
                p.attr == *attr && (p.action == AccountAction::Manage || p.actions.contains(action))
            }
            (Self::Identity(p), Access::Identity { attr }) => *p == IdentityAttr::Any || p == attr,
            _ => false,
        }
    }
}

/// The transitional scopes' grants (SCOPE-03), exactly as the reference PDS applies them
/// (`ScopePermissionsTransition`): `transition:generic` allows every record write, every blob
/// and every method except `chat.bsky.*` (and a method-less service-auth token);
/// `transition:chat.bsky` allows `chat.bsky.*` methods (the reference does not check that
/// `transition:generic` is there too); `transition:email` allows reading the email.
pub(super) fn transition_allows(has: impl Fn(TransitionScope) -> bool, access: &Access) -> bool {
    match access {
        Access::Repo { .. } | Access::Blob { .. } => has(TransitionScope::Generic),
        Access::Rpc { lxm, .. } => {
            let chat = lxm.starts_with("chat.bsky.");
            (has(TransitionScope::Generic) && !chat) || (has(TransitionScope::ChatBsky) && chat)
        }
        Access::Account { attr: AccountAttr::Email, action: AccountAction::Read } => {
            has(TransitionScope::Email)
        }
        Access::Account { .. } | Access::Identity { .. } => false,
    }
}

/// No granted scope allows an access: the resource server answers 403 with this (RS-SCOPE-01).
///
/// On the wire the reference answers `{"error": "ScopeMissingError", "message": "Missing required
/// scope \"<scope>\""}` with status 403 ([`Self::ERROR`], [`Self::STATUS`], `to_string()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeMissing {
    /// The scope that would have allowed the access ([`Access::scope_needed`]).
    pub scope: String,
}

impl ScopeMissing {
    /// The XRPC `error` name the reference sends.
    pub const ERROR: &'static str = "ScopeMissingError";
    /// The HTTP status.
    pub const STATUS: u16 = 403;

    /// The error for `access`.
    pub fn for_access(access: &Access) -> Self {
        Self { scope: access.scope_needed() }
    }
}

impl fmt::Display for ScopeMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Missing required scope \"{}\"", self.scope)
    }
}

impl std::error::Error for ScopeMissing {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::scope::ScopeSet;

    const APPVIEW: &str = "did:web:api.bsky.app#bsky_appview";

    #[test]
    fn rs_scope_01_service_auth_and_proxying() {
        // getServiceAuth without `lxm` asks for `*`: only an `rpc:*` grant at that audience (or
        // transition:generic) covers it; a bare-DID audience only matches `aud=*`.
        let one =
            ScopeSet::parse("atproto rpc:app.bsky.feed.getTimeline?aud=did:web:api.bsky.app%23bsky_appview")
                .unwrap();
        assert!(one.allows(&Access::rpc("app.bsky.feed.getTimeline", APPVIEW)));
        assert!(!one.allows(&Access::rpc("*", APPVIEW)));
        assert!(!one.allows(&Access::rpc("app.bsky.feed.getTimeline", "did:web:api.bsky.app")));
        let any_method = ScopeSet::parse("atproto rpc:*?aud=did:web:api.bsky.app%23bsky_appview").unwrap();
        assert!(any_method.allows(&Access::rpc("*", APPVIEW)));
        let any_aud = ScopeSet::parse("atproto rpc:app.bsky.feed.getTimeline?aud=*").unwrap();
        assert!(any_aud.allows(&Access::rpc("app.bsky.feed.getTimeline", "did:web:api.bsky.app")));
        let generic = ScopeSet::parse("atproto transition:generic").unwrap();
        assert!(generic.allows(&Access::rpc("*", "did:web:x.example")));
        assert_eq!(
            one.check(&Access::rpc("*", APPVIEW)).unwrap_err().scope,
            "rpc:*?aud=did:web:api.bsky.app%23bsky_appview"
        );
    }

    #[test]
    fn rs_scope_01_account_and_identity() {
        let s = ScopeSet::parse("atproto account:email identity:handle").unwrap();
        assert!(s.allows(&Access::email_read()));
        assert!(!s.allows(&Access::email_manage()));
        assert!(s.allows(&Access::handle()));
        assert!(!s.allows(&Access::identity_full()));
        assert!(!s.allows(&Access::repo_import()));
        let m = ScopeSet::parse("atproto account:repo?action=manage identity:*").unwrap();
        assert!(m.allows(&Access::repo_import()));
        assert!(m.allows(&Access::account(AccountAttr::Repo, AccountAction::Read)), "manage implies read");
        assert!(m.allows(&Access::handle()), "identity:* covers the handle");
        assert!(!m.allows(&Access::status_manage()));
        // SCOPE-03: transition:email reads the email, nothing more.
        let e = ScopeSet::parse("atproto transition:email").unwrap();
        assert!(e.allows(&Access::email_read()) && !e.allows(&Access::email_manage()));
    }

    #[test]
    fn scope_missing_wire_shape() {
        let err = ScopeMissing::for_access(&Access::blob("Image/PNG"));
        assert_eq!(err.scope, "blob:image/png");
        assert_eq!(err.to_string(), "Missing required scope \"blob:image/png\"");
        assert_eq!((ScopeMissing::ERROR, ScopeMissing::STATUS), ("ScopeMissingError", 403));
        assert_eq!(
            Access::repo_update("app.bsky.feed.post").scope_needed(),
            "repo:app.bsky.feed.post?action=update"
        );
        assert_eq!(Access::email_manage().scope_needed(), "account:email?action=manage");
        assert_eq!(Access::identity_full().scope_needed(), "identity:*");
    }
}
