//! Requested scopes in plain words for the consent screen (AS-AUTHZ-04, SCOPE-03 … 10).
//!
//! Every scope becomes one line: a short title, a sentence of detail, and the raw scope string for
//! people who want it. `atproto` is marked required (it cannot be removed, AS-AUTHZ-04); powerful
//! permissions (identity changes, account management, direct messages) are marked sensitive so the
//! page can set them apart. `include:` permission sets are shown with their author's title and
//! detail and what they grant ([`describe_all_with_sets`]; the web layer resolves them).

use std::borrow::Borrow;

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

fn nsids(items: &[NsidOrWildcard]) -> Vec<&str> {
    items
        .iter()
        .filter_map(|i| match i {
            NsidOrWildcard::Nsid(n) => Some(n.as_str()),
            NsidOrWildcard::Any => None,
        })
        .collect()
}

/// `a`, `a and b`, `a, b and c`.
fn and_list<S: AsRef<str>>(items: &[S]) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_owned(),
        [init @ .., last] => {
            let init: Vec<&str> = init.iter().map(AsRef::as_ref).collect();
            format!("{} and {}", init.join(", "), last.as_ref())
        }
    }
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
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
    capitalized(&and_list(&words))
}

/// The last segment of an NSID in words: `getPostThread` → `get post thread`.
fn name_words(nsid: &str) -> String {
    let name = nsid.rsplit('.').next().unwrap_or(nsid);
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Record types people know by name (the Bluesky app's); others are named from their NSID.
fn known_collection(nsid: &str) -> Option<&'static str> {
    Some(match nsid {
        "app.bsky.feed.post" => "Bluesky posts",
        "app.bsky.feed.like" => "Bluesky likes",
        "app.bsky.feed.repost" => "Bluesky reposts",
        "app.bsky.feed.threadgate" => "who may reply to your Bluesky posts",
        "app.bsky.feed.postgate" => "who may quote your Bluesky posts",
        "app.bsky.feed.generator" => "Bluesky custom feeds",
        "app.bsky.graph.follow" => "Bluesky follows",
        "app.bsky.graph.block" => "Bluesky blocks",
        "app.bsky.graph.list" => "Bluesky lists",
        "app.bsky.graph.listitem" => "Bluesky list members",
        "app.bsky.graph.starterpack" => "Bluesky starter packs",
        "app.bsky.actor.profile" => "your Bluesky profile",
        _ => return None,
    })
}

/// What a `repo` permission covers, in words: `Bluesky posts`, `recipe records`.
fn collections_words(items: &[NsidOrWildcard]) -> String {
    if items.iter().any(|i| matches!(i, NsidOrWildcard::Any)) {
        return "records of any type".to_owned();
    }
    let words: Vec<String> = nsids(items)
        .into_iter()
        .map(|n| known_collection(n).map_or_else(|| format!("{} records", name_words(n)), str::to_owned))
        .collect();
    and_list(&words)
}

/// Services people know by name, else the `did:web` host, else the DID (with its fragment).
fn service_name(aud: &Audience) -> (String, String) {
    match aud {
        Audience::Any => ("Any service".to_owned(), "any service, not only the ones you know".to_owned()),
        Audience::Service { did, fragment } => {
            let full = format!("{did}#{fragment}");
            let name = match (did.as_str(), fragment.as_str()) {
                ("did:web:api.bsky.app", "bsky_appview") => "Bluesky app view".to_owned(),
                ("did:web:api.bsky.chat", "bsky_chat") => "Bluesky chat".to_owned(),
                _ if did.is_web() => did.identifier().replace("%3A", ":"),
                _ => return (full.clone(), full),
            };
            let article = if name.starts_with("Bluesky") { "the " } else { "" };
            (name.clone(), format!("{article}{name} ({full})"))
        }
    }
}

/// The methods of an `rpc` permission in words, one verb shared where it can be:
/// `get feed, post thread and profile`.
fn methods_words(items: &[NsidOrWildcard]) -> String {
    if items.iter().any(|i| matches!(i, NsidOrWildcard::Any)) {
        return "any request".to_owned();
    }
    let words: Vec<String> = nsids(items).into_iter().map(name_words).collect();
    let verb = words.first().and_then(|w| w.split_once(' ')).map(|(v, _)| v.to_owned());
    match verb {
        Some(v) if words.len() > 1 && words.iter().all(|w| w.starts_with(&format!("{v} "))) => {
            let rest: Vec<&str> = words.iter().map(|w| &w[v.len() + 1..]).collect();
            format!("{v} {}", and_list(&rest))
        }
        _ => and_list(&words),
    }
}

/// MIME types in words where they are whole families: `image/*` → images.
fn media_words(accept: &[String]) -> Option<String> {
    let words: Option<Vec<&str>> = accept
        .iter()
        .map(|a| match a.as_str() {
            "image/*" => Some("images"),
            "video/*" => Some("videos"),
            "audio/*" => Some("audio"),
            "text/*" => Some("text files"),
            _ => None,
        })
        .collect();
    words.map(|w| and_list(&w))
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
            // The NSIDs are in the scope string shown under every line.
            let detail = if nsids(&p.collections).is_empty() {
                "Any record in your repository, where your posts, likes, follows and profile are kept \
                 in public."
            } else {
                "These records are public and kept in your repository."
            };
            line(scope, format!("{} {}", actions(&p.actions), collections_words(&p.collections)), detail)
        }
        Permission::Rpc(p) => {
            let (name, full) = service_name(&p.aud);
            let any_method = nsids(&p.lxm).is_empty();
            let detail = if any_method {
                format!("Any request the app makes in your name to {full}, of any kind.")
            } else {
                format!("Requests the app makes in your name to {full}.")
            };
            ScopeLine {
                // Any service, or anything at all at one: worth a second look.
                sensitive: p.aud == Audience::Any || any_method,
                ..line(scope, format!("{name}: {}", methods_words(&p.lxm)), detail)
            }
        }
        Permission::Blob(p) => {
            let types = p.accept.join(", ");
            let title = if p.accept.iter().any(|a| a == "*/*") {
                "Upload files of any type".to_owned()
            } else {
                media_words(&p.accept).map_or_else(|| "Upload files".to_owned(), |w| format!("Upload {w}"))
            };
            line(scope, title, format!("Files kept in your account for the app to use in records: {types}."))
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
    describe_all_with_sets::<PermissionSet>(scope, &[])
}

/// [`describe_all`], with each `include:` described by its resolved permission set (SCOPE-10): the
/// set's own `title` and `detail` as its author wrote them, followed by what it grants in plain
/// words. A set missing from `sets` is named by its NSID.
/// `sets` may hold the sets or shared references to them (`Arc<PermissionSet>`).
pub fn describe_all_with_sets<S: Borrow<PermissionSet>>(scope: &str, sets: &[S]) -> Vec<ScopeLine> {
    let mut lines: Vec<ScopeLine> = scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| match Permission::parse(s) {
            Ok(Permission::Include(include)) => {
                match sets.iter().map(Borrow::borrow).find(|set| set.nsid == include.nsid) {
                    Some(set) => describe_set(s, &include, set),
                    None => describe(s),
                }
            }
            _ => describe(s),
        })
        .collect();
    lines.sort_by_key(|l| !l.required);
    lines
}

