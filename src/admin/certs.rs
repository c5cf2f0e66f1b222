//! `mayfly admin status|certs|cert|revoke|ca|crl`.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::client::AdminClient;
use super::table::{cell, render};
use crate::cli::{CertsArgs, RevokeArgs};
use crate::config::ConfigError;

/// The most pages a bulk command walks: 1000 pages of up to 1000 certificates; a bound, so a
/// server that keeps answering `next` cannot keep the command running for ever.
const MAX_PAGES: usize = 1000;

pub async fn status(client: &AdminClient, json: bool) -> anyhow::Result<()> {
    let status = client.get("/admin/status").await?;
    if json {
        println!("{status}");
        return Ok(());
    }
    let c = &status["certificates"];
    let rows = vec![
        vec![
            "root".to_owned(),
            cell(&status["root"]["sha256_fingerprint"]),
            cell(&status["root"]["not_after"]),
        ],
        vec![
            "intermediate".to_owned(),
            cell(&status["intermediate"]["sha256_fingerprint"]),
            cell(&status["intermediate"]["not_after"]),
        ],
    ];
    print!(
        "{}",
        render(&["CA", "SHA-256 FINGERPRINT", "NOT AFTER"], &rows)
    );
    println!();
    let counts = vec![vec![
        cell(&c["issued"]),
        cell(&c["active"]),
        cell(&c["expired"]),
        cell(&c["revoked"]),
        cell(&status["accounts"]),
    ]];
    print!(
        "{}",
        render(
            &["ISSUED", "ACTIVE", "EXPIRED", "REVOKED", "ACCOUNTS"],
            &counts
        )
    );
    Ok(())
}

/// The query string of a certificates listing.
fn query(args: &CertsArgs, cursor: Option<&str>) -> String {
    let now = time::OffsetDateTime::now_utc();
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("limit", &args.limit.to_string());
    if let Some(name) = &args.name {
        query.append_pair("name", name);
    }
    if let Some(account) = &args.account {
        query.append_pair("account", account);
    }
    if let Some(status) = &args.status {
        query.append_pair("status", status);
    }
    if let Some(before) = args.expiring_before {
        query.append_pair(
            "expiring_before",
            &crate::api::admin::wire_time(before.resolve(now)),
        );
    }
    if let Some(cursor) = cursor {
        query.append_pair("cursor", cursor);
    }
    query.finish()
}

/// Walks the pages of `path?query`, handing each page's items to `each`; stops after the first
/// page unless `all`.
async fn walk(
    client: &AdminClient,
    path: &str,
    make_query: impl Fn(Option<&str>) -> String,
    all: bool,
    mut each: impl AsyncFnMut(Vec<Value>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = client
            .get(&format!("{path}?{}", make_query(cursor.as_deref())))
            .await?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        each(items).await?;
        cursor = page["next"].as_str().map(str::to_owned);
        if cursor.is_none() || !all {
            return Ok(());
        }
    }
    bail!("stopped after {MAX_PAGES} pages")
}

pub async fn list(client: &AdminClient, args: &CertsArgs, json: bool) -> anyhow::Result<()> {
    if let Some(dir) = &args.out {
        return export(client, args, dir).await;
    }
    let mut all = Vec::new();
    walk(
        client,
        "/admin/certificates",
        |cursor| query(args, cursor),
        args.all,
        async |items| {
            all.extend(items);
            Ok(())
        },
    )
    .await?;
    if json {
        println!("{}", Value::Array(all));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|c| {
            vec![
                cell(&c["serial"]),
                cell(&c["status"]),
                cell(&c["not_after"]),
                cell(&c["account"]),
                cell(&c["names"]),
            ]
        })
        .collect();
    print!(
        "{}",
        render(
            &["SERIAL", "STATUS", "NOT AFTER", "ACCOUNT", "NAMES"],
            &rows
        )
    );
    Ok(())
}

/// `certs --out DIR`: every matching certificate's chain as `<serial>.pem`, with progress.
async fn export(client: &AdminClient, args: &CertsArgs, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut serials = Vec::new();
    walk(
        client,
        "/admin/certificates",
        |cursor| query(args, cursor),
        true,
        async |items| {
            serials.extend(
                items
                    .iter()
                    .filter_map(|c| c["serial"].as_str().map(str::to_owned)),
            );
            Ok(())
        },
    )
    .await?;
    let total = serials.len();
    for (done, serial) in serials.iter().enumerate() {
        let cert = client.get(&format!("/admin/certificates/{serial}")).await?;
        let pem = cert["chain_pem"]
            .as_str()
            .with_context(|| format!("certificate {serial} came without chain_pem"))?;
        let path = dir.join(format!("{serial}.pem"));
        std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("exported {}/{total}", done + 1);
    }
    println!("exported {total} certificates to {}", dir.display());
    Ok(())
}

