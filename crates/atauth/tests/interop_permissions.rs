//! Interop, the truth for permission sets (issue 13; SCOPE-10/11/12, RS-SCOPE-01): one permission-set
//! Lexicon published as a `com.atproto.lexicon.schema` record in an account of the Bluesky reference
//! PDS, and the reference client (`@atproto/oauth-client-node`, `interop/ref-client-scopes.mjs`)
//! asking **both** `atauth serve` and the reference PDS for `atproto include:<set>?aud=… <granular
//! scopes>`. Each grants a token whose `scope` is the SCOPE-12 expansion (asserted exactly, and equal
//! between the two, at issuance and after a refresh), and each answers the same DPoP-bound
//! `getServiceAuth` probes the same way: 200 for what the set grants, 403 `ScopeMissingError` with
//! the same message for what it does not, including NSIDs of another authority that the set lists.
//!
//! How each server finds the set offline: `atauth serve --dev --dev-lexicon-dns
//! _lexicon.perms.example.com=<DID>` answers the TXT lookup (then the PLC DID document and the PDS's
//! `getRecord`, over the network as in production); the reference PDS's resolver is pointed at the
//! same DID with `ref-pds.mjs --lexicon-authority` (its own `PDS_LEXICON_AUTHORITY_DID` setting).
//!
//! The harness must be installed (`interop/setup.sh`); otherwise this test fails and says so, unless
//! `ATAUTH_SKIP_INTEROP=1`.

#![allow(missing_docs, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use atauth_testkit::interop;
use serde_json::{Value, json};

use crate::common::*;

const SET: &str = "com.example.perms.authBasic";
/// The `include:`'s audience: a service DID with a fragment (`%23`-encoded in the scope).
const AUD: &str = "did:web:feed.example.com#bsky_fg";
const PASSWORD: &str = "test-pass-123";

/// The set as its author publishes it: a repo entry, an rpc entry that inherits the `include:`'s
/// `aud`, one that lists another authority's method next to its own (SCOPE-10: the whole entry
/// grants nothing), and one with `aud: "*"`.
fn set_record() -> Value {
    json!({
        "$type": "com.atproto.lexicon.schema",
        "lexicon": 1,
        "id": SET,
        "defs": { "main": {
            "type": "permission-set",
            "title": "Basic example access",
            "detail": "Post to and read the example feed.",
            "permissions": [
                { "type": "permission", "resource": "repo", "collection": ["com.example.perms.post"] },
                { "type": "permission", "resource": "rpc", "lxm": ["com.example.perms.getFeed"], "inheritAud": true },
                { "type": "permission", "resource": "rpc",
                  "lxm": ["com.example.perms.getList", "app.bsky.feed.getTimeline"], "inheritAud": true },
                { "type": "permission", "resource": "rpc", "lxm": ["com.example.perms.getThing"], "aud": "*" }
            ]
        } }
    })
}

/// What the client asks for: the set plus granular scopes of its own.
fn requested_scope() -> String {
    format!(
        "atproto include:{SET}?aud={} repo:app.bsky.feed.post?action=create account:email",
        AUD.replace('#', "%23")
    )
}

/// SCOPE-12: every `include:` replaced by what its set grants (in the set's order, `inheritAud`
/// entries taking the `include:`'s `aud`, the mixed-authority entry gone), then the other scopes.
const EXPECTED_TOKEN_SCOPE: &str = "repo:com.example.perms.post \
    rpc:com.example.perms.getFeed?aud=did:web:feed.example.com%23bsky_fg \
    rpc:com.example.perms.getThing?aud=* \
    atproto repo:app.bsky.feed.post?action=create account:email";

/// The methods probed through `getServiceAuth?aud=AUD&lxm=…`, and whether the token allows each.
const PROBES: [(&str, bool); 5] = [
    ("com.example.perms.getFeed", true),
    ("com.example.perms.getThing", true),
    ("com.example.perms.getList", false),
    ("app.bsky.feed.getTimeline", false),
    ("com.example.perms.other", false),
];

