//! Real-client interop harness for Mayfly.
//!
//! The tests in `tests/` spawn real processes on loopback and drive them with real ACME
//! clients, in the style of instant-acme's `tests/pebble.rs`. Every child is killed on drop,
//! and every wait is bounded.
//!
//! Layout:
//! - [`subprocess`]: a child process with its output captured to a log file, killed on drop.
//! - [`ports`]: picking free loopback ports.
//! - [`challtestsrv`]: `pebble-challtestsrv` as the mock DNS server, and its request history.
//! - [`mayfly`]: locating the `mayfly` binary, `mayfly init`, and `mayfly serve` until ready.
//! - [`pebble`]: the reference ACME server, used to prove the harness itself.
//! - [`postgres`]: a throw-away PostgreSQL database, created and dropped with `psql`.
//! - [`environment`]: an ACME server plus DNS, with logs printed when a test panics.
//! - [`clients`]: certbot, lego and instant-acme, each returning the issued chain's path.
//! - [`verify`]: the chain and name checks every test applies to what it was issued.
//! - [`https`]: an HTTPS client that trusts only a test root.
//! - [`client`]: a minimal hand-rolled ACME client that alternates between replicas.
//! - [`replicas`]: two `mayfly serve` replicas on one PostgreSQL database and one CA.
//! - [`bench`]: the full-flow load generator behind `acme-bench`, and the `acme-seed` bulk insert.

#![forbid(unsafe_code)]

pub mod bench;
pub mod challtestsrv;
pub mod client;
pub mod clients;
pub mod environment;
pub mod https;
pub mod mayfly;
pub mod pebble;
pub mod ports;
pub mod postgres;
pub mod replicas;
pub mod subprocess;
pub mod verify;

use std::path::PathBuf;

pub use environment::Environment;
pub use subprocess::Subprocess;

/// What an ACME client needs to know to talk to a server under test.
#[derive(Clone, Debug)]
pub struct AcmeTarget {
    /// The directory URL, on 127.0.0.1 over HTTPS.
    pub directory_url: String,
    /// The root that signs the server's HTTPS certificate; clients trust only this.
    pub tls_root: PathBuf,
    /// The root that issued certificates chain to. Mayfly uses one root for both; Pebble does not.
    pub issuer_root: PathBuf,
    /// The port the server connects to for http-01; the client must listen there.
    pub http01_port: u16,
}

/// Install aws-lc-rs as the process-wide rustls provider (see CRATES.md, "One crypto provider").
///
/// Safe to call many times: a second install fails harmlessly.
pub fn install_crypto_provider() {
    let _already_installed = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
