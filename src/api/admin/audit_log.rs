//! The audit log, newest first: what happened, who did it, to what.

use axum::Json;
use axum::extract::{RawQuery, State};
use serde_json::Value;

use super::problem::AdminProblem;
use super::wire::{self, Query};
use crate::app::AppState;
use crate::storage::AuditFilter;

/// `GET /admin/audit?kind=&actor=&object=&since=&until=&cursor=&limit=`, newest first.
pub async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AdminProblem> {
    let query = Query::parse(
        raw.as_deref(),
        &[
            "kind", "actor", "object", "since", "until", "cursor", "limit",
        ],
    )?;
    let time = |key: &str| query.get(key).map(|t| wire::parse_time(key, t)).transpose();
    let filter = AuditFilter {
        kind: query.get("kind").map(str::to_owned),
        actor: query.get("actor").map(str::to_owned),
        object: query.get("object").map(str::to_owned),
        since: time("since")?,
        until: time("until")?,
    };
    let limit = query.limit()?;
    // The cursor is the id of the last event of the previous page.
    let cursor = query
        .get("cursor")
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                AdminProblem::malformed(format!("cursor {c:?} is not a cursor this API gave"))
            })
        })
        .transpose()?;
    let page = state
        .0
        .authority
        .audit_events(&filter, cursor, limit)
        .await
        .map_err(crate::authority::admin::AdminError::from)?;
    let items = page
        .events
        .iter()
        .map(|record| serde_json::to_value(record).unwrap_or(Value::Null))
        .collect();
    Ok(Json(wire::page(items, page.next.map(|id| id.to_string()))))
}
