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
    s.push_str(
        "\nreq/s ratio = atauth / reference; CPU ratio = reference / atauth (both: higher is better for \
         atauth). Server CPU/req: utime+stime of the server process over the phase / successful \
         requests. Peak RSS: `VmHWM` of the server process during the phase (reset at its start through \
         `/proc/<pid>/clear_refs`).\n",
    );
    s
}
