//! A request id on every log line of a request (ARCHITECTURE decision 5): taken from the
//! client's `X-Request-Id` when it is sane, else made up; carried by a `tracing` span around
//! the request, and returned in the response's `X-Request-Id`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::app::AppState;
use crate::authority::audit::{self, AuditKind, RequestContext};

pub const HEADER: &str = "x-request-id";

/// The longest id taken from a client: enough for a UUID or a proxy's trace id, short enough
/// that a client cannot flood the log through it.
const MAX_LEN: usize = 64;

/// The request's id, for handlers that want to mention it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The client's id if it is 1 to [`MAX_LEN`] visible ASCII characters (no spaces, no control
/// characters: it ends up in log lines and headers verbatim); `None` otherwise.
pub fn sanitise(value: &HeaderValue) -> Option<String> {
    let bytes = value.as_bytes();
    let sane =
        !bytes.is_empty() && bytes.len() <= MAX_LEN && bytes.iter().all(|b| b.is_ascii_graphic());
    // Visible ASCII is valid UTF-8.
    sane.then(|| String::from_utf8_lossy(bytes).into_owned())
}

/// The middleware: the outermost layer of the router, so every log line of the request,
/// the 5xx causes of `api::error` included, is inside its span.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(sanitise)
        .unwrap_or_else(crate::authority::random_id);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    req.extensions_mut().insert(RequestId(id.clone()));
    // The audit log's view of the request (issue 7): its id and peer, later its account.
    let context = RequestContext {
        request_id: id.clone(),
        peer: req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_canonical()),
        ..RequestContext::default()
    };
    let mut response = audit::scope(context, next.run(req).instrument(span)).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

// --- audit log and rate limits (issue 7) ---

/// How a refused response describes itself to [`audit_refusals`]: the problem type (an ACME
/// code such as `unauthorized`, or a direct API type such as `tokenExpired`), the status and
/// the detail. The error conversions put it on the response.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub kind: String,
    pub status: u16,
    pub detail: String,
}

/// Whether a refusal is an authentication or authorization failure, which the audit log
/// records. `badNonce` is not: clients retry it routinely.
fn is_auth_failure(refusal: &Refusal, bad_signature: bool) -> bool {
    bad_signature
        || matches!(
            refusal.kind.as_str(),
            "unauthorized" | "accountDoesNotExist" | "externalAccountRequired"
        )
        // The direct API answers every refused token or client certificate with a 401.
        || refusal.status == 401
}

/// Records every authentication or authorization failure in the audit log, with the
/// account that signed the request if it was verified, else the client's address.
pub async fn audit_refusals(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let response = next.run(req).await;
    let Some(refusal) = response.extensions().get::<Refusal>() else {
        return response;
    };
    let (bad_signature, claimed_account) =
        audit::current(|c| (c.bad_signature, c.claimed_account.clone())).unwrap_or_default();
    if is_auth_failure(refusal, bad_signature) {
        let authority = &state.0.authority;
        let reason = if bad_signature {
            "badSignature"
        } else {
            refusal.kind.as_str()
        };
        let event = audit::event(
            AuditKind::AuthRefused,
            &authority.request_actor(),
            audit::object("path", &path),
            false,
            serde_json::json!({
                "reason": reason,
                "status": refusal.status,
                "detail": refusal.detail,
                "method": method,
                "claimed_account": claimed_account,
            }),
            authority.now(),
        );
        authority.audit(event).await;
    }
    response
}
// --- end of audit log and rate limits ---

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_taken_only_when_sane() {
        let long = "a".repeat(MAX_LEN);
        let too_long = "a".repeat(MAX_LEN + 1);
        let cases: [(&str, &[u8], Option<&str>); 8] = [
            (
                "a UUID",
                b"3f2c8a4e-1b7d-4c2a-9e5f-0a1b2c3d4e5f",
                Some("3f2c8a4e-1b7d-4c2a-9e5f-0a1b2c3d4e5f"),
            ),
            ("punctuation is visible", b"req/42:x=y", Some("req/42:x=y")),
            ("exactly the longest", long.as_bytes(), Some(long.as_str())),
            ("one too long", too_long.as_bytes(), None),
            ("empty", b"", None),
            ("a space", b"two words", None),
            ("a tab", b"a\tb", None),
            ("non-ASCII", "caf\u{e9}".as_bytes(), None),
        ];
        for (case, raw, want) in cases {
            let value = HeaderValue::from_bytes(raw).unwrap();
            assert_eq!(sanitise(&value).as_deref(), want, "{case}");
        }
    }
}
