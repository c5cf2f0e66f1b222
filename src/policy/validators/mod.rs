//! The validator chain (issue 5): named, configured rules that every request passes before
//! anything is signed, in Anchor's vocabulary (`common_name`, `blacklist_names`, …).
//!
//! Rules run in three stages:
//! - [`Stage::Identifiers`] at `newOrder`: the order's identifiers and the requester;
//! - [`Stage::Csr`] at finalize (and for token-based issuance): the parsed CSR;
//! - [`Stage::Template`] after the fixups: the names about to be signed, so a fixup cannot
//!   slip a name past the rules.
//!
//! Each rule looks only at what its stage offers and ignores the rest: `key_usage` has
//! nothing to say at `newOrder`, `source_cidrs` speaks at every stage.
//!
//! **Every rule runs, and every refusal is reported.** The chain does not stop at the first
//! refusal: the client learns everything it must change in one round trip, with one
//! subproblem per refused identifier (RFC 8555 §6.7.1), and the rules are pure and cheap.
//! Refusals come in chain order and, within a rule, in request order. A rule refuses each
//! subject at most once (its first reason).
//!
//! Configuration is an ordered TOML array; an unknown validator or a bad option stops
//! start-up with a message naming the entry's position and name:
//! ```toml
//! [[validators]]
//! name = "common_name"
//! allowed_domains = [".example.com"]
//! allowed_networks = ["10.0.0.0/8"]
//! ```

pub mod alternative_names;
pub mod alternative_names_ip;
pub mod blacklist_names;
pub mod ca_status;
pub mod common_name;
pub mod csr_facts;
pub mod extensions;
pub mod identifier_policy;
pub mod key_policy;
pub mod key_usage;
pub mod matching;
pub mod max_names;
pub mod refusal;
pub mod requester;
pub mod server_group;
pub mod source_cidrs;

use serde::{Deserialize, Deserializer, Serialize};

use crate::acme::{Identifier, ProblemType};
use crate::issuer::csr::ParsedCsr;

pub use csr_facts::{CsrFacts, KeyUsageBit, PublicKeyFacts, Purpose};
pub use matching::{Cidr, DomainPattern};
pub use refusal::{Finding, Refusal, Refusals, Subject};
pub use requester::{Requester, client_address};

/// When a rule runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// At `newOrder`: the requested identifiers.
    Identifiers,
    /// At finalize: the CSR.
    Csr,
    /// After the fixups: the request about to be signed.
    Template,
}

impl Stage {
    /// The ACME problem type of a refusal at this stage, unless the rule says otherwise:
    /// `rejectedIdentifier` at `newOrder` (RFC 8555 §7.4), `badCSR` from the CSR on.
    pub fn problem_type(self) -> ProblemType {
        match self {
            Stage::Identifiers => ProblemType::RejectedIdentifier,
            Stage::Csr | Stage::Template => ProblemType::BadCsr,
        }
    }
}

/// What a rule sees.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    pub stage: Stage,
    pub requester: &'a Requester,
    /// The subject commonName (CSR and template stages), as written.
    pub common_name: Option<&'a str>,
    /// The identifiers (identifier stage) or the subjectAltNames (CSR and template stages).
    pub names: &'a [Identifier],
    /// The CSR's facts (CSR stage only).
    pub csr: Option<&'a CsrFacts>,
}

impl Input<'_> {
    /// Every requested name with the subject to blame: the names, then the common name when
    /// it reads as an identifier that is not among them. A common name that is neither a
    /// DNS name nor an IP address is left to `common_name` and `identifier_policy`.
    pub fn all_names(&self) -> Vec<(Subject, Identifier)> {
        let mut all: Vec<(Subject, Identifier)> = self
            .names
            .iter()
            .map(|id| (Subject::Identifier(id.clone()), id.clone()))
            .collect();
        if let Some(cn) = self.common_name
            && let Some(id) = refusal::common_name_identifier(cn)
            && !self.names.contains(&id)
        {
            all.push((Subject::CommonName(cn.to_owned()), id));
        }
        all
    }
}

