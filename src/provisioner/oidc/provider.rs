//! The identity provider as an OIDC provisioner sees it: the configuration document (OpenID
//! Connect Discovery 1.0 §4: `issuer` and `jwks_uri`) and the signing keys (a JWK Set, RFC 7517
//! §5), fetched over HTTPS, kept as long as the provider's `Cache-Control` allows, and fetched
//! again once when a token names a key Mayfly does not know (the provider rotated its keys).
//!
//! Nothing is fetched at start-up: a provider that is down then only makes its tokens fail
//! (`providerUnavailable`), not Mayfly refuse to start.

use std::time::Duration as StdDuration;

use http::header::{ACCEPT, CACHE_CONTROL};
use serde_json::Value;
use time::{Duration, OffsetDateTime};
use tokio::sync::Mutex;
use url::{Host, Url};

use crate::jose::Jwk;
use crate::provisioner::{TokenError, TokenErrorKind};

/// How long a document that has no `Cache-Control` is kept (the heuristic freshness of RFC
/// 9111 §4.2.2): long enough not to fetch for every token, short enough that a new key is
/// seen soon without the refetch.
pub const DEFAULT_CACHE_TIME: Duration = Duration::minutes(5);
/// The longest `max-age` believed: a provider that says "a year" would otherwise keep a key
/// it has withdrawn (because it leaked) trusted here for that long.
pub const MAX_CACHE_TIME: Duration = Duration::hours(24);
/// At most one refetch for an unknown `kid` per interval: otherwise tokens with made-up kids
/// would make Mayfly fetch the JWKS from the provider once per token.
pub const REFETCH_INTERVAL: Duration = Duration::seconds(30);
/// After a failed fetch, tokens fail at once for this long, instead of each one waiting in
/// turn for a provider that does not answer.
pub const FAILURE_BACKOFF: Duration = Duration::seconds(5);
/// The largest configuration document or JWKS read. Google's JWKS is about 1.5 KB; a MiB
/// holds hundreds of keys and bounds what a broken provider can make Mayfly buffer.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// The most time one fetch may take, connection included. The shared client has a timeout
/// of its own; this one also bounds a client built without.
pub const FETCH_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// The configuration endpoint's path (OpenID Connect Discovery 1.0 §4).
pub const WELL_KNOWN_PATH: &str = "/.well-known/openid-configuration";

/// One provider: where its configuration is, how to reach it, and what is cached.
pub struct Provider {
    configuration_endpoint: Url,
    http: reqwest::Client,
    /// Held across a fetch, so that concurrent tokens wait for one fetch instead of each
    /// starting their own.
    state: Mutex<State>,
}

/// What was fetched, and when things went wrong.
#[derive(Default)]
struct State {
    discovery: Option<Cached<Discovery>>,
    jwks: Option<Cached<Jwks>>,
    /// The last refetch of the JWKS for an unknown `kid`.
    last_refetch: Option<OffsetDateTime>,
    /// The last fetch that failed, and how.
    last_failure: Option<(OffsetDateTime, TokenError)>,
}

struct Cached<T> {
    value: T,
    expires_at: OffsetDateTime,
}

impl<T> Cached<T> {
    fn fresh(&self, now: OffsetDateTime) -> Option<&T> {
        (now < self.expires_at).then_some(&self.value)
    }
}

/// The members of the configuration document Mayfly uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovery {
    /// What ID tokens carry as `iss`, exactly.
    pub issuer: String,
    pub jwks_uri: Url,
}

/// A JWK Set, with the address it came from.
struct Jwks {
    uri: Url,
    keys: Vec<ProviderKey>,
}

/// One usable key of the JWKS.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ProviderKey {
    kid: Option<String>,
    /// RFC 7517 §4.4: the one algorithm the key is meant for, when the provider says.
    alg: Option<String>,
    jwk: Jwk,
}

/// The key that verifies a token, and the issuer the token must name.
pub struct Resolved {
    pub issuer: String,
    pub key: Jwk,
}

/// How looking a key up in the keys at hand went.
#[derive(Debug, PartialEq, Eq)]
enum Lookup {
    Found(Jwk),
    /// No key fits; a refetch may find it.
    Missing,
    /// The token names no `kid` and several keys fit; a refetch would not help.
    Ambiguous(usize),
}

impl Provider {
    pub fn new(configuration_endpoint: Url, http: reqwest::Client) -> Provider {
        Provider {
            configuration_endpoint,
            http,
            state: Mutex::new(State::default()),
        }
    }

