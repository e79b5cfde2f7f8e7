//! `atauth-bench`: a load generator for atproto authorization servers on loopback.
//!
//! - `atauth-bench serve [--port P] [--dir D] [--store sqlite|memory]`: atauth-server (SQLite store, one account
//!   `bench.test` / `bench-pass-123`) on 127.0.0.1, issuer `http://localhost:P`. Prints one JSON line
//!   (`{"ready":true,"url":..,"pid":..}`) and serves until SIGINT/SIGTERM.
//! - `atauth-bench compare [options]`: starts `atauth serve --dev` (the CLI next to this binary;
//!   `--atauth builder`: the `serve` above instead) and the reference PDS of
//!   `interop/` (`ref-pds.mjs`), runs every phase against both, one after the other, and prints one
//!   JSON line per phase and target. `--md FILE` also writes a Markdown table with the ratios.
//!
//! Options of `compare`: `--workers 8` (concurrent workers, each on its own connection from a
//! keep-alive pool and its own token family), `--count 2000` and `--seconds 10` (every phase stops at
//! whichever comes first), `--phases par,refresh,refresh@1,getsession,login,legacy-create,legacy-refresh`
//! (`name@N` overrides the worker count), `--targets atauth,reference`, `--md FILE`, `--store sqlite`
//! (`memory`: atauth's in-memory stores instead of SQLite, to separate the store's cost from the rest),
//! `--seed-sessions N` (N extra live token families written straight into atauth's SQLite file before
//! it starts: the growth runs).
//!
//! Every request carries a fresh DPoP proof (new `jti`, the latest `DPoP-Nonce` of the target; a
//! `use_dpop_nonce` answer is retried once with the new nonce and counted). Only loopback targets are
//! accepted. Server CPU per request = delta of utime+stime in `/proc/<server pid>/stat` / requests.
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "a command-line tool that reports on stdout")]

mod client_login;
mod stats;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atauth_crypto::dpop::{DpopSigner, ProofParams, wire};
use atauth_crypto::pkce::PkceVerifier;
use atauth_crypto::{Clock as _, SystemClock};
use serde_json::{Value, json};
use stats::Latency;
use url::Url;

const REDIRECT_URI: &str = "http://127.0.0.1/callback";
const CLIENT_ID: &str =
    "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=atproto%20transition%3Ageneric";
const SCOPE: &str = "atproto transition:generic";
const BENCH_HANDLE: &str = "bench.test";
const BENCH_PASSWORD: &str = "bench-pass-123";
/// A worker stops after this many failed requests in one phase.
const MAX_ERRORS: usize = 20;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    match args.first().map(String::as_str) {
        Some("serve") => rt.block_on(serve(&Opts::parse(&args[1..])?)),
        Some("compare") => rt.block_on(compare(Opts::parse(&args[1..])?)),
        Some("client-login") => rt.block_on(client_login::run(client_login::Opts::parse(&args[1..])?)),
        _ => {
            eprintln!(
                "usage: atauth-bench serve [--port P] [--dir D] | compare [options] (see the crate docs)"
            );
            std::process::exit(2)
        }
    }
}

// ------------------------------------------------------------------------------------ options ---

#[derive(Debug, Clone)]
struct Opts {
    workers: usize,
    count: usize,
    seconds: f64,
    phases: Vec<String>,
    targets: Vec<String>,
    md: Option<String>,
    port: u16,
    dir: Option<String>,
    store: String,
    seed_sessions: u64,
    server: String,
}

