//! Permission sets (SCOPE-10): a `permission-set` Lexicon document, checked and bounded, and the
//! expansion of `include:<nsid>[?aud=…]` into the concrete `repo:` / `rpc:` permissions it grants.
//!
//! Fetching the document is not done here (atauth-identity resolves it and hands over the record's
//! JSON). The rules are the reference's (`@atproto/lex-document` schema for the document,
//! `@atproto/oauth-scopes` `IncludeScope` for the expansion):
//!
//! - the document is refused as a whole when it is not a Lexicon v1 document whose `id` is the
//!   requested NSID and whose `defs.main` is a `permission-set` with a `permissions` list of
//!   `{ "type": "permission", "resource": "…", … }` entries whose values are strings, integers,
//!   booleans or lists of one of those; or when it is larger than the limits below;
//! - each entry is then expanded on its own, and an entry that does not give a valid permission is
//!   ignored alone (never a partial grant): only `repo` and `rpc`; values in JSON lists for `collection`,
//!   `action`, `lxm`; every collection / method under the set's own namespace authority (the NSID
//!   up to its last `.`), so no `*`; `rpc` `aud` only `"*"`, or `inheritAud: true` (without `aud`)
//!   when the `include:` names an `aud`; unknown parameters ignore the entry.

use std::collections::BTreeMap;
use std::fmt;

use atauth_syntax::Nsid;
use serde_json::Value;

use super::permission::{ParamValue, Params};
use super::{Audience, IncludePermission, NsidOrWildcard, Permission, PermissionError};

/// The largest permission-set document accepted, in bytes of JSON (a real set is a few KiB).
pub const MAX_PERMISSION_SET_BYTES: usize = 64 * 1024;
/// The most entries a set's `permissions` list may have.
pub const MAX_PERMISSION_SET_ENTRIES: usize = 256;
/// The most values one entry's parameter list may have.
pub const MAX_PERMISSION_SET_LIST_LEN: usize = 256;
/// The most languages a `title:lang` / `detail:lang` map may have.
pub const MAX_PERMISSION_SET_LANGS: usize = 64;

/// Why a permission-set document is refused (SCOPE-10). Resolution at PAR maps every variant to
/// `invalid_scope`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PermissionSetError {
    /// The document is larger than [`MAX_PERMISSION_SET_BYTES`].
    #[error("permission set document is {len} bytes; the limit is {MAX_PERMISSION_SET_BYTES}")]
    TooLarge {
        /// The size found.
        len: usize,
    },
    /// Not JSON.
    #[error("permission set document is not JSON: {0}")]
    Json(String),
    /// Not a Lexicon v1 document (`lexicon: 1`, `id`, `defs`).
    #[error("not a Lexicon document: {0}")]
    NotLexicon(&'static str),
    /// The document's `id` is not the NSID asked for.
    #[error("Lexicon document id {found:?} is not the requested {expected:?}")]
    IdMismatch {
        /// The NSID asked for.
        expected: String,
        /// The document's `id`.
        found: String,
    },
    /// `defs.main` is missing or not a `permission-set`.
    #[error("Lexicon document is not a permission set (defs.main.type is {found:?})")]
    NotPermissionSet {
        /// The `type` found, if any.
        found: Option<String>,
    },
    /// A field of the set has the wrong shape.
    #[error("permission set field `{field}` is invalid: {reason}")]
    InvalidField {
        /// The field (`permissions`, `title`, `title:lang`, …).
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A `permissions` entry has the wrong shape (not a permission object, a value of another type).
    #[error("permission set entry {index} is invalid: {reason}")]
    InvalidEntry {
        /// Its index in `permissions`.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// More entries, list values or languages than the limits allow.
    #[error("permission set has too many {what} ({count}; the limit is {max})")]
    TooMany {
        /// What.
        what: &'static str,
        /// How many were found.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// One entry of a set's `permissions` list, as written: the resource and its other parameters
/// (`type` and `resource` removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexPermission {
    /// `resource` (`repo`, `rpc`, or anything: unknown resources are ignored at expansion).
    pub resource: String,
    /// The other keys, in document order.
    pub params: Vec<(String, Value)>,
}

/// A checked `permission-set` Lexicon (SCOPE-10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionSet {
    /// The set's NSID (the document's `id`).
    pub nsid: Nsid,
    /// `title`: a short name for the consent screen.
    pub title: Option<String>,
    /// `title:lang`: translations of the title by language tag.
    pub title_lang: BTreeMap<String, String>,
    /// `detail`: a sentence for the consent screen.
    pub detail: Option<String>,
    /// `detail:lang`: translations of the detail by language tag.
    pub detail_lang: BTreeMap<String, String>,
    /// `description`: for developers, not users.
    pub description: Option<String>,
    /// The entries, in order.
    pub permissions: Vec<LexPermission>,
}

/// What an `include:` grants: the permissions, in the set's order, and the entries ignored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expansion {
    /// The granted `repo:` / `rpc:` permissions.
    pub permissions: Vec<Permission>,
    /// The entries that grant nothing, with why.
    pub ignored: Vec<IgnoredPermission>,
}

/// A permission-set entry that grants nothing (SCOPE-10: ignored alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredPermission {
    /// Its index in `permissions`.
    pub index: usize,
    /// Why.
    pub reason: String,
}

