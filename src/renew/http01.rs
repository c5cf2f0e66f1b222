//! http-01 (RFC 8555 §8.3) with a listener of its own, for hosts where nothing else serves
//! port 80. It lives only as long as the order.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

type Tokens = Arc<Mutex<HashMap<String, String>>>;

/// The running listener; stops when dropped.
pub struct Standalone {
    tokens: Tokens,
    task: JoinHandle<()>,
}

impl Standalone {
    pub async fn start(listen: SocketAddr) -> Result<Self, String> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| format!("http-01: cannot listen on {listen}: {e}"))?;
        let tokens: Tokens = Arc::default();
        let router = Router::new()
            .route("/.well-known/acme-challenge/{token}", get(answer))
            .with_state(tokens.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::warn!("http-01 listener stopped: {e}");
            }
        });
        Ok(Standalone { tokens, task })
    }

    pub fn provision(&self, token: &str, key_authorization: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.to_owned(), key_authorization.to_owned());
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(tokens): State<Tokens>, Path(token): Path<String>) -> Response {
    let body = tokens
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&token)
        .cloned();
    match body {
        Some(body) => ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
