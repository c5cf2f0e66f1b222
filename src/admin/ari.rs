//! Renewal windows (ACME Renewal Information, RFC 9773), moved by the operator: `move` sets a
//! certificate's window, `renew-now` opens it for five minutes from now (an incident: the
//! certificate must be replaced soon), `reset` returns to the window computed from the
//! lifetime. Clients that poll renewalInfo see the change at their next poll.

use anyhow::Context;
use time::{Duration, OffsetDateTime};

use crate::authority::renewal::{MoveError, key_identifier, move_window};
use crate::cli::AriCommand;
use crate::config::{Config, ConfigError};
use crate::storage::Store;

/// How long a `renew-now` window stays open: long enough for a client polling at its
/// Retry-After to catch it once it has fetched the moved window, short enough that the
/// window means "now". RFC 9773 §4.2 lets clients renew at any point inside it.
const RENEW_NOW_SPREAD: Duration = Duration::minutes(5);

pub async fn run(
    store: &dyn Store,
    config: &Config,
    command: &AriCommand,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let (certificate, window) = match command {
        AriCommand::Move {
            certificate,
            start,
            end,
        } => (certificate, Some((start.resolve(now), end.resolve(now)))),
        AriCommand::RenewNow { certificate } => (certificate, Some((now, now + RENEW_NOW_SPREAD))),
        AriCommand::Reset { certificate } => (certificate, None),
    };
    // The intermediate's certificate is public and readable without the CA passphrase; it lets
    // an ARI id of another CA's certificate be refused rather than matched by serial alone.
    let intermediate = crate::issuer::CaPaths::new(&config.server.data_dir).intermediate_cert;
    let key_id = std::fs::read(&intermediate)
        .ok()
        .and_then(|pem| {
            x509_parser::pem::Pem::iter_from_buffer(&pem)
                .next()
                .and_then(|p| p.ok())
        })
        .and_then(|pem| key_identifier(&pem.contents));
    let moved = match move_window(store, certificate, window, key_id.as_deref()).await {
        Ok(moved) => moved,
        Err(MoveError::Usage(why)) => return Err(ConfigError(why).into()),
        Err(e @ MoveError::Unknown(_)) => return Err(e.into()),
        Err(MoveError::Store(e)) => return Err(e).context("moving the renewal window"),
    };
    let action = match command {
        AriCommand::Move { .. } => "ari.move",
        AriCommand::RenewNow { .. } => "ari.renew_now",
        AriCommand::Reset { .. } => "ari.reset",
    };
    let detail = serde_json::json!({
        "window": window.map(|(start, end)| [rfc3339(start), rfc3339(end)]),
    });
    super::record(
        store,
        action,
        format!("serial:{}", moved.serial),
        detail,
        now,
    )
    .await;
    match window {
        Some((start, end)) => println!(
            "certificate {} (not after {}): renewal window {} to {}",
            moved.serial,
            rfc3339(moved.not_after),
            rfc3339(start),
            rfc3339(end)
        ),
        None => println!(
            "certificate {}: renewal window computed from its lifetime again",
            moved.serial
        ),
    }
    Ok(())
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}