impl PermissionSet {
    /// Reads and checks the JSON of the `com.atproto.lexicon.schema` record published for `nsid`,
    /// refusing more than [`MAX_PERMISSION_SET_BYTES`] before parsing.
    pub fn from_json(nsid: &Nsid, json: &[u8]) -> Result<Self, PermissionSetError> {
        if json.len() > MAX_PERMISSION_SET_BYTES {
            return Err(PermissionSetError::TooLarge { len: json.len() });
        }
        let doc: Value = serde_json::from_slice(json).map_err(|e| PermissionSetError::Json(e.to_string()))?;
        Self::from_document(nsid, &doc)
    }

    /// Checks an already parsed document (the record's value) published for `nsid`. The size limit
    /// applies to its compact JSON form.
    pub fn from_document(nsid: &Nsid, doc: &Value) -> Result<Self, PermissionSetError> {
        let len = serde_json::to_vec(doc).map(|v| v.len()).unwrap_or(usize::MAX);
        if len > MAX_PERMISSION_SET_BYTES {
            return Err(PermissionSetError::TooLarge { len });
        }
        let doc = doc.as_object().ok_or(PermissionSetError::NotLexicon("not a JSON object"))?;
        if doc.get("lexicon").and_then(Value::as_i64) != Some(1)
            || doc.get("lexicon").is_some_and(Value::is_f64)
        {
            return Err(PermissionSetError::NotLexicon("`lexicon` is not 1"));
        }
        let id =
            doc.get("id").and_then(Value::as_str).ok_or(PermissionSetError::NotLexicon("`id` is missing"))?;
        if Nsid::new(id).is_err() {
            return Err(PermissionSetError::NotLexicon("`id` is not an NSID"));
        }
        if id != nsid.as_str() {
            return Err(PermissionSetError::IdMismatch { expected: nsid.to_string(), found: id.to_owned() });
        }
        if doc.get("revision").is_some_and(|r| !is_integer(r)) {
            return Err(PermissionSetError::NotLexicon("`revision` is not an integer"));
        }
        if doc.get("description").is_some_and(|d| !d.is_string()) {
            return Err(PermissionSetError::NotLexicon("`description` is not a string"));
        }
        let defs = doc
            .get("defs")
            .and_then(Value::as_object)
            .ok_or(PermissionSetError::NotLexicon("`defs` is not an object"))?;
        let main = defs.get("main").and_then(Value::as_object);
        let kind = main.and_then(|m| m.get("type")).and_then(Value::as_str);
        let main = match (main, kind) {
            (Some(m), Some("permission-set")) => m,
            _ => return Err(PermissionSetError::NotPermissionSet { found: kind.map(str::to_owned) }),
        };

        let entries = main
            .get("permissions")
            .and_then(Value::as_array)
            .ok_or(PermissionSetError::InvalidField { field: "permissions", reason: "not a list" })?;
        if entries.len() > MAX_PERMISSION_SET_ENTRIES {
            return Err(PermissionSetError::TooMany {
                what: "permissions",
                count: entries.len(),
                max: MAX_PERMISSION_SET_ENTRIES,
            });
        }
        let mut permissions = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            permissions.push(lex_permission(index, entry)?);
        }
        Ok(Self {
            nsid: nsid.clone(),
            title: text(main, "title")?,
            title_lang: lang_map(main, "title:lang")?,
            detail: text(main, "detail")?,
            detail_lang: lang_map(main, "detail:lang")?,
            description: text(main, "description")?,
            permissions,
        })
    }

    /// The title in the first of `langs` the set translates it to (exact tag, then the primary
    /// language: `pt-BR` falls back to `pt`), else the plain `title`.
    pub fn title_for(&self, langs: &[&str]) -> Option<&str> {
        localized(&self.title_lang, langs).or(self.title.as_deref())
    }

    /// The detail in the first of `langs` the set translates it to, else the plain `detail`.
    pub fn detail_for(&self, langs: &[&str]) -> Option<&str> {
        localized(&self.detail_lang, langs).or(self.detail.as_deref())
    }

    /// What the set grants through an `include:` with audience `aud` (REF
    /// `IncludeScope.buildPermissions`): each entry on its own, in order.
    pub fn expand(&self, aud: Option<&Audience>) -> Expansion {
        let mut out = Expansion::default();
        for (index, entry) in self.permissions.iter().enumerate() {
            match self.expand_entry(entry, aud) {
                Ok(p) => out.permissions.push(p),
                Err(reason) => out.ignored.push(IgnoredPermission { index, reason }),
            }
        }
        out
    }

    fn expand_entry(
        &self,
        entry: &LexPermission,
        include_aud: Option<&Audience>,
    ) -> Result<Permission, String> {
        let get = |k: &str| entry.params.iter().find(|(key, _)| key == k).map(|(_, v)| v);
        let inherited;
        let mut params: Vec<(&str, ParamValue<'_>)> =
            entry.params.iter().map(|(k, v)| (k.as_str(), param_value(v))).collect();
        match entry.resource.as_str() {
            "repo" => {}
            "rpc" => {
                // A fixed audience other than `*` is not allowed in a set (SCOPE-10).
                if get("aud").is_some_and(|a| a.as_str() != Some("*")) {
                    return Err("rpc `aud` other than \"*\"".to_owned());
                }
                // `inheritAud: true` without `aud` takes the include's `aud` when it has one;
                // otherwise the `inheritAud` key stays and, unknown to `rpc`, ignores the entry.
                if let (Some(Value::Bool(true)), None, Some(aud)) =
                    (get("inheritAud"), get("aud"), include_aud)
                {
                    inherited = aud.to_string();
                    params.retain(|(k, _)| *k != "inheritAud");
                    params.insert(0, ("aud", ParamValue::One(&inherited)));
                }
            }
            other => return Err(format!("resource {other:?} is not allowed in a permission set")),
        }
        let p = Params { positional: None, named: params, lexicon: true };
        let permission =
            Permission::from_params(&entry.resource, &p).map_err(|e: PermissionError| e.to_string())?;
        let names: &[NsidOrWildcard] = match &permission {
            Permission::Repo(r) => &r.collections,
            Permission::Rpc(r) => &r.lxm,
            _ => return Err("not a repo or rpc permission".to_owned()),
        };
        if let Some(outside) = names.iter().find(|n| !self.is_parent_authority_of(n)) {
            return Err(format!("{:?} is outside the namespace of {}", outside.as_str(), self.nsid));
        }
        Ok(permission)
    }

    /// SCOPE-10 namespace authority: `other` starts with the set's NSID up to and including its
    /// last `.`, and has something after it; `*` never.
    fn is_parent_authority_of(&self, other: &NsidOrWildcard) -> bool {
        let NsidOrWildcard::Nsid(other) = other else { return false };
        let own = self.nsid.as_str();
        let Some(dot) = own.rfind('.') else { return false };
        other.as_str().len() > dot + 1 && other.as_str().as_bytes()[..=dot] == own.as_bytes()[..=dot]
    }
}

