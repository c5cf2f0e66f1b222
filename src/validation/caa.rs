//! CAA (RFC 8659, with the RFC 8657 `accounturi` and `validationmethods` parameters): may this
//! CA issue for a name? A stateless check over a [`CaaSource`], so the wiring can back it with
//! the configured resolver and tests with a table.

use async_trait::async_trait;

use super::Validator;
use super::resolver::{DnsError, Resolver};
use crate::acme::{Identifier, Problem, ProblemType};

/// One CAA resource record (RFC 8659 §4.1): flags, tag and value, as the resolver returns them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaaRecord {
    pub flags: u8,
    pub tag: String,
    pub value: Vec<u8>,
}

impl CaaRecord {
    pub fn new(flags: u8, tag: impl Into<String>, value: impl Into<Vec<u8>>) -> CaaRecord {
        CaaRecord {
            flags,
            tag: tag.into(),
            value: value.into(),
        }
    }

    /// The Issuer Critical Flag is the bit of value 128 (RFC 8659 §4.1). Many zones set the bit
    /// of value 1 instead, misreading the RFC; Boulder treats it as the critical flag too, and
    /// so do we, since the mistake only ever makes a CA more careful.
    pub fn is_critical(&self) -> bool {
        self.flags & (128 | 1) != 0
    }

    /// What the record says, by its tag (matched case-insensitively, RFC 8659 §4.1).
    pub fn property(&self) -> Property {
        if self.tag.eq_ignore_ascii_case("issue") {
            Property::Issue(parse_issue_value(&self.value))
        } else if self.tag.eq_ignore_ascii_case("issuewild") {
            Property::IssueWild(parse_issue_value(&self.value))
        } else if self.tag.eq_ignore_ascii_case("iodef") {
            Property::Iodef
        } else {
            Property::Unknown {
                critical: self.is_critical(),
            }
        }
    }
}

/// The presentation form (RFC 8659 §4.1.1): `0 issue "ca.example; accounturi=…"`, with `"`,
/// `\` and bytes outside printable ASCII escaped as in a zone file.
impl std::fmt::Display for CaaRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} \"", self.flags, self.tag)?;
        for &b in &self.value {
            match b {
                b'"' | b'\\' => write!(f, "\\{}", char::from(b))?,
                0x20..=0x7e => write!(f, "{}", char::from(b))?,
                _ => write!(f, "\\{b:03}")?,
            }
        }
        f.write_str("\"")
    }
}

/// A parsed CAA property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Property {
    Issue(Result<IssueValue, String>),
    IssueWild(Result<IssueValue, String>),
    /// Where to report refusals (RFC 8659 §4.4). Recognised, so never "unknown critical", but
    /// Mayfly sends no reports.
    Iodef,
    Unknown {
        critical: bool,
    },
}

/// The value of an `issue` or `issuewild` property (RFC 8659 §4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueValue {
    /// The CA this record authorizes; `None` for an empty issuer-domain-name (`";"`), which
    /// authorizes no CA at all.
    pub issuer: Option<String>,
    /// `tag=value` parameters, in order; a tag may repeat.
    pub parameters: Vec<(String, String)>,
}

