//! Interop, the JSON consent API for custom front ends (issue 16, docs/CONSENT-API.md) end to end:
//! Bluesky's reference OAuth client (`@atproto/oauth-client-node`, `interop/ref-client-login.mjs
//! --consent external`) logs in to `atauth serve` (demo account registered in the reference PLC),
//! and the browser step is done through the JSON API as a same-origin front end does it
//! (`atauth_testkit::consent::atauth_json_api`: describe the request, sign in, approve a subset of
//! the scopes, with the device cookie, the CSRF header and `Content-Type: application/json`). The
//! headless `sign-in-and-approve` route is switched off, so the JSON API alone carries the login.
//! The client then exchanges the code (its `iss`/`sub` checks), calls `getSession` with DPoP,
//! refreshes and calls it again; the token holds exactly the scopes approved.
//!
//! The harness must be installed (`interop/setup.sh`); otherwise this test fails and says so, unless
//! `ATAUTH_SKIP_INTEROP=1`.

#![allow(missing_docs, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use atauth_testkit::process::{ChildGuard, Lines};
use atauth_testkit::{consent, interop};
use serde_json::Value;

use crate::common::*;

const PASSWORD: &str = "test-pass-123";
/// What the client asks for; the person approves all but `transition:email`.
const REQUESTED: &str = "atproto transition:generic transition:email";
const APPROVED: [&str; 2] = ["atproto", "transition:generic"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_reference_client_logs_in_through_the_json_consent_api() {
    let Some(dir) = interop::installed() else {
        return;
    };
    let (_plc, plc) = interop::start_plc(&dir, Duration::from_secs(170));
    let home = TempDir::new("consent-json-api");
    let data = home.join("data");
    let serve = Serve::start(
        &home.0,
        &data,
        &[
            "--plc-url",
            &plc,
            "--demo-account",
            "alice.test",
            "--demo-password",
            PASSWORD,
            "--consent-json-api",
            "true",
            "--consent-api",
            "false",
        ],
    );
    // The headless route is off: only the JSON API can approve.
    let off = http()
        .post(format!("{}/oauth/authorize/sign-in-and-approve", serve.issuer))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 404);

    let mut child = Command::new(dir.join("node22"))
        .arg("ref-client-login.mjs")
        .args(["--pds", &serve.issuer, "--plc", &plc, "--handle", "alice.test", "--password", PASSWORD])
        .args(["--scope", REQUESTED, "--consent", "external", "--timeout", "60"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ref-client-login.mjs");
    let stdout = Lines::spawn(child.stdout.take().unwrap(), None);
    let stderr = Lines::spawn(child.stderr.take().unwrap(), Some("ref-client"));
    let mut proc = ChildGuard::new(child);
    let line = stderr
        .wait_for(Duration::from_secs(60), |l| l.starts_with("{\"authorizeUrl\""))
        .unwrap_or_else(|| panic!("the reference client printed no authorizeUrl:\n{}", stderr.text()));
    let v: Value = serde_json::from_str(&line).unwrap();
    let authorize = url::Url::parse(v["authorizeUrl"].as_str().unwrap()).unwrap();
    assert_eq!(authorize.as_str().split('?').next().unwrap(), format!("{}/oauth/authorize", serve.issuer));

    let redirect = consent::atauth_json_api(&authorize, "alice.test", PASSWORD, Some(&APPROVED), true)
        .await
        .unwrap_or_else(|e| panic!("JSON consent API: {e}"));
    assert_eq!(redirect.as_str().split('?').next(), v["redirectUri"].as_str(), "the client's redirect_uri");
    let (status, page) = consent::deliver(&redirect).await.unwrap();
    assert!((200..300).contains(&status), "callback listener answered {status}: {page}");

    let exit = proc.wait_timeout(Duration::from_secs(60)).expect("the reference client finished");
    assert!(stdout.wait_closed(Duration::from_secs(5)));
    let out = stdout.text();
    let result: Value = out
        .lines()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no result from the reference client:\n{out}\n{}", stderr.text()));
    assert!(exit.success() && result["ok"] == true, "reference client failed: {result:#}");
    let steps: Vec<&str> =
        result["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(steps, ["authorize", "consent", "callback", "token", "getSession", "refresh", "getSession2"]);
    let token = &result["steps"][3]["detail"];
    assert_eq!(token["scope"], APPROVED.join(" "), "exactly the approved scopes: {token}");
    assert_eq!(token["iss"], serve.issuer.as_str());
    assert!(serve.stop().success());
}
