//! Filling a Mayfly SQLite database with realistic rows, fast, for the scale measurement
//! ("throughput with 1,000,000 certificates already in the database").
//!
//! The `Store` trait writes one order (or one certificate) per transaction, which at durable
//! commit costs (CRATES.md: about 0.3 ms each) would take hours for a million certificates.
//! So this writes the rows with sqlx directly, against the schema of `migrations/sqlite`
//! (applied first by opening the database through `mayfly::storage::connect`), in large
//! transactions of multi-row `INSERT`s on one connection with `synchronous = OFF`: a seeding
//! run that crashes is simply run again. Encodings (identifier JSON, statuses, JWKs) come from
//! Mayfly's own types, so the rows are exactly what the server would have written.
//!
//! Each certificate brings: its order (valid, with `processing_since` and `certificate_id`),
//! one authorization for one DNS name with the three challenges Mayfly offers (http-01 valid,
//! dns-01 and tls-alpn-01 pending), the order-authorization link, and the certificate row with
//! a real PEM chain (a P-256 leaf and an intermediate, about 1.3 kB) and a unique serial.
//! Creation times are spread evenly over the last `spread` (30 days by default), so most rows
//! have expired, as in a CA that has run for a while.
//!
//! And as in such a CA, names are renewed: each name gets a new certificate every half
//! lifetime (80 hours) over the spread, by the same account, so only the newest certificate of
//! each name is live and not yet renewed, and none is overdue. One account (a real P-256 JWK)
//! owns the names of about `certificates_per_account` certificates. Expired authorizations of
//! issued orders are no purge candidates (migration 0011_purge_scale), as the purge would
//! have left them.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mayfly::acme::{AccountStatus, ChallengeStatus, Identifier};
use mayfly::authority::{random_bytes, random_id};
use mayfly::jose::SigningKey;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};

/// Rows per `INSERT` statement: well under SQLite's limit of 32,766 bound variables.
const ROWS_PER_STATEMENT: usize = 100;
/// A certificate lives 160 hours (Mayfly's default lifetime).
const CERTIFICATE_LIFETIME: i64 = 160 * 3600;
/// Orders and authorizations expire a week after creation.
const PENDING_LIFETIME: i64 = 7 * 24 * 3600;

#[derive(Clone, Debug)]
pub struct SeedOptions {
    /// `sqlite://…/mayfly.db?mode=rwc`, as Mayfly's `database.url`.
    pub database_url: String,
    pub certificates: u64,
    pub certificates_per_account: u64,
    /// Certificates per transaction.
    pub batch: u64,
    /// Creation times are spread evenly over this span, ending now.
    pub spread: Duration,
}

impl SeedOptions {
    pub fn new(database_url: String, certificates: u64) -> Self {
        SeedOptions {
            database_url,
            certificates,
            certificates_per_account: 20,
            batch: 10_000,
            spread: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Mayfly's default database URL for a data directory (`config.rs`, `database_url`).
pub fn database_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("mayfly.db").display())
}

/// What a seeding run wrote.
#[derive(Clone, Debug)]
pub struct SeedSummary {
    pub certificates: u64,
    pub accounts: u64,
    pub rows: u64,
    pub elapsed: Duration,
}

impl fmt::Display for SeedSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(f64::EPSILON);
        write!(
            f,
            "seeded {} certificates ({} accounts, {} rows) in {:.1} s: {:.0} certificates/s, {:.0} rows/s",
            self.certificates,
            self.accounts,
            self.rows,
            secs,
            self.certificates as f64 / secs,
            self.rows as f64 / secs
        )
    }
}

