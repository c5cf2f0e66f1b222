//! One look at one certificate: read what is installed, ask the server for renewal
//! information when it offers it, decide ([`super::schedule::decide`]), and when due: order,
//! check what came back, install it atomically, run the hook, and record the result.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use rcgen::{KeyPair, PublicKeyData, RsaKeySize};
use time::{Duration, OffsetDateTime};

use super::acme;
use super::config::{AgentConfig, CertificateConfig, KeyType};
use super::files::{self, Output};
use super::hooks;
use super::inspect::{self, Inspected};
use super::schedule::{self, Current, Decision, Reason, Window};
use super::state::CertificateState;

/// The result of one look.
#[derive(Debug)]
pub enum Outcome {
    /// Nothing to do before `next_renewal`.
    NotDue {
        not_after: Option<OffsetDateTime>,
        next_renewal: OffsetDateTime,
        reason: Reason,
    },
    /// A new certificate is installed. `hook` is the post_renew hook's result, if one ran.
    Renewed {
        reason: Reason,
        not_after: Option<OffsetDateTime>,
        next_renewal: Option<OffsetDateTime>,
        hook: Option<Result<(), String>>,
    },
    /// The renewal (or the look itself) failed; the installed files are as they were.
    Failed { error: String },
}

/// How a look behaves.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Renew whatever the schedule says.
    pub force: bool,
}

/// The agent: its configuration and, once needed, its account.
pub struct Agent {
    pub config: AgentConfig,
    session: Option<acme::Session>,
}

impl Agent {
    pub fn new(config: AgentConfig) -> Self {
        Agent {
            config,
            session: None,
        }
    }

    async fn session(&mut self) -> Result<acme::Session> {
        if let Some(session) = &self.session {
            return Ok(session.clone());
        }
        let session = acme::account(&self.config).await?;
        self.session = Some(session.clone());
        Ok(session)
    }

    /// Look at `certificate` and renew it if due, updating `state`.
    pub async fn check(
        &mut self,
        certificate: &CertificateConfig,
        state: &mut CertificateState,
        now: OffsetDateTime,
        options: Options,
    ) -> Outcome {
        match self.check_inner(certificate, state, now, options).await {
            Ok(outcome) => outcome,
            Err(e) => {
                let error = format!("{e:#}");
                self.record_failure(state, now, &error);
                Outcome::Failed { error }
            }
        }
    }

