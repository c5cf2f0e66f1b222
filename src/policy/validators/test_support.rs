//! Helpers for the validators' table tests: chains from TOML (through figment, as the
//! server loads them), identifiers and CSRs from short strings.

use figment::Figment;
use figment::providers::{Format, Toml};
use rcgen::{CertificateParams, DnType, KeyPair, SanType};

use super::{Chain, Requester, ValidatorList};
use crate::acme::Identifier;
use crate::issuer::csr::ParsedCsr;

/// A CSR-stage case: name, common name, SANs, the refusals expected.
pub type CsrCase<'a> = (&'a str, Option<&'a str>, &'a [&'a str], &'a [&'a str]);

#[derive(serde::Deserialize)]
struct Config {
    validators: ValidatorList,
}

/// The chain a TOML document of `[[validators]]` entries configures.
pub fn chain(toml: &str) -> Chain {
    match try_chain(toml) {
        Ok(chain) => chain,
        Err(e) => panic!("the test chain does not load: {e}"),
    }
}

/// The start-up error of a TOML document of `[[validators]]` entries.
pub fn try_chain(toml: &str) -> Result<Chain, String> {
    Figment::from(Toml::string(toml))
        .extract::<Config>()
        .map(|c| Chain::from(c.validators))
        .map_err(|e| e.to_string())
}

/// `dns:a.example.com` or `ip:192.0.2.1`.
pub fn id(s: &str) -> Identifier {
    let (kind, value) = s.split_once(':').unwrap_or(("dns", s));
    match Identifier::parse(kind, value) {
        Ok(id) => id,
        Err(e) => panic!("bad test identifier {s}: {e}"),
    }
}

pub fn ids(list: &[&str]) -> Vec<Identifier> {
    list.iter().map(|s| id(s)).collect()
}

/// The refusals' texts at `newOrder`; empty when the chain accepts.
pub fn at_identifiers(chain: &Chain, names: &[&str], requester: &Requester) -> Vec<String> {
    texts(chain.check_identifiers(&ids(names), requester))
}

/// The refusals' texts at finalize; empty when the chain accepts.
pub fn at_csr(chain: &Chain, csr: &ParsedCsr, requester: &Requester) -> Vec<String> {
    texts(chain.check_csr(csr, requester))
}

fn texts(result: Result<(), super::Refusals>) -> Vec<String> {
    match result {
        Ok(()) => Vec::new(),
        Err(refusals) => refusals.0.iter().map(ToString::to_string).collect(),
    }
}

/// Parameters with a common name (if any) and SANs written as `dns:…`/`ip:…`.
pub fn params(common_name: Option<&str>, sans: &[&str]) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(cn) = common_name {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    params.subject_alt_names = sans
        .iter()
        .map(|s| match id(s) {
            Identifier::Dns(name) => SanType::DnsName(name.try_into().unwrap_or_else(|_| {
                panic!("bad test DNS name {s}");
            })),
            Identifier::Ip(ip) => SanType::IpAddress(ip),
        })
        .collect();
    params
}

/// The parsed CSR of `params`, signed with `key`.
pub fn csr_with(params: &CertificateParams, key: &KeyPair) -> ParsedCsr {
    let request = match params.serialize_request(key) {
        Ok(r) => r,
        Err(e) => panic!("rcgen: {e}"),
    };
    match ParsedCsr::from_der(request.der()) {
        Ok(csr) => csr,
        Err(e) => panic!("the test CSR does not parse: {e}"),
    }
}

/// The parsed CSR of `params`, signed with a fresh P-256 key.
pub fn csr(params: &CertificateParams) -> ParsedCsr {
    match KeyPair::generate() {
        Ok(key) => csr_with(params, &key),
        Err(e) => panic!("rcgen: {e}"),
    }
}