/// Writes `options.certificates` certificates with all their rows.
pub async fn seed(options: &SeedOptions) -> Result<SeedSummary> {
    // Creates the file if needed and applies Mayfly's migrations, exactly as `serve` would.
    drop(
        mayfly::storage::connect(&options.database_url, 1)
            .await
            .with_context(|| format!("opening {}", options.database_url))?,
    );
    let connect = SqliteConnectOptions::from_str(&options.database_url)?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Off)
        // The order and the certificate refer to each other; both rows are written together.
        .foreign_keys(false)
        .pragma("cache_size", "-262144");
    let mut connection = SqliteConnection::connect_with(&connect).await?;
    let chain_pem = sample_chain()?;
    let started = Instant::now();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let spread = i64::try_from(options.spread.as_secs()).unwrap_or(i64::MAX);
    let total = options.certificates;
    let per_account = options.certificates_per_account.max(1);
    let mut summary = SeedSummary {
        certificates: 0,
        accounts: 0,
        rows: 0,
        elapsed: Duration::ZERO,
    };
    let chains = Chains::new(total, spread, per_account);
    let mut accounts = Vec::new();
    let mut first = 0;
    while first < total {
        let last = (first + options.batch.max(1)).min(total);
        let mut rows = Rows::default();
        for index in first..last {
            let (name, account) = chains.of(index);
            if account == accounts.len() as u64 {
                let id = random_id();
                rows.account(&id, created_at(now, spread, index, total))?;
                accounts.push(id);
            }
            let account_id = &accounts[usize::try_from(account)?];
            rows.certificate(account_id, name, created_at(now, spread, index, total), now)?;
        }
        summary.accounts += rows.accounts.len() as u64;
        summary.rows += rows.write(&mut connection, &chain_pem).await?;
        summary.certificates = last;
        first = last;
    }
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut connection)
        .await?;
    connection.close().await?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Which name and which account each certificate is for: certificate `index` renews name
/// `index % names`, so the names' generations follow one another, a half lifetime apart.
struct Chains {
    names: u64,
    names_per_account: u64,
}

impl Chains {
    fn new(total: u64, spread: i64, certificates_per_account: u64) -> Self {
        let generations = (spread / (CERTIFICATE_LIFETIME / 2)).max(1).unsigned_abs();
        Chains {
            names: total.div_ceil(generations).max(1),
            names_per_account: (certificates_per_account / generations).max(1),
        }
    }

    /// The name and the account of certificate `index`.
    fn of(&self, index: u64) -> (u64, u64) {
        let name = index % self.names;
        (name, name / self.names_per_account)
    }
}

/// Certificate `index` of `total` was created `spread` seconds ago for the first, now for
/// the last.
fn created_at(now: i64, spread: i64, index: u64, total: u64) -> i64 {
    let remaining = i128::from(total.saturating_sub(index + 1));
    let offset = i128::from(spread) * remaining / i128::from(total.max(1));
    now - i64::try_from(offset).unwrap_or(spread)
}

struct AccountRow {
    id: String,
    thumbprint: String,
    jwk: String,
    contact: String,
    created_at: i64,
}

struct CertificateRows {
    account_id: String,
    order_id: String,
    authorization_id: String,
    /// Whether the purge would still look at the authorization (migration 0011_purge_scale).
    purge_candidate: bool,
    certificate_id: String,
    challenge_ids: [String; 3],
    tokens: [String; 3],
    identifier: String,
    identifiers: String,
    serial: String,
    created_at: i64,
}

#[derive(Default)]
struct Rows {
    accounts: Vec<AccountRow>,
    certificates: Vec<CertificateRows>,
}

impl Rows {
    fn account(&mut self, id: &str, created_at: i64) -> Result<()> {
        let key = SigningKey::generate_p256();
        let jwk = key.jwk();
        self.accounts.push(AccountRow {
            id: id.to_owned(),
            thumbprint: jwk.thumbprint(),
            jwk: serde_json::to_string(&jwk)?,
            contact: serde_json::to_string(&[format!("mailto:ops@{}.seed.example", &id[..8])])?,
            created_at,
        });
        Ok(())
    }

    fn certificate(
        &mut self,
        account_id: &str,
        name: u64,
        created_at: i64,
        now: i64,
    ) -> Result<()> {
        let identifier = Identifier::parse("dns", &format!("host{name}.seed.example"))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut serial = random_bytes::<16>();
        // Mayfly's serials never start with a zero digit (issuer::serial_hex).
        serial[0] |= 0x10;
        serial[0] &= 0x7f;
        self.certificates.push(CertificateRows {
            account_id: account_id.to_owned(),
            order_id: random_id(),
            authorization_id: random_id(),
            purge_candidate: created_at + PENDING_LIFETIME >= now,
            certificate_id: random_id(),
            challenge_ids: [random_id(), random_id(), random_id()],
            tokens: [random_id(), random_id(), random_id()],
            identifiers: serde_json::to_string(&[&identifier])?,
            identifier: serde_json::to_string(&identifier)?,
            serial: serial.iter().map(|byte| format!("{byte:02x}")).collect(),
            created_at,
        });
        Ok(())
    }