    async fn check_inner(
        &mut self,
        certificate: &CertificateConfig,
        state: &mut CertificateState,
        now: OffsetDateTime,
        options: Options,
    ) -> Result<Outcome> {
        let journal = self.journal_path(certificate);
        if files::recover(&journal).context("finishing an interrupted install")? {
            tracing::warn!(
                certificate = certificate.id(),
                "finished an install that was interrupted"
            );
        }
        let inspected = inspect::inspect(certificate);
        let pick = pick_for(state, inspected.serial.as_deref());
        let configured = certificate.name_set();
        let max_sleep = self.config.daemon.max_sleep.0;

        // Between two checks the stored window is as good as a fresh one: honouring the
        // server's Retry-After means not asking again before `next_check`.
        let stored = stored_window(state);
        let quick = schedule::decide(now, &configured, &inspected.current, stored, pick);
        let waiting = state.next_check.is_some_and(|next| next > now);
        if !options.force && !quick.is_due() && waiting && state.failures == 0 {
            return Ok(not_due(&inspected, quick));
        }

        let mut retry_after = None;
        let mut ari = false;
        let mut window = None;
        if let (Current::Present(_), Some(ari_id), false) = (
            &inspected.current,
            &inspected.ari_id,
            quick_local_reason(&quick),
        ) {
            let session = self.session().await?;
            match acme::renewal_info(&session.account, ari_id).await {
                Ok(Some((suggested, retry))) => {
                    ari = true;
                    window = Some(suggested);
                    retry_after = Some(Duration::try_from(retry).unwrap_or(Duration::ZERO));
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    certificate = certificate.id(),
                    "no renewal information, falling back to 2/3 of the lifetime: {e:#}"
                ),
            }
        }
        state.ari_window_start = window.map(|w| w.start);
        state.ari_window_end = window.map(|w| w.end);
        let mut decision = schedule::decide(now, &configured, &inspected.current, window, pick);
        if options.force && !decision.is_due() {
            decision = Decision::Now(Reason::Forced);
        }
        let reason = match decision {
            Decision::Now(reason) => reason,
            at @ Decision::At { .. } => {
                record_schedule(state, &at);
                state.next_check = Some(schedule::next_check(now, &at, retry_after, max_sleep));
                return Ok(not_due(&inspected, at));
            }
        };

        let replaces = if ari {
            inspected.ari_id.as_deref()
        } else {
            None
        };
        self.renew(certificate, replaces, &journal).await?;

        // What is installed now, and when it is due.
        let installed = inspect::inspect(certificate);
        let Current::Present(new) = &installed.current else {
            bail!("the certificate just installed cannot be read back");
        };
        let not_after = new.not_after;
        let pick = pick_for(state, installed.serial.as_deref());
        let mut retry_after = None;
        let mut window = None;
        if let Some(ari_id) = &installed.ari_id {
            let session = self.session().await?;
            if let Ok(Some((suggested, retry))) = acme::renewal_info(&session.account, ari_id).await
            {
                window = Some(suggested);
                retry_after = Some(Duration::try_from(retry).unwrap_or(Duration::ZERO));
            }
        }
        state.ari_window_start = window.map(|w| w.start);
        state.ari_window_end = window.map(|w| w.end);
        let next = schedule::decide(now, &configured, &installed.current, window, pick);
        record_schedule(state, &next);
        state.next_check = Some(schedule::next_check(now, &next, retry_after, max_sleep));
        state.last_attempt = Some(now);
        state.failures = 0;

        let hook = match &certificate.hooks.post_renew {
            Some(script) => {
                let env = hook_env(certificate, &installed, not_after, &reason);
                let timeout = certificate
                    .hooks
                    .timeout
                    .and_then(|t| t.0.try_into().ok())
                    .unwrap_or(hooks::DEFAULT_TIMEOUT);
                Some(hooks::run(hooks::shell(script, &env), timeout).await)
            }
            None => None,
        };
        state.last_result = Some(match &hook {
            Some(Err(e)) => format!("renewed; post_renew hook failed: {e}"),
            _ => "renewed".to_owned(),
        });
        let next_renewal = match next {
            Decision::At { at, .. } => Some(at),
            Decision::Now(_) => None,
        };
        Ok(Outcome::Renewed {
            reason,
            not_after: Some(not_after),
            next_renewal,
            hook,
        })
    }

    /// Order a certificate and install it with its key.
    async fn renew(
        &mut self,
        certificate: &CertificateConfig,
        replaces: Option<&str>,
        journal: &std::path::Path,
    ) -> Result<()> {
        let (key, reused) = key_for(certificate)?;
        let session = self.session().await?;
        let issued = acme::order(&session, certificate, &key, replaces).await?;
        let blocks = pem_blocks(&issued.chain_pem);
        let Some(leaf) = blocks.first() else {
            bail!("the server returned no certificate");
        };
        check_issued(certificate, leaf, &key)?;
        let mut outputs = Vec::new();
        let mut add = |path: &Option<PathBuf>, contents: String| {
            if let Some(path) = path {
                outputs.push(Output {
                    path: path.clone(),
                    contents: contents.into_bytes(),
                    mode: files::PUBLIC,
                });
            }
        };
        add(&certificate.chain, blocks[1..].concat());
        add(&certificate.fullchain, blocks.concat());
        add(&certificate.cert, leaf.clone());
        if !reused {
            // Last: see the module documentation of `files`.
            outputs.push(Output {
                path: certificate.key.clone(),
                contents: key.serialize_pem().into_bytes(),
                mode: files::PRIVATE,
            });
        }
        files::install(journal, &outputs).context("installing the new certificate")
    }

