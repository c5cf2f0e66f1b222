//! tkauth-01 (in the shape of RFC 9447, `tkauth-type` `atc`) through the operator's token
//! command. The command prints a token for one identifier, bound to the account key; the agent
//! posts `{"atc": TOKEN}` to the challenge itself, as a JWS signed with the account key
//! (RFC 8555 §6.2), because instant-acme 0.8 can only send `{}` to a challenge.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::{Value, json};

use super::hooks;
use crate::jose::{KeyRef, SigningKey, sign_jws};

/// The problem type of a refused nonce (RFC 8555 §6.5): worth one retry with the nonce the
/// refusal carries.
const BAD_NONCE: &str = "urn:ietf:params:acme:error:badNonce";
/// RFC 8555 §6.2.
const JOSE_JSON: &str = "application/jose+json";

/// Fetches tokens from the command and answers tkauth-01 challenges with them.
pub struct TokenAnswerer {
    /// The certificate's id, for error messages.
    certificate: String,
    command: String,
    timeout: Duration,
    directory: String,
    http: reqwest::Client,
    key: SigningKey,
    account_url: String,
    /// The newNonce URL, read from the directory on first use.
    new_nonce: Option<String>,
}

impl TokenAnswerer {
    pub fn new(
        certificate: &str,
        command: &str,
        timeout: Duration,
        directory: &str,
        http: reqwest::Client,
        key: SigningKey,
        account_url: &str,
    ) -> Self {
        TokenAnswerer {
            certificate: certificate.to_owned(),
            command: command.to_owned(),
            timeout,
            directory: directory.to_owned(),
            http,
            key,
            account_url: account_url.to_owned(),
            new_nonce: None,
        }
    }

    /// The RFC 7638 thumbprint of the account key, which the token must carry as `cnf.jkt`.
    pub fn thumbprint(&self) -> String {
        self.key.jwk().thumbprint()
    }

    /// The token for `identifier`, from the command's stdout (trimmed).
    pub async fn token(&self, identifier: &str) -> Result<String> {
        let env = [
            ("MAYFLY_IDENTIFIER", identifier.to_owned()),
            ("MAYFLY_ACCOUNT_THUMBPRINT", self.thumbprint()),
            ("MAYFLY_DIRECTORY", self.directory.clone()),
        ];
        let context = || {
            format!(
                "tkauth-01 token_command of certificate {:?} for {identifier}",
                self.certificate
            )
        };
        let printed = hooks::output(hooks::shell(&self.command, &env), self.timeout)
            .await
            .map_err(|e| anyhow!(e))
            .with_context(context)?;
        let token = printed.trim();
        if token.is_empty() {
            return Err(anyhow!("it printed no token on stdout")).with_context(context);
        }
        Ok(token.to_owned())
    }

    /// POST `{"atc": token}` to the challenge at `url`. Mayfly checks the token on the spot:
    /// an `invalid` challenge is an error carrying the server's reason.
    pub async fn answer(&mut self, url: &str, identifier: &str, token: &str) -> Result<()> {
        let payload = json!({ "atc": token });
        let mut nonce = self.fresh_nonce().await?;
        let mut retried = false;
        loop {
            let body = sign_jws(
                &self.key,
                KeyRef::Kid(&self.account_url),
                Some(&nonce),
                url,
                Some(&payload),
            );
            let response = self
                .http
                .post(url)
                .header(CONTENT_TYPE, JOSE_JSON)
                .body(body.to_string())
                .send()
                .await
                .with_context(|| format!("posting the tkauth-01 answer for {identifier}"))?;
            let status = response.status();
            let replay = replay_nonce(response.headers());
            let bytes = response
                .bytes()
                .await
                .with_context(|| format!("reading the tkauth-01 answer for {identifier}"))?;
            let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if status.is_success() {
                return challenge_outcome(&answer, identifier);
            }
            if answer["type"] == BAD_NONCE
                && !retried
                && let Some(replay) = replay
            {
                retried = true;
                nonce = replay;
                continue;
            }
            bail!(
                "the server refused the tkauth-01 answer for {identifier} ({status}): {}",
                problem_text(&answer, &bytes)
            );
        }
    }

