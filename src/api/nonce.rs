//! Replay nonces (RFC 8555 §6.5). Issuing one writes nothing: a nonce is an expiry time and
//! random bytes, authenticated with an HMAC key that every replica shares through the
//! database. Redeeming one records it, so it is accepted once by any replica.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::{Duration, OffsetDateTime};

use crate::authority::random_bytes;

/// 8 bytes of expiry, 16 random bytes, 32 bytes of HMAC-SHA256.
const BODY_LEN: usize = 8 + 16;
const TAG_LEN: usize = 32;
/// The first random byte, after the 8 bytes of expiry.
const RETRY_FLAG_BYTE: usize = 8;

pub struct NonceService {
    key: hmac::Key,
    lifetime: Duration,
    /// Keys (JWK thumbprints) whose last request `testing.nonce_reject_percent` rejected: their
    /// next request is spared, so a client that retries once always progresses, whichever
    /// nonce it retries with (python-acme drops the nonce of an error and fetches a new one).
    owed_a_pass: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Bound on remembered keys; the set is only used by a testing knob.
const MAX_OWED: usize = 10_000;

impl NonceService {
    pub fn new(secret: &[u8], lifetime: Duration) -> Self {
        NonceService {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            lifetime,
            owed_a_pass: std::sync::Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// `testing.nonce_reject_percent`: whether to reject this valid nonce on purpose. Never the
    /// nonce sent with a `badNonce`, and never twice in a row for the same key.
    pub fn reject_for_testing(&self, nonce: &str, key_thumbprint: &str, percent: u8) -> bool {
        if percent == 0 || Self::is_for_retry(nonce) {
            return false;
        }
        let mut owed = self.owed_a_pass.lock().unwrap_or_else(|e| e.into_inner());
        if owed.remove(key_thumbprint) {
            return false;
        }
        // Two random bytes keep the modulo bias below 0.1 %.
        let reject = u16::from_be_bytes(random_bytes::<2>()) % 100 < u16::from(percent);
        if reject {
            if owed.len() >= MAX_OWED {
                owed.clear();
            }
            owed.insert(key_thumbprint.to_owned());
        }
        reject
    }

    pub fn issue(&self, now: OffsetDateTime) -> String {
        self.issue_marked(now, false)
    }

    /// A nonce handed out with a `badNonce` problem. `testing.nonce_reject_percent` never
    /// rejects it, so a client that retries once always makes progress (python-acme, and so
    /// certbot, retries a `badNonce` exactly once).
    pub fn issue_for_retry(&self, now: OffsetDateTime) -> String {
        self.issue_marked(now, true)
    }

    /// Whether an authentic nonce (one that passed `check`) was issued by `issue_for_retry`.
    pub fn is_for_retry(nonce: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(nonce.as_bytes())
            .ok()
            .and_then(|bytes| bytes.get(RETRY_FLAG_BYTE).copied())
            .is_some_and(|b| b & 1 == 1)
    }

    /// The mark lives in the low bit of the first random byte, under the HMAC.
    fn issue_marked(&self, now: OffsetDateTime, for_retry: bool) -> String {
        let expires = (now + self.lifetime).unix_timestamp();
        let mut bytes = Vec::with_capacity(BODY_LEN + TAG_LEN);
        bytes.extend_from_slice(&expires.to_be_bytes());
        let mut random = random_bytes::<16>();
        random[0] = (random[0] & !1) | u8::from(for_retry);
        bytes.extend_from_slice(&random);
        let tag = hmac::sign(&self.key, &bytes);
        bytes.extend_from_slice(tag.as_ref());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Checks that `nonce` is one of ours and has not expired; returns its expiry, which the
    /// caller records when it redeems it.
    pub fn check(&self, nonce: &str, now: OffsetDateTime) -> Result<OffsetDateTime, &'static str> {
        let bytes = URL_SAFE_NO_PAD
            .decode(nonce.as_bytes())
            .map_err(|_| "the nonce is not base64url")?;
        if bytes.len() != BODY_LEN + TAG_LEN {
            return Err("the nonce was not issued by this server");
        }
        let (body, tag) = bytes.split_at(BODY_LEN);
        hmac::verify(&self.key, body, tag)
            .map_err(|_| "the nonce was not issued by this server")?;
        let mut expiry = [0u8; 8];
        expiry.copy_from_slice(&body[..8]);
        let expires = OffsetDateTime::from_unix_timestamp(i64::from_be_bytes(expiry))
            .map_err(|_| "the nonce was not issued by this server")?;
        if now >= expires {
            return Err("the nonce has expired");
        }
        Ok(expires)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_nonces_check_until_they_expire() {
        let service = NonceService::new(b"secret", Duration::hours(1));
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let nonce = service.issue(now);
        assert_eq!(service.check(&nonce, now), Ok(now + Duration::hours(1)));
        assert_eq!(
            service.check(&nonce, now + Duration::hours(1)),
            Err("the nonce has expired")
        );
        assert_ne!(service.issue(now), nonce);
    }

    #[test]
    fn retry_nonces_are_marked_and_still_check() {
        let service = NonceService::new(b"secret", Duration::hours(1));
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        for _ in 0..16 {
            let plain = service.issue(now);
            let retry = service.issue_for_retry(now);
            assert!(!NonceService::is_for_retry(&plain));
            assert!(NonceService::is_for_retry(&retry));
            assert!(service.check(&retry, now).is_ok());
        }
    }

    #[test]
    fn testing_rejection_never_hits_the_same_key_twice_in_a_row() {
        let service = NonceService::new(b"secret", Duration::hours(1));
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        for _ in 0..8 {
            assert!(service.reject_for_testing(&service.issue(now), "k", 100));
            assert!(!service.reject_for_testing(&service.issue(now), "k", 100));
        }
        assert!(!service.reject_for_testing(&service.issue_for_retry(now), "other", 100));
        assert!(!service.reject_for_testing(&service.issue(now), "k", 0));
    }

    #[test]
    fn foreign_and_garbled_nonces_are_refused() {
        let ours = NonceService::new(b"secret", Duration::hours(1));
        let theirs = NonceService::new(b"other", Duration::hours(1));
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert!(ours.check(&theirs.issue(now), now).is_err());
        assert!(ours.check("not base64!", now).is_err());
        assert!(ours.check("AAAA", now).is_err());
        let mut tampered = ours.issue(now).into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        assert!(
            ours.check(std::str::from_utf8(&tampered).unwrap(), now)
                .is_err()
        );
    }
}
