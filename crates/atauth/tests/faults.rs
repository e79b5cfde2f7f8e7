//! Faults with the real `atauth` binary over the machine's Postgres (issue 14), bounded in count and
//! time:
//!
//! - an instance killed with SIGKILL in the middle of a refresh load, then restarted: every client
//!   keeps a working token pair (its new one, or its old one, retried on the other instance), and
//!   no family is spent twice (exactly one live refresh token per family, the one its client holds);
//! - the Postgres connection cut during a refresh load by a TCP proxy the test puts between atauth
//!   and Postgres (the machine's Postgres keeps running): requests fail with 500 `server_error`
//!   while it is down and succeed again once it is back, without restarting atauth.
//!
//! Each test prints its counts (docs/SCALE-OUT.md quotes them); nothing asserts a duration.

#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::print_stdout
)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use atauth_crypto::dpop::{DpopSigner, ProofParams, wire};
use atauth_crypto::pkce::PkceVerifier;
use atauth_crypto::{Clock as _, SystemClock};
use atauth_server::store::postgres::testing::TestDatabase;
use atauth_server::store::{
    AccountRecord, AccountStatus, AccountStore as _, PostgresStore, RefreshKey, TokenHash, TokenStore as _,
};
use common::*;
use serde_json::Value;

/// The issuer both instances share (a load balancer's name; nothing needs to listen there).
const ISSUER: &str = "http://localhost:2583";
const CLIENT_ID: &str =
    "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=atproto%20transition%3Ageneric";
const REDIRECT_URI: &str = "http://127.0.0.1/callback";
const DID: &str = "did:plc:faults00000000000000000";
const HANDLE: &str = "alice.test";
const PASSWORD: &str = "faults-pass-123";
/// Each client refreshes at most once per round. More than a second apart: the lost-response retry
/// holds only for a token whose rotation is the family's latest by the second (store::rules).
const ROUND: Duration = Duration::from_millis(1200);

/// Creates the account the clients sign in to, directly in the database.
async fn create_account(store: &PostgresStore) {
    let hash = atauth_server::password::hash_with_salt(PASSWORD, "00112233445566778899aabbccddeeff").unwrap();
    store
        .create_account(AccountRecord {
            did: DID.into(),
            handle: HANDLE.into(),
            email: None,
            password_hash: hash,
            signing_key_hex: None,
            created_at: SystemClock.unix_now(),
            status: AccountStatus::Active,
        })
        .await
        .unwrap();
}

fn hex32() -> String {
    hex::encode(atauth_crypto::random::random_bytes::<32>())
}

/// `atauth serve` over `database_url` with the settings several instances share.
fn serve(home: &TempDir, name: &str, database_url: &str, secrets: &[(String, String)]) -> Serve {
    let data = home.join(name);
    let keys = home.join("signing-keys.json");
    let env: Vec<(&str, &str)> = secrets.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Serve::start_env(
        &home.0,
        &[
            "serve",
            "--dev",
            "--issuer",
            ISSUER,
            "--port",
            "0",
            "--data-dir",
            data.to_str().unwrap(),
            "--signing-key",
            keys.to_str().unwrap(),
            "--database-url",
            database_url,
            "--refresh-retry-grace",
            "5m",
            // One address signs in every client of the test.
            "--sign-in-limit-ip",
            "10000/1s",
            "--sign-in-limit-identifier",
            "10000/1s",
        ],
        &env,
    )
}

fn shared_secrets() -> Vec<(String, String)> {
    vec![("ATAUTH_DPOP_NONCE_SECRET".into(), hex32()), ("ATAUTH_JWT_SECRET".into(), hex32())]
}

struct Reply {
    status: u16,
    json: Value,
}

impl Reply {
    fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or("<none>")
    }
}

/// The clients' HTTP side: DPoP proofs for the shared issuer, sent to whichever instance, and the
/// server's nonce (the instances share its secret).
struct Clients {
    http: reqwest::Client,
    nonce: Mutex<Option<String>>,
}

/// One client's token family.
struct Family {
    signer: DpopSigner,
    refresh: String,
    access: String,
}