/// One `include:` line: the author's title (or the NSID), then their detail and the granted
/// permissions in words with their NSIDs, so a person sees both what the app says and what it gets.
fn describe_set(scope: &str, include: &IncludePermission, set: &PermissionSet) -> ScopeLine {
    let title = set.title.clone().unwrap_or_else(|| format!("Permissions of “{}”", set.nsid.as_str()));
    let granted: Vec<String> = include.expand(set).permissions.iter().map(granted_words).collect();
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

/// One permission a set grants, for the set's line: its title in words and the NSIDs it names
/// (`create and delete Bluesky posts (app.bsky.feed.post)`).
fn granted_words(p: &Permission) -> String {
    let l = describe(&p.to_string());
    let (title, names) = match p {
        // A repo title starts with its verbs, lowercased inside the sentence.
        Permission::Repo(r) => {
            let mut t = l.title;
            if let Some(first) = t.get(..1) {
                t = first.to_lowercase() + &t[1..];
            }
            (t, nsids(&r.collections))
        }
        Permission::Rpc(r) => (l.title, nsids(&r.lxm)),
        _ => return l.title,
    };
    if names.is_empty() { title } else { format!("{title} ({})", names.join(", ")) }
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
        assert_eq!(r.title, "Create and delete Bluesky posts");
        assert_eq!(r.detail, "These records are public and kept in your repository.");
        assert_eq!(describe("repo:*").title, "Create, update and delete records of any type");
        assert!(describe("rpc:app.bsky.feed.getFeed?aud=*").sensitive);
        assert!(describe("rpc:*?aud=did:web:api.bsky.app%23bsky_appview").detail.contains("of any kind"));
        assert!(
            describe("rpc:*?aud=did:web:api.bsky.app%23bsky_appview").sensitive,
            "anything at one service"
        );
        assert_eq!(describe("blob:image/*").title, "Upload images");
        assert!(describe("blob:image/*").detail.ends_with(": image/*."));
        assert!(describe("identity:*").sensitive);
        assert!(describe("account:repo?action=manage").sensitive);
        assert!(!describe("account:email").sensitive);
        assert!(describe("include:com.example.authBasic").title.contains("com.example.authBasic"));
        assert_eq!(describe("nonsense:").title, "Another permission");
    }

    /// SCOPE-05: records are named as people know them (the scope string under each line keeps
    /// the NSIDs).
    #[test]
    fn scope05_repo_collections_in_words() {
        let l = describe("repo?collection=app.bsky.feed.like&collection=app.bsky.graph.follow&action=create");
        assert_eq!(l.title, "Create Bluesky likes and Bluesky follows");
        let l = describe("repo:com.example.cookbook.recipeCard?action=update");
        assert_eq!(l.title, "Update recipe card records", "an unknown type is named from its NSID");
        assert!(describe("repo:*?action=delete").detail.starts_with("Any record"));
    }

    /// SCOPE-06: the service is named (the Bluesky app view, a did:web host, else the DID) and the
    /// methods are put in words sharing their verb; two rpc lines never read the same.
    #[test]
    fn scope06_rpc_service_and_methods_in_words() {
        let appview = "aud=did:web:api.bsky.app%23bsky_appview";
        let one = describe(&format!("rpc:app.bsky.feed.getTimeline?{appview}"));
        assert_eq!(one.title, "Bluesky app view: get timeline");
        assert_eq!(
            one.detail,
            "Requests the app makes in your name to the Bluesky app view (did:web:api.bsky.app#bsky_appview)."
        );
        assert!(!one.sensitive);
        let many = describe(&format!(
            "rpc?lxm=app.bsky.feed.getFeed&lxm=app.bsky.feed.getPostThread&lxm=app.bsky.actor.getProfile&{appview}"
        ));
        assert_eq!(many.title, "Bluesky app view: get profile, feed and post thread");
        let mixed =
            describe("rpc?lxm=com.example.getThing&lxm=com.example.putThing&aud=did:web:svc.example.com%23x");
        assert_eq!(mixed.title, "svc.example.com: get thing and put thing", "no shared verb");
        assert!(mixed.detail.contains("svc.example.com (did:web:svc.example.com#x)"));
        let port = describe("rpc:com.example.getThing?aud=did:web:localhost%253A8080%23x");
        assert!(port.title.starts_with("localhost:8080: "), "{}", port.title);
        let plc = describe("rpc:com.example.getThing?aud=did:plc:abcdefghijklmnopqrstuvwx%23svc");
        assert_eq!(plc.title, "did:plc:abcdefghijklmnopqrstuvwx#svc: get thing");
        let any = describe("rpc:app.bsky.feed.getTimeline?aud=*");
        assert_eq!(any.title, "Any service: get timeline");
        assert!(any.detail.contains("any service, not only the ones you know"));
    }

    /// SCOPE-07: whole MIME families in words, other types as written.
    #[test]
    fn scope07_blob_types_in_words() {
        assert_eq!(describe("blob?accept=image/*&accept=video/*").title, "Upload images and videos");
        assert_eq!(describe("blob:*/*").title, "Upload files of any type");
        let png = describe("blob:image/png");
        assert_eq!(png.title, "Upload files");
        assert!(png.detail.ends_with(": image/png."), "{}", png.detail);
    }

    fn cookbook_set() -> PermissionSet {
        let nsid =
            atauth_identity::Nsid::new("com.example.cookbook.authFull").unwrap_or_else(|e| panic!("{e}"));
        let doc = serde_json::json!({
            "lexicon": 1,
            "id": "com.example.cookbook.authFull",
            "defs": { "main": {
                "type": "permission-set",
                "title": "Share recipes",
                "detail": "Publish and read recipes",
                "permissions": [
                    { "type": "permission", "resource": "repo", "collection": ["com.example.cookbook.recipe"] },
                    { "type": "permission", "resource": "rpc",
                      "lxm": ["com.example.cookbook.getFeed", "com.example.cookbook.getRecipe"], "inheritAud": true }
                ]
            } }
        });
        PermissionSet::from_document(&nsid, &doc).unwrap_or_else(|e| panic!("{e}"))
    }

    /// SCOPE-10: a resolved set is shown with its author's title and detail, then every grant in
    /// words with its NSIDs, the `rpc` ones at the `include:`'s audience.
    #[test]
    fn scope10_permission_set_title_detail_and_grants() {
        let scope =
            "include:com.example.cookbook.authFull?aud=did:web:api.cookbook.example%23appview atproto";
        let l = describe_all_with_sets(scope, &[cookbook_set()]);
        assert_eq!(l[0].scope, "atproto");
        assert_eq!(l[1].title, "Share recipes");
        assert_eq!(
            l[1].detail,
            "Publish and read recipes. It allows: create, update and delete recipe records \
             (com.example.cookbook.recipe); api.cookbook.example: get feed and recipe \
             (com.example.cookbook.getFeed, com.example.cookbook.getRecipe)."
        );
        assert!(!l[1].sensitive);
        // Without the set (not resolved), the NSID names it.
        let l = describe_all_with_sets::<PermissionSet>(scope, &[]);
        assert!(l[1].title.contains("com.example.cookbook.authFull"));
    }
}