    /// Writes every row in one transaction; returns the number of rows.
    async fn write(&self, connection: &mut SqliteConnection, chain_pem: &str) -> Result<u64> {
        let mut tx = connection.begin().await?;
        let mut rows = 0u64;
        for chunk in self.accounts.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO accounts (id, key_thumbprint, jwk, contact, status, created_at) ",
            );
            insert.push_values(chunk, |mut row, account| {
                row.push_bind(&account.id)
                    .push_bind(&account.thumbprint)
                    .push_bind(&account.jwk)
                    .push_bind(&account.contact)
                    .push_bind(AccountStatus::Valid.as_str())
                    .push_bind(account.created_at);
            });
            rows += insert.build().execute(&mut *tx).await?.rows_affected();
        }
        for chunk in self.certificates.chunks(ROWS_PER_STATEMENT) {
            rows += insert_chunk(&mut tx, chunk, chain_pem).await?;
        }
        tx.commit().await?;
        Ok(rows)
    }
}

async fn insert_chunk(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    chunk: &[CertificateRows],
    chain_pem: &str,
) -> Result<u64> {
    let mut rows = 0;
    let mut orders = QueryBuilder::<Sqlite>::new(
        "INSERT INTO orders (id, account_id, identifiers, not_before, not_after, expires, \
         created_at, processing_since, certificate_id, error) ",
    );
    orders.push_values(chunk, |mut row, c| {
        row.push_bind(&c.order_id)
            .push_bind(&c.account_id)
            .push_bind(&c.identifiers)
            .push_bind(None::<i64>)
            .push_bind(None::<i64>)
            .push_bind(c.created_at + PENDING_LIFETIME)
            .push_bind(c.created_at)
            .push_bind(c.created_at + 1)
            .push_bind(&c.certificate_id)
            .push_bind(None::<String>);
    });
    rows += orders.build().execute(&mut **tx).await?.rows_affected();

    let mut authorizations = QueryBuilder::<Sqlite>::new(
        "INSERT INTO authorizations (id, account_id, identifier, expires, created_at, \
         deactivated, purge_candidate) ",
    );
    authorizations.push_values(chunk, |mut row, c| {
        row.push_bind(&c.authorization_id)
            .push_bind(&c.account_id)
            .push_bind(&c.identifier)
            .push_bind(c.created_at + PENDING_LIFETIME)
            .push_bind(c.created_at)
            .push_bind(false)
            .push_bind(i64::from(c.purge_candidate));
    });
    rows += authorizations
        .build()
        .execute(&mut **tx)
        .await?
        .rows_affected();

    let mut links = QueryBuilder::<Sqlite>::new(
        "INSERT INTO order_authorizations (order_id, position, authorization_id) ",
    );
    links.push_values(chunk, |mut row, c| {
        row.push_bind(&c.order_id)
            .push_bind(0_i64)
            .push_bind(&c.authorization_id);
    });
    rows += links.build().execute(&mut **tx).await?.rows_affected();

    let kinds = ["http-01", "dns-01", "tls-alpn-01"];
    let mut challenges = QueryBuilder::<Sqlite>::new(
        "INSERT INTO challenges (id, authorization_id, position, kind, token, status, \
         validated_at, error) ",
    );
    let challenge_rows = chunk
        .iter()
        .flat_map(|c| (0..kinds.len()).map(move |position| (c, position)));
    challenges.push_values(challenge_rows, |mut row, (c, position)| {
        let valid = position == 0;
        let status = if valid {
            ChallengeStatus::Valid
        } else {
            ChallengeStatus::Pending
        };
        row.push_bind(&c.challenge_ids[position])
            .push_bind(&c.authorization_id)
            .push_bind(position as i64)
            .push_bind(kinds[position])
            .push_bind(&c.tokens[position])
            .push_bind(status.as_str())
            .push_bind(valid.then_some(c.created_at))
            .push_bind(None::<String>);
    });
    rows += challenges.build().execute(&mut **tx).await?.rows_affected();

    let mut certificates = QueryBuilder::<Sqlite>::new(
        "INSERT INTO certificates (id, order_id, account_id, serial, chain_pem, not_before, \
         not_after, created_at) ",
    );
    certificates.push_values(chunk, |mut row, c| {
        row.push_bind(&c.certificate_id)
            .push_bind(&c.order_id)
            .push_bind(&c.account_id)
            .push_bind(&c.serial)
            .push_bind(chain_pem)
            .push_bind(c.created_at - 3600)
            .push_bind(c.created_at + CERTIFICATE_LIFETIME)
            .push_bind(c.created_at + 1);
    });
    rows += certificates
        .build()
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(rows)
}

