//! The single point where errors become problem documents (ARCHITECTURE decision 5).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::acme::Problem;
use crate::authority::Error;

/// A problem on its way to the client.
#[derive(Debug)]
pub struct ApiError(pub Box<Problem>);

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        ApiError(Box::new(p))
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Problem(p) => ApiError(p),
            internal => {
                // A 5xx gets a generic body; the cause goes to the log under an id the
                // operator can find from the client's report.
                let id = crate::authority::random_id();
                tracing::error!(request_error_id = %id, error = %internal, "internal error");
                let mut p = Problem::internal();
                p.detail = format!("{} (error id {id})", p.detail);
                ApiError(Box::new(p))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = *self.0;
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        if problem.kind == crate::acme::ProblemType::BadNonce {
            response.extensions_mut().insert(BadNonceAnswer);
        }
        response
            .extensions_mut()
            .insert(super::request_id::Refusal {
                kind: problem.kind.code_and_status().0.to_owned(),
                status: problem.status,
                detail: problem.detail.clone(),
            });
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(location) = problem
            .location
            .as_deref()
            .and_then(|l| HeaderValue::from_str(l).ok())
        {
            headers.insert(header::LOCATION, location);
        }
        for (url, rel) in &problem.links {
            if let Ok(link) = HeaderValue::from_str(&format!("<{url}>;rel=\"{rel}\"")) {
                headers.append(header::LINK, link);
            }
        }
        if let Some(seconds) = problem.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Marks a `badNonce` response, so the nonce sent with it is one a retry can use
/// (`NonceService::issue_for_retry`).
#[derive(Clone, Copy, Debug)]
pub struct BadNonceAnswer;
