//! An account's orders list (RFC 8555 §7.1.2.1): POST-as-GET, newest first, paged with
//! `Link: <…?cursor=…>;rel="next"`. Only the account itself may read it. Orders whose status
//! is `invalid` are left out, as the RFC advises, so a page can be shorter than the page
//! size while a next page exists.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use time::OffsetDateTime;

use crate::acme::Problem;
use crate::acme::resources::OrdersList;
use crate::app::AppState;

use super::context::{Acme, ResourceId};
use crate::storage::OrderCursor;

use super::error::ApiError;
use super::extract::PostAsGet;

pub async fn orders(
    State(state): State<AppState>,
    acme: Acme,
    ResourceId(id): ResourceId,
    RawQuery(query): RawQuery,
    request: PostAsGet,
) -> Result<Response, ApiError> {
    let app = &state.0;
    if request.account.id != id {
        return Err(Problem::unauthorized(
            "an account's orders list can only be read by the account itself",
        )
        .into());
    }
    let cursor = query
        .as_deref()
        .map(cursor_from_query)
        .transpose()?
        .flatten();
    let page = app
        .authority
        .orders_page(
            &request.account,
            cursor.as_ref(),
            app.config.acme.orders_page_size,
        )
        .await?;
    let body = OrdersList {
        orders: page
            .order_ids
            .iter()
            .map(|id| acme.links.order(id))
            .collect(),
    };
    let mut response = super::json_response(StatusCode::OK, None, &body);
    if let Some(next) = page.next {
        let url = format!(
            "{}?cursor={}",
            acme.links.account_orders(&id),
            encode_cursor(&next)
        );
        if let Ok(link) = HeaderValue::from_str(&format!("<{url}>;rel=\"next\"")) {
            response.headers_mut().append(header::LINK, link);
        }
    }
    Ok(response)
}

/// `<created_at unix seconds>.<order id>`; order ids are base64url, so they hold no `.`.
fn encode_cursor(cursor: &OrderCursor) -> String {
    format!("{}.{}", cursor.created_at.unix_timestamp(), cursor.id)
}

/// The `cursor` parameter of the query, if there is one. Any other parameter is refused, so
/// a typo does not silently restart the list.
fn cursor_from_query(query: &str) -> Result<Option<OrderCursor>, ApiError> {
    let mut cursor = None;
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if name != "cursor" {
            return Err(Problem::malformed(format!(
                "unknown query parameter {name:?} (only cursor is allowed)"
            ))
            .into());
        }
        cursor = Some(decode_cursor(&value)?);
    }
    Ok(cursor)
}

fn decode_cursor(text: &str) -> Result<OrderCursor, ApiError> {
    let invalid = || ApiError::from(Problem::malformed(format!("invalid cursor {text:?}")));
    let (secs, id) = text.split_once('.').ok_or_else(invalid)?;
    let created_at = secs
        .parse::<i64>()
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or_else(invalid)?;
    let url_safe = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if id.is_empty() || !id.chars().all(url_safe) {
        return Err(invalid());
    }
    Ok(OrderCursor {
        created_at,
        id: id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let cursor = OrderCursor {
            created_at: OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time"),
            id: "abc_DEF-1".into(),
        };
        let text = encode_cursor(&cursor);
        assert_eq!(text, "1800000000.abc_DEF-1");
        assert_eq!(
            cursor_from_query(&format!("cursor={text}")).ok().flatten(),
            Some(cursor)
        );
        assert!(matches!(cursor_from_query(""), Ok(None)));
        for bad in [
            "cursor=abc",
            "cursor=x.abc",
            "cursor=1.",
            "cursor=1.a%20b",
            "cursor=1.a.b",
            "page=2",
        ] {
            assert!(cursor_from_query(bad).is_err(), "{bad}");
        }
    }
}
