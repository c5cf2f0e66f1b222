//! Fixups (Anchor's name for rewriting a request before signing): named, configured rules
//! that change the [`RequestTemplate`] after validation. They run in configured order; each
//! reports what it changed, for the audit log.
//!
//! ```toml
//! [[fixups]]
//! name = "force_common_name"
//! [[fixups]]
//! name = "set_key_usage"
//! ```
//!
//! The chain's template stage ([`Chain::check_template`](super::validators::Chain)) runs
//! after them, so a fixup cannot slip a refused name through.

use serde::{Deserialize, Deserializer, Serialize};

use super::Profile;
use super::validators::csr_facts::{ExtensionId, RequestedExtension};
use super::validators::{ConfigError, CsrFacts, KeyUsageBit, Purpose, parse_entry};
use crate::acme::Identifier;
use crate::issuer::csr::ParsedCsr;

/// What will be signed, as the fixups see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestTemplate {
    /// The subject commonName.
    pub common_name: Option<String>,
    /// The subjectAltNames: the CSR's names (its SANs, then its CN if not among them),
    /// which finalize has checked against the order's identifiers.
    pub names: Vec<Identifier>,
    /// The keyUsage bits: the CSR's request when it has one, else the profile's.
    pub key_usage: Vec<KeyUsageBit>,
    /// The extendedKeyUsage purposes: the CSR's request when it has one, else the profile's.
    pub extended_key_usage: Vec<Purpose>,
    /// The other extensions the CSR requested (for `strip_extensions` and the audit log).
    pub extensions: Vec<RequestedExtension>,
}

impl RequestTemplate {
    pub fn new(csr: &ParsedCsr, facts: &CsrFacts, profile: &Profile) -> Self {
        RequestTemplate {
            common_name: csr.common_name.clone(),
            names: csr.names(),
            key_usage: facts
                .key_usage
                .clone()
                .unwrap_or_else(|| profile_key_usage(profile)),
            extended_key_usage: facts
                .extended_key_usage
                .clone()
                .unwrap_or_else(|| profile_extended_key_usage(profile)),
            extensions: facts.extensions.clone(),
        }
    }
}

fn profile_key_usage(profile: &Profile) -> Vec<KeyUsageBit> {
    profile.key_usage.iter().map(|u| (*u).into()).collect()
}

fn profile_extended_key_usage(profile: &Profile) -> Vec<Purpose> {
    profile
        .extended_key_usage
        .iter()
        .map(|u| (*u).into())
        .collect()
}

/// Options of a fixup that has none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoOptions {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripExtensions {
    /// Extension names (`nameConstraints`) or OIDs.
    pub extensions: Vec<ExtensionId>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetKeyUsage {
    /// Absent: the profile's `key_usage`.
    #[serde(default)]
    pub key_usage: Option<Vec<KeyUsageBit>>,
    /// Absent: the profile's `extended_key_usage`.
    #[serde(default)]
    pub extended_key_usage: Option<Vec<Purpose>>,
}

/// One configured fixup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum FixupConfig {
    /// Promote the first name to CN when there is none (step-ca's `forceCN`).
    ForceCommonName(NoOptions),
    /// Remove the CN, unless it is the only name.
    DropCommonName(NoOptions),
    /// Drop the listed requested extensions instead of refusing them.
    StripExtensions(StripExtensions),
    /// The profile (or the options) decides keyUsage and extendedKeyUsage; the CSR's request
    /// is ignored.
    SetKeyUsage(SetKeyUsage),
    /// Lower-case the CN (names are normalised already; a CN is kept as written).
    LowercaseNames(NoOptions),
}

pub const FIXUP_NAMES: [&str; 5] = [
    "force_common_name",
    "drop_common_name",
    "strip_extensions",
    "set_key_usage",
    "lowercase_names",
];

/// What one fixup changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub fixup: &'static str,
    pub change: String,
}

impl FixupConfig {
    pub fn name(&self) -> &'static str {
        FIXUP_NAMES[match self {
            Self::ForceCommonName(_) => 0,
            Self::DropCommonName(_) => 1,
            Self::StripExtensions(_) => 2,
            Self::SetKeyUsage(_) => 3,
            Self::LowercaseNames(_) => 4,
        }]
    }

    /// Applies the fixup; `None` when it changed nothing.
    pub fn apply(&self, template: &mut RequestTemplate, profile: &Profile) -> Option<String> {
        match self {
            Self::ForceCommonName(_) => {
                if template.common_name.is_some() {
                    return None;
                }
                let first = template.names.first()?.value();
                template.common_name = Some(first.clone());
                Some(format!("set the common name to {first}"))
            }
            Self::DropCommonName(_) => {
                if template.names.is_empty() {
                    return None;
                }
                let dropped = template.common_name.take()?;
                Some(format!("dropped the common name {dropped:?}"))
            }
            Self::StripExtensions(options) => {
                let before = template.extensions.len();
                let mut stripped = Vec::new();
                template.extensions.retain(|e| {
                    let strip = options.extensions.iter().any(|s| s.oid == e.oid);
                    if strip {
                        stripped.push(e.oid.clone());
                    }
                    !strip
                });
                (template.extensions.len() != before)
                    .then(|| format!("stripped {}", stripped.join(", ")))
            }
            Self::SetKeyUsage(options) => {
                let key_usage = options
                    .key_usage
                    .clone()
                    .unwrap_or_else(|| profile_key_usage(profile));
                let extended_key_usage = options
                    .extended_key_usage
                    .clone()
                    .unwrap_or_else(|| profile_extended_key_usage(profile));
                if template.key_usage == key_usage
                    && template.extended_key_usage == extended_key_usage
                {
                    return None;
                }
                let change = format!(
                    "set keyUsage to {} and extendedKeyUsage to {}",
                    join(&key_usage),
                    join(&extended_key_usage)
                );
                template.key_usage = key_usage;
                template.extended_key_usage = extended_key_usage;
                Some(change)
            }
            Self::LowercaseNames(_) => {
                let cn = template.common_name.as_mut()?;
                let lower = cn.to_ascii_lowercase();
                if *cn == lower {
                    return None;
                }
                let change = format!("lower-cased the common name {cn:?}");
                *cn = lower;
                Some(change)
            }
        }
    }
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The configured fixups, in order. Deserialising applies the start-up checks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FixupList(pub Vec<FixupConfig>);

impl FixupList {
    pub fn from_values(values: Vec<serde_json::Value>) -> Result<Self, ConfigError> {
        values
            .into_iter()
            .enumerate()
            .map(|(position, value)| parse_entry("fixups", position, value, &FIXUP_NAMES))
            .collect::<Result<Vec<_>, _>>()
            .map(FixupList)
    }

    /// Applies every fixup in order; returns what changed.
    pub fn apply(&self, template: &mut RequestTemplate, profile: &Profile) -> Vec<Applied> {
        self.0
            .iter()
            .filter_map(|fixup| {
                Some(Applied {
                    fixup: fixup.name(),
                    change: fixup.apply(template, profile)?,
                })
            })
            .collect()
    }
}

impl<'de> Deserialize<'de> for FixupList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let values = Vec::<serde_json::Value>::deserialize(d)?;
        FixupList::from_values(values).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[path = "fixups_tests.rs"]
mod tests;