    /// The issuer and the key for a token signed with `alg` naming `kid`: from the cache,
    /// or fetched; the JWKS is fetched again once (at most once per [`REFETCH_INTERVAL`]) when
    /// the key is not in a cached copy. `now` decides what is fresh (tests move it).
    pub async fn resolve(
        &self,
        kid: Option<&str>,
        alg: &str,
        now: OffsetDateTime,
    ) -> Result<Resolved, TokenError> {
        let mut state = self.state.lock().await;
        if let Some((at, error)) = &state.last_failure
            && *at <= now
            && now < *at + FAILURE_BACKOFF
        {
            return Err(error.clone());
        }
        let result = self.resolve_locked(&mut state, kid, alg, now).await;
        match &result {
            Err(e) if e.kind == TokenErrorKind::ProviderUnavailable => {
                state.last_failure = Some((now, e.clone()));
            }
            _ => state.last_failure = None,
        }
        result
    }

    async fn resolve_locked(
        &self,
        state: &mut State,
        kid: Option<&str>,
        alg: &str,
        now: OffsetDateTime,
    ) -> Result<Resolved, TokenError> {
        let discovery = match state.discovery.as_ref().and_then(|c| c.fresh(now)) {
            Some(discovery) => discovery.clone(),
            None => {
                let (discovery, lifetime) = self.fetch_discovery().await?;
                state.discovery = lifetime.map(|lifetime| Cached {
                    value: discovery.clone(),
                    expires_at: now + lifetime,
                });
                discovery
            }
        };
        let issuer = discovery.issuer.clone();
        let cached = state
            .jwks
            .as_ref()
            .and_then(|c| c.fresh(now))
            .filter(|jwks| jwks.uri == discovery.jwks_uri);
        let found = match cached {
            Some(jwks) => lookup(&jwks.keys, kid, alg),
            None => {
                let keys = self.fetch_jwks(state, &discovery.jwks_uri, now).await?;
                return match lookup(&keys, kid, alg) {
                    Lookup::Found(key) => Ok(Resolved { issuer, key }),
                    other => Err(unknown_key(other, kid, alg, "fetched just now")),
                };
            }
        };
        match found {
            Lookup::Found(key) => return Ok(Resolved { issuer, key }),
            Lookup::Ambiguous(_) => return Err(unknown_key(found, kid, alg, "")),
            Lookup::Missing => {}
        }
        if let Some(at) = state.last_refetch
            && at <= now
            && now < at + REFETCH_INTERVAL
        {
            return Err(unknown_key(
                Lookup::Missing,
                kid,
                alg,
                &format!(
                    "refetched less than {}s ago",
                    REFETCH_INTERVAL.whole_seconds()
                ),
            ));
        }
        state.last_refetch = Some(now);
        tracing::debug!(
            endpoint = %self.configuration_endpoint,
            kid,
            "an ID token names a key not in the cached JWKS: fetching it again"
        );
        let keys = self.fetch_jwks(state, &discovery.jwks_uri, now).await?;
        match lookup(&keys, kid, alg) {
            Lookup::Found(key) => Ok(Resolved { issuer, key }),
            other => Err(unknown_key(other, kid, alg, "fetched again just now")),
        }
    }

    async fn fetch_discovery(&self) -> Result<(Discovery, Option<Duration>), TokenError> {
        let url = &self.configuration_endpoint;
        let (document, lifetime) = self.fetch_json(url).await?;
        let discovery = parse_discovery(&document).map_err(|detail| {
            TokenError::new(
                TokenErrorKind::ProviderUnavailable,
                format!("the OIDC configuration at {url}: {detail}"),
            )
        })?;
        Ok((discovery, lifetime))
    }

    /// Fetches the JWKS, caches it when allowed and returns its keys.
    async fn fetch_jwks(
        &self,
        state: &mut State,
        uri: &Url,
        now: OffsetDateTime,
    ) -> Result<Vec<ProviderKey>, TokenError> {
        let (document, lifetime) = self.fetch_json(uri).await?;
        let keys = parse_jwks(&document).map_err(|detail| {
            TokenError::new(
                TokenErrorKind::ProviderUnavailable,
                format!("the JWKS at {uri}: {detail}"),
            )
        })?;
        state.jwks = lifetime.map(|lifetime| Cached {
            value: Jwks {
                uri: uri.clone(),
                keys: keys.clone(),
            },
            expires_at: now + lifetime,
        });
        Ok(keys)
    }