/// Parses the RFC 8659 §4.2 grammar:
///
/// ```text
/// issue-value = *WSP [issuer-domain-name *WSP] [";" *WSP [parameters *WSP]]
/// issuer-domain-name = label *("." label)
/// label = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))
/// parameters = (parameter *WSP ";" *WSP parameters) / parameter
/// parameter = tag *WSP "=" *WSP value
/// tag = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))
/// value = *(%x21-3A / %x3C-7E)
/// ```
///
/// An error names what is wrong; a malformed record authorizes no one.
pub fn parse_issue_value(raw: &[u8]) -> Result<IssueValue, String> {
    let text = std::str::from_utf8(raw)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or("the value is not ASCII")?;
    let is_wsp = |c: char| c == ' ' || c == '\t';
    let (domain, rest) = match text.split_once(';') {
        Some((domain, rest)) => (domain, Some(rest)),
        None => (text, None),
    };
    let domain = domain.trim_matches(is_wsp);
    let issuer = if domain.is_empty() {
        None
    } else if domain.split('.').all(is_label) {
        Some(domain.to_owned())
    } else {
        return Err(format!("{domain:?} is not an issuer domain name"));
    };
    let mut parameters = Vec::new();
    // A `;` may end the value with no parameters after it.
    if let Some(rest) = rest.filter(|r| !r.trim_matches(is_wsp).is_empty()) {
        for parameter in rest.split(';') {
            let (tag, value) = parameter
                .split_once('=')
                .ok_or_else(|| format!("parameter {parameter:?} is not tag=value"))?;
            let (tag, value) = (tag.trim_matches(is_wsp), value.trim_matches(is_wsp));
            if !is_label(tag) {
                return Err(format!("{tag:?} is not a parameter tag"));
            }
            if !value.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
                return Err(format!(
                    "parameter {tag} has a space or a control character in its value"
                ));
            }
            parameters.push((tag.to_owned(), value.to_owned()));
        }
    }
    Ok(IssueValue { issuer, parameters })
}

/// `(ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))`: letters and digits, with inner hyphens.
fn is_label(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            alnum(first) && alnum(last) && bytes.iter().all(|&b| alnum(b) || b == b'-')
        }
        _ => false,
    }
}

/// Why a lookup failed. Only [`CaaLookupError::NxDomain`] lets the climb go on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CaaLookupError {
    /// The name does not exist: the climb continues with its parent (RFC 8659 §3).
    #[error("no such domain")]
    NxDomain,
    /// SERVFAIL, a timeout, a refused query …
    #[error("{0}")]
    Failed(String),
}

/// Where CAA records come from; the wiring backs it with the configured resolver.
#[async_trait]
pub trait CaaSource: Send + Sync {
    /// The CAA RRset at exactly `name` (no trailing dot), CNAMEs followed by the resolver.
    /// An empty set and NXDOMAIN both mean "nothing here".
    async fn lookup(&self, name: &str) -> Result<Vec<CaaRecord>, CaaLookupError>;
}

/// Why a CAA record did not authorize this CA for this request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// An empty issuer-domain-name: no CA may issue.
    NoIssuer,
    /// It names another CA; `ours` lists this CA's identities.
    OtherIssuer {
        ours: String,
    },
    Malformed(String),
    /// RFC 8657 §3: the record is bound to another account.
    AccountUri {
        allowed: String,
        ours: String,
    },
    /// RFC 8657 §4: the record is bound to other validation methods.
    ValidationMethods {
        allowed: String,
        ours: String,
    },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::NoIssuer => f.write_str("forbids issuance by any CA"),
            Mismatch::OtherIssuer { ours } if ours.is_empty() => f.write_str(
                "names a CA, and this CA has no CAA identity (acme.caa_identities is empty)",
            ),
            Mismatch::OtherIssuer { ours } => write!(f, "does not name this CA ({ours})"),
            Mismatch::Malformed(why) => write!(f, "is malformed ({why}), so it authorizes no CA"),
            Mismatch::AccountUri { allowed, ours } => write!(
                f,
                "allows this CA only for the account {allowed}, not {ours} (RFC 8657 accounturi)"
            ),
            Mismatch::ValidationMethods { allowed, ours } => write!(
                f,
                "allows this CA only with the validation methods {allowed}, not {ours} (RFC 8657 validationmethods)"
            ),
        }
    }
}

/// Why issuance is refused. The wiring answers problem type `caa` (RFC 8555 §6.7), 403, with
/// this text as the detail.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CaaRefusal {
    /// The relevant records at `name`, none of which authorizes this request.
    #[error("{}", describe_mismatches(name, records))]
    NotAuthorized {
        name: String,
        records: Vec<(CaaRecord, Mismatch)>,
    },
    /// RFC 8659 §4.1: an unknown property with the critical flag forbids issuance.
    #[error(
        "CAA record at {name} {:?} is marked critical and this CA does not understand its tag",
        record.to_string()
    )]
    UnknownCritical { name: String, record: CaaRecord },
    /// The lookup failed. A failure might hide a record that forbids issuance, so the check
    /// fails closed (Boulder does the same; RFC 8659 §5.4 on suppressed records).
    #[error("CAA lookup for {name} failed ({reason}); issuance needs a definite answer")]
    LookupFailed { name: String, reason: String },
}

