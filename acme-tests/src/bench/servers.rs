//! Starting a fresh server (and its DNS) for one run, so that `acme-bench --spawn` can compare
//! Mayfly and Pebble A B A B with nothing carried over between runs.
//!
//! Pebble 2.4's in-memory store can deadlock under concurrent newAccount and newOrder load,
//! so every run gets a new Pebble. Mayfly gets a new data directory (SQLite, durable commits)
//! unless a seeded database is asked for.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use super::probe;
use crate::AcmeTarget;
use crate::challtestsrv::ChallTestSrv;
use crate::mayfly::{self, MayflyServer, ServeOptions};
use crate::pebble::PebbleServer;
use crate::ports::free_tcp_port;

/// Which server to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Mayfly,
    Pebble,
}

impl Kind {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "mayfly" => Ok(Kind::Mayfly),
            "pebble" => Ok(Kind::Pebble),
            other => bail!("unknown server {other:?}: expected mayfly or pebble"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Mayfly => "mayfly",
            Kind::Pebble => "pebble",
        }
    }
}

/// How to start Mayfly.
#[derive(Clone, Debug, Default)]
pub struct MayflySetup {
    /// `MAYFLY__*` settings, e.g. `("MAYFLY__DATABASE__MAX_CONNECTIONS", "16")`.
    pub env: Vec<(String, String)>,
    /// Fill the database with this many certificates (and their rows) before serving.
    pub seed_certificates: u64,
    /// Use this data directory as it is (e.g. seeded once for several runs) instead of a new one.
    pub data_dir: Option<PathBuf>,
}

/// A running server with its DNS; everything stops when this drops.
pub struct Spawned {
    pub kind: Kind,
    pub target: AcmeTarget,
    pub pid: u32,
    /// How long from spawning the server to its first served directory (Mayfly only; the
    /// harness polls every 100 ms, so this is an upper bound, not the start-up time).
    pub ready_after: Duration,
    server: Server,
    _challtestsrv: ChallTestSrv,
    _data_dir: Option<TempDir>,
}

enum Server {
    Mayfly(MayflyServer),
    Pebble(PebbleServer),
}

impl Spawned {
    /// The server's log so far (stdout and stderr), e.g. to explain a run with errors.
    pub fn log(&self) -> String {
        match &self.server {
            Server::Mayfly(server) => server.process().log(),
            Server::Pebble(server) => server.process().log(),
        }
    }
}

/// Starts a fresh `kind` resolving every name to 127.0.0.1.
pub async fn spawn(kind: Kind, setup: &MayflySetup) -> Result<Spawned> {
    let challtestsrv = ChallTestSrv::start().await?;
    match kind {
        Kind::Mayfly => spawn_mayfly(challtestsrv, setup).await,
        Kind::Pebble => {
            let server = PebbleServer::start(challtestsrv.dns_addr()).await?;
            let program = std::env::var("PEBBLE").unwrap_or_else(|_| "pebble".to_owned());
            let pid = only_child(&program)?;
            Ok(Spawned {
                kind,
                target: server.target().clone(),
                pid,
                ready_after: Duration::ZERO,
                server: Server::Pebble(server),
                _challtestsrv: challtestsrv,
                _data_dir: None,
            })
        }
    }
}

async fn spawn_mayfly(challtestsrv: ChallTestSrv, setup: &MayflySetup) -> Result<Spawned> {
    let (data_dir, owned) = match &setup.data_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("mayfly-bench-")
                .tempdir()
                .context("creating a data directory")?;
            (dir.path().to_owned(), Some(dir))
        }
    };
    if !data_dir.join("root-ca.pem").exists() {
        mayfly::init(&data_dir, None).await?;
    }
    if setup.seed_certificates > 0 {
        let url = super::seed::database_url(&data_dir);
        let summary =
            super::seed::seed(&super::seed::SeedOptions::new(url, setup.seed_certificates)).await?;
        eprintln!("{summary}");
    }
    let http01_port = free_tcp_port()?;
    let options = ServeOptions {
        data_dir: Some(data_dir.clone()),
        dns_resolver: Some(challtestsrv.dns_addr()),
        http01_port: Some(http01_port),
        extra_env: setup.env.clone(),
        ..ServeOptions::default()
    };
    let started = Instant::now();
    let server = MayflyServer::start(&options).await?;
    let ready_after = started.elapsed();
    let program = mayfly::binary();
    let name = program
        .file_name()
        .and_then(|name| name.to_str())
        .context("the mayfly binary has no file name")?;
    let pid = only_child(name)?;
    let target = AcmeTarget {
        directory_url: server.directory_url(),
        tls_root: server.root_ca(),
        issuer_root: server.root_ca(),
        http01_port,
    };
    Ok(Spawned {
        kind: Kind::Mayfly,
        target,
        pid,
        ready_after,
        server: Server::Mayfly(server),
        _challtestsrv: challtestsrv,
        _data_dir: owned,
    })
}

/// The PID of our one child running `program` (a path or a bare name).
fn only_child(program: &str) -> Result<u32> {
    let name = program.rsplit('/').next().unwrap_or(program);
    match probe::child_pids(name)?.as_slice() {
        [pid] => Ok(*pid),
        [] => bail!("no child process named {name} found"),
        pids => bail!("several child processes named {name}: {pids:?}"),
    }
}
