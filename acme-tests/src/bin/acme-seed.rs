//! `acme-seed`: fill a Mayfly SQLite database with realistic rows, fast (issue 9, "Scale").
//!
//! ```text
//! acme-seed --data-dir /var/tmp/mayfly-1m --certificates 1000000
//! acme-seed --database 'sqlite:///path/mayfly.db?mode=rwc' --certificates 1000
//! ```
//!
//! Run it while no `mayfly serve` uses the database. See `acme_tests::bench::seed` for the rows
//! written and why they are written with sqlx rather than through `Store`.

use std::path::PathBuf;
use std::time::Duration;

use acme_tests::bench::seed::{self, SeedOptions};
use anyhow::{Result, bail};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Bulk-insert accounts, orders, authorizations, challenges and certificates")]
struct Cli {
    /// A Mayfly data directory (made with `mayfly init`); the database is its mayfly.db.
    #[arg(
        long,
        required_unless_present = "database",
        conflicts_with = "database"
    )]
    data_dir: Option<PathBuf>,
    /// A `sqlite://…` URL instead of --data-dir.
    #[arg(long)]
    database: Option<String>,
    /// Certificates to add (each with its order, authorization, 3 challenges and link).
    #[arg(long)]
    certificates: u64,
    /// Certificates per account.
    #[arg(long, default_value_t = 20)]
    per_account: u64,
    /// Certificates per transaction.
    #[arg(long, default_value_t = 10_000)]
    batch: u64,
    /// Spread creation times over this many days before now.
    #[arg(long, default_value_t = 30)]
    days: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let url = match (&cli.database, &cli.data_dir) {
        (Some(url), _) => url.clone(),
        (None, Some(dir)) => seed::database_url(dir),
        (None, None) => bail!("give --data-dir or --database"),
    };
    let mut options = SeedOptions::new(url, cli.certificates);
    options.certificates_per_account = cli.per_account;
    options.batch = cli.batch;
    options.spread = Duration::from_secs(cli.days * 24 * 3600);
    let summary = seed::seed(&options).await?;
    println!("{summary}");
    Ok(())
}
