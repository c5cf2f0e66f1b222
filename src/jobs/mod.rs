//! Periodic jobs (issue 7), run inside `mayfly serve`.
//!
//! Every `jobs.interval`, each replica tries to take or renew the lease of each job in the
//! database ([`crate::authority::Authority::hold_lease`]); the job runs on the replica that
//! holds it, so with several replicas each job runs on exactly one. A lease lasts three
//! intervals: when its holder stops, another replica takes over within that time. At a
//! graceful shutdown the leases are given up at once.
//!
//! - `purge`: expired nonces and token ids, rate-limit events older than their hour, orders
//!   that never got a certificate and unused authorizations (`jobs.order_retention` after
//!   they expired). The audit log is never purged: it is append-only.
//! - `renewal-alerts`: certificates whose renewal window passed without a renewal
//!   ([`alerts`]).
//!
//! The renewal gauges are read on every replica (a query, no write), so that each replica's
//! `/metrics` shows them. CRLs are signed by each replica, since each serves its own.

pub mod alerts;

use std::sync::Arc;

use crate::app::AppState;
use crate::authority::Authority;

/// The job names, which are also their lease names.
pub const PURGE: &str = "purge";
pub const RENEWAL_ALERTS: &str = "renewal-alerts";
const JOBS: [&str; 2] = [PURGE, RENEWAL_ALERTS];

/// The periodic jobs of one replica.
pub struct Jobs {
    authority: Authority,
    /// This replica's name in `job_leases.holder`: host, process and a random part.
    holder: String,
    interval: std::time::Duration,
    order_retention: time::Duration,
    alerts: alerts::Alerts,
    /// Profiles the gauges report, so that a profile back at zero shows 0, not its last count.
    profiles: Vec<String>,
}

impl Jobs {
    pub fn new(state: &AppState) -> anyhow::Result<Arc<Jobs>> {
        let app = &state.0;
        let config = &app.config;
        Ok(Arc::new(Jobs {
            authority: app.authority.clone(),
            holder: holder_name(),
            interval: config.jobs.interval.as_std(),
            order_retention: config.jobs.order_retention.0,
            alerts: alerts::Alerts::new(&config.alerts, app.links.clone())?,
            profiles: config.profiles.profiles.keys().cloned().collect(),
        }))
    }

    /// Runs the jobs every interval until the task is dropped.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.run_once().await;
        }
    }

    /// One round: every job whose lease this replica holds, then the gauges. Returns the
    /// jobs that ran here.
    pub async fn run_once(&self) -> Vec<&'static str> {
        let mut ran = Vec::new();
        for job in JOBS {
            let lease = self.lease(job);
            if !lease.hold().await {
                continue;
            }
            let outcome = match job {
                PURGE => self.purge().await,
                _ => self.alerts.run(&self.authority, &lease).await,
            };
            let label = if let Err(e) = &outcome {
                tracing::warn!(job, error = %e, "job failed");
                "error"
            } else {
                "ok"
            };
            metrics::counter!("mayfly_job_runs_total", "job" => job, "outcome" => label)
                .increment(1);
            ran.push(job);
        }
        if let Err(e) = self.renewal_gauges().await {
            tracing::warn!(error = %e, "counting certificates due for renewal failed");
        }
        ran
    }

    fn lease(&self, job: &'static str) -> Lease<'_> {
        Lease {
            authority: &self.authority,
            job,
            holder: &self.holder,
            ttl: time::Duration::try_from(self.interval * 3).unwrap_or(time::Duration::MINUTE),
        }
    }

    /// Gives up this replica's leases, so another replica takes the jobs over at once.
    pub async fn release(&self) {
        for job in JOBS {
            if let Err(e) = self.authority.release_lease(job, &self.holder).await {
                tracing::warn!(job, error = %e, "could not give the job's lease up");
            }
        }
    }

    async fn purge(&self) -> anyhow::Result<()> {
        let nonces = self.authority.prune_nonces().await?;
        let tokens = self.authority.prune_used_tokens().await?;
        let rate_limit_events = self.authority.prune_rate_limits().await?;
        let purged = self.authority.purge_expired(self.order_retention).await?;
        tracing::info!(
            nonces,
            tokens,
            rate_limit_events,
            orders = purged.orders,
            authorizations = purged.authorizations,
            authorizations_retained = purged.retained,
            "purged expired records"
        );
        Ok(())
    }

    async fn renewal_gauges(&self) -> anyhow::Result<()> {
        let counts = self.authority.renewal_counts().await?;
        let mut due: Vec<(String, u64, u64)> =
            self.profiles.iter().map(|p| (p.clone(), 0, 0)).collect();
        for line in counts {
            let name = line.profile.unwrap_or_else(|| NO_PROFILE.to_owned());
            match due.iter_mut().find(|(p, _, _)| *p == name) {
                Some(entry) => (entry.1, entry.2) = (line.due, line.overdue),
                None => due.push((name, line.due, line.overdue)),
            }
        }
        for (profile, in_window, overdue) in due {
            metrics::gauge!("mayfly_certificates_in_renewal_window", "profile" => profile.clone())
                .set(in_window as f64);
            metrics::gauge!("mayfly_certificates_renewal_overdue", "profile" => profile)
                .set(overdue as f64);
        }
        Ok(())
    }
}

/// This replica's lease on one job.
pub struct Lease<'a> {
    authority: &'a Authority,
    job: &'static str,
    holder: &'a str,
    ttl: time::Duration,
}

impl Lease<'_> {
    /// Takes or renews the lease; true if this replica holds it for another `ttl`. A job
    /// that may run long renews it as it goes, so that no other replica starts the same
    /// work meanwhile.
    pub async fn hold(&self) -> bool {
        match self
            .authority
            .hold_lease(self.job, self.holder, self.ttl)
            .await
        {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(job = self.job, error = %e, "could not take the job's lease");
                false
            }
        }
    }
}

/// The `profile` label of certificates issued without a profile (before profiles existed).
const NO_PROFILE: &str = "none";

fn holder_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "mayfly".to_owned());
    let random = crate::authority::random_bytes::<4>();
    let random: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("{host}:{}:{random}", std::process::id())
}
