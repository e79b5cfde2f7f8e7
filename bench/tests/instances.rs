//! `atauth-bench compare` over a shared store with one and two `atauth serve` instances (issue 14):
//! every refresh and getSession succeeds while the requests alternate between the instances (a
//! token rotated on one is presented to the other next), and the run leaves no Redis keys behind.
//! Needs the machine's Postgres and Redis, and the `atauth` binary next to `atauth-bench` (a
//! workspace test run builds both).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

#[test]
fn two_instances_over_one_postgres_and_redis_serve_every_request() {
    let bench = std::path::Path::new(env!("CARGO_BIN_EXE_atauth-bench"));
    let atauth = bench.with_file_name("atauth");
    assert!(
        atauth.exists(),
        "{} is missing: build it first (cargo build -p atauth; a workspace test run does)",
        atauth.display()
    );
    let child = Command::new(bench)
        .args(["compare", "--targets", "atauth", "--store", "postgres+redis", "--instances", "1,2"])
        // 600 requests a phase: CPU times are read in 10 ms clock ticks, and the database's share of
        // a 120-request phase (about 15 ms) once measured 0.
        .args(["--phases", "refresh,getsession", "--workers", "4", "--count", "600", "--seconds", "60"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("atauth-bench runs");
    let pid = child.id();
    let child = child.wait_with_output().expect("atauth-bench ends");
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(child.status.success(), "atauth-bench failed: {stdout}");
    let lines: Vec<Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert_eq!(lines.len(), 4, "two phases × (one, two instances): {stdout}");
    for phase in ["refresh", "getsession"] {
        for (instances, target) in [(1, "atauth postgres+redis"), (2, "atauth postgres+redis ×2")] {
            let r = lines
                .iter()
                .find(|l| l["phase"] == phase && l["instances"] == instances)
                .unwrap_or_else(|| panic!("no {phase} run on {instances} instance(s): {stdout}"));
            assert_eq!(r["target"], target, "{r}");
            assert_eq!(r["store"], "postgres+redis", "{r}");
            assert_eq!((r["ok"].as_u64(), r["errors"].as_u64()), (Some(600), Some(0)), "{r}");
            assert!(r["server_cpu_us_per_req"].as_f64().is_some_and(|c| c > 0.0), "{r}");
            assert!(r["database_cpu_us_per_req"].as_f64().is_some_and(|c| c > 0.0), "{r}");
        }
    }
    // The run's Redis keys (prefix `atauth-bench-<pid>-…`) are gone.
    let pattern = format!("atauth-bench-{pid}-*");
    let scan = Command::new("redis-cli").args(["--scan", "--pattern", &pattern]).output().expect("redis-cli");
    let left = String::from_utf8_lossy(&scan.stdout).to_string();
    assert!(left.trim().is_empty(), "Redis keys left behind: {left}");
}