/// One rule of the chain.
pub trait Rule {
    /// What the rule found wrong; empty when it has no objection.
    fn check(&self, input: &Input<'_>) -> Vec<Finding>;

    /// The ACME problem type of this rule's refusals at `stage`.
    fn problem_type(&self, stage: Stage) -> ProblemType {
        stage.problem_type()
    }

    /// Start-up checks the options' types cannot express; the message names the option.
    fn check_options(&self) -> Result<(), String> {
        Ok(())
    }
}

/// One configured validator: `name` selects it, the other keys are its options.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum ValidatorConfig {
    CommonName(common_name::CommonName),
    AlternativeNames(alternative_names::AlternativeNames),
    AlternativeNamesIp(alternative_names_ip::AlternativeNamesIp),
    BlacklistNames(blacklist_names::BlacklistNames),
    ServerGroup(server_group::ServerGroup),
    Extensions(extensions::Extensions),
    KeyUsage(key_usage::KeyUsage),
    CaStatus(ca_status::CaStatus),
    SourceCidrs(source_cidrs::SourceCidrs),
    KeyPolicy(key_policy::KeyPolicy),
    IdentifierPolicy(identifier_policy::IdentifierPolicy),
    MaxNames(max_names::MaxNames),
}

/// The validator names, in the order of [`ValidatorConfig`].
pub const VALIDATOR_NAMES: [&str; 12] = [
    "common_name",
    "alternative_names",
    "alternative_names_ip",
    "blacklist_names",
    "server_group",
    "extensions",
    "key_usage",
    "ca_status",
    "source_cidrs",
    "key_policy",
    "identifier_policy",
    "max_names",
];

impl ValidatorConfig {
    pub fn name(&self) -> &'static str {
        let index = match self {
            Self::CommonName(_) => 0,
            Self::AlternativeNames(_) => 1,
            Self::AlternativeNamesIp(_) => 2,
            Self::BlacklistNames(_) => 3,
            Self::ServerGroup(_) => 4,
            Self::Extensions(_) => 5,
            Self::KeyUsage(_) => 6,
            Self::CaStatus(_) => 7,
            Self::SourceCidrs(_) => 8,
            Self::KeyPolicy(_) => 9,
            Self::IdentifierPolicy(_) => 10,
            Self::MaxNames(_) => 11,
        };
        VALIDATOR_NAMES[index]
    }

    pub fn rule(&self) -> &dyn Rule {
        match self {
            Self::CommonName(r) => r,
            Self::AlternativeNames(r) => r,
            Self::AlternativeNamesIp(r) => r,
            Self::BlacklistNames(r) => r,
            Self::ServerGroup(r) => r,
            Self::Extensions(r) => r,
            Self::KeyUsage(r) => r,
            Self::CaStatus(r) => r,
            Self::SourceCidrs(r) => r,
            Self::KeyPolicy(r) => r,
            Self::IdentifierPolicy(r) => r,
            Self::MaxNames(r) => r,
        }
    }
}

/// A start-up error in a `[[validators]]` or `[[fixups]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{list}[{position}]{}: {message}", name.as_ref().map(|n| format!(" ({n})")).unwrap_or_default())]
pub struct ConfigError {
    /// `validators` or `fixups`.
    pub list: &'static str,
    /// 0-based, as TOML arrays count.
    pub position: usize,
    pub name: Option<String>,
    pub message: String,
}

/// Reads one entry of a named list (`validators`, `fixups`): its `name`, checked against
/// `known`, then the entry as `T`. Each error names the list, the position and the name.
pub(crate) fn parse_entry<T: serde::de::DeserializeOwned>(
    list: &'static str,
    position: usize,
    value: serde_json::Value,
    known: &[&str],
) -> Result<T, ConfigError> {
    let error = |name: Option<&str>, message: String| ConfigError {
        list,
        position,
        name: name.map(str::to_owned),
        message,
    };
    let name = match value.get("name") {
        Some(serde_json::Value::String(name)) => name.clone(),
        Some(_) => return Err(error(None, "`name` must be a string".to_owned())),
        None => return Err(error(None, "the entry has no `name`".to_owned())),
    };
    if !known.contains(&name.as_str()) {
        return Err(error(
            Some(&name),
            format!("there is no such rule; the rules are {}", known.join(", ")),
        ));
    }
    serde_json::from_value(value).map_err(|e| error(Some(&name), e.to_string()))
}