    /// A new nonce: HEAD on the directory's newNonce URL (RFC 8555 §7.2).
    async fn fresh_nonce(&mut self) -> Result<String> {
        let new_nonce = match &self.new_nonce {
            Some(url) => url.clone(),
            None => {
                let directory: Value = self
                    .http
                    .get(&self.directory)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .with_context(|| format!("fetching the directory {}", self.directory))?
                    .json()
                    .await
                    .with_context(|| format!("reading the directory {}", self.directory))?;
                let url = directory["newNonce"]
                    .as_str()
                    .ok_or_else(|| anyhow!("the directory {} has no newNonce", self.directory))?
                    .to_owned();
                self.new_nonce = Some(url.clone());
                url
            }
        };
        let response = self
            .http
            .head(&new_nonce)
            .send()
            .await
            .with_context(|| format!("fetching a nonce from {new_nonce}"))?;
        replay_nonce(response.headers())
            .ok_or_else(|| anyhow!("{new_nonce} answered without a Replay-Nonce"))
    }
}

fn replay_nonce(headers: &HeaderMap) -> Option<String> {
    headers
        .get("replay-nonce")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// The challenge as the server answered it: `invalid` is an error with the server's reason;
/// `valid`, `pending` and `processing` leave the rest to the order's polling.
fn challenge_outcome(challenge: &Value, identifier: &str) -> Result<()> {
    match challenge["status"].as_str() {
        Some("invalid") => bail!(
            "the tkauth-01 challenge for {identifier} is invalid: {}",
            problem_text(&challenge["error"], b"")
        ),
        Some(_) => Ok(()),
        None => bail!("the tkauth-01 answer for {identifier} is not a challenge: {challenge}"),
    }
}

/// A problem document's detail (with its type), else the raw body.
fn problem_text(problem: &Value, raw: &[u8]) -> String {
    let kind = problem["type"]
        .as_str()
        .map(|t| t.rsplit(':').next().unwrap_or(t));
    match (problem["detail"].as_str(), kind) {
        (Some(detail), Some(kind)) => format!("{detail} [{kind}]"),
        (Some(detail), None) => detail.to_owned(),
        (None, Some(kind)) => kind.to_owned(),
        (None, None) if raw.is_empty() => "the server gave no reason".to_owned(),
        (None, None) => String::from_utf8_lossy(raw).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answerer(command: &str) -> TokenAnswerer {
        TokenAnswerer::new(
            "web",
            command,
            hooks::DEFAULT_TIMEOUT,
            "https://ca.test/acme/teams/directory",
            reqwest::Client::new(),
            SigningKey::generate_p256(),
            "https://ca.test/acme/teams/account/1",
        )
    }

    #[tokio::test]
    async fn the_command_gets_its_environment_and_its_output_is_trimmed() {
        let answerer = answerer(
            "printf '  %s|%s|%s\\n\\n' \"$MAYFLY_IDENTIFIER\" \"$MAYFLY_ACCOUNT_THUMBPRINT\" \
             \"$MAYFLY_DIRECTORY\"",
        );
        let token = answerer.token("www.example.test").await.unwrap();
        assert_eq!(
            token,
            format!(
                "www.example.test|{}|https://ca.test/acme/teams/directory",
                answerer.thumbprint()
            )
        );
    }

    #[tokio::test]
    async fn command_failures_name_the_certificate_and_the_identifier() {
        let cases = [
            (
                "failing",
                "echo no token for you >&2; exit 3",
                "no token for you",
            ),
            ("empty", "echo '  '", "printed no token"),
        ];
        for (case, command, expected) in cases {
            let error = answerer(command)
                .token("www.example.test")
                .await
                .expect_err(case);
            let text = format!("{error:#}");
            assert!(
                text.contains("certificate \"web\"")
                    && text.contains("www.example.test")
                    && text.contains(expected),
                "{case}: {text}"
            );
        }
    }

    #[test]
    fn challenge_outcomes() {
        assert!(challenge_outcome(&json!({"status": "valid"}), "a.test").is_ok());
        assert!(challenge_outcome(&json!({"status": "pending"}), "a.test").is_ok());
        let error = challenge_outcome(
            &json!({"status": "invalid", "error": {
                "type": "urn:ietf:params:acme:error:unauthorized",
                "detail": "tkauth-01 token refused (accountMismatch): bound to another key",
            }}),
            "a.test",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("a.test") && error.contains("accountMismatch"),
            "{error}"
        );
        assert!(challenge_outcome(&json!({"type": "x"}), "a.test").is_err());
    }
}
