//! PostgreSQL backend (shared by replicas).
//!
//! Any number of replicas may use one database (ARCHITECTURE decision 2). Races are settled by
//! the database: guarded `UPDATE … WHERE status = …` statements (a second writer waits for the
//! first one's row lock, then re-checks the guard and changes nothing), primary keys for nonces,
//! and `ON CONFLICT DO NOTHING` for settings. Migrations run under sqlx's advisory lock, so
//! replicas that start together apply them once.

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Postgres, Row, SqlSafeStr, Transaction};
use std::str::FromStr;
use time::{Duration, OffsetDateTime};

use super::group_commit::NonceBatcher;
use super::jobs_sql;
use super::rows::{self, opt_json, opt_secs, other, secs, to_json};
use super::{
    Account, AccountCursor, AuditEvent, AuditFilter, AuditRecord, Authorization, Certificate,
    CertificateCounts, CertificateCursor, CertificateFilter, CertificateRecord, CertificateStatus,
    Challenge, EabKey, EabRefusal, Order, OrderCursor, OverdueRenewal, Purged, RateLimitOutcome,
    RenewalCounts, RenewalQuery, RenewalState, RevokedCertificate, Store, StoreError, StoreResult,
};
use crate::acme::{ChallengeStatus, Identifier, Problem};

/// Version, description, SQL. Append only: sqlx refuses to start if an applied migration's
/// text changed (it keeps a checksum), so a schema change is always a new file.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "accounts",
        include_str!("../../migrations/postgres/0002_accounts.sql"),
    ),
    (
        3,
        "revocation",
        include_str!("../../migrations/postgres/0003_revocation.sql"),
    ),
    (
        4,
        "challenges",
        include_str!("../../migrations/postgres/0004_challenges.sql"),
    ),
    (
        5,
        "profiles",
        include_str!("../../migrations/postgres/0005_profiles.sql"),
    ),
    (
        6,
        "renewal",
        include_str!("../../migrations/postgres/0006_renewal.sql"),
    ),
    (
        7,
        "provisioners",
        include_str!("../../migrations/postgres/0007_provisioners.sql"),
    ),
    (
        9,
        "audit_limits",
        include_str!("../../migrations/postgres/0009_audit_limits.sql"),
    ),
    (
        10,
        "jobs",
        include_str!("../../migrations/postgres/0010_jobs.sql"),
    ),
    (
        11,
        "purge_scale",
        include_str!("../../migrations/postgres/0011_purge_scale.sql"),
    ),
];

/// Multi-statement reads see one snapshot, e.g. an order and its authorization list.
const BEGIN_READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

/// A pooled connection idle this long is pinged before it is used again.
const IDLE_CHECK_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

pub struct PostgresStore {
    pool: PgPool,
    nonces: NonceBatcher,
}

impl PostgresStore {
    /// Connects with the server's default `search_path` and applies migrations.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        Self::open(PgConnectOptions::from_str(url)?, max_connections).await
    }

    /// Connects with every pooled connection's `search_path` set to `schema`, which is created
    /// if missing, and applies migrations there. Lets tests (or tenants) share one database.
    /// `schema` must be a plain lower-case identifier: `[a-z_][a-z0-9_]*`, at most 63 bytes.
    pub async fn connect_in_schema(
        url: &str,
        schema: &str,
        max_connections: u32,
    ) -> StoreResult<Self> {
        check_schema_name(schema)?;
        let options = PgConnectOptions::from_str(url)?;
        let mut conn = options.connect().await?;
        // The name was checked above, so quoting it is enough to make it safe in SQL.
        let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
        let created = sqlx::query(AssertSqlSafe(create)).execute(&mut conn).await;
        conn.close().await?;
        match created.map_err(StoreError::from) {
            // Two processes creating the same schema at once: the loser sees a unique
            // violation on the catalog, and the schema exists either way.
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        // A startup parameter rather than a `SET` after connecting: it also holds for
        // connections the pool opens later, before their first statement.
        let options = options.options([("search_path", schema)]);
        Self::open(options, max_connections).await
    }

    async fn open(options: PgConnectOptions, max_connections: u32) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            // sqlx pings every connection it hands out by default: one more round trip per
            // statement (issue 9). Only a connection that sat idle, which a restarted server
            // or a dropped link may have closed, is checked before use.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_CHECK_AFTER {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await?;
        // `locking` is on by default: a session-level advisory lock around the whole run.
        migrator().run(&pool).await?;
        let nonces = NonceBatcher::start(pool.clone());
        Ok(Self { pool, nonces })
    }
}

fn check_schema_name(schema: &str) -> StoreResult<()> {
    let mut bytes = schema.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if first_ok && rest_ok && schema.len() <= 63 {
        Ok(())
    } else {
        Err(other(format!("{schema:?} is not a valid schema name")))
    }
}

fn migrator() -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                description.into(),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

/// The challenges of authorization `a` as a JSON array in position order, never NULL.
const CHALLENGES_JSON: &str = "COALESCE((SELECT json_agg(json_build_object('id', c.id, \
     'authorization_id', c.authorization_id, 'kind', c.kind, 'token', c.token, \
     'status', c.status, 'validated_at', c.validated_at, 'error', c.error, \
     'token_identity', c.token_identity) ORDER BY c.position) \
   FROM challenges c WHERE c.authorization_id = a.id), '[]'::json)";

/// An authorization row with its challenges in a `challenges` JSON array column.
fn authorization_with_challenges(row: &sqlx::postgres::PgRow) -> StoreResult<Authorization> {
    let mut authorization = rows::authorization(row)?;
    let listed: Vec<JsonRow> = from_json_text(&row.try_get::<String, _>("challenges")?)?;
    for challenge in &listed {
        authorization
            .challenges
            .push(rows::challenge(&rows::JsonColumns(challenge))?);
    }
    Ok(authorization)
}

/// A nested row, read with `rows::JsonColumns`.
type JsonRow = serde_json::Map<String, serde_json::Value>;

fn from_json_text<T: serde::de::DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Other(Box::new(e)))
}

