//! Renewal alerts, in the spirit of Lemur's `notify expirations`, adapted to short-lived
//! certificates: what matters is not that a certificate expires soon (they all do) but that
//! its renewal window (RFC 9773) passed and no renewal came, so its client stopped renewing.
//!
//! Each such certificate is reported once: POSTed as JSON to `alerts.webhook_url`, retried
//! with exponential backoff, and marked in the database only once delivered. An alert the
//! webhook refuses or that finds it down waits for the next run, as do the ones after it.
//! Without a webhook, the alert is a warning in the log.

use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use time::OffsetDateTime;

use crate::acme::Identifier;
use crate::api::links::Links;
use crate::authority::Authority;
use crate::config::AlertsConfig;
use crate::storage::OverdueRenewal;

/// Overdue certificates read per query.
const BATCH: u32 = 100;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The `event` of every alert.
pub const EVENT: &str = "renewal_overdue";

/// The JSON body of one alert.
#[derive(Debug, Serialize)]
pub struct Alert<'a> {
    pub event: &'static str,
    /// Lower-case hex, as the admin commands and the CRL show it.
    pub serial: &'a str,
    /// The account's URL, as ACME clients know it.
    pub account: String,
    pub identifiers: &'a [Identifier],
    pub profile: Option<&'a str>,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub renewal_window_end: OffsetDateTime,
    /// The directory of the CA that issued it, for receivers fed by several CAs.
    pub directory: String,
}

/// How one delivery ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    Delivered {
        attempts: u32,
    },
    /// Every attempt failed; the last error.
    Failed {
        attempts: u32,
        error: String,
    },
}

pub struct Alerts {
    webhook: Option<Webhook>,
    links: Links,
}

struct Webhook {
    url: String,
    client: reqwest::Client,
    attempts: u32,
    backoff: Duration,
}

impl Alerts {
    pub fn new(config: &AlertsConfig, links: Links) -> anyhow::Result<Alerts> {
        let webhook = match &config.webhook_url {
            None => None,
            Some(url) => {
                let mut client = reqwest::Client::builder()
                    .timeout(config.timeout.as_std())
                    .redirect(reqwest::redirect::Policy::none());
                if let Some(file) = &config.webhook_ca_file {
                    let pem = std::fs::read(file).with_context(|| {
                        format!("reading alerts.webhook_ca_file {}", file.display())
                    })?;
                    let roots = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
                        format!(
                            "alerts.webhook_ca_file {} holds no PEM certificate",
                            file.display()
                        )
                    })?;
                    client = client.tls_certs_only(roots);
                }
                Some(Webhook {
                    url: url.clone(),
                    client: client.build().context("building the alerts' HTTP client")?,
                    attempts: config.attempts,
                    backoff: config.backoff.as_std(),
                })
            }
        };
        Ok(Alerts { webhook, links })
    }

    /// Reports every overdue certificate not reported yet; stops at the first alert that
    /// cannot be delivered (the webhook is down: the next run tries again). Deliveries can
    /// be slow, so the lease is renewed before each (before each batch when alerts are only
    /// logged); if it was lost, another replica has the job and this one stops.
    pub async fn run(&self, authority: &Authority, lease: &super::Lease<'_>) -> anyhow::Result<()> {
        loop {
            let overdue = authority.overdue_renewals(BATCH).await?;
            let full = overdue.len() == BATCH as usize;
            // A delivery can be slow, so the lease is renewed before each; a log line is not,
            // so without a webhook once per batch is enough (a lease renewal is a write).
            if self.webhook.is_none() && !lease.hold().await {
                anyhow::bail!("the job's lease went to another replica");
            }
            for certificate in &overdue {
                if self.webhook.is_some() && !lease.hold().await {
                    anyhow::bail!("the job's lease went to another replica");
                }
                let alert = self.alert(certificate);
                match &self.webhook {
                    None => {
                        tracing::warn!(
                            serial = certificate.serial,
                            account = alert.account,
                            not_after = %certificate.not_after,
                            "the renewal window of a certificate passed without a renewal"
                        );
                        outcome("logged");
                    }
                    Some(webhook) => match webhook.deliver(&alert).await {
                        Delivery::Delivered { attempts } => {
                            tracing::info!(
                                serial = certificate.serial,
                                attempts,
                                "renewal alert delivered"
                            );
                            outcome("delivered");
                        }
                        Delivery::Failed { attempts, error } => {
                            outcome("failed");
                            anyhow::bail!(
                                "the renewal alert for serial {} was not delivered to {} after {attempts} attempts: {error}",
                                certificate.serial,
                                webhook.url
                            );
                        }
                    },
                }
                authority
                    .mark_renewal_alerted(&certificate.certificate_id)
                    .await?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn alert<'a>(&self, certificate: &'a OverdueRenewal) -> Alert<'a> {
        Alert {
            event: EVENT,
            serial: &certificate.serial,
            account: self.links.account(&certificate.account_id),
            identifiers: &certificate.identifiers,
            profile: certificate.profile.as_deref(),
            not_before: certificate.not_before,
            not_after: certificate.not_after,
            renewal_window_end: certificate.window_end,
            directory: self.links.directory(),
        }
    }
}

fn outcome(label: &'static str) {
    metrics::counter!("mayfly_renewal_alerts_total", "outcome" => label).increment(1);
}

impl Webhook {
    /// POSTs `alert` until a 2xx answer or `attempts` tries, waiting `backoff`, then twice
    /// that, and so on (at most a minute). A 4xx other than 408 and 429 is final: the same
    /// body would be refused again.
    async fn deliver(&self, alert: &Alert<'_>) -> Delivery {
        deliver(&self.client, &self.url, alert, self.attempts, self.backoff).await
    }
}

/// See [`Webhook::deliver`]; apart so tests can drive it with a short backoff.
pub async fn deliver(
    client: &reqwest::Client,
    url: &str,
    alert: &Alert<'_>,
    attempts: u32,
    backoff: Duration,
) -> Delivery {
    let mut wait = backoff;
    let mut error = String::new();
    for attempt in 1..=attempts {
        if attempt > 1 {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_BACKOFF);
        }
        let sent = client
            .post(url)
            .header("X-Mayfly-Event", EVENT)
            // The same alert may come twice if a replica stops between delivery and marking.
            .header("Idempotency-Key", format!("{EVENT}:{}", alert.serial))
            .json(alert)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                return Delivery::Delivered { attempts: attempt };
            }
            Ok(response) => {
                let status = response.status();
                error = format!("the webhook answered {status}");
                if status.is_client_error()
                    && status != reqwest::StatusCode::REQUEST_TIMEOUT
                    && status != reqwest::StatusCode::TOO_MANY_REQUESTS
                {
                    return Delivery::Failed {
                        attempts: attempt,
                        error,
                    };
                }
            }
            Err(e) => error = format!("{e}"),
        }
        tracing::debug!(attempt, error, "renewal alert attempt failed");
    }
    Delivery::Failed { attempts, error }
}