/// An ordered, checked list of validators as the configuration holds it. Deserialising it
/// applies every start-up check, so a configuration that loads is a chain that runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ValidatorList(pub Vec<ValidatorConfig>);

impl ValidatorList {
    /// Parses and checks each entry; the error names the first bad entry.
    pub fn from_values(values: Vec<serde_json::Value>) -> Result<Self, ConfigError> {
        let mut list = Vec::with_capacity(values.len());
        for (position, value) in values.into_iter().enumerate() {
            let config: ValidatorConfig =
                parse_entry("validators", position, value, &VALIDATOR_NAMES)?;
            config
                .rule()
                .check_options()
                .map_err(|message| ConfigError {
                    list: "validators",
                    position,
                    name: Some(config.name().to_owned()),
                    message,
                })?;
            list.push(config);
        }
        Ok(ValidatorList(list))
    }
}

impl<'de> Deserialize<'de> for ValidatorList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let values = Vec::<serde_json::Value>::deserialize(d)?;
        ValidatorList::from_values(values).map_err(serde::de::Error::custom)
    }
}

/// The chain a provisioner applies: its validators, in configured order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chain {
    validators: Vec<ValidatorConfig>,
}

impl From<ValidatorList> for Chain {
    fn from(list: ValidatorList) -> Self {
        Chain { validators: list.0 }
    }
}

impl Chain {
    /// Whether the chain has no validators (nothing to check, nothing to look up for it).
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// The validator names, in order (for logs and the README).
    pub fn names(&self) -> Vec<&'static str> {
        self.validators.iter().map(ValidatorConfig::name).collect()
    }

    /// At `newOrder`: the identifiers (parsed, normalised, de-duplicated) and the requester.
    pub fn check_identifiers(
        &self,
        identifiers: &[Identifier],
        requester: &Requester,
    ) -> Result<(), Refusals> {
        self.run(&Input {
            stage: Stage::Identifiers,
            requester,
            common_name: None,
            names: identifiers,
            csr: None,
        })
    }

    /// At finalize: the CSR, whose signature `ParsedCsr` verified.
    pub fn check_csr(&self, csr: &ParsedCsr, requester: &Requester) -> Result<(), Refusals> {
        match CsrFacts::from_der(&csr.der) {
            Ok(facts) => self.check_csr_facts(csr, &facts, requester),
            Err(reason) => Err(Refusals(vec![Refusal {
                rule: "csr",
                position: 0,
                stage: Stage::Csr,
                kind: ProblemType::BadCsr,
                subject: Subject::Request,
                reason,
            }])),
        }
    }

    /// [`Chain::check_csr`] with facts the caller already read.
    pub fn check_csr_facts(
        &self,
        csr: &ParsedCsr,
        facts: &CsrFacts,
        requester: &Requester,
    ) -> Result<(), Refusals> {
        self.run(&Input {
            stage: Stage::Csr,
            requester,
            common_name: csr.common_name.as_deref(),
            names: &csr.san,
            csr: Some(facts),
        })
    }

    /// After the fixups: the names about to be signed.
    pub fn check_template(
        &self,
        template: &crate::policy::fixups::RequestTemplate,
        requester: &Requester,
    ) -> Result<(), Refusals> {
        self.run(&Input {
            stage: Stage::Template,
            requester,
            common_name: template.common_name.as_deref(),
            names: &template.names,
            csr: None,
        })
    }

    fn run(&self, input: &Input<'_>) -> Result<(), Refusals> {
        let mut refusals = Vec::new();
        for (position, validator) in self.validators.iter().enumerate() {
            let rule = validator.rule();
            let kind = rule.problem_type(input.stage);
            refusals.extend(rule.check(input).into_iter().map(|finding| Refusal {
                rule: validator.name(),
                position,
                stage: input.stage,
                kind,
                subject: finding.subject,
                reason: finding.reason,
            }));
        }
        if refusals.is_empty() {
            Ok(())
        } else {
            Err(Refusals(refusals))
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
#[path = "chain_tests.rs"]
mod chain_tests;
