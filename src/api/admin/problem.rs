//! Admin API errors as problem documents (RFC 7807) with stable types.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::authority::admin::AdminError;

/// The admin API's problem types: `urn:mayfly:admin:error:<code>`.
#[derive(Debug, Serialize)]
pub struct AdminProblem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
}

impl AdminProblem {
    fn new(code: &str, title: &'static str, status: StatusCode, detail: String) -> Self {
        AdminProblem {
            kind: format!("urn:mayfly:admin:error:{code}"),
            title,
            status: status.as_u16(),
            detail,
        }
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(
            "forbidden",
            "Not an admin",
            StatusCode::FORBIDDEN,
            detail.into(),
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(
            "notFound",
            "Not found",
            StatusCode::NOT_FOUND,
            detail.into(),
        )
    }

    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(
            "malformed",
            "Malformed request",
            StatusCode::BAD_REQUEST,
            detail.into(),
        )
    }

    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        Self::new(
            "methodNotAllowed",
            "Method not allowed",
            StatusCode::METHOD_NOT_ALLOWED,
            detail.into(),
        )
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new("conflict", "Conflict", StatusCode::CONFLICT, detail.into())
    }
}

impl From<AdminError> for AdminProblem {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NotFound(why) => AdminProblem::not_found(why),
            AdminError::Malformed(why) => AdminProblem::malformed(why),
            AdminError::Conflict(why) => AdminProblem::conflict(why),
            AdminError::Internal(cause) => {
                // A 5xx gets a generic body; the cause goes to the log under an id.
                let id = crate::authority::random_id();
                tracing::error!(request_error_id = %id, error = %cause, "admin API internal error");
                AdminProblem::new(
                    "serverInternal",
                    "Internal server error",
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the server failed; see its log (error id {id})"),
                )
            }
        }
    }
}

impl IntoResponse for AdminProblem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}
