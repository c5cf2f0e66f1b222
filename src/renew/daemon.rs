//! `mayfly renew --daemon`: look at each certificate when its next check is due, sleep until
//! the earliest next check (plus a little jitter), back off exponentially after failures
//! (recorded by the agent), re-read the configuration on SIGHUP, stop on SIGTERM or SIGINT.
//!
//! A signal to stop interrupts a renewal in flight: nothing is installed until an order has
//! completed, and the install itself does not wait on anything, so stopping is always safe.

use std::path::PathBuf;

use anyhow::{Context, Result};
use time::{Duration, OffsetDateTime};
use tokio::signal::unix::{SignalKind, signal};

use super::agent::{Agent, Options, Outcome, random_fraction, rfc3339};
use super::config::AgentConfig;
use super::schedule::jitter;
use super::state::State;
use super::{select, summary};

/// The shortest sleep, so a clock step or a next check in the past cannot make a busy loop.
const MIN_SLEEP: Duration = Duration::SECOND;

pub async fn run(config: AgentConfig, path: PathBuf, only: Option<String>) -> Result<()> {
    let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut agent = Agent::new(config);
    tracing::info!(
        config = %path.display(),
        certificates = agent.config.certificates.len(),
        "renewal daemon started"
    );
    loop {
        let state_path = agent.config.account.state_path();
        let mut state = State::load(&state_path)?;
        let certificates: Vec<_> = select(&agent.config, only.as_deref())?
            .into_iter()
            .cloned()
            .collect();
        for certificate in &certificates {
            let id = certificate.id();
            let now = OffsetDateTime::now_utc();
            if state.entry(id).next_check.is_some_and(|next| next > now) {
                continue;
            }
            let entry = state.entry(id);
            let outcome = tokio::select! {
                outcome = agent.check(certificate, entry, now, Options::default()) => outcome,
                _ = terminate.recv() => return stopped("SIGTERM"),
                _ = interrupt.recv() => return stopped("SIGINT"),
            };
            match &outcome {
                Outcome::Failed { .. } => tracing::error!("{}", summary(id, &outcome)),
                Outcome::Renewed {
                    hook: Some(Err(e)), ..
                } => {
                    tracing::error!("{}; hook error: {e}", summary(id, &outcome))
                }
                _ => tracing::info!("{}", summary(id, &outcome)),
            }
            if let Err(e) = state.save(&state_path) {
                tracing::error!("saving the state to {}: {e}", state_path.display());
            }
        }

        let now = OffsetDateTime::now_utc();
        let max_sleep = agent.config.daemon.max_sleep.0;
        let next = certificates
            .iter()
            .filter_map(|certificate| state.entry(certificate.id()).next_check)
            .min()
            .unwrap_or(now + max_sleep);
        let sleep = (next - now).clamp(MIN_SLEEP, max_sleep.max(MIN_SLEEP));
        let sleep = sleep + jitter(sleep, random_fraction());
        tracing::info!(until = %rfc3339(now + sleep), "sleeping");
        let sleep =
            std::time::Duration::try_from(sleep).unwrap_or(std::time::Duration::from_secs(1));
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = hangup.recv() => {
                match AgentConfig::load(&path) {
                    Ok(config) => {
                        tracing::info!(config = %path.display(), "SIGHUP: configuration re-read");
                        agent = Agent::new(config);
                    }
                    Err(e) => tracing::error!("SIGHUP: keeping the old configuration: {e}"),
                }
            }
            _ = terminate.recv() => return stopped("SIGTERM"),
            _ = interrupt.recv() => return stopped("SIGINT"),
        }
    }
}

fn stopped(signal: &str) -> Result<()> {
    tracing::info!("{signal}: renewal daemon stopped");
    Ok(())
}
