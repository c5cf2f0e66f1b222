//! Which ACME provisioner a request is for. The default one answers at the root paths
//! (`/directory`, `/acme/new-order` …); another one at `/acme/<name>/…` with its own directory.
//! A middleware decides once per request from the path and puts an [`Acme`] in the request's
//! extensions; handlers and extractors take it from there.

use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::acme::Problem;

use crate::app::AppState;
use crate::provisioner::{AcmeProvisioner, DEFAULT_ACME};

use super::error::ApiError;
use super::links::Links;

/// The ACME provisioner of this request and the URLs of its resources.
#[derive(Clone, Debug)]
pub struct Acme {
    pub provisioner: Arc<AcmeProvisioner>,
    pub links: Arc<Links>,
}

/// Resolves the request's provisioner from its path. `/acme/<name>/…` for a `<name>` that is
/// neither an ACME provisioner nor one of the default provisioner's own paths is a 404.
pub async fn resolve(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match context_for_path(&state, req.uri().path()) {
        Some(acme) => {
            req.extensions_mut().insert(acme);
            next.run(req).await
        }
        None => ApiError::from(Problem::not_found("no such ACME provisioner")).into_response(),
    }
}

fn context_for_path(state: &AppState, path: &str) -> Option<Acme> {
    let app = &state.0;
    let Some((name, _)) = path
        .strip_prefix("/acme/")
        .and_then(|rest| rest.split_once('/'))
    else {
        return Some(app.default_acme());
    };
    if name == DEFAULT_ACME || crate::provisioner::is_reserved_name(name) {
        return Some(app.default_acme());
    }
    app.acme(name)
}

impl FromRequestParts<AppState> for Acme {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Acme>()
            .cloned()
            .or_else(|| context_for_path(state, parts.uri.path()))
            .unwrap_or_else(|| state.0.default_acme()))
    }
}

impl Acme {
    /// The provisioner's name.
    pub fn name(&self) -> &str {
        &self.provisioner.name
    }
}

/// The `{id}` of a resource URL. Under `/acme/<name>/` the path has a second parameter (the
/// provisioner), so a plain `Path<String>` does not fit every route.
pub struct ResourceId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ResourceId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::from(Problem::not_found("no such resource")))?;
        params
            .iter()
            .find(|(name, _)| *name == "id")
            .map(|(_, value)| ResourceId(value.to_owned()))
            .ok_or_else(|| ApiError::from(Problem::not_found("no such resource")))
    }
}