impl IncludePermission {
    /// What this `include:` grants from its resolved set (SCOPE-10). A set for another NSID grants
    /// nothing.
    pub fn expand(&self, set: &PermissionSet) -> Expansion {
        if set.nsid != self.nsid {
            let reason = format!("permission set {} is not {}", set.nsid, self.nsid);
            return Expansion {
                permissions: Vec::new(),
                ignored: (0..set.permissions.len())
                    .map(|index| IgnoredPermission { index, reason: reason.clone() })
                    .collect(),
            };
        }
        set.expand(self.aud.as_ref())
    }
}

impl fmt::Display for LexPermission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.resource)?;
        for (k, v) in &self.params {
            write!(f, " {k}={v}")?;
        }
        Ok(())
    }
}

fn param_value(v: &Value) -> ParamValue<'_> {
    match v {
        Value::String(s) => ParamValue::One(s),
        Value::Array(a) => match a.iter().map(Value::as_str).collect::<Option<Vec<&str>>>() {
            Some(list) => ParamValue::List(list),
            None => ParamValue::Other,
        },
        _ => ParamValue::Other,
    }
}

fn is_integer(v: &Value) -> bool {
    v.is_i64()
        || v.is_u64()
        || v.as_f64().is_some_and(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_991.0)
}

/// Lexicon `params` value types: boolean, integer, string, or a list of one of those.
fn is_param_value(v: &Value) -> bool {
    match v {
        Value::Bool(_) | Value::String(_) => true,
        Value::Number(_) => is_integer(v),
        Value::Array(a) => {
            a.iter().all(Value::is_boolean) || a.iter().all(is_integer) || a.iter().all(Value::is_string)
        }
        _ => false,
    }
}

