//! Two `mayfly serve` replicas sharing one PostgreSQL database and one CA (ARCHITECTURE
//! decision 2), plus the DNS server and the http-01 responder they validate against.
//!
//! Both replicas use the same data directory (the CA files are read-only after `mayfly init`),
//! the same database URL, the same resolver and the same http-01 port, and listen on
//! different ports. If the test is panicking when the pair drops, every child's log is
//! printed to stderr.

use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::Subprocess;
use crate::challtestsrv::ChallTestSrv;
use crate::client::AcmeClient;
use crate::clients::instant::ChallengeServer;
use crate::https::client_trusting;
use crate::mayfly::{self, MayflyServer, ServeOptions};
use crate::ports::free_tcp_port;
use crate::postgres::TempDatabase;

/// Bound on one `psql` query.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Two replicas on one database. Fields drop in order: the challenge server and the
/// replicas stop before the database is dropped and the data directory removed.
pub struct ReplicaPair {
    challenge_server: ChallengeServer,
    replicas: [MayflyServer; 2],
    challtestsrv: ChallTestSrv,
    database: TempDatabase,
    data_dir: TempDir,
}

impl ReplicaPair {
    /// `mayfly init`, then two `mayfly serve` on a fresh database created through
    /// `admin_url`, started one after the other (the first applies the migrations).
    pub async fn start(admin_url: &str) -> Result<Self> {
        Self::start_with(admin_url, &[]).await
    }

    /// As [`ReplicaPair::start`], with further environment for both replicas (for example
    /// `MAYFLY__PROVISIONERS__OPS__TYPE`).
    pub async fn start_with(admin_url: &str, extra_env: &[(String, String)]) -> Result<Self> {
        let database = TempDatabase::create(admin_url)?;
        let challtestsrv = ChallTestSrv::start().await?;
        let data_dir = tempfile::Builder::new().prefix("mayfly-data-").tempdir()?;
        mayfly::init(data_dir.path(), None).await?;
        let http01_port = free_tcp_port()?;
        let options = ServeOptions {
            data_dir: Some(data_dir.path().to_owned()),
            database_url: Some(database.url().to_owned()),
            dns_resolver: Some(challtestsrv.dns_addr()),
            http01_port: Some(http01_port),
            extra_env: extra_env.to_vec(),
            ..ServeOptions::default()
        };
        let first = MayflyServer::start(&options)
            .await
            .context("starting replica A")?;
        let second = match MayflyServer::start(&options).await {
            Ok(second) => second,
            Err(err) => bail!(
                "starting replica B: {err:#}\n===== replica A log =====\n{}",
                first.process().log()
            ),
        };
        let challenge_server = ChallengeServer::start(http01_port).await?;
        Ok(Self {
            challenge_server,
            replicas: [first, second],
            challtestsrv,
            database,
            data_dir,
        })
    }

    /// Replica 0 (A) or 1 (B).
    pub fn replica(&self, index: usize) -> &MayflyServer {
        &self.replicas[index]
    }

    /// Stops replica `index` (SIGTERM: a graceful shutdown), leaving the other running.
    pub fn terminate(&mut self, index: usize) -> Result<()> {
        self.replicas[index].terminate()
    }

    /// `https://127.0.0.1:PORT` of each replica, A first.
    pub fn bases(&self) -> Vec<String> {
        self.replicas
            .iter()
            .map(|replica| format!("https://127.0.0.1:{}", replica.port()))
            .collect()
    }

    /// The root both replicas' HTTPS certificates and issued certificates chain to.
    pub fn root_ca(&self) -> std::path::PathBuf {
        self.data_dir.path().join("root-ca.pem")
    }

    /// An HTTPS client trusting only the root.
    pub fn http_client(&self) -> Result<reqwest::Client> {
        client_trusting(&self.root_ca())
    }

    /// A fresh ACME client (new account key, no account yet) over both replicas.
    pub fn acme_client(&self) -> Result<AcmeClient> {
        Ok(AcmeClient::new(self.http_client()?, self.bases()))
    }

    /// The http-01 responder both replicas validate against.
    pub fn challenge_server(&self) -> &ChallengeServer {
        &self.challenge_server
    }

    /// The DNS server, for its request history.
    pub fn challtestsrv(&self) -> &ChallTestSrv {
        &self.challtestsrv
    }

    /// The shared database's URL.
    pub fn database_url(&self) -> &str {
        self.database.url()
    }

    /// Run `sql` on the shared database with `psql` and return its single value.
    pub async fn query_value(&self, sql: &str) -> Result<String> {
        let mut command = tokio::process::Command::new("psql");
        command
            .arg(self.database.url())
            .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-c", sql])
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(QUERY_TIMEOUT, command.output())
            .await
            .with_context(|| format!("psql {sql:?} took over {QUERY_TIMEOUT:?}"))?
            .context("running psql")?;
        if !output.status.success() {
            bail!(
                "psql {sql:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// `SELECT count(*) FROM <from_where>`, e.g. `count("nonces")`.
    pub async fn count(&self, from_where: &str) -> Result<u64> {
        let value = self
            .query_value(&format!("SELECT count(*) FROM {from_where}"))
            .await?;
        value
            .parse()
            .with_context(|| format!("count(*) FROM {from_where} gave {value:?}"))
    }

    /// Print every child's log to stderr.
    pub fn dump_logs(&self) {
        let processes: [(&str, &Subprocess); 3] = [
            ("replica A", self.replicas[0].process()),
            ("replica B", self.replicas[1].process()),
            ("DNS", self.challtestsrv.process()),
        ];
        for (role, process) in processes {
            eprintln!(
                "===== {role}: {} log ({}) =====\n{}\n===== end of {role} log =====",
                process.name(),
                process.log_path().display(),
                process.log(),
            );
        }
        eprintln!(
            "===== http-01 requests answered: {:?}",
            self.challenge_server.requests()
        );
    }
}

impl Drop for ReplicaPair {
    fn drop(&mut self) {
        if thread::panicking() {
            self.dump_logs();
        }
    }
}
