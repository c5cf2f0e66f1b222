//! dns-01 (RFC 8555 §8.4): the TXT records at `_acme-challenge.<name>` must include
//! base64url(SHA-256(key authorization)). For a wildcard the base name is used (§7.1.3); a
//! CNAME at `_acme-challenge` is followed by the resolver.

use crate::acme::{Identifier, Problem, ProblemType};
use crate::jose::base64url;

use super::resolver::{DnsError, Resolver};

/// The label RFC 8555 §8.4 prefixes to the validated name.
const CHALLENGE_LABEL: &str = "_acme-challenge";
/// How many of the TXT values found a problem quotes; the rest are counted.
const MAX_QUOTED_VALUES: usize = 3;

/// The name whose TXT records are checked: `_acme-challenge.<name>`, without the `*.` of a
/// wildcard. `None` for identifiers dns-01 cannot validate (IP addresses, RFC 8738 §7).
pub fn txt_name(identifier: &Identifier) -> Option<String> {
    match identifier {
        Identifier::Dns(name) => {
            let base = name.strip_prefix("*.").unwrap_or(name);
            Some(format!("{CHALLENGE_LABEL}.{base}"))
        }
        Identifier::Ip(_) => None,
    }
}

/// The value a TXT record must hold: base64url(SHA-256(key authorization)).
pub fn digest(key_authorization: &str) -> String {
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key_authorization.as_bytes());
    base64url(hash.as_ref())
}

pub async fn validate(
    resolver: &dyn Resolver,
    identifier: &Identifier,
    key_authorization: &str,
) -> Result<(), Problem> {
    let Some(name) = txt_name(identifier) else {
        return Err(Problem::malformed(format!(
            "dns-01 cannot validate {identifier} (RFC 8738 §7)"
        )));
    };
    let values = resolver.lookup_txt(&name).await.map_err(|e| match e {
        DnsError::NoTxtRecords(_) => Problem::unauthorized(format!(
            "no TXT record found at {name}; expected one holding {:?}",
            digest(key_authorization)
        )),
        other => Problem::new(ProblemType::Dns, other.to_string()),
    })?;
    compare(&name, &values, &digest(key_authorization))
}

/// `Ok` if any of `values` equals `expected`, else `incorrectResponse` naming what was found.
#[expect(
    clippy::result_large_err,
    reason = "one problem per validation, returned as is to the caller that stores it"
)]
fn compare(name: &str, values: &[String], expected: &str) -> Result<(), Problem> {
    // The digest is ASCII; a TXT value with stray surrounding space is still a mismatch, as in
    // Boulder, so that what passes here passes at every other CA.
    if values.iter().any(|value| value == expected) {
        return Ok(());
    }
    let quoted: Vec<String> = values
        .iter()
        .take(MAX_QUOTED_VALUES)
        .map(|v| format!("{v:?}"))
        .collect();
    let more = values.len().saturating_sub(MAX_QUOTED_VALUES);
    let mut found = quoted.join(", ");
    if more > 0 {
        found.push_str(&format!(" and {more} more"));
    }
    Err(Problem::new(
        ProblemType::IncorrectResponse,
        format!("incorrect TXT record {found} found at {name}; expected {expected:?}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::FakeResolver;

    #[test]
    fn txt_names() {
        let cases = [
            (
                "plain name",
                "www.example.com",
                Some("_acme-challenge.www.example.com"),
            ),
            (
                "wildcard uses the base name",
                "*.example.com",
                Some("_acme-challenge.example.com"),
            ),
        ];
        for (case, name, want) in cases {
            let id = Identifier::parse("dns", name).unwrap();
            assert_eq!(txt_name(&id).as_deref(), want, "{case}");
        }
        let ip = Identifier::parse("ip", "192.0.2.1").unwrap();
        assert_eq!(txt_name(&ip), None, "IP identifiers have no TXT name");
    }

    /// RFC 8555 §8.4 gives no vector; this one is computed independently with
    /// `printf %s token.thumb | openssl dgst -sha256 -binary | basenc --base64url` (padding removed).
    #[test]
    fn digest_is_base64url_sha256_without_padding() {
        assert_eq!(
            digest("token.thumb"),
            "lCdftpJCXapaZHkBGIZbcubeKW8RmA0jSG_aZN01zbU"
        );
        assert_eq!(digest("token.thumb").len(), 43);
    }

    #[test]
    fn comparison() {
        let expected = digest("k.a");
        let cases: Vec<(&str, Vec<String>, Option<ProblemType>)> = vec![
            ("the only value matches", vec![expected.clone()], None),
            (
                "one of several matches",
                vec!["other".into(), expected.clone()],
                None,
            ),
            (
                "wrong value",
                vec!["other".into()],
                Some(ProblemType::IncorrectResponse),
            ),
            (
                "surrounding space is a mismatch",
                vec![format!(" {expected}")],
                Some(ProblemType::IncorrectResponse),
            ),
            (
                "the key authorization itself is not the digest",
                vec!["k.a".into()],
                Some(ProblemType::IncorrectResponse),
            ),
        ];
        for (case, values, want) in cases {
            let got = compare("_acme-challenge.x", &values, &expected)
                .err()
                .map(|p| p.kind);
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn a_mismatch_names_what_was_found() {
        let values: Vec<String> = (0..5).map(|i| format!("v{i}")).collect();
        let p = compare("_acme-challenge.x", &values, "want").unwrap_err();
        assert!(
            p.detail.contains("\"v0\", \"v1\", \"v2\" and 2 more"),
            "{p}"
        );
        assert!(p.detail.contains("_acme-challenge.x"), "{p}");
        assert!(p.detail.contains("\"want\""), "{p}");
    }

    #[tokio::test]
    async fn lookups() {
        let resolver = FakeResolver::new();
        let good = digest("k.a");
        resolver.set_txt("_acme-challenge.good.test", vec![good.clone()]);
        resolver.set_txt("_acme-challenge.empty.test", vec![]);
        resolver.set_cname("_acme-challenge.alias.test", "delegated.other.test");
        resolver.set_txt("delegated.other.test", vec![good]);
        resolver.set_txt("_acme-challenge.wild.test", vec![digest("k.a")]);
        let cases = [
            ("matching TXT", "good.test", None),
            ("CNAME is followed", "alias.test", None),
            ("wildcard looks at the base name", "*.wild.test", None),
            (
                "no TXT records",
                "empty.test",
                Some(ProblemType::Unauthorized),
            ),
            ("NXDOMAIN", "missing.test", Some(ProblemType::Dns)),
        ];
        for (case, name, want) in cases {
            let id = Identifier::parse("dns", name).unwrap();
            let got = validate(&*resolver, &id, "k.a").await.err();
            assert_eq!(got.as_ref().map(|p| p.kind), want, "{case}: {got:?}");
        }
        let nx = validate(
            &*resolver,
            &Identifier::parse("dns", "missing.test").unwrap(),
            "k.a",
        )
        .await
        .unwrap_err();
        assert!(nx.detail.contains("NXDOMAIN"), "{nx}");
    }
}