impl Opts {
    fn parse(args: &[String]) -> Result<Self, BoxError> {
        let mut o = Self {
            workers: 8,
            count: 2000,
            seconds: 10.0,
            phases: "par,refresh,refresh@1,getsession,login,legacy-create,legacy-refresh"
                .split(',')
                .map(str::to_owned)
                .collect(),
            targets: vec!["atauth".into(), "reference".into()],
            md: None,
            port: 0,
            dir: None,
            store: "sqlite".into(),
            seed_sessions: 0,
            server: "cli".into(),
        };
        let mut it = args.iter();
        while let Some(k) = it.next() {
            let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
            match k.as_str() {
                "--workers" => o.workers = v.parse()?,
                "--count" => o.count = v.parse()?,
                "--seconds" => o.seconds = v.parse()?,
                "--phases" => o.phases = v.split(',').map(str::to_owned).collect(),
                "--targets" => o.targets = v.split(',').map(str::to_owned).collect(),
                "--md" => o.md = Some(v.clone()),
                "--port" => o.port = v.parse()?,
                "--dir" => o.dir = Some(v.clone()),
                "--atauth" if v == "cli" || v == "builder" => o.server = v.clone(),
                "--seed-sessions" => o.seed_sessions = v.parse()?,
                "--store" if v == "sqlite" || v == "memory" => o.store = v.clone(),
                _ => return Err(format!("unknown option {k}").into()),
            }
        }
        if o.workers == 0 || o.workers > 256 || o.count == 0 || !(o.seconds > 0.0 && o.seconds <= 600.0) {
            return Err("--workers 1..=256, --count ≥ 1 and --seconds in (0, 600] please".into());
        }
        Ok(o)
    }
}

/// Only loopback targets: `localhost`, 127.0.0.0/8 and `::1`.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

// ------------------------------------------------------------------------- the atauth server ---

