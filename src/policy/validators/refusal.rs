//! What a refusal says: the rule, the thing it refused, why, and the ACME problem it becomes
//! (RFC 8555 §6.7, subproblems §6.7.1).

use std::net::IpAddr;

use crate::acme::{Identifier, Problem, ProblemType};

use super::Stage;

/// The thing a rule refused. Every refusal names one, so the client (and the audit log) learns
/// exactly what to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A requested name: an order identifier, or a subjectAltName.
    Identifier(Identifier),
    /// The CSR's subject commonName, as written in the CSR.
    CommonName(String),
    /// A requested extension, by OID and (when it has one) its RFC 5280 name.
    Extension {
        oid: String,
        name: Option<&'static str>,
    },
    /// The CSR's public key.
    PublicKey,
    /// The address the request came from, when it is known.
    Source(Option<IpAddr>),
    /// The request as a whole (too many names, no name at all).
    Request,
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Identifier(id) => write!(f, "{id}"),
            Subject::CommonName(cn) => write!(f, "common name {cn:?}"),
            Subject::Extension {
                oid,
                name: Some(name),
            } => write!(f, "extension {name} ({oid})"),
            Subject::Extension { oid, name: None } => write!(f, "extension {oid}"),
            Subject::PublicKey => write!(f, "the public key"),
            Subject::Source(Some(ip)) => write!(f, "source address {ip}"),
            Subject::Source(None) => write!(f, "an unknown source address"),
            Subject::Request => write!(f, "the request"),
        }
    }
}

/// What one rule found wrong with one subject; the chain turns it into a [`Refusal`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub subject: Subject,
    pub reason: String,
}

impl Finding {
    pub fn new(subject: Subject, reason: impl Into<String>) -> Self {
        Finding {
            subject,
            reason: reason.into(),
        }
    }
}

/// One rule refused one subject. Displays as `rule <rule> refused <subject>: <reason>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The validator's configured name (`blacklist_names`, …).
    pub rule: &'static str,
    /// Where in the chain the rule sits (0-based), as in `validators[n]` of the configuration.
    pub position: usize,
    pub stage: Stage,
    pub kind: ProblemType,
    pub subject: Subject,
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rule {} refused {}: {}",
            self.rule, self.subject, self.reason
        )
    }
}

impl Refusal {
    /// The ACME identifier the refusal is about, for the subproblem's `identifier`
    /// (RFC 8555 §6.7.1). A common name counts when it reads as a DNS name or an IP address.
    pub fn identifier(&self) -> Option<Identifier> {
        match &self.subject {
            Subject::Identifier(id) => Some(id.clone()),
            Subject::CommonName(cn) => common_name_identifier(cn),
            _ => None,
        }
    }

    pub fn to_problem(&self) -> Problem {
        let problem = Problem::new(self.kind, self.to_string());
        match self.identifier() {
            Some(id) => problem.with_identifier(id),
            None => problem,
        }
    }
}

/// A common name as an identifier: an IP address if it parses as one, else a DNS name.
pub(crate) fn common_name_identifier(cn: &str) -> Option<Identifier> {
    match cn.parse::<IpAddr>() {
        Ok(ip) => Some(Identifier::Ip(ip.to_canonical())),
        Err(_) => Identifier::parse("dns", cn).ok(),
    }
}

/// Every refusal a chain produced, in chain order and, within a rule, in request order.
/// Never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusals(pub Vec<Refusal>);

impl std::fmt::Display for Refusals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let [only] = self.0.as_slice() {
            return write!(f, "{only}");
        }
        write!(f, "{} refusals: ", self.0.len())?;
        for (i, refusal) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{refusal}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Refusals {}

impl Refusals {
    /// One refusal is the problem itself. Several become one problem whose subproblems carry
    /// one refusal each, with its identifier; its type is theirs when they share it, else
    /// `compound` (RFC 8555 §6.7.1). The detail lists them all, for clients that show only it.
    pub fn to_problem(&self) -> Problem {
        let mut problems: Vec<Problem> = self.0.iter().map(Refusal::to_problem).collect();
        if problems.len() == 1 {
            return problems.remove(0);
        }
        let kind = self.0.first().map_or(ProblemType::Compound, |r| r.kind);
        let same = self.0.iter().all(|r| r.kind == kind);
        let mut top = Problem::new(
            if same { kind } else { ProblemType::Compound },
            self.to_string(),
        );
        top.subproblems = problems;
        top
    }
}
