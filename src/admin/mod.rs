//! Operator tasks (`mayfly admin …`). Until the admin API exists they open the database
//! directly, with the same configuration as `serve`.
//!
//! - [`eab`]: External Account Binding keys (RFC 8555 §7.3.4): add, list, revoke.
//! - [`ari`]: renewal windows (RFC 9773): move, renew-now, reset.

pub mod ari;
pub mod eab;

use anyhow::Context;

use crate::cli::{AdminArgs, AdminCommand};

/// Runs one admin command, printing its result to stdout.
pub async fn run(args: &AdminArgs) -> anyhow::Result<()> {
    let config = args.database.config()?;
    let store = crate::storage::connect(&config.database_url(), 1)
        .await
        .context("opening the database")?;
    let now = crate::clock::truncate(time::OffsetDateTime::now_utc());
    match &args.command {
        AdminCommand::Eab(command) => eab::run(&*store, &config, command, now).await,
        AdminCommand::Ari(command) => ari::run(&*store, &config, command, now).await,
    }
}

// --- audit log and rate limits (issue 7) ---

/// The actor of `mayfly admin` commands in the audit log: run on the host, not through the
/// admin API's client certificates.
pub const CLI_ADMIN: &str = "cli";

/// Records an administrator's action in the audit log (and the log). The action is done
/// already: a failure to record it is reported on standard error, not as the command's
/// failure.
pub async fn record(
    store: &dyn crate::storage::Store,
    action: &str,
    object: String,
    detail: serde_json::Value,
    now: time::OffsetDateTime,
) {
    let event = crate::authority::audit::admin_action(CLI_ADMIN, action, object, detail, now);
    crate::authority::audit::log(&event);
    if let Err(e) = store.append_audit(&[event]).await {
        eprintln!("warning: the action was done, but recording it in the audit log failed: {e}");
    }
}
// --- end of audit log and rate limits ---
