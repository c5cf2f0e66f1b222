//! Name resolution for validation, injected (ARCHITECTURE decision 4): hickory-resolver in
//! production, a fixed table in tests.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum DnsError {
    #[error("DNS problem: NXDOMAIN looking up {0}")]
    NxDomain(String),
    #[error("DNS problem: no A or AAAA records for {0}")]
    NoRecords(String),
    #[error("DNS problem: query timed out looking up {0}")]
    Timeout(String),
    #[error("DNS problem: looking up {name}: {message}")]
    Other { name: String, message: String },
}

#[async_trait]
pub trait Resolver: Send + Sync + 'static {
    /// The A and AAAA records of `name`; never empty on success.
    async fn lookup_ip(&self, name: &str) -> Result<Vec<IpAddr>, DnsError>;
}

/// hickory-resolver, on the system's name servers or on one configured `host:port`.
pub struct HickoryResolver {
    inner: TokioResolver,
}

impl HickoryResolver {
    /// `server`: the name server to ask, e.g. `127.0.0.1:8053`; `None` for the system's.
    pub fn new(server: Option<SocketAddr>) -> Result<Self, String> {
        let mut builder = match server {
            Some(addr) => {
                let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                    .into_iter()
                    .map(|mut c| {
                        c.port = addr.port();
                        c
                    })
                    .collect();
                let config = ResolverConfig::from_parts(
                    None,
                    Vec::new(),
                    vec![NameServerConfig::new(addr.ip(), true, connections)],
                );
                TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            }
            None => TokioResolver::builder_tokio()
                .map_err(|e| format!("reading the system's DNS configuration: {e}"))?,
        };
        // Validation must see the current records, not a cached answer (RFC 8555 §10.2).
        builder.options_mut().cache_size = 0;
        builder.options_mut().attempts = 2;
        let inner = builder
            .build()
            .map_err(|e| format!("building the DNS resolver: {e}"))?;
        Ok(HickoryResolver { inner })
    }
}

#[async_trait]
impl Resolver for HickoryResolver {
    async fn lookup_ip(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        // A trailing dot makes the name absolute, so no search domain is appended.
        let fqdn = format!("{name}.");
        match self.inner.lookup_ip(fqdn.as_str()).await {
            Ok(lookup) => {
                let ips: Vec<IpAddr> = lookup.iter().collect();
                if ips.is_empty() {
                    Err(DnsError::NoRecords(name.to_owned()))
                } else {
                    Ok(ips)
                }
            }
            Err(e) if e.is_nx_domain() => Err(DnsError::NxDomain(name.to_owned())),
            Err(e) if e.is_no_records_found() => Err(DnsError::NoRecords(name.to_owned())),
            Err(NetError::Timeout) => Err(DnsError::Timeout(name.to_owned())),
            Err(e) => Err(DnsError::Other {
                name: name.to_owned(),
                message: e.to_string(),
            }),
        }
    }
}

/// A fixed table of names, for tests. Unknown names are NXDOMAIN.
#[derive(Default)]
pub struct FakeResolver {
    table: Mutex<HashMap<String, Vec<IpAddr>>>,
}

impl FakeResolver {
    pub fn new() -> Arc<Self> {
        Arc::new(FakeResolver::default())
    }

    pub fn insert(&self, name: &str, ips: Vec<IpAddr>) {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_ascii_lowercase(), ips);
    }
}

#[async_trait]
impl Resolver for FakeResolver {
    async fn lookup_ip(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        match table.get(&name.to_ascii_lowercase()) {
            Some(ips) if !ips.is_empty() => Ok(ips.clone()),
            Some(_) => Err(DnsError::NoRecords(name.to_owned())),
            None => Err(DnsError::NxDomain(name.to_owned())),
        }
    }
}
