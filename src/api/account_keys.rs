//! The keys of recently seen accounts, for verifying a `kid` request's signature without a
//! database read first (issue 9).
//!
//! Only the key is cached, and only as a guess. The account row as it is *now* comes back in
//! the same statement that redeems the request's nonce (`Store::redeem_nonce_reading_account`).
//! Its status and provisioner are checked from that row. A key changed since it was cached
//! (a key rollover, maybe on another replica) is caught because the signature is checked again
//! with the stored key. So a stale entry can cost a retry, but it never lets a request through.
//! Used where nonces are redeemed in a shared database; on SQLite the nonce never leaves
//! memory, so there is no statement to fold the read into.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::jose::Jwk;

/// Bounds the memory: when full, the cache starts over (a miss costs one read).
const CAPACITY: usize = 16_384;

#[derive(Default)]
pub struct AccountKeys {
    keys: Mutex<HashMap<String, Jwk>>,
}

impl AccountKeys {
    pub fn get(&self, account_id: &str) -> Option<Jwk> {
        self.lock().get(account_id).cloned()
    }

    pub fn remember(&self, account_id: &str, key: &Jwk) {
        let mut keys = self.lock();
        if keys.len() >= CAPACITY && !keys.contains_key(account_id) {
            keys.clear();
        }
        keys.insert(account_id.to_owned(), key.clone());
    }

    pub fn forget(&self, account_id: &str) {
        self.lock().remove(account_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Jwk>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(x: &str) -> Jwk {
        serde_json::from_value(serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": x, "y": "y"
        }))
        .unwrap()
    }

    #[test]
    fn remembers_forgets_and_stays_bounded() {
        let keys = AccountKeys::default();
        assert_eq!(keys.get("a"), None);
        keys.remember("a", &key("1"));
        assert_eq!(keys.get("a"), Some(key("1")));
        keys.remember("a", &key("2"));
        assert_eq!(keys.get("a"), Some(key("2")));
        keys.forget("a");
        assert_eq!(keys.get("a"), None);
        for n in 0..CAPACITY + 10 {
            keys.remember(&n.to_string(), &key("1"));
        }
        assert!(keys.lock().len() <= CAPACITY);
    }
}
