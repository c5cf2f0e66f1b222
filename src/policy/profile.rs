//! Certificate profiles (draft-ietf-acme-profiles): named sets of issuance choices that a
//! client picks with `profile` in `newOrder`, advertised in the directory's `meta.profiles`.

use std::collections::BTreeMap;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::HumanDuration;
use crate::policy::lifetime::{Bounds, Claims, show};

/// One profile, as written under `[profiles.<name>]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Shown to clients in `meta.profiles`.
    pub description: String,
    /// The validity of certificates under this profile when the order requests none;
    /// absent: the claims' `default_cert_duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity: Option<HumanDuration>,
    /// Narrows the claims' minimum for this profile (it cannot widen it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_cert_duration: Option<HumanDuration>,
    /// Narrows the claims' maximum for this profile (it cannot widen it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cert_duration: Option<HumanDuration>,
    /// How long a new order stays usable (RFC 8555 §7.1.3 `expires`).
    #[serde(default = "default_order_lifetime")]
    pub order_lifetime: HumanDuration,
    /// How long a new authorization stays usable (RFC 8555 §7.1.4 `expires`).
    #[serde(default = "default_authorization_lifetime")]
    pub authorization_lifetime: HumanDuration,
    /// The identifier types an order may carry (RFC 8555 §9.7.7, RFC 8738).
    #[serde(default = "default_identifier_types")]
    pub identifier_types: Vec<IdentifierType>,
    /// Most identifiers in one order.
    #[serde(default = "default_max_names")]
    pub max_names: usize,
    /// The keyUsage bits of issued certificates (RFC 5280 §4.2.1.3).
    #[serde(default = "default_key_usage")]
    pub key_usage: Vec<KeyUsage>,
    /// The extendedKeyUsage purposes of issued certificates (RFC 5280 §4.2.1.12).
    #[serde(default = "default_extended_key_usage")]
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
    /// Whether the subject carries a common name (the first identifier). Modern clients read
    /// only the subjectAltName; some older software and many mTLS setups still read the CN.
    #[serde(default = "default_include_common_name")]
    pub include_common_name: bool,
}

/// The same as `acme.order_lifetime`'s default.
fn default_order_lifetime() -> HumanDuration {
    HumanDuration::hours(8)
}
/// The same as `acme.authorization_lifetime`'s default.
fn default_authorization_lifetime() -> HumanDuration {
    HumanDuration::hours(8)
}
fn default_identifier_types() -> Vec<IdentifierType> {
    vec![IdentifierType::Dns, IdentifierType::Ip]
}
/// The same as `acme.max_names`'s default.
fn default_max_names() -> usize {
    100
}
/// digitalSignature alone suits ECDSA and Ed25519 keys and TLS 1.3 with any key.
fn default_key_usage() -> Vec<KeyUsage> {
    vec![KeyUsage::DigitalSignature]
}
fn default_extended_key_usage() -> Vec<ExtendedKeyUsage> {
    vec![ExtendedKeyUsage::ServerAuth]
}
fn default_include_common_name() -> bool {
    true
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentifierType {
    Dns,
    Ip,
}

impl IdentifierType {
    /// The wire form, as [`crate::acme::Identifier::kind`] gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierType::Dns => "dns",
            IdentifierType::Ip => "ip",
        }
    }
}

/// keyUsage bits an end-entity certificate may carry (RFC 5280 §4.2.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyUsage {
    DigitalSignature,
    /// Needed only for RSA key transport (TLS 1.2 RSA key exchange).
    KeyEncipherment,
    KeyAgreement,
}

/// extendedKeyUsage purposes (RFC 5280 §4.2.1.12): id-kp-serverAuth and id-kp-clientAuth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtendedKeyUsage {
    ServerAuth,
    ClientAuth,
}

