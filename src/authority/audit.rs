//! The audit log (issue 7): issuance, revocation, account changes, administrators' actions and
//! every authentication or authorization failure, in an append-only table (the database
//! refuses UPDATE and DELETE) and in the log (`target: "audit"`, inside the request's span, so
//! the line carries its request id).
//!
//! Durability: issuance and revocation are written in the same transaction as the certificate
//! or the revocation (`Store::complete_order_audited`, `revoke_certificate_audited`), so they
//! cost no commit of their own and a crash loses neither. Every other event goes through one
//! writer task that appends what has queued up in one transaction per batch; a crash can lose
//! the events of the last moments (they are in the log line already), and a graceful shutdown
//! flushes the queue ([`Authority::flush_audit`]).

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::storage::{AuditEvent, AuditFilter, AuditRecord, Store};

use super::{Authority, Result};

/// Events queued for the writer at most; beyond that, recording waits (back-pressure rather
/// than loss).
const QUEUE: usize = 10_000;
/// Events appended in one transaction at most.
const MAX_BATCH: usize = 500;
/// The largest page `audit_events` returns.
pub const MAX_PAGE: u32 = 1_000;

/// What happened. The stored and logged name is [`AuditKind::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditKind {
    CertificateIssued,
    CertificateRevoked,
    AccountCreated,
    AccountContactUpdated,
    AccountKeyChanged,
    AccountDeactivated,
    /// An External Account Binding key bound a new account.
    EabKeyUsed,
    /// An administrator acted (`mayfly admin …`, the admin API).
    AdminAction,
    /// A request was refused for who sent it: a bad JWS signature, an unknown or deactivated
    /// account, `unauthorized`, a refused token or client certificate.
    AuthRefused,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CertificateIssued => "certificate.issued",
            Self::CertificateRevoked => "certificate.revoked",
            Self::AccountCreated => "account.created",
            Self::AccountContactUpdated => "account.contact_updated",
            Self::AccountKeyChanged => "account.key_changed",
            Self::AccountDeactivated => "account.deactivated",
            Self::EabKeyUsed => "eab.key_used",
            Self::AdminAction => "admin.action",
            Self::AuthRefused => "auth.refused",
        }
    }
}

/// Who acted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    Account(String),
    Provisioner(String),
    /// An administrator, by the subject of their client certificate, or `cli` for
    /// `mayfly admin` commands run on the host.
    Admin(String),
    Ip(IpAddr),
    /// Nothing is known about who sent it (an in-process caller).
    Unknown,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Account(id) => write!(f, "account:{id}"),
            Self::Provisioner(name) => write!(f, "provisioner:{name}"),
            Self::Admin(subject) => write!(f, "admin:{subject}"),
            Self::Ip(ip) => write!(f, "ip:{}", ip.to_canonical()),
            Self::Unknown => f.write_str("unknown"),
        }
    }
}

/// What was acted on, as stored: `serial:<hex>`, `order:<id>`, `account:<id>`,
/// `identifier:<type>:<value>`, `eab_key:<id>`, `path:<request path>`, or empty.
pub fn object(kind: &str, id: impl std::fmt::Display) -> String {
    format!("{kind}:{id}")
}

/// An event at `at`, with the current request's id if there is one.
pub fn event(
    kind: AuditKind,
    actor: &Actor,
    object: String,
    success: bool,
    detail: serde_json::Value,
    at: OffsetDateTime,
) -> AuditEvent {
    AuditEvent {
        at,
        kind: kind.as_str().to_owned(),
        actor: actor.to_string(),
        object,
        outcome: if success { "success" } else { "failure" }.to_owned(),
        detail,
        request_id: current(|context| context.request_id.clone()),
    }
}

/// An administrator's action: `subject` is the admin client certificate's subject (or `cli`),
/// `action` names it (e.g. `eab.add`), `detail` its facts.
pub fn admin_action(
    subject: &str,
    action: &str,
    object: String,
    detail: serde_json::Value,
    at: OffsetDateTime,
) -> AuditEvent {
    let mut detail = detail;
    if let Some(map) = detail.as_object_mut() {
        map.insert("action".to_owned(), action.into());
    }
    event(
        AuditKind::AdminAction,
        &Actor::Admin(subject.to_owned()),
        object,
        true,
        detail,
        at,
    )
}

/// A certificate was issued: written with the certificate, in its transaction.
pub fn issued(
    certificate: &crate::storage::Certificate,
    identifiers: &[crate::acme::Identifier],
    profile: &str,
) -> AuditEvent {
    let names: Vec<String> = identifiers.iter().map(ToString::to_string).collect();
    event(
        AuditKind::CertificateIssued,
        &Actor::Account(certificate.account_id.clone()),
        object("serial", &certificate.serial),
        true,
        serde_json::json!({
            "order": certificate.order_id,
            "names": names,
            "profile": profile,
            "not_after": certificate.not_after.unix_timestamp(),
        }),
        certificate.created_at,
    )
}

/// Writes the event's log line (`target: "audit"`), inside the caller's span.
pub fn log(event: &AuditEvent) {
    tracing::info!(
        target: "audit",
        kind = %event.kind,
        actor = %event.actor,
        object = %event.object,
        outcome = %event.outcome,
        detail = %event.detail,
        "audit"
    );
}

// ---------------------------------------------------------------------------------------------
// The request a task serves

