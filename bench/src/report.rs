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
    if let Some(table) = before_after(results) {
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
