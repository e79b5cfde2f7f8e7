//! The servers under test: `serve` (atauth-server in this process, built with the builder), starting
//! and stopping `atauth serve --dev` or that `serve` as a child process, and the bench account and
//! seeded sessions they start with.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use atauth_crypto::{Clock as _, SystemClock};
use serde_json::{Value, json};

use crate::BoxError;
use crate::opts::Opts;

/// The handle of the bench account.
pub(crate) const BENCH_HANDLE: &str = "bench.test";
/// The password of the bench account.
pub(crate) const BENCH_PASSWORD: &str = "bench-pass-123";

/// `atauth-bench serve`: atauth-server with the bench account on 127.0.0.1 until SIGINT/SIGTERM.
pub(crate) async fn serve(o: &Opts) -> Result<(), BoxError> {
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
    // Postgres: a database of its own, dropped when `serve` ends (the guard lives to the end).
    let mut _database = None;
    let mut legacy = atauth_server::legacy::LegacyOptions::default();
    let mut redis_keys = None;
    let stores = match o.store.as_str() {
        "memory" => Some(Stores::memory()),
        "postgres" | "postgres+redis" => {
            use atauth_server::store::postgres::testing::TestDatabase;
            use atauth_server::store::{PostgresLegacyStore, PostgresStore};
            let db = TestDatabase::create().await;
            let store = PostgresStore::connect(db.url()).await?;
            _database = Some(db);
            legacy.store = Some(std::sync::Arc::new(PostgresLegacyStore::in_store(&store)));
            let mut stores = Stores::single(store);
            if o.store == "postgres+redis" {
                let mut ro = atauth_server::store::redis::RedisOptions::default();
                ro.prefix = format!("atauth-bench-{}:", std::process::id());
                let url = std::env::var("ATAUTH_TEST_REDIS_URL")
                    .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
                let redis = atauth_server::store::redis::RedisReplayStore::connect_with(&url, ro).await?;
                redis_keys = Some(redis.clone());
                stores = stores.with_replay(std::sync::Arc::new(redis));
            }
            Some(stores)
        }
        _ => {
            // The builder's own SQLite default (what `atauth serve` runs: DPoP `jti`s in memory),
            // on the file seeded here first.
            let db = dir.join(atauth_server::server::DATABASE_FILE);
            drop(SqliteStore::open(&db)?);
            seed_sessions(&db, o.seed_sessions)?;
            None
        }
    };
    let mut builder = AuthServer::builder(&issuer);
    if let Some(stores) = stores {
        builder = builder.stores(stores);
    }
    let server = builder
        .dev_mode(true)
        .data_dir(&dir)
        .legacy(legacy)
        .handle_domains([".test"])
        .lexicon_dir(write_bench_lexicons(&dir)?)
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
    if let Some(redis) = redis_keys {
        redis.delete_all().await?;
    }
    if o.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Writes the permission set of the `par-include` phase ([`crate::target::BENCH_SET`]) into
/// `dir/lexicons` and returns that directory, for the server's `--lexicon-dir`.
pub(crate) fn write_bench_lexicons(dir: &std::path::Path) -> Result<std::path::PathBuf, BoxError> {
    let set = crate::target::BENCH_SET;
    let authority = set.rsplit_once('.').map_or(set, |(a, _)| a);
    let doc = json!({
        "lexicon": 1,
        "id": set,
        "defs": { "main": {
            "type": "permission-set",
            "title": "Bench app",
            "detail": "What a typical app asks for: its records, and reads from its app view.",
            "permissions": [
                { "type": "permission", "resource": "repo",
                  "collection": [format!("{authority}.post"), format!("{authority}.like")] },
                { "type": "permission", "resource": "repo",
                  "collection": [format!("{authority}.profile")], "action": ["update"] },
                { "type": "permission", "resource": "rpc",
                  "lxm": [format!("{authority}.getFeed"), format!("{authority}.getThread")],
                  "inheritAud": true },
            ]
        } }
    });
    let lexicons = dir.join("lexicons");
    std::fs::create_dir_all(&lexicons)?;
    std::fs::write(lexicons.join(format!("{set}.json")), serde_json::to_vec_pretty(&doc)?)?;
    Ok(lexicons)
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
    // Ballast only, written before the server starts: the whole file in this connection's page
    // cache (up to 8 GiB) and a rollback journal instead of the WAL, so 10 M random-key rows are
    // a few minutes of B-tree work instead of an hour of cache spills into a WAL several times the
    // database's size. The rows still go in in random key order, so the B-trees are as full as a
    // server's own. The server switches the file back to WAL when it opens it.
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -8 * 1024 * 1024)?;
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
    conn.pragma_update(None, "journal_mode", "WAL")?;
    eprintln!("[bench] seeded {n} sessions in {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The server child process, stopped with SIGTERM when dropped; its data directory, if given, is
/// removed afterwards.
pub(crate) struct ServeChild(Child, Option<std::path::PathBuf>);

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

/// Starts `exe serve --dev` (the `atauth` CLI: normally the one in the same target directory as this
/// binary) on a free loopback port, with the bench account and any seeded sessions written into its
/// data directory first. Returns the child and `{"url", "pid"}`.
pub(crate) async fn start_atauth_cli(
    exe: &std::path::Path,
    seed: u64,
) -> Result<(ServeChild, Value), BoxError> {
    check_cli(exe)?;
    let dir = new_data_dir()?;
    let db = dir.join(atauth_server::server::DATABASE_FILE);
    {
        let store = atauth_server::store::SqliteStore::open(&db)?;
        ensure_bench_account(&store).await?;
    }
    seed_sessions(&db, seed)?;
    let port = free_port()?;
    let (child, issuer, pid) = spawn_cli(exe, &dir, port, &[], &[])?;
    Ok((child, json!({"url": issuer, "pid": pid})))
}

/// Several `atauth serve` instances over one shared store, behind one issuer (the first
/// instance's address, as the public name a load balancer answers on); what `--instances` runs.
pub(crate) struct Service {
    /// The instances; stopped (SIGTERM) when dropped, before the database goes.
    children: Vec<ServeChild>,
    /// The issuer every instance names.
    pub(crate) issuer: String,
    /// Each instance's own address.
    pub(crate) instance_urls: Vec<url::Url>,
    /// Each instance's process id.
    pub(crate) pids: Vec<String>,
    /// The Redis keys of this run, deleted by [`Service::stop`].
    redis: Option<atauth_server::store::redis::RedisReplayStore>,
    /// The database of this run, dropped last.
    _database: atauth_server::store::postgres::testing::TestDatabase,
}

impl Service {
    /// `n` instances of `exe serve --dev --database-url …` (and `--redis-url …` for
    /// `postgres+redis`) on a fresh database with the bench account, sharing what
    /// docs/SCALE-OUT.md says instances share: the signing-key file, `ATAUTH_JWT_SECRET`,
    /// `ATAUTH_DPOP_NONCE_SECRET`, the issuer, and a Redis key prefix of their own.
    pub(crate) async fn start(
        exe: &std::path::Path,
        store: &str,
        n: usize,
        sslmode: Option<&str>,
    ) -> Result<Self, BoxError> {
        use atauth_server::store::postgres::testing::TestDatabase;
        check_cli(exe)?;
        let database = TestDatabase::create().await;
        {
            let pg = atauth_server::store::PostgresStore::connect(database.url()).await?;
            ensure_bench_account(&pg).await?;
        }
        let hex = |b: [u8; 32]| hex_of(&b);
        let prefix = format!("atauth-bench-{}-{}:", std::process::id(), hex_of(&random_bytes::<4>()));
        let mut env = vec![
            (
                "ATAUTH_DATABASE_URL",
                match sslmode {
                    Some(mode) => format!("{}?sslmode={mode}", database.url()),
                    None => database.url().to_owned(),
                },
            ),
            ("ATAUTH_JWT_SECRET", hex(random_bytes())),
            ("ATAUTH_DPOP_NONCE_SECRET", hex(random_bytes())),
        ];
        let mut redis = None;
        if store == "postgres+redis" {
            let url =
                std::env::var("ATAUTH_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
            let mut ro = atauth_server::store::redis::RedisOptions::default();
            prefix.clone_into(&mut ro.prefix);
            redis = Some(atauth_server::store::redis::RedisReplayStore::connect_with(&url, ro).await?);
            env.push(("ATAUTH_REDIS_URL", url));
            env.push(("ATAUTH_REDIS_PREFIX", prefix));
        }
        let ports = (0..n).map(|_| free_port()).collect::<Result<Vec<_>, _>>()?;
        let issuer = format!("http://localhost:{}", ports[0]);
        let shared = new_data_dir()?;
        let keys = shared.join("signing-keys.json");
        let extra = ["--issuer".into(), issuer.clone().into(), "--signing-key".into(), keys.into_os_string()];
        let mut svc = Self {
            children: Vec::new(),
            issuer: issuer.clone(),
            instance_urls: Vec::new(),
            pids: Vec::new(),
            redis,
            _database: database,
        };
        // One after the other: the first generates the signing key the others then load.
        for (i, port) in ports.into_iter().enumerate() {
            let dir = if i == 0 { shared.clone() } else { new_data_dir()? };
            let (child, named, pid) = spawn_cli(exe, &dir, port, &extra, &env)?;
            if named != issuer {
                return Err(format!("instance {i} names the issuer {named}, not {issuer}").into());
            }
            svc.children.push(child);
            svc.instance_urls.push(url::Url::parse(&format!("http://127.0.0.1:{port}/"))?);
            svc.pids.push(pid.to_string());
        }
        Ok(svc)
    }

    /// Stops the instances, then deletes this run's Redis keys and drops the database.
    pub(crate) async fn stop(mut self) -> Result<(), BoxError> {
        self.children.clear();
        if let Some(redis) = self.redis.take() {
            redis.delete_all().await?;
        }
        Ok(())
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    atauth_crypto::random::random_bytes::<N>()
}

fn check_cli(exe: &std::path::Path) -> Result<(), BoxError> {
    if exe.exists() {
        return Ok(());
    }
    Err(format!(
        "{} not found: build it (cargo build --release -p atauth) or use --atauth builder",
        exe.display()
    )
    .into())
}

fn free_port() -> Result<u16, BoxError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A new private data directory (one per server: a before/after or several-instance run starts
/// more than one), removed when its server stops.
fn new_data_dir() -> Result<std::path::PathBuf, BoxError> {
    use std::os::unix::fs::DirBuilderExt as _;
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("atauth-bench-cli-{}-{n}", std::process::id()));
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
    Ok(dir)
}

/// Spawns `exe serve --dev` on 127.0.0.1:`port` with `dir` as its data directory (and the bench
/// permission set in it), `extra` arguments and `env`, and waits for its listening line. Returns the
/// child (which owns `dir`), the issuer it names and its pid.
fn spawn_cli(
    exe: &std::path::Path,
    dir: &std::path::Path,
    port: u16,
    extra: &[std::ffi::OsString],
    env: &[(&str, String)],
) -> Result<(ServeChild, String, u32), BoxError> {
    use std::io::BufRead as _;
    let lexicons = write_bench_lexicons(dir)?;
    // The sign-in throttle is raised for the same reason as in `serve` (one account, one address).
    let mut child = Command::new(exe)
        .args(["serve", "--dev", "--bind", "127.0.0.1", "--port", &port.to_string(), "--no-metrics"])
        .arg("--data-dir")
        .arg(dir)
        .arg("--lexicon-dir")
        .arg(&lexicons)
        .args([
            "--sign-in-limit-identifier-ip",
            "1000000/1s",
            "--sign-in-limit-identifier",
            "1000000/1s",
            "--sign-in-limit-ip",
            "1000000/1s",
        ])
        .args(extra)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let pid = child.id();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let guard = ServeChild(child, Some(dir.to_owned()));
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
    Ok((guard, issuer, pid))
}

/// Starts this binary's `serve` as a child process (`--atauth builder`, or `--store memory`).
/// Returns the child and its ready line.
pub(crate) fn start_atauth(store: &str, seed_sessions: u64) -> Result<(ServeChild, Value), BoxError> {
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