    /// GETs a JSON document of at most [`MAX_RESPONSE_BYTES`] within [`FETCH_TIMEOUT`];
    /// returns it with how long it may be cached (`None`: not at all).
    async fn fetch_json(&self, url: &Url) -> Result<(Value, Option<Duration>), TokenError> {
        let unavailable = |detail: String| {
            TokenError::new(
                TokenErrorKind::ProviderUnavailable,
                format!("GET {url}: {detail}"),
            )
        };
        let fetch = async {
            tracing::debug!(%url, "fetching from the OIDC provider");
            let mut response = self
                .http
                .get(url.clone())
                .header(ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| unavailable(error_chain(&e.without_url())))?;
            // A redirect must not lead off HTTPS.
            check_url(response.url())
                .map_err(|e| unavailable(format!("redirected to {}: {e}", response.url())))?;
            if !response.status().is_success() {
                return Err(unavailable(format!("HTTP {}", response.status())));
            }
            let too_big = || unavailable(format!("the answer exceeds {MAX_RESPONSE_BYTES} bytes"));
            if response
                .content_length()
                .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
            {
                return Err(too_big());
            }
            let lifetime = cache_lifetime(
                response
                    .headers()
                    .get_all(CACHE_CONTROL)
                    .iter()
                    .filter_map(|v| v.to_str().ok()),
            );
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| unavailable(error_chain(&e.without_url())))?
            {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(too_big());
                }
                body.extend_from_slice(&chunk);
            }
            let document: Value = serde_json::from_slice(&body)
                .map_err(|e| unavailable(format!("the answer is not JSON: {e}")))?;
            Ok((document, lifetime))
        };
        tokio::time::timeout(FETCH_TIMEOUT, fetch)
            .await
            .map_err(|_| {
                unavailable(format!(
                    "no answer within {} seconds",
                    FETCH_TIMEOUT.as_secs()
                ))
            })?
    }
}

/// The `UnknownKey` error for a failed [`Lookup`]; `when` says how old the keys looked at are.
fn unknown_key(lookup: Lookup, kid: Option<&str>, alg: &str, when: &str) -> TokenError {
    let detail = match (lookup, kid) {
        (Lookup::Ambiguous(n), _) => format!(
            "the ID token names no kid and the provider has {n} keys for {alg}; \
             OpenID Connect Core §10.1 requires a kid then"
        ),
        (_, Some(kid)) => format!("the provider's JWKS ({when}) has no {alg} key {kid:?}"),
        (_, None) => {
            format!("the ID token names no kid and the provider's JWKS ({when}) has no {alg} key")
        }
    };
    TokenError::new(TokenErrorKind::UnknownKey, detail)
}

/// The key among `keys` for a token signed with `alg` naming `kid`. Without a `kid`, the one
/// key of the right type (OpenID Connect Core §10.1 allows leaving it out when there is one).
fn lookup(keys: &[ProviderKey], kid: Option<&str>, alg: &str) -> Lookup {
    let suits = |key: &&ProviderKey| {
        key.alg.as_deref().is_none_or(|a| a == alg) && key.jwk.algorithm().is_ok_and(|a| a == alg)
    };
    match kid {
        // A key found by kid is returned whatever its type: the signature check then says
        // that the algorithm does not suit it, which is the truth.
        Some(kid) => match keys.iter().find(|k| k.kid.as_deref() == Some(kid)) {
            Some(key) => Lookup::Found(key.jwk.clone()),
            None => Lookup::Missing,
        },
        None => {
            let fitting: Vec<&ProviderKey> = keys.iter().filter(suits).collect();
            match fitting.as_slice() {
                [] => Lookup::Missing,
                [key] => Lookup::Found(key.jwk.clone()),
                many => Lookup::Ambiguous(many.len()),
            }
        }
    }
}

/// `issuer` and `jwks_uri` of a configuration document.
fn parse_discovery(document: &Value) -> Result<Discovery, String> {
    // The issuer is not compared with the configuration endpoint (Discovery §4.3 wants them
    // to match): Azure AD's multi-tenant document has a template for an issuer, and some
    // deployments serve the document from another host. Tokens must carry it exactly.
    let issuer = document
        .get("issuer")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("it has no issuer")?;
    let jwks_uri = document
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or("it has no jwks_uri")?;
    let jwks_uri =
        Url::parse(jwks_uri).map_err(|e| format!("jwks_uri {jwks_uri:?} is not a URL: {e}"))?;
    check_url(&jwks_uri).map_err(|e| format!("jwks_uri {jwks_uri}: {e}"))?;
    Ok(Discovery {
        issuer: issuer.to_owned(),
        jwks_uri,
    })
}

