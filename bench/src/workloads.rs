//! The workloads: what each phase (`par`, `par-include`, `par-expanded`, `refresh`, `getsession`, `login`,
//! `legacy-create`, `legacy-refresh`, with an optional `@N` worker count) sends, and the per-worker
//! state it keeps.

use std::sync::Arc;

use atauth_crypto::dpop::DpopSigner;

use crate::BoxError;
use crate::measure::{PhaseResult, run_phase};
use crate::opts::Opts;
use crate::target::{Family, LegacySession, Target};

/// Per-worker state a phase's operation gets.
pub(crate) enum WorkerState {
    /// A token family (`refresh`, `getsession`).
    Family(Family),
    /// A legacy session (`legacy-refresh`).
    Legacy(LegacySession),
    /// Nothing kept between requests.
    None,
}

async fn families(t: &Target, n: usize) -> Result<Vec<WorkerState>, BoxError> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(WorkerState::Family(t.login().await?));
    }
    Ok(v)
}

/// Runs one phase (`name` or `name@N`) against `t`, after setting up its per-worker state.
pub(crate) async fn run_one(t: &Arc<Target>, spec: &str, o: &Opts) -> Result<PhaseResult, BoxError> {
    let (name, workers) = match spec.split_once('@') {
        Some((n, w)) => (n, w.parse()?),
        None => (spec, o.workers),
    };
    let none = || (0..workers).map(|_| WorkerState::None).collect::<Vec<_>>();
    Ok(match name {
        "par" => {
            let signer = Arc::new(DpopSigner::generate());
            run_phase(t, spec, workers, o, none(), move |t, s| {
                let signer = signer.clone();
                async move { (s, t.par(&signer).await.map(drop)) }
            })
            .await
        }
        // `par` with a scope that includes a permission set pinned in atauth's `--lexicon-dir`
        // (issue 13: at most 10 % over `par`). The reference resolves sets over the network only.
        "par-include" if t.name == "reference" => {
            return Err(
                "par-include runs against atauth only (the set is pinned in its --lexicon-dir)".into()
            );
        }
        "par-include" => {
            let signer = Arc::new(DpopSigner::generate());
            run_phase(t, spec, workers, o, none(), move |t, s| {
                let signer = signer.clone();
                async move { (s, t.par_include(&signer).await) }
            })
            .await
        }
        // The control of `par-include`: the set's permissions written out, nothing to resolve.
        "par-expanded" => {
            let signer = Arc::new(DpopSigner::generate());
            run_phase(t, spec, workers, o, none(), move |t, s| {
                let signer = signer.clone();
                async move { (s, t.par_expanded(&signer).await) }
            })
            .await
        }
        "refresh" => {
            let fams = families(t, workers).await?;
            run_phase(t, spec, workers, o, fams, |t, mut s| async move {
                let r = match &mut s {
                    WorkerState::Family(f) => t.refresh(f).await,
                    _ => Err("no family".into()),
                };
                (s, r)
            })
            .await
        }
        "getsession" => {
            let fams = families(t, workers).await?;
            run_phase(t, spec, workers, o, fams, |t, s| async move {
                let r = match &s {
                    WorkerState::Family(f) => t.get_session(f).await,
                    _ => Err("no family".into()),
                };
                (s, r)
            })
            .await
        }
        "login" => {
            run_phase(t, spec, workers, o, none(), |t, s| async move { (s, t.login().await.map(drop)) }).await
        }
        "legacy-create" => {
            run_phase(
                t,
                spec,
                workers,
                o,
                none(),
                |t, s| async move { (s, t.create_session().await.map(drop)) },
            )
            .await
        }
        "legacy-refresh" => {
            let mut sessions = Vec::new();
            for _ in 0..workers {
                sessions.push(WorkerState::Legacy(t.create_session().await?));
            }
            run_phase(t, spec, workers, o, sessions, |t, mut s| async move {
                let r = match &mut s {
                    WorkerState::Legacy(l) => t.refresh_session(l).await,
                    _ => Err("no session".into()),
                };
                (s, r)
            })
            .await
        }
        _ => return Err(format!("unknown phase {name}").into()),
    })
}