fn lex_permission(index: usize, entry: &Value) -> Result<LexPermission, PermissionSetError> {
    let bad = |reason| PermissionSetError::InvalidEntry { index, reason };
    let obj = entry.as_object().ok_or_else(|| bad("not an object"))?;
    if obj.get("type").and_then(Value::as_str) != Some("permission") {
        return Err(bad("`type` is not \"permission\""));
    }
    let resource =
        obj.get("resource").and_then(Value::as_str).ok_or_else(|| bad("`resource` is not a string"))?;
    if resource.is_empty() {
        return Err(bad("`resource` is empty"));
    }
    let mut params = Vec::new();
    for (k, v) in obj {
        if !is_param_value(v) {
            return Err(bad("a value is not a boolean, integer, string or list of one of those"));
        }
        if let Value::Array(a) = v
            && a.len() > MAX_PERMISSION_SET_LIST_LEN
        {
            return Err(PermissionSetError::TooMany {
                what: "values in one parameter",
                count: a.len(),
                max: MAX_PERMISSION_SET_LIST_LEN,
            });
        }
        if k != "type" && k != "resource" {
            params.push((k.clone(), v.clone()));
        }
    }
    Ok(LexPermission { resource: resource.to_owned(), params })
}

fn text(
    main: &serde_json::Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, PermissionSetError> {
    match main.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(PermissionSetError::InvalidField { field, reason: "not a string" }),
    }
}

fn lang_map(
    main: &serde_json::Map<String, Value>,
    field: &'static str,
) -> Result<BTreeMap<String, String>, PermissionSetError> {
    let Some(v) = main.get(field) else { return Ok(BTreeMap::new()) };
    let map = v.as_object().ok_or(PermissionSetError::InvalidField { field, reason: "not an object" })?;
    if map.len() > MAX_PERMISSION_SET_LANGS {
        return Err(PermissionSetError::TooMany {
            what: field,
            count: map.len(),
            max: MAX_PERMISSION_SET_LANGS,
        });
    }
    let mut out = BTreeMap::new();
    for (lang, text) in map {
        if !is_language_tag(lang) {
            return Err(PermissionSetError::InvalidField { field, reason: "a key is not a language tag" });
        }
        let text = text
            .as_str()
            .ok_or(PermissionSetError::InvalidField { field, reason: "a value is not a string" })?;
        out.insert(lang.clone(), text.to_owned());
    }
    Ok(out)
}

