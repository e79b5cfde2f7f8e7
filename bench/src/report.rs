//! The Markdown report of `compare --md` (the tables in BENCHMARKS.md): one row per phase, atauth
//! next to the reference, with ratios.

use crate::measure::PhaseResult;
use crate::opts::Opts;

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
pub(crate) fn markdown(results: &[PhaseResult], o: &Opts) -> String {
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
        let a = results
            .iter()
            .find(|r| &r.phase == spec && (r.target == "atauth" || r.target == "atauth sqlite"));
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
    if let Some(table) = before_after(results) {
        s.push('\n');
        s.push_str(&table);
    }
    if let Some(table) = stores_and_instances(results) {
        s.push('\n');
        s.push_str(&table);
    }
    if let Some(note) = include_overhead(results) {
        s.push('\n');
        s.push_str(&note);
    }
    s.push_str(
        "\nreq/s ratio = atauth / reference; CPU ratio = reference / atauth (both: higher is better for \
         atauth). Server CPU/req: utime+stime of the server process over the phase / successful \
         requests. Peak RSS: `VmHWM` of the server process during the phase (reset at its start through \
         `/proc/<pid>/clear_refs`).\n",
    );
    s
}

/// With an `atauth-before` target: one row per phase run, the n-th `atauth-before` run of a phase
/// next to the n-th `atauth` run of it (the phases alternate between the two servers, so a repeated
/// phase list gives several interleaved pairs).
pub(crate) fn before_after(results: &[PhaseResult]) -> Option<String> {
    if !results.iter().any(|r| r.target == "atauth-before") {
        return None;
    }
    let mut s = String::from(
        "| phase | CPU/req before → after | change | req/s before → after | p99 before → after | peak RSS before → after | errors (b / a) |\n\
         |---|---|---|---|---|---|---|\n",
    );
    let mut seen: Vec<&str> = Vec::new();
    for phase in results.iter().map(|r| r.phase.as_str()) {
        if seen.contains(&phase) {
            continue;
        }
        seen.push(phase);
        let runs = |target: &str| -> Vec<&PhaseResult> {
            results.iter().filter(|r| r.phase == phase && r.target == target).collect()
        };
        for (b, a) in runs("atauth-before").into_iter().zip(runs("atauth")) {
            let change = match (b.server_cpu_us, a.server_cpu_us) {
                (Some(b), Some(a)) if b > 0.0 => format!("{:+.1} %", (a / b - 1.0) * 100.0),
                _ => "—".to_owned(),
            };
            s.push_str(&format!(
                "| {phase} | {} → {} µs | {change} | {:.0} → {:.0} | {:.2} → {:.2} ms | {} → {} MiB | {} / {} |\n",
                fmt_opt(b.server_cpu_us, 1.0, 0),
                fmt_opt(a.server_cpu_us, 1.0, 0),
                b.req_per_s(),
                a.req_per_s(),
                b.latency.p99,
                a.latency.p99,
                fmt_opt(b.server_peak_rss_mib, 1.0, 0),
                fmt_opt(a.server_peak_rss_mib, 1.0, 0),
                b.errors,
                a.errors,
            ));
        }
    }
    Some(s)
}

