//! Requested scopes in plain words for the consent screen (AS-AUTHZ-04, SCOPE-03 … 10).
//!
//! Every scope becomes one line: a short title, a sentence of detail, and the raw scope string for
//! people who want it. `atproto` is marked required (it cannot be removed, AS-AUTHZ-04); powerful
//! permissions (identity changes, account management, direct messages) are marked sensitive so the
//! page can set them apart. `include:` permission sets are shown with their author's title and
//! detail and what they grant ([`describe_all_with_sets`]; the web layer resolves them).
//!
//! The words are in the page's language ([`Lang`]), from the catalog's [`ScopeText`]. Names taken
//! from the scope itself (an NSID's last segment, a service's DID) and what a permission set's
//! author wrote stay as they are.

use std::borrow::Borrow;

use atauth_oauth::Permission;
use atauth_oauth::scope::{
    AccountAction, AccountAttr, Audience, IdentityAttr, NsidOrWildcard, RepoAction, TransitionScope,
};
use atauth_oauth::scope::{IncludePermission, PermissionSet};

use super::i18n::{Lang, ScopeText, TitleDetail};

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

fn actions(w: &ScopeText, list: &[RepoAction]) -> String {
    let words: Vec<&str> = list
        .iter()
        .map(|a| match a {
            RepoAction::Create => w.create,
            RepoAction::Update => w.update,
            RepoAction::Delete => w.delete,
        })
        .collect();
    w.and_list(&words)
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
fn known_collection(w: &ScopeText, nsid: &str) -> Option<&'static str> {
    let c = &w.collections;
    Some(match nsid {
        "app.bsky.feed.post" => c.post,
        "app.bsky.feed.like" => c.like,
        "app.bsky.feed.repost" => c.repost,
        "app.bsky.feed.threadgate" => c.threadgate,
        "app.bsky.feed.postgate" => c.postgate,
        "app.bsky.feed.generator" => c.generator,
        "app.bsky.graph.follow" => c.follow,
        "app.bsky.graph.block" => c.block,
        "app.bsky.graph.list" => c.list,
        "app.bsky.graph.listitem" => c.listitem,
        "app.bsky.graph.starterpack" => c.starterpack,
        "app.bsky.actor.profile" => c.profile,
        _ => return None,
    })
}

/// What a `repo` permission covers, in words: `Bluesky posts`, `recipe records`.
fn collections_words(w: &ScopeText, items: &[NsidOrWildcard]) -> String {
    if items.iter().any(|i| matches!(i, NsidOrWildcard::Any)) {
        return w.any_records.to_owned();
    }
    let words: Vec<String> = nsids(items)
        .into_iter()
        .map(|n| known_collection(w, n).map_or_else(|| w.records_named(&name_words(n)), str::to_owned))
        .collect();
    w.and_list(&words)
}

/// A service's name for the title and its phrase for the detail: services people know by name,
/// else the `did:web` host, else the DID (with its fragment).
fn service_name(w: &ScopeText, aud: &Audience) -> (String, String) {
    match aud {
        Audience::Any => (w.any_service.to_owned(), w.any_service_detail().to_owned()),
        Audience::Service { did, fragment } => {
            let full = format!("{did}#{fragment}");
            let name = match (did.as_str(), fragment.as_str()) {
                ("did:web:api.bsky.app", "bsky_appview") => w.bsky_appview.to_owned(),
                ("did:web:api.bsky.chat", "bsky_chat") => w.bsky_chat.to_owned(),
                _ if did.is_web() => did.identifier().replace("%3A", ":"),
                _ => return (full.clone(), w.service(None, &full)),
            };
            let phrase = w.service(Some(&name), &full);
            (name, phrase)
        }
    }
}

