//! http-01 (RFC 8555 §8.3): fetch `http://<name>:<port>/.well-known/acme-challenge/<token>`
//! and compare the body with the key authorization.

use std::error::Error as _;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::acme::{Identifier, Problem, ProblemType};

use super::ValidationSettings;
use super::resolver::{DnsError, Resolver};

/// At most this many redirects are followed (the bound; Boulder uses the same).
const MAX_REDIRECTS: usize = 10;
/// A key authorization is 87 characters; allow generous trailing whitespace, refuse more so a
/// hostile target cannot make us buffer a large body.
const MAX_BODY_BYTES: usize = 1024;

/// The HTTP client for http-01, built in one place: every lookup goes through `resolver`,
/// redirects are bounded, and there is no proxy.
pub fn client(
    settings: &ValidationSettings,
    resolver: Arc<dyn Resolver>,
) -> Result<reqwest::Client, reqwest::Error> {
    let port = settings.http01_port;
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let url = attempt.url().clone();
        // RFC 8555 §8.3: redirects may only lead to http on the challenge port or https on 443.
        let allowed = match url.scheme() {
            "http" => url.port_or_known_default() == Some(port),
            "https" => url.port_or_known_default() == Some(443),
            _ => false,
        };
        if allowed {
            attempt.follow()
        } else {
            attempt.error(format!("redirect to {url} is not allowed (port or scheme)"))
        }
    });
    reqwest::Client::builder()
        .dns_resolver(Arc::new(ReqwestResolver(resolver)))
        .redirect(policy)
        .no_proxy()
        .timeout(settings.timeout)
        // Each validation must reach the target afresh, not reuse an earlier connection.
        .pool_max_idle_per_host(0)
        .user_agent(concat!("mayfly-validation/", env!("CARGO_PKG_VERSION")))
        // A redirect to https is followed without certificate checks: the key authorization
        // proves control, not the certificate (as in Boulder and Pebble).
        .tls_danger_accept_invalid_certs(true)
        .build()
}

pub async fn validate(
    http: &reqwest::Client,
    port: u16,
    identifier: &Identifier,
    token: &str,
    key_authorization: &str,
) -> Result<(), Problem> {
    let host = match identifier {
        Identifier::Dns(name) => name.clone(),
        Identifier::Ip(ip @ std::net::IpAddr::V4(_)) => ip.to_string(),
        Identifier::Ip(ip) => format!("[{ip}]"),
    };
    let url = format!("http://{host}:{port}/.well-known/acme-challenge/{token}");
    let mut response = http
        .get(&url)
        .send()
        .await
        .map_err(|e| fetch_error(&url, &e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(Problem::unauthorized(format!(
            "{url} answered HTTP {status}; expected 200 with the key authorization"
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| fetch_error(&url, &e))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY_BYTES {
            return Err(Problem::new(
                ProblemType::IncorrectResponse,
                format!("{url} answered with more than {MAX_BODY_BYTES} bytes"),
            ));
        }
    }
    // RFC 8555 §8.3: the server ignores trailing whitespace.
    let text = String::from_utf8_lossy(&body);
    let got = text.trim_end();
    if got == key_authorization {
        Ok(())
    } else {
        Err(Problem::new(
            ProblemType::IncorrectResponse,
            format!(
                "{url} answered {:?}; expected the key authorization {key_authorization:?}",
                truncate(got, 100)
            ),
        ))
    }
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// Turns a transport failure into the most precise problem type (RFC 8555 §6.7).
fn fetch_error(url: &str, error: &reqwest::Error) -> Problem {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(dns) = cause.downcast_ref::<DnsError>() {
            return Problem::new(ProblemType::Dns, dns.to_string());
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            let what = match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused",
                std::io::ErrorKind::ConnectionReset => "connection reset",
                std::io::ErrorKind::TimedOut => "timeout",
                _ => "connection error",
            };
            return Problem::new(ProblemType::Connection, format!("fetching {url}: {what}"));
        }
        source = cause.source();
    }
    if error.is_timeout() {
        return Problem::new(ProblemType::Connection, format!("fetching {url}: timeout"));
    }
    if error.is_redirect() {
        return Problem::new(
            ProblemType::Connection,
            format!("fetching {url}: {}", error_chain(error)),
        );
    }
    Problem::new(
        ProblemType::Connection,
        format!("fetching {url}: {}", error_chain(error)),
    )
}

fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Adapts our `Resolver` to reqwest's, keeping `DnsError` in the error chain so that
/// `fetch_error` can report it precisely.
struct ReqwestResolver(Arc<dyn Resolver>);

impl reqwest::dns::Resolve for ReqwestResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.0.clone();
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let ips = resolver.lookup_ip(&name).await?;
            // IPv4 first: loopback test targets and most origin servers listen there.
            let mut addrs: Vec<SocketAddr> =
                ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            addrs.sort_by_key(|a| a.is_ipv6());
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::FakeResolver;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn settings(port: u16) -> ValidationSettings {
        ValidationSettings {
            http01_port: port,
            tls_alpn01_port: 443,
            timeout: Duration::from_secs(5),
            max_concurrent: 4,
        }
    }

    /// A one-shot HTTP server that answers every request with `response`.
    async fn serve(response: &'static str) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 2048];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        port
    }

    async fn run(port: u16, name: &str, resolver: Arc<FakeResolver>) -> Result<(), Problem> {
        let http = client(&settings(port), resolver).unwrap();
        validate(
            &http,
            port,
            &Identifier::Dns(name.into()),
            "tok",
            "tok.thumb",
        )
        .await
    }

    fn loopback() -> Arc<FakeResolver> {
        let r = FakeResolver::new();
        r.insert("a.test", vec!["127.0.0.1".parse().unwrap()]);
        r
    }

    #[tokio::test]
    async fn right_key_authorization_passes() {
        let port =
            serve("HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\ntok.thumb\n")
                .await;
        assert_eq!(run(port, "a.test", loopback()).await, Ok(()));
    }

    #[tokio::test]
    async fn wrong_key_authorization_is_incorrect_response() {
        let port =
            serve("HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nwrong").await;
        let p = run(port, "a.test", loopback()).await.unwrap_err();
        assert_eq!(p.kind, ProblemType::IncorrectResponse, "{p}");
    }

    #[tokio::test]
    async fn not_found_is_unauthorized() {
        let port =
            serve("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        let p = run(port, "a.test", loopback()).await.unwrap_err();
        assert_eq!(p.kind, ProblemType::Unauthorized, "{p}");
        assert!(p.detail.contains("404"), "{p}");
    }

    #[tokio::test]
    async fn nxdomain_is_a_dns_problem() {
        let p = run(1, "missing.test", loopback()).await.unwrap_err();
        assert_eq!(p.kind, ProblemType::Dns, "{p}");
        assert!(p.detail.contains("NXDOMAIN"), "{p}");
    }

    #[tokio::test]
    async fn connection_refused_is_a_connection_problem() {
        // Bind and drop to find a port that nobody listens on.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let p = run(port, "a.test", loopback()).await.unwrap_err();
        assert_eq!(p.kind, ProblemType::Connection, "{p}");
        assert!(p.detail.contains("refused"), "{p}");
    }

    #[tokio::test]
    async fn oversized_body_is_refused() {
        let body: &'static str = Box::leak(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-length: 5000\r\nconnection: close\r\n\r\n{}",
                "x".repeat(5000)
            )
            .into_boxed_str(),
        );
        let port = serve(body).await;
        let p = run(port, "a.test", loopback()).await.unwrap_err();
        assert_eq!(p.kind, ProblemType::IncorrectResponse, "{p}");
    }
}
