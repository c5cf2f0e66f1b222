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
