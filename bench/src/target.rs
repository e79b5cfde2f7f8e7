//! The client side of the load: one [`Target`] per authorization server under test, with the
//! requests the workloads send (PAR, login, refresh, getSession, legacy createSession and
//! refreshSession), each with a fresh DPoP proof.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atauth_crypto::dpop::{DpopSigner, ProofParams, wire};
use atauth_crypto::pkce::PkceVerifier;
use atauth_crypto::{Clock as _, SystemClock};
use serde_json::{Value, json};
use url::Url;

use crate::BoxError;
use crate::opts::is_loopback;

const REDIRECT_URI: &str = "http://127.0.0.1/callback";
const CLIENT_ID: &str =
    "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=atproto%20transition%3Ageneric";
const SCOPE: &str = "atproto transition:generic";

/// The permission set of the `par-include` phase, pinned in the server's `--lexicon-dir`
/// ([`crate::server::write_bench_lexicons`]).
pub(crate) const BENCH_SET: &str = "com.example.bench.authFull";
/// The `par-include` scope: `atproto` and the bench set for an app view (SCOPE-10).
const INCLUDE_SCOPE: &str =
    "atproto include:com.example.bench.authFull?aud=did:web:api.bench.example%23bench_appview";

/// The `par-expanded` scope: what [`INCLUDE_SCOPE`] grants, written out (the control that
/// separates resolving the set from handling a longer scope).
const EXPANDED_SCOPE: &str = "atproto repo?collection=com.example.bench.like&collection=com.example.bench.post \
    repo:com.example.bench.profile?action=update \
    rpc?lxm=com.example.bench.getFeed&lxm=com.example.bench.getThread&aud=did:web:api.bench.example%23bench_appview";

/// A loopback client id that declares `scope`.
fn loopback_client_id(scope: &str) -> String {
    let query = form(&[("redirect_uri", REDIRECT_URI), ("scope", scope)]).replace('+', "%20");
    format!("http://localhost?{query}")
}

/// One authorization server under test.
pub(crate) struct Target {
    /// `atauth` or `reference`.
    pub(crate) name: String,
    base: Url,
    /// The store the server runs on (`sqlite`, `postgres`, …); empty for the reference.
    pub(crate) store: String,
    /// The server processes (one per instance), for their CPU and RSS readings.
    pub(crate) pids: Vec<String>,
    /// The command names of the database processes the server uses (`postgres`, `redis-server`),
    /// whose CPU is measured beside the server's; empty for SQLite (inside the server process).
    pub(crate) database_procs: Vec<&'static str>,
    /// Where requests go when the service runs several instances behind one issuer: each request
    /// is sent to the next in turn (round robin). Empty: to the issuer's own address.
    instances: Vec<Url>,
    next_instance: AtomicUsize,
    handle: String,
    password: String,
    reference: bool,
    par_endpoint: String,
    token_endpoint: String,
    authorization_endpoint: String,
    http: reqwest::Client,
    nonce: Mutex<Option<String>>,
    /// Requests retried after a `use_dpop_nonce` answer.
    pub(crate) nonce_retries: AtomicUsize,
}

/// One token family: a DPoP key, the latest refresh token and access token.
pub(crate) struct Family {
    /// The family's DPoP key.
    pub(crate) signer: DpopSigner,
    refresh: String,
    access: String,
}

