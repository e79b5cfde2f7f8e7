//! `atauth-bench client-login [--rounds N] [--md FILE]`: the login flow of our OAuth client
//! (`atauth-client`) against Bluesky's reference client (`@atproto/oauth-client-node`, driven by
//! `interop/ref-client-login.mjs`), both logging in to the same reference PDS in the same run.
//!
//! The reference PDS (with its PLC) is started once. Then, after one warm-up round per side (reported
//! with `"warmup":true`, not in the table), every round runs the three clients below one after the
//! other, rotating which goes first:
//!
//! - **atauth-client**, in this process: a fresh [`OAuthClient`] per round (so a fresh identity
//!   cache, authorization-server metadata cache and HTTP connection pool), a loopback redirect
//!   listener as in `atauth login`, then the steps, each timed with [`Instant`]:
//!   `authorize` (handle → DID → DID document → protected-resource and authorization-server
//!   metadata → PAR with DPoP → authorize URL), `consent` (the reference provider's sign-in and
//!   consent API through [`atauth_testkit::consent::reference_provider`], then the browser's GET
//!   to the loopback listener), `token` (`callback_query`: state, `iss`, code exchange with PKCE and
//!   DPoP, `sub` checks), `getSession` (one DPoP-bound `com.atproto.server.getSession`), `refresh`
//!   (one forced refresh grant).
//! - **atauth-client in a new process per login**: this binary again (`client-login` with
//!   [`ONCE_ENV`] set), which runs the same login once and prints its timings: the like-for-like
//!   partner of the next side (process start-up not counted on either).
//! - **the reference client**: `interop/node22 ref-client-login.mjs --consent api`, a new Node
//!   process per round (so its caches are fresh too); its step timings are taken from its final
//!   JSON line (`Date.now()`, whole milliseconds). Node's start-up and module loading happen before
//!   its first step and are not counted; its `callback` step (awaiting the listener's promise) is
//!   added to `token`, so both sides' `token` cover the same work.
//! - **the reference client in one warm process**: the same steps with the same helpers of
//!   `interop/lib.mjs`, in one long-lived Node process (the script [`WARM_SCRIPT`], run with
//!   `node22 --input-type=module -e`) that logs in once per line it reads on stdin, with a fresh
//!   `NodeOAuthClient` (fresh caches) each time, timed with `performance.now()`. This separates the
//!   reference client's own cost from a cold JIT, and is the like-for-like comparison for a
//!   long-lived app (ours runs warm after its warm-up round too).
//!
//! Output: one JSON line per round and side on stdout; `--md FILE` writes the Markdown summary
//! (median and p90 per step, the ratio, and the login total = authorize + token, consent excluded).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atauth_client::loopback::LoopbackListener;
use atauth_client::{Agent, AuthorizeOptions, ClientConfig, DevOptions, MemoryStore, OAuthClient};
use atauth_testkit::interop::RefPds;
use serde_json::{Value, json};
use url::Url;

use crate::BoxError;
use crate::opts::is_loopback;
use crate::stats::percentile;

const SCOPE: &str = "atproto transition:generic";
/// The steps compared, in order. `consent` is reported but not part of the login total.
const STEPS: [&str; 5] = ["authorize", "consent", "token", "getSession", "refresh"];
/// Set (to the reference PDS's JSON line) in the child process that logs in once: the
/// "atauth-client, new process" side.
const ONCE_ENV: &str = "ATAUTH_BENCH_CLIENT_LOGIN_ONCE";
/// Time allowed for the redirect to reach our loopback listener, and for one Node run.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of `client-login`.
#[derive(Debug, Clone)]
pub(crate) struct Opts {
    rounds: usize,
    md: Option<String>,
}

impl Opts {
    /// Parses `--rounds N` (default 20, 1..=1000) and `--md FILE`.
    pub(crate) fn parse(args: &[String]) -> Result<Self, BoxError> {
        let mut o = Self { rounds: 20, md: None };
        let mut it = args.iter();
        while let Some(k) = it.next() {
            let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
            match k.as_str() {
                "--rounds" => o.rounds = v.parse()?,
                "--md" => o.md = Some(v.clone()),
                _ => return Err(format!("unknown option {k}").into()),
            }
        }
        if o.rounds == 0 || o.rounds > 1000 {
            return Err("--rounds 1..=1000 please".into());
        }
        Ok(o)
    }
}