fn describe_mismatches(name: &str, records: &[(CaaRecord, Mismatch)]) -> String {
    records
        .iter()
        .map(|(record, why)| format!("CAA record at {name} {:?} {why}", record.to_string()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What is asking for issuance, for the RFC 8657 parameters.
#[derive(Clone, Copy, Debug)]
pub struct CaaRequest<'a> {
    /// The issuer domain names this CA answers to (`acme.caa_identities`).
    pub ca_identities: &'a [String],
    /// The account URL, compared with `accounturi`.
    pub account_uri: &'a str,
    /// The challenge type that validated the name ("http-01" …), looked for in
    /// `validationmethods`.
    pub validation_method: &'a str,
}

/// Checks CAA for `identifier`. `is_wildcard` is the authorization's `wildcard` field (its
/// identifier carries no `*.`); an identifier that still starts with `*.` counts as a wildcard
/// too. IP identifiers are always allowed: CAA lives in the DNS only (RFC 8738 §7).
pub async fn check(
    source: &dyn CaaSource,
    identifier: &Identifier,
    is_wildcard: bool,
    ca_identities: &[String],
    account_uri: &str,
    validation_method: &str,
) -> Result<(), CaaRefusal> {
    let Identifier::Dns(name) = identifier else {
        return Ok(());
    };
    let (name, wildcard) = match name.strip_prefix("*.") {
        Some(base) => (base, true),
        None => (name.as_str(), is_wildcard),
    };
    let request = CaaRequest {
        ca_identities,
        account_uri,
        validation_method,
    };
    match relevant_rrset(source, name).await? {
        None => Ok(()),
        Some((at, records)) => evaluate(&at, &records, wildcard, &request),
    }
}

/// RFC 8659 §3: the Relevant RRset is the CAA RRset of the name or, when that is empty, of its
/// closest ancestor with a non-empty one, stopping before the root. `None` when there is none.
pub async fn relevant_rrset(
    source: &dyn CaaSource,
    name: &str,
) -> Result<Option<(String, Vec<CaaRecord>)>, CaaRefusal> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let mut current = name.as_str();
    while !current.is_empty() {
        match source.lookup(current).await {
            Ok(records) if !records.is_empty() => return Ok(Some((current.to_owned(), records))),
            Ok(_) | Err(CaaLookupError::NxDomain) => {}
            Err(CaaLookupError::Failed(reason)) => {
                return Err(CaaRefusal::LookupFailed {
                    name: current.to_owned(),
                    reason,
                });
            }
        }
        current = current.split_once('.').map_or("", |(_, parent)| parent);
    }
    Ok(None)
}

/// Applies the Relevant RRset found at `name` (RFC 8659 §4): an unknown critical property
/// forbids; for a wildcard the `issuewild` records apply when there are any, else `issue`
/// (RFC 8659 §4.3); no applicable record allows; otherwise one record must name this CA and
/// match the RFC 8657 parameters.
pub fn evaluate(
    name: &str,
    records: &[CaaRecord],
    wildcard: bool,
    request: &CaaRequest<'_>,
) -> Result<(), CaaRefusal> {
    let mut issue = Vec::new();
    let mut issuewild = Vec::new();
    for record in records {
        match record.property() {
            Property::Issue(value) => issue.push((record, value)),
            Property::IssueWild(value) => issuewild.push((record, value)),
            Property::Iodef | Property::Unknown { critical: false } => {}
            Property::Unknown { critical: true } => {
                return Err(CaaRefusal::UnknownCritical {
                    name: name.to_owned(),
                    record: record.clone(),
                });
            }
        }
    }
    // RFC 8659 §4.3: issuewild is ignored for a name that is not a wildcard, and when a
    // wildcard has any issuewild, its issue properties are ignored.
    let applicable = if wildcard && !issuewild.is_empty() {
        issuewild
    } else {
        issue
    };
    if applicable.is_empty() {
        return Ok(());
    }
    let mut mismatches = Vec::new();
    for (record, value) in applicable {
        match authorizes(value, request) {
            Ok(()) => return Ok(()),
            Err(why) => mismatches.push((record.clone(), why)),
        }
    }
    Err(CaaRefusal::NotAuthorized {
        name: name.to_owned(),
        records: mismatches,
    })
}

/// Whether one `issue`/`issuewild` value authorizes this request.
fn authorizes(value: Result<IssueValue, String>, request: &CaaRequest<'_>) -> Result<(), Mismatch> {
    let value = value.map_err(Mismatch::Malformed)?;
    let issuer = value.issuer.ok_or(Mismatch::NoIssuer)?;
    let ours = |i: &String| i.trim_end_matches('.').eq_ignore_ascii_case(&issuer);
    if !request.ca_identities.iter().any(ours) {
        return Err(Mismatch::OtherIssuer {
            ours: request.ca_identities.join(", "),
        });
    }
    // Parameter tags are compared case-insensitively: reading "AccountURI" as an unknown
    // parameter would ignore it and so authorize every account. A repeated parameter must
    // match every time.
    for (tag, allowed) in &value.parameters {
        if tag.eq_ignore_ascii_case("accounturi") {
            // RFC 8657 §3: the account URI must be equal to the one of the requesting account.
            if allowed != request.account_uri {
                return Err(Mismatch::AccountUri {
                    allowed: allowed.clone(),
                    ours: request.account_uri.to_owned(),
                });
            }
        } else if tag.eq_ignore_ascii_case("validationmethods") {
            // RFC 8657 §4: a comma-separated list of ACME challenge type names; a malformed
            // list authorizes nothing.
            let methods: Vec<&str> = allowed.split(',').collect();
            let well_formed = methods.iter().all(|m| {
                !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
            if !well_formed || !methods.contains(&request.validation_method) {
                return Err(Mismatch::ValidationMethods {
                    allowed: allowed.clone(),
                    ours: request.validation_method.to_owned(),
                });
            }
        }
        // RFC 8659 §4.2: other parameters this CA does not know are ignored.
    }
    Ok(())
}

/// The configured [`Resolver`] as a [`CaaSource`]: a name without CAA and a name that does not
/// exist both let the climb go on; any other failure stops it.
pub struct ResolverSource<'a>(pub &'a dyn Resolver);

#[async_trait]
impl CaaSource for ResolverSource<'_> {
    async fn lookup(&self, name: &str) -> Result<Vec<CaaRecord>, CaaLookupError> {
        match self.0.lookup_caa(name).await {
            Ok(records) => Ok(records),
            Err(DnsError::NxDomain(_)) => Err(CaaLookupError::NxDomain),
            Err(DnsError::NoRecords(_) | DnsError::NoTxtRecords(_)) => Ok(Vec::new()),
            Err(e) => Err(CaaLookupError::Failed(e.to_string())),
        }
    }
}

impl Validator {
    /// RFC 8659 through the validation resolver, bounded by the validation timeout. A refusal
    /// is problem type `caa` (RFC 8555 §6.7) naming the record; the detail of a failed lookup
    /// says what failed.
    pub async fn check_caa(
        &self,
        identifier: &Identifier,
        request: &CaaRequest<'_>,
    ) -> Result<(), Problem> {
        let source = ResolverSource(&*self.resolver);
        let checked = check(
            &source,
            identifier,
            false,
            request.ca_identities,
            request.account_uri,
            request.validation_method,
        );
        let refusal = match tokio::time::timeout(self.settings.timeout, checked).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(refusal)) => refusal.to_string(),
            Err(_) => format!(
                "CAA lookup for {identifier} did not finish within {} s; issuance needs a \
                 definite answer",
                self.settings.timeout.as_secs()
            ),
        };
        Err(Problem::new(ProblemType::Caa, refusal).with_identifier(identifier.clone()))
    }
}

#[cfg(test)]
#[path = "caa_tests.rs"]
mod tests;