/// The usable keys of a JWK Set. A key that is not for signatures, or that Mayfly cannot
/// use (a type or size it does not verify, private members), is left out, not fatal: a
/// provider may publish keys for other purposes.
fn parse_jwks(document: &Value) -> Result<Vec<ProviderKey>, String> {
    let keys = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("it has no keys array")?;
    let mut usable = Vec::with_capacity(keys.len());
    for key in keys {
        let kid = key.get("kid").and_then(Value::as_str).map(str::to_owned);
        match provider_key(key) {
            Ok(key) => usable.push(key),
            Err(why) => tracing::debug!(?kid, "leaving out a key of the JWKS: {why}"),
        }
    }
    Ok(usable)
}

fn provider_key(key: &Value) -> Result<ProviderKey, String> {
    let member = |name: &str| match key.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("its {name} is not a string")),
    };
    let kid = member("kid")?;
    let alg = member("alg")?;
    // RFC 7517 §4.2: `use` is "sig" or "enc"; an encryption key never verifies a token.
    if let Some(usage) = member("use")?
        && usage != "sig"
    {
        return Err(format!("its use is {usage:?}, not \"sig\""));
    }
    let jwk = Jwk::parse(key).map_err(|e| e.to_string())?;
    Ok(ProviderKey { kid, alg, jwk })
}

