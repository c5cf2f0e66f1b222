//! The agent's memory between runs: per certificate, the last attempt and its result, the
//! next renewal time, and the random pick inside the ARI window. A JSON file, mode 0600,
//! beside the account; written atomically. Losing it is harmless: the agent recomputes the
//! schedule from the certificates themselves.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::files;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// By certificate id.
    #[serde(default)]
    pub certificates: BTreeMap<String, CertificateState>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CertificateState {
    /// When the agent last tried to renew.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_attempt: Option<OffsetDateTime>,
    /// `ok`, `hook failed: …` or `failed: …`.
    #[serde(default)]
    pub last_result: Option<String>,
    /// Consecutive failed renewals, for the daemon's backoff.
    #[serde(default)]
    pub failures: u32,
    /// When the installed certificate is due for renewal, as last computed.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next_renewal: Option<OffsetDateTime>,
    /// Why it is due then: `ARI window` or `2/3 of lifetime`, or the reason it is due now.
    #[serde(default)]
    pub next_renewal_reason: Option<String>,
    /// When the agent will look again (ARI `Retry-After`, the due time, or backoff).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next_check: Option<OffsetDateTime>,
    /// The serial (hex) the pick belongs to; a new certificate gets a new pick.
    #[serde(default)]
    pub pick_serial: Option<String>,
    /// Uniform in [0, 1): where inside an ARI window this certificate renews.
    #[serde(default)]
    pub pick: Option<f64>,
    /// The last suggested window (RFC 9773), for `--status`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub ari_window_start: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub ari_window_end: Option<OffsetDateTime>,
}

impl State {
    /// Reads `path`; a missing file is an empty state.
    pub fn load(path: &Path) -> io::Result<State> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::other(format!(
                    "{} is not a renewal state file ({e}); remove it to start afresh",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("reading {}: {e}", path.display()),
            )),
        }
    }

    pub fn save(&self, path: &Path) -> io::Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        files::write_atomic(path, &text, files::PRIVATE)
    }

    pub fn entry(&mut self, id: &str) -> &mut CertificateState {
        self.certificates.entry(id.to_owned()).or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert!(State::load(&path).unwrap().certificates.is_empty());
        let mut state = State::default();
        let entry = state.entry("www");
        entry.next_renewal = Some(OffsetDateTime::UNIX_EPOCH);
        entry.pick = Some(0.25);
        state.save(&path).unwrap();
        let loaded = State::load(&path).unwrap();
        assert_eq!(
            loaded.certificates["www"].next_renewal,
            Some(OffsetDateTime::UNIX_EPOCH)
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("1970-01-01T00:00:00Z"), "{text}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn garbage_is_an_error_that_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "not json").unwrap();
        let error = State::load(&path).unwrap_err();
        assert!(error.to_string().contains("remove it"), "{error}");
    }
}
