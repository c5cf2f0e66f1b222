//! SQLite backend (the embedded default).
//!
//! One file, WAL journal, durable commits (`synchronous=FULL`). The connections are rusqlite's,
//! driven as `engine` describes: reads on the calling thread, writes through one writer
//! thread that commits every waiting write in one transaction. One process owns the file at a
//! time (replicas share PostgreSQL), so the writer thread is the only writer: guarded updates
//! still decide races between requests, each in its own savepoint.
//!
//! rusqlite, not sqlx, drives SQLite: sqlx-sqlite hands every statement to a worker thread and
//! back, which cost about half of the server's CPU per certificate (BENCHMARKS.md). The SQL
//! is the same; PostgreSQL stays on sqlx.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use rusqlite::{Connection, Params, Row, params};
use time::OffsetDateTime;

use super::jobs_sql;
use super::rows::{self, Columns, opt_json, opt_secs, secs, to_json};
use super::{
    Account, AccountCursor, AuditEvent, AuditFilter, AuditRecord, Authorization, Certificate,
    CertificateCounts, CertificateCursor, CertificateFilter, CertificateRecord, CertificateStatus,
    Challenge, EabKey, EabRefusal, Order, OrderCursor, OverdueRenewal, Purged, RateLimitOutcome,
    RenewalCounts, RenewalQuery, RenewalState, RevokedCertificate, Store, StoreError, StoreResult,
};
use crate::acme::{ChallengeStatus, Identifier, Problem};

mod accounts;
mod engine;
mod migrate;

use accounts::AccountCache;
use engine::{Engine, Target};

pub struct SqliteStore {
    engine: Arc<Engine>,
    accounts: Arc<AccountCache>,
}

impl SqliteStore {
    /// Opens (creating it if missing, unless the URL sets `mode=`) the database file named by
    /// `url`, e.g. `sqlite:///var/lib/mayfly/mayfly.db?mode=rwc`, and applies migrations.
    /// `sqlite::memory:` gives a private in-memory database that lives as long as the store.
    /// `max_connections` bounds the connections: the writer and the idle readers.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let target = Target::parse(url)?;
        // Opening and migrating touch the disk: off the runtime's threads.
        let engine = tokio::task::spawn_blocking(move || {
            Engine::open(target, max_connections, migrate::run)
        })
        .await
        .map_err(rows::other)??;
        Ok(Self {
            engine: Arc::new(engine),
            accounts: Arc::default(),
        })
    }
}

impl SqliteStore {
    /// A write to account `id`'s row, after which its cached row is forgotten. It runs on a
    /// task of its own: a caller that goes away (a client that hangs up) cannot cancel the
    /// forgetting, while the queued write itself may still commit.
    async fn account_write<T, F>(&self, id: String, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let engine = Arc::clone(&self.engine);
        let accounts = Arc::clone(&self.accounts);
        tokio::spawn(async move {
            let result = engine.write(work).await;
            accounts.forget(&id);
            result
        })
        .await
        .map_err(rows::other)?
    }

    /// The row `sql` finds for `key` (its one parameter), decoded; `NotFound` if none.
    async fn read_one<T: Send + 'static>(
        &self,
        sql: &'static str,
        key: &str,
        decode: fn(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let key = key.to_owned();
        self.engine.read(move |c| one(c, sql, [&key], decode)).await
    }
}

impl Columns for Row<'_> {
    fn text(&self, column: &str) -> StoreResult<String> {
        Ok(self.get(column)?)
    }
    fn opt_text(&self, column: &str) -> StoreResult<Option<String>> {
        Ok(self.get(column)?)
    }
    fn int(&self, column: &str) -> StoreResult<i64> {
        Ok(self.get(column)?)
    }
    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>> {
        Ok(self.get(column)?)
    }
    fn flag(&self, column: &str) -> StoreResult<bool> {
        Ok(self.get(column)?)
    }
}

/// Runs a statement (cached), returning the rows it changed.
fn execute(c: &Connection, sql: &str, params: impl Params) -> StoreResult<u64> {
    Ok(c.prepare_cached(sql)?.execute(params)? as u64)
}