impl Clients {
    fn new() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self { http, nonce: Mutex::new(None) }
    }

    /// A DPoP request to `base` (an instance) for `path` of the issuer; one retry on a nonce
    /// challenge. `Err` is a transport failure (the instance is gone).
    async fn send(
        &self,
        base: &str,
        method: reqwest::Method,
        path: &str,
        signer: &DpopSigner,
        form: Option<&[(&str, &str)]>,
        access: Option<&str>,
    ) -> Result<Reply, String> {
        for attempt in 0..2 {
            let nonce = self.nonce.lock().unwrap().clone();
            let proof = signer.proof(&ProofParams {
                method: method.as_str(),
                url: &format!("{ISSUER}{path}"),
                nonce: nonce.as_deref(),
                access_token: access,
                iat: SystemClock.unix_now(),
            });
            let mut req =
                self.http.request(method.clone(), format!("{base}{path}")).header(wire::DPOP_HEADER, proof);
            if let Some(at) = access {
                req = req.header("authorization", format!("DPoP {at}"));
            }
            if let Some(f) = form {
                let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(f).finish();
                req = req.header("content-type", "application/x-www-form-urlencoded").body(body);
            }
            let res = req.send().await.map_err(|e| format!("{e:?}"))?;
            let status = res.status().as_u16();
            if let Some(n) = res.headers().get(wire::DPOP_NONCE_HEADER).and_then(|v| v.to_str().ok()) {
                *self.nonce.lock().unwrap() = Some(n.to_owned());
            }
            let www: Vec<String> = res
                .headers()
                .get_all("www-authenticate")
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect();
            let bytes = res.bytes().await.map_err(|e| format!("{e:?}"))?;
            if attempt == 0 && wire::is_nonce_challenge(status, www.iter().map(String::as_str), &bytes) {
                continue;
            }
            return Ok(Reply { status, json: serde_json::from_slice(&bytes).unwrap_or(Value::Null) });
        }
        unreachable!("the loop returns on its second pass")
    }

    /// PAR on `par_at`, sign-in and consent there, code exchange on `token_at`.
    async fn login(&self, par_at: &str, token_at: &str) -> Family {
        let signer = DpopSigner::generate();
        let pkce = PkceVerifier::generate();
        let challenge = pkce.challenge();
        let form = [
            ("client_id", CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "atproto transition:generic"),
            ("state", "faults"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("login_hint", HANDLE),
        ];
        let r =
            self.send(par_at, reqwest::Method::POST, "/oauth/par", &signer, Some(&form), None).await.unwrap();
        assert_eq!(r.status, 201, "PAR: {}", r.json);
        let mut authorize = url::Url::parse(&format!("{par_at}/oauth/authorize")).unwrap();
        authorize
            .query_pairs_mut()
            .append_pair("client_id", CLIENT_ID)
            .append_pair("request_uri", r.json["request_uri"].as_str().unwrap());
        let redirect =
            atauth_testkit::consent::atauth_interim(&authorize, HANDLE, PASSWORD, true).await.unwrap();
        let code = redirect.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", pkce.expose_secret()),
            ("client_id", CLIENT_ID),
        ];
        let r = self
            .send(token_at, reqwest::Method::POST, "/oauth/token", &signer, Some(&form), None)
            .await
            .unwrap();
        assert_eq!(r.status, 200, "code exchange: {}", r.json);
        Family {
            signer,
            refresh: r.json["refresh_token"].as_str().unwrap().to_owned(),
            access: r.json["access_token"].as_str().unwrap().to_owned(),
        }
    }

    /// One refresh grant at `base`; on 200 the family keeps the new pair.
    async fn refresh(&self, base: &str, fam: &mut Family) -> Result<Reply, String> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", fam.refresh.as_str()),
            ("client_id", CLIENT_ID),
        ];
        let r =
            self.send(base, reqwest::Method::POST, "/oauth/token", &fam.signer, Some(&form), None).await?;
        if r.status == 200 {
            fam.refresh = r.json["refresh_token"].as_str().unwrap().to_owned();
            fam.access = r.json["access_token"].as_str().unwrap().to_owned();
        }
        Ok(r)
    }

    /// `getSession` at `base` with the family's access token.
    async fn get_session(&self, base: &str, fam: &Family) -> Result<Reply, String> {
        let path = "/xrpc/com.atproto.server.getSession";
        self.send(base, reqwest::Method::GET, path, &fam.signer, None, Some(&fam.access)).await
    }
}

