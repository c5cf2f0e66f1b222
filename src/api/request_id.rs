//! A request id on every log line of a request (ARCHITECTURE decision 5): taken from the
//! client's `X-Request-Id` when it is sane, else made up; carried by a `tracing` span around
//! the request, and returned in the response's `X-Request-Id`.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

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
    let mut response = next.run(req).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

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
