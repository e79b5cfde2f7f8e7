//! Requested scopes in plain words for the consent screen (AS-AUTHZ-04, SCOPE-03 … 10).
//!
//! Every scope becomes one line: a short title, a sentence of detail, and the raw scope string for
//! people who want it. `atproto` is marked required (it cannot be removed, AS-AUTHZ-04); powerful
//! permissions (identity changes, account management, direct messages) are marked sensitive so the
//! page can set them apart. `include:` permission sets are shown with their author's title and
//! detail and what they grant ([`describe_all_with_sets`]; the web layer resolves them).

use atauth_oauth::Permission;
use atauth_oauth::scope::{
    AccountAction, AccountAttr, Audience, IdentityAttr, NsidOrWildcard, RepoAction, TransitionScope,
};
use atauth_oauth::scope::{IncludePermission, PermissionSet};

/// One requested scope, described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeLine {
    /// The scope string as requested.
    pub scope: String,
    /// What it allows, in a few words.
    pub title: String,
    /// One sentence of detail.
    pub detail: String,
    /// `atproto`: always granted, cannot be unticked.
    pub required: bool,
    /// Worth a second look (identity, account management, direct messages, any service).
    pub sensitive: bool,
}

fn nsid_list(items: &[NsidOrWildcard], any: &str) -> String {
    if items.iter().any(|i| matches!(i, NsidOrWildcard::Any)) {
        return any.to_owned();
    }
    let names: Vec<&str> = items
        .iter()
        .filter_map(|i| match i {
            NsidOrWildcard::Nsid(n) => Some(n.as_str()),
            NsidOrWildcard::Any => None,
        })
        .collect();
    names.join(", ")
}

fn actions(list: &[RepoAction]) -> String {
    let words: Vec<&str> = list
        .iter()
        .map(|a| match a {
            RepoAction::Create => "create",
            RepoAction::Update => "update",
            RepoAction::Delete => "delete",
        })
        .collect();
    let mut s = match words.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    if let Some(first) = s.get(..1) {
        s = first.to_uppercase() + &s[1..];
    }
    s
}

fn line(scope: &str, title: impl Into<String>, detail: impl Into<String>) -> ScopeLine {
    ScopeLine {
        scope: scope.to_owned(),
        title: title.into(),
        detail: detail.into(),
        required: false,
        sensitive: false,
    }
}

/// Describes one scope string.
pub fn describe(scope: &str) -> ScopeLine {
    let Ok(permission) = Permission::parse(scope) else {
        return line(scope, "Another permission", "A permission this server does not describe.");
    };
    match permission {
        Permission::Atproto => ScopeLine {
            required: true,
            ..line(
                scope,
                "Know who you are",
                "See your account's identifier (DID) and handle. Every app that signs you in needs this.",
            )
        },
        Permission::Transition(TransitionScope::Generic) => line(
            scope,
            "Read and change your account data",
            "Post, like, follow and edit or delete your records, upload images and videos, change \
             preferences, and call other services for you. Not your direct messages, your email \
             address or account settings such as your password and handle.",
        ),
        Permission::Transition(TransitionScope::ChatBsky) => ScopeLine {
            sensitive: true,
            ..line(scope, "Read and send your direct messages", "Use Bluesky chat on your behalf.")
        },
        Permission::Transition(TransitionScope::Email) => {
            line(scope, "See your email address", "Your email address and whether it is confirmed.")
        }
        Permission::Repo(p) => {
            let what = nsid_list(&p.collections, "records of any type");
            line(scope, format!("{} records", actions(&p.actions)), format!("In your repository: {what}."))
        }
        Permission::Rpc(p) => {
            let methods = nsid_list(&p.lxm, "any method");
            let (aud, any) = match &p.aud {
                Audience::Any => ("any service".to_owned(), true),
                Audience::Service { did, fragment } => (format!("{did}#{fragment}"), false),
            };
            ScopeLine {
                sensitive: any,
                ..line(
                    scope,
                    "Call services for you",
                    format!("Make requests in your name: {methods}, at {aud}."),
                )
            }
        }
        Permission::Blob(p) => {
            let types = if p.accept.iter().any(|a| a == "*/*") {
                "files of any type".to_owned()
            } else {
                p.accept.join(", ")
            };
            line(scope, "Upload files", format!("Upload media to your account: {types}."))
        }
        Permission::Account(p) => {
            let (title, detail) = match (p.attr, p.action) {
                (AccountAttr::Email, AccountAction::Read) => {
                    ("See your email address", "Your email address and whether it is confirmed.")
                }
                (AccountAttr::Email, AccountAction::Manage) => {
                    ("Change your email address", "Read and update the email address of your account.")
                }
                (AccountAttr::Repo, AccountAction::Read) => {
                    ("See your repository's status", "Whether your repository is ready and how large it is.")
                }
                (AccountAttr::Repo, AccountAction::Manage) => (
                    "Replace your repository",
                    "Import a whole repository into your account, as when moving from another server.",
                ),
                (AccountAttr::Status, AccountAction::Read) => {
                    ("See your account's status", "Whether your account is active or deactivated.")
                }
                (AccountAttr::Status, AccountAction::Manage) => {
                    ("Deactivate or reactivate your account", "Change whether your account is active.")
                }
            };
            ScopeLine { sensitive: p.action == AccountAction::Manage, ..line(scope, title, detail) }
        }
        Permission::Identity(attr) => {
            let (title, detail) = match attr {
                IdentityAttr::Handle => ("Change your handle", "Set a new handle for your account."),
                IdentityAttr::Any => (
                    "Control your identity",
                    "Change your handle and your DID document: full control over who your account is \
                     and where it is hosted.",
                ),
            };
            ScopeLine { sensitive: true, ..line(scope, title, detail) }
        }
        Permission::Include(p) => line(
            scope,
            format!("Permissions of “{}”", p.nsid.as_str()),
            "A named set of permissions published by the app's developer.",
        ),
        _ => line(scope, "Another permission", "A permission this server does not describe."),
    }
}