/// A well-formed BCP 47 tag, simplified: a 2–8 letter primary subtag (or `i` / `x`) and
/// 1–8 character alphanumeric subtags.
fn is_language_tag(s: &str) -> bool {
    let mut parts = s.split('-');
    let Some(primary) = parts.next() else { return false };
    let primary_ok = ((2..=8).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_alphabetic()))
        || primary.eq_ignore_ascii_case("i")
        || primary.eq_ignore_ascii_case("x");
    primary_ok && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn localized<'a>(map: &'a BTreeMap<String, String>, langs: &[&str]) -> Option<&'a str> {
    let find = |tag: &str| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(tag)).map(|(_, v)| v.as_str());
    langs.iter().find_map(|l| find(l).or_else(|| l.split('-').next().and_then(find)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn nsid() -> Nsid {
        Nsid::new("app.example.authFull").unwrap()
    }

    fn doc(permissions: Value) -> Value {
        let mut d = json!({"lexicon": 1, "id": "app.example.authFull",
                           "defs": {"main": {"type": "permission-set"}}});
        d["defs"]["main"]["permissions"] = permissions;
        d
    }

    #[test]
    fn scope_10_refuses_absurd_sizes_with_a_clear_error() {
        // A 5 MB record: refused before parsing.
        let big = vec![b' '; 5 * 1024 * 1024];
        assert_eq!(
            PermissionSet::from_json(&nsid(), &big),
            Err(PermissionSetError::TooLarge { len: big.len() })
        );
        // The same limit on an already parsed value.
        let padded = doc(json!([{"type": "permission", "resource": "repo", "collection": ["app.example.a"],
                                 "pad": "x".repeat(MAX_PERMISSION_SET_BYTES)}]));
        assert!(matches!(
            PermissionSet::from_document(&nsid(), &padded),
            Err(PermissionSetError::TooLarge { .. })
        ));
        let entry = json!({"type": "permission", "resource": "repo", "collection": ["app.example.a"]});
        let many = doc(Value::Array(vec![entry; MAX_PERMISSION_SET_ENTRIES + 1]));
        assert_eq!(
            PermissionSet::from_document(&nsid(), &many),
            Err(PermissionSetError::TooMany {
                what: "permissions",
                count: MAX_PERMISSION_SET_ENTRIES + 1,
                max: MAX_PERMISSION_SET_ENTRIES
            })
        );
        let long_list = doc(json!([{"type": "permission", "resource": "repo",
                                    "collection": vec!["app.example.a"; MAX_PERMISSION_SET_LIST_LEN + 1]}]));
        assert!(matches!(
            PermissionSet::from_document(&nsid(), &long_list),
            Err(PermissionSetError::TooMany { what: "values in one parameter", .. })
        ));
        assert!(matches!(PermissionSet::from_json(&nsid(), b"{not json"), Err(PermissionSetError::Json(_))));
    }

    #[test]
    fn scope_10_document_shape() {
        let ok = doc(json!([]));
        assert!(PermissionSet::from_document(&nsid(), &ok).is_ok());
        let other = Nsid::new("app.example.other").unwrap();
        assert_eq!(
            PermissionSet::from_document(&other, &ok),
            Err(PermissionSetError::IdMismatch {
                expected: "app.example.other".into(),
                found: "app.example.authFull".into()
            })
        );
        let query = json!({"lexicon": 1, "id": "app.example.authFull", "defs": {"main": {"type": "query"}}});
        assert_eq!(
            PermissionSet::from_document(&nsid(), &query),
            Err(PermissionSetError::NotPermissionSet { found: Some("query".into()) })
        );
        let float = json!({"lexicon": 1.5, "id": "app.example.authFull", "defs": {}});
        assert!(matches!(
            PermissionSet::from_document(&nsid(), &float),
            Err(PermissionSetError::NotLexicon(_))
        ));
        let bad_lang = doc(json!([]));
        let mut bad_lang = bad_lang;
        bad_lang["defs"]["main"]["title:lang"] = json!({"not a tag": "x"});
        assert!(matches!(
            PermissionSet::from_document(&nsid(), &bad_lang),
            Err(PermissionSetError::InvalidField { field: "title:lang", .. })
        ));
    }

    #[test]
    fn scope_10_self_include_and_other_authority_grant_nothing() {
        let set = PermissionSet::from_document(
            &nsid(),
            &doc(json!([
                {"type": "permission", "resource": "include", "nsid": "app.example.authFull"},
                {"type": "permission", "resource": "repo", "collection": ["com.other.post"]},
                {"type": "permission", "resource": "rpc", "lxm": ["app.example.get"], "inheritAud": true},
                {"type": "permission", "resource": "repo", "collection": ["app.example.post"]}
            ])),
        )
        .unwrap();
        let Ok(Permission::Include(include)) = Permission::parse("include:app.example.authFull") else {
            unreachable!()
        };
        let e = include.expand(&set);
        assert_eq!(
            e.permissions.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["repo:app.example.post"]
        );
        assert_eq!(e.ignored.iter().map(|i| i.index).collect::<Vec<_>>(), [0, 1, 2]);
        // An include of another NSID grants nothing from this set.
        let Ok(Permission::Include(other)) = Permission::parse("include:app.example.other") else {
            unreachable!()
        };
        let e = other.expand(&set);
        assert!(e.permissions.is_empty());
        assert_eq!(e.ignored.len(), 4);
    }

    #[test]
    fn language_fallback() {
        let mut d = doc(json!([]));
        d["defs"]["main"]["title"] = json!("Full");
        d["defs"]["main"]["title:lang"] = json!({"pt": "Tudo", "en-GB": "Full (GB)"});
        let set = PermissionSet::from_document(&nsid(), &d).unwrap();
        assert_eq!(set.title_for(&["pt-BR"]), Some("Tudo"));
        assert_eq!(set.title_for(&["EN-gb"]), Some("Full (GB)"));
        assert_eq!(set.title_for(&["en-US"]), Some("Full"));
        assert_eq!(set.detail_for(&["en"]), None);
    }
}
