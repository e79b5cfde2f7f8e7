//! `atauth login` / `whoami` / `logout` against our own `atauth serve`, for the paths that need no
//! account: the loopback listener, timeout, Ctrl-C, a denied consent, stray callbacks, and the
//! "not logged in" answers. The full login (which needs a did:plc, so a PLC directory) is in
//! `interop_cli.rs`.

#![allow(missing_docs, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::time::{Duration, Instant};

use common::*;

fn dev_login_args<'a>(serve: &'a Serve, session_dir: &'a str) -> Vec<&'a str> {
    // Start from the server URL: discovery needs no DID (no PLC) before the browser step.
    vec![&serve.issuer, "--session-dir", session_dir, "--allow-http-loopback", "--no-browser"]
}

#[test]
fn whoami_and_logout_without_a_session_say_not_logged_in() {
    let home = TempDir::new("notloggedin");
    let dir = home.join("s");
    for cmd in ["whoami", "logout"] {
        let out = run(&home.0, &[cmd, "--session-dir", dir.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(3), "{cmd}");
        assert!(stderr(&out).contains("not logged in"), "{}", stderr(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_listens_on_127_0_0_1_only_and_times_out_with_exit_5() {
    let home = TempDir::new("login-timeout");
    let serve = Serve::start(&home.0, &home.join("data"), &[]);
    let sdir = home.join("s");
    let sdir = sdir.to_str().unwrap();
    let mut args = dev_login_args(&serve, sdir);
    args.extend(["--timeout", "3s"]);
    let t0 = Instant::now();
    let mut login = Login::start(&home.0, &args);
    assert!(login.authorize_url.as_str().starts_with(&format!("{}/oauth/authorize?", serve.issuer)));
    let port = login.callback_port();
    // Bound to 127.0.0.1 itself, not to every address: another loopback address is refused.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    assert!(
        std::net::TcpStream::connect(("127.0.0.2", port)).is_err(),
        "the listener must not be on 0.0.0.0"
    );

    let status = login.wait(30);
    assert_eq!(status.code(), Some(5), "timeout exit status");
    assert!(t0.elapsed() >= Duration::from_secs(3));
    assert!(login.stderr.text().contains("timed out"), "{}", login.stderr.text());
    assert!(!home.join("s/session.json").exists(), "nothing saved");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "the listener is closed");
    serve.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_stops_cleanly_on_ctrl_c_with_exit_130() {
    let home = TempDir::new("login-int");
    let serve = Serve::start(&home.0, &home.join("data"), &[]);
    let sdir = home.join("s");
    let mut login = Login::start(&home.0, &dev_login_args(&serve, sdir.to_str().unwrap()));
    login.proc.signal("INT");
    let status = login.wait(15);
    assert_eq!(status.code(), Some(130));
    assert!(login.stderr.text().contains("interrupted"), "{}", login.stderr.text());
    assert!(!sdir.join("session.json").exists());
    serve.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stray_callbacks_are_ignored_and_a_denied_consent_exits_4() {
    let home = TempDir::new("login-deny");
    let serve = Serve::start(&home.0, &home.join("data"), &[]);
    let sdir = home.join("s");
    let mut login = Login::start(&home.0, &dev_login_args(&serve, sdir.to_str().unwrap()));
    let port = login.callback_port();

    // Not an OAuth callback, then a callback for a state this login never issued: both 400, and the
    // login keeps waiting.
    let (status, _) = get(&format!("http://127.0.0.1:{port}/callback")).await;
    assert_eq!(status, 400);
    let (status, body) =
        get(&format!("http://127.0.0.1:{port}/callback?state=bogus&code=x&iss={}", serve.issuer)).await;
    assert_eq!(status, 400);
    assert!(body.contains("unknown or has expired"), "{body}");
    let (status, _) = get(&format!("http://127.0.0.1:{port}/favicon.ico")).await;
    assert_eq!(status, 404);
    assert!(login.proc.child_mut().try_wait().unwrap().is_none(), "still waiting");

    // The user denies: the server redirects with error=access_denied.
    let redirect =
        atauth_testkit::consent::atauth_interim(&login.authorize_url, "", "", false).await.unwrap();
    let (status, body) = atauth_testkit::consent::deliver(&redirect).await.unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("Login failed"), "{body}");
    let status = login.wait(30);
    assert_eq!(status.code(), Some(4), "refused: {}", login.stderr.text());
    assert!(login.stderr.text().contains("access_denied"), "{}", login.stderr.text());
    assert!(!sdir.join("session.json").exists());
    serve.stop();
}