/// Describes a space-separated scope, `atproto` first, then in the order requested.
pub fn describe_all(scope: &str) -> Vec<ScopeLine> {
    describe_all_with_sets(scope, &[])
}

/// [`describe_all`], with each `include:` described by its resolved permission set (SCOPE-10): the
/// set's own `title` and `detail` as its author wrote them, followed by what it grants in plain
/// words. A set missing from `sets` is named by its NSID.
pub fn describe_all_with_sets(scope: &str, sets: &[PermissionSet]) -> Vec<ScopeLine> {
    let mut lines: Vec<ScopeLine> = scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| match Permission::parse(s) {
            Ok(Permission::Include(include)) => match sets.iter().find(|set| set.nsid == include.nsid) {
                Some(set) => describe_set(s, &include, set),
                None => describe(s),
            },
            _ => describe(s),
        })
        .collect();
    lines.sort_by_key(|l| !l.required);
    lines
}

/// One `include:` line: the author's title (or the NSID), then their detail and the granted
/// permissions' titles, so a person sees both what the app says and what it gets.
fn describe_set(scope: &str, include: &IncludePermission, set: &PermissionSet) -> ScopeLine {
    let title = set.title.clone().unwrap_or_else(|| format!("Permissions of “{}”", set.nsid.as_str()));
    let granted: Vec<String> = include
        .expand(set)
        .permissions
        .iter()
        .map(|p| {
            let l = describe(&p.to_string());
            format!("{} ({})", l.title, l.detail.trim_end_matches('.'))
        })
        .collect();
    let mut detail = set.detail.clone().unwrap_or_default();
    if !granted.is_empty() {
        if !detail.is_empty() && !detail.ends_with('.') {
            detail.push('.');
        }
        if !detail.is_empty() {
            detail.push(' ');
        }
        detail.push_str("It allows: ");
        detail.push_str(&granted.join("; "));
        detail.push('.');
    }
    ScopeLine { sensitive: granted.is_empty(), ..line(scope, title, detail) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_03_transitional_scopes_in_plain_words() {
        let l = describe_all("transition:generic atproto transition:email transition:chat.bsky");
        assert_eq!(l[0].scope, "atproto", "atproto first");
        assert!(l[0].required && !l[1].required);
        assert_eq!(l[1].title, "Read and change your account data");
        assert!(l[1].detail.contains("Not your direct messages"));
        assert_eq!(l[2].title, "See your email address");
        assert!(l[3].sensitive, "chat is sensitive");
    }

    #[test]
    fn granular_permissions() {
        let r = describe("repo:app.bsky.feed.post?action=create&action=delete");
        assert_eq!(r.title, "Create and delete records");
        assert_eq!(r.detail, "In your repository: app.bsky.feed.post.");
        assert_eq!(describe("repo:*").title, "Create, update and delete records");
        assert!(describe("rpc:app.bsky.feed.getFeed?aud=*").sensitive);
        assert!(describe("rpc:*?aud=did:web:api.bsky.app%23bsky_appview").detail.contains("any method"));
        assert_eq!(describe("blob:image/*").detail, "Upload media to your account: image/*.");
        assert!(describe("identity:*").sensitive);
        assert!(describe("account:repo?action=manage").sensitive);
        assert!(!describe("account:email").sensitive);
        assert!(describe("include:com.example.authBasic").title.contains("com.example.authBasic"));
        assert_eq!(describe("nonsense:").title, "Another permission");
    }
}