    fn record_failure(&self, state: &mut CertificateState, now: OffsetDateTime, error: &str) {
        state.failures = state.failures.saturating_add(1);
        state.last_attempt = Some(now);
        state.last_result = Some(format!("failed: {error}"));
        let daemon = &self.config.daemon;
        state.next_check = Some(
            now + schedule::backoff(state.failures, daemon.retry_initial.0, daemon.retry_max.0),
        );
    }

    /// The install journal of `certificate`, beside the state file.
    fn journal_path(&self, certificate: &CertificateConfig) -> PathBuf {
        let safe: String = certificate
            .id()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let state = self.config.account.state_path();
        state.with_file_name(format!(".renew-{safe}.journal"))
    }
}

/// Whether the decision is "now" for a reason found on disk (missing, expired, …), which no
/// renewal information can change.
fn quick_local_reason(decision: &Decision) -> bool {
    matches!(
        decision,
        Decision::Now(
            Reason::Missing
                | Reason::Unreadable(_)
                | Reason::KeyMismatch
                | Reason::NamesDiffer
                | Reason::Expired
        )
    )
}

fn not_due(inspected: &Inspected, decision: Decision) -> Outcome {
    let not_after = match &inspected.current {
        Current::Present(installed) => Some(installed.not_after),
        _ => None,
    };
    match decision {
        Decision::At { at, reason } => Outcome::NotDue {
            not_after,
            next_renewal: at,
            reason,
        },
        // Callers only pass decisions that are not due.
        Decision::Now(reason) => Outcome::NotDue {
            not_after,
            next_renewal: OffsetDateTime::UNIX_EPOCH,
            reason,
        },
    }
}

fn record_schedule(state: &mut CertificateState, decision: &Decision) {
    let (at, reason) = match decision {
        Decision::At { at, reason } => (Some(*at), reason),
        Decision::Now(reason) => (None, reason),
    };
    state.next_renewal = at;
    state.next_renewal_reason = Some(match reason {
        Reason::AriWindow => "ARI window".to_owned(),
        Reason::TwoThirds => "2/3 of lifetime".to_owned(),
        other => other.to_string(),
    });
}

fn stored_window(state: &CertificateState) -> Option<Window> {
    match (state.ari_window_start, state.ari_window_end) {
        (Some(start), Some(end)) => Some(Window { start, end }),
        _ => None,
    }
}

/// The random pick of the certificate with `serial`: kept while the certificate stays, drawn
/// anew (and the stored window forgotten) when it changes.
fn pick_for(state: &mut CertificateState, serial: Option<&str>) -> f64 {
    if let (Some(pick), Some(stored)) = (state.pick, state.pick_serial.as_deref())
        && Some(stored) == serial
    {
        return pick;
    }
    let pick = random_fraction();
    state.pick = Some(pick);
    state.pick_serial = serial.map(str::to_owned);
    state.ari_window_start = None;
    state.ari_window_end = None;
    state.next_check = None;
    pick
}

/// Uniform in [0, 1), from the system's random source.
pub fn random_fraction() -> f64 {
    let mut bytes = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return 0.5;
    }
    // 53 random bits: every value is exactly representable.
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// The key to use: the installed one when `reuse_key` is set and it is of the configured
/// type, else a new one. Returns whether the key was reused.
fn key_for(certificate: &CertificateConfig) -> Result<(KeyPair, bool)> {
    if certificate.reuse_key
        && let Ok(pem) = std::fs::read_to_string(&certificate.key)
        && let Ok(key) = KeyPair::from_pem(&pem)
        && key.algorithm() == algorithm(certificate.key_type)
    {
        return Ok((key, true));
    }
    let algorithm = algorithm(certificate.key_type);
    let key = match certificate.key_type {
        KeyType::Rsa2048 => KeyPair::generate_rsa_for(algorithm, RsaKeySize::_2048),
        KeyType::Rsa3072 => KeyPair::generate_rsa_for(algorithm, RsaKeySize::_3072),
        KeyType::Rsa4096 => KeyPair::generate_rsa_for(algorithm, RsaKeySize::_4096),
        KeyType::P256 | KeyType::P384 | KeyType::Ed25519 => KeyPair::generate_for(algorithm),
    }
    .context("generating the certificate key")?;
    Ok((key, false))
}

