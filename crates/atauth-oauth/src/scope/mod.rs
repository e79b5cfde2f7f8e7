//! OAuth scopes under the atproto profile: the RFC 6749 grammar, `atproto`, transitional scopes and
//! granular permissions.
//!
//! Three layers, one file each, every item re-exported here:
//!
//! - `syntax`: [`Scope`], one scope token checked against SCOPE-02 (`%x21 / %x23-5B / %x5D-7E`,
//!   non-empty), and [`ScopeSyntax`], the generic `<resource>[:<positional>][?<k>=<v>&…]` structure
//!   (SCOPE-04) with its percent codec. Knows nothing about what a resource means.
//! - `values` and `permission`: the typed meaning of one scope. `values` holds the per-resource value
//!   types ([`RepoPermission`], [`RpcPermission`], [`Audience`], …); `permission` holds [`Permission`],
//!   its [`PermissionError`], the parse from a [`ScopeSyntax`] and the normalised `Display`:
//!   `atproto`, `transition:*` (SCOPE-03), `repo`, `rpc`, `blob`, `account`, `identity`
//!   (SCOPE-05 … 09) and `include:` (SCOPE-10, syntax only: sets are not resolved here). A new
//!   resource or parameter is a value type in `values` plus one arm in each `permission` match.
//! - `set`: [`ScopeSet`], a space-separated list (single spaces, SCOPE-02) with the `atproto` check
//!   (SCOPE-01) and the matching between sets (today string containment, SCOPE-12 / T-23). Matching a
//!   request against granted permissions belongs here.
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

mod access;
mod permission;
mod permission_set;
mod set;
mod syntax;
mod values;

pub use access::{Access, ScopeMissing};
pub use permission::{Permission, PermissionError};
pub use permission_set::{
    Expansion, IgnoredPermission, LexPermission, MAX_PERMISSION_SET_BYTES, MAX_PERMISSION_SET_ENTRIES,
    MAX_PERMISSION_SET_LANGS, MAX_PERMISSION_SET_LIST_LEN, PermissionSet, PermissionSetError,
};
pub use set::{MissingPermissionSet, ScopeSet};
pub use syntax::{MAX_SCOPE_STRING_LEN, Scope, ScopeSyntax, ScopeSyntaxError};
pub use values::{
    AccountAction, AccountAttr, AccountPermission, Audience, BlobPermission, IdentityAttr, IncludePermission,
    NsidOrWildcard, RepoAction, RepoPermission, RpcPermission, TransitionScope,
};

/// The scope every atproto authorization must include (SCOPE-01).
pub const ATPROTO_SCOPE: &str = "atproto";
