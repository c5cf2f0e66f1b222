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
use hickory_resolver::proto::rr::rdata::TXT;
use hickory_resolver::proto::rr::{RData, RecordType};

use super::caa::CaaRecord;

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum DnsError {
    #[error("DNS problem: NXDOMAIN looking up {0}")]
    NxDomain(String),
    #[error("DNS problem: no A or AAAA records for {0}")]
    NoRecords(String),
    #[error("DNS problem: no TXT records for {0}")]
    NoTxtRecords(String),
    #[error("DNS problem: query timed out looking up {0}")]
    Timeout(String),
    #[error("DNS problem: looking up {name}: {message}")]
    Other { name: String, message: String },
}

#[async_trait]
pub trait Resolver: Send + Sync + 'static {
    /// The A and AAAA records of `name`; never empty on success.
    async fn lookup_ip(&self, name: &str) -> Result<Vec<IpAddr>, DnsError>;

    /// The TXT records of `name`, each one's character-strings joined; never empty on
    /// success. A CNAME at `name` is followed, so the records may belong to its target.
    async fn lookup_txt(&self, name: &str) -> Result<Vec<String>, DnsError>;

    /// The CAA records of `name` (RFC 8659), CNAMEs followed. `Ok` with an empty list when
    /// the name exists without CAA; `NxDomain` when it does not exist (the caller climbs to
    /// the parent either way).
    async fn lookup_caa(&self, name: &str) -> Result<Vec<CaaRecord>, DnsError>;
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
            Err(e) => Err(dns_error(name, e, DnsError::NoRecords)),
        }
    }

    async fn lookup_txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let fqdn = format!("{name}.");
        match self.inner.txt_lookup(fqdn.as_str()).await {
            // hickory follows a CNAME chain and returns it in the answers together with the
            // target's records; only the TXT records matter here.
            Ok(lookup) => {
                let values: Vec<String> = lookup
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::TXT(txt) => Some(txt_value(txt)),
                        _ => None,
                    })
                    .collect();
                if values.is_empty() {
                    Err(DnsError::NoTxtRecords(name.to_owned()))
                } else {
                    Ok(values)
                }
            }
            Err(e) => Err(dns_error(name, e, DnsError::NoTxtRecords)),
        }
    }

    async fn lookup_caa(&self, name: &str) -> Result<Vec<CaaRecord>, DnsError> {
        let fqdn = format!("{name}.");
        match self.inner.lookup(fqdn.as_str(), RecordType::CAA).await {
            // As for TXT, a CNAME chain comes back in the answers with the target's records.
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::CAA(caa) => Some(CaaRecord::new(
                        caa.flags(),
                        caa.tag.clone(),
                        caa.value.clone(),
                    )),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() && !e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => Err(dns_error(name, e, DnsError::NoRecords)),
        }
    }
}

/// A TXT record holds one or more character-strings; a value longer than 255 bytes is split
/// across several, so they are joined (as RFC 7208 §3.3 does for SPF).
fn txt_value(txt: &TXT) -> String {
    let bytes: Vec<u8> = txt
        .txt_data
        .iter()
        .flat_map(|part| part.iter().copied())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn dns_error(name: &str, error: NetError, no_records: fn(String) -> DnsError) -> DnsError {
    match error {
        e if e.is_nx_domain() => DnsError::NxDomain(name.to_owned()),
        e if e.is_no_records_found() => no_records(name.to_owned()),
        NetError::Timeout => DnsError::Timeout(name.to_owned()),
        e => DnsError::Other {
            name: name.to_owned(),
            message: e.to_string(),
        },
    }
}

/// A fixed table of names, for tests. Unknown names are NXDOMAIN.
#[derive(Default)]
pub struct FakeResolver {
    table: Mutex<HashMap<String, Vec<IpAddr>>>,
    txt: Mutex<HashMap<String, Vec<String>>>,
    cnames: Mutex<HashMap<String, String>>,
    caa: Mutex<HashMap<String, Vec<CaaRecord>>>,
}

/// RFC 1034 §3.6.2 allows chains; a real resolver gives up after a few links, and so does the
/// fake, so that a loop in a test's table cannot hang it.
const MAX_CNAME_LINKS: usize = 8;

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

    /// Sets the TXT records of `name`; an empty list means the name exists without TXT.
    pub fn set_txt(&self, name: &str, values: Vec<String>) {
        lock(&self.txt).insert(name.to_ascii_lowercase(), values);
    }

    /// Sets the CAA records of `name`; an empty list means the name exists without CAA. Names
    /// without CAA set are NXDOMAIN for CAA lookups, unless they have addresses or TXT.
    pub fn set_caa(&self, name: &str, records: Vec<CaaRecord>) {
        lock(&self.caa).insert(name.to_ascii_lowercase(), records);
    }

    /// Makes `name` a CNAME for `target`, followed by TXT lookups as a resolver would.
    pub fn set_cname(&self, name: &str, target: &str) {
        lock(&self.cnames).insert(name.to_ascii_lowercase(), target.to_ascii_lowercase());
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
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

    async fn lookup_txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let mut current = name.to_ascii_lowercase();
        for _ in 0..MAX_CNAME_LINKS {
            if let Some(target) = lock(&self.cnames).get(&current) {
                current = target.clone();
                continue;
            }
            return match lock(&self.txt).get(&current) {
                Some(values) if !values.is_empty() => Ok(values.clone()),
                Some(_) => Err(DnsError::NoTxtRecords(name.to_owned())),
                None => Err(DnsError::NxDomain(name.to_owned())),
            };
        }
        Err(DnsError::Other {
            name: name.to_owned(),
            message: format!("more than {MAX_CNAME_LINKS} CNAME links"),
        })
    }

    async fn lookup_caa(&self, name: &str) -> Result<Vec<CaaRecord>, DnsError> {
        let mut current = name.to_ascii_lowercase();
        for _ in 0..MAX_CNAME_LINKS {
            if let Some(target) = lock(&self.cnames).get(&current) {
                current = target.clone();
                continue;
            }
            if let Some(records) = lock(&self.caa).get(&current) {
                return Ok(records.clone());
            }
            let exists =
                lock(&self.table).contains_key(&current) || lock(&self.txt).contains_key(&current);
            return if exists {
                Ok(Vec::new())
            } else {
                Err(DnsError::NxDomain(name.to_owned()))
            };
        }
        Err(DnsError::Other {
            name: name.to_owned(),
            message: format!("more than {MAX_CNAME_LINKS} CNAME links"),
        })
    }
}
