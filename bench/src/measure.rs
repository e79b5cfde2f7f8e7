//! Measuring one phase: [`run_phase`] runs the workers, times every request and reads the server's
//! CPU and RSS from `/proc`; [`PhaseResult`] is what it measured, printed as one JSON line.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::BoxError;
use crate::opts::Opts;
use crate::stats::{self, Latency};
use crate::target::Target;
use crate::workloads::WorkerState;

/// A worker stops after this many failed requests in one phase.
const MAX_ERRORS: usize = 20;

/// What one phase measured.
#[derive(Debug, Clone)]
pub(crate) struct PhaseResult {
    /// The target's name.
    pub(crate) target: String,
    /// The phase as given (`name` or `name@N`).
    pub(crate) phase: String,
    /// Concurrent workers.
    pub(crate) workers: usize,
    /// Successful requests.
    pub(crate) ok: usize,
    /// Failed requests.
    pub(crate) errors: usize,
    /// Wall time of the phase.
    pub(crate) seconds: f64,
    /// Latency of the successful requests.
    pub(crate) latency: Latency,
    /// Server CPU per successful request, µs (all instances together).
    pub(crate) server_cpu_us: Option<f64>,
    /// CPU of the database processes (Postgres, Redis) per successful request, µs; `None` for
    /// SQLite, which runs inside the server.
    pub(crate) database_cpu_us: Option<f64>,
    /// The store the server ran on (empty for the reference).
    pub(crate) store: String,
    /// How many server instances shared the load.
    pub(crate) instances: usize,
    /// This generator's CPU per successful request, µs.
    pub(crate) gen_cpu_us: Option<f64>,
    /// Server RSS at the end of the phase, MiB (summed over the instances).
    pub(crate) server_rss_mib: Option<f64>,
    /// Server peak RSS during the phase, MiB.
    pub(crate) server_peak_rss_mib: Option<f64>,
    /// Requests retried after a `use_dpop_nonce` answer.
    pub(crate) nonce_retries: usize,
    /// The first failure, if any.
    pub(crate) first_error: Option<String>,
}

impl PhaseResult {
    /// Successful requests per second.
    pub(crate) fn req_per_s(&self) -> f64 {
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
            "database_cpu_us_per_req": self.database_cpu_us.map(r1),
            "store": self.store, "instances": self.instances,
            "server_rss_mib": self.server_rss_mib.map(r1),
            "server_peak_rss_mib": self.server_peak_rss_mib.map(r1),
            "gen_cpu_us_per_req": self.gen_cpu_us.map(r1),
            "nonce_retries": self.nonce_retries,
            "first_error": self.first_error,
        })
    }
}

/// Runs `workers` loops of `op` until `count` requests have started or `seconds` have passed.
pub(crate) async fn run_phase<F, Fut>(
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
    for pid in &t.pids {
        stats::reset_peak_rss(pid);
    }
    let cpu0 = stats::cpu_seconds_sum(&t.pids);
    let database = !t.database_procs.is_empty();
    let db0 = database.then(|| stats::cpu_seconds_of_named(&t.database_procs));
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
    let rss = stats::rss_kib_sum(&t.pids);
    let db1 = database.then(|| stats::cpu_seconds_of_named(&t.database_procs));
    let r = PhaseResult {
        target: t.name.clone(),
        phase: phase.to_owned(),
        workers,
        ok,
        errors: errors.load(Ordering::Relaxed),
        seconds,
        latency: Latency::of(&mut lat),
        server_cpu_us: per_req(cpu0, stats::cpu_seconds_sum(&t.pids)),
        database_cpu_us: per_req(db0, db1),
        store: t.store.clone(),
        instances: t.pids.len(),
        gen_cpu_us: per_req(self0, stats::cpu_seconds("self")),
        server_rss_mib: rss.map(|(r, _)| r as f64 / 1024.0),
        server_peak_rss_mib: rss.map(|(_, h)| h as f64 / 1024.0),
        nonce_retries: t.nonce_retries.load(Ordering::Relaxed) - retries0,
        first_error: first_error.lock().ok().and_then(|f| f.clone()),
    };
    println!("{}", r.to_json());
    r
}