/// The first row, decoded; `NotFound` if there is none.
fn one<T>(
    c: &Connection,
    sql: &str,
    params: impl Params,
    decode: impl FnOnce(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<T> {
    optional(c, sql, params, decode)?.ok_or(StoreError::NotFound)
}

fn optional<T>(
    c: &Connection,
    sql: &str,
    params: impl Params,
    decode: impl FnOnce(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut statement = c.prepare_cached(sql)?;
    let mut found = statement.query(params)?;
    match found.next()? {
        Some(row) => Ok(Some(decode(row)?)),
        None => Ok(None),
    }
}

fn all<T>(
    c: &Connection,
    sql: &str,
    params: impl Params,
    mut decode: impl FnMut(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut statement = c.prepare_cached(sql)?;
    let mut found = statement.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = found.next()? {
        out.push(decode(row)?);
    }
    Ok(out)
}

fn first_int(row: &Row<'_>) -> StoreResult<i64> {
    Ok(row.get(0)?)
}

fn first_text(row: &Row<'_>) -> StoreResult<String> {
    Ok(row.get(0)?)
}

/// The shared jobs SQL numbers its parameters `$N`, which SQLite reads as names, indexed in the
/// order they first appear; `?N` is SQLite's positional form.
fn numbered(sql: &str) -> String {
    sql.replace('$', "?")
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.engine
            .read(|c| one(c, "SELECT 1", [], first_int).map(drop))
            .await
    }

    async fn close(&self) {
        self.engine.close().await;
    }

    async fn setting_or_insert(&self, key: &str, value: &str) -> StoreResult<String> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.engine
            .write(move |c| {
                execute(
                    c,
                    "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                    params![key, value],
                )?;
                one(
                    c,
                    "SELECT value FROM settings WHERE key = ?",
                    [&key],
                    first_text,
                )
            })
            .await
    }

    async fn redeem_nonce(&self, nonce: &str, expires_at: OffsetDateTime) -> StoreResult<bool> {
        let nonce = nonce.to_owned();
        // The primary key decides: the first insert wins, every later one does nothing.
        self.engine
            .write(move |c| {
                Ok(execute(
                    c,
                    "INSERT INTO nonces (nonce, expires_at) VALUES (?, ?) \
                     ON CONFLICT (nonce) DO NOTHING",
                    params![nonce, secs(expires_at)],
                )? == 1)
            })
            .await
    }

    async fn redeem_nonce_reading_account(
        &self,
        nonce: &str,
        expires_at: OffsetDateTime,
        account_id: &str,
    ) -> StoreResult<(bool, Option<Account>)> {
        // Two calls: one process has its nonces in memory and rarely gets here.
        let fresh = self.redeem_nonce(nonce, expires_at).await?;
        match self.account(account_id).await {
            Ok(account) => Ok((fresh, Some(account))),
            Err(StoreError::NotFound) => Ok((fresh, None)),
            Err(e) => Err(e),
        }
    }

    async fn prune_nonces(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.engine
            .write(move |c| execute(c, "DELETE FROM nonces WHERE expires_at < ?", [secs(now)]))
            .await
    }

    async fn use_token(
        &self,
        provisioner: &str,
        token_id: &str,
        expires_at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let (provisioner, token_id) = (provisioner.to_owned(), token_id.to_owned());
        // As redeem_nonce: the primary key decides, the first insert wins.
        self.engine
            .write(move |c| {
                Ok(execute(
                    c,
                    "INSERT INTO used_tokens (provisioner, token_id, expires_at) VALUES (?, ?, ?) \
                     ON CONFLICT (provisioner, token_id) DO NOTHING",
                    params![provisioner, token_id, secs(expires_at)],
                )? == 1)
            })
            .await
    }

    async fn prune_used_tokens(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.engine
            .write(move |c| {
                execute(
                    c,
                    "DELETE FROM used_tokens WHERE expires_at < ?",
                    [secs(now)],
                )
            })
            .await
    }

    async fn insert_account(&self, account: &Account) -> StoreResult<()> {
        let row = AccountRow::new(account)?;
        self.engine
            .write(move |c| {
                execute(
                    c,
                    "INSERT INTO accounts (id, key_thumbprint, jwk, contact, status, created_at, \
                     provisioner) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    params![
                        row.id,
                        row.key_thumbprint,
                        row.jwk,
                        row.contact,
                        row.status,
                        row.created_at,
                        row.provisioner
                    ],
                )
                .map(drop)
            })
            .await
    }

    async fn account(&self, id: &str) -> StoreResult<Account> {
        if let Some(account) = self.accounts.get(id) {
            return Ok(account);
        }
        let generation = self.accounts.generation();
        let account = self
            .read_one(
                "SELECT id, key_thumbprint, jwk, contact, status, created_at, provisioner \
                 FROM accounts WHERE id = ?",
                id,
                |r| rows::account(r),
            )
            .await?;
        self.accounts.store(generation, &account);
        Ok(account)
    }

    async fn account_by_thumbprint(&self, thumbprint: &str) -> StoreResult<Account> {
        self.read_one(
            "SELECT id, key_thumbprint, jwk, contact, status, created_at, provisioner \
             FROM accounts WHERE key_thumbprint = ?",
            thumbprint,
            |r| rows::account(r),
        )
        .await
    }

    // --- Accounts (issue 3) ---

    async fn update_account_contact(&self, id: &str, contact: &[String]) -> StoreResult<()> {
        let (id, contact) = (id.to_owned(), to_json(contact)?);
        self.account_write(id.clone(), move |c| {
            let changed = execute(
                c,
                "UPDATE accounts SET contact = ? WHERE id = ?",
                params![contact, id],
            )?;
            if changed != 1 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn deactivate_account(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.account_write(id.clone(), move |c| {
            guarded(
                c,
                "UPDATE accounts SET status = 'deactivated' WHERE id = ? AND status = 'valid'",
                [&id],
                "SELECT 1 FROM accounts WHERE id = ?",
                &id,
            )
        })
        .await
    }

    async fn change_account_key(
        &self,
        id: &str,
        old_thumbprint: &str,
        new_thumbprint: &str,
        new_jwk: &serde_json::Value,
    ) -> StoreResult<bool> {
        let (id, old, new) = (
            id.to_owned(),
            old_thumbprint.to_owned(),
            new_thumbprint.to_owned(),
        );
        let jwk = to_json(new_jwk)?;
        self.account_write(id.clone(), move |c| {
            // The unique index on key_thumbprint turns "the new key is in use" into
            // Conflict.
            guarded(
                c,
                "UPDATE accounts SET key_thumbprint = ?, jwk = ? \
                 WHERE id = ? AND key_thumbprint = ?",
                params![new, jwk, id, old],
                "SELECT 1 FROM accounts WHERE id = ?",
                &id,
            )
        })
        .await
    }

    async fn orders_by_account(
        &self,
        account_id: &str,
        after: Option<&OrderCursor>,
        now: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<Order>> {
        // Without a cursor, start above every possible position.
        let (after_secs, after_id) = after.map_or((i64::MAX, String::new()), |c| {
            (secs(c.created_at), c.id.clone())
        });
        let account_id = account_id.to_owned();
        self.engine
            .read(move |c| {
                let found = all(
                    c,
                    "SELECT id, account_id, identifiers, not_before, not_after, expires, \
                     created_at, processing_since, certificate_id, error, profile, replaces \
                     FROM orders WHERE account_id = ? AND error IS NULL \
                     AND (certificate_id IS NOT NULL OR processing_since IS NOT NULL \
                          OR expires > ?) \
                     AND (created_at, id) < (?, ?) \
                     ORDER BY created_at DESC, id DESC LIMIT ?",
                    params![
                        account_id,
                        secs(now),
                        after_secs,
                        after_id,
                        i64::from(limit)
                    ],
                    |r| rows::order(r, Vec::new()),
                )?;
                let ids: Vec<&str> = found.iter().map(|o| o.id.as_str()).collect();
                let pairs = all(
                    c,
                    "SELECT order_id, authorization_id FROM order_authorizations \
                     WHERE order_id IN (SELECT value FROM json_each(?)) \
                     ORDER BY order_id, position",
                    [to_json(&ids)?],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let mut by_order = rows::authorization_ids_by_order(pairs);
                Ok(found
                    .into_iter()
                    .map(|mut order| {
                        order.authorization_ids = by_order.remove(&order.id).unwrap_or_default();
                        order
                    })
                    .collect())
            })
            .await
    }

    async fn insert_eab_key(&self, key: &EabKey) -> StoreResult<()> {
        let key = key.clone();
        let use_count = i64::try_from(key.use_count).map_err(rows::other)?;
        self.engine
            .write(move |c| {
                execute(
                    c,
                    "INSERT INTO eab_keys (id, hmac_key, label, reusable, created_at, revoked_at, \
                     use_count, provisioner) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    params![
                        key.id,
                        crate::jose::base64url(&key.hmac_key),
                        key.label,
                        key.reusable,
                        secs(key.created_at),
                        opt_secs(key.revoked_at),
                        use_count,
                        key.provisioner
                    ],
                )
                .map(drop)
            })
            .await
    }

    async fn eab_key(&self, id: &str) -> StoreResult<EabKey> {
        let id = id.to_owned();
        self.engine.read(move |c| eab_key(c, &id)).await
    }

    async fn eab_keys(&self) -> StoreResult<Vec<EabKey>> {
        self.engine
            .read(|c| {
                all(
                    c,
                    "SELECT id, hmac_key, label, reusable, created_at, revoked_at, use_count, \
                     provisioner FROM eab_keys ORDER BY created_at, id",
                    [],
                    |r| rows::eab_key(r),
                )
            })
            .await
    }

    async fn revoke_eab_key(&self, id: &str, at: OffsetDateTime) -> StoreResult<bool> {
        let id = id.to_owned();
        self.engine
            .write(move |c| {
                guarded(
                    c,
                    "UPDATE eab_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                    params![secs(at), id],
                    "SELECT 1 FROM eab_keys WHERE id = ?",
                    &id,
                )
            })
            .await
    }

    async fn insert_account_with_eab(
        &self,
        account: &Account,
        eab_key_id: &str,
    ) -> StoreResult<Result<(), EabRefusal>> {
        let row = AccountRow::new(account)?;
        let eab_key_id = eab_key_id.to_owned();
        self.engine
            .write(move |c| {
                // Guarded, so of two accounts racing for a single-use key exactly one binds.
                let bound = execute(
                    c,
                    "UPDATE eab_keys SET use_count = use_count + 1 \
                     WHERE id = ? AND revoked_at IS NULL AND (reusable OR use_count = 0)",
                    [&eab_key_id],
                )? == 1;
                if !bound {
                    let revoked: Option<Option<i64>> = optional(
                        c,
                        "SELECT revoked_at FROM eab_keys WHERE id = ?",
                        [&eab_key_id],
                        |r| Ok(r.get(0)?),
                    )?;
                    return Ok(Err(rows::eab_refusal(revoked)));
                }
                execute(
                    c,
                    "INSERT INTO accounts (id, key_thumbprint, jwk, contact, status, created_at, \
                     eab_key_id, provisioner) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    params![
                        row.id,
                        row.key_thumbprint,
                        row.jwk,
                        row.contact,
                        row.status,
                        row.created_at,
                        eab_key_id,
                        row.provisioner
                    ],
                )?;
                Ok(Ok(()))
            })
            .await
    }

    async fn account_eab_key(&self, account_id: &str) -> StoreResult<Option<EabKey>> {
        let account_id = account_id.to_owned();
        self.engine
            .read(move |c| {
                let eab_key_id: Option<String> = one(
                    c,
                    "SELECT eab_key_id FROM accounts WHERE id = ?",
                    [&account_id],
                    |r| Ok(r.get(0)?),
                )?;
                eab_key_id.map(|id| eab_key(c, &id)).transpose()
            })
            .await
    }

    // --- end of accounts (issue 3) ---

    async fn insert_order(
        &self,
        order: &Order,
        new_authorizations: &[Authorization],
    ) -> StoreResult<()> {
        rows::check_nesting(new_authorizations)?;
        let rows = OrderRows::new(order, new_authorizations)?;
        self.engine.write(move |c| rows.insert(c)).await
    }

    async fn order(&self, id: &str) -> StoreResult<Order> {
        let id = id.to_owned();
        self.engine.read(move |c| order(c, &id)).await
    }

    async fn order_with_authorizations(
        &self,
        id: &str,
    ) -> StoreResult<(Order, Vec<Authorization>)> {
        // One trip to a reader thread instead of two.
        let id = id.to_owned();
        self.engine
            .read(move |c| {
                let order = order(c, &id)?;
                let authorizations = authorizations(c, &order.authorization_ids)?;
                Ok((order, authorizations))
            })
            .await
    }

    async fn authorization(&self, id: &str) -> StoreResult<Authorization> {
        let ids = vec![id.to_owned()];
        let mut found = self.engine.read(move |c| authorizations(c, &ids)).await?;
        found.pop().ok_or(StoreError::NotFound)
    }

    async fn authorizations(&self, ids: &[String]) -> StoreResult<Vec<Authorization>> {
        let ids = ids.to_vec();
        self.engine.read(move |c| authorizations(c, &ids)).await
    }

    async fn authorization_of_challenge(&self, challenge_id: &str) -> StoreResult<Authorization> {
        let challenge_id = challenge_id.to_owned();
        self.engine
            .read(move |c| {
                let authorization_id = one(
                    c,
                    "SELECT authorization_id FROM challenges WHERE id = ?",
                    [&challenge_id],
                    first_text,
                )?;
                let mut found = authorizations(c, &[authorization_id])?;
                found.pop().ok_or(StoreError::NotFound)
            })
            .await
    }

    async fn challenge(&self, id: &str) -> StoreResult<Challenge> {
        self.read_one(
            "SELECT id, authorization_id, kind, token, status, validated_at, error, \
             token_identity FROM challenges WHERE id = ?",
            id,
            |r| rows::challenge(r),
        )
        .await
    }

    async fn valid_authorization(
        &self,
        account_id: &str,
        identifier: &Identifier,
        valid_at: OffsetDateTime,
    ) -> StoreResult<Option<Authorization>> {
        let (account_id, identifier) = (account_id.to_owned(), to_json(identifier)?);
        self.engine
            .read(move |c| {
                let id: Option<String> = optional(
                    c,
                    "SELECT a.id FROM authorizations a \
                     WHERE a.account_id = ? AND a.identifier = ? AND a.deactivated = 0 \
                     AND a.expires > ? \
                     AND EXISTS (SELECT 1 FROM challenges c \
                                 WHERE c.authorization_id = a.id AND c.status = ?) \
                     ORDER BY a.expires DESC, a.id LIMIT 1",
                    params![
                        account_id,
                        identifier,
                        secs(valid_at),
                        ChallengeStatus::Valid.as_str()
                    ],
                    first_text,
                )?;
                match id {
                    Some(id) => Ok(authorizations(c, &[id])?.pop()),
                    None => Ok(None),
                }
            })
            .await
    }

    async fn insert_authorization(&self, authorization: &Authorization) -> StoreResult<()> {
        rows::check_nesting(std::slice::from_ref(authorization))?;
        let row = AuthorizationRows::new(authorization)?;
        self.engine.write(move |c| row.insert(c)).await
    }

    async fn transition_challenge(
        &self,
        id: &str,
        from: ChallengeStatus,
        to: ChallengeStatus,
        validated_at: Option<OffsetDateTime>,
        error: Option<&Problem>,
    ) -> StoreResult<bool> {
        let (id, error) = (id.to_owned(), opt_json(error)?);
        self.engine
            .write(move |c| {
                // Guarded on the old status, so of two racing requests exactly one moves it.
                guarded(
                    c,
                    "UPDATE challenges SET status = ?, validated_at = ?, error = ? \
                     WHERE id = ? AND status = ?",
                    params![
                        to.as_str(),
                        opt_secs(validated_at),
                        error,
                        id,
                        from.as_str()
                    ],
                    "SELECT 1 FROM challenges WHERE id = ?",
                    &id,
                )
            })
            .await
    }

    async fn validate_challenge_with_token(
        &self,
        id: &str,
        from: ChallengeStatus,
        identity: &serde_json::Value,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let (id, identity) = (id.to_owned(), to_json(identity)?);
        self.engine
            .write(move |c| {
                // Guarded on the old status, as transition_challenge.
                guarded(
                    c,
                    "UPDATE challenges SET status = ?, validated_at = ?, token_identity = ?, \
                     error = NULL WHERE id = ? AND status = ?",
                    params![
                        ChallengeStatus::Valid.as_str(),
                        secs(at),
                        identity,
                        id,
                        from.as_str()
                    ],
                    "SELECT 1 FROM challenges WHERE id = ?",
                    &id,
                )
            })
            .await
    }

    async fn begin_finalize(&self, order_id: &str, at: OffsetDateTime) -> StoreResult<bool> {
        let order_id = order_id.to_owned();
        self.engine
            .write(move |c| {
                guarded(
                    c,
                    "UPDATE orders SET processing_since = ? WHERE id = ? \
                     AND processing_since IS NULL AND certificate_id IS NULL AND error IS NULL",
                    params![secs(at), order_id],
                    "SELECT 1 FROM orders WHERE id = ?",
                    &order_id,
                )
            })
            .await
    }

    async fn complete_order(&self, certificate: &Certificate) -> StoreResult<()> {
        let certificate = certificate.clone();
        self.engine
            .write(move |c| complete_order_rows(c, &certificate))
            .await
    }

    async fn fail_order(&self, order_id: &str, error: &Problem) -> StoreResult<()> {
        let (order_id, error) = (order_id.to_owned(), to_json(error)?);
        self.engine
            .write(move |c| {
                let changed = execute(
                    c,
                    "UPDATE orders SET error = ? WHERE id = ?",
                    params![error, order_id],
                )?;
                if changed != 1 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            })
            .await
    }

    async fn certificate(&self, id: &str) -> StoreResult<Certificate> {
        self.read_one(
            "SELECT id, order_id, account_id, serial, chain_pem, not_before, not_after, \
             created_at FROM certificates WHERE id = ?",
            id,
            |r| rows::certificate(r),
        )
        .await
    }

    // Revocation and CRLs.
    async fn certificate_by_serial(&self, serial: &str) -> StoreResult<Certificate> {
        self.read_one(
            "SELECT id, order_id, account_id, serial, chain_pem, not_before, not_after, \
             created_at FROM certificates WHERE serial = ?",
            serial,
            |r| rows::certificate(r),
        )
        .await
    }

    // --- ACME Renewal Information (RFC 9773), issue 4 ---

    async fn renewal_state(&self, serial: &str) -> StoreResult<RenewalState> {
        self.read_one(
            "SELECT id, order_id, account_id, serial, chain_pem, not_before, not_after, \
             created_at, revoked_at, replaced_by_order, renewal_window_start, \
             renewal_window_end FROM certificates WHERE serial = ?",
            serial,
            |r| rows::renewal_state(r),
        )
        .await
    }

    async fn insert_replacing_order(
        &self,
        order: &Order,
        new_authorizations: &[Authorization],
        replaced_certificate_id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        rows::check_nesting(new_authorizations)?;
        let rows = OrderRows::new(order, new_authorizations)?;
        let replaced = replaced_certificate_id.to_owned();
        self.engine
            .write(move |c| {
                // The guard decides races: of two orders naming the certificate, the second
                // finds replaced_by_order set and changes nothing. An order that can no longer
                // produce a certificate releases it.
                let taken = execute(
                    c,
                    "UPDATE certificates SET replaced_by_order = ? WHERE id = ? \
                     AND (replaced_by_order IS NULL OR replaced_by_order IN ( \
                         SELECT id FROM orders WHERE certificate_id IS NULL \
                         AND (error IS NOT NULL OR (processing_since IS NULL AND expires <= ?))))",
                    params![rows.order.id, replaced, secs(now)],
                )? == 1;
                if !taken {
                    exists(c, "SELECT 1 FROM certificates WHERE id = ?", &replaced)?;
                    return Ok(false);
                }
                rows.insert(c)?;
                Ok(true)
            })
            .await
    }

    async fn set_renewal_window(
        &self,
        certificate_id: &str,
        window: Option<(OffsetDateTime, OffsetDateTime)>,
    ) -> StoreResult<()> {
        let certificate_id = certificate_id.to_owned();
        self.engine
            .write(move |c| {
                let changed = execute(
                    c,
                    "UPDATE certificates SET renewal_window_start = ?, renewal_window_end = ? \
                     WHERE id = ?",
                    params![
                        window.map(|(start, _)| secs(start)),
                        window.map(|(_, end)| secs(end)),
                        certificate_id
                    ],
                )?;
                if changed == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            })
            .await
    }
    // --- end of ACME Renewal Information ---

    async fn revoke_certificate(
        &self,
        id: &str,
        reason: u8,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let id = id.to_owned();
        self.engine
            .write(move |c| revoke_rows(c, &id, reason, at))
            .await
    }

    async fn revoked_certificates(
        &self,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<RevokedCertificate>> {
        self.engine
            .scan(move |c| {
                all(
                    c,
                    "SELECT serial, not_after, revoked_at, revocation_reason FROM certificates \
                     WHERE revoked_at IS NOT NULL AND not_after > ? ORDER BY serial",
                    [secs(now)],
                    |r| rows::revoked_certificate(r),
                )
            })
            .await
    }

    async fn next_crl_number(&self, issuer: &str) -> StoreResult<i64> {
        let issuer = issuer.to_owned();
        // One statement under the write lock: each caller sees its own increment.
        self.engine
            .write(move |c| {
                one(
                    c,
                    "INSERT INTO crl_numbers (issuer, last) VALUES (?, 1) \
                     ON CONFLICT (issuer) DO UPDATE SET last = crl_numbers.last + 1 \
                     RETURNING last",
                    [&issuer],
                    first_int,
                )
            })
            .await
    }

    async fn has_valid_authorization(
        &self,
        account_id: &str,
        identifier: &Identifier,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let (account_id, identifier) = (account_id.to_owned(), to_json(identifier)?);
        // authority::state::authorization_status: valid = a valid challenge, not deactivated,
        // and now < expires.
        self.engine
            .read(move |c| {
                let found = optional(
                    c,
                    "SELECT 1 FROM authorizations a \
                     WHERE a.account_id = ? AND a.identifier = ? \
                     AND a.deactivated = 0 AND a.expires > ? \
                     AND EXISTS (SELECT 1 FROM challenges c \
                                 WHERE c.authorization_id = a.id AND c.status = ?) \
                     LIMIT 1",
                    params![
                        account_id,
                        identifier,
                        secs(now),
                        ChallengeStatus::Valid.as_str()
                    ],
                    first_int,
                )?;
                Ok(found.is_some())
            })
            .await
    }

    // --- periodic jobs (issue 7) ---
    async fn acquire_lease(
        &self,
        job: &str,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<bool> {
        let (job, holder) = (job.to_owned(), holder.to_owned());
        self.engine
            .write(move |c| {
                Ok(execute(
                    c,
                    &ACQUIRE_LEASE,
                    params![job, holder, secs(now), secs(until)],
                )? == 1)
            })
            .await
    }

    async fn release_lease(&self, job: &str, holder: &str) -> StoreResult<()> {
        let (job, holder) = (job.to_owned(), holder.to_owned());
        self.engine
            .write(move |c| execute(c, &RELEASE_LEASE, params![job, holder]).map(drop))
            .await
    }

    async fn purge_expired(&self, before: OffsetDateTime, batch: u32) -> StoreResult<Purged> {
        self.engine
            .write(move |c| {
                let mut deleted = [0u64; 7];
                for (n, statement) in PURGE.iter().enumerate() {
                    deleted[n] = execute(c, statement, params![secs(before), i64::from(batch)])?;
                }
                Ok(Purged {
                    orders: deleted[jobs_sql::PURGE_ORDERS_COUNTED],
                    retained: deleted[jobs_sql::PURGE_RETAINED_COUNTED],
                    authorizations: deleted[jobs_sql::PURGE_AUTHORIZATIONS_COUNTED],
                })
            })
            .await
    }

    async fn overdue_renewals(
        &self,
        query: &RenewalQuery,
        limit: u32,
    ) -> StoreResult<Vec<OverdueRenewal>> {
        let mut values = jobs_sql::bind_order(query).to_vec();
        values.push(i64::from(limit));
        self.engine
            .scan(move |c| {
                all(
                    c,
                    &OVERDUE_RENEWALS,
                    rusqlite::params_from_iter(values),
                    |r| rows::overdue_renewal(r),
                )
            })
            .await
    }

    async fn mark_renewal_alerted(
        &self,
        certificate_id: &str,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let certificate_id = certificate_id.to_owned();
        self.engine
            .write(move |c| {
                Ok(execute(c, &MARK_RENEWAL_ALERTED, params![certificate_id, secs(at)])? == 1)
            })
            .await
    }

    async fn renewal_counts(&self, query: &RenewalQuery) -> StoreResult<Vec<RenewalCounts>> {
        let values = jobs_sql::bind_order(query);
        self.engine
            .scan(move |c| {
                all(
                    c,
                    &RENEWAL_COUNTS,
                    rusqlite::params_from_iter(values),
                    |r| rows::renewal_counts(r),
                )
            })
            .await
    }
    // --- admin API (issue 7) ---

    async fn certificate_records(
        &self,
        filter: &CertificateFilter,
        after: Option<&CertificateCursor>,
        now: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<CertificateRecord>> {
        let name = filter.name_pattern();
        let account_id = filter.account_id.clone();
        let status = filter.status.map(CertificateStatus::as_str);
        let expiring_before = opt_secs(filter.expiring_before);
        let after_secs = after.map(|a| secs(a.created_at));
        let after_id = after.map(|a| a.id.clone());
        self.engine
            .scan(move |c| {
                all(
                    c,
                    "SELECT c.id, c.order_id, c.account_id, c.serial, c.chain_pem, c.not_before, \
                     c.not_after, c.created_at, c.revoked_at, c.revocation_reason, o.identifiers \
                     FROM certificates c JOIN orders o ON o.id = c.order_id \
                     WHERE (?1 IS NULL OR o.identifiers LIKE ?1 ESCAPE '\\') \
                     AND (?2 IS NULL OR c.account_id = ?2) \
                     AND (?3 IS NULL \
                          OR (?3 = 'revoked' AND c.revoked_at IS NOT NULL) \
                          OR (?3 = 'active' AND c.revoked_at IS NULL AND c.not_after > ?4) \
                          OR (?3 = 'expired' AND c.revoked_at IS NULL AND c.not_after <= ?4)) \
                     AND (?5 IS NULL OR c.not_after < ?5) \
                     AND (?6 IS NULL OR c.created_at > ?6 OR (c.created_at = ?6 AND c.id > ?7)) \
                     ORDER BY c.created_at, c.id LIMIT ?8",
                    params![
                        name,
                        account_id,
                        status,
                        secs(now),
                        expiring_before,
                        after_secs,
                        after_id,
                        i64::from(limit)
                    ],
                    |r| rows::certificate_record(r),
                )
            })
            .await
    }

    async fn certificate_record(&self, serial: &str) -> StoreResult<CertificateRecord> {
        self.read_one(
            "SELECT c.id, c.order_id, c.account_id, c.serial, c.chain_pem, c.not_before, \
             c.not_after, c.created_at, c.revoked_at, c.revocation_reason, o.identifiers \
             FROM certificates c JOIN orders o ON o.id = c.order_id WHERE c.serial = ?1",
            serial,
            |r| rows::certificate_record(r),
        )
        .await
    }

    async fn certificate_counts(&self, now: OffsetDateTime) -> StoreResult<CertificateCounts> {
        self.engine
            .scan(move |c| {
                one(
                    c,
                    "SELECT COUNT(*) AS issued, \
                     COALESCE(SUM(CASE WHEN revoked_at IS NULL AND not_after > ?1 THEN 1 ELSE 0 END), 0) AS active, \
                     COALESCE(SUM(CASE WHEN revoked_at IS NULL AND not_after <= ?1 THEN 1 ELSE 0 END), 0) AS expired, \
                     COALESCE(SUM(CASE WHEN revoked_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS revoked, \
                     (SELECT COUNT(*) FROM accounts) AS accounts FROM certificates",
                    [secs(now)],
                    |r| {
                        Ok(CertificateCounts {
                            issued: rows::count(r, "issued")?,
                            active: rows::count(r, "active")?,
                            expired: rows::count(r, "expired")?,
                            revoked: rows::count(r, "revoked")?,
                            accounts: rows::count(r, "accounts")?,
                        })
                    },
                )
            })
            .await
    }

    async fn accounts_page(
        &self,
        after: Option<&AccountCursor>,
        limit: u32,
    ) -> StoreResult<Vec<Account>> {
        let after_secs = after.map(|a| secs(a.created_at));
        let after_id = after.map(|a| a.id.clone());
        self.engine
            .scan(move |c| {
                all(
                    c,
                    "SELECT id, key_thumbprint, jwk, contact, status, created_at, provisioner \
                     FROM accounts WHERE (?1 IS NULL OR created_at > ?1 \
                     OR (created_at = ?1 AND id > ?2)) \
                     ORDER BY created_at, id LIMIT ?3",
                    params![after_secs, after_id, i64::from(limit)],
                    |r| rows::account(r),
                )
            })
            .await
    }
    // --- end of admin API (issue 7) ---

    // --- audit log and rate limits (issue 7) ---

    async fn append_audit(&self, events: &[AuditEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let events = events
            .iter()
            .map(AuditRow::new)
            .collect::<StoreResult<Vec<_>>>()?;
        self.engine
            .write(move |c| events.iter().try_for_each(|event| event.insert(c)))
            .await
    }

    async fn audit_events(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>> {
        let filter = filter.clone();
        // One statement for every filter: an absent one compares NULL and matches all.
        self.engine
            .scan(move |c| {
                all(
                    c,
                    "SELECT id, at, kind, actor, object, outcome, detail, request_id \
                     FROM audit_log \
                     WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR actor = ?2) \
                     AND (?3 IS NULL OR object = ?3) AND (?4 IS NULL OR at >= ?4) \
                     AND (?5 IS NULL OR at < ?5) AND (?6 IS NULL OR id < ?6) \
                     ORDER BY id DESC LIMIT ?7",
                    params![
                        filter.kind,
                        filter.actor,
                        filter.object,
                        opt_secs(filter.since),
                        opt_secs(filter.until),
                        before,
                        i64::from(limit)
                    ],
                    |r| rows::audit_record(r),
                )
            })
            .await
    }

    async fn complete_order_audited(
        &self,
        certificate: &Certificate,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let certificate = certificate.clone();
        let event = AuditRow::new(event)?;
        self.engine
            .write(move |c| {
                complete_order_rows(c, &certificate)?;
                event.insert(c)
            })
            .await
    }

    async fn revoke_certificate_audited(
        &self,
        id: &str,
        reason: u8,
        at: OffsetDateTime,
        event: &AuditEvent,
    ) -> StoreResult<bool> {
        let id = id.to_owned();
        let event = AuditRow::new(event)?;
        self.engine
            .write(move |c| {
                let revoked = revoke_rows(c, &id, reason, at)?;
                if revoked {
                    event.insert(c)?;
                }
                Ok(revoked)
            })
            .await
    }

    async fn take_rate_limit(
        &self,
        bucket: &str,
        limit: u32,
        window: time::Duration,
        now: OffsetDateTime,
    ) -> StoreResult<RateLimitOutcome> {
        let bucket = bucket.to_owned();
        // The writer holds the write lock from the count to the insert.
        self.engine
            .write(move |c| {
                let outcome = rate_limit_outcome(c, &bucket, limit, window, now)?;
                if outcome == RateLimitOutcome::Allowed {
                    execute(
                        c,
                        "INSERT INTO rate_limit_events (bucket, at) VALUES (?, ?)",
                        params![bucket, secs(now)],
                    )?;
                }
                Ok(outcome)
            })
            .await
    }

    async fn check_rate_limit(
        &self,
        bucket: &str,
        limit: u32,
        window: time::Duration,
        now: OffsetDateTime,
    ) -> StoreResult<RateLimitOutcome> {
        let bucket = bucket.to_owned();
        self.engine
            .read(move |c| rate_limit_outcome(c, &bucket, limit, window, now))
            .await
    }

    async fn add_rate_limit_event(&self, bucket: &str, at: OffsetDateTime) -> StoreResult<()> {
        let bucket = bucket.to_owned();
        self.engine
            .write(move |c| {
                execute(
                    c,
                    "INSERT INTO rate_limit_events (bucket, at) VALUES (?, ?)",
                    params![bucket, secs(at)],
                )
                .map(drop)
            })
            .await
    }

    async fn prune_rate_limits(&self, before: OffsetDateTime) -> StoreResult<u64> {
        self.engine
            .write(move |c| {
                execute(
                    c,
                    "DELETE FROM rate_limit_events WHERE at < ?",
                    [secs(before)],
                )
            })
            .await
    }
    // --- end of audit log and rate limits ---
}

static ACQUIRE_LEASE: LazyLock<String> = LazyLock::new(|| numbered(jobs_sql::ACQUIRE_LEASE));
static RELEASE_LEASE: LazyLock<String> = LazyLock::new(|| numbered(jobs_sql::RELEASE_LEASE));
static MARK_RENEWAL_ALERTED: LazyLock<String> =
    LazyLock::new(|| numbered(jobs_sql::MARK_RENEWAL_ALERTED));
static PURGE: LazyLock<Vec<String>> =
    LazyLock::new(|| jobs_sql::PURGE.iter().map(|s| numbered(s)).collect());
static OVERDUE_RENEWALS: LazyLock<String> = LazyLock::new(|| numbered(&jobs_sql::OVERDUE_RENEWALS));
static RENEWAL_COUNTS: LazyLock<String> = LazyLock::new(|| numbered(&jobs_sql::RENEWAL_COUNTS));

fn eab_key(c: &Connection, id: &str) -> StoreResult<EabKey> {
    one(
        c,
        "SELECT id, hmac_key, label, reusable, created_at, revoked_at, use_count, \
         provisioner FROM eab_keys WHERE id = ?",
        [id],
        |r| rows::eab_key(r),
    )
}

/// Several authorizations with their challenges, in the order of `ids`.
fn order(c: &Connection, id: &str) -> StoreResult<Order> {
    let authorization_ids = all(
        c,
        "SELECT authorization_id FROM order_authorizations WHERE order_id = ? \
         ORDER BY position",
        [id],
        first_text,
    )?;
    one(
        c,
        "SELECT id, account_id, identifiers, not_before, not_after, expires, \
         created_at, processing_since, certificate_id, error, profile, replaces \
         FROM orders WHERE id = ?",
        [id],
        |r| rows::order(r, authorization_ids),
    )
}

fn authorizations(c: &Connection, ids: &[String]) -> StoreResult<Vec<Authorization>> {
    // One placeholder per id: SQLite probes the primary key for each. (`IN (SELECT value
    // FROM json_each(?))` built a temporary index per query, a third of a read's cost.)
    let placeholders = placeholders(ids.len());
    let found = all(
        c,
        &format!(
            "SELECT id, account_id, identifier, expires, created_at, deactivated \
             FROM authorizations WHERE id IN ({placeholders})"
        ),
        rusqlite::params_from_iter(ids),
        |r| rows::authorization(r),
    )?;
    let challenges = all(
        c,
        &format!(
            "SELECT id, authorization_id, kind, token, status, validated_at, error, \
             token_identity FROM challenges WHERE authorization_id IN ({placeholders}) \
             ORDER BY authorization_id, position"
        ),
        rusqlite::params_from_iter(ids),
        |r| rows::challenge(r),
    )?;
    rows::with_challenges(ids, found, challenges)
}

/// `?, ?, …` for `n` values (at least one, so that an empty list matches nothing). The
/// statement cache keys on the text, so each count is prepared once.
fn placeholders(n: usize) -> String {
    if n == 0 {
        // No value: NULL matches nothing.
        return "NULL".to_owned();
    }
    let mut out = String::from("?");
    for _ in 1..n {
        out.push_str(", ?");
    }
    out
}

/// An account's columns, encoded before the write is queued.
struct AccountRow {
    id: String,
    key_thumbprint: String,
    jwk: String,
    contact: String,
    status: &'static str,
    created_at: i64,
    provisioner: String,
}

impl AccountRow {
    fn new(account: &Account) -> StoreResult<Self> {
        Ok(Self {
            id: account.id.clone(),
            key_thumbprint: account.key_thumbprint.clone(),
            jwk: to_json(&account.jwk)?,
            contact: to_json(&account.contact)?,
            status: account.status.as_str(),
            created_at: secs(account.created_at),
            provisioner: account.provisioner.clone(),
        })
    }
}

/// One authorization and its challenges, encoded.
struct AuthorizationRows {
    id: String,
    account_id: String,
    identifier: String,
    expires: i64,
    created_at: i64,
    deactivated: bool,
    challenges: Vec<ChallengeRow>,
}

struct ChallengeRow {
    id: String,
    kind: String,
    token: String,
    status: &'static str,
    validated_at: Option<i64>,
    error: Option<String>,
    token_identity: Option<String>,
}

impl AuthorizationRows {
    fn new(authorization: &Authorization) -> StoreResult<Self> {
        let challenges = authorization
            .challenges
            .iter()
            .map(|challenge| {
                Ok(ChallengeRow {
                    id: challenge.id.clone(),
                    kind: challenge.kind.clone(),
                    token: challenge.token.clone(),
                    status: challenge.status.as_str(),
                    validated_at: opt_secs(challenge.validated_at),
                    error: opt_json(challenge.error.as_ref())?,
                    token_identity: opt_json(challenge.token_identity.as_ref())?,
                })
            })
            .collect::<StoreResult<_>>()?;
        Ok(Self {
            id: authorization.id.clone(),
            account_id: authorization.account_id.clone(),
            identifier: to_json(&authorization.identifier)?,
            expires: secs(authorization.expires),
            created_at: secs(authorization.created_at),
            deactivated: authorization.deactivated,
            challenges,
        })
    }

    /// Inserts the authorization and its challenges, numbering the challenges in order.
    fn insert(&self, c: &Connection) -> StoreResult<()> {
        execute(
            c,
            "INSERT INTO authorizations (id, account_id, identifier, expires, created_at, \
             deactivated) VALUES (?, ?, ?, ?, ?, ?)",
            params![
                self.id,
                self.account_id,
                self.identifier,
                self.expires,
                self.created_at,
                self.deactivated
            ],
        )?;
        for (position, challenge) in self.challenges.iter().enumerate() {
            execute(
                c,
                "INSERT INTO challenges (id, authorization_id, position, kind, token, status, \
                 validated_at, error, token_identity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params![
                    challenge.id,
                    self.id,
                    position as i64,
                    challenge.kind,
                    challenge.token,
                    challenge.status,
                    challenge.validated_at,
                    challenge.error,
                    challenge.token_identity
                ],
            )?;
        }
        Ok(())
    }
}

/// The rows of a new order: its new authorizations, the order, its authorization list.
struct OrderRows {
    order: Order,
    identifiers: String,
    error: Option<String>,
    authorizations: Vec<AuthorizationRows>,
}

impl OrderRows {
    fn new(order: &Order, new_authorizations: &[Authorization]) -> StoreResult<Self> {
        Ok(Self {
            order: order.clone(),
            identifiers: to_json(&order.identifiers)?,
            error: opt_json(order.error.as_ref())?,
            authorizations: new_authorizations
                .iter()
                .map(AuthorizationRows::new)
                .collect::<StoreResult<_>>()?,
        })
    }

    fn insert(&self, c: &Connection) -> StoreResult<()> {
        for authorization in &self.authorizations {
            authorization.insert(c)?;
        }
        let order = &self.order;
        execute(
            c,
            "INSERT INTO orders (id, account_id, identifiers, not_before, not_after, expires, \
             created_at, processing_since, certificate_id, error, profile, replaces) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            params![
                order.id,
                order.account_id,
                self.identifiers,
                opt_secs(order.not_before),
                opt_secs(order.not_after),
                secs(order.expires),
                secs(order.created_at),
                opt_secs(order.processing_since),
                order.certificate_id,
                self.error,
                order.profile,
                order.replaces
            ],
        )?;
        for (position, authorization_id) in order.authorization_ids.iter().enumerate() {
            execute(
                c,
                "INSERT INTO order_authorizations (order_id, position, authorization_id) \
                 VALUES (?, ?, ?)",
                params![order.id, position as i64, authorization_id],
            )?;
        }
        Ok(())
    }
}

/// A guarded update (`… WHERE id = ? AND <guard>`): whether it changed the row; `NotFound` if
/// `exists_sql` finds no row `id` either.
fn guarded(
    c: &Connection,
    sql: &str,
    params: impl Params,
    exists_sql: &str,
    id: &str,
) -> StoreResult<bool> {
    let changed = execute(c, sql, params)? == 1;
    if !changed {
        exists(c, exists_sql, id)?;
    }
    Ok(changed)
}

/// `NotFound` unless `sql` (a `SELECT 1 … WHERE id = ?`) finds a row: tells "someone else got
/// there first" (`Ok(false)`) apart from "no such row" after a guarded update changed nothing.
fn exists(c: &Connection, sql: &str, id: &str) -> StoreResult<()> {
    one(c, sql, [id], first_int).map(drop)
}

/// The rows of `complete_order`: the certificate, and the order's link to it, only if the
/// order has neither a certificate nor an error yet.
fn complete_order_rows(c: &Connection, certificate: &Certificate) -> StoreResult<()> {
    execute(
        c,
        "INSERT INTO certificates (id, order_id, account_id, serial, chain_pem, not_before, \
         not_after, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            certificate.id,
            certificate.order_id,
            certificate.account_id,
            certificate.serial,
            certificate.chain_pem,
            secs(certificate.not_before),
            secs(certificate.not_after),
            secs(certificate.created_at)
        ],
    )?;
    let linked = execute(
        c,
        "UPDATE orders SET certificate_id = ? \
         WHERE id = ? AND certificate_id IS NULL AND error IS NULL",
        params![certificate.id, certificate.order_id],
    )?;
    if linked != 1 {
        // The write's savepoint rolls the certificate back.
        return Err(StoreError::Conflict(rows::ORDER_DONE.to_owned()));
    }
    Ok(())
}

/// The guarded update of `revoke_certificate`; `NotFound` if there is no such certificate.
fn revoke_rows(c: &Connection, id: &str, reason: u8, at: OffsetDateTime) -> StoreResult<bool> {
    // Guarded on revoked_at, so of two racing revocations exactly one records its reason.
    guarded(
        c,
        "UPDATE certificates SET revoked_at = ?, revocation_reason = ? \
         WHERE id = ? AND revoked_at IS NULL",
        params![secs(at), i64::from(reason), id],
        "SELECT 1 FROM certificates WHERE id = ?",
        id,
    )
}

// --- audit log and rate limits (issue 7) ---

/// An audit event's columns, encoded.
struct AuditRow {
    at: i64,
    kind: String,
    actor: String,
    object: String,
    outcome: String,
    detail: String,
    request_id: Option<String>,
}

impl AuditRow {
    fn new(event: &AuditEvent) -> StoreResult<Self> {
        Ok(Self {
            at: secs(event.at),
            kind: event.kind.clone(),
            actor: event.actor.clone(),
            object: event.object.clone(),
            outcome: event.outcome.clone(),
            detail: to_json(&event.detail)?,
            request_id: event.request_id.clone(),
        })
    }

    fn insert(&self, c: &Connection) -> StoreResult<()> {
        execute(
            c,
            "INSERT INTO audit_log (at, kind, actor, object, outcome, detail, request_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
            params![
                self.at,
                self.kind,
                self.actor,
                self.object,
                self.outcome,
                self.detail,
                self.request_id
            ],
        )
        .map(drop)
    }
}

/// Whether `bucket` has room for one more event at `now`; if not, when it will.
fn rate_limit_outcome(
    c: &Connection,
    bucket: &str,
    limit: u32,
    window: time::Duration,
    now: OffsetDateTime,
) -> StoreResult<RateLimitOutcome> {
    let since = secs(now - window);
    let count = one(
        c,
        "SELECT COUNT(*) FROM rate_limit_events WHERE bucket = ? AND at > ?",
        params![bucket, since],
        first_int,
    )?;
    let limit = i64::from(limit);
    if count < limit {
        return Ok(RateLimitOutcome::Allowed);
    }
    // With `count` events and room for `limit`, a slot frees when the (count - limit + 1)th
    // oldest leaves the window.
    let oldest = one(
        c,
        "SELECT at FROM rate_limit_events WHERE bucket = ? AND at > ? \
         ORDER BY at LIMIT 1 OFFSET ?",
        params![bucket, since, count - limit],
        first_int,
    )?;
    rows::retry_at(oldest, window)
}
// --- end of audit log and rate limits ---
