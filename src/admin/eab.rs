//! External Account Binding keys (RFC 8555 §7.3.4), managed by the operator: `add` makes a
//! key and shows its HMAC once, `list` shows the keys without their HMAC, `revoke` stops a
//! key from binding new accounts (accounts it already bound keep working).

use anyhow::{Context, bail};
use serde_json::json;
use time::OffsetDateTime;

use crate::authority::{random_bytes, random_id};
use crate::cli::EabCommand;
use crate::config::Config;
use crate::jose::base64url;
use crate::provisioner::DEFAULT_ACME;
use crate::storage::{EabKey, Store, StoreError};

/// HMAC key length: 64 bytes is the block-sized key of HS512 (RFC 7518 §3.2 asks for at
/// least the hash size), so one key serves HS256, HS384 and HS512.
const HMAC_KEY_BYTES: usize = 64;

pub async fn run(
    store: &dyn Store,
    config: &Config,
    command: &EabCommand,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    match command {
        EabCommand::Add {
            label,
            reusable,
            provisioner,
            json,
        } => {
            if let Some(name) = provisioner {
                check_provisioner(config, name)?;
            }
            let key = add_for(store, label, *reusable, provisioner.as_deref(), now).await?;
            let detail = json!({"label": key.label, "reusable": key.reusable, "provisioner": key.provisioner});
            super::record(store, "eab.add", format!("eab_key:{}", key.id), detail, now).await;
            if *json {
                println!(
                    "{}",
                    json!({"kid": key.id, "hmac_key": base64url(&key.hmac_key), "label": key.label, "reusable": key.reusable, "provisioner": key.provisioner})
                );
            } else {
                println!("kid:      {}", key.id);
                println!("hmac_key: {}", base64url(&key.hmac_key));
                eprintln!(
                    "The HMAC key (base64url) is shown only now. Give both values to the ACME client, e.g. lego --eab --kid KID --hmac HMAC_KEY."
                );
            }
            Ok(())
        }
        EabCommand::List { json } => {
            let keys = store.eab_keys().await.context("listing the EAB keys")?;
            if *json {
                let list: Vec<_> = keys.iter().map(describe).collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                print!("{}", table(&keys));
            }
            Ok(())
        }
        EabCommand::Revoke { kid } => match store.revoke_eab_key(kid, now).await {
            Ok(true) => {
                super::record(
                    store,
                    "eab.revoke",
                    format!("eab_key:{kid}"),
                    json!({}),
                    now,
                )
                .await;
                println!("revoked EAB key {kid}");
                Ok(())
            }
            Ok(false) => {
                println!("EAB key {kid} was already revoked");
                Ok(())
            }
            Err(StoreError::NotFound) => bail!("there is no EAB key with kid {kid:?}"),
            Err(e) => Err(e).context("revoking the EAB key"),
        },
    }
}

/// Creates and stores a new key with a random id and HMAC key, bound to no provisioner.
pub async fn add(
    store: &dyn Store,
    label: &str,
    reusable: bool,
    now: OffsetDateTime,
) -> anyhow::Result<EabKey> {
    add_for(store, label, reusable, None, now).await
}

/// Creates and stores a new key whose accounts get the policy of `provisioner`.
pub async fn add_for(
    store: &dyn Store,
    label: &str,
    reusable: bool,
    provisioner: Option<&str>,
    now: OffsetDateTime,
) -> anyhow::Result<EabKey> {
    let key = EabKey {
        id: random_id(),
        hmac_key: random_bytes::<HMAC_KEY_BYTES>().to_vec(),
        label: label.to_owned(),
        reusable,
        created_at: now,
        revoked_at: None,
        use_count: 0,
        provisioner: provisioner.map(str::to_owned),
    };
    store
        .insert_eab_key(&key)
        .await
        .context("storing the EAB key")?;
    Ok(key)
}

/// A key may only name an ACME provisioner the configuration has: the default one or a
/// `[provisioners.<name>]` table with `type = "acme"`. Its accounts belong to that directory
/// and get its policy.
fn check_provisioner(config: &Config, name: &str) -> anyhow::Result<()> {
    match config.provisioners.get(name) {
        _ if name == DEFAULT_ACME => Ok(()),
        Some(crate::provisioner::ProvisionerConfig::Acme(_)) => Ok(()),
        Some(_) => bail!(
            "provisioner {name:?} is not an ACME provisioner; an EAB key binds accounts at an ACME directory"
        ),
        None => bail!("there is no provisioner {name:?} in the configuration"),
    }
}

/// A key as JSON, without its HMAC.
fn describe(key: &EabKey) -> serde_json::Value {
    json!({
        "kid": key.id,
        "label": key.label,
        "reusable": key.reusable,
        "use_count": key.use_count,
        "created_at": rfc3339(key.created_at),
        "revoked_at": key.revoked_at.map(rfc3339),
        "provisioner": key.provisioner,
    })
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// The keys as an aligned text table, one line per key after a header.
fn table(keys: &[EabKey]) -> String {
    let header = [
        "KID",
        "LABEL",
        "PROVISIONER",
        "REUSABLE",
        "USES",
        "CREATED",
        "REVOKED",
    ]
    .map(String::from);
    let rows: Vec<[String; 7]> = keys
        .iter()
        .map(|k| {
            [
                k.id.clone(),
                k.label.clone(),
                k.provisioner.clone().unwrap_or_else(|| "-".into()),
                if k.reusable { "yes" } else { "no" }.into(),
                k.use_count.to_string(),
                rfc3339(k.created_at),
                k.revoked_at.map_or_else(|| "-".into(), rfc3339),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    std::iter::once(&header)
        .chain(&rows)
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            format!("{}\n", cells.join("  ").trim_end())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_only_configured_provisioners() {
        let mut config = Config::default();
        config.provisioners.insert(
            "partners".into(),
            crate::provisioner::ProvisionerConfig::Acme(Default::default()),
        );
        assert!(check_provisioner(&config, "partners").is_ok());
        assert!(check_provisioner(&config, DEFAULT_ACME).is_ok());
        let refused = check_provisioner(&config, "nobody")
            .expect_err("an unknown provisioner")
            .to_string();
        assert!(refused.contains("\"nobody\""), "{refused}");
    }

    #[test]
    fn table_aligns_columns() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        let keys = [EabKey {
            id: "kid-1".into(),
            hmac_key: vec![1; 4],
            label: "team a".into(),
            reusable: true,
            created_at: at,
            revoked_at: None,
            use_count: 2,
            provisioner: Some("ops".into()),
        }];
        let text = table(&keys);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].starts_with("KID    LABEL   PROVISIONER  REUSABLE  USES"),
            "{text}"
        );
        assert!(
            lines[1]
                .starts_with("kid-1  team a  ops          yes       2     2027-01-15T08:00:00Z  -"),
            "{text}"
        );
        assert!(
            !text.contains("AQEB"),
            "the HMAC key must not be shown: {text}"
        );
    }
}
