//! ACME identifiers (RFC 8555 §9.7.7, RFC 8738), parsed and normalised once at the edge.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// A parsed identifier. DNS names are lower-case ASCII without a trailing dot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identifier {
    Dns(String),
    Ip(IpAddr),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentifierError {
    #[error("identifier type {0:?} is not supported")]
    UnsupportedType(String),
    #[error("{value:?} is not a valid DNS name: {reason}")]
    BadDnsName { value: String, reason: &'static str },
    #[error("{0:?} is not a valid IP address")]
    BadIp(String),
}

/// RFC 1035 §2.3.4: a name is at most 253 characters in text form, a label at most 63.
const MAX_NAME_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

impl Identifier {
    /// Parses the wire form `{"type": ..., "value": ...}`.
    pub fn parse(kind: &str, value: &str) -> Result<Self, IdentifierError> {
        match kind {
            "dns" => parse_dns(value).map(Identifier::Dns),
            "ip" => value
                .parse::<IpAddr>()
                .map(Identifier::Ip)
                .map_err(|_| IdentifierError::BadIp(value.to_owned())),
            other => Err(IdentifierError::UnsupportedType(other.to_owned())),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Identifier::Dns(_) => "dns",
            Identifier::Ip(_) => "ip",
        }
    }

    pub fn value(&self) -> String {
        match self {
            Identifier::Dns(name) => name.clone(),
            Identifier::Ip(ip) => ip.to_string(),
        }
    }

    pub fn is_wildcard(&self) -> bool {
        matches!(self, Identifier::Dns(name) if name.starts_with("*."))
    }
}

impl std::fmt::Display for Identifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind(), self.value())
    }
}

fn parse_dns(value: &str) -> Result<String, IdentifierError> {
    let bad = |reason| IdentifierError::BadDnsName {
        value: value.to_owned(),
        reason,
    };
    let name = value.to_ascii_lowercase();
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.ends_with('.') {
        return Err(bad("it ends with a dot"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(bad("it is longer than 253 characters"));
    }
    let (wildcard, rest) = match name.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, name.as_str()),
    };
    if wildcard && !rest.contains('.') {
        return Err(bad("a wildcard needs at least two labels after it"));
    }
    for label in rest.split('.') {
        if label.is_empty() {
            return Err(bad("it has an empty label"));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(bad("a label is longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad("it has a character other than a-z, 0-9, '-' and '.'"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("a label starts or ends with '-'"));
        }
    }
    if rest.parse::<IpAddr>().is_ok()
        || rest
            .split('.')
            .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad("an IP address must use the \"ip\" identifier type"));
    }
    Ok(name)
}

/// The wire form of an identifier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentifierJson {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

impl From<&Identifier> for IdentifierJson {
    fn from(id: &Identifier) -> Self {
        IdentifierJson {
            kind: id.kind().to_owned(),
            value: id.value(),
        }
    }
}

impl TryFrom<IdentifierJson> for Identifier {
    type Error = IdentifierError;
    fn try_from(json: IdentifierJson) -> Result<Self, IdentifierError> {
        Identifier::parse(&json.kind, &json.value)
    }
}

impl Serialize for Identifier {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        IdentifierJson::from(self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Identifier {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let json = IdentifierJson::deserialize(d)?;
        Identifier::try_from(json).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_are_normalised() {
        assert_eq!(
            Identifier::parse("dns", "WWW.Example.COM"),
            Ok(Identifier::Dns("www.example.com".into()))
        );
        assert_eq!(
            Identifier::parse("dns", "*.example.com"),
            Ok(Identifier::Dns("*.example.com".into()))
        );
    }

    #[test]
    fn bad_dns_names_are_refused() {
        for bad in [
            "",
            "example.com.",
            "a..b",
            "-a.com",
            "a-.com",
            "a_b.com",
            "*.com",
            "a.*.com",
            "1.2.3.4",
            "exa mple.com",
        ] {
            assert!(
                Identifier::parse("dns", bad).is_err(),
                "{bad:?} was accepted"
            );
        }
        let long_label = format!("{}.com", "a".repeat(64));
        assert!(Identifier::parse("dns", &long_label).is_err());
    }

    #[test]
    fn ip_and_unknown_types() {
        assert_eq!(
            Identifier::parse("ip", "::1"),
            Ok(Identifier::Ip("::1".parse().unwrap()))
        );
        assert!(matches!(
            Identifier::parse("email", "a@b.c"),
            Err(IdentifierError::UnsupportedType(_))
        ));
    }
}