/// With atauth on more than one store or instance count (`--store a,b --instances 1,2`): one row
/// per phase and setup, with the database's CPU beside atauth's, two instances against one on the
/// same store (issue 14: at least 1.6× the req/s where the CPU allows it), and each store's CPU per
/// request against SQLite's (issue 18: within 1.5×).
pub(crate) fn stores_and_instances(results: &[PhaseResult]) -> Option<String> {
    let setups: Vec<&PhaseResult> =
        results.iter().filter(|r| !r.store.is_empty() && r.target != "atauth-before").collect();
    let mut kinds: Vec<(&str, usize)> = setups.iter().map(|r| (r.store.as_str(), r.instances)).collect();
    kinds.sort_unstable();
    kinds.dedup();
    if kinds.len() < 2 {
        return None;
    }
    let mut s = String::from(
        "| phase | store | instances | req/s | req/s vs 1 instance | atauth CPU/req | database CPU/req | atauth CPU vs SQLite | atauth + database CPU vs SQLite | p50 / p99 | errors |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut phases: Vec<&str> = Vec::new();
    for r in &setups {
        if !phases.contains(&r.phase.as_str()) {
            phases.push(&r.phase);
        }
    }
    for phase in phases {
        let find = |store: &str, n: usize| {
            setups.iter().find(|r| r.phase == phase && r.store == store && r.instances == n).copied()
        };
        let sqlite_cpu = find("sqlite", 1).and_then(|r| r.server_cpu_us);
        for r in setups.iter().filter(|r| r.phase == phase) {
            let vs_one = match find(&r.store, 1) {
                Some(one) if r.instances > 1 => ratio(Some(r.req_per_s()), Some(one.req_per_s())),
                _ => "—".to_owned(),
            };
            let (cpu_vs, total_vs) = if r.store == "sqlite" {
                ("—".to_owned(), "—".to_owned())
            } else {
                let total = r.server_cpu_us.map(|a| a + r.database_cpu_us.unwrap_or(0.0));
                (ratio(r.server_cpu_us, sqlite_cpu), ratio(total, sqlite_cpu))
            };
            s.push_str(&format!(
                "| {phase} | {} | {} | {:.0} | {vs_one} | {} µs | {} | {cpu_vs} | {total_vs} | {:.2} / {:.2} ms | {} |\n",
                r.store,
                r.instances,
                r.req_per_s(),
                fmt_opt(r.server_cpu_us, 1.0, 0),
                r.database_cpu_us.map_or_else(|| "— (in process)".to_owned(), |d| format!("{d:.0} µs")),
                r.latency.p50,
                r.latency.p99,
                r.errors,
            ));
        }
    }
    s.push_str(
        "\natauth CPU/req: all instances together. Database CPU/req: every `postgres` and \
         `redis-server` process on the machine (reaped backends included) over the phase, so other \
         work on the same database server counts too. A ratio against SQLite is this store's figure \
         divided by SQLite's atauth CPU/req (SQLite's own work is inside atauth's process).\n",
    );
    Some(s)
}

/// The cost of `include:` at PAR (issue 13: at most 10 % over `par`), from atauth's `par` and
/// `par-include` runs of this run. Phases may be repeated (`par,par-include,par,par-include`): the
/// n-th `par` is paired with the n-th `par-include`, and every pair is listed so the noise shows.
pub(crate) fn include_overhead(results: &[PhaseResult]) -> Option<String> {
    let runs = |name: &str| -> Vec<&PhaseResult> {
        results.iter().filter(|r| r.target == "atauth" && r.phase.split('@').next() == Some(name)).collect()
    };
    let (plain, include) = (runs("par"), runs("par-include"));
    let pairs: Vec<(f64, f64, f64, f64)> = plain
        .iter()
        .zip(&include)
        .filter_map(|(p, i)| Some((p.server_cpu_us?, i.server_cpu_us?, p.req_per_s(), i.req_per_s())))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let pct = |base: f64, x: f64| (x / base - 1.0) * 100.0;
    let mut cpu: Vec<f64> = pairs.iter().map(|&(p, i, _, _)| pct(p, i)).collect();
    cpu.sort_by(f64::total_cmp);
    let mid = cpu.len() / 2;
    let median = if cpu.len().is_multiple_of(2) { f64::midpoint(cpu[mid - 1], cpu[mid]) } else { cpu[mid] };
    let listed: Vec<String> = pairs
        .iter()
        .map(|&(p, i, pr, ir)| format!("{p:.0} → {i:.0} µs ({:+.1} %), {pr:.0} → {ir:.0} req/s", pct(p, i)))
        .collect();
    Some(format!(
        "`include:` at PAR (atauth, `par` → `par-include`, server CPU per request): {}; median {median:+.1} % \
         (goal: at most +10 %).\n",
        listed.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Latency;

    fn run(target: &str, phase: &str, cpu: f64, ok: usize) -> PhaseResult {
        PhaseResult {
            store: String::new(),
            instances: 1,
            database_cpu_us: None,
            target: target.into(),
            phase: phase.into(),
            workers: 4,
            ok,
            errors: 0,
            seconds: 1.0,
            latency: Latency::of(&mut []),
            server_cpu_us: Some(cpu),
            gen_cpu_us: None,
            server_rss_mib: None,
            server_peak_rss_mib: None,
            nonce_retries: 0,
            first_error: None,
        }
    }

    #[test]
    fn before_after_pairs_the_runs_of_each_phase_in_order() {
        let results = [
            run("atauth-before", "refresh", 300.0, 1000),
            run("atauth", "refresh", 240.0, 1200),
            run("atauth-before", "getsession", 200.0, 1000),
            run("atauth", "getsession", 150.0, 1000),
            run("atauth-before", "refresh", 320.0, 1000),
            run("atauth", "refresh", 250.0, 1000),
        ];
        let table = before_after(&results).unwrap_or_default();
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(rows.len(), 3, "{table}");
        assert!(rows[0].starts_with("| refresh | 300 → 240 µs | -20.0 %"), "{table}");
        assert!(rows[1].starts_with("| refresh | 320 → 250 µs | -21.9 %"), "{table}");
        assert!(rows[2].starts_with("| getsession | 200 → 150 µs | -25.0 %"), "{table}");
        assert_eq!(before_after(&results[1..2]), None, "no atauth-before run: no table");
    }

    #[test]
    fn stores_table_compares_instances_and_sqlite() {
        let setup = |store: &str, n: usize, cpu: f64, db: Option<f64>, ok: usize| PhaseResult {
            store: store.into(),
            instances: n,
            database_cpu_us: db,
            ..run("atauth", "refresh", cpu, ok)
        };
        let results = [
            setup("sqlite", 1, 150.0, None, 3000),
            setup("postgres", 1, 300.0, Some(400.0), 1500),
            setup("postgres", 2, 330.0, Some(420.0), 2400),
        ];
        let table = stores_and_instances(&results).unwrap_or_default();
        let rows: Vec<&str> = table.lines().skip(2).take(3).collect();
        assert!(
            rows[0].starts_with("| refresh | sqlite | 1 | 3000 | — | 150 µs | — (in process) | — | — |"),
            "{table}"
        );
        assert!(
            rows[1].starts_with("| refresh | postgres | 1 | 1500 | — | 300 µs | 400 µs | 2.0× | 4.7× |"),
            "{table}"
        );
        assert!(
            rows[2].starts_with("| refresh | postgres | 2 | 2400 | 1.6× | 330 µs | 420 µs | 2.2× | 5.0× |"),
            "{table}"
        );
        assert_eq!(stores_and_instances(&results[..1]), None, "one setup: no table");
    }

    #[test]
    fn include_overhead_pairs_runs_in_order_and_takes_the_median() {
        let results = [
            run("atauth", "par", 200.0, 1000),
            run("reference", "par", 2000.0, 100),
            run("atauth", "par-include", 210.0, 950),
            run("atauth", "par", 220.0, 900),
            run("atauth", "par-include@2", 209.0, 900),
        ];
        let note = include_overhead(&results).unwrap_or_default();
        assert!(note.contains("200 → 210 µs (+5.0 %), 1000 → 950 req/s"), "{note}");
        assert!(note.contains("220 → 209 µs (-5.0 %)"), "{note}");
        assert!(note.contains("median +0.0 %"), "{note}");
        assert_eq!(include_overhead(&results[..2]), None, "no par-include run: no note");
    }
}