/// After the faults: every family refreshes once more (at `refresh_at`) and its new access token is
/// accepted (at `session_at`); the database holds exactly these families, each with exactly one live
/// refresh token, the one its client holds. Returns (sessions checked, sessions lost).
async fn check_sessions(
    clients: &Clients,
    families: &mut [Family],
    refresh_at: &str,
    session_at: &str,
    db: &TestDatabase,
) -> (usize, usize) {
    let mut lost = 0;
    for (i, fam) in families.iter_mut().enumerate() {
        let r = clients.refresh(refresh_at, fam).await.unwrap();
        let s = clients.get_session(session_at, fam).await.unwrap();
        if r.status != 200 || s.status != 200 || s.json["did"] != DID {
            eprintln!("family {i} lost: refresh {} {}, getSession {} {}", r.status, r.json, s.status, s.json);
            lost += 1;
        }
    }
    let store = PostgresStore::connect(db.url()).await.unwrap();
    let sessions = store.sessions_for_account(DID, SystemClock.unix_now()).await.unwrap();
    assert_eq!(sessions.len(), families.len(), "one family per client, none revoked, none duplicated");
    for (i, fam) in families.iter().enumerate() {
        let s = store.session_by_refresh(&RefreshKey::of(&fam.refresh)).await.unwrap();
        let s = s.unwrap_or_else(|| panic!("family {i}: its client's refresh token is unknown"));
        assert_eq!(
            s.refresh_hash,
            TokenHash::of(&fam.refresh),
            "family {i}: the client holds the current token"
        );
    }
    let live: Vec<(String, i64)> = sqlx::query_as(
        "SELECT session_id, count(*) FROM refresh_tokens WHERE rotated = 0 GROUP BY session_id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(live.len(), families.len(), "every family has a live refresh token");
    assert!(
        live.iter().all(|(_, n)| *n == 1),
        "no family has two live refresh tokens (double spend): {live:?}"
    );
    store.close().await;
    (families.len(), lost)
}

#[derive(Default)]
struct Counts {
    sent: AtomicUsize,
    succeeded: AtomicUsize,
    /// HTTP answers other than 200.
    failed: AtomicUsize,
    /// Transport failures (the instance was gone).
    cut: AtomicUsize,
    /// Cut requests retried on the other instance that succeeded.
    retried_ok: AtomicUsize,
    errors: Mutex<Vec<String>>,
}

impl Counts {
    fn get(n: &AtomicUsize) -> usize {
        n.load(Ordering::Relaxed)
    }
}

/// kill -9 of instance A in the middle of a refresh load spread over A and B, then A restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_refresh_load_loses_no_session_and_spends_no_family_twice() {
    const CLIENTS: usize = 24;
    const ROUNDS: usize = 8;
    const KILL_ROUND: usize = 3;
    let db = TestDatabase::create().await;
    create_account(&db.store().await).await;
    let home = TempDir::new("faults-kill");
    let secrets = shared_secrets();
    let a = serve(&home, "a", db.url(), &secrets);
    let b = serve(&home, "b", db.url(), &secrets);
    let clients = Arc::new(Clients::new());
    let mut families = Vec::new();
    for i in 0..CLIENTS {
        let (x, y) = if i % 2 == 0 { (&a.addr, &b.addr) } else { (&b.addr, &a.addr) };
        families.push(clients.login(x, y).await);
    }

    // Every client refreshes once per round, alternating between A and B; all rounds start together,
    // so the kill (a few ms into round KILL_ROUND) finds requests in flight on A. A request A never
    // answers is retried at once on B with the same (old) refresh token.
    let addr_a = Arc::new(RwLock::new(a.addr.clone()));
    let addr_b = b.addr.clone();
    let counts = Arc::new(Counts::default());
    let in_flight_a = Arc::new(AtomicUsize::new(0));
    let start = Instant::now() + Duration::from_millis(200);
    let mut tasks = Vec::new();
    for (i, mut fam) in families.into_iter().enumerate() {
        let (clients, counts, addr_a, addr_b, in_flight_a) =
            (clients.clone(), counts.clone(), addr_a.clone(), addr_b.clone(), in_flight_a.clone());
        tasks.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                tokio::time::sleep_until((start + ROUND * round as u32).into()).await;
                let on_a = (i + round) % 2 == 0;
                let target = if on_a { addr_a.read().unwrap().clone() } else { addr_b.clone() };
                counts.sent.fetch_add(1, Ordering::Relaxed);
                if on_a {
                    in_flight_a.fetch_add(1, Ordering::SeqCst);
                }
                let r = clients.refresh(&target, &mut fam).await;
                if on_a {
                    in_flight_a.fetch_sub(1, Ordering::SeqCst);
                }
                let r = match r {
                    Err(_) => {
                        counts.cut.fetch_add(1, Ordering::Relaxed);
                        counts.sent.fetch_add(1, Ordering::Relaxed);
                        let retry = clients.refresh(&addr_b, &mut fam).await;
                        if matches!(&retry, Ok(r) if r.status == 200) {
                            counts.retried_ok.fetch_add(1, Ordering::Relaxed);
                        }
                        retry
                    }
                    ok => ok,
                };
                match r {
                    Ok(r) if r.status == 200 => counts.succeeded.fetch_add(1, Ordering::Relaxed),
                    Ok(r) => {
                        counts
                            .errors
                            .lock()
                            .unwrap()
                            .push(format!("client {i} round {round}: {} {}", r.status, r.json));
                        counts.failed.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(e) => {
                        counts.errors.lock().unwrap().push(format!("client {i} round {round}: {e}"));
                        counts.failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
            fam
        }));
    }

    // The fault: SIGKILL a few milliseconds into a round, while A's share of it is in flight.
    tokio::time::sleep_until((start + ROUND * KILL_ROUND as u32 + Duration::from_millis(3)).into()).await;
    let mut a = a;
    let killed_in_flight = in_flight_a.load(Ordering::SeqCst);
    a.proc.child_mut().kill().unwrap();
    let status = a.proc.child_mut().wait().unwrap();
    assert!(!status.success(), "killed, not exited: {status:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let a = serve(&home, "a", db.url(), &secrets);
    *addr_a.write().unwrap() = a.addr.clone();

    let mut families = Vec::new();
    for t in tasks {
        families.push(t.await.unwrap());
    }
    let errors = counts.errors.lock().unwrap().clone();
    let (checked, lost) = check_sessions(&clients, &mut families, &a.addr, &b.addr, &db).await;
    println!(
        "FAULT kill -9: clients {CLIENTS}, refreshes sent {} (in flight on A when killed: {killed_in_flight}), \
         succeeded {}, failed {} (HTTP errors), cut by the kill {} (all retried on B with the old token: {} ok); \
         sessions checked afterwards {checked}, sessions lost {lost}, families with exactly one live refresh \
         token {checked}/{checked}",
        Counts::get(&counts.sent),
        Counts::get(&counts.succeeded),
        Counts::get(&counts.failed),
        Counts::get(&counts.cut),
        Counts::get(&counts.retried_ok),
    );
    assert!(errors.is_empty(), "every refresh succeeded, at once or retried on B: {errors:#?}");
    assert_eq!(
        Counts::get(&counts.cut),
        Counts::get(&counts.retried_ok),
        "every cut refresh was retried on B"
    );
    assert_eq!(lost, 0, "no session lost");
    assert_eq!(Counts::get(&counts.succeeded), CLIENTS * ROUNDS);
    drop((a, b));
}

/// A TCP proxy between atauth and Postgres that the test can cut (every connection closed, new
/// ones closed at once) and restore.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(Mutex::new(Vec::<tokio::task::AbortHandle>::new()));
        let (u, c) = (up.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !u.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let h = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                c.lock().unwrap().push(h.abort_handle());
            }
        });
        Self { addr, up, conns, accept }
    }

    /// The connection is lost: every open connection is closed, new ones are closed at once.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for h in self.conns.lock().unwrap().drain(..) {
            h.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// The database connection lost during a refresh load and restored, atauth left running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connection_loss_fails_with_server_error_and_recovers_without_restart() {
    const CLIENTS: usize = 8;
    const CUT_ROUND: usize = 2;
    const RESTORE_ROUND: usize = 6;
    const ROUNDS: usize = 10;
    let db = TestDatabase::create().await;
    create_account(&db.store().await).await;
    let direct = url::Url::parse(db.url()).unwrap();
    let proxy =
        Proxy::start(format!("{}:{}", direct.host_str().unwrap(), direct.port().unwrap_or(5432))).await;
    let mut through = direct.clone();
    through.set_host(Some("127.0.0.1")).unwrap();
    through.set_port(Some(proxy.addr.port())).unwrap();
    let home = TempDir::new("faults-pg");
    let mut a = serve(&home, "a", through.as_str(), &shared_secrets());
    let clients = Arc::new(Clients::new());
    let mut families = Vec::new();
    for _ in 0..CLIENTS {
        families.push(clients.login(&a.addr, &a.addr).await);
    }

    let counts = Arc::new(Counts::default());
    let statuses = Arc::new(Mutex::new(std::collections::BTreeMap::<String, usize>::new()));
    let start = Instant::now() + Duration::from_millis(200);
    let mut tasks = Vec::new();
    for (i, mut fam) in families.into_iter().enumerate() {
        let (clients, counts, statuses, base) =
            (clients.clone(), counts.clone(), statuses.clone(), a.addr.clone());
        tasks.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                tokio::time::sleep_until((start + ROUND * round as u32).into()).await;
                counts.sent.fetch_add(1, Ordering::Relaxed);
                match clients.refresh(&base, &mut fam).await {
                    Ok(r) if r.status == 200 => {
                        counts.succeeded.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => {
                        counts.failed.fetch_add(1, Ordering::Relaxed);
                        *statuses
                            .lock()
                            .unwrap()
                            .entry(format!("{} {}", r.status, r.error()))
                            .or_default() += 1;
                    }
                    Err(e) => {
                        counts.cut.fetch_add(1, Ordering::Relaxed);
                        counts.errors.lock().unwrap().push(format!("client {i} round {round}: {e}"));
                    }
                }
            }
            // Recovery: until one refresh succeeds (bounded).
            let mut recovered = false;
            for _ in 0..60 {
                counts.sent.fetch_add(1, Ordering::Relaxed);
                match clients.refresh(&base, &mut fam).await {
                    Ok(r) if r.status == 200 => {
                        counts.succeeded.fetch_add(1, Ordering::Relaxed);
                        recovered = true;
                        break;
                    }
                    Ok(r) => {
                        counts.failed.fetch_add(1, Ordering::Relaxed);
                        *statuses
                            .lock()
                            .unwrap()
                            .entry(format!("{} {}", r.status, r.error()))
                            .or_default() += 1;
                    }
                    Err(e) => counts.errors.lock().unwrap().push(format!("client {i} recovery: {e}")),
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            (fam, recovered)
        }));
    }

    tokio::time::sleep_until((start + ROUND * CUT_ROUND as u32 + Duration::from_millis(3)).into()).await;
    proxy.cut();
    tokio::time::sleep_until((start + ROUND * RESTORE_ROUND as u32).into()).await;
    proxy.restore();

    let mut families = Vec::new();
    let mut not_recovered = 0;
    for t in tasks {
        let (fam, recovered) = t.await.unwrap();
        not_recovered += usize::from(!recovered);
        families.push(fam);
    }
    assert!(a.proc.child_mut().try_wait().unwrap().is_none(), "atauth kept running (no restart)");
    let (checked, lost) = check_sessions(&clients, &mut families, &a.addr, &a.addr, &db).await;
    let statuses = statuses.lock().unwrap().clone();
    println!(
        "FAULT Postgres connection cut for {} rounds of {} ms: clients {CLIENTS}, refreshes sent {}, succeeded {}, \
         failed {} ({statuses:?}), transport errors {}; recovered without restarting atauth: {}/{CLIENTS}; \
         sessions checked afterwards {checked}, sessions lost {lost}",
        RESTORE_ROUND - CUT_ROUND,
        ROUND.as_millis(),
        Counts::get(&counts.sent),
        Counts::get(&counts.succeeded),
        Counts::get(&counts.failed),
        Counts::get(&counts.cut),
        CLIENTS - not_recovered,
    );
    assert!(
        counts.errors.lock().unwrap().is_empty(),
        "atauth always answered: {:?}",
        counts.errors.lock().unwrap()
    );
    assert!(Counts::get(&counts.failed) > 0, "the outage was seen");
    assert_eq!(
        statuses.keys().collect::<Vec<_>>(),
        vec!["500 server_error"],
        "while the database is unreachable a refresh fails with 500 server_error, nothing else"
    );
    assert_eq!(not_recovered, 0, "every client refreshed again once the database was back");
    assert_eq!(lost, 0, "no session lost");
    assert!(a.stop().success());
}
