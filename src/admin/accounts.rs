//! `mayfly admin accounts|eab|ari`.

use anyhow::Context;
use serde_json::{Value, json};

use super::client::AdminClient;
use super::table::{cell, render};
use crate::cli::{AccountsCommand, AriCommand, AuditArgs, EabCommand};

/// The most pages `accounts list --all` walks (a bound on a misbehaving server).
const MAX_PAGES: usize = 1000;

pub async fn accounts(
    client: &AdminClient,
    command: &AccountsCommand,
    json: bool,
) -> anyhow::Result<()> {
    match command {
        AccountsCommand::List { all, limit } => {
            let mut accounts = Vec::new();
            let mut cursor: Option<String> = None;
            for _ in 0..MAX_PAGES {
                let mut path = format!("/admin/accounts?limit={limit}");
                if let Some(cursor) = &cursor {
                    path.push_str(&format!("&cursor={cursor}"));
                }
                let page = client.get(&path).await?;
                accounts.extend(page["items"].as_array().cloned().unwrap_or_default());
                cursor = page["next"].as_str().map(str::to_owned);
                if cursor.is_none() || !all {
                    break;
                }
            }
            if json {
                println!("{}", Value::Array(accounts));
                return Ok(());
            }
            let rows: Vec<Vec<String>> = accounts
                .iter()
                .map(|a| {
                    ["id", "status", "provisioner", "created_at", "contact"]
                        .map(|k| cell(&a[k]))
                        .to_vec()
                })
                .collect();
            print!(
                "{}",
                render(
                    &["ID", "STATUS", "PROVISIONER", "CREATED", "CONTACT"],
                    &rows
                )
            );
        }
        AccountsCommand::Deactivate { id } => {
            let account = client
                .post(&format!("/admin/accounts/{id}/deactivate"), &json!({}))
                .await?;
            if json {
                println!("{account}");
            } else {
                println!("deactivated account {}", cell(&account["id"]));
            }
        }
    }
    Ok(())
}

pub async fn eab(client: &AdminClient, command: &EabCommand, json: bool) -> anyhow::Result<()> {
    match command {
        EabCommand::Add {
            label,
            reusable,
            provisioner,
        } => {
            let key = client
                .post(
                    "/admin/eab-keys",
                    &json!({"label": label, "reusable": reusable, "provisioner": provisioner}),
                )
                .await?;
            if json {
                println!("{key}");
            } else {
                println!("kid:      {}", cell(&key["kid"]));
                println!("hmac_key: {}", cell(&key["hmac_key"]));
                eprintln!(
                    "The HMAC key (base64url) is shown only now. Give both values to the ACME client, e.g. lego --eab --kid KID --hmac HMAC_KEY."
                );
            }
        }
        EabCommand::List => {
            let page = client.get("/admin/eab-keys").await?;
            let keys = page["items"].as_array().cloned().unwrap_or_default();
            if json {
                println!("{}", Value::Array(keys));
                return Ok(());
            }
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        cell(&k["kid"]),
                        cell(&k["label"]),
                        cell(&k["provisioner"]),
                        if k["reusable"] == true { "yes" } else { "no" }.to_owned(),
                        cell(&k["use_count"]),
                        cell(&k["created_at"]),
                        cell(&k["revoked_at"]),
                    ]
                })
                .collect();
            print!(
                "{}",
                render(
                    &[
                        "KID",
                        "LABEL",
                        "PROVISIONER",
                        "REUSABLE",
                        "USES",
                        "CREATED",
                        "REVOKED"
                    ],
                    &rows
                )
            );
        }
        EabCommand::Revoke { kid } => {
            let key = client
                .post(&format!("/admin/eab-keys/{kid}/revoke"), &json!({}))
                .await
                .with_context(|| format!("revoking EAB key {kid:?}"))?;
            if json {
                println!("{key}");
            } else {
                println!("revoked EAB key {}", cell(&key["kid"]));
            }
        }
    }
    Ok(())
}

pub async fn ari(client: &AdminClient, command: &AriCommand, json: bool) -> anyhow::Result<()> {
    let now = time::OffsetDateTime::now_utc();
    let time = |t: time::OffsetDateTime| crate::api::admin::wire_time(t);
    let (certificate, body) = match command {
        AriCommand::Move {
            certificate,
            start,
            end,
        } => (
            certificate,
            json!({"action": "move", "start": time(start.resolve(now)), "end": time(end.resolve(now))}),
        ),
        AriCommand::RenewNow { certificate } => (certificate, json!({"action": "renew-now"})),
        AriCommand::Reset { certificate } => (certificate, json!({"action": "reset"})),
    };
    let moved = client
        .post(&format!("/admin/renewal-windows/{certificate}"), &body)
        .await?;
    if json {
        println!("{moved}");
        return Ok(());
    }
    let cert = &moved["certificate"];
    match moved["window"].as_object() {
        Some(window) => println!(
            "certificate {} (not after {}): renewal window {} to {}",
            cell(&cert["serial"]),
            cell(&cert["not_after"]),
            cell(&window["start"]),
            cell(&window["end"])
        ),
        None => println!(
            "certificate {}: renewal window computed from its lifetime again",
            cell(&cert["serial"])
        ),
    }
    Ok(())
}

/// `mayfly admin audit`: one page of the audit log, newest first.
pub async fn audit(client: &AdminClient, args: &AuditArgs, json: bool) -> anyhow::Result<()> {
    let mut query = vec![format!("limit={}", args.limit)];
    for (key, value) in [
        ("kind", &args.kind),
        ("actor", &args.actor),
        ("object", &args.object),
        ("since", &args.since),
        ("until", &args.until),
    ] {
        if let Some(value) = value {
            query.push(format!("{key}={}", percent_encode(value)));
        }
    }
    let page = client
        .get(&format!("/admin/audit?{}", query.join("&")))
        .await?;
    let events = page["items"].as_array().cloned().unwrap_or_default();
    if json {
        println!("{}", Value::Array(events));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            let mut row = ["at", "kind", "outcome", "actor", "object"]
                .map(|k| cell(&e[k]))
                .to_vec();
            row.push(e["detail"].to_string());
            row
        })
        .collect();
    print!(
        "{}",
        render(
            &["AT", "KIND", "OUTCOME", "ACTOR", "OBJECT", "DETAIL"],
            &rows
        )
    );
    Ok(())
}

/// A query value with everything but unreserved characters (RFC 3986 §2.3) escaped.
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