/// The methods of an `rpc` permission in words, one verb shared where it can be:
/// `get feed, post thread and profile`.
fn methods_words(w: &ScopeText, items: &[NsidOrWildcard]) -> String {
    if items.iter().any(|i| matches!(i, NsidOrWildcard::Any)) {
        return w.any_request.to_owned();
    }
    let words: Vec<String> = nsids(items).into_iter().map(name_words).collect();
    let verb = words.first().and_then(|w| w.split_once(' ')).map(|(v, _)| v.to_owned());
    match verb {
        Some(v) if words.len() > 1 && words.iter().all(|w| w.starts_with(&format!("{v} "))) => {
            let rest: Vec<&str> = words.iter().map(|w| &w[v.len() + 1..]).collect();
            format!("{v} {}", w.and_list(&rest))
        }
        _ => w.and_list(&words),
    }
}

/// MIME types in words where they are whole families: `image/*` → images.
fn media_words(w: &ScopeText, accept: &[String]) -> Option<String> {
    let words: Option<Vec<&str>> = accept.iter().map(|a| w.media_family(a)).collect();
    words.map(|words| w.and_list(&words))
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

fn fixed(scope: &str, words: TitleDetail) -> ScopeLine {
    line(scope, words.title, words.detail)
}

/// Describes one scope string in `lang`.
pub fn describe(lang: Lang, scope: &str) -> ScopeLine {
    let w = lang.scope_text();
    let Ok(permission) = Permission::parse(scope) else {
        return fixed(scope, w.unknown);
    };
    match permission {
        Permission::Atproto => ScopeLine { required: true, ..fixed(scope, w.atproto) },
        Permission::Transition(TransitionScope::Generic) => fixed(scope, w.generic),
        Permission::Transition(TransitionScope::ChatBsky) => {
            ScopeLine { sensitive: true, ..fixed(scope, w.chat) }
        }
        Permission::Transition(TransitionScope::Email) => fixed(scope, w.email_read),
        Permission::Repo(p) => {
            // The NSIDs are in the scope string shown under every line.
            let detail =
                if nsids(&p.collections).is_empty() { w.repo_any_detail } else { w.repo_named_detail };
            let title = w.repo_title(&actions(w, &p.actions), &collections_words(w, &p.collections));
            line(scope, title, detail)
        }
        Permission::Rpc(p) => {
            let (name, service) = service_name(w, &p.aud);
            let any_method = nsids(&p.lxm).is_empty();
            ScopeLine {
                // Any service, or anything at all at one: worth a second look.
                sensitive: p.aud == Audience::Any || any_method,
                ..line(
                    scope,
                    format!("{name}: {}", methods_words(w, &p.lxm)),
                    w.rpc_detail(&service, any_method),
                )
            }
        }
        Permission::Blob(p) => {
            let any = p.accept.iter().any(|a| a == "*/*");
            let title = w.upload(media_words(w, &p.accept).as_deref(), any);
            line(scope, title, w.upload_detail(&p.accept.join(", ")))
        }
        Permission::Account(p) => {
            let words = match (p.attr, p.action) {
                (AccountAttr::Email, AccountAction::Read) => w.email_read,
                (AccountAttr::Email, AccountAction::Manage) => w.email_manage,
                (AccountAttr::Repo, AccountAction::Read) => w.repo_read,
                (AccountAttr::Repo, AccountAction::Manage) => w.repo_manage,
                (AccountAttr::Status, AccountAction::Read) => w.status_read,
                (AccountAttr::Status, AccountAction::Manage) => w.status_manage,
            };
            ScopeLine { sensitive: p.action == AccountAction::Manage, ..fixed(scope, words) }
        }
        Permission::Identity(attr) => {
            let words = match attr {
                IdentityAttr::Handle => w.identity_handle,
                IdentityAttr::Any => w.identity_any,
            };
            ScopeLine { sensitive: true, ..fixed(scope, words) }
        }
        Permission::Include(p) => line(scope, w.permissions_of(p.nsid.as_str()), w.include_detail),
        _ => fixed(scope, w.unknown),
    }
}

/// Describes a space-separated scope in `lang`, `atproto` first, then in the order requested.
pub fn describe_all(lang: Lang, scope: &str) -> Vec<ScopeLine> {
    describe_all_with_sets::<PermissionSet>(lang, scope, &[])
}

/// [`describe_all`], with each `include:` described by its resolved permission set (SCOPE-10): the
/// set's own `title` and `detail` as its author wrote them, followed by what it grants in plain
/// words. A set missing from `sets` is named by its NSID.
/// `sets` may hold the sets or shared references to them (`Arc<PermissionSet>`).
pub fn describe_all_with_sets<S: Borrow<PermissionSet>>(
    lang: Lang,
    scope: &str,
    sets: &[S],
) -> Vec<ScopeLine> {
    let mut lines: Vec<ScopeLine> = scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| match Permission::parse(s) {
            Ok(Permission::Include(include)) => {
                match sets.iter().map(Borrow::borrow).find(|set| set.nsid == include.nsid) {
                    Some(set) => describe_set(lang, s, &include, set),
                    None => describe(lang, s),
                }
            }
            _ => describe(lang, s),
        })
        .collect();
    lines.sort_by_key(|l| !l.required);
    lines
}