impl Profile {
    /// Start-up checks against the claims in force; errors name `profiles.<name>.<key>`.
    pub fn check(&self, name: &str, claims: &Claims) -> Result<(), String> {
        let key = |field: &str| format!("profiles.{name}.{field}");
        for (field, value) in [
            ("validity", self.validity),
            ("min_cert_duration", self.min_cert_duration),
            ("max_cert_duration", self.max_cert_duration),
            ("order_lifetime", Some(self.order_lifetime)),
            ("authorization_lifetime", Some(self.authorization_lifetime)),
        ] {
            if value.is_some_and(|v| v.0 <= time::Duration::ZERO) {
                return Err(format!("{} must be longer than zero", key(field)));
            }
        }
        let bounds = Bounds::new(self, claims);
        if bounds.min > bounds.max {
            return Err(format!(
                "{} and {} leave no lifetime: the minimum {} is above the maximum {}",
                key("min_cert_duration"),
                key("max_cert_duration"),
                show(bounds.min),
                show(bounds.max)
            ));
        }
        let validity_key = if self.validity.is_some() {
            key("validity")
        } else {
            format!(
                "{} (from the claims' default_cert_duration)",
                key("validity")
            )
        };
        if bounds.default < bounds.min {
            return Err(format!(
                "{validity_key} ({}) is shorter than the minimum certificate duration ({})",
                show(bounds.default),
                show(bounds.min)
            ));
        }
        if bounds.default > bounds.max {
            return Err(format!(
                "{validity_key} ({}) is longer than the maximum certificate duration ({})",
                show(bounds.default),
                show(bounds.max)
            ));
        }
        if self.identifier_types.is_empty() {
            return Err(format!(
                "{} must name dns, ip or both",
                key("identifier_types")
            ));
        }
        if self.max_names == 0 {
            return Err(format!("{} must be at least 1", key("max_names")));
        }
        if self.key_usage.is_empty() {
            return Err(format!("{} must not be empty", key("key_usage")));
        }
        if self.extended_key_usage.is_empty() {
            return Err(format!("{} must not be empty", key("extended_key_usage")));
        }
        Ok(())
    }

    /// Whether an order under this profile may carry an identifier of type `kind` ("dns", "ip").
    pub fn allows_identifier_type(&self, kind: &str) -> bool {
        self.identifier_types.iter().any(|t| t.as_str() == kind)
    }
}

/// All profiles and the one an order without `profile` gets. In TOML, `[profiles]` holds
/// `default = "<name>"`, `builtin = true|false` and one table per profile, `[profiles.<name>]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profiles {
    pub default: String,
    /// Whether the built-in profiles ([`Profiles::builtin`]) are offered besides the configured
    /// ones. `Config::load` reads it before layering the configuration, so that `false`
    /// leaves only the profiles the operator wrote; a `[profiles.<builtin name>]` table with
    /// `builtin = true` changes only the keys it sets.
    pub builtin: bool,
    pub profiles: BTreeMap<String, Profile>,
}

/// Why a `newOrder` `profile` was refused; the wiring answers `invalidProfile`
/// (draft-ietf-acme-profiles).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("profile {name:?} is not offered; the profiles are {offered}")]
pub struct UnknownProfile {
    pub name: String,
    pub offered: String,
}

impl Default for Profiles {
    fn default() -> Self {
        Profiles::builtin()
    }
}

