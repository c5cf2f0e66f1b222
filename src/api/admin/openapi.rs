//! The admin API's OpenAPI 3.1 document, made from the same [`super::endpoints`] table as the
//! router, so a route cannot exist without its entry. `docs/admin-openapi.json` is a copy;
//! `tests/admin_api.rs` fails when it differs (`mayfly admin openapi > docs/admin-openapi.json`
//! writes it again).

use axum::Json;
use serde_json::{Map, Value, json};

/// `GET /admin/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(openapi())
}

/// The document, with keys in a stable order (serde_json's map is sorted).
pub fn openapi() -> Value {
    let mut paths = Map::new();
    for endpoint in super::endpoints() {
        let mut parameters: Vec<Value> = endpoint
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| {
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
            })
            .collect();
        parameters.extend(endpoint.query.iter().map(|(name, description)| {
            json!({"name": name, "in": "query", "required": false,
                   "description": description, "schema": {"type": "string"}})
        }));
        let mut responses = Map::new();
        responses.insert(
            endpoint.success.to_string(),
            json!({"description": "success", "content": {"application/json": {"schema": {"type": "object"}}}}),
        );
        for status in std::iter::once(&403).chain(endpoint.problems) {
            responses.insert(
                status.to_string(),
                json!({"description": problem_description(*status),
                       "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}),
            );
        }
        let mut operation = json!({
            "summary": endpoint.summary,
            "parameters": parameters,
            "responses": responses,
        });
        if let Some(members) = endpoint.body {
            let properties: Map<String, Value> = members
                .iter()
                .map(|(name, kind, description)| {
                    (
                        (*name).to_owned(),
                        json!({"type": kind, "description": description}),
                    )
                })
                .collect();
            operation["requestBody"] = json!({
                "required": false,
                "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": false, "properties": properties,
                }}},
            });
        }
        let item = paths
            .entry(endpoint.path.to_owned())
            .or_insert_with(|| json!({}));
        item[endpoint.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Mayfly admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Operator API over mutual TLS: a client certificate with Mayfly's admin role is required (`mayfly admin bootstrap`).",
        },
        "paths": paths,
        "components": {"schemas": {"Problem": {
            "type": "object",
            "description": "RFC 7807 problem document; type is urn:mayfly:admin:error:{forbidden,notFound,methodNotAllowed,malformed,conflict,serverInternal}",
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
            },
            "required": ["type", "title", "status", "detail"],
        }}},
    })
}

fn problem_description(status: u16) -> &'static str {
    match status {
        400 => "malformed: a bad parameter or body",
        403 => "forbidden: the client certificate lacks the admin role",
        404 => "notFound",
        409 => "conflict: the change was made already",
        _ => "problem",
    }
}
