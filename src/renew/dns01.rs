//! dns-01 (RFC 8555 §8.4) through the operator's command, called as lego's `exec` provider
//! calls it: `COMMAND present <fqdn.> <value>` before validation and `COMMAND cleanup <fqdn.>
//! <value>` after, where fqdn is `_acme-challenge.<domain>` and value the TXT record's text.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use super::hooks;

/// Records presented so far, removed by [`DnsHook::cleanup`].
pub struct DnsHook {
    command: PathBuf,
    timeout: Duration,
    presented: Vec<(String, String)>,
}

impl DnsHook {
    pub fn new(command: &Path, timeout: Duration) -> Self {
        DnsHook {
            command: command.to_owned(),
            timeout,
            presented: Vec::new(),
        }
    }

    /// The record name for `domain` (a wildcard's `*.` is dropped, RFC 8555 §8.4).
    pub fn record_name(domain: &str) -> String {
        let domain = domain.strip_prefix("*.").unwrap_or(domain);
        format!("_acme-challenge.{}.", domain.trim_end_matches('.'))
    }

    pub async fn present(&mut self, domain: &str, value: &str) -> Result<(), String> {
        let fqdn = Self::record_name(domain);
        hooks::run(self.call("present", &fqdn, value), self.timeout)
            .await
            .map_err(|e| format!("dns-01 hook: {e}"))?;
        self.presented.push((fqdn, value.to_owned()));
        Ok(())
    }

    /// Remove every record presented; failures are only logged, the order is over.
    pub async fn cleanup(&mut self) {
        for (fqdn, value) in std::mem::take(&mut self.presented) {
            if let Err(e) = hooks::run(self.call("cleanup", &fqdn, &value), self.timeout).await {
                tracing::warn!("dns-01 cleanup of {fqdn}: {e}");
            }
        }
    }

    fn call(&self, action: &str, fqdn: &str, value: &str) -> Command {
        let mut command = Command::new(&self.command);
        command.arg(action).arg(fqdn).arg(value);
        command
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names() {
        assert_eq!(DnsHook::record_name("a.test"), "_acme-challenge.a.test.");
        assert_eq!(DnsHook::record_name("*.a.test"), "_acme-challenge.a.test.");
        assert_eq!(DnsHook::record_name("a.test."), "_acme-challenge.a.test.");
    }
}