impl Profiles {
    /// The profiles Mayfly ships. `hours` is the default because a day is the lifetime that
    /// makes passive revocation work (a compromised key is useless by tomorrow) while leaving
    /// a client that renews at half-life twelve hours to notice and fix a failed renewal.
    /// `shortlived` is for clients that cannot renew daily; `tlsclient` is opt-in, since a
    /// client certificate is never what a client that sends no `profile` wants.
    pub fn builtin() -> Profiles {
        let server = |description: &str, validity: i64, authorization: i64| Profile {
            description: description.to_owned(),
            validity: Some(HumanDuration::hours(validity)),
            min_cert_duration: None,
            // The validity is also the longest a client may ask for with notAfter.
            max_cert_duration: Some(HumanDuration::hours(validity)),
            order_lifetime: default_order_lifetime(),
            authorization_lifetime: HumanDuration::hours(authorization),
            identifier_types: default_identifier_types(),
            max_names: default_max_names(),
            key_usage: default_key_usage(),
            extended_key_usage: vec![ExtendedKeyUsage::ServerAuth],
            include_common_name: true,
        };
        let mut shortlived = server(
            "160-hour TLS server certificates (as Let's Encrypt's shortlived), 7-hour authorizations",
            160,
            7,
        );
        // Let's Encrypt's short-lived profile carries no common name either.
        shortlived.include_common_name = false;
        // An order must be finalized while its authorizations last.
        shortlived.order_lifetime = HumanDuration::hours(7);
        let hours = server("24-hour TLS server certificates (Anchor's default)", 24, 8);
        let mut tlsclient = server(
            "24-hour TLS client certificates, for service-to-service mutual TLS",
            24,
            8,
        );
        tlsclient.extended_key_usage = vec![ExtendedKeyUsage::ClientAuth];
        Profiles {
            default: "hours".to_owned(),
            builtin: true,
            profiles: BTreeMap::from([
                ("shortlived".to_owned(), shortlived),
                ("hours".to_owned(), hours),
                ("tlsclient".to_owned(), tlsclient),
            ]),
        }
    }

    /// Start-up checks: the default exists, and every profile fits `claims`.
    pub fn check(&self, claims: &Claims) -> Result<(), String> {
        if self.profiles.is_empty() {
            return Err(
                "profiles: at least one profile must be configured (profiles.builtin = false \
                 leaves only the [profiles.<name>] tables of the configuration)"
                    .to_owned(),
            );
        }
        if !self.profiles.contains_key(&self.default) {
            return Err(format!(
                "profiles.default ({:?}) names no profile; the profiles are {}",
                self.default,
                self.names()
            ));
        }
        for (name, profile) in &self.profiles {
            profile.check(name, claims)?;
        }
        Ok(())
    }

    /// The profile for a `newOrder`: the named one, or the default when `requested` is `None`.
    /// Never a random one (as Pebble picks).
    pub fn select(&self, requested: Option<&str>) -> Result<(&str, &Profile), UnknownProfile> {
        let name = requested.unwrap_or(&self.default);
        self.profiles
            .get_key_value(name)
            .map(|(name, profile)| (name.as_str(), profile))
            .ok_or_else(|| UnknownProfile {
                name: name.to_owned(),
                offered: self.names(),
            })
    }

    /// `meta.profiles`: each name with its description.
    pub fn descriptions(&self) -> BTreeMap<&str, &str> {
        self.profiles
            .iter()
            .map(|(name, p)| (name.as_str(), p.description.as_str()))
            .collect()
    }

    fn names(&self) -> String {
        self.profiles
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `default` is a string, `builtin` a boolean (true when absent); every other key is a profile
/// table, read with `deny_unknown_fields`
/// so a misspelt key is an error that names it. (`#[serde(flatten)]` would lose that.)
impl<'de> Deserialize<'de> for Profiles {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ProfilesVisitor;
        impl<'de> Visitor<'de> for ProfilesVisitor {
            type Value = Profiles;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`default = \"<name>\"` and one table per profile")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Profiles, A::Error> {
                let mut default = None;
                let mut builtin = true;
                let mut profiles = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "default" {
                        default = Some(map.next_value::<String>()?);
                    } else if key == "builtin" {
                        builtin = map.next_value::<bool>()?;
                    } else {
                        let profile = map.next_value::<Profile>()?;
                        profiles.insert(key, profile);
                    }
                }
                let default = default.ok_or_else(|| serde::de::Error::missing_field("default"))?;
                Ok(Profiles {
                    default,
                    builtin,
                    profiles,
                })
            }
        }
        deserializer.deserialize_map(ProfilesVisitor)
    }
}

impl Serialize for Profiles {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.profiles.len() + 2))?;
        map.serialize_entry("default", &self.default)?;
        map.serialize_entry("builtin", &self.builtin)?;
        for (name, profile) in &self.profiles {
            map.serialize_entry(name, profile)?;
        }
        map.end()
    }
}

#[cfg(test)]
#[path = "profile_tests.rs"]
mod tests;
