//! Mayfly: an ACME-first certificate authority for short-lived certificates.
//!
//! # Layout
//! Data flows one way: `api` → `authority` → {`validation`, `issuer`} and `storage`.
//!
//! - [`acme`]: RFC 8555 vocabulary as pure types (problems, identifiers, statuses, resources).
//! - [`jose`]: flattened JWS verification, JWKs, thumbprints, key authorizations, PBES2 JWE.
//! - [`api`]: axum routes and extractors; turns HTTP into verified calls and errors into
//!   problem documents. No business rules.
//! - [`authority`]: the use cases and state transitions; the only writer to storage.
//! - [`validation`]: stateless challenge checks and the DNS resolver; no storage.
//! - [`issuer`]: the CA hierarchy, keys at rest, CSR parsing and signing; no storage.
//! - [`policy`]: lifetimes, claims and profiles, ARI renewal windows (wired in as issue 4 lands).
//! - [`storage`]: the `Store` trait with SQLite and PostgreSQL backends.
//! - [`config`], [`cli`], [`app`], [`server`], [`clock`]: configuration, the command line, the
//!   composition root, the listeners, and injected time.
//! - [`admin`]: operator commands (`mayfly admin …`): `bootstrap` signs the first admin client
//!   certificate; the rest call the admin API (`api::admin`, on its own mutual-TLS listener,
//!   `server::admin`).
//! - [`jobs`]: periodic jobs (purges, renewal alerts), each on one replica at a time.
//! - [`telemetry`]: the Prometheus recorder behind `GET /metrics` (the metrics are recorded
//!   where their facts happen).
//! - [`renew`]: the renewal agent (`mayfly renew`), an ACME client that keeps certificates fresh.

pub mod acme;
pub mod admin;
pub mod api;
pub mod app;
pub mod authority;
pub mod cli;
pub mod clock;
pub mod config;
pub mod issuer;
pub mod jobs;
pub mod jose;
pub mod policy;
pub mod provisioner;
pub mod renew;
pub mod server;
pub mod storage;
pub mod telemetry;
pub mod validation;
