//! The validator chain and the fixups as the ACME use cases apply them (issue 5), and their
//! audit events.
//!
//! Audit events are `tracing` events with the target `mayfly::audit`, one per refusal and one
//! per fixup change, so an operator can route them apart (`RUST_LOG=mayfly::audit=info`). The
//! audit log proper (issue 7) will record the same facts.

use crate::acme::Identifier;
use crate::policy::fixups::Applied;
use crate::policy::validators::{Refusals, Requester};
use crate::provisioner::ProvisionerPolicy;

use super::{Authority, Error, Result};

impl Authority {
    /// At newOrder: the identifier rules, on the parsed, normalised, de-duplicated identifiers.
    pub(super) fn check_identifier_rules(
        &self,
        policy: &ProvisionerPolicy,
        identifiers: &[Identifier],
        requester: &Requester,
    ) -> Result<()> {
        policy
            .chain
            .check_identifiers(identifiers, requester)
            .map_err(|refusals| refused(&refusals, requester))
    }
}

/// Audits every refusal and turns them into the client's problem (one subproblem each).
pub(super) fn refused(refusals: &Refusals, requester: &Requester) -> Error {
    for refusal in &refusals.0 {
        tracing::warn!(
            target: "mayfly::audit",
            event = "refused",
            provisioner = requester.provisioner.as_deref().unwrap_or("-"),
            account = requester.account_id.as_deref().unwrap_or("-"),
            rule = refusal.rule,
            position = refusal.position,
            stage = ?refusal.stage,
            subject = %refusal.subject,
            reason = %refusal.reason,
            "the validator chain refused a request"
        );
    }
    Error::from(refusals.to_problem())
}

/// Audits every change the fixups made to an order's request.
pub(super) fn audit_fixups(applied: &[Applied], requester: &Requester, order_id: &str) {
    for change in applied {
        tracing::info!(
            target: "mayfly::audit",
            event = "fixup",
            provisioner = requester.provisioner.as_deref().unwrap_or("-"),
            account = requester.account_id.as_deref().unwrap_or("-"),
            order = order_id,
            fixup = change.fixup,
            change = %change.change,
            "a fixup changed the request"
        );
    }
}
