//! `compare`: starts the targets, warms them up, runs every phase against each and writes the
//! Markdown table if asked.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::BoxError;
use crate::opts::Opts;
use crate::report::markdown;
use crate::server::{BENCH_HANDLE, BENCH_PASSWORD, Service, start_atauth, start_atauth_cli};
use crate::target::Target;
use crate::workloads::run_one;

/// `atauth-bench compare`: every phase against every target, one JSON line each.
pub(crate) async fn compare(o: Opts) -> Result<(), BoxError> {
    // Keep the child processes alive until the end; dropping them stops them.
    let mut atauth_children = Vec::new();
    let mut services = Vec::new();
    let mut before_child = None;
    let mut ref_peers = None;
    let mut targets = Vec::new();
    for name in &o.targets {
        match name.as_str() {
            "atauth" => {
                for store in &o.stores {
                    let shared = store.starts_with("postgres");
                    for &n in &o.instances {
                        if n > 1 && !shared {
                            eprintln!("[bench] {store}: one instance only (not a shared store)");
                            continue;
                        }
                        let name = if o.stores.len() == 1 && o.instances.len() == 1 {
                            "atauth".to_owned()
                        } else if n == 1 {
                            format!("atauth {store}")
                        } else {
                            format!("atauth {store} ×{n}")
                        };
                        let target = if shared && o.server == "cli" {
                            let exe = std::env::current_exe()?.with_file_name("atauth");
                            let svc = Service::start(&exe, store, n, o.pg_sslmode.as_deref()).await?;
                            let procs: &[&'static str] = if store == "postgres+redis" {
                                &["postgres", "redis-server"]
                            } else {
                                &["postgres"]
                            };
                            let t = Target::new(
                                &name,
                                &svc.issuer,
                                svc.pids.clone(),
                                BENCH_HANDLE,
                                BENCH_PASSWORD,
                            )
                            .await?
                            .with_instances(svc.instance_urls.clone())?
                            .with_database_procs(procs);
                            services.push(svc);
                            t
                        } else {
                            let (child, ready) = if o.server == "cli" && store == "sqlite" {
                                let exe = std::env::current_exe()?.with_file_name("atauth");
                                start_atauth_cli(&exe, o.seed_sessions).await?
                            } else {
                                start_atauth(store, o.seed_sessions)?
                            };
                            let url = ready["url"].as_str().ok_or("serve: no url")?.to_owned();
                            let pid = ready["pid"].to_string();
                            atauth_children.push(child);
                            Target::new(&name, &url, vec![pid], BENCH_HANDLE, BENCH_PASSWORD).await?
                        };
                        targets.push(Arc::new(target.with_store(store)));
                    }
                }
            }
            "atauth-before" => {
                let exe = o
                    .atauth_before
                    .as_deref()
                    .ok_or("the atauth-before target needs --atauth-before PATH")?;
                let (child, ready) = start_atauth_cli(std::path::Path::new(exe), o.seed_sessions).await?;
                let url = ready["url"].as_str().ok_or("serve: no url")?.to_owned();
                let pid = ready["pid"].to_string();
                before_child = Some(child);
                targets.push(Arc::new(
                    Target::new("atauth-before", &url, vec![pid], BENCH_HANDLE, BENCH_PASSWORD)
                        .await?
                        .with_store("sqlite"),
                ));
            }
            "reference" => {
                let dir =
                    atauth_testkit::interop::installed().ok_or("the interop harness is not installed")?;
                let ttl = Duration::from_secs(60 + o.phases.len() as u64 * 2 * (o.seconds as u64 + 60));
                let (peers, ready) = atauth_testkit::interop::start_ref_pds(&dir, ttl);
                let pid = peers.process.id().to_string();
                ref_peers = Some(peers);
                targets.push(Arc::new(
                    Target::new("reference", &ready.pds_url, vec![pid], &ready.handle, &ready.password)
                        .await?,
                ));
            }
            other => return Err(format!("unknown target {other}").into()),
        }
    }
    // Warm-up (not measured): a login and a few refreshes on each target.
    for t in &targets {
        let mut f = t.login().await?;
        for _ in 0..20 {
            t.refresh(&mut f).await?;
        }
        for _ in 0..5 {
            t.par(&f.signer).await?;
        }
        if t.name.starts_with("atauth") && o.phases.iter().any(|p| p.starts_with("par-")) {
            for _ in 0..5 {
                t.par_include(&f.signer).await?;
                t.par_expanded(&f.signer).await?;
            }
        }
    }
    let mut results = Vec::new();
    for spec in &o.phases {
        for t in &targets {
            match run_one(t, spec, &o).await {
                Ok(r) => results.push(r),
                Err(e) => {
                    eprintln!("[bench] {} {spec}: setup failed: {e}", t.name);
                    println!("{}", json!({"target": t.name, "phase": spec, "setup_error": e.to_string()}));
                }
            }
        }
    }
    if let Some(path) = &o.md {
        std::fs::write(path, markdown(&results, &o))?;
    }
    drop(atauth_children);
    for svc in services {
        svc.stop().await?;
    }
    drop(before_child);
    drop(ref_peers);
    Ok(())
}
