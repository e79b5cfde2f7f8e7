//! Latency percentiles and per-process CPU/RSS readings from `/proc`.

use std::time::Duration;

/// Nearest-rank percentile (`p` in 0..=100) of an ascending slice; `None` when empty.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Summary of one phase's latencies, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Latency {
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

impl Latency {
    /// Sorts `samples` in place and summarises them; all zero when empty.
    pub(crate) fn of(samples: &mut [Duration]) -> Self {
        samples.sort_unstable();
        let ms = |p: f64| percentile(samples, p).map_or(0.0, |d| d.as_secs_f64() * 1e3);
        Self { p50: ms(50.0), p90: ms(90.0), p99: ms(99.0), max: ms(100.0) }
    }
}

/// utime + stime of a process in seconds, from `/proc/<pid>/stat` (`"self"` for this process).
pub(crate) fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_cpu(&stat)
}

/// Fields 14 and 15 of `/proc/<pid>/stat` (after the parenthesised command name, which may
/// contain spaces), in clock ticks of 1/100 s (Linux `USER_HZ`).
pub(crate) fn parse_stat_cpu(stat: &str) -> Option<f64> {
    let after = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = after.split(' ');
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// The summed utime + stime of several processes (the instances of one service); `None` if any is
/// unreadable.
pub(crate) fn cpu_seconds_sum(pids: &[String]) -> Option<f64> {
    pids.iter().map(|p| cpu_seconds(p)).sum()
}

/// The CPU seconds of every running process whose command name is one of `names` (e.g. `postgres`,
/// `redis-server`), their reaped children's included (fields 14–17 of `/proc/<pid>/stat`): a
/// database's connection backends come and go, and what an exited one spent moves to its parent.
pub(crate) fn cpu_seconds_of_named(names: &[&str]) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0.0 };
    dir.filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| stat_comm(stat).is_some_and(|c| names.contains(&c)))
        .filter_map(|stat| parse_stat_cpu_with_children(&stat))
        .sum()
}

/// The command name of a `/proc/<pid>/stat` line (between the first `(` and the last `)`).
fn stat_comm(stat: &str) -> Option<&str> {
    stat.get(stat.find('(')? + 1..stat.rfind(')')?)
}

/// Fields 14–17 of `/proc/<pid>/stat` (utime, stime, cutime, cstime) in seconds.
pub(crate) fn parse_stat_cpu_with_children(stat: &str) -> Option<f64> {
    let after = stat.get(stat.rfind(')')? + 2..)?;
    let ticks: Vec<f64> = after.split(' ').skip(11).take(4).map(|f| f.parse().ok()).collect::<Option<_>>()?;
    (ticks.len() == 4).then(|| ticks.iter().sum::<f64>() / 100.0)
}

/// (`VmRSS`, `VmHWM`) summed over several processes, in KiB.
pub(crate) fn rss_kib_sum(pids: &[String]) -> Option<(u64, u64)> {
    pids.iter().map(|p| rss_kib(p)).try_fold((0, 0), |(r, h), x| x.map(|(xr, xh)| (r + xr, h + xh)))
}

/// (`VmRSS`, `VmHWM`) of a process in KiB, from `/proc/<pid>/status`.
pub(crate) fn rss_kib(pid: &str) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_rss(&status)
}

/// Resets a process's peak RSS (`VmHWM`) to its current RSS (`echo 5 > /proc/<pid>/clear_refs`,
/// Linux ≥ 4.0), so a phase reports the peak under its own load, not that of an earlier setup step.
/// Best effort: returns whether it worked.
pub(crate) fn reset_peak_rss(pid: &str) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

pub(crate) fn parse_status_rss(status: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut v = ms(&[10, 1, 9, 2, 8, 3, 7, 4, 6, 5]);
        let l = Latency::of(&mut v);
        assert_eq!((l.p50, l.p90, l.p99, l.max), (5.0, 9.0, 10.0, 10.0));
        assert_eq!(percentile(&ms(&[4]), 0.0), Some(Duration::from_millis(4)));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(Latency::of(&mut []), Latency { p50: 0.0, p90: 0.0, p99: 0.0, max: 0.0 });
        let hundred: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&hundred, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&hundred, 90.0), Some(Duration::from_millis(90)));
    }

    #[test]
    fn proc_parsing() {
        let stat = "4242 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 1 0";
        assert_eq!(parse_stat_cpu(stat), Some(3.25));
        assert_eq!(parse_stat_cpu("garbage"), None);
        assert_eq!(parse_stat_cpu_with_children(stat), Some(3.25));
        let reaped = "7 (postgres) S 1 2 3 4 5 6 7 8 9 10 250 75 100 25 20 0 1 0";
        assert_eq!(parse_stat_cpu_with_children(reaped), Some(4.5));
        assert_eq!(stat_comm(stat), Some("my (odd) name"));
        let me = std::process::id().to_string();
        assert!(cpu_seconds_sum(&[me.clone(), me.clone()]).is_some());
        assert_eq!(cpu_seconds_sum(&[me, "0".into()]), None, "an unreadable pid is no reading");
        let status = "Name:\tx\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(parse_status_rss(status), Some((10240, 20480)));
        assert!(cpu_seconds("self").is_some());
        assert!(rss_kib("self").is_some());
    }
}