/// A real leaf-plus-intermediate PEM chain, of the size Mayfly stores for each certificate.
fn sample_chain() -> Result<String> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "Mayfly seed intermediate");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let intermediate = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    let mut leaf = CertificateParams::new(vec!["host0.seed.example".to_owned()])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "host0.seed.example");
    leaf.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
        uris: vec!["http://127.0.0.1:14080/crl/intermediate.crl".to_owned()],
    }];
    leaf.use_authority_key_identifier_extension = true;
    let leaf = leaf.signed_by(&KeyPair::generate()?, &intermediate)?;
    Ok(format!("{}{}", leaf.pem(), intermediate.pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_times_span_the_spread_and_end_now() {
        let (now, spread) = (1_000_000, 1000);
        assert_eq!(created_at(now, spread, 0, 10), now - 900);
        assert_eq!(created_at(now, spread, 9, 10), now);
        assert_eq!(created_at(now, spread, 0, 1), now);
    }

    #[test]
    fn names_are_renewed_every_half_lifetime_by_one_account() {
        let spread = 30 * 24 * 3600;
        let chains = Chains::new(900, spread, 20);
        // 9 generations of 80 hours in 30 days: 100 names, 2 per account.
        assert_eq!((chains.names, chains.names_per_account), (100, 2));
        assert_eq!(chains.of(0), (0, 0));
        assert_eq!(chains.of(1), (1, 0));
        assert_eq!(chains.of(2), (2, 1));
        assert_eq!(chains.of(100), (0, 0));
        assert_eq!(chains.of(899), (99, 49));
        let now = 10_000_000;
        let step = created_at(now, spread, 105, 900) - created_at(now, spread, 5, 900);
        assert_eq!(step, CERTIFICATE_LIFETIME / 2);
    }

    #[tokio::test]
    async fn seeds_rows_the_store_can_read() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let url = database_url(dir.path());
        let mut options = SeedOptions::new(url.clone(), 45);
        options.batch = 20;
        let summary = seed(&options).await?;
        assert_eq!(summary.certificates, 45);
        assert_eq!(summary.accounts, 3);
        // Per certificate: order, authorization, link, 3 challenges, certificate.
        assert_eq!(summary.rows, 3 + 45 * 7);

        let store = mayfly::storage::connect(&url, 1).await?;
        let mut connection = SqliteConnection::connect(&url).await?;
        let (order_id, serial): (String, String) =
            sqlx::query_as("SELECT order_id, serial FROM certificates LIMIT 1")
                .fetch_one(&mut connection)
                .await?;
        let order = store.order(&order_id).await?;
        assert_eq!(order.authorization_ids.len(), 1);
        let authorization = store.authorization(&order.authorization_ids[0]).await?;
        assert_eq!(authorization.challenges.len(), 3);
        let certificate = store.certificate_by_serial(&serial).await?;
        assert_eq!(Some(certificate.id), order.certificate_id);
        assert!(certificate.chain_pem.contains("BEGIN CERTIFICATE"));
        // 45 certificates in 9 generations: 5 names, each renewed by one account.
        let names: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT COUNT(DISTINCT identifiers), COUNT(DISTINCT identifiers || account_id) \
             FROM orders",
        )
        .fetch_all(&mut connection)
        .await?;
        assert_eq!(names, [(5, 5)]);
        Ok(())
    }
}
