//! Command line of `compare` and `serve`: [`Opts`] and the loopback check every target passes.

use url::Url;

use crate::BoxError;

/// The options of `serve` and `compare` (one set for both; each uses the ones it needs).
#[derive(Debug, Clone)]
pub(crate) struct Opts {
    /// `--workers`: concurrent workers per phase unless it says `@N`.
    pub(crate) workers: usize,
    /// `--count`: at most this many requests per phase.
    pub(crate) count: usize,
    /// `--seconds`: at most this long per phase.
    pub(crate) seconds: f64,
    /// `--phases`: the phases to run, in order (`name` or `name@N`).
    pub(crate) phases: Vec<String>,
    /// `--targets`: `atauth`, `atauth-before` (with `--atauth-before`) and/or `reference`.
    pub(crate) targets: Vec<String>,
    /// `--md`: where to write the Markdown table.
    pub(crate) md: Option<String>,
    /// `--port` of `serve` (0: any free port).
    pub(crate) port: u16,
    /// `--dir` of `serve` (default: a temporary directory, removed at the end).
    pub(crate) dir: Option<String>,
    /// `--store`: `sqlite`, `memory`, `postgres` (a fresh database on `ATAUTH_TEST_POSTGRES_URL`'s
    /// server, dropped at the end) or `postgres+redis` (replay records and sign-in limits on
    /// `ATAUTH_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`, under a key prefix of its own).
    /// The first of `stores`: what `serve` runs.
    pub(crate) store: String,
    /// `--store a,b,…` of `compare`: the target `atauth` runs once per store, one after the other
    /// in each phase.
    pub(crate) stores: Vec<String>,
    /// `--instances 1,2`: with a shared store (`postgres`, `postgres+redis`), also run that many
    /// `atauth serve` instances over one database behind one issuer, the requests spread over them
    /// in turn (a round-robin balancer). SQLite is one instance by design and runs once.
    pub(crate) instances: Vec<usize>,
    /// `--pg-sslmode`: appended to the instances' database URL (`?sslmode=…`); unset, the driver's
    /// default `prefer` (TLS whenever the server offers it, loopback included).
    pub(crate) pg_sslmode: Option<String>,
    /// `--seed-sessions`: extra live token families written into the SQLite file first.
    pub(crate) seed_sessions: u64,
    /// `--atauth`: `cli` (`atauth serve --dev`) or `builder` (this binary's `serve`).
    pub(crate) server: String,
    /// `--atauth-before PATH`: another `atauth` binary (e.g. a build of the previous commit), run
    /// as the target `atauth-before` the same way as `atauth` (CLI, SQLite), for before/after runs.
    pub(crate) atauth_before: Option<String>,
}

impl Opts {
    /// Parses `--key value` pairs, with the defaults above and bounds on workers, count and seconds.
    pub(crate) fn parse(args: &[String]) -> Result<Self, BoxError> {
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
            stores: vec!["sqlite".into()],
            instances: vec![1],
            pg_sslmode: None,
            seed_sessions: 0,
            server: "cli".into(),
            atauth_before: None,
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
                "--atauth-before" => o.atauth_before = Some(v.clone()),
                "--store" => {
                    o.stores = v.split(',').map(str::to_owned).collect();
                    if let Some(bad) = o.stores.iter().find(|s| !STORES.contains(&s.as_str())) {
                        return Err(format!("unknown store {bad:?} (one of {})", STORES.join(", ")).into());
                    }
                    o.store.clone_from(&o.stores[0]);
                }
                "--pg-sslmode" if ["disable", "prefer", "require"].contains(&v.as_str()) => {
                    o.pg_sslmode = Some(v.clone());
                }
                "--instances" => {
                    o.instances = v.split(',').map(str::parse).collect::<Result<_, _>>()?;
                    if o.instances.iter().any(|&n| n == 0 || n > 8) {
                        return Err("--instances: 1..=8 each".into());
                    }
                }
                _ => return Err(format!("unknown option {k}").into()),
            }
        }
        if o.workers == 0 || o.workers > 256 || o.count == 0 || !(o.seconds > 0.0 && o.seconds <= 600.0) {
            return Err("--workers 1..=256, --count ≥ 1 and --seconds in (0, 600] please".into());
        }
        Ok(o)
    }
}

/// The stores `--store` knows.
const STORES: [&str; 4] = ["sqlite", "memory", "postgres", "postgres+redis"];

/// Only loopback targets: `localhost`, 127.0.0.0/8 and `::1`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
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
        let o = Opts::parse(&a("--store sqlite,postgres+redis --instances 1,2"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((o.store.as_str(), o.stores.len(), o.instances.as_slice()), ("sqlite", 2, &[1, 2][..]));
        assert!(Opts::parse(&a("--store mysql")).is_err());
        assert!(Opts::parse(&a("--instances 0")).is_err());
    }
}
