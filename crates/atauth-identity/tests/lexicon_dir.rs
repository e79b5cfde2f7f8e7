//! `LexiconDir` (`atauth serve --lexicon-dir DIR`, issue 13): every `*.json` Lexicon document of a
//! directory, keyed by its `id`, with a clear load-time error for each kind of bad file.

use atauth_identity::Nsid;
use atauth_identity::lexicon::{DEFAULT_MAX_LEXICON_BYTES, LexiconDir, LexiconDirError, LexiconOrigin};
use atauth_testkit::fs::TempDir;
use serde_json::json;

fn lexicon(id: &str) -> String {
    json!({
        "lexicon": 1,
        "id": id,
        "defs": { "main": { "type": "permission-set", "title": id, "permissions": [] } }
    })
    .to_string()
}

fn dir_with(files: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new("lexicon-dir");
    for (name, content) in files {
        std::fs::write(dir.join(name), content).expect("write");
    }
    dir
}

#[test]
fn loads_every_json_file_by_id() {
    let dir = dir_with(&[
        ("basic.json", &lexicon("com.example.perms.authBasic")),
        ("any-name.json", &lexicon("com.example.perms.authFull")),
        ("README.md", "not a lexicon, ignored"),
        ("notes.json.bak", "{ ignored"),
    ]);
    std::fs::create_dir(dir.join("nested.json")).expect("a directory named like a file is ignored");
    std::fs::write(dir.join("nested.json/inner.json"), "{ not loaded").expect("write");

    let pinned = LexiconDir::load(dir.path()).expect("load");
    assert_eq!(pinned.len(), 2);
    assert_eq!(pinned.root(), Some(dir.path()));
    let basic = Nsid::new("com.example.perms.authBasic").expect("nsid");
    let full = Nsid::new("com.example.perms.authFull").expect("nsid");
    assert_eq!(pinned.nsids(), [&basic, &full]);
    let got = pinned.get(&full).expect("authFull");
    assert_eq!(got.document["defs"]["main"]["title"], "com.example.perms.authFull");
    assert!(matches!(&got.origin, LexiconOrigin::LocalFile { path } if path.ends_with("any-name.json")));
    assert!(pinned.get(&Nsid::new("com.example.perms.other").expect("nsid")).is_none());
}

#[test]
fn empty_directory_pins_nothing() {
    let dir = dir_with(&[]);
    assert!(LexiconDir::load(dir.path()).expect("load").is_empty());
    assert!(LexiconDir::empty().is_empty());
}

#[test]
fn missing_directory_is_an_error() {
    let dir = dir_with(&[]);
    let missing = dir.join("nope");
    let err = LexiconDir::load(&missing).expect_err("missing");
    assert!(matches!(&err, LexiconDirError::ReadDir { path, .. } if *path == missing), "{err:?}");
    assert!(err.to_string().starts_with("cannot read the Lexicon directory"), "{err}");
}

/// Whether an error is the expected variant.
type Check = fn(&LexiconDirError) -> bool;

#[test]
fn each_bad_file_has_its_own_error_naming_the_file() {
    let cases: Vec<(&str, String, Check)> = vec![
        ("broken.json", "{ \"lexicon\": 1,".to_owned(), |e| matches!(e, LexiconDirError::InvalidJson { .. })),
        ("array.json", "[1, 2]".to_owned(), |e| matches!(e, LexiconDirError::NotALexicon { .. })),
        (
            "noid.json",
            json!({ "lexicon": 1, "defs": {} }).to_string(),
            |e| matches!(e, LexiconDirError::NotALexicon { reason, .. } if reason == "no string id"),
        ),
        (
            "badid.json",
            json!({ "lexicon": 1, "id": "not an nsid" }).to_string(),
            |e| matches!(e, LexiconDirError::InvalidId { id, .. } if id == "not an nsid"),
        ),
        (
            "v2.json",
            json!({ "lexicon": 2, "id": "com.example.perms.authBasic" }).to_string(),
            |e| matches!(e, LexiconDirError::NotALexicon { reason, .. } if reason == "lexicon is 2, expected 1"),
        ),
        (
            "huge.json",
            format!(
                "{{\"lexicon\":1,\"id\":\"com.example.perms.big\",\"description\":\"{}\"}}",
                "x".repeat(DEFAULT_MAX_LEXICON_BYTES)
            ),
            |e| matches!(e, LexiconDirError::FileTooLarge { limit: DEFAULT_MAX_LEXICON_BYTES, .. }),
        ),
    ];
    for (name, content, check) in cases {
        let dir = dir_with(&[("good.json", &lexicon("com.example.perms.authBasic")), (name, &content)]);
        let err = LexiconDir::load(dir.path()).expect_err(name);
        assert!(check(&err), "{name}: {err:?}");
        assert!(err.to_string().contains(name), "{name}: the message names the file: {err}");
    }
}

#[test]
fn the_same_id_twice_is_an_error() {
    let dir = dir_with(&[
        ("a.json", &lexicon("com.example.perms.authBasic")),
        ("b.json", &lexicon("com.example.perms.authBasic")),
    ]);
    match LexiconDir::load(dir.path()).expect_err("duplicate") {
        LexiconDirError::DuplicateId { nsid, first, second } => {
            assert_eq!(nsid.as_str(), "com.example.perms.authBasic");
            assert!(first.ends_with("a.json") && second.ends_with("b.json"), "{first:?} {second:?}");
        }
        other => panic!("expected DuplicateId, got {other:?}"),
    }
}
