//! Readiness (`GET /ready`): can this replica serve issuance right now? The database must
//! answer a trivial query within a bound, and the CA's intermediate must be loaded and not
//! expired. Liveness (`GET /health`) asks nothing of the authority.

use std::time::Duration;

use super::Authority;

/// One part that is not ready: its name and a short reason safe to show to anyone (the
/// endpoint is unauthenticated; the details go to the log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotReady {
    pub part: &'static str,
    pub reason: String,
}

impl Authority {
    /// What is not ready; empty when everything is. `bound` limits the database's answer.
    pub async fn readiness(&self, bound: Duration) -> Vec<NotReady> {
        let mut not_ready = Vec::new();
        match tokio::time::timeout(bound, self.store.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: the database does not answer");
                not_ready.push(NotReady {
                    part: "database",
                    reason: "the database does not answer".into(),
                });
            }
            Err(_) => {
                tracing::warn!(?bound, "readiness: the database did not answer in time");
                not_ready.push(NotReady {
                    part: "database",
                    reason: format!("no answer within {} ms", bound.as_millis()),
                });
            }
        }
        // The issuer is loaded whenever an Authority exists; it can still have run out.
        if self.issuer.intermediate_not_after() <= self.now() {
            not_ready.push(NotReady {
                part: "ca",
                reason: "the intermediate CA certificate has expired".into(),
            });
        }
        not_ready
    }
}