/// Positions are small (identifiers per order, challenges per authorization), but check.
fn position(index: usize) -> StoreResult<i32> {
    i32::try_from(index).map_err(other)
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn setting_or_insert(&self, key: &str, value: &str) -> StoreResult<String> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&mut *tx)
        .await?;
        // READ COMMITTED: this statement sees a row another transaction committed while our
        // insert waited on it.
        let stored: String = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn redeem_nonce(&self, nonce: &str, expires_at: OffsetDateTime) -> StoreResult<bool> {
        // The primary key decides: the first insert wins, every later one does nothing.
        // Concurrent redemptions share one statement and one commit (group_commit.rs).
        let (fresh, _) = self.nonces.redeem(nonce, secs(expires_at), None).await?;
        Ok(fresh)
    }

    async fn redeem_nonce_reading_account(
        &self,
        nonce: &str,
        expires_at: OffsetDateTime,
        account_id: &str,
    ) -> StoreResult<(bool, Option<Account>)> {
        // In the same statement as the redemption (group_commit.rs).
        self.nonces
            .redeem(nonce, secs(expires_at), Some(account_id))
            .await
    }

    async fn prune_nonces(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let result = sqlx::query("DELETE FROM nonces WHERE expires_at < $1")
            .bind(secs(now))
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    async fn use_token(
        &self,
        provisioner: &str,
        token_id: &str,
        expires_at: OffsetDateTime,
    ) -> StoreResult<bool> {
        // As redeem_nonce: the primary key decides, the first insert wins.
        let result = sqlx::query(
            "INSERT INTO used_tokens (provisioner, token_id, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (provisioner, token_id) DO NOTHING",
        )
        .bind(provisioner)
        .bind(token_id)
        .bind(secs(expires_at))
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn prune_used_tokens(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let result = sqlx::query("DELETE FROM used_tokens WHERE expires_at < $1")
            .bind(secs(now))
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    async fn insert_account(&self, account: &Account) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO accounts (id, key_thumbprint, jwk, contact, status, created_at, \
             provisioner) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&account.id)
        .bind(&account.key_thumbprint)
        .bind(to_json(&account.jwk)?)
        .bind(to_json(&account.contact)?)
        .bind(account.status.as_str())
        .bind(secs(account.created_at))
        .bind(&account.provisioner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn account(&self, id: &str) -> StoreResult<Account> {
        let row = sqlx::query(
            "SELECT id, key_thumbprint, jwk, contact, status, created_at, provisioner \
             FROM accounts WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        rows::account(&row)
    }

    async fn account_by_thumbprint(&self, thumbprint: &str) -> StoreResult<Account> {
        let row = sqlx::query(
            "SELECT id, key_thumbprint, jwk, contact, status, created_at, provisioner \
             FROM accounts WHERE key_thumbprint = $1",
        )
        .bind(thumbprint)
        .fetch_one(&self.pool)
        .await?;
        rows::account(&row)
    }

    // --- Accounts (issue 3) ---

    async fn update_account_contact(&self, id: &str, contact: &[String]) -> StoreResult<()> {
        let result = sqlx::query("UPDATE accounts SET contact = $1 WHERE id = $2")
            .bind(to_json(contact)?)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if result.rows_affected() != 1 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn deactivate_account(&self, id: &str) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let result = sqlx::query(
            "UPDATE accounts SET status = 'deactivated' WHERE id = $1 AND status = 'valid'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let moved = result.rows_affected() == 1;
        if !moved {
            exists(&mut tx, "SELECT 1 FROM accounts WHERE id = $1", id).await?;
        }
        tx.commit().await?;
        Ok(moved)
    }

    async fn change_account_key(
        &self,
        id: &str,
        old_thumbprint: &str,
        new_thumbprint: &str,
        new_jwk: &serde_json::Value,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        // The unique constraint on key_thumbprint turns "the new key is in use" into Conflict.
        let result = sqlx::query(
            "UPDATE accounts SET key_thumbprint = $1, jwk = $2 \
             WHERE id = $3 AND key_thumbprint = $4",
        )
        .bind(new_thumbprint)
        .bind(to_json(new_jwk)?)
        .bind(id)
        .bind(old_thumbprint)
        .execute(&mut *tx)
        .await?;
        let changed = result.rows_affected() == 1;
        if !changed {
            exists(&mut tx, "SELECT 1 FROM accounts WHERE id = $1", id).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn orders_by_account(
        &self,
        account_id: &str,
        after: Option<&OrderCursor>,
        now: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<Order>> {
        // Without a cursor, start above every possible position.
        let (after_secs, after_id) = after.map_or((i64::MAX, ""), |c| (secs(c.created_at), &c.id));
        let mut tx = self.pool.begin_with(BEGIN_READ).await?;
        // Ids compare byte-wise (collation "C"), as in SQLite, whatever the database's locale.
        let order_rows = sqlx::query(
            "SELECT id, account_id, identifiers, not_before, not_after, expires, created_at, \
             processing_since, certificate_id, error, profile, replaces FROM orders \
             WHERE account_id = $1 AND error IS NULL \
             AND (certificate_id IS NOT NULL OR processing_since IS NOT NULL OR expires > $2) \
             AND (created_at, id COLLATE \"C\") < ($3, $4) \
             ORDER BY created_at DESC, id COLLATE \"C\" DESC LIMIT $5",
        )
        .bind(account_id)
        .bind(secs(now))
        .bind(after_secs)
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let ids: Vec<String> = order_rows
            .iter()
            .map(|row| rows::Columns::text(row, "id"))
            .collect::<StoreResult<_>>()?;
        let pairs: Vec<(String, String)> = sqlx::query_as(
            "SELECT order_id, authorization_id FROM order_authorizations \
             WHERE order_id = ANY($1) ORDER BY order_id, position",
        )
        // Not prepared: a generic plan made while the table was small stays a sequential scan
        // and a sort as the table grows; planned each time, this uses the index.
        .persistent(false)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut by_order = rows::authorization_ids_by_order(pairs);
        order_rows
            .iter()
            .zip(&ids)
            .map(|(row, id)| rows::order(row, by_order.remove(id).unwrap_or_default()))
            .collect()
    }

    async fn insert_eab_key(&self, key: &EabKey) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO eab_keys (id, hmac_key, label, reusable, created_at, revoked_at, \
             use_count, provisioner) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&key.id)
        .bind(crate::jose::base64url(&key.hmac_key))
        .bind(&key.label)
        .bind(key.reusable)
        .bind(secs(key.created_at))
        .bind(opt_secs(key.revoked_at))
        .bind(i64::try_from(key.use_count).map_err(other)?)
        .bind(&key.provisioner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn eab_key(&self, id: &str) -> StoreResult<EabKey> {
        let row = sqlx::query(
            "SELECT id, hmac_key, label, reusable, created_at, revoked_at, use_count, \
             provisioner FROM eab_keys WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        rows::eab_key(&row)
    }

    async fn eab_keys(&self) -> StoreResult<Vec<EabKey>> {
        let found = sqlx::query(
            "SELECT id, hmac_key, label, reusable, created_at, revoked_at, use_count, \
             provisioner FROM eab_keys ORDER BY created_at, id COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await?;
        found.iter().map(rows::eab_key).collect()
    }

    async fn revoke_eab_key(&self, id: &str, at: OffsetDateTime) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let result =
            sqlx::query("UPDATE eab_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(secs(at))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        let revoked = result.rows_affected() == 1;
        if !revoked {
            exists(&mut tx, "SELECT 1 FROM eab_keys WHERE id = $1", id).await?;
        }
        tx.commit().await?;
        Ok(revoked)
    }

    async fn insert_account_with_eab(
        &self,
        account: &Account,
        eab_key_id: &str,
    ) -> StoreResult<Result<(), EabRefusal>> {
        let mut tx = self.pool.begin().await?;
        // Guarded: a second binder waits for the first one's row lock, then re-checks the
        // guard, so of two accounts racing for a single-use key exactly one binds.
        let result = sqlx::query(
            "UPDATE eab_keys SET use_count = use_count + 1 \
             WHERE id = $1 AND revoked_at IS NULL AND (reusable OR use_count = 0)",
        )
        .bind(eab_key_id)
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() != 1 {
            let revoked: Option<Option<i64>> =
                sqlx::query_scalar("SELECT revoked_at FROM eab_keys WHERE id = $1")
                    .bind(eab_key_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            return Ok(Err(rows::eab_refusal(revoked)));
        }
        sqlx::query(
            "INSERT INTO accounts (id, key_thumbprint, jwk, contact, status, created_at, \
             eab_key_id, provisioner) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&account.id)
        .bind(&account.key_thumbprint)
        .bind(to_json(&account.jwk)?)
        .bind(to_json(&account.contact)?)
        .bind(account.status.as_str())
        .bind(secs(account.created_at))
        .bind(eab_key_id)
        .bind(&account.provisioner)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    async fn account_eab_key(&self, account_id: &str) -> StoreResult<Option<EabKey>> {
        let eab_key_id: Option<String> =
            sqlx::query_scalar("SELECT eab_key_id FROM accounts WHERE id = $1")
                .bind(account_id)
                .fetch_one(&self.pool)
                .await?;
        match eab_key_id {
            Some(id) => Ok(Some(self.eab_key(&id).await?)),
            None => Ok(None),
        }
    }

    // --- end of accounts (issue 3) ---

    async fn insert_order(
        &self,
        order: &Order,
        new_authorizations: &[Authorization],
    ) -> StoreResult<()> {
        rows::check_nesting(new_authorizations)?;
        // One statement: atomic without a transaction.
        insert_order_rows(&self.pool, order, new_authorizations).await
    }

    async fn order(&self, id: &str) -> StoreResult<Order> {
        // One statement is one snapshot: no transaction, one round trip instead of four.
        let row = sqlx::query(
            "SELECT id, account_id, identifiers, not_before, not_after, expires, created_at, \
             processing_since, certificate_id, error, profile, replaces, \
             ARRAY(SELECT authorization_id FROM order_authorizations \
                   WHERE order_id = orders.id ORDER BY position) AS authorization_ids \
             FROM orders WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        let authorization_ids: Vec<String> = row.try_get("authorization_ids")?;
        rows::order(&row, authorization_ids)
    }

    async fn authorization(&self, id: &str) -> StoreResult<Authorization> {
        let ids = [id.to_owned()];
        let mut found = self.authorizations(&ids).await?;
        found.pop().ok_or(StoreError::NotFound)
    }

    async fn authorizations(&self, ids: &[String]) -> StoreResult<Vec<Authorization>> {
        // One statement, so one snapshot without a transaction: each authorization with its
        // challenges as a JSON array in position order (one round trip instead of five).
        let authorization_rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT id, account_id, identifier, expires, created_at, deactivated, \
             {CHALLENGES_JSON}::text AS challenges \
             FROM authorizations a WHERE id = ANY($1)"
        )))
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        let authorizations = authorization_rows
            .iter()
            .map(authorization_with_challenges)
            .collect::<StoreResult<Vec<_>>>()?;
        rows::in_order(ids, authorizations)
    }

    async fn authorization_of_challenge(&self, challenge_id: &str) -> StoreResult<Authorization> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT id, account_id, identifier, expires, created_at, deactivated, \
             {CHALLENGES_JSON}::text AS challenges \
             FROM authorizations a \
             WHERE id = (SELECT authorization_id FROM challenges WHERE id = $1)"
        )))
        .bind(challenge_id)
        .fetch_one(&self.pool)
        .await?;
        authorization_with_challenges(&row)
    }

    async fn order_with_authorizations(
        &self,
        id: &str,
    ) -> StoreResult<(Order, Vec<Authorization>)> {
        // The order, its authorization ids and the authorizations with their challenges in one
        // statement: one snapshot and one round trip where there were two (issue 9).
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT id, account_id, identifiers, not_before, not_after, expires, created_at, \
             processing_since, certificate_id, error, profile, replaces, \
             COALESCE((SELECT json_agg(json_build_object('id', a.id, \
                 'account_id', a.account_id, 'identifier', a.identifier, \
                 'expires', a.expires, 'created_at', a.created_at, \
                 'deactivated', a.deactivated, 'challenges', {CHALLENGES_JSON}) \
                 ORDER BY l.position) \
               FROM order_authorizations l JOIN authorizations a ON a.id = l.authorization_id \
               WHERE l.order_id = orders.id), '[]')::text AS authorizations \
             FROM orders WHERE id = $1"
        )))
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        // In position order; the foreign keys guarantee every listed authorization exists.
        let listed: Vec<JsonRow> = from_json_text(&row.try_get::<String, _>("authorizations")?)?;
        let mut authorizations = Vec::with_capacity(listed.len());
        for nested in &listed {
            let mut authorization = rows::authorization(&rows::JsonColumns(nested))?;
            let Some(serde_json::Value::Array(challenges)) = nested.get("challenges") else {
                return Err(other("an authorization's challenges are not a JSON array"));
            };
            for challenge in challenges {
                let serde_json::Value::Object(challenge) = challenge else {
                    return Err(other("a challenge is not a JSON object"));
                };
                authorization
                    .challenges
                    .push(rows::challenge(&rows::JsonColumns(challenge))?);
            }
            authorizations.push(authorization);
        }
        let authorization_ids = authorizations.iter().map(|a| a.id.clone()).collect();
        Ok((rows::order(&row, authorization_ids)?, authorizations))
    }

    async fn challenge(&self, id: &str) -> StoreResult<Challenge> {
        let row = sqlx::query(
            "SELECT id, authorization_id, kind, token, status, validated_at, error, \
             token_identity FROM challenges WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        rows::challenge(&row)
    }

    async fn valid_authorization(
        &self,
        account_id: &str,
        identifier: &Identifier,
        valid_at: OffsetDateTime,
    ) -> StoreResult<Option<Authorization>> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT a.id FROM authorizations a \
             WHERE a.account_id = $1 AND a.identifier = $2 AND NOT a.deactivated \
             AND a.expires > $3 \
             AND EXISTS (SELECT 1 FROM challenges c \
                         WHERE c.authorization_id = a.id AND c.status = $4) \
             ORDER BY a.expires DESC, a.id LIMIT 1",
        )
        .bind(account_id)
        .bind(to_json(identifier)?)
        .bind(secs(valid_at))
        .bind(ChallengeStatus::Valid.as_str())
        .fetch_optional(&self.pool)
        .await?;
        match id {
            Some(id) => Ok(Some(self.authorization(&id).await?)),
            None => Ok(None),
        }
    }

    async fn insert_authorization(&self, authorization: &Authorization) -> StoreResult<()> {
        rows::check_nesting(std::slice::from_ref(authorization))?;
        // One statement, so no transaction (foreign keys are checked at its end).
        let columns = AuthorizationColumns::of(std::slice::from_ref(authorization))?;
        let sql = format!("WITH {NEW_AUTHORIZATIONS} SELECT count(*) FROM new_challenges");
        columns
            .bind(sqlx::query(AssertSqlSafe(sql)))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn transition_challenge(
        &self,
        id: &str,
        from: ChallengeStatus,
        to: ChallengeStatus,
        validated_at: Option<OffsetDateTime>,
        error: Option<&Problem>,
    ) -> StoreResult<bool> {
        // Guarded on the old status, so of two racing requests exactly one moves it.
        guarded_update(
            sqlx::query(
                "WITH moved AS (UPDATE challenges SET status = $1, validated_at = $2, \
                 error = $3 WHERE id = $4 AND status = $5 RETURNING 1) \
                 SELECT EXISTS (SELECT 1 FROM moved), \
                 EXISTS (SELECT 1 FROM challenges WHERE id = $4)",
            )
            .bind(to.as_str())
            .bind(opt_secs(validated_at))
            .bind(opt_json(error)?)
            .bind(id)
            .bind(from.as_str()),
            &self.pool,
        )
        .await
    }

    async fn validate_challenge_with_token(
        &self,
        id: &str,
        from: ChallengeStatus,
        identity: &serde_json::Value,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        // Guarded on the old status, as transition_challenge.
        guarded_update(
            sqlx::query(
                "WITH moved AS (UPDATE challenges SET status = $1, validated_at = $2, \
                 token_identity = $3, error = NULL WHERE id = $4 AND status = $5 RETURNING 1) \
                 SELECT EXISTS (SELECT 1 FROM moved), \
                 EXISTS (SELECT 1 FROM challenges WHERE id = $4)",
            )
            .bind(ChallengeStatus::Valid.as_str())
            .bind(secs(at))
            .bind(to_json(identity)?)
            .bind(id)
            .bind(from.as_str()),
            &self.pool,
        )
        .await
    }

    async fn begin_finalize(&self, order_id: &str, at: OffsetDateTime) -> StoreResult<bool> {
        guarded_update(
            sqlx::query(
                "WITH began AS (UPDATE orders SET processing_since = $1 WHERE id = $2 \
                 AND processing_since IS NULL AND certificate_id IS NULL AND error IS NULL \
                 RETURNING 1) \
                 SELECT EXISTS (SELECT 1 FROM began), EXISTS (SELECT 1 FROM orders WHERE id = $2)",
            )
            .bind(secs(at))
            .bind(order_id),
            &self.pool,
        )
        .await
    }

    async fn complete_order(&self, certificate: &Certificate) -> StoreResult<()> {
        complete_order_rows(&self.pool, certificate, None).await
    }

    async fn fail_order(&self, order_id: &str, error: &Problem) -> StoreResult<()> {
        let result = sqlx::query("UPDATE orders SET error = $1 WHERE id = $2")
            .bind(to_json(error)?)
            .bind(order_id)
            .execute(&self.pool)
            .await?;
        if result.rows_affected() != 1 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn certificate(&self, id: &str) -> StoreResult<Certificate> {
        let row = sqlx::query(
            "SELECT id, order_id, account_id, serial, chain_pem, not_before, not_after, \
             created_at FROM certificates WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        rows::certificate(&row)
    }

    // Revocation and CRLs.
    async fn certificate_by_serial(&self, serial: &str) -> StoreResult<Certificate> {
        let row = sqlx::query(
            "SELECT id, order_id, account_id, serial, chain_pem, not_before, not_after, \
             created_at FROM certificates WHERE serial = $1",
        )
        .bind(serial)
        .fetch_one(&self.pool)
        .await?;
        rows::certificate(&row)
    }

    // --- ACME Renewal Information (RFC 9773), issue 4 ---

    async fn renewal_state(&self, serial: &str) -> StoreResult<RenewalState> {
        let row = sqlx::query(
            "SELECT id, order_id, account_id, serial, chain_pem, not_before, not_after, \
             created_at, revoked_at, replaced_by_order, renewal_window_start, \
             renewal_window_end FROM certificates WHERE serial = $1",
        )
        .bind(serial)
        .fetch_one(&self.pool)
        .await?;
        rows::renewal_state(&row)
    }

    async fn insert_replacing_order(
        &self,
        order: &Order,
        new_authorizations: &[Authorization],
        replaced_certificate_id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        rows::check_nesting(new_authorizations)?;
        let mut tx = self.pool.begin().await?;
        // The guard decides races between replicas: of two orders naming the certificate, the
        // second finds replaced_by_order set (after waiting for the first one's row lock) and
        // changes nothing. An order that can no longer produce a certificate releases it.
        let result = sqlx::query(
            "UPDATE certificates SET replaced_by_order = $1 WHERE id = $2 \
             AND (replaced_by_order IS NULL OR replaced_by_order IN ( \
                 SELECT id FROM orders WHERE certificate_id IS NULL \
                 AND (error IS NOT NULL OR (processing_since IS NULL AND expires <= $3))))",
        )
        .bind(&order.id)
        .bind(replaced_certificate_id)
        .bind(secs(now))
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() != 1 {
            exists(
                &mut tx,
                "SELECT 1 FROM certificates WHERE id = $1",
                replaced_certificate_id,
            )
            .await?;
            return Ok(false);
        }
        insert_order_rows(&mut *tx, order, new_authorizations).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn set_renewal_window(
        &self,
        certificate_id: &str,
        window: Option<(OffsetDateTime, OffsetDateTime)>,
    ) -> StoreResult<()> {
        let result = sqlx::query(
            "UPDATE certificates SET renewal_window_start = $1, renewal_window_end = $2 \
             WHERE id = $3",
        )
        .bind(window.map(|(start, _)| secs(start)))
        .bind(window.map(|(_, end)| secs(end)))
        .bind(certificate_id)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
    // --- end of ACME Renewal Information ---

    async fn revoke_certificate(
        &self,
        id: &str,
        reason: u8,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let revoked = revoke_rows(&mut tx, id, reason, at).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn revoked_certificates(
        &self,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<RevokedCertificate>> {
        let found = sqlx::query(
            "SELECT serial, not_after, revoked_at, revocation_reason FROM certificates \
             WHERE revoked_at IS NOT NULL AND not_after > $1 ORDER BY serial",
        )
        .bind(secs(now))
        .fetch_all(&self.pool)
        .await?;
        found.iter().map(rows::revoked_certificate).collect()
    }

    async fn next_crl_number(&self, issuer: &str) -> StoreResult<i64> {
        // One statement: the row lock (PostgreSQL) or the write lock (SQLite) serialises
        // replicas, and each caller sees its own increment.
        let number: i64 = sqlx::query_scalar(
            "INSERT INTO crl_numbers (issuer, last) VALUES ($1, 1) \
             ON CONFLICT (issuer) DO UPDATE SET last = crl_numbers.last + 1 RETURNING last",
        )
        .bind(issuer)
        .fetch_one(&self.pool)
        .await?;
        Ok(number)
    }

    async fn has_valid_authorization(
        &self,
        account_id: &str,
        identifier: &Identifier,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        // authority::state::authorization_status: valid = a valid challenge, not deactivated,
        // and now < expires.
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM authorizations a \
             WHERE a.account_id = $1 AND a.identifier = $2 \
             AND a.deactivated = FALSE AND a.expires > $3 \
             AND EXISTS (SELECT 1 FROM challenges c \
                         WHERE c.authorization_id = a.id AND c.status = $4) \
             LIMIT 1",
        )
        .bind(account_id)
        .bind(to_json(identifier)?)
        .bind(secs(now))
        .bind(ChallengeStatus::Valid.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    // --- periodic jobs (issue 7) ---
    async fn acquire_lease(
        &self,
        job: &str,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<bool> {
        let result = sqlx::query(jobs_sql::ACQUIRE_LEASE)
            .bind(job)
            .bind(holder)
            .bind(secs(now))
            .bind(secs(until))
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn release_lease(&self, job: &str, holder: &str) -> StoreResult<()> {
        sqlx::query(jobs_sql::RELEASE_LEASE)
            .bind(job)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn purge_expired(&self, before: OffsetDateTime, batch: u32) -> StoreResult<Purged> {
        let mut tx = self.pool.begin().await?;
        let mut deleted = [0u64; 7];
        for (n, statement) in jobs_sql::PURGE.iter().enumerate() {
            deleted[n] = sqlx::query(statement.as_str())
                .bind(secs(before))
                .bind(i64::from(batch))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(Purged {
            orders: deleted[jobs_sql::PURGE_ORDERS_COUNTED],
            retained: deleted[jobs_sql::PURGE_RETAINED_COUNTED],
            authorizations: deleted[jobs_sql::PURGE_AUTHORIZATIONS_COUNTED],
        })
    }

    async fn overdue_renewals(
        &self,
        query: &RenewalQuery,
        limit: u32,
    ) -> StoreResult<Vec<OverdueRenewal>> {
        let mut statement = sqlx::query(jobs_sql::OVERDUE_RENEWALS.as_str());
        for value in jobs_sql::bind_order(query) {
            statement = statement.bind(value);
        }
        let rows = statement
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::overdue_renewal).collect()
    }

    async fn mark_renewal_alerted(
        &self,
        certificate_id: &str,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let result = sqlx::query(jobs_sql::MARK_RENEWAL_ALERTED)
            .bind(certificate_id)
            .bind(secs(at))
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn renewal_counts(&self, query: &RenewalQuery) -> StoreResult<Vec<RenewalCounts>> {
        let mut statement = sqlx::query(jobs_sql::RENEWAL_COUNTS.as_str());
        for value in jobs_sql::bind_order(query) {
            statement = statement.bind(value);
        }
        let rows = statement.fetch_all(&self.pool).await?;
        rows.iter().map(rows::renewal_counts).collect()
    }
    // --- admin API (issue 7) ---

    async fn certificate_records(
        &self,
        filter: &CertificateFilter,
        after: Option<&CertificateCursor>,
        now: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<CertificateRecord>> {
        let found = sqlx::query(
            "SELECT c.id, c.order_id, c.account_id, c.serial, c.chain_pem, c.not_before, \
             c.not_after, c.created_at, c.revoked_at, c.revocation_reason, o.identifiers \
             FROM certificates c JOIN orders o ON o.id = c.order_id WHERE ($1::text IS NULL OR o.identifiers LIKE $1::text ESCAPE '\\') \
             AND ($2::text IS NULL OR c.account_id = $2::text) \
             AND ($3::text IS NULL \
                  OR ($3::text = 'revoked' AND c.revoked_at IS NOT NULL) \
                  OR ($3::text = 'active' AND c.revoked_at IS NULL AND c.not_after > $4::bigint) \
                  OR ($3::text = 'expired' AND c.revoked_at IS NULL AND c.not_after <= $4::bigint)) \
             AND ($5::bigint IS NULL OR c.not_after < $5::bigint) \
             AND ($6::bigint IS NULL OR c.created_at > $6::bigint OR (c.created_at = $6::bigint AND c.id COLLATE \"C\" > $7::text)) \
             ORDER BY c.created_at, c.id COLLATE \"C\" LIMIT $8",
        )
        .bind(filter.name_pattern())
        .bind(filter.account_id.as_deref())
        .bind(filter.status.map(CertificateStatus::as_str))
        .bind(secs(now))
        .bind(opt_secs(filter.expiring_before))
        .bind(after.map(|a| secs(a.created_at)))
        .bind(after.map(|a| a.id.as_str()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        found.iter().map(rows::certificate_record).collect()
    }

    async fn certificate_record(&self, serial: &str) -> StoreResult<CertificateRecord> {
        let row = sqlx::query(
            "SELECT c.id, c.order_id, c.account_id, c.serial, c.chain_pem, c.not_before, \
             c.not_after, c.created_at, c.revoked_at, c.revocation_reason, o.identifiers \
             FROM certificates c JOIN orders o ON o.id = c.order_id WHERE c.serial = $1",
        )
        .bind(serial)
        .fetch_one(&self.pool)
        .await?;
        rows::certificate_record(&row)
    }

    async fn certificate_counts(&self, now: OffsetDateTime) -> StoreResult<CertificateCounts> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS issued, \
             COALESCE(SUM(CASE WHEN revoked_at IS NULL AND not_after > $1::bigint THEN 1 ELSE 0 END), 0) AS active, \
             COALESCE(SUM(CASE WHEN revoked_at IS NULL AND not_after <= $1::bigint THEN 1 ELSE 0 END), 0) AS expired, \
             COALESCE(SUM(CASE WHEN revoked_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS revoked, \
             (SELECT COUNT(*) FROM accounts) AS accounts FROM certificates",
        )
        .bind(secs(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(CertificateCounts {
            issued: rows::count(&row, "issued")?,
            active: rows::count(&row, "active")?,
            expired: rows::count(&row, "expired")?,
            revoked: rows::count(&row, "revoked")?,
            accounts: rows::count(&row, "accounts")?,
        })
    }

    async fn accounts_page(
        &self,
        after: Option<&AccountCursor>,
        limit: u32,
    ) -> StoreResult<Vec<Account>> {
        let found = sqlx::query(
            "SELECT id, key_thumbprint, jwk, contact, status, created_at, provisioner \
             FROM accounts WHERE ($1::bigint IS NULL OR created_at > $1::bigint \
             OR (created_at = $1::bigint AND id COLLATE \"C\" > $2::text)) \
             ORDER BY created_at, id COLLATE \"C\" LIMIT $3",
        )
        .bind(after.map(|a| secs(a.created_at)))
        .bind(after.map(|a| a.id.as_str()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        found.iter().map(rows::account).collect()
    }
    // --- end of admin API (issue 7) ---

    // --- audit log and rate limits (issue 7) ---

    async fn append_audit(&self, events: &[AuditEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for event in events {
            insert_audit(&mut tx, event).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn audit_events(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AuditRecord>> {
        // One statement for every filter: an absent one compares NULL and matches all.
        let found = sqlx::query(
            "SELECT id, at, kind, actor, object, outcome, detail, request_id FROM audit_log \
             WHERE ($1::TEXT IS NULL OR kind = $1) AND ($2::TEXT IS NULL OR actor = $2) \
             AND ($3::TEXT IS NULL OR object = $3) AND ($4::BIGINT IS NULL OR at >= $4) \
             AND ($5::BIGINT IS NULL OR at < $5) AND ($6::BIGINT IS NULL OR id < $6) \
             ORDER BY id DESC LIMIT $7",
        )
        .bind(filter.kind.as_deref())
        .bind(filter.actor.as_deref())
        .bind(filter.object.as_deref())
        .bind(opt_secs(filter.since))
        .bind(opt_secs(filter.until))
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        found.iter().map(rows::audit_record).collect()
    }

    async fn complete_order_audited(
        &self,
        certificate: &Certificate,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        complete_order_rows(&self.pool, certificate, Some(event)).await
    }

    async fn revoke_certificate_audited(
        &self,
        id: &str,
        reason: u8,
        at: OffsetDateTime,
        event: &AuditEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let revoked = revoke_rows(&mut tx, id, reason, at).await?;
        if revoked {
            insert_audit(&mut tx, event).await?;
        }
        tx.commit().await?;
        Ok(revoked)
    }

    async fn take_rate_limit(
        &self,
        bucket: &str,
        limit: u32,
        window: Duration,
        now: OffsetDateTime,
    ) -> StoreResult<RateLimitOutcome> {
        let mut tx = self.pool.begin().await?;
        // Every replica's check-and-count of this bucket queues on one lock, held until the
        // transaction ends: the count and the insert are one step across replicas.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(bucket)
            .execute(&mut *tx)
            .await?;
        let outcome = rate_limit_outcome(&mut tx, bucket, limit, window, now).await?;
        if outcome == RateLimitOutcome::Allowed {
            sqlx::query("INSERT INTO rate_limit_events (bucket, at) VALUES ($1, $2)")
                .bind(bucket)
                .bind(secs(now))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    async fn check_rate_limit(
        &self,
        bucket: &str,
        limit: u32,
        window: Duration,
        now: OffsetDateTime,
    ) -> StoreResult<RateLimitOutcome> {
        let mut tx = self.pool.begin().await?;
        let outcome = rate_limit_outcome(&mut tx, bucket, limit, window, now).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn add_rate_limit_event(&self, bucket: &str, at: OffsetDateTime) -> StoreResult<()> {
        sqlx::query("INSERT INTO rate_limit_events (bucket, at) VALUES ($1, $2)")
            .bind(bucket)
            .bind(secs(at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn prune_rate_limits(&self, before: OffsetDateTime) -> StoreResult<u64> {
        let result = sqlx::query("DELETE FROM rate_limit_events WHERE at < $1")
            .bind(secs(before))
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
    // --- end of audit log and rate limits ---
}

/// The rows of a new order: its new authorizations with their challenges, the order, and its
/// authorization list, in one statement (issue 9: one round trip, where a transaction took
/// eight for one name). Foreign keys are checked at the end of the statement.
async fn insert_order_rows<'c>(
    executor: impl sqlx::Executor<'c, Database = Postgres>,
    order: &Order,
    new_authorizations: &[Authorization],
) -> StoreResult<()> {
    let authorizations = AuthorizationColumns::of(new_authorizations)?;
    let positions = (0..order.authorization_ids.len())
        .map(position)
        .collect::<StoreResult<Vec<i32>>>()?;
    let sql = format!(
        "WITH {NEW_AUTHORIZATIONS}, \
         new_order AS (\
           INSERT INTO orders (id, account_id, identifiers, not_before, not_after, expires, \
             created_at, processing_since, certificate_id, error, profile, replaces) \
           SELECT $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27 \
           WHERE (SELECT count(*) FROM new_challenges) >= 0 RETURNING 1) \
         INSERT INTO order_authorizations (order_id, position, authorization_id) \
         SELECT $16, * FROM UNNEST($28::integer[], $29::text[]) \
         WHERE (SELECT count(*) FROM new_order) >= 0"
    );
    authorizations
        .bind(sqlx::query(AssertSqlSafe(sql)))
        .bind(&order.id)
        .bind(&order.account_id)
        .bind(to_json(&order.identifiers)?)
        .bind(opt_secs(order.not_before))
        .bind(opt_secs(order.not_after))
        .bind(secs(order.expires))
        .bind(secs(order.created_at))
        .bind(opt_secs(order.processing_since))
        .bind(&order.certificate_id)
        .bind(opt_json(order.error.as_ref())?)
        .bind(&order.profile)
        .bind(&order.replaces)
        .bind(positions)
        .bind(&order.authorization_ids)
        .execute(executor)
        .await?;
    Ok(())
}

/// Inserts authorizations and their challenges: parameters $1 to $15, bound by
/// `AuthorizationColumns::bind`. Each part waits for the one before it (the `count(*) >= 0`
/// one-time filters): a conflict names the same key as the inserts in sequence did.
const NEW_AUTHORIZATIONS: &str = "new_authorizations AS (\
       INSERT INTO authorizations (id, account_id, identifier, expires, created_at, \
         deactivated) \
       SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], \
         $5::bigint[], $6::boolean[]) RETURNING 1), \
     new_challenges AS (\
       INSERT INTO challenges (id, authorization_id, position, kind, token, status, \
         validated_at, error, token_identity) \
       SELECT * FROM UNNEST($7::text[], $8::text[], $9::integer[], $10::text[], \
         $11::text[], $12::text[], $13::bigint[], $14::text[], $15::text[]) \
       WHERE (SELECT count(*) FROM new_authorizations) >= 0 RETURNING 1)";

/// Authorizations, and their challenges numbered in order, as one array per column for
/// `UNNEST`.
#[derive(Default)]
struct AuthorizationColumns {
    ids: Vec<String>,
    account_ids: Vec<String>,
    identifiers: Vec<String>,
    expires: Vec<i64>,
    created_at: Vec<i64>,
    deactivated: Vec<bool>,
    challenges: ChallengeColumns,
}

#[derive(Default)]
struct ChallengeColumns {
    ids: Vec<String>,
    authorization_ids: Vec<String>,
    positions: Vec<i32>,
    kinds: Vec<String>,
    tokens: Vec<String>,
    statuses: Vec<&'static str>,
    validated_at: Vec<Option<i64>>,
    errors: Vec<Option<String>>,
    token_identities: Vec<Option<String>>,
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

impl AuthorizationColumns {
    fn of(authorizations: &[Authorization]) -> StoreResult<Self> {
        let mut columns = Self::default();
        for authorization in authorizations {
            columns.push(authorization)?;
        }
        Ok(columns)
    }

    /// Binds $1 to $15 of `NEW_AUTHORIZATIONS`.
    fn bind(self, query: PgQuery<'_>) -> PgQuery<'_> {
        let challenges = self.challenges;
        query
            .bind(self.ids)
            .bind(self.account_ids)
            .bind(self.identifiers)
            .bind(self.expires)
            .bind(self.created_at)
            .bind(self.deactivated)
            .bind(challenges.ids)
            .bind(challenges.authorization_ids)
            .bind(challenges.positions)
            .bind(challenges.kinds)
            .bind(challenges.tokens)
            .bind(challenges.statuses)
            .bind(challenges.validated_at)
            .bind(challenges.errors)
            .bind(challenges.token_identities)
    }

    fn push(&mut self, authorization: &Authorization) -> StoreResult<()> {
        self.ids.push(authorization.id.clone());
        self.account_ids.push(authorization.account_id.clone());
        self.identifiers.push(to_json(&authorization.identifier)?);
        self.expires.push(secs(authorization.expires));
        self.created_at.push(secs(authorization.created_at));
        self.deactivated.push(authorization.deactivated);
        let challenges = &mut self.challenges;
        for (index, challenge) in authorization.challenges.iter().enumerate() {
            challenges.ids.push(challenge.id.clone());
            challenges.authorization_ids.push(authorization.id.clone());
            challenges.positions.push(position(index)?);
            challenges.kinds.push(challenge.kind.clone());
            challenges.tokens.push(challenge.token.clone());
            challenges.statuses.push(challenge.status.as_str());
            challenges
                .validated_at
                .push(opt_secs(challenge.validated_at));
            challenges.errors.push(opt_json(challenge.error.as_ref())?);
            challenges
                .token_identities
                .push(opt_json(challenge.token_identity.as_ref())?);
        }
        Ok(())
    }
}

/// Runs a guarded update written as `WITH changed AS (UPDATE … RETURNING 1) SELECT
/// EXISTS (changed), EXISTS (the row)`: `Ok(true)` if it changed the row, `Ok(false)` if
/// another writer got there first, `NotFound` if there is no such row. One statement, so
/// one round trip and no transaction (issue 9).
async fn guarded_update(query: PgQuery<'_>, pool: &PgPool) -> StoreResult<bool> {
    let (changed, present): (bool, bool) = {
        let row = query.fetch_one(pool).await?;
        (row.try_get(0)?, row.try_get(1)?)
    };
    match (changed, present) {
        (true, _) => Ok(true),
        (false, true) => Ok(false),
        (false, false) => Err(StoreError::NotFound),
    }
}

/// `NotFound` unless `sql` (a `SELECT 1 … WHERE id = $1`) finds a row: tells "someone else got
/// there first" (`Ok(false)`) apart from "no such row" after a guarded update changed nothing.
async fn exists(
    tx: &mut Transaction<'static, Postgres>,
    sql: &'static str,
    id: &str,
) -> StoreResult<()> {
    sqlx::query(sql).bind(id).fetch_one(&mut **tx).await?;
    Ok(())
}

/// The rows of `complete_order`: the certificate and the order's link to it, only if the
/// order has neither a certificate nor an error yet, and the audit event if there is one. One
/// statement (issue 9): the order is claimed first, and the certificate and the event are
/// inserted only if that worked, so nothing needs rolling back when it did not.
async fn complete_order_rows(
    pool: &PgPool,
    certificate: &Certificate,
    event: Option<&AuditEvent>,
) -> StoreResult<()> {
    const CLAIM_AND_ISSUE: &str = "WITH claimed AS (UPDATE orders SET certificate_id = $1 \
         WHERE id = $2 AND certificate_id IS NULL AND error IS NULL RETURNING 1), \
       issued AS (INSERT INTO certificates (id, order_id, account_id, serial, chain_pem, \
           not_before, not_after, created_at) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE (SELECT count(*) FROM claimed) = 1 \
         RETURNING 1)";
    // Whether it was issued, and whether the order exists: no order is `NotFound`.
    const RESULT: &str =
        "SELECT (SELECT count(*) FROM issued), EXISTS (SELECT 1 FROM orders WHERE id = $2)";
    let sql = match event {
        None => format!("{CLAIM_AND_ISSUE} {RESULT}"),
        Some(_) => format!(
            "{CLAIM_AND_ISSUE}, audited AS (INSERT INTO audit_log (at, kind, actor, object, \
               outcome, detail, request_id) \
             SELECT $9, $10, $11, $12, $13, $14, $15 WHERE (SELECT count(*) FROM issued) = 1 \
             RETURNING 1) {RESULT}"
        ),
    };
    let mut query = sqlx::query_as::<_, (i64, bool)>(AssertSqlSafe(sql))
        .bind(&certificate.id)
        .bind(&certificate.order_id)
        .bind(&certificate.account_id)
        .bind(&certificate.serial)
        .bind(&certificate.chain_pem)
        .bind(secs(certificate.not_before))
        .bind(secs(certificate.not_after))
        .bind(secs(certificate.created_at));
    if let Some(event) = event {
        query = query
            .bind(secs(event.at))
            .bind(&event.kind)
            .bind(&event.actor)
            .bind(&event.object)
            .bind(&event.outcome)
            .bind(to_json(&event.detail)?)
            .bind(event.request_id.as_deref());
    }
    match query.fetch_one(pool).await? {
        (1, _) => Ok(()),
        (_, true) => Err(StoreError::Conflict(rows::ORDER_DONE.to_owned())),
        (_, false) => Err(StoreError::NotFound),
    }
}

/// The guarded update of `revoke_certificate`; `NotFound` if there is no such certificate.
async fn revoke_rows(
    tx: &mut Transaction<'static, Postgres>,
    id: &str,
    reason: u8,
    at: OffsetDateTime,
) -> StoreResult<bool> {
    // Guarded on revoked_at, so of two racing revocations exactly one records its reason.
    let result = sqlx::query(
        "UPDATE certificates SET revoked_at = $1, revocation_reason = $2 \
             WHERE id = $3 AND revoked_at IS NULL",
    )
    .bind(secs(at))
    .bind(i64::from(reason))
    .bind(id)
    .execute(&mut **tx)
    .await?;
    let revoked = result.rows_affected() == 1;
    if !revoked {
        exists(tx, "SELECT 1 FROM certificates WHERE id = $1", id).await?;
    }
    Ok(revoked)
}

// --- audit log and rate limits (issue 7) ---

async fn insert_audit(
    tx: &mut Transaction<'static, Postgres>,
    event: &AuditEvent,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, kind, actor, object, outcome, detail, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(secs(event.at))
    .bind(&event.kind)
    .bind(&event.actor)
    .bind(&event.object)
    .bind(&event.outcome)
    .bind(to_json(&event.detail)?)
    .bind(event.request_id.as_deref())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Whether `bucket` has room for one more event at `now`; if not, when it will.
async fn rate_limit_outcome(
    tx: &mut Transaction<'static, Postgres>,
    bucket: &str,
    limit: u32,
    window: Duration,
    now: OffsetDateTime,
) -> StoreResult<RateLimitOutcome> {
    let since = secs(now - window);
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM rate_limit_events WHERE bucket = $1 AND at > $2")
            .bind(bucket)
            .bind(since)
            .fetch_one(&mut **tx)
            .await?;
    let limit = i64::from(limit);
    if count < limit {
        return Ok(RateLimitOutcome::Allowed);
    }
    // With `count` events and room for `limit`, a slot frees when the (count - limit + 1)th
    // oldest leaves the window.
    let oldest: i64 = sqlx::query_scalar(
        "SELECT at FROM rate_limit_events WHERE bucket = $1 AND at > $2 \
         ORDER BY at LIMIT 1 OFFSET $3",
    )
    .bind(bucket)
    .bind(since)
    .bind(count - limit)
    .fetch_one(&mut **tx)
    .await?;
    rows::retry_at(oldest, window)
}
// --- end of audit log and rate limits ---