/// What the API knows about the request being served, for the events it causes.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    pub request_id: String,
    /// The TCP peer.
    pub peer: Option<IpAddr>,
    /// The account that signed the request, once verified.
    pub account: Option<String>,
    /// Set when the request was refused for its signature (a JWS that does not verify).
    pub bad_signature: bool,
    /// The account id a `kid` named, before it was verified: a refusal records whom the
    /// request claimed to come from.
    pub claimed_account: Option<String>,
    /// The admin API's caller: the subject and serial of their client certificate.
    pub admin: Option<String>,
}

tokio::task_local! {
    static CONTEXT: RefCell<RequestContext>;
}

/// Runs `future` (one request) with `context` as its request context.
pub async fn scope<F: Future>(context: RequestContext, future: F) -> F::Output {
    CONTEXT.scope(RefCell::new(context), future).await
}

/// Reads the current request's context; `None` outside a request.
pub fn current<T>(read: impl FnOnce(&RequestContext) -> T) -> Option<T> {
    CONTEXT.try_with(|context| read(&context.borrow())).ok()
}

/// Changes the current request's context; does nothing outside a request.
pub fn update(change: impl FnOnce(&mut RequestContext)) {
    let _ = CONTEXT.try_with(|context| change(&mut context.borrow_mut()));
}

// ---------------------------------------------------------------------------------------------
// The writer

enum Message {
    Event(AuditEvent),
    /// Answered once every event queued before it is written.
    Flush(oneshot::Sender<()>),
}

/// The queue to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    sender: mpsc::Sender<Message>,
}

impl AuditLog {
    /// Starts the writer task; it ends when the last `AuditLog` clone is dropped.
    pub fn spawn(store: Arc<dyn Store>) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(store, receiver));
        AuditLog { sender }
    }

    async fn record(&self, event: AuditEvent) {
        log(&event);
        if self.sender.send(Message::Event(event)).await.is_err() {
            tracing::error!(target: "audit", "the audit writer has stopped; the event is only in this log");
        }
    }

    async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.sender.send(Message::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }
}

async fn write_batches(store: Arc<dyn Store>, mut receiver: mpsc::Receiver<Message>) {
    let mut batch = Vec::new();
    let mut flushes = Vec::new();
    while let Some(first) = receiver.recv().await {
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Event(event) => batch.push(event),
                Message::Flush(done) => flushes.push(done),
            }
            next = if batch.len() < MAX_BATCH {
                receiver.try_recv().ok()
            } else {
                None
            };
        }
        if let Err(e) = store.append_audit(&batch).await {
            // The events are in the log already (`record` wrote them first).
            tracing::error!(target: "audit", error = %e, events = batch.len(), "writing audit events failed");
        }
        batch.clear();
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// One page of the audit log, newest first.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AuditPage {
    pub events: Vec<AuditRecord>,
    /// The cursor of the next (older) page, if there may be one.
    pub next: Option<i64>,
}

impl Authority {
    /// Records `event`: its log line now, its row through the writer.
    pub async fn audit(&self, event: AuditEvent) {
        self.audit.record(event).await;
    }

    /// Waits until every event recorded so far is in the database (graceful shutdown, tests).
    pub async fn flush_audit(&self) {
        self.audit.flush().await;
    }

    /// A page of the audit log for the admin API: the records matching `filter`, newest
    /// first, older than the record `cursor` if given; at most `limit` (1 to [`MAX_PAGE`]).
    pub async fn audit_events(
        &self,
        filter: &AuditFilter,
        cursor: Option<i64>,
        limit: u32,
    ) -> Result<AuditPage> {
        let limit = limit.clamp(1, MAX_PAGE);
        let events = self.store.audit_events(filter, cursor, limit).await?;
        let next = if events.len() == limit as usize {
            events.last().map(|record| record.id)
        } else {
            None
        };
        Ok(AuditPage { events, next })
    }

    /// The actor of the request being served: its account once verified, else its address.
    pub fn request_actor(&self) -> Actor {
        current(|context| match (&context.account, context.peer) {
            _ if context.admin.is_some() => Actor::Admin(context.admin.clone().unwrap_or_default()),
            (Some(account), _) => Actor::Account(account.clone()),
            (None, Some(peer)) => Actor::Ip(peer),
            (None, None) => Actor::Unknown,
        })
        .unwrap_or(Actor::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_are_written_with_their_kind() {
        let cases = [
            (Actor::Account("a1".into()), "account:a1"),
            (Actor::Provisioner("ops".into()), "provisioner:ops"),
            (Actor::Admin("CN=alice".into()), "admin:CN=alice"),
            (
                Actor::Ip("::ffff:192.0.2.1".parse().unwrap()),
                "ip:192.0.2.1",
            ),
            (Actor::Unknown, "unknown"),
        ];
        for (actor, want) in cases {
            assert_eq!(actor.to_string(), want);
        }
    }

    #[test]
    fn admin_actions_name_the_action_and_the_admin() {
        let event = admin_action(
            "CN=alice",
            "eab.add",
            object("eab_key", "k1"),
            serde_json::json!({"label": "team"}),
            OffsetDateTime::UNIX_EPOCH,
        );
        assert_eq!(event.kind, "admin.action");
        assert_eq!(event.actor, "admin:CN=alice");
        assert_eq!(event.object, "eab_key:k1");
        assert_eq!(
            event.detail,
            serde_json::json!({"label": "team", "action": "eab.add"})
        );
        assert_eq!(event.request_id, None, "outside a request");
    }
}