fn algorithm(key_type: KeyType) -> &'static rcgen::SignatureAlgorithm {
    match key_type {
        KeyType::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyType::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
        KeyType::Ed25519 => &rcgen::PKCS_ED25519,
    }
}

/// Refuse a certificate that does not name exactly the configured identifiers or is not for
/// our key: installing it would break the service.
fn check_issued(certificate: &CertificateConfig, leaf_pem: &str, key: &KeyPair) -> Result<()> {
    let der = inspect::first_certificate(leaf_pem.as_bytes())
        .ok_or_else(|| anyhow!("the server's certificate is not PEM"))?;
    let (_, leaf) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| anyhow!("the server's certificate cannot be parsed: {e}"))?;
    if leaf.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
        bail!("the server's certificate is not for the key in the CSR");
    }
    let inspected_names = inspect::leaf_names(&leaf);
    if inspected_names != certificate.name_set() {
        bail!(
            "the server's certificate names {inspected_names:?}, not the configured {:?}",
            certificate.name_set()
        );
    }
    Ok(())
}

/// The PEM blocks of a chain, each ending with a newline.
fn pem_blocks(chain: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    for line in chain.lines() {
        let line = line.trim_end();
        if line.starts_with("-----BEGIN ") {
            current.clear();
        }
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END ") {
            blocks.push(std::mem::take(&mut current));
        }
    }
    blocks
}

/// The post_renew hook's environment.
fn hook_env(
    certificate: &CertificateConfig,
    installed: &Inspected,
    not_after: OffsetDateTime,
    reason: &Reason,
) -> Vec<(&'static str, String)> {
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let mut env = vec![
        ("MAYFLY_RENEW_NAME", certificate.id().to_owned()),
        ("MAYFLY_RENEW_NAMES", certificate.names.join(" ")),
        ("MAYFLY_RENEW_KEY", certificate.key.display().to_string()),
        ("MAYFLY_RENEW_NOT_AFTER", rfc3339(not_after)),
        ("MAYFLY_RENEW_REASON", reason.to_string()),
    ];
    if let Some(serial) = &installed.serial {
        env.push(("MAYFLY_RENEW_SERIAL", serial.clone()));
    }
    for (key, value) in [
        ("MAYFLY_RENEW_CERT", path(&certificate.cert)),
        ("MAYFLY_RENEW_CHAIN", path(&certificate.chain)),
        ("MAYFLY_RENEW_FULLCHAIN", path(&certificate.fullchain)),
    ] {
        if let Some(value) = value {
            env.push((key, value));
        }
    }
    env
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_split_a_chain() {
        let chain = "-----BEGIN CERTIFICATE-----\r\nAAA\r\n-----END CERTIFICATE-----\r\n\
                     \n-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n";
        let blocks = pem_blocks(chain);
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            blocks[0],
            "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n"
        );
        assert!(blocks[1].contains("BBB"));
    }

    #[test]
    fn random_fraction_is_in_range() {
        for _ in 0..1000 {
            let pick = random_fraction();
            assert!((0.0..1.0).contains(&pick), "{pick}");
        }
    }

    #[test]
    fn pick_is_stable_for_one_serial() {
        let mut state = CertificateState::default();
        let first = pick_for(&mut state, Some("01"));
        assert_eq!(pick_for(&mut state, Some("01")), first);
        state.ari_window_start = Some(OffsetDateTime::UNIX_EPOCH);
        state.ari_window_end = Some(OffsetDateTime::UNIX_EPOCH);
        let _ = pick_for(&mut state, Some("02"));
        assert_eq!(state.pick_serial.as_deref(), Some("02"));
        assert!(
            state.ari_window_start.is_none(),
            "a new certificate forgets the window"
        );
    }
}
