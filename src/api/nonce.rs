//! Replay nonces (RFC 8555 §6.5). Issuing one writes nothing: a nonce is an expiry time and
//! random bytes, authenticated with an HMAC key.
//!
//! Where redemptions are recorded depends on the database:
//! - PostgreSQL (replicas): the key is shared through the database, and redeeming a nonce
//!   inserts it, so it is accepted once by any replica.
//! - SQLite (one process): redemptions are kept in memory ([`Ledger`]), which saves a durable
//!   commit on every request. The key is then made afresh at each start, so a nonce issued
//!   before a restart, or by another process on the same file, is `badNonce` (clients fetch a
//!   new one), never a second use.

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
    /// `Some` when redemptions are kept in memory (SQLite).
    ledger: Option<Ledger>,
    /// Keys (JWK thumbprints) whose last request `testing.nonce_reject_percent` rejected: their
    /// next request is spared, so a client that retries once always progresses, whichever
    /// nonce it retries with (python-acme drops the nonce of an error and fetches a new one).
    owed_a_pass: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Where a nonce of an in-memory service carries its sequence number: the last 8 of its 16
/// random bytes.
const SEQUENCE_AT: usize = 16;

/// Redemptions kept in memory: one bit per nonce, for the last [`Ledger::WINDOW`] nonces
/// issued, in a ring indexed by sequence number. Issuing clears the nonce's bit (the slot's
/// previous nonce has left the window); redeeming sets it, and finds it set if it was used.
/// A nonce older than the window counts as used: at a thousand requests a second that is
/// over two hours, longer than any nonce lives.
pub struct Ledger {
    next: std::sync::atomic::AtomicU64,
    used: Box<[std::sync::atomic::AtomicU64]>,
}

impl Ledger {
    /// Nonces remembered: 2^23 bits, 1 MiB.
    pub const WINDOW: u64 = 1 << 23;

    fn new() -> Self {
        Ledger {
            next: std::sync::atomic::AtomicU64::new(0),
            used: (0..Self::WINDOW / 64)
                .map(|_| std::sync::atomic::AtomicU64::new(0))
                .collect(),
        }
    }

    fn slot(&self, sequence: u64) -> (&std::sync::atomic::AtomicU64, u64) {
        let bit = sequence % Self::WINDOW;
        (&self.used[(bit / 64) as usize], 1 << (bit % 64))
    }

    fn issue(&self) -> u64 {
        use std::sync::atomic::Ordering::SeqCst;
        let sequence = self.next.fetch_add(1, SeqCst);
        let (word, mask) = self.slot(sequence);
        word.fetch_and(!mask, SeqCst);
        sequence
    }

    fn redeem(&self, sequence: u64) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        let next = self.next.load(SeqCst);
        if sequence >= next || next - sequence > Self::WINDOW {
            return false;
        }
        let (word, mask) = self.slot(sequence);
        let first = word.fetch_or(mask, SeqCst) & mask == 0;
        // Issuing may have moved the window past it meanwhile (a slot reused): then it is old.
        first && self.next.load(SeqCst) - sequence <= Self::WINDOW
    }
}

/// Bound on remembered keys; the set is only used by a testing knob.
const MAX_OWED: usize = 10_000;

impl NonceService {
    /// Nonces whose redemptions the database records (shared by replicas).
    pub fn new(secret: &[u8], lifetime: Duration) -> Self {
        NonceService {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            lifetime,
            ledger: None,
            owed_a_pass: std::sync::Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// Nonces of this process only: a key of its own, redemptions in memory.
    pub fn in_memory(lifetime: Duration) -> Self {
        NonceService {
            ledger: Some(Ledger::new()),
            ..Self::new(&random_bytes::<32>(), lifetime)
        }
    }

    /// Redeems an authentic nonce (one that passed [`NonceService::check`]) in memory: `Some`
    /// true the first time, false after; `None` when the database records redemptions.
    pub fn redeem_in_memory(&self, nonce: &str) -> Option<bool> {
        let ledger = self.ledger.as_ref()?;
        let bytes = URL_SAFE_NO_PAD.decode(nonce.as_bytes()).ok()?;
        let sequence = bytes.get(SEQUENCE_AT..SEQUENCE_AT + 8)?;
        let mut number = [0u8; 8];
        number.copy_from_slice(sequence);
        Some(ledger.redeem(u64::from_be_bytes(number)))
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
        if let Some(ledger) = &self.ledger {
            // Under the HMAC like the rest: a client cannot choose its sequence number.
            random[SEQUENCE_AT - 8..].copy_from_slice(&ledger.issue().to_be_bytes());
        }
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
    fn in_memory_nonces_redeem_once() {
        let service = NonceService::in_memory(Duration::hours(1));
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let (a, b) = (service.issue(now), service.issue_for_retry(now));
        assert!(service.check(&a, now).is_ok() && service.check(&b, now).is_ok());
        assert!(NonceService::is_for_retry(&b) && !NonceService::is_for_retry(&a));
        assert_eq!(service.redeem_in_memory(&b), Some(true));
        assert_eq!(service.redeem_in_memory(&a), Some(true));
        assert_eq!(service.redeem_in_memory(&a), Some(false));
        assert_eq!(service.redeem_in_memory(&b), Some(false));
        // Another process (another key) never accepts them.
        let other = NonceService::in_memory(Duration::hours(1));
        assert!(other.check(&a, now).is_err());
        // The database-backed service leaves redemption to the database.
        let shared = NonceService::new(b"secret", Duration::hours(1));
        assert_eq!(shared.redeem_in_memory(&shared.issue(now)), None);
    }

    #[test]
    fn the_ledger_forgets_only_what_left_its_window() {
        let ledger = Ledger::new();
        let first = ledger.issue();
        assert!(!ledger.redeem(first + 1), "not issued yet");
        assert!(ledger.redeem(first));
        // A full window later the slot belongs to a new nonce; the old one counts as used.
        for _ in 0..Ledger::WINDOW {
            ledger.issue();
        }
        assert!(!ledger.redeem(first));
        let last = ledger.next.load(std::sync::atomic::Ordering::SeqCst) - 1;
        assert_eq!(last % Ledger::WINDOW, first % Ledger::WINDOW);
        assert!(
            ledger.redeem(last),
            "its slot was cleared when it was issued"
        );
        assert!(!ledger.redeem(last));
    }

    #[test]
    fn racing_redemptions_of_one_nonce_have_one_winner() {
        let ledger = std::sync::Arc::new(Ledger::new());
        let sequence = ledger.issue();
        let winners: usize = (0..8)
            .map(|_| {
                let ledger = ledger.clone();
                std::thread::spawn(move || usize::from(ledger.redeem(sequence)))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(winners, 1);
    }

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
