//! Group commit for nonce redemptions on PostgreSQL (issue 9).
//!
//! Every signed request redeems one nonce, about seven per certificate. One `INSERT` and one
//! commit each made the nonce table the busiest writer. Here the redemptions that arrive while
//! a batch is in flight wait for the next one: one statement and one commit for all of them.
//! Durability is unchanged, since a request gets its answer only after its row is committed.
//! Under light load a redemption finds a free slot and runs at once, so it does not wait.
//!
//! A redemption may also ask for an account row. The same statement reads it, so a request
//! verified with a cached key still sees the account as it is now, without a second round
//! trip (api::account_keys).

use sqlx::PgPool;
use sqlx::Row;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::rows;
use super::{Account, StoreError, StoreResult};

/// Batches in flight at once. With one, a slow commit would stall every request; with two, a
/// new batch forms while the other commits.
const IN_FLIGHT: usize = 2;
/// Keeps one statement's arrays bounded.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<StoreResult<(bool, Option<Account>)>>;

struct Pending {
    nonce: String,
    expires_at: i64,
    account_id: Option<String>,
    reply: Reply,
}

#[derive(Clone)]
pub(super) struct NonceBatcher {
    queue: mpsc::UnboundedSender<Pending>,
}

impl NonceBatcher {
    /// Starts the batching task. It ends when the last `NonceBatcher` clone is dropped.
    pub(super) fn start(pool: PgPool) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, receiver));
        Self { queue }
    }

    /// `true` the first time `nonce` is redeemed by any replica, `false` after that; and the
    /// account `account_id` if one was asked for and exists.
    pub(super) async fn redeem(
        &self,
        nonce: &str,
        expires_at: i64,
        account_id: Option<&str>,
    ) -> StoreResult<(bool, Option<Account>)> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            nonce: nonce.to_owned(),
            expires_at,
            account_id: account_id.map(str::to_owned),
            reply,
        };
        self.queue
            .send(pending)
            .map_err(|_| other("the nonce batcher has stopped"))?;
        answer
            .await
            .map_err(|_| other("the nonce batcher dropped a redemption"))?
    }
}

async fn run(pool: PgPool, mut receiver: mpsc::UnboundedReceiver<Pending>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        // A slot first, then the batch: what queues while every slot is busy goes together.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let Some(first) = receiver.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            commit(&pool, batch).await;
            drop(slot);
        });
    }
}

async fn commit(pool: &PgPool, mut batch: Vec<Pending>) {
    // Sorted, so two batches that share a nonce (a replay) take its row lock in the same
    // order and cannot deadlock.
    batch.sort_by(|a, b| a.nonce.cmp(&b.nonce));
    let mut nonces = Vec::with_capacity(batch.len());
    let mut expiries = Vec::with_capacity(batch.len());
    for pending in &batch {
        if nonces.last() != Some(&pending.nonce) {
            nonces.push(pending.nonce.clone());
            expiries.push(pending.expires_at);
        }
    }
    let mut account_ids: Vec<&str> = batch
        .iter()
        .filter_map(|p| p.account_id.as_deref())
        .collect();
    account_ids.sort_unstable();
    account_ids.dedup();
    // One result set: a row per fresh nonce (`nonce` set), then a row per account asked for.
    let found = sqlx::query(
        "WITH inserted AS (INSERT INTO nonces (nonce, expires_at) \
           SELECT * FROM UNNEST($1::text[], $2::bigint[]) \
           ON CONFLICT (nonce) DO NOTHING RETURNING nonce) \
         SELECT nonce, NULL AS id, NULL AS key_thumbprint, NULL AS jwk, NULL AS contact, \
           NULL AS status, NULL::bigint AS created_at, NULL AS provisioner FROM inserted \
         UNION ALL \
         SELECT NULL, id, key_thumbprint, jwk, contact, status, created_at, provisioner \
           FROM accounts WHERE id = ANY($3)",
    )
    .bind(&nonces)
    .bind(&expiries)
    .bind(&account_ids)
    .fetch_all(pool)
    .await;
    let parsed = found.map_err(StoreError::from).and_then(|found| {
        let mut fresh = HashSet::new();
        let mut accounts = HashMap::new();
        for row in &found {
            match row.try_get::<Option<String>, _>("nonce")? {
                Some(nonce) => {
                    fresh.insert(nonce);
                }
                None => {
                    let account = rows::account(row)?;
                    accounts.insert(account.id.clone(), account);
                }
            }
        }
        Ok((fresh, accounts))
    });
    match parsed {
        Ok((mut fresh, accounts)) => {
            // The first request for a nonce in this batch wins; a copy in the same batch
            // finds it already taken, as it would one batch later.
            for pending in batch {
                let won = fresh.remove(&pending.nonce);
                let account = pending
                    .account_id
                    .as_deref()
                    .and_then(|id| accounts.get(id).cloned());
                let _ = pending.reply.send(Ok((won, account)));
            }
        }
        Err(e) => {
            let message = e.to_string();
            for pending in batch {
                let _ = pending.reply.send(Err(other(message.clone())));
            }
        }
    }
}

fn other(message: impl Into<String>) -> StoreError {
    StoreError::Other(message.into().into())
}
