//! dehydrated (0.7) with dns-01 through the hook in `hooks/` (TXT records in
//! pebble-challtestsrv), and with http-01: dehydrated writes each token into its `WELLKNOWN`
//! directory and a small responder here serves that directory on the http-01 port.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{describe, hook, run_client};
use crate::AcmeTarget;

/// The challenge dehydrated answers.
pub enum Challenge<'a> {
    Http01,
    Dns01 { challtestsrv_url: &'a str },
}

/// Register an account, then obtain a certificate for `name`.
pub async fn issue(
    target: &AcmeTarget,
    name: &str,
    challenge: Challenge<'_>,
    work_dir: &Path,
) -> Result<PathBuf> {
    let wellknown = work_dir.join("wellknown");
    std::fs::create_dir_all(&wellknown)?;
    let mut config = String::new();
    writeln!(config, "CA=\"{}\"", target.directory_url)?;
    writeln!(config, "BASEDIR=\"{}\"", work_dir.display())?;
    writeln!(config, "WELLKNOWN=\"{}\"", wellknown.display())?;
    writeln!(config, "CONTACT_EMAIL=\"test@example.com\"")?;
    // ECDSA keys: quick to generate, and the profile Mayfly signs with.
    writeln!(config, "KEY_ALGO=\"prime256v1\"")?;
    writeln!(
        config,
        "CURL_OPTS=\"--cacert {} --noproxy *\"",
        target.tls_root.display()
    )?;
    let mut challtestsrv = None;
    match challenge {
        Challenge::Http01 => writeln!(config, "CHALLENGETYPE=\"http-01\"")?,
        Challenge::Dns01 { challtestsrv_url } => {
            writeln!(config, "CHALLENGETYPE=\"dns-01\"")?;
            writeln!(config, "HOOK=\"{}\"", hook("dehydrated-dns.sh").display())?;
            challtestsrv = Some(challtestsrv_url.to_owned());
        }
    }
    let config_path = work_dir.join("config");
    std::fs::write(&config_path, config)?;

    let command = |args: &[&str]| {
        let mut command = tokio::process::Command::new("dehydrated");
        command.args(args).arg("--config").arg(&config_path);
        if let Some(url) = &challtestsrv {
            command.env("CHALLTESTSRV_URL", url);
        }
        command
    };
    let output = run_client("dehydrated", command(&["--register", "--accept-terms"])).await?;
    if !output.status.success() {
        bail!("dehydrated --register failed: {}", describe(&output));
    }
    let responder = match challenge {
        Challenge::Http01 => Some(serve_directory(target.http01_port, wellknown).await?),
        Challenge::Dns01 { .. } => None,
    };
    let output = run_client("dehydrated", command(&["--cron", "--domain", name])).await?;
    if let Some(responder) = responder {
        responder.abort();
    }
    let fullchain = work_dir.join("certs").join(name).join("fullchain.pem");
    if !output.status.success() || !fullchain.exists() {
        bail!("dehydrated failed for {name}: {}", describe(&output));
    }
    Ok(fullchain)
}

/// Serves `GET /.well-known/acme-challenge/<token>` from the files in `directory`.
async fn serve_directory(port: u16, directory: PathBuf) -> Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .with_context(|| format!("binding the http-01 responder to 127.0.0.1:{port}"))?;
    Ok(tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let directory = directory.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or_default();
                // Tokens are base64url: no separators, so no way out of the directory.
                let body = path
                    .strip_prefix("/.well-known/acme-challenge/")
                    .filter(|token| {
                        !token.is_empty()
                            && token
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    })
                    .and_then(|token| std::fs::read(directory.join(token)).ok());
                let response = match body {
                    Some(body) => {
                        let mut response = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        response.extend_from_slice(&body);
                        response
                    }
                    None => {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = stream.write_all(&response).await;
                let _ = stream.shutdown().await;
            });
        }
    }))
}
