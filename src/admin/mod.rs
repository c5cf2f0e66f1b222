//! Operator tasks (`mayfly admin …`): `bootstrap` signs the first admin client certificate
//! with the CA key in the data directory; every other command is a call of the admin API
//! (`api::admin`) over mutual TLS ([`client`]).
//!
//! - [`certs`]: status, certificates (list, export, one), revocation (one, bulk), CA, CRL;
//! - [`accounts`]: accounts, EAB keys (RFC 8555 §7.3.4), ARI windows (RFC 9773).

mod accounts;
mod certs;
pub mod client;
pub mod eab;
pub mod table;

use anyhow::{Context, bail};

use crate::cli::{AdminArgs, AdminCommand};
use crate::config::{Config, ConfigError};
use client::AdminClient;

/// Runs one admin command, printing its result to stdout.
pub async fn run(args: &AdminArgs) -> anyhow::Result<()> {
    let config = args.database.config()?;
    if let AdminCommand::Bootstrap {
        name,
        validity,
        out,
        force,
    } = &args.command
    {
        return bootstrap(&config, name, validity.0, out.as_deref(), *force);
    }
    if let AdminCommand::Openapi = &args.command {
        let document = crate::api::admin::openapi::openapi();
        println!(
            "{}",
            serde_json::to_string_pretty(&document).context("printing the document")?
        );
        return Ok(());
    }
    let client = AdminClient::new(&args.connection, &config)?;
    let json = args.json;
    match &args.command {
        AdminCommand::Bootstrap { .. } | AdminCommand::Openapi => Ok(()),
        AdminCommand::Status => certs::status(&client, json).await,
        AdminCommand::Certs(certs_args) => certs::list(&client, certs_args, json).await,
        AdminCommand::Cert { serial, pem } => certs::one(&client, serial, *pem, json).await,
        AdminCommand::Revoke(revoke) => certs::revoke(&client, revoke, json).await,
        AdminCommand::Ca { out } => certs::ca(&client, out.as_deref(), json).await,
        AdminCommand::Crl => certs::crl(&client, json).await,
        AdminCommand::Accounts(command) => accounts::accounts(&client, command, json).await,
        AdminCommand::Eab(command) => accounts::eab(&client, command, json).await,
        AdminCommand::Ari(command) => accounts::ari(&client, command, json).await,
        AdminCommand::Audit(audit) => accounts::audit(&client, audit, json).await,
    }
}

/// `mayfly admin bootstrap`: needs only the CA in the data directory (and its passphrase when
/// the key is encrypted), not a running server.
fn bootstrap(
    config: &Config,
    name: &str,
    validity: time::Duration,
    out: Option<&std::path::Path>,
    force: bool,
) -> anyhow::Result<()> {
    let dir = out.map_or_else(|| client::default_credential_dir(config), Into::into);
    let cert_path = dir.join(client::CERT_FILE);
    let key_path = dir.join(client::KEY_FILE);
    if !force && let Some(existing) = [&cert_path, &key_path].into_iter().find(|p| p.exists()) {
        bail!(ConfigError(format!(
            "{} exists; pass --force to replace the admin credential",
            existing.display()
        )));
    }
    if validity <= time::Duration::ZERO {
        bail!(ConfigError("--validity must be positive".into()));
    }
    let issuer =
        crate::issuer::Issuer::load(&config.server.data_dir, crate::cli::passphrase().as_deref())
            .with_context(|| {
            format!(
                "loading the CA from {} (run `mayfly init` or `mayfly serve` first)",
                config.server.data_dir.display()
            )
        })?;
    let now = crate::clock::truncate(time::OffsetDateTime::now_utc());
    let credential = issuer.issue_admin_certificate(name, now, validity)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    credential.write(&cert_path, &key_path)?;
    println!("wrote the admin certificate {}", cert_path.display());
    println!("  key:        {}", key_path.display());
    println!("  serial:     {}", credential.serial);
    println!(
        "  not after:  {}",
        crate::api::admin::wire_time(credential.not_after)
    );
    Ok(())
}