/// One legacy session.
pub(crate) struct LegacySession {
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
    /// Reads the target's authorization-server metadata; every endpoint must be on loopback.
    pub(crate) async fn new(
        name: &str,
        base: &str,
        pids: Vec<String>,
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
            pids,
            store: String::new(),
            database_procs: Vec::new(),
            instances: Vec::new(),
            next_instance: AtomicUsize::new(0),
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

    /// Spreads the requests over `instances` (loopback only), each sent there with the URL the
    /// issuer's metadata names kept in the DPoP proof (`htu`), as behind a load balancer.
    pub(crate) fn with_instances(mut self, instances: Vec<Url>) -> Result<Self, BoxError> {
        if let Some(bad) = instances.iter().find(|u| !is_loopback(u)) {
            return Err(format!("{bad} is not a loopback address").into());
        }
        self.instances = instances;
        Ok(self)
    }

    /// Names the store the server runs on, for the report.
    pub(crate) fn with_store(mut self, store: &str) -> Self {
        store.clone_into(&mut self.store);
        self
    }

    /// Measures the CPU of the processes named `names` with the server's (see [`Self::database_procs`]).
    pub(crate) fn with_database_procs(mut self, names: &[&'static str]) -> Self {
        self.database_procs = names.to_vec();
        self
    }

    /// The address to send a request for `url` (an endpoint of the issuer) to: `url` itself, or
    /// the same path on the next instance.
    fn route(&self, url: &str) -> Result<Url, BoxError> {
        let mut to = Url::parse(url)?;
        if !self.instances.is_empty() {
            let i = self.next_instance.fetch_add(1, Ordering::Relaxed) % self.instances.len();
            let instance = &self.instances[i];
            to.set_host(instance.host_str()).map_err(|e| format!("{instance}: {e}"))?;
            to.set_port(instance.port()).map_err(|()| format!("{instance}: no port"))?;
        }
        Ok(to)
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
                .request(method.clone(), self.route(url)?)
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

    /// One pushed authorization request: the `request_uri`, the PKCE verifier and the state.
    pub(crate) async fn par(&self, signer: &DpopSigner) -> Result<(String, PkceVerifier, String), BoxError> {
        self.par_for(signer, CLIENT_ID, SCOPE).await
    }

    /// One pushed authorization request whose scope includes the pinned bench permission set
    /// (`par-include`): the server resolves the set (pinned file, then its cache) and checks it
    /// on every request.
    pub(crate) async fn par_include(&self, signer: &DpopSigner) -> Result<(), BoxError> {
        self.par_for(signer, &loopback_client_id(INCLUDE_SCOPE), INCLUDE_SCOPE).await.map(drop)
    }

    /// One pushed authorization request for what the bench set grants, written out
    /// (`par-expanded`): no set to resolve, a scope as long.
    pub(crate) async fn par_expanded(&self, signer: &DpopSigner) -> Result<(), BoxError> {
        self.par_for(signer, &loopback_client_id(EXPANDED_SCOPE), EXPANDED_SCOPE).await.map(drop)
    }

    async fn par_for(
        &self,
        signer: &DpopSigner,
        client_id: &str,
        scope: &str,
    ) -> Result<(String, PkceVerifier, String), BoxError> {
        let pkce = PkceVerifier::generate();
        let state = PkceVerifier::generate().expose_secret()[..16].to_owned();
        let body = form(&[
            ("client_id", client_id),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT_URI),
            ("scope", scope),
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
    pub(crate) async fn login(&self) -> Result<Family, BoxError> {
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

    /// One refresh grant; the family keeps the rotated tokens.
    pub(crate) async fn refresh(&self, fam: &mut Family) -> Result<(), BoxError> {
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

    /// One DPoP-bound `com.atproto.server.getSession`.
    pub(crate) async fn get_session(&self, fam: &Family) -> Result<(), BoxError> {
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
        let mut req = self.http.post(self.route(self.base.join(&format!("/xrpc/{nsid}"))?.as_str())?);
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

    /// Legacy `com.atproto.server.createSession` with the account's password.
    pub(crate) async fn create_session(&self) -> Result<LegacySession, BoxError> {
        let v = self
            .xrpc_post(
                "com.atproto.server.createSession",
                None,
                Some(json!({"identifier": self.handle, "password": self.password})),
            )
            .await?;
        Ok(LegacySession { refresh: v["refreshJwt"].as_str().unwrap_or_default().to_owned() })
    }

    /// Legacy `com.atproto.server.refreshSession`; the session keeps the new refresh token.
    pub(crate) async fn refresh_session(&self, s: &mut LegacySession) -> Result<(), BoxError> {
        let v = self.xrpc_post("com.atproto.server.refreshSession", Some(&s.refresh), None).await?;
        s.refresh = v["refreshJwt"].as_str().unwrap_or_default().to_owned();
        Ok(())
    }
}
