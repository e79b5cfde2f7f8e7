//! Helpers for the `atauth` binary's tests: temporary directories, `atauth serve` as a child process,
//! one-shot commands, and checks on what the server answers.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset of these helpers

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use atauth_testkit::process::{ChildGuard, Lines};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_atauth");

/// A command for the binary with a clean `ATAUTH_*` environment and `HOME`/`XDG_DATA_HOME` pointing
/// into `home` (so nothing is ever written to the real home directory).
pub fn atauth(home: &Path) -> Command {
    let mut c = Command::new(BIN);
    // The binary's own settings must not leak in from the test's environment (the harness
    // variables ATAUTH_INTEROP_DIR / ATAUTH_SKIP_INTEROP are the tests', not the binary's).
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if (k.starts_with("ATAUTH_") && !k.starts_with("ATAUTH_INTEROP") && k != "ATAUTH_SKIP_INTEROP")
            || k == "RUST_LOG"
        {
            c.env_remove(k.as_ref());
        }
    }
    c.env("HOME", home).env("XDG_DATA_HOME", home.join("xdg"));
    c
}

/// Runs the binary to completion with `args` (stdin closed), at most 60 s.
pub fn run(home: &Path, args: &[&str]) -> Output {
    run_with_stdin(home, args, None)
}

/// Runs the binary with `stdin` text.
pub fn run_with_stdin(home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write as _;
    let mut child = atauth(home)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn atauth");
    if let Some(text) = stdin {
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().expect("atauth output");
    eprintln!(
        "$ atauth {}\n  exit {:?}\n  stdout: {}\n  stderr: {}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim_end().replace('\n', "\n          "),
        String::from_utf8_lossy(&out.stderr).trim_end().replace('\n', "\n          ")
    );
    out
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A temporary directory, removed on drop.
pub use atauth_testkit::fs::TempDir;

/// A running `atauth serve`.
pub struct Serve {
    pub proc: ChildGuard,
    pub stdout: Lines,
    pub stderr: Lines,
    /// `http://127.0.0.1:PORT`
    pub addr: String,
    /// The issuer, e.g. `http://localhost:PORT`.
    pub issuer: String,
    pub port: u16,
}

impl Serve {
    /// Starts `atauth serve --dev --port 0 --data-dir DIR <extra>` and waits for its listening line.
    pub fn start(home: &Path, data_dir: &Path, extra: &[&str]) -> Self {
        Self::start_args(
            home,
            &[&["serve", "--dev", "--port", "0", "--data-dir", data_dir.to_str().unwrap()], extra].concat(),
        )
    }

    /// Starts `atauth <args>` (a serve command) and waits for its listening line.
    pub fn start_args(home: &Path, args: &[&str]) -> Self {
        Self::start_env(home, args, &[])
    }

    /// [`Self::start_args`] with these environment variables set (e.g. the secrets instances share).
    pub fn start_env(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = atauth(home)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn atauth serve");
        let stdout = Lines::spawn(child.stdout.take().unwrap(), Some("serve stdout"));
        let stderr = Lines::spawn(child.stderr.take().unwrap(), Some("serve stderr"));
        let proc = ChildGuard::new(child);
        let line = stdout
            .wait_for(Duration::from_secs(60), |l| l.contains("listening on"))
            .unwrap_or_else(|| panic!("atauth serve did not start; stderr:\n{}", stderr.text()));
        // "atauth serve: listening on http://127.0.0.1:PORT (issuer URL)"
        let addr = line.split("listening on ").nth(1).unwrap().split(' ').next().unwrap().to_owned();
        let issuer = line.split("(issuer ").nth(1).unwrap().trim_end_matches(')').to_owned();
        let port = addr.rsplit(':').next().unwrap().parse().unwrap();
        Self { proc, stdout, stderr, addr, issuer, port }
    }

    /// SIGTERM and the exit status (at most 15 s).
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.proc.terminate(Duration::from_secs(15)).expect("atauth serve exits after SIGTERM")
    }
}

/// A plain HTTP client (no redirects).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// GET `url` → (status, body).
pub async fn get(url: &str) -> (u16, String) {
    let res = http().get(url).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

/// Unix file mode bits.
#[cfg(unix)]
pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

/// A running `atauth login` and the authorization URL it printed.
pub struct Login {
    pub proc: ChildGuard,
    pub stdout: Lines,
    pub stderr: Lines,
    pub authorize_url: url::Url,
}

impl Login {
    /// Starts `atauth login <args>` and waits (at most 60 s) for the authorization URL on stderr.
    pub fn start(home: &Path, args: &[&str]) -> Self {
        let mut child = atauth(home)
            .arg("login")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn atauth login");
        let stdout = Lines::spawn(child.stdout.take().unwrap(), Some("login stdout"));
        let stderr = Lines::spawn(child.stderr.take().unwrap(), Some("login stderr"));
        let proc = ChildGuard::new(child);
        let line = stderr
            .wait_for(Duration::from_secs(60), |l| l.starts_with("http") && l.contains("/oauth/authorize?"))
            .unwrap_or_else(|| {
                panic!("atauth login printed no authorization URL; stderr:\n{}", stderr.text())
            });
        let authorize_url = url::Url::parse(line.trim()).unwrap();
        Self { proc, stdout, stderr, authorize_url }
    }

    /// The port of the loopback redirect listener, from the client id in the authorization URL.
    pub fn callback_port(&self) -> u16 {
        let client_id = self
            .authorize_url
            .query_pairs()
            .find(|(k, _)| k == "client_id")
            .map(|(_, v)| v.into_owned())
            .expect("client_id");
        let cid = url::Url::parse(&client_id).unwrap();
        let redirect = cid.query_pairs().find(|(k, _)| k == "redirect_uri").unwrap().1.into_owned();
        let redirect = url::Url::parse(&redirect).unwrap();
        assert_eq!(redirect.host_str(), Some("127.0.0.1"), "the redirect URI is on 127.0.0.1: {redirect}");
        redirect.port().unwrap()
    }

    /// Waits for the exit status (at most `secs`), then for both pipes to drain, so that
    /// `stdout.text()` and `stderr.text()` hold everything the process printed.
    pub fn wait(&mut self, secs: u64) -> std::process::ExitStatus {
        let status = self
            .proc
            .wait_timeout(Duration::from_secs(secs))
            .unwrap_or_else(|| panic!("atauth login did not exit; stderr:\n{}", self.stderr.text()));
        assert!(self.stdout.wait_closed(Duration::from_secs(5)), "atauth login's stdout stayed open");
        assert!(self.stderr.wait_closed(Duration::from_secs(5)), "atauth login's stderr stayed open");
        status
    }
}
