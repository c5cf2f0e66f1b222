//! The generator's own http-01 responder (RFC 8555 §8.3) on a loopback port.
//!
//! Every virtual client publishes its key authorizations here, and removes them once the order
//! is ready, so the table stays as small as the number of orders in flight. Connections are
//! kept alive as HTTP/1.1 allows, in case the validating server reuses them.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// RFC 8555 §8.3: the path the server fetches.
const PREFIX: &str = "/.well-known/acme-challenge/";
/// A validation request is a request line and a few headers; anything longer is refused.
const MAX_HEAD: usize = 8 * 1024;
/// A connection that sends nothing for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

type Table = Arc<RwLock<HashMap<String, String>>>;

/// Serves `GET /.well-known/acme-challenge/<token>`; stops when dropped.
pub struct Responder {
    table: Table,
    task: JoinHandle<()>,
}

impl Responder {
    pub async fn start(port: u16) -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .with_context(|| format!("binding the http-01 responder to 127.0.0.1:{port}"))?;
        let table = Table::default();
        let task = tokio::spawn(accept_loop(listener, table.clone()));
        Ok(Self { table, task })
    }

    pub fn provision(&self, token: &str, key_authorization: String) {
        self.table
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.to_owned(), key_authorization);
    }

    pub fn remove(&self, token: &str) {
        self.table
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(token);
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, table: Table) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, for instance: back off rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let table = table.clone();
        tokio::spawn(async move {
            let _closed = serve(stream, &table).await;
        });
    }
}

/// Answers requests on one connection until the peer closes it or asks to.
async fn serve(mut stream: TcpStream, table: &Table) -> Result<()> {
    let mut buffer = Vec::with_capacity(1024);
    loop {
        let head_end = loop {
            if let Some(end) = find_head_end(&buffer) {
                break end;
            }
            anyhow::ensure!(buffer.len() < MAX_HEAD, "request head too long");
            let mut chunk = [0u8; 2048];
            let read = tokio::time::timeout(IDLE_TIMEOUT, stream.read(&mut chunk)).await??;
            if read == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..read]);
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        buffer.drain(..head_end);
        let (response, keep_alive) = respond(&head, table);
        stream.write_all(response.as_bytes()).await?;
        if !keep_alive {
            return Ok(());
        }
    }
}

/// The index just past the blank line that ends a request head.
fn find_head_end(buffer: &[u8]) -> Option<usize> {
    buffer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|start| start + 4)
}

/// The full response to one request head, and whether the connection stays open.
fn respond(head: &str, table: &Table) -> (String, bool) {
    let mut lines = head.lines();
    let mut request_line = lines.next().unwrap_or_default().split_whitespace();
    let (method, path, version) = (
        request_line.next().unwrap_or_default(),
        request_line.next().unwrap_or_default(),
        request_line.next().unwrap_or_default(),
    );
    let close_asked = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("connection")
                && value.trim().eq_ignore_ascii_case("close")
        })
    });
    let keep_alive = version == "HTTP/1.1" && !close_asked;
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let body = (method == "GET")
        .then(|| path.strip_prefix(PREFIX))
        .flatten()
        .and_then(|token| {
            table
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(token)
                .cloned()
        });
    let response = match body {
        Some(body) => format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: {connection}\r\n\r\n{body}",
            body.len()
        ),
        None => format!(
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: {connection}\r\n\r\n"
        ),
    };
    (response, keep_alive)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_known_tokens_only() {
        let table = Table::default();
        table
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert("tok".to_owned(), "tok.thumb".to_owned());
        let cases = [
            (
                "known token, keep-alive",
                "GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: a\r\n\r\n",
                "200 OK",
                true,
            ),
            (
                "known token, close asked",
                "GET /.well-known/acme-challenge/tok HTTP/1.1\r\nConnection: close\r\n\r\n",
                "200 OK",
                false,
            ),
            (
                "HTTP/1.0 closes",
                "GET /.well-known/acme-challenge/tok HTTP/1.0\r\n\r\n",
                "200 OK",
                false,
            ),
            (
                "unknown token",
                "GET /.well-known/acme-challenge/other HTTP/1.1\r\n\r\n",
                "404 Not Found",
                true,
            ),
            (
                "wrong path",
                "GET /tok HTTP/1.1\r\n\r\n",
                "404 Not Found",
                true,
            ),
            (
                "POST",
                "POST /.well-known/acme-challenge/tok HTTP/1.1\r\n\r\n",
                "404 Not Found",
                true,
            ),
        ];
        for (case, head, status, keep) in cases {
            let (response, keep_alive) = respond(head, &table);
            assert!(
                response.starts_with(&format!("HTTP/1.1 {status}")),
                "{case}"
            );
            assert_eq!(keep_alive, keep, "{case}");
        }
        let (response, _) = respond(cases[0].1, &table);
        assert!(response.ends_with("\r\n\r\ntok.thumb"));
    }
}