/// How long an answer may be kept, from its `Cache-Control` values (RFC 9111 §5.2.2):
/// `no-store`, `no-cache` or `max-age=0`: not at all; `max-age=N`: N seconds, at most
/// [`MAX_CACHE_TIME`]; nothing said: [`DEFAULT_CACHE_TIME`].
pub fn cache_lifetime<'a>(values: impl Iterator<Item = &'a str>) -> Option<Duration> {
    let mut max_age = None;
    for directive in values.flat_map(|v| v.split(',')) {
        let (name, argument) = match directive.split_once('=') {
            Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
            None => (directive.trim(), None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return None;
        }
        if name.eq_ignore_ascii_case("max-age") {
            let argument = argument.unwrap_or_default();
            if argument.is_empty() || !argument.bytes().all(|b| b.is_ascii_digit()) {
                // RFC 9111 §4.2.1: an invalid max-age makes the answer stale.
                return None;
            }
            // RFC 9111 §1.2.2: a number too big to hold counts as very long.
            let seconds = argument.parse::<i64>().unwrap_or(i64::MAX);
            max_age = Some(seconds.min(MAX_CACHE_TIME.whole_seconds()));
        }
    }
    match max_age {
        Some(0) => None,
        Some(seconds) => Some(Duration::seconds(seconds)),
        None => Some(DEFAULT_CACHE_TIME),
    }
}

/// A provider's address must be HTTPS. Plain HTTP is allowed to a loopback address only
/// (127.0.0.0/8, ::1, `localhost`): for tests and a provider run on the same machine in
/// development, where nobody else is on the path to tamper with the keys.
pub fn check_url(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(
            "it must be https (plain http only to a loopback address, for tests and development)"
                .to_owned(),
        ),
        scheme => Err(format!("the scheme {scheme:?} is not https")),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// An error and its causes, for a `detail` that says why a connection failed (a refused
/// connection, an untrusted certificate), which reqwest's own message leaves to its sources.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::SigningKey;
    use serde_json::json;

    #[test]
    fn cache_lifetime_follows_cache_control() {
        let cases: [(&str, &[&str], Option<Duration>); 12] = [
            ("no header", &[], Some(DEFAULT_CACHE_TIME)),
            ("max-age", &["max-age=120"], Some(Duration::seconds(120))),
            (
                "among other directives, any case",
                &["public, Max-Age=600, must-revalidate"],
                Some(Duration::seconds(600)),
            ),
            ("quoted", &["max-age=\"60\""], Some(Duration::seconds(60))),
            ("capped", &["max-age=31536000"], Some(MAX_CACHE_TIME)),
            (
                "too big a number",
                &["max-age=99999999999999999999999"],
                Some(MAX_CACHE_TIME),
            ),
            ("zero", &["max-age=0"], None),
            ("no-store", &["max-age=600, no-store"], None),
            ("no-cache", &["no-cache"], None),
            ("in a second header", &["public", "no-cache"], None),
            ("invalid max-age", &["max-age=ten"], None),
            ("no max-age", &["public"], Some(DEFAULT_CACHE_TIME)),
        ];
        for (name, values, expected) in cases {
            assert_eq!(cache_lifetime(values.iter().copied()), expected, "{name}");
        }
    }

    #[test]
    fn provider_urls_are_https_or_loopback_http() {
        let cases = [
            ("https://idp.example.com/x", true),
            ("http://127.0.0.1:8080/x", true),
            ("http://127.9.9.9/x", true),
            ("http://[::1]:8080/x", true),
            ("http://localhost:5556/x", true),
            ("http://idp.example.com/x", false),
            ("http://10.0.0.1/x", false),
            ("ftp://idp.example.com/x", false),
            ("file:///etc/passwd", false),
        ];
        for (url, ok) in cases {
            let url = Url::parse(url).expect("a URL");
            assert_eq!(check_url(&url).is_ok(), ok, "{url}");
        }
    }

    #[test]
    fn unusable_keys_are_left_out() {
        let ec = SigningKey::generate_p256().jwk();
        let mut ec_json = serde_json::to_value(&ec).expect("JSON");
        ec_json["kid"] = json!("ec");
        let mut encryption = ec_json.clone();
        encryption["use"] = json!("enc");
        let document = json!({"keys": [
            ec_json,
            encryption,
            {"kty": "oct", "k": "c2VjcmV0", "kid": "mac"},
            {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "short"},
            {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA", "kid": "p521"},
            "not an object",
        ]});
        let keys = parse_jwks(&document).expect("a JWKS");
        assert_eq!(
            keys,
            vec![ProviderKey {
                kid: Some("ec".into()),
                alg: None,
                jwk: ec
            }]
        );
        assert!(parse_jwks(&json!({"kid": "x"})).is_err());
    }

    #[test]
    fn keys_are_found_by_kid_or_as_the_only_one() {
        let ec = SigningKey::generate_p256().jwk();
        let rsa = SigningKey::generate_rsa2048().jwk();
        let key = |kid: &str, alg: Option<&str>, jwk: &Jwk| ProviderKey {
            kid: Some(kid.into()),
            alg: alg.map(Into::into),
            jwk: jwk.clone(),
        };
        let keys = [key("e", None, &ec), key("r", Some("RS256"), &rsa)];
        assert_eq!(lookup(&keys, Some("e"), "ES256"), Lookup::Found(ec.clone()));
        assert_eq!(
            lookup(&keys, Some("r"), "RS256"),
            Lookup::Found(rsa.clone())
        );
        assert_eq!(lookup(&keys, Some("x"), "ES256"), Lookup::Missing);
        assert_eq!(lookup(&keys, None, "ES256"), Lookup::Found(ec.clone()));
        assert_eq!(lookup(&keys, None, "RS256"), Lookup::Found(rsa.clone()));
        let two = [key("e", None, &ec), key("f", None, &ec)];
        assert_eq!(lookup(&two, None, "ES256"), Lookup::Ambiguous(2));
        let pss = [key("r", Some("PS256"), &rsa)];
        assert_eq!(lookup(&pss, None, "RS256"), Lookup::Missing);
    }

    #[test]
    fn discovery_needs_an_issuer_and_an_https_jwks_uri() {
        let good = json!({"issuer": "https://idp.example.com", "jwks_uri": "https://idp.example.com/keys"});
        assert_eq!(
            parse_discovery(&good).expect("good").issuer,
            "https://idp.example.com"
        );
        for (name, document) in [
            (
                "no issuer",
                json!({"jwks_uri": "https://idp.example.com/keys"}),
            ),
            (
                "empty issuer",
                json!({"issuer": "", "jwks_uri": "https://idp.example.com/keys"}),
            ),
            ("no jwks_uri", json!({"issuer": "https://idp.example.com"})),
            (
                "http jwks_uri",
                json!({"issuer": "https://idp.example.com", "jwks_uri": "http://idp.example.com/keys"}),
            ),
            (
                "not a URL",
                json!({"issuer": "https://idp.example.com", "jwks_uri": "keys"}),
            ),
        ] {
            assert!(parse_discovery(&document).is_err(), "{name}");
        }
    }
}
