//! `mayfly renew`: the renewal agent. It keeps the certificates listed in its own TOML file
//! fresh, from cron (`--once`) or as a daemon (`--daemon`), against Mayfly or any RFC 8555
//! server, and shows where things stand (`--status`).
//!
//! - [`config`]: the agent's TOML file.
//! - [`schedule`]: when to renew, a pure function (ARI window, 2/3 of the lifetime, at once).
//! - [`inspect`]: reading the installed certificate and key back.
//! - [`acme`]: the account and one order, on instant-acme; renewal information (RFC 9773).
//! - [`http01`], [`webroot`], [`dns01`], [`tkauth`]: the challenge responders.
//! - [`files`]: atomic, crash-consistent installation of a certificate and its key.
//! - [`hooks`]: running the post_renew, dns-01 and tkauth-01 token commands.
//! - [`state`]: what the agent remembers between runs.
//! - [`agent`]: one look at one certificate; [`daemon`] and [`status`] build on it.
//!
//! Exit codes of `--once`: 0 when every certificate is fine (renewed or not due), 1 when a
//! renewal failed, 2 for a bad configuration, 3 when every renewal succeeded but a post_renew
//! hook failed (the new certificate stays installed).

pub mod acme;
pub mod agent;
pub mod config;
pub mod daemon;
pub mod dns01;
pub mod files;
pub mod hooks;
pub mod http01;
pub mod inspect;
pub mod schedule;
pub mod state;
pub mod status;
pub mod tkauth;
pub mod webroot;

use anyhow::{Context, Result, bail};

use crate::cli::RenewArgs;
use agent::{Agent, Options, Outcome, rfc3339};
use config::{AgentConfig, CertificateConfig};
use state::State;

/// Exit code of `--once` when renewals succeeded but a post_renew hook failed.
pub const EXIT_HOOK_FAILED: i32 = 3;

/// How `--once` ended, when it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    Ok,
    HookFailed,
}

/// `mayfly renew`.
pub async fn run(args: &RenewArgs) -> Result<Finished> {
    let config = AgentConfig::load(&args.config)?;
    select(&config, args.cert.as_deref())?;
    if args.status {
        print!(
            "{}",
            status::table(&config, time::OffsetDateTime::now_utc())?
        );
        return Ok(Finished::Ok);
    }
    if args.daemon {
        daemon::run(config, args.config.clone(), args.cert.clone()).await?;
        return Ok(Finished::Ok);
    }
    once(config, args).await
}

/// The certificates to look at: all, or the one with id `only`.
pub fn select<'a>(
    config: &'a AgentConfig,
    only: Option<&str>,
) -> Result<Vec<&'a CertificateConfig>> {
    let selected: Vec<_> = config
        .certificates
        .iter()
        .filter(|certificate| only.is_none_or(|id| certificate.id() == id))
        .collect();
    if let Some(id) = only
        && selected.is_empty()
    {
        return Err(crate::config::ConfigError(format!("no certificate with id {id:?}")).into());
    }
    Ok(selected)
}

async fn once(config: AgentConfig, args: &RenewArgs) -> Result<Finished> {
    let state_path = config.account.state_path();
    let mut state = State::load(&state_path)?;
    let certificates: Vec<CertificateConfig> = select(&config, args.cert.as_deref())?
        .into_iter()
        .cloned()
        .collect();
    let mut agent = Agent::new(config);
    let options = Options { force: args.force };
    let (mut failed, mut hook_failed) = (0, 0);
    for certificate in &certificates {
        let id = certificate.id();
        let now = time::OffsetDateTime::now_utc();
        let outcome = agent
            .check(certificate, state.entry(id), now, options)
            .await;
        state
            .save(&state_path)
            .with_context(|| format!("saving the state to {}", state_path.display()))?;
        match &outcome {
            Outcome::Failed { error } => {
                failed += 1;
                eprintln!(
                    "error: {id}: renewal failed; the installed files are unchanged: {error}"
                );
            }
            Outcome::Renewed {
                hook: Some(Err(e)), ..
            } => {
                hook_failed += 1;
                eprintln!("error: {id}: renewed, but the post_renew hook failed: {e}");
            }
            _ => {}
        }
        if args.verbose {
            println!("{}", summary(id, &outcome));
        }
    }
    if failed > 0 {
        bail!(
            "{failed} of {} certificate(s) could not be renewed",
            certificates.len()
        );
    }
    Ok(if hook_failed > 0 {
        Finished::HookFailed
    } else {
        Finished::Ok
    })
}

/// One line per certificate for `--verbose` and the daemon's log.
pub fn summary(id: &str, outcome: &Outcome) -> String {
    let time = |t: &Option<time::OffsetDateTime>| t.map_or_else(|| "-".to_owned(), rfc3339);
    match outcome {
        Outcome::NotDue {
            not_after,
            next_renewal,
            reason,
        } => format!(
            "{id}: not due; expires {}; next renewal {} ({})",
            time(not_after),
            rfc3339(*next_renewal),
            match reason {
                schedule::Reason::AriWindow => "ARI window".to_owned(),
                schedule::Reason::TwoThirds => "2/3 of lifetime".to_owned(),
                other => other.to_string(),
            }
        ),
        Outcome::Renewed {
            reason,
            not_after,
            next_renewal,
            hook,
        } => format!(
            "{id}: renewed ({reason}); expires {}; next renewal {}{}",
            time(not_after),
            time(next_renewal),
            match hook {
                Some(Ok(())) => "; post_renew hook ok",
                Some(Err(_)) => "; post_renew hook FAILED",
                None => "",
            }
        ),
        Outcome::Failed { error } => format!("{id}: FAILED: {error}"),
    }
}
