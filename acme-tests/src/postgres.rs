//! A throw-away PostgreSQL database for one test, created and dropped with the `psql` client.
//!
//! Using `psql` keeps a database driver out of the harness; the server under test brings its own.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

/// The variable naming an administrative connection URL; the test is skipped when unset.
pub const URL_ENV: &str = "MAYFLY_TEST_POSTGRES_URL";

/// A database that exists until drop.
pub struct TempDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TempDatabase {
    /// Create a fresh database through `admin_url` (e.g. `postgres://postgres@127.0.0.1:5432/test`).
    pub fn create(admin_url: &str) -> Result<Self> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.subsec_nanos();
        let name = format!("mayfly_it_{}_{nanos}", std::process::id());
        psql(admin_url, &format!("CREATE DATABASE {name}"))?;
        let url = database_url(admin_url, &name)?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            name,
            url,
        })
    }

    /// The new database's URL, for the server under test.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(err) = psql(&self.admin_url, &sql) {
            eprintln!("could not drop test database {}: {err:#}", self.name);
        }
    }
}

/// Swap the database name in the URL's path, keeping any query string.
fn database_url(admin_url: &str, name: &str) -> Result<String> {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let authority_start = base.find("://").context("URL has no scheme")? + 3;
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |index| authority_start + index);
    let mut url = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    Ok(url)
}

fn psql(url: &str, sql: &str) -> Result<()> {
    // psql connects with a short timeout of its own (connect_timeout in the environment).
    let output = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .context("running psql")?;
    if !output.status.success() {
        bail!(
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn database_url_replaces_the_path() {
        let cases = [
            ("postgres://u@h:5432/test", "postgres://u@h:5432/x"),
            ("postgres://u@h:5432", "postgres://u@h:5432/x"),
            (
                "postgres://u@h/test?sslmode=disable",
                "postgres://u@h/x?sslmode=disable",
            ),
        ];
        for (admin, expected) in cases {
            assert_eq!(
                database_url(admin, "x").ok().as_deref(),
                Some(expected),
                "{admin}"
            );
        }
    }
}
