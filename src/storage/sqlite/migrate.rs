//! Schema migrations for SQLite, applied at start-up on the writer connection before any other
//! connection opens. The bookkeeping is sqlx's own `_sqlx_migrations` table, with its SHA-384
//! checksums, so databases made while this backend ran on sqlx keep working, and the rules
//! stay sqlx's: an applied migration whose text changed, one that failed half-way, or one this
//! build does not know stops the start.

use std::time::Instant;

use rusqlite::{Connection, OptionalExtension, params};

use crate::storage::StoreResult;
use crate::storage::rows::other;

/// Version, description, SQL. Append only: a changed text is refused at start-up (its
/// checksum no longer matches), so a schema change is always a new file.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "accounts",
        include_str!("../../../migrations/sqlite/0002_accounts.sql"),
    ),
    (
        3,
        "revocation",
        include_str!("../../../migrations/sqlite/0003_revocation.sql"),
    ),
    (
        4,
        "challenges",
        include_str!("../../../migrations/sqlite/0004_challenges.sql"),
    ),
    (
        5,
        "profiles",
        include_str!("../../../migrations/sqlite/0005_profiles.sql"),
    ),
    (
        6,
        "renewal",
        include_str!("../../../migrations/sqlite/0006_renewal.sql"),
    ),
    (
        7,
        "provisioners",
        include_str!("../../../migrations/sqlite/0007_provisioners.sql"),
    ),
    (
        9,
        "audit_limits",
        include_str!("../../../migrations/sqlite/0009_audit_limits.sql"),
    ),
    (
        10,
        "jobs",
        include_str!("../../../migrations/sqlite/0010_jobs.sql"),
    ),
    (
        11,
        "purge_scale",
        include_str!("../../../migrations/sqlite/0011_purge_scale.sql"),
    ),
];

/// sqlx's table, column for column.
const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations ( \
     version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
     installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, \
     checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)";

fn checksum(sql: &str) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, sql.as_bytes())
        .as_ref()
        .to_vec()
}

/// Applies every migration the database lacks, each in its own transaction.
pub(super) fn run(connection: &mut Connection) -> StoreResult<()> {
    // The write lock for the whole check, so two processes starting on one file do not both
    // apply the same migration.
    let tx = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch(BOOKKEEPING)?;
    let applied: Vec<(i64, bool, Vec<u8>)> = {
        let mut statement =
            tx.prepare("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")?;
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
            .collect::<Result<_, _>>()?
    };
    for (version, success, stored) in &applied {
        if !success {
            return Err(other(format!(
                "migration {version} is partially applied; fix and remove the migration row"
            )));
        }
        match MIGRATIONS.iter().find(|(v, _, _)| v == version) {
            None => {
                return Err(other(format!(
                    "migration {version} was applied but is missing in this build"
                )));
            }
            Some((_, _, sql)) if checksum(sql) != *stored => {
                return Err(other(format!(
                    "migration {version} was previously applied but has been modified"
                )));
            }
            Some(_) => {}
        }
    }
    for &(version, description, sql) in MIGRATIONS {
        let done: Option<i64> = tx
            .query_row(
                "SELECT version FROM _sqlx_migrations WHERE version = ?",
                [version],
                |row| row.get(0),
            )
            .optional()?;
        if done.is_some() {
            continue;
        }
        let started = Instant::now();
        tx.execute_batch(sql)
            .map_err(|e| other(format!("migration {version} ({description}): {e}")))?;
        let elapsed = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
        tx.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES (?, ?, TRUE, ?, ?)",
            params![version, description, checksum(sql), elapsed],
        )?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_refuse_a_changed_text() {
        let mut connection = Connection::open_in_memory().expect("open");
        run(&mut connection).expect("first run");
        run(&mut connection).expect("second run changes nothing");
        let count: i64 = connection
            .query_row("SELECT COUNT(*) FROM _sqlx_migrations", [], |r| r.get(0))
            .expect("count");
        assert_eq!(count, MIGRATIONS.len() as i64);
        connection
            .execute(
                "UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 1",
                [],
            )
            .expect("tamper");
        let e = run(&mut connection).expect_err("a changed migration is refused");
        assert!(e.to_string().contains("migration 1"), "{e}");
    }

    #[test]
    fn checksums_are_sqlx_sha384() {
        // sqlx stores Sha384(sql); the empty string's is the well-known value.
        assert_eq!(
            checksum("")[..4],
            [0x38, 0xb0, 0x60, 0xa7],
            "SHA-384 of the empty string starts 38b060a7"
        );
    }
}