/// One `include:` line: the author's title (or the NSID), then their detail and the granted
/// permissions in words with their NSIDs, so a person sees both what the app says and what it gets.
fn describe_set(lang: Lang, scope: &str, include: &IncludePermission, set: &PermissionSet) -> ScopeLine {
    let w = lang.scope_text();
    let title = set.title.clone().unwrap_or_else(|| w.permissions_of(set.nsid.as_str()));
    let granted: Vec<String> =
        include.expand(set).permissions.iter().map(|p| granted_words(lang, p)).collect();
    let mut detail = set.detail.clone().unwrap_or_default();
    if !granted.is_empty() {
        if !detail.is_empty() && !detail.ends_with('.') {
            detail.push('.');
        }
        if !detail.is_empty() {
            detail.push(' ');
        }
        detail.push_str(w.it_allows);
        detail.push_str(&granted.join("; "));
        detail.push('.');
    }
    ScopeLine { sensitive: granted.is_empty(), ..line(scope, title, detail) }
}

/// One permission a set grants, for the set's line: its title in words and the NSIDs it names
/// (`create and delete Bluesky posts (app.bsky.feed.post)`).
fn granted_words(lang: Lang, p: &Permission) -> String {
    let l = describe(lang, &p.to_string());
    let (title, names) = match p {
        Permission::Repo(r) => (lang.scope_text().in_sentence(l.title), nsids(&r.collections)),
        Permission::Rpc(r) => (l.title, nsids(&r.lxm)),
        _ => return l.title,
    };
    if names.is_empty() { title } else { format!("{title} ({})", names.join(", ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EN: Lang = Lang::En;

    #[test]
    fn scope_03_transitional_scopes_in_plain_words() {
        let l = describe_all(EN, "transition:generic atproto transition:email transition:chat.bsky");
        assert_eq!(l[0].scope, "atproto", "atproto first");
        assert!(l[0].required && !l[1].required);
        assert_eq!(l[1].title, "Read and change your account data");
        assert!(l[1].detail.contains("Not your direct messages"));
        assert_eq!(l[2].title, "See your email address");
        assert!(l[3].sensitive, "chat is sensitive");
    }

    #[test]
    fn granular_permissions() {
        let r = describe(EN, "repo:app.bsky.feed.post?action=create&action=delete");
        assert_eq!(r.title, "Create and delete Bluesky posts");
        assert_eq!(r.detail, "These records are public and kept in your repository.");
        assert_eq!(describe(EN, "repo:*").title, "Create, update and delete records of any type");
        assert!(describe(EN, "rpc:app.bsky.feed.getFeed?aud=*").sensitive);
        assert!(describe(EN, "rpc:*?aud=did:web:api.bsky.app%23bsky_appview").detail.contains("of any kind"));
        assert!(
            describe(EN, "rpc:*?aud=did:web:api.bsky.app%23bsky_appview").sensitive,
            "anything at one service"
        );
        assert_eq!(describe(EN, "blob:image/*").title, "Upload images");
        assert!(describe(EN, "blob:image/*").detail.ends_with(": image/*."));
        assert!(describe(EN, "identity:*").sensitive);
        assert!(describe(EN, "account:repo?action=manage").sensitive);
        assert!(!describe(EN, "account:email").sensitive);
        assert!(describe(EN, "include:com.example.authBasic").title.contains("com.example.authBasic"));
        assert_eq!(describe(EN, "nonsense:").title, "Another permission");
    }

    /// SCOPE-05: records are named as people know them (the scope string under each line keeps
    /// the NSIDs).
    #[test]
    fn scope05_repo_collections_in_words() {
        let l =
            describe(EN, "repo?collection=app.bsky.feed.like&collection=app.bsky.graph.follow&action=create");
        assert_eq!(l.title, "Create Bluesky likes and Bluesky follows");
        let l = describe(EN, "repo:com.example.cookbook.recipeCard?action=update");
        assert_eq!(l.title, "Update recipe card records", "an unknown type is named from its NSID");
        assert!(describe(EN, "repo:*?action=delete").detail.starts_with("Any record"));
    }

    /// SCOPE-06: the service is named (the Bluesky app view, a did:web host, else the DID) and the
    /// methods are put in words sharing their verb; two rpc lines never read the same.
    #[test]
    fn scope06_rpc_service_and_methods_in_words() {
        let appview = "aud=did:web:api.bsky.app%23bsky_appview";
        let one = describe(EN, &format!("rpc:app.bsky.feed.getTimeline?{appview}"));
        assert_eq!(one.title, "Bluesky app view: get timeline");
        assert_eq!(
            one.detail,
            "Requests the app makes in your name to the Bluesky app view (did:web:api.bsky.app#bsky_appview)."
        );
        assert!(!one.sensitive);
        let many = describe(
            EN,
            &format!(
                "rpc?lxm=app.bsky.feed.getFeed&lxm=app.bsky.feed.getPostThread&lxm=app.bsky.actor.getProfile&{appview}"
            ),
        );
        assert_eq!(many.title, "Bluesky app view: get profile, feed and post thread");
        let mixed = describe(
            EN,
            "rpc?lxm=com.example.getThing&lxm=com.example.putThing&aud=did:web:svc.example.com%23x",
        );
        assert_eq!(mixed.title, "svc.example.com: get thing and put thing", "no shared verb");
        assert!(mixed.detail.contains("svc.example.com (did:web:svc.example.com#x)"));
        let port = describe(EN, "rpc:com.example.getThing?aud=did:web:localhost%253A8080%23x");
        assert!(port.title.starts_with("localhost:8080: "), "{}", port.title);
        let plc = describe(EN, "rpc:com.example.getThing?aud=did:plc:abcdefghijklmnopqrstuvwx%23svc");
        assert_eq!(plc.title, "did:plc:abcdefghijklmnopqrstuvwx#svc: get thing");
        let any = describe(EN, "rpc:app.bsky.feed.getTimeline?aud=*");
        assert_eq!(any.title, "Any service: get timeline");
        assert!(any.detail.contains("any service, not only the ones you know"));
    }

    /// SCOPE-07: whole MIME families in words, other types as written.
    #[test]
    fn scope07_blob_types_in_words() {
        assert_eq!(describe(EN, "blob?accept=image/*&accept=video/*").title, "Upload images and videos");
        assert_eq!(describe(EN, "blob:*/*").title, "Upload files of any type");
        let png = describe(EN, "blob:image/png");
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
        let l = describe_all_with_sets(EN, scope, &[cookbook_set()]);
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
        let l = describe_all_with_sets::<PermissionSet>(EN, scope, &[]);
        assert!(l[1].title.contains("com.example.cookbook.authFull"));
    }

    const DE: Lang = Lang::De;

    /// Every kind of permission in German: the catalog's words, the record types people know by
    /// name, the verbs after the noun, the names taken from the scope as they are.
    #[test]
    fn german_descriptions() {
        let l = describe_all(DE, "transition:generic atproto transition:email transition:chat.bsky");
        assert_eq!(l[0].title, "Wissen, wer Sie sind");
        assert!(l[0].required);
        assert_eq!(l[1].title, "Ihre Kontodaten lesen und ändern");
        assert!(l[1].detail.contains("Nicht Ihre Direktnachrichten"));
        assert_eq!(l[2].title, "Ihre E-Mail-Adresse sehen");
        assert_eq!(l[3].title, "Ihre Direktnachrichten lesen und senden");
        assert!(l[3].sensitive);

        let r = describe(DE, "repo:app.bsky.feed.post?action=create&action=delete");
        assert_eq!(r.title, "Bluesky-Beiträge erstellen und löschen");
        assert_eq!(r.detail, "Diese Datensätze sind öffentlich und werden in Ihrem Repository gespeichert.");
        assert_eq!(describe(DE, "repo:*").title, "Datensätze jeder Art erstellen, ändern und löschen");
        assert_eq!(
            describe(DE, "repo?collection=app.bsky.feed.like&collection=app.bsky.graph.follow&action=create")
                .title,
            "Bluesky-Likes und Bluesky-Follows erstellen"
        );
        assert_eq!(
            describe(DE, "repo:com.example.cookbook.recipeCard?action=update").title,
            "Datensätze vom Typ „recipe card“ ändern"
        );

        let appview = "aud=did:web:api.bsky.app%23bsky_appview";
        let one = describe(DE, &format!("rpc:app.bsky.feed.getTimeline?{appview}"));
        assert_eq!(one.title, "Bluesky-App-View: get timeline", "method names come from the NSID");
        assert_eq!(
            one.detail,
            "Anfragen, die die App in Ihrem Namen an den Dienst Bluesky-App-View \
             (did:web:api.bsky.app#bsky_appview) stellt."
        );
        let any_method = describe(DE, &format!("rpc:*?{appview}"));
        assert_eq!(any_method.title, "Bluesky-App-View: beliebige Anfragen");
        assert!(any_method.detail.starts_with("Beliebige Anfragen jeder Art"), "{}", any_method.detail);
        assert!(any_method.sensitive);
        let any_service = describe(DE, "rpc:app.bsky.feed.getTimeline?aud=*");
        assert_eq!(any_service.title, "Jeder Dienst: get timeline");
        assert_eq!(
            any_service.detail,
            "Anfragen, die die App in Ihrem Namen an jeden beliebigen Dienst (auch solche, die Sie nicht \
             kennen) stellt."
        );
        assert_eq!(
            describe(DE, "rpc:com.example.getThing?aud=did:plc:abcdefghijklmnopqrstuvwx%23svc").detail,
            "Anfragen, die die App in Ihrem Namen an den Dienst did:plc:abcdefghijklmnopqrstuvwx#svc stellt."
        );

        assert_eq!(describe(DE, "blob?accept=image/*&accept=video/*").title, "Bilder und Videos hochladen");
        assert_eq!(describe(DE, "blob:*/*").title, "Dateien jeder Art hochladen");
        assert_eq!(describe(DE, "blob:image/png").title, "Dateien hochladen");
        assert!(describe(DE, "blob:image/png").detail.ends_with(": image/png."));
        assert_eq!(
            describe(DE, "account:status?action=manage").title,
            "Ihr Konto deaktivieren oder reaktivieren"
        );
        assert_eq!(describe(DE, "identity:*").title, "Ihre Identität kontrollieren");
        assert_eq!(
            describe(DE, "include:com.example.authBasic").title,
            "Berechtigungen von „com.example.authBasic“"
        );
        assert_eq!(describe(DE, "nonsense:").title, "Eine andere Berechtigung");
    }

    /// A resolved set in German: its author's words as written, what it grants in German.
    #[test]
    fn german_permission_set() {
        let scope =
            "include:com.example.cookbook.authFull?aud=did:web:api.cookbook.example%23appview atproto";
        let l = describe_all_with_sets(DE, scope, &[cookbook_set()]);
        assert_eq!(l[1].title, "Share recipes");
        assert_eq!(
            l[1].detail,
            "Publish and read recipes. Sie erlaubt: Datensätze vom Typ „recipe“ erstellen, ändern und löschen \
             (com.example.cookbook.recipe); api.cookbook.example: get feed und recipe \
             (com.example.cookbook.getFeed, com.example.cookbook.getRecipe)."
        );
    }
}