pub async fn one(client: &AdminClient, serial: &str, pem: bool, json: bool) -> anyhow::Result<()> {
    let cert = client
        .get(&format!("/admin/certificates/{}", path_segment(serial)))
        .await?;
    if json {
        println!("{cert}");
    } else if pem {
        print!("{}", cert["chain_pem"].as_str().unwrap_or_default());
    } else {
        for key in [
            "serial",
            "status",
            "names",
            "not_before",
            "not_after",
            "account",
            "order",
            "created_at",
            "revoked_at",
            "revocation_reason",
        ] {
            println!("{:<18} {}", format!("{key}:"), cell(&cert[key]));
        }
    }
    Ok(())
}

/// A serial or id as one path segment: only characters that need no escaping pass.
fn path_segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The reason as the API takes it: a number stays a number.
fn reason(text: &str) -> Value {
    text.parse::<u64>()
        .map_or_else(|_| json!(text), |n| json!(n))
}

pub async fn revoke(client: &AdminClient, args: &RevokeArgs, json: bool) -> anyhow::Result<()> {
    let body = json!({ "reason": reason(&args.reason) });
    if let Some(serial) = &args.serial {
        let revoked = client
            .post(
                &format!("/admin/certificates/{}/revoke", path_segment(serial)),
                &body,
            )
            .await?;
        if json {
            println!("{revoked}");
        } else {
            println!(
                "revoked certificate {} ({})",
                cell(&revoked["serial"]),
                cell(&revoked["revocation_reason"])
            );
        }
        return Ok(());
    }
    let pattern = args.name_pattern.as_deref().unwrap_or_default();
    // First the whole list, then the revocations: revoking while paging would move the pages.
    let mut matches: Vec<(String, String)> = Vec::new();
    walk(
        client,
        "/admin/certificates",
        |cursor| {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("name", pattern)
                .append_pair("status", "active")
                .append_pair("limit", "1000");
            if let Some(cursor) = cursor {
                q.append_pair("cursor", cursor);
            }
            q.finish()
        },
        true,
        async |items| {
            matches.extend(
                items
                    .iter()
                    .map(|c| (cell(&c["serial"]), cell(&c["names"]))),
            );
            Ok(())
        },
    )
    .await?;
    let total = matches.len();
    if total == 0 {
        println!("no active certificate matches {pattern:?}");
        return Ok(());
    }
    if !args.yes {
        for (serial, names) in &matches {
            println!("{serial}  {names}");
        }
        bail!(ConfigError(format!(
            "{total} active certificates match {pattern:?}; run again with --yes to revoke them"
        )));
    }
    let mut revoked = Vec::new();
    for (done, (serial, _)) in matches.iter().enumerate() {
        let answer = client
            .post(&format!("/admin/certificates/{serial}/revoke"), &body)
            .await
            .with_context(|| format!("revoking {serial} after {done} of {total}"))?;
        revoked.push(answer);
        eprintln!("revoked {}/{total}", done + 1);
    }
    if json {
        println!("{}", Value::Array(revoked));
    } else {
        println!("revoked {total} certificates matching {pattern:?}");
    }
    Ok(())
}

pub async fn ca(client: &AdminClient, out: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let ca = client.get("/admin/ca").await?;
    let chain = ca["chain_pem"].as_str().unwrap_or_default();
    match out {
        Some(path) => {
            std::fs::write(path, chain).with_context(|| format!("writing {}", path.display()))?;
            println!("wrote the CA chain to {}", path.display());
        }
        None if json => println!("{ca}"),
        None => print!("{chain}"),
    }
    Ok(())
}

pub async fn crl(client: &AdminClient, json: bool) -> anyhow::Result<()> {
    let crl = client.post("/admin/crl", &json!({})).await?;
    if json {
        println!("{crl}");
    } else {
        println!(
            "signed CRL number {} with {} entries, next update {} ({})",
            cell(&crl["number"]),
            cell(&crl["entries"]),
            cell(&crl["next_update"]),
            cell(&crl["url"])
        );
    }
    Ok(())
}
