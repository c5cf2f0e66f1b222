//! Accounts as last read or written, so that a `kid` request does not open a read transaction
//! for its account (issue 9). In WAL mode every read transaction that follows a commit drops
//! the reader's page cache and its file mapping, so the account read cost more than any other
//! per request (about 6 % of the server's CPU per certificate, BENCHMARKS.md).
//!
//! Exact, not a guess: one process owns the database file (see the module above), and every
//! change to an account row goes through this store, which forgets the account once its write
//! has ended. A read that overlaps such a write does not fill the cache: the generation it saw
//! when it started has moved on by the time it would store what it read, which may be the old
//! row.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::storage::Account;

/// Bounds the memory: when full, the cache starts over (a miss costs one read).
const CAPACITY: usize = 16_384;

#[derive(Default)]
pub(super) struct AccountCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    accounts: HashMap<String, Account>,
    /// Moves on at every forgotten write; a read may store its row only if it has not.
    generation: u64,
}

impl AccountCache {
    pub(super) fn get(&self, id: &str) -> Option<Account> {
        self.lock().accounts.get(id).cloned()
    }

    /// To be taken before reading an account from the database, for [`Self::store`].
    pub(super) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Keeps `account`, read from the database by a read that began at `generation`, unless
    /// an account write ended since then.
    pub(super) fn store(&self, generation: u64, account: &Account) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.accounts.len() >= CAPACITY && !inner.accounts.contains_key(&account.id) {
            inner.accounts.clear();
        }
        inner.accounts.insert(account.id.clone(), account.clone());
    }

    /// After a write to account `id` has ended (committed or not).
    pub(super) fn forget(&self, id: &str) {
        let mut inner = self.lock();
        inner.accounts.remove(id);
        inner.generation += 1;
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section is a lookup, an insert or a removal: a panic cannot leave
        // the map half-changed.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acme::AccountStatus;

    fn account(id: &str, status: AccountStatus) -> Account {
        Account {
            id: id.into(),
            key_thumbprint: format!("tp-{id}"),
            jwk: serde_json::json!({"kty": "EC"}),
            contact: Vec::new(),
            status,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            provisioner: "acme".into(),
        }
    }

    #[test]
    fn keeps_what_a_read_found_and_forgets_it_after_a_write() {
        let cache = AccountCache::default();
        assert!(cache.get("a").is_none());
        let generation = cache.generation();
        cache.store(generation, &account("a", AccountStatus::Valid));
        assert_eq!(cache.get("a").unwrap().status, AccountStatus::Valid);
        cache.forget("a");
        assert!(cache.get("a").is_none());
    }

    #[test]
    fn a_read_that_overlapped_a_write_is_not_kept() {
        let cache = AccountCache::default();
        // The read starts, a deactivation ends, then the read (maybe of the old row) returns.
        let generation = cache.generation();
        cache.forget("a");
        cache.store(generation, &account("a", AccountStatus::Valid));
        assert!(cache.get("a").is_none());
        // A read that starts after the write may keep its row.
        let generation = cache.generation();
        cache.store(generation, &account("a", AccountStatus::Deactivated));
        assert_eq!(cache.get("a").unwrap().status, AccountStatus::Deactivated);
    }

    #[test]
    fn stays_bounded() {
        let cache = AccountCache::default();
        for i in 0..CAPACITY + 1 {
            let generation = cache.generation();
            cache.store(generation, &account(&i.to_string(), AccountStatus::Valid));
        }
        assert!(cache.lock().accounts.len() <= CAPACITY);
        assert!(cache.get(&CAPACITY.to_string()).is_some());
    }
}