/// Which client a round measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// atauth-client in this (warm) process.
    Ours,
    /// atauth-client in a new `atauth-bench` process per login.
    OursNew,
    /// `ref-client-login.mjs`, a new Node process per login.
    Reference,
    /// The reference client in one warm Node process.
    Warm,
}

impl Side {
    const ALL: [Self; 4] = [Self::Ours, Self::Reference, Self::OursNew, Self::Warm];

    fn name(self) -> &'static str {
        match self {
            Self::Ours => "atauth-client",
            Self::OursNew => "atauth-client-new-process",
            Self::Reference => "reference",
            Self::Warm => "reference-warm",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Ours => 0,
            Self::OursNew => 1,
            Self::Reference => 2,
            Self::Warm => 3,
        }
    }
}

/// One round of one side: the step timings in milliseconds, in [`STEPS`] order.
#[derive(Debug, Clone)]
struct Round {
    side: Side,
    warmup: bool,
    steps: [f64; 5],
}

impl Round {
    /// authorize + token (consent excluded).
    fn login_ms(&self) -> f64 {
        self.steps[0] + self.steps[2]
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Times `fut` and records its duration in `slot`.
async fn timed<T, E: std::fmt::Display>(
    slot: &mut f64,
    what: &str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, BoxError> {
    let t = Instant::now();
    let out = fut.await.map_err(|e| format!("{what}: {e}"))?;
    *slot = ms(t.elapsed());
    Ok(out)
}

/// The warm reference process: one login per stdin line, one JSON line per login on stdout.
/// `WARM_*` environment variables carry the PDS, PLC, handle and password.
const WARM_SCRIPT: &str = r#"
import readline from 'node:readline'
import { buildLoopbackClient, consentViaApi, startCallbackListener } from './lib.mjs'
const { WARM_PDS: pds, WARM_PLC: plc, WARM_HANDLE: handle, WARM_PASSWORD: password } = process.env
const scope = 'atproto transition:generic'
async function login() {
  const cb = await startCallbackListener(0)
  try {
    const redirectUri = `http://127.0.0.1:${cb.port}/callback`
    const { client } = buildLoopbackClient({ redirectUri, scope, handleResolver: pds, plcDirectoryUrl: plc })
    const ms = {}
    let t = performance.now()
    const lap = (name) => { const now = performance.now(); ms[name] = now - t; t = now }
    const url = await client.authorize(handle, { scope, state: 'warm' })
    lap('authorize')
    await consentViaApi(url.href, handle, password)
    lap('consent')
    const { session, state } = await client.callback(await cb.got)
    if (state !== 'warm') throw new Error(`state ${state}`)
    lap('token')
    const res = await session.fetchHandler('/xrpc/com.atproto.server.getSession', { method: 'GET' })
    const body = await res.json()
    if (!res.ok || body.did !== session.did || body.handle !== handle) throw new Error(`getSession ${res.status}`)
    lap('getSession')
    await client.restore(session.did, true)
    lap('refresh')
    return { ok: true, ms }
  } finally {
    cb.server.close()
    cb.server.closeAllConnections?.()
  }
}
for await (const _ of readline.createInterface({ input: process.stdin })) {
  const r = await login().catch((e) => ({ ok: false, error: String(e?.stack || e) }))
  process.stdout.write(JSON.stringify(r) + '\n')
}
"#;

/// The warm reference process and its pipes.
struct Warm {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: Option<std::io::BufReader<std::process::ChildStdout>>,
}

impl Warm {
    fn start(dir: &Path, ready: &RefPds) -> Result<Self, BoxError> {
        let mut child = std::process::Command::new(dir.join("node22"))
            .args(["--input-type=module", "-e", WARM_SCRIPT])
            .env("WARM_PDS", &ready.pds_url)
            .env("WARM_PLC", &ready.plc_url)
            .env("WARM_HANDLE", &ready.handle)
            .env("WARM_PASSWORD", &ready.password)
            .current_dir(dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().map(std::io::BufReader::new);
        Ok(Self { child, stdin, stdout })
    }

    /// One login in the warm process; its step timings.
    async fn login(&mut self) -> Result<[f64; 5], BoxError> {
        use std::io::{BufRead as _, Write as _};
        let (mut stdin, mut stdout) =
            (self.stdin.take().ok_or("warm process gone")?, self.stdout.take().ok_or("warm process gone")?);
        let (stdin, stdout, line) = tokio::time::timeout(
            STEP_TIMEOUT,
            tokio::task::spawn_blocking(move || -> std::io::Result<_> {
                stdin.write_all(b"login\n")?;
                stdin.flush()?;
                let mut line = String::new();
                while !line.starts_with('{') {
                    line.clear();
                    if stdout.read_line(&mut line)? == 0 {
                        return Err(std::io::Error::other("the warm reference process exited"));
                    }
                }
                Ok((stdin, stdout, line))
            }),
        )
        .await
        .map_err(|_| "the warm reference process did not answer in time")???;
        (self.stdin, self.stdout) = (Some(stdin), Some(stdout));
        let v: Value = serde_json::from_str(&line)?;
        if v["ok"] != true {
            return Err(format!("warm reference login failed: {}", v["error"]).into());
        }
        let step = |name: &str| -> Result<f64, BoxError> {
            v["ms"][name].as_f64().ok_or_else(|| format!("warm reference: no {name} in {line}").into())
        };
        Ok([step("authorize")?, step("consent")?, step("token")?, step("getSession")?, step("refresh")?])
    }
}

impl Drop for Warm {
    fn drop(&mut self) {
        // Closing stdin ends its loop; kill it in case it is stuck.
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One login of atauth-client with fresh caches: authorize, consent, token, getSession, refresh.
async fn ours(ready: &RefPds) -> Result<[f64; 5], BoxError> {
    let listener = LoopbackListener::bind("/callback").await?;
    let redirect = listener.redirect_uri();
    let config = ClientConfig::loopback(&[redirect.as_str()], SCOPE)?.with_dev(DevOptions {
        allow_http_loopback: true,
        plc_url: Some(Url::parse(&ready.plc_url)?),
        handle_resolver_url: Some(Url::parse(&ready.pds_url)?),
    });
    let store = Arc::new(MemoryStore::new());
    let client = OAuthClient::builder(config).state_store(store.clone()).session_store(store).build()?;
    let mut t = [0.0; 5];

    let url =
        timed(&mut t[0], "authorize", client.authorize(&ready.handle, AuthorizeOptions::default())).await?;
    let query = timed(&mut t[1], "consent", async {
        let waiting = tokio::spawn(listener.wait(STEP_TIMEOUT));
        let location =
            atauth_testkit::consent::reference_provider(&url, &ready.handle, &ready.password).await?;
        if !location.as_str().starts_with(&redirect) {
            return Err(format!("redirected to {location}, not to {redirect}"));
        }
        // The browser lands on the loopback listener.
        let (status, _) = atauth_testkit::consent::deliver(&location).await?;
        if status != 200 {
            return Err(format!("the loopback listener answered {status}"));
        }
        waiting.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())
    })
    .await?;
    let session = timed(&mut t[2], "token", client.callback_query(&query)).await?.session;
    if session.did().as_str() != ready.did {
        return Err(format!("signed in as {}, expected {}", session.did().as_str(), ready.did).into());
    }
    let agent = Agent::new(session.clone());
    let me: Value = timed(&mut t[3], "getSession", agent.query("com.atproto.server.getSession", &[])).await?;
    if me["did"] != ready.did.as_str() || me["handle"] != ready.handle.as_str() {
        return Err(format!("getSession answered {me}").into());
    }
    let before = session.info().await.generation;
    timed(&mut t[4], "refresh", session.refresh()).await?;
    if session.info().await.generation != before + 1 {
        return Err("refresh did not rotate the session".into());
    }
    Ok(t)
}

/// One login of atauth-client in a new `atauth-bench client-login` process (see [`ONCE_ENV`]); its
/// step timings, from the JSON line the child prints. Process start-up is not counted.
async fn ours_new_process(ready: &RefPds) -> Result<[f64; 5], BoxError> {
    let spec = json!({
        "pdsUrl": ready.pds_url, "plcUrl": ready.plc_url, "handle": ready.handle,
        "did": ready.did, "password": ready.password,
    });
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.arg("client-login").env(ONCE_ENV, spec.to_string()).stdin(std::process::Stdio::null());
    let out = tokio::task::spawn_blocking(move || cmd.output()).await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).ok_or_else(|| {
        format!("the child printed no JSON line (exit {}): {}", out.status, tail(&out.stderr))
    })?;
    let v: Value = serde_json::from_str(line)?;
    if v["ok"] != true || !out.status.success() {
        return Err(format!("the child failed (exit {}): {}", out.status, v["error"]).into());
    }
    let mut t = [0.0; 5];
    for (slot, name) in t.iter_mut().zip(STEPS) {
        *slot = v["steps_ms"][name].as_f64().ok_or_else(|| format!("no {name} in {line}"))?;
    }
    Ok(t)
}

/// One run of `ref-client-login.mjs --consent api`; returns its step timings and its JSON line.
async fn reference(dir: &Path, ready: &RefPds) -> Result<([f64; 5], Value), BoxError> {
    let mut cmd = std::process::Command::new(dir.join("node22"));
    cmd.arg("ref-client-login.mjs")
        .args(["--pds", &ready.pds_url, "--plc", &ready.plc_url, "--handle", &ready.handle])
        .args(["--password", &ready.password, "--consent", "api", "--input", "handle"])
        .args(["--timeout", &STEP_TIMEOUT.as_secs().to_string()])
        .current_dir(dir)
        .stdin(std::process::Stdio::null());
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output()).await??;
    let process_ms = ms(started.elapsed());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).ok_or_else(|| {
        format!("ref-client-login.mjs printed no JSON line (exit {}): {}", out.status, tail(&out.stderr))
    })?;
    let v: Value = serde_json::from_str(line)?;
    if v["ok"] != true || !out.status.success() {
        return Err(format!(
            "ref-client-login.mjs failed (exit {}): {} {}",
            out.status,
            v["error"],
            tail(&out.stderr)
        )
        .into());
    }
    let step = |name: &str| -> Result<f64, BoxError> {
        v["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == name && s["ok"] == true))
            .and_then(|s| s["ms"].as_f64())
            .ok_or_else(|| format!("ref-client-login.mjs: no timing for step {name} in {line}").into())
    };
    let t = [
        step("authorize")?,
        step("consent")?,
        step("callback")? + step("token")?,
        step("getSession")?,
        step("refresh")?,
    ];
    let node = json!({
        "process_ms": round2(process_ms),
        "script_total_ms": v["totalMs"],
        "callback_ms": step("callback")?,
        "getSession2_ms": step("getSession2").ok(),
    });
    Ok((t, node))
}

fn tail(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let start = s.len().saturating_sub(600);
    s.get(start..).unwrap_or_default().trim().to_owned()
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The JSON line of one round.
fn line(
    round: usize,
    warmup: bool,
    side: Side,
    r: &Result<[f64; 5], BoxError>,
    extra: Option<&Value>,
) -> Value {
    let mut v = json!({"bench": "client-login", "round": round, "warmup": warmup, "side": side.name()});
    match r {
        Ok(t) => {
            v["ok"] = json!(true);
            v["steps_ms"] =
                STEPS.iter().zip(t).map(|(name, ms)| ((*name).to_owned(), json!(round2(*ms)))).collect();
            v["login_ms"] = json!(round2(t[0] + t[2]));
        }
        Err(e) => {
            v["ok"] = json!(false);
            v["error"] = json!(e.to_string());
        }
    }
    if let Some(x) = extra {
        v["reference_process"] = x.clone();
    }
    v
}

/// Runs `client-login`.
pub(crate) async fn run(o: Opts) -> Result<(), BoxError> {
    if let Ok(spec) = std::env::var(ONCE_ENV) {
        let ready: RefPds = serde_json::from_str(&spec)?;
        let r = ours(&ready).await;
        println!("{}", line(0, false, Side::OursNew, &r, None));
        return r.map(|_| ());
    }
    let dir = atauth_testkit::interop::installed().ok_or("the interop harness is not installed")?;
    let ttl = Duration::from_secs(300 + o.rounds as u64 * 4 * STEP_TIMEOUT.as_secs());
    let (peers, ready) = atauth_testkit::interop::start_ref_pds(&dir, ttl);
    for u in [&ready.pds_url, &ready.plc_url] {
        if !is_loopback(&Url::parse(u)?) {
            return Err(format!("{u} is not a loopback address").into());
        }
    }
    let mut warm = Warm::start(&dir, &ready)?;
    let started = Instant::now();
    let mut rounds = Vec::new();
    let mut failures = [0usize; 4];
    // Round 0 is the warm-up of every side (the reference PDS's JIT, this process's and the warm Node
    // process's one-off set-up). Who goes first rotates every round.
    for round in 0..=o.rounds {
        for k in 0..Side::ALL.len() {
            let side = Side::ALL[(round + k) % Side::ALL.len()];
            let (r, extra) = match side {
                Side::Ours => (ours(&ready).await, None),
                Side::OursNew => (ours_new_process(&ready).await, None),
                Side::Reference => match reference(&dir, &ready).await {
                    Ok((t, x)) => (Ok(t), Some(x)),
                    Err(e) => (Err(e), None),
                },
                Side::Warm => (warm.login().await, None),
            };
            println!("{}", line(round, round == 0, side, &r, extra.as_ref()));
            match r {
                Ok(steps) => rounds.push(Round { side, warmup: round == 0, steps }),
                Err(e) => {
                    eprintln!("[client-login] round {round} {}: {e}", side.name());
                    failures[side.index()] += 1;
                }
            }
        }
    }
    let wall = started.elapsed();
    drop(warm);
    drop(peers);
    if let Some(path) = &o.md {
        std::fs::write(path, markdown(&rounds, failures, o.rounds, wall))?;
    }
    if !rounds.iter().any(|r| !r.warmup) {
        return Err("no round succeeded".into());
    }
    Ok(())
}

/// Median and p90 (nearest rank) of `values` in milliseconds.
fn summary(values: &[f64]) -> Option<(f64, f64)> {
    let mut d: Vec<Duration> = values.iter().map(|&m| Duration::from_secs_f64(m.max(0.0) / 1e3)).collect();
    d.sort_unstable();
    Some((ms(percentile(&d, 50.0)?), ms(percentile(&d, 90.0)?)))
}

fn fmt_pair(s: Option<(f64, f64)>, digits: usize) -> String {
    s.map_or_else(|| "—".to_owned(), |(p50, p90)| format!("{p50:.digits$} / {p90:.digits$} ms"))
}

/// reference ÷ atauth-client of the medians (above 1: ours is faster).
fn speedup(ours: Option<(f64, f64)>, reference: Option<(f64, f64)>) -> Option<f64> {
    match (ours, reference) {
        (Some((a, _)), Some((b, _))) if a > 0.0 => Some(b / a),
        _ => None,
    }
}

/// The Markdown summary: one row per step, then the login total and the goal.
fn markdown(rounds: &[Round], failures: [usize; 4], asked: usize, wall: Duration) -> String {
    let of = |side: Side, f: &dyn Fn(&Round) -> f64| -> Vec<f64> {
        rounds.iter().filter(|r| r.side == side && !r.warmup).map(f).collect()
    };
    let n = |side: Side| rounds.iter().filter(|r| r.side == side && !r.warmup).count();
    let ratio = |a, b| speedup(a, b).map_or_else(|| "—".to_owned(), |x| format!("{x:.2}×"));
    let mut s = format!(
        "{asked} measured rounds after one warm-up round; successful logins (atauth-client warm / new \
         process, reference warm / new process): {} / {} / {} / {}; failed, warm-up included: {} / {} / \
         {} / {}; {:.0} s in all.\n\n",
        n(Side::Ours),
        n(Side::OursNew),
        n(Side::Warm),
        n(Side::Reference),
        failures[Side::Ours.index()],
        failures[Side::OursNew.index()],
        failures[Side::Warm.index()],
        failures[Side::Reference.index()],
        wall.as_secs_f64(),
    );
    s.push_str(
        "| step | atauth-client, warm process | reference client, warm process | ratio | atauth-client, new process per login | reference client, new process per login (`ref-client-login.mjs`) | ratio |\n\
         |---|---|---|---|---|---|---|\n",
    );
    let row = |label: &str, f: &dyn Fn(&Round) -> f64, bold: bool| {
        let (a, w, an, b) = (
            summary(&of(Side::Ours, f)),
            summary(&of(Side::Warm, f)),
            summary(&of(Side::OursNew, f)),
            summary(&of(Side::Reference, f)),
        );
        let cells =
            [fmt_pair(a, 2), fmt_pair(w, 2), ratio(a, w), fmt_pair(an, 2), fmt_pair(b, 0), ratio(an, b)];
        let cells: Vec<String> =
            cells.into_iter().map(|c| if bold { format!("**{c}**") } else { c }).collect();
        let label = if bold { format!("**{label}**") } else { label.to_owned() };
        format!("| {label} | {} |\n", cells.join(" | "))
    };
    for (i, name) in STEPS.iter().enumerate() {
        let label = match *name {
            "consent" => "consent (same driver on every side; not compared)",
            "token" => "token (callback + code exchange)",
            other => other,
        };
        s.push_str(&row(label, &|r| r.steps[i], false));
    }
    s.push_str(&row("login total (authorize + token, excluding consent)", &Round::login_ms, true));
    let login = |side: Side| summary(&of(side, &Round::login_ms));
    let first = |side: Side| {
        rounds
            .iter()
            .find(|r| r.side == side && r.warmup)
            .map_or_else(|| "—".to_owned(), |r| format!("{:.0} ms", r.login_ms()))
    };
    let verdict = |x: Option<f64>| match x {
        Some(x) if x >= 1.0 => format!("**met** ({x:.2}× faster)"),
        Some(x) => format!("**missed** ({:.2}× slower)", 1.0 / x),
        None => "not measured (a side had no successful round)".to_owned(),
    };
    s.push_str(&format!(
        "\nMedian / p90 (nearest rank) in ms; ratio = reference median ÷ atauth-client median (above 1: \
         atauth-client is faster). The login total is summed per login (authorize + token), then \
         summarised. Timers: `Instant` for atauth-client, `performance.now()` in the warm Node process, \
         `Date.now()` (whole milliseconds) in `ref-client-login.mjs`. Warm-up round (the first login of \
         the run, when the reference PDS is cold too; not in the table): login total atauth-client warm \
         process {}, new process {}; reference warm process {}, new process {}.\n\n\
         Goal \"full login against the reference PDS no slower than the reference client in the same \
         run\" (median login totals): warm process vs warm process {}; new process vs new process {}; \
         atauth-client in this process vs `ref-client-login.mjs` {}.\n",
        first(Side::Ours),
        first(Side::OursNew),
        first(Side::Warm),
        first(Side::Reference),
        verdict(speedup(login(Side::Ours), login(Side::Warm))),
        verdict(speedup(login(Side::OursNew), login(Side::Reference))),
        verdict(speedup(login(Side::Ours), login(Side::Reference))),
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let a = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        assert!(Opts::parse(&a("--rounds 0")).is_err());
        assert!(Opts::parse(&a("--nope 1")).is_err());
        assert!(Opts::parse(&a("--rounds")).is_err());
        let o = Opts::parse(&a("--rounds 3 --md x.md")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((o.rounds, o.md.as_deref()), (3, Some("x.md")));
        assert_eq!(Opts::parse(&[]).unwrap_or_else(|e| panic!("{e}")).rounds, 20);
    }

    #[test]
    fn table_and_verdict() {
        let r = |side, a: f64, t: f64| Round { side, warmup: false, steps: [a, 100.0, t, 2.0, 3.0] };
        let rounds = vec![
            Round { side: Side::Ours, warmup: true, steps: [500.0; 5] },
            r(Side::Ours, 10.0, 5.0),
            r(Side::Ours, 12.0, 6.0),
            r(Side::Warm, 20.0, 10.0),
            r(Side::OursNew, 15.0, 5.0),
            r(Side::Reference, 30.0, 10.0),
            r(Side::Reference, 40.0, 20.0),
        ];
        let md = markdown(&rounds, [0; 4], 2, Duration::from_secs(3));
        let want = "| authorize | 10.00 / 12.00 ms | 20.00 / 20.00 ms | 2.00× | 15.00 / 15.00 ms | 30 / 40 ms | 2.00× |";
        assert!(md.contains(want), "{md}");
        assert!(md.contains("**15.00 / 18.00 ms**"), "{md}");
        assert!(md.contains("login total atauth-client warm process 1000 ms"), "{md}");
        assert!(md.contains("warm process vs warm process **met** (2.00× faster)"), "{md}");
        assert!(md.contains("new process vs new process **met** (2.00× faster)"), "{md}");
        let slow = vec![r(Side::Ours, 50.0, 50.0), r(Side::Warm, 30.0, 20.0)];
        assert!(markdown(&slow, [0; 4], 1, Duration::ZERO).contains("**missed** (2.00× slower)"));
        assert!(markdown(&[], [1; 4], 1, Duration::ZERO).contains("not measured"));
    }
}