async fn serve(o: &Opts) -> Result<(), BoxError> {
    use atauth_server::store::{SqliteStore, Stores};
    use atauth_server::{AuthServer, RateLimit, SignInLimits};

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", o.port)).await?;
    let port = listener.local_addr()?.port();
    let dir = match &o.dir {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir().join(format!("atauth-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let issuer = format!("http://localhost:{port}");
    // The sign-in throttle is per identifier and per IP; a benchmark signs one account in from one
    // address thousands of times, so its buckets are made large. Every other check is unchanged.
    let unthrottled = RateLimit { burst: 1_000_000, refill_every: Duration::from_millis(1) };
    let server = AuthServer::builder(&issuer)
        .dev_mode(true)
        .data_dir(&dir)
        .stores(if o.store == "memory" {
            Stores::memory()
        } else {
            let db = dir.join("bench.sqlite");
            let store = SqliteStore::open(&db)?;
            seed_sessions(&db, o.seed_sessions)?;
            Stores::single(store)
        })
        .handle_domains([".test"])
        .sign_in_limits(SignInLimits {
            per_identifier_and_ip: unthrottled,
            per_identifier: unthrottled,
            per_ip: unthrottled,
        })
        .build()?;
    ensure_bench_account(server.stores().accounts.as_ref()).await?;
    println!("{}", json!({"ready": true, "url": issuer, "pid": std::process::id(), "dir": dir}));
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { if let Some(t) = term.as_mut() { t.recv().await; } else { std::future::pending::<()>().await } } => {}
        }
    };
    atauth_server::web::serve(server, listener, None, shutdown).await?;
    if o.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Creates the bench account (`bench.test`) unless it exists.
async fn ensure_bench_account(accounts: &dyn atauth_server::store::AccountStore) -> Result<(), BoxError> {
    use atauth_server::store::{AccountRecord, AccountStatus};
    if accounts.account_by_handle(BENCH_HANDLE).await?.is_none() {
        accounts
            .create_account(AccountRecord {
                did: "did:plc:benchbenchbenchbenchbenc".into(),
                handle: BENCH_HANDLE.into(),
                email: None,
                password_hash: atauth_server::password::hash_with_salt(
                    BENCH_PASSWORD,
                    "00112233445566778899aabbccddeeff",
                )?,
                signing_key_hex: None,
                created_at: SystemClock.unix_now(),
                status: AccountStatus::Active,
            })
            .await?;
    }
    Ok(())
}

/// Writes `n` live token families (and their refresh tokens) straight into the SQLite file, for the
/// growth runs: how the token endpoint and getSession scale with stored sessions. The rows belong
/// to the bench account and a client the generator never uses, so they are only ballast.
fn seed_sessions(db: &std::path::Path, n: u64) -> Result<(), BoxError> {
    if n == 0 {
        return Ok(());
    }
    let t0 = Instant::now();
    let client_auth = serde_json::to_string(&atauth_server::store::ClientAuthBinding::None)?;
    let now = SystemClock.unix_now();
    let mut conn = rusqlite::Connection::open(db)?;
    let tx = conn.transaction()?;
    {
        let mut session = tx.prepare(
            "INSERT INTO sessions (id, client_id, sub, scope, dpop_jkt, client_auth, created_at, expires_at, \
             refresh_hash, refresh_expires_at, access_jti, access_expires_at, updated_at, device_id) \
             VALUES (?1, 'http://localhost?seeded', 'did:plc:benchbenchbenchbenchbenc', 'atproto', ?2, ?3, \
             ?4, ?5, ?6, ?5, ?7, ?8, ?4, NULL)",
        )?;
        let mut refresh =
            tx.prepare("INSERT INTO refresh_tokens (hash, session_id, rotated) VALUES (?1, ?2, 0)")?;
        for i in 0..n {
            // Distinct, well-spread 32-byte keys (splitmix64), like the SHA-256 hashes the server stores.
            let mut hash = [0u8; 32];
            let mut x = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
            for chunk in hash.chunks_mut(8) {
                x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = x;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
            }
            let id = format!("seed{}", hex_of(&hash[..12]));
            session.execute(rusqlite::params![
                id,
                hex_of(&hash[12..28]),
                client_auth,
                now,
                now + 86_400,
                &hash[..],
                format!("jti{}", hex_of(&hash[..16])),
                now + 900,
            ])?;
            refresh.execute(rusqlite::params![&hash[..], id])?;
        }
    }
    tx.commit()?;
    eprintln!("[bench] seeded {n} sessions in {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The server child process, stopped with SIGTERM when dropped; its data directory, if given, is
/// removed afterwards.
struct ServeChild(Child, Option<std::path::PathBuf>);

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !matches!(self.0.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if !matches!(self.0.try_wait(), Ok(Some(_))) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
        if let Some(dir) = &self.1 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Starts `atauth serve --dev` (the CLI, from the same target directory as this binary) on a free
/// loopback port, with the bench account and any seeded sessions written into its data directory
/// first. Returns the child and `{"url", "pid"}`.
async fn start_atauth_cli(seed: u64) -> Result<(ServeChild, Value), BoxError> {
    use std::io::BufRead as _;
    use std::os::unix::fs::DirBuilderExt as _;
    let exe = std::env::current_exe()?.with_file_name("atauth");
    if !exe.exists() {
        return Err(format!(
            "{} not found: build it (cargo build --release -p atauth) or use --atauth builder",
            exe.display()
        )
        .into());
    }
    let dir = std::env::temp_dir().join(format!("atauth-bench-cli-{}", std::process::id()));
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
    let db = dir.join(atauth_server::server::DATABASE_FILE);
    {
        let store = atauth_server::store::SqliteStore::open(&db)?;
        ensure_bench_account(&store).await?;
    }
    seed_sessions(&db, seed)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    // The sign-in throttle is raised for the same reason as in `serve` (one account, one address).
    let mut child = Command::new(&exe)
        .args(["serve", "--dev", "--bind", "127.0.0.1", "--port", &port.to_string(), "--no-metrics"])
        .arg("--data-dir")
        .arg(&dir)
        .args([
            "--sign-in-limit-identifier-ip",
            "1000000/1s",
            "--sign-in-limit-identifier",
            "1000000/1s",
            "--sign-in-limit-ip",
            "1000000/1s",
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let pid = child.id();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let guard = ServeChild(child, Some(dir));
    let mut lines = std::io::BufReader::new(stdout).lines();
    let issuer = loop {
        let line = lines.next().ok_or("atauth serve exited before listening")??;
        if let Some(rest) = line.strip_prefix("atauth serve: listening on ") {
            let issuer = rest.split("(issuer ").nth(1).and_then(|r| r.strip_suffix(')'));
            break issuer.ok_or_else(|| format!("unexpected line {line:?}"))?.to_owned();
        }
    };
    // Keep draining its stdout so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Ok((guard, json!({"url": issuer, "pid": pid})))
}

fn start_atauth(store: &str, seed_sessions: u64) -> Result<(ServeChild, Value), BoxError> {
    use std::io::BufRead as _;
    let mut child = Command::new(std::env::current_exe()?)
        .args(["serve", "--store", store, "--seed-sessions", &seed_sessions.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let guard = ServeChild(child, None);
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let ready: Value = serde_json::from_str(&line).map_err(|e| format!("serve said {line:?}: {e}"))?;
    Ok((guard, ready))
}

// ------------------------------------------------------------------------------- the client ---

/// One authorization server under test.
struct Target {
    name: String,
    base: Url,
    pid: String,
    handle: String,
    password: String,
    reference: bool,
    par_endpoint: String,
    token_endpoint: String,
    authorization_endpoint: String,
    http: reqwest::Client,
    nonce: Mutex<Option<String>>,
    nonce_retries: AtomicUsize,
}

/// One token family: a DPoP key, the latest refresh token and access token.
struct Family {
    signer: DpopSigner,
    refresh: String,
    access: String,
}

/// One legacy session.
struct LegacySession {
    refresh: String,
}

struct Reply {
    status: u16,
    json: Value,
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

impl Target {
    async fn new(
        name: &str,
        base: &str,
        pid: String,
        handle: &str,
        password: &str,
    ) -> Result<Self, BoxError> {
        let base = Url::parse(base)?;
        if !is_loopback(&base) {
            return Err(format!("{base} is not a loopback address").into());
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .pool_max_idle_per_host(512)
            .build()?;
        let meta: Value = serde_json::from_slice(
            &http.get(base.join("/.well-known/oauth-authorization-server")?).send().await?.bytes().await?,
        )?;
        let endpoint = |k: &str| -> Result<String, BoxError> {
            let e = meta[k].as_str().ok_or_else(|| format!("{name}: no {k} in the AS metadata"))?;
            if !is_loopback(&Url::parse(e)?) {
                return Err(format!("{e} is not a loopback address").into());
            }
            Ok(e.to_owned())
        };
        Ok(Self {
            name: name.to_owned(),
            pid,
            handle: handle.to_owned(),
            password: password.to_owned(),
            reference: name == "reference",
            par_endpoint: endpoint("pushed_authorization_request_endpoint")?,
            token_endpoint: endpoint("token_endpoint")?,
            authorization_endpoint: endpoint("authorization_endpoint")?,
            base,
            http,
            nonce: Mutex::new(None),
            nonce_retries: AtomicUsize::new(0),
        })
    }

    fn current_nonce(&self) -> Option<String> {
        self.nonce.lock().map(|n| n.clone()).unwrap_or(None)
    }

    /// Sends a request with a fresh DPoP proof; retries once on `use_dpop_nonce`.
    async fn dpop(
        &self,
        signer: &DpopSigner,
        method: reqwest::Method,
        url: &str,
        form_body: Option<String>,
        access: Option<&str>,
    ) -> Result<Reply, BoxError> {
        for attempt in 0..2 {
            let nonce = self.current_nonce();
            let proof = signer.proof(&ProofParams {
                method: method.as_str(),
                url,
                nonce: nonce.as_deref(),
                access_token: access,
                iat: SystemClock.unix_now(),
            });
            let mut req = self
                .http
                .request(method.clone(), url)
                .header(wire::DPOP_HEADER, proof)
                .header("accept", "application/json");
            if let Some(at) = access {
                req = req.header("authorization", format!("DPoP {at}"));
            }
            if let Some(b) = &form_body {
                req = req.header("content-type", "application/x-www-form-urlencoded").body(b.clone());
            }
            let res = req.send().await?;
            let status = res.status().as_u16();
            if let Some(n) = res.headers().get(wire::DPOP_NONCE_HEADER).and_then(|v| v.to_str().ok())
                && let Ok(mut slot) = self.nonce.lock()
            {
                *slot = Some(n.to_owned());
            }
            let www: Vec<String> = res
                .headers()
                .get_all("www-authenticate")
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect();
            let bytes = res.bytes().await?;
            let nonce_error = wire::is_nonce_challenge(status, www.iter().map(String::as_str), &bytes);
            let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if nonce_error && attempt == 0 {
                self.nonce_retries.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            return Ok(Reply { status, json });
        }
        Err("unreachable: retry loop ended".into())
    }

    async fn par(&self, signer: &DpopSigner) -> Result<(String, PkceVerifier, String), BoxError> {
        let pkce = PkceVerifier::generate();
        let state = PkceVerifier::generate().expose_secret()[..16].to_owned();
        let body = form(&[
            ("client_id", CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT_URI),
            ("scope", SCOPE),
            ("state", &state),
            ("code_challenge", &pkce.challenge()),
            ("code_challenge_method", "S256"),
            ("login_hint", &self.handle),
        ]);
        let r = self.dpop(signer, reqwest::Method::POST, &self.par_endpoint, Some(body), None).await?;
        match (r.status, r.json["request_uri"].as_str()) {
            (201, Some(uri)) => Ok((uri.to_owned(), pkce, state)),
            _ => Err(format!("PAR: HTTP {} {}", r.status, r.json).into()),
        }
    }

    /// PAR, sign-in and consent through the server's API, code exchange: a new token family.
    async fn login(&self) -> Result<Family, BoxError> {
        let signer = DpopSigner::generate();
        let (request_uri, pkce, state) = self.par(&signer).await?;
        let mut authorize = Url::parse(&self.authorization_endpoint)?;
        authorize
            .query_pairs_mut()
            .append_pair("client_id", CLIENT_ID)
            .append_pair("request_uri", &request_uri);
        let redirect = if self.reference {
            atauth_testkit::consent::reference_provider(&authorize, &self.handle, &self.password).await
        } else {
            atauth_testkit::consent::atauth_interim(&authorize, &self.handle, &self.password, true).await
        }
        .map_err(|e| format!("consent: {e}"))?;
        let q: std::collections::HashMap<String, String> = redirect.query_pairs().into_owned().collect();
        if q.get("state") != Some(&state) {
            return Err(format!("callback state mismatch: {redirect}").into());
        }
        let code = q.get("code").ok_or_else(|| format!("no code in {redirect}"))?;
        let body = form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", pkce.expose_secret()),
            ("client_id", CLIENT_ID),
        ]);
        let r = self.dpop(&signer, reqwest::Method::POST, &self.token_endpoint, Some(body), None).await?;
        Self::family_from(signer, &r, "code exchange")
    }

    fn family_from(signer: DpopSigner, r: &Reply, what: &str) -> Result<Family, BoxError> {
        match (r.status, r.json["refresh_token"].as_str(), r.json["access_token"].as_str()) {
            (200, Some(rt), Some(at)) => Ok(Family { signer, refresh: rt.to_owned(), access: at.to_owned() }),
            _ => Err(format!("{what}: HTTP {} {}", r.status, r.json).into()),
        }
    }

    async fn refresh(&self, fam: &mut Family) -> Result<(), BoxError> {
        let body = form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &fam.refresh),
            ("client_id", CLIENT_ID),
        ]);
        let r = self.dpop(&fam.signer, reqwest::Method::POST, &self.token_endpoint, Some(body), None).await?;
        match (r.status, r.json["refresh_token"].as_str(), r.json["access_token"].as_str()) {
            (200, Some(rt), Some(at)) => {
                fam.refresh = rt.to_owned();
                fam.access = at.to_owned();
                Ok(())
            }
            _ => Err(format!("refresh: HTTP {} {}", r.status, r.json).into()),
        }
    }

    async fn get_session(&self, fam: &Family) -> Result<(), BoxError> {
        let url = self.base.join("/xrpc/com.atproto.server.getSession")?;
        let r = self.dpop(&fam.signer, reqwest::Method::GET, url.as_str(), None, Some(&fam.access)).await?;
        if r.status == 200 && r.json["did"].is_string() {
            Ok(())
        } else {
            Err(format!("getSession: HTTP {} {}", r.status, r.json).into())
        }
    }

    async fn xrpc_post(
        &self,
        nsid: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Result<Value, BoxError> {
        let mut req = self.http.post(self.base.join(&format!("/xrpc/{nsid}"))?);
        if let Some(b) = bearer {
            req = req.header("authorization", format!("Bearer {b}"));
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let json: Value = serde_json::from_slice(&res.bytes().await?).unwrap_or(Value::Null);
        if status == 200 && json["refreshJwt"].is_string() {
            Ok(json)
        } else {
            Err(format!("{nsid}: HTTP {status} {json}").into())
        }
    }

    async fn create_session(&self) -> Result<LegacySession, BoxError> {
        let v = self
            .xrpc_post(
                "com.atproto.server.createSession",
                None,
                Some(json!({"identifier": self.handle, "password": self.password})),
            )
            .await?;
        Ok(LegacySession { refresh: v["refreshJwt"].as_str().unwrap_or_default().to_owned() })
    }

    async fn refresh_session(&self, s: &mut LegacySession) -> Result<(), BoxError> {
        let v = self.xrpc_post("com.atproto.server.refreshSession", Some(&s.refresh), None).await?;
        s.refresh = v["refreshJwt"].as_str().unwrap_or_default().to_owned();
        Ok(())
    }
}

// ---------------------------------------------------------------------------------- phases ---

/// What one phase measured.
#[derive(Debug, Clone)]
struct PhaseResult {
    target: String,
    phase: String,
    workers: usize,
    ok: usize,
    errors: usize,
    seconds: f64,
    latency: Latency,
    server_cpu_us: Option<f64>,
    gen_cpu_us: Option<f64>,
    server_rss_mib: Option<f64>,
    server_peak_rss_mib: Option<f64>,
    nonce_retries: usize,
    first_error: Option<String>,
}

impl PhaseResult {
    fn req_per_s(&self) -> f64 {
        if self.seconds > 0.0 { self.ok as f64 / self.seconds } else { 0.0 }
    }

    fn to_json(&self) -> Value {
        let r1 = |x: f64| (x * 10.0).round() / 10.0;
        let r2 = |x: f64| (x * 100.0).round() / 100.0;
        json!({
            "target": self.target, "phase": self.phase, "workers": self.workers,
            "ok": self.ok, "errors": self.errors, "seconds": r2(self.seconds),
            "req_per_s": r1(self.req_per_s()),
            "latency_ms": {"p50": r2(self.latency.p50), "p90": r2(self.latency.p90),
                           "p99": r2(self.latency.p99), "max": r2(self.latency.max)},
            "server_cpu_us_per_req": self.server_cpu_us.map(r1),
            "server_rss_mib": self.server_rss_mib.map(r1),
            "server_peak_rss_mib": self.server_peak_rss_mib.map(r1),
            "gen_cpu_us_per_req": self.gen_cpu_us.map(r1),
            "nonce_retries": self.nonce_retries,
            "first_error": self.first_error,
        })
    }
}

/// Per-worker state a phase's operation gets.
enum WorkerState {
    Family(Family),
    Legacy(LegacySession),
    None,
}

/// Runs `workers` loops of `op` until `count` requests have started or `seconds` have passed.
async fn run_phase<F, Fut>(
    t: &Arc<Target>,
    phase: &str,
    workers: usize,
    o: &Opts,
    states: Vec<WorkerState>,
    op: F,
) -> PhaseResult
where
    F: Fn(Arc<Target>, WorkerState) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = (WorkerState, Result<(), BoxError>)> + Send,
{
    let started = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let first_error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let deadline = Instant::now() + Duration::from_secs_f64(o.seconds);
    let retries0 = t.nonce_retries.load(Ordering::Relaxed);
    stats::reset_peak_rss(&t.pid);
    let cpu0 = stats::cpu_seconds(&t.pid);
    let self0 = stats::cpu_seconds("self");
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for state in states {
        let (t, op, started, errors, stop, first_error) =
            (t.clone(), op.clone(), started.clone(), errors.clone(), stop.clone(), first_error.clone());
        let count = o.count;
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut state = state;
            while !stop.load(Ordering::Relaxed)
                && Instant::now() < deadline
                && started.fetch_add(1, Ordering::Relaxed) < count
            {
                let s = Instant::now();
                let (next, r) = op(t.clone(), state).await;
                state = next;
                match r {
                    Ok(()) => lat.push(s.elapsed()),
                    Err(e) => {
                        if let Ok(mut f) = first_error.lock() {
                            f.get_or_insert_with(|| e.to_string());
                        }
                        if errors.fetch_add(1, Ordering::Relaxed) + 1 >= MAX_ERRORS {
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                }
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for h in handles {
        if let Ok(l) = h.await {
            lat.extend(l);
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    let ok = lat.len();
    let per_req = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if ok > 0 => Some((b - a) / ok as f64 * 1e6),
        _ => None,
    };
    let rss = stats::rss_kib(&t.pid);
    let r = PhaseResult {
        target: t.name.clone(),
        phase: phase.to_owned(),
        workers,
        ok,
        errors: errors.load(Ordering::Relaxed),
        seconds,
        latency: Latency::of(&mut lat),
        server_cpu_us: per_req(cpu0, stats::cpu_seconds(&t.pid)),
        gen_cpu_us: per_req(self0, stats::cpu_seconds("self")),
        server_rss_mib: rss.map(|(r, _)| r as f64 / 1024.0),
        server_peak_rss_mib: rss.map(|(_, h)| h as f64 / 1024.0),
        nonce_retries: t.nonce_retries.load(Ordering::Relaxed) - retries0,
        first_error: first_error.lock().ok().and_then(|f| f.clone()),
    };
    println!("{}", r.to_json());
    r
}

async fn families(t: &Target, n: usize) -> Result<Vec<WorkerState>, BoxError> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(WorkerState::Family(t.login().await?));
    }
    Ok(v)
}

async fn run_one(t: &Arc<Target>, spec: &str, o: &Opts) -> Result<PhaseResult, BoxError> {
    let (name, workers) = match spec.split_once('@') {
        Some((n, w)) => (n, w.parse()?),
        None => (spec, o.workers),
    };
    let none = || (0..workers).map(|_| WorkerState::None).collect::<Vec<_>>();
    Ok(match name {
        "par" => {
            let signer = Arc::new(DpopSigner::generate());
            run_phase(t, spec, workers, o, none(), move |t, s| {
                let signer = signer.clone();
                async move { (s, t.par(&signer).await.map(drop)) }
            })
            .await
        }
        "refresh" => {
            let fams = families(t, workers).await?;
            run_phase(t, spec, workers, o, fams, |t, mut s| async move {
                let r = match &mut s {
                    WorkerState::Family(f) => t.refresh(f).await,
                    _ => Err("no family".into()),
                };
                (s, r)
            })
            .await
        }
        "getsession" => {
            let fams = families(t, workers).await?;
            run_phase(t, spec, workers, o, fams, |t, s| async move {
                let r = match &s {
                    WorkerState::Family(f) => t.get_session(f).await,
                    _ => Err("no family".into()),
                };
                (s, r)
            })
            .await
        }
        "login" => {
            run_phase(t, spec, workers, o, none(), |t, s| async move { (s, t.login().await.map(drop)) }).await
        }
        "legacy-create" => {
            run_phase(
                t,
                spec,
                workers,
                o,
                none(),
                |t, s| async move { (s, t.create_session().await.map(drop)) },
            )
            .await
        }
        "legacy-refresh" => {
            let mut sessions = Vec::new();
            for _ in 0..workers {
                sessions.push(WorkerState::Legacy(t.create_session().await?));
            }
            run_phase(t, spec, workers, o, sessions, |t, mut s| async move {
                let r = match &mut s {
                    WorkerState::Legacy(l) => t.refresh_session(l).await,
                    _ => Err("no session".into()),
                };
                (s, r)
            })
            .await
        }
        _ => return Err(format!("unknown phase {name}").into()),
    })
}

// ---------------------------------------------------------------------------------- compare ---

async fn compare(o: Opts) -> Result<(), BoxError> {
    // Keep the child processes alive until the end; dropping them stops them.
    let mut atauth_child = None;
    let mut ref_peers = None;
    let mut targets = Vec::new();
    for name in &o.targets {
        match name.as_str() {
            "atauth" => {
                let (child, ready) = if o.server == "cli" && o.store == "sqlite" {
                    start_atauth_cli(o.seed_sessions).await?
                } else {
                    start_atauth(&o.store, o.seed_sessions)?
                };
                let url = ready["url"].as_str().ok_or("serve: no url")?.to_owned();
                let pid = ready["pid"].to_string();
                atauth_child = Some(child);
                targets.push(Arc::new(Target::new("atauth", &url, pid, BENCH_HANDLE, BENCH_PASSWORD).await?));
            }
            "reference" => {
                let dir =
                    atauth_testkit::interop::installed().ok_or("the interop harness is not installed")?;
                let ttl = Duration::from_secs(60 + o.phases.len() as u64 * 2 * (o.seconds as u64 + 60));
                let (peers, ready) = atauth_testkit::interop::start_ref_pds(&dir, ttl);
                let pid = peers.process.id().to_string();
                ref_peers = Some(peers);
                targets.push(Arc::new(
                    Target::new("reference", &ready.pds_url, pid, &ready.handle, &ready.password).await?,
                ));
            }
            other => return Err(format!("unknown target {other}").into()),
        }
    }
    // Warm-up (not measured): a login and a few refreshes on each target.
    for t in &targets {
        let mut f = t.login().await?;
        for _ in 0..20 {
            t.refresh(&mut f).await?;
        }
        for _ in 0..5 {
            t.par(&f.signer).await?;
        }
    }
    let mut results = Vec::new();
    for spec in &o.phases {
        for t in &targets {
            match run_one(t, spec, &o).await {
                Ok(r) => results.push(r),
                Err(e) => {
                    eprintln!("[bench] {} {spec}: setup failed: {e}", t.name);
                    println!("{}", json!({"target": t.name, "phase": spec, "setup_error": e.to_string()}));
                }
            }
        }
    }
    if let Some(path) = &o.md {
        std::fs::write(path, markdown(&results, &o))?;
    }
    drop(atauth_child);
    drop(ref_peers);
    Ok(())
}

fn fmt_opt(v: Option<f64>, unit_div: f64, digits: usize) -> String {
    v.map_or_else(|| "—".to_owned(), |x| format!("{:.*}", digits, x / unit_div))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if a > 0.0 && b > 0.0 => format!("{:.1}×", a / b),
        _ => "—".to_owned(),
    }
}

/// The Markdown section: one row per phase, atauth next to the reference, with ratios.
fn markdown(results: &[PhaseResult], o: &Opts) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "Every phase: at most {} requests or {} s, whichever comes first; {} workers unless the phase \
         says `@N`.\n\n",
        o.count, o.seconds, o.workers
    ));
    s.push_str(
        "| phase | atauth req/s | reference req/s | req/s ratio | atauth server CPU/req | reference server CPU/req | CPU ratio | atauth p50 / p99 | reference p50 / p99 | atauth peak RSS | reference peak RSS | errors (a / r) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for spec in &o.phases {
        let a = results.iter().find(|r| &r.phase == spec && r.target == "atauth");
        let b = results.iter().find(|r| &r.phase == spec && r.target == "reference");
        let rps = |r: Option<&PhaseResult>| r.map(PhaseResult::req_per_s);
        let cpu = |r: Option<&PhaseResult>| r.and_then(|r| r.server_cpu_us);
        let lat = |r: Option<&PhaseResult>| {
            r.map_or_else(|| "—".to_owned(), |r| format!("{:.2} / {:.2} ms", r.latency.p50, r.latency.p99))
        };
        let rss = |r: Option<&PhaseResult>| fmt_opt(r.and_then(|r| r.server_peak_rss_mib), 1.0, 0) + " MiB";
        let err = |r: Option<&PhaseResult>| r.map_or_else(|| "—".to_owned(), |r| r.errors.to_string());
        s.push_str(&format!(
            "| {spec} | {} | {} | {} | {} µs | {} µs | {} | {} | {} | {} | {} | {} / {} |\n",
            fmt_opt(rps(a), 1.0, 0),
            fmt_opt(rps(b), 1.0, 0),
            ratio(rps(a), rps(b)),
            fmt_opt(cpu(a), 1.0, 0),
            fmt_opt(cpu(b), 1.0, 0),
            ratio(cpu(b), cpu(a)),
            lat(a),
            lat(b),
            rss(a),
            rss(b),
            err(a),
            err(b),
        ));
    }
    s.push_str(
        "\nreq/s ratio = atauth / reference; CPU ratio = reference / atauth (both: higher is better for \
         atauth). Server CPU/req: utime+stime of the server process over the phase / successful \
         requests. Peak RSS: `VmHWM` of the server process during the phase (reset at its start through \
         `/proc/<pid>/clear_refs`).\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets() {
        for ok in ["http://localhost:1/", "http://127.0.0.1:2/x", "http://[::1]:3/", "http://127.1.2.3/"] {
            assert!(is_loopback(&Url::parse(ok).unwrap_or_else(|e| panic!("{e}"))), "{ok}");
        }
        for bad in ["http://example.com/", "http://10.0.0.1/", "http://localhost.example.com/", "file:///x"] {
            assert!(!is_loopback(&Url::parse(bad).unwrap_or_else(|e| panic!("{e}"))), "{bad}");
        }
    }

    #[test]
    fn options_are_bounded() {
        let a = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        assert!(Opts::parse(&a("--seconds 0")).is_err());
        assert!(Opts::parse(&a("--workers 0")).is_err());
        assert!(Opts::parse(&a("--nope 1")).is_err());
        let o = Opts::parse(&a("--phases refresh@1,par --count 5")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((o.phases.len(), o.count, o.workers), (2, 5, 8));
    }
}