async fn xrpc_post(base: &str, nsid: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = http()
        .post(format!("{base}/xrpc/{nsid}"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap_or_else(|e| panic!("{nsid}: {e}"));
    let status = res.status().as_u16();
    (status, serde_json::from_slice(&res.bytes().await.unwrap()).unwrap_or(Value::Null))
}

/// Runs `ref-client-scopes.mjs` against `server` (AS, resource server and handle resolver) and returns
/// its JSON result; panics with its output when a step failed.
fn ref_client(dir: &Path, server: &str, plc: &str, handle: &str, consent: &str) -> Value {
    let probes: Vec<&str> = PROBES.iter().map(|(lxm, _)| *lxm).collect();
    let out = Command::new(dir.join("node22"))
        .arg("ref-client-scopes.mjs")
        .args(["--pds", server, "--plc", plc, "--handle", handle, "--password", PASSWORD])
        .args(["--scope", &requested_scope(), "--consent", consent, "--aud", AUD])
        .args(["--probe", &probes.join(","), "--timeout", "60"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run node ref-client-scopes.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let result: Value = stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("ref-client-scopes.mjs printed no result; stderr:\n{stderr}"));
    assert!(
        out.status.success() && result["ok"] == true,
        "the reference client against {server} failed: {}\nstderr:\n{stderr}",
        serde_json::to_string_pretty(&result).unwrap()
    );
    result
}

/// SCOPE-10/12, RS-SCOPE-01 against `server`'s answers: the token scope (issued and refreshed) and
/// each probe.
fn assert_granted_as_expected(who: &str, r: &Value) {
    let info = &r["info"];
    assert_eq!(info["tokenScope"], EXPECTED_TOKEN_SCOPE, "{who}: token scope");
    assert_eq!(info["refreshedScope"], EXPECTED_TOKEN_SCOPE, "{who}: refreshed token scope (SCOPE-11)");
    for (lxm, allowed) in PROBES {
        let p = &info["probes"][lxm];
        if allowed {
            assert_eq!(
                (p["status"].as_u64(), p["token"].as_bool()),
                (Some(200), Some(true)),
                "{who}: {lxm}: {p}"
            );
        } else {
            let missing = format!("Missing required scope \"rpc:{lxm}?aud={}\"", AUD.replace('#', "%23"));
            assert_eq!(
                (p["status"].as_u64(), p["error"].as_str(), p["message"].as_str()),
                (Some(403), Some("ScopeMissingError"), Some(missing.as_str())),
                "{who}: {lxm}: {p}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_permission_set_include_against_atauth_serve_and_the_reference_pds() {
    let Some(dir) = interop::installed() else {
        return;
    };
    // The set is published by alice.test on the reference PDS, whose resolver takes alice's DID as
    // every NSID's authority.
    let (_peers, ready) =
        interop::start_ref_pds_with(&dir, Duration::from_secs(300), &["--lexicon-authority", "alice.test"]);
    let (status, session) = xrpc_post(
        &ready.pds_url,
        "com.atproto.server.createSession",
        None,
        &json!({ "identifier": ready.handle, "password": ready.password }),
    )
    .await;
    assert_eq!(status, 200, "createSession: {session}");
    let (status, written) = xrpc_post(
        &ready.pds_url,
        "com.atproto.repo.putRecord",
        session["accessJwt"].as_str(),
        &json!({ "repo": ready.did, "collection": "com.atproto.lexicon.schema", "rkey": SET, "record": set_record() }),
    )
    .await;
    assert_eq!(status, 200, "putRecord: {written}");

    // atauth serve, its demo account registered in the same PLC, `_lexicon.perms.example.com` → alice.
    let home = TempDir::new("perm-interop");
    let data = home.join("data");
    let lexicon_dns = format!("_lexicon.perms.example.com={}", ready.did);
    let serve = Serve::start(
        &home.0,
        &data,
        &[
            "--plc-url",
            &ready.plc_url,
            "--demo-account",
            "carol.test",
            "--demo-password",
            PASSWORD,
            "--consent-api",
            "true",
            "--dev-lexicon-dns",
            &lexicon_dns,
        ],
    );

    let (dir2, issuer, plc) = (dir.clone(), serve.issuer.clone(), ready.plc_url.clone());
    let ours = tokio::task::spawn_blocking(move || ref_client(&dir2, &issuer, &plc, "carol.test", "atauth"))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let (dir2, pds, plc) = (dir.clone(), ready.pds_url.clone(), ready.plc_url.clone());
    let reference = tokio::task::spawn_blocking(move || ref_client(&dir2, &pds, &plc, "bob.test", "api"))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));

    // The reference first, so a wrong expectation is told apart from an atauth bug.
    assert_granted_as_expected("reference PDS", &reference);
    assert_granted_as_expected("atauth serve", &ours);
    assert_eq!(ours["info"]["tokenScope"], reference["info"]["tokenScope"], "the same token scope");
    assert_eq!(ours["info"]["probes"], reference["info"]["probes"], "the same answers to the same requests");
    assert!(serve.stop().success());
}
