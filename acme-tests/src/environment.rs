//! An ACME server under test plus its DNS, torn down on drop.
//!
//! If the test is panicking when the environment drops, the server's and the DNS server's
//! logs are printed to stderr, so a failure explains itself.

use std::thread;

use anyhow::{Context, Result};
use tempfile::TempDir;

use crate::AcmeTarget;
use crate::challtestsrv::ChallTestSrv;
use crate::mayfly::{self, MayflyServer, ServeOptions};
use crate::pebble::PebbleServer;
use crate::ports::free_tcp_port;
use crate::postgres::TempDatabase;

/// The server under test.
pub enum Server {
    Mayfly(MayflyServer),
    Pebble(PebbleServer),
}

/// A running ACME server that resolves every name to 127.0.0.1 through pebble-challtestsrv.
///
/// Fields drop in order: the server stops before its database is dropped and its data
/// directory removed.
pub struct Environment {
    server: Server,
    challtestsrv: ChallTestSrv,
    target: AcmeTarget,
    _database: Option<TempDatabase>,
    _data_dir: Option<TempDir>,
}

impl Environment {
    /// Mayfly on its default database (SQLite in a fresh data directory).
    pub async fn mayfly() -> Result<Self> {
        Self::start_mayfly(None, &[]).await
    }

    /// Mayfly on SQLite with extra environment, e.g. `[("MAYFLY__PROFILES__DEFAULT", "shortlived")]`.
    pub async fn mayfly_with(extra_env: &[(&str, &str)]) -> Result<Self> {
        Self::start_mayfly(None, extra_env).await
    }

    /// Mayfly on a fresh PostgreSQL database created through `admin_url`, dropped afterwards.
    pub async fn mayfly_on_postgres(admin_url: &str) -> Result<Self> {
        let database = TempDatabase::create(admin_url)?;
        Self::start_mayfly(Some(database), &[]).await
    }

    async fn start_mayfly(
        database: Option<TempDatabase>,
        extra_env: &[(&str, &str)],
    ) -> Result<Self> {
        let challtestsrv = ChallTestSrv::start().await?;
        let data_dir = tempfile::Builder::new().prefix("mayfly-data-").tempdir()?;
        mayfly::init(data_dir.path(), None).await?;
        let http01_port = free_tcp_port()?;
        let options = ServeOptions {
            data_dir: Some(data_dir.path().to_owned()),
            database_url: database.as_ref().map(|database| database.url().to_owned()),
            dns_resolver: Some(challtestsrv.dns_addr()),
            http01_port: Some(http01_port),
            extra_env: extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..ServeOptions::default()
        };
        let server = MayflyServer::start(&options).await.with_context(|| {
            format!(
                "starting mayfly; challtestsrv log:\n{}",
                challtestsrv.process().log()
            )
        })?;
        let target = AcmeTarget {
            directory_url: server.directory_url(),
            tls_root: server.root_ca(),
            issuer_root: server.root_ca(),
            http01_port,
        };
        Ok(Self {
            server: Server::Mayfly(server),
            challtestsrv,
            target,
            _database: database,
            _data_dir: Some(data_dir),
        })
    }

    /// Pebble, to check the harness itself.
    pub async fn pebble() -> Result<Self> {
        let challtestsrv = ChallTestSrv::start().await?;
        let server = PebbleServer::start(challtestsrv.dns_addr()).await?;
        Ok(Self {
            target: server.target().clone(),
            server: Server::Pebble(server),
            challtestsrv,
            _database: None,
            _data_dir: None,
        })
    }

    /// Where clients find the server and what they trust.
    pub fn target(&self) -> &AcmeTarget {
        &self.target
    }

    /// The DNS server, for its request history.
    pub fn challtestsrv(&self) -> &ChallTestSrv {
        &self.challtestsrv
    }

    /// The server under test.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Print every child's log to stderr.
    pub fn dump_logs(&self) {
        let server = match &self.server {
            Server::Mayfly(server) => server.process(),
            Server::Pebble(server) => server.process(),
        };
        for process in [server, self.challtestsrv.process()] {
            eprintln!(
                "===== {} log ({}) =====\n{}\n===== end of {} log =====",
                process.name(),
                process.log_path().display(),
                process.log(),
                process.name()
            );
        }
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        if thread::panicking() {
            self.dump_logs();
        }
    }
}
