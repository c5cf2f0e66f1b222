use std::collections::HashMap;
use std::sync::Mutex;

use super::*;

const US: &str = "mayfly.internal";
const ACCOUNT: &str = "https://ca.example/acme/acct/1";

/// CAA records by name; a name not in the map has an empty RRset. Remembers what was asked.
#[derive(Default)]
struct Zone {
    answers: HashMap<&'static str, Result<Vec<CaaRecord>, CaaLookupError>>,
    asked: Mutex<Vec<String>>,
}

impl Zone {
    fn with(mut self, name: &'static str, records: &[(u8, &str, &str)]) -> Zone {
        let records = records
            .iter()
            .map(|(flags, tag, value)| CaaRecord::new(*flags, *tag, value.as_bytes()))
            .collect();
        self.answers.insert(name, Ok(records));
        self
    }

    fn failing(mut self, name: &'static str, error: CaaLookupError) -> Zone {
        self.answers.insert(name, Err(error));
        self
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

#[async_trait]
impl CaaSource for Zone {
    async fn lookup(&self, name: &str) -> Result<Vec<CaaRecord>, CaaLookupError> {
        self.asked.lock().unwrap().push(name.to_owned());
        self.answers.get(name).cloned().unwrap_or(Ok(Vec::new()))
    }
}

async fn run(zone: &Zone, name: &str, wildcard: bool, method: &str) -> Result<(), String> {
    let identities = [US.to_owned(), "mayfly.example".to_owned()];
    check(
        zone,
        &Identifier::Dns(name.to_owned()),
        wildcard,
        &identities,
        ACCOUNT,
        method,
    )
    .await
    .map_err(|e| e.to_string())
}

/// (case, zone, name, wildcard, validation method, expected: `Ok` or the refusal text)
type Case = (
    &'static str,
    Zone,
    &'static str,
    bool,
    &'static str,
    Result<(), &'static str>,
);

#[tokio::test]
async fn table() {
    let forbidden_other = "CAA record at example.com \"0 issue \\\"other-ca.example\\\"\" does not name this CA (mayfly.internal, mayfly.example)";
    let cases: Vec<Case> = vec![
        (
            "no records at all",
            Zone::default(),
            "www.example.com",
            false,
            "http-01",
            Ok(()),
        ),
        (
            "a record names this CA",
            Zone::default().with("example.com", &[(0, "issue", US)]),
            "example.com",
            false,
            "http-01",
            Ok(()),
        ),
        (
            "another of this CA's identities",
            Zone::default().with("example.com", &[(0, "issue", "mayfly.example")]),
            "example.com",
            false,
            "http-01",
            Ok(()),
        ),
        (
            "one of several records names this CA",
            Zone::default().with(
                "example.com",
                &[(0, "issue", "other-ca.example"), (0, "issue", US)],
            ),
            "example.com",
            false,
            "http-01",
            Ok(()),
        ),
        (
            "the record names another CA",
            Zone::default().with("example.com", &[(0, "issue", "other-ca.example")]),
            "example.com",
            false,
            "http-01",
            Err(forbidden_other),
        ),
        (
            "an empty issuer forbids every CA",
            Zone::default().with("example.com", &[(0, "issue", ";")]),
            "example.com",
            false,
            "http-01",
            Err("CAA record at example.com \"0 issue \\\";\\\"\" forbids issuance by any CA"),
        ),
        (
            "the issuer is compared case-insensitively",
            Zone::default().with("example.com", &[(0, "ISSUE", "Mayfly.Internal")]),
            "example.com",
            false,
            "http-01",
            Ok(()),
        ),
        (
            "whitespace around the issuer and parameters",
            Zone::default().with(
                "example.com",
                &[(0, "issue", " mayfly.internal ; accounturi = https://ca.example/acme/acct/1 ")],
            ),
            "example.com",
            false,
            "http-01",
            Ok(()),
        ),
        (
            "issuewild applies to a wildcard",
            Zone::default().with(
                "example.com",
                &[(0, "issue", "other-ca.example"), (0, "issuewild", US)],
            ),
            "example.com",
            true,
            "dns-01",
            Ok(()),
        ),
        (
            "issuewild forbids a wildcard that issue allows",
            Zone::default().with("example.com", &[(0, "issue", US), (0, "issuewild", ";")]),
            "example.com",
            true,
            "dns-01",
            Err("CAA record at example.com \"0 issuewild \\\";\\\"\" forbids issuance by any CA"),
        ),
        (
            "issuewild is ignored for a plain name",
            Zone::default().with("example.com", &[(0, "issue", US), (0, "issuewild", ";")]),
            "example.com",
            false,
            "http-01",
            Ok(()),
        ),
        (
            "only issuewild: a plain name has no applicable record",
            Zone::default().with("example.com", &[(0, "issuewild", "other-ca.example")]),
            "example.com",
            false,
            "http-01",
            Ok(()),
        ),
        (
            "no issuewild: issue applies to a wildcard",
            Zone::default().with("example.com", &[(0, "issue", "other-ca.example")]),
            "example.com",
            true,
            "dns-01",
            Err(forbidden_other),
        ),
        (
            "a *. prefix makes a wildcard",
            Zone::default().with(
                "example.com",
                &[(0, "issue", US), (0, "issuewild", "other-ca.example")],
            ),
            "*.example.com",
            false,
            "dns-01",
            Err("CAA record at example.com \"0 issuewild \\\"other-ca.example\\\"\" does not name this CA (mayfly.internal, mayfly.example)"),
        ),
        (
            "accounturi matches",
            Zone::default().with(
                "example.com",
                &[(0, "issue", "mayfly.internal; accounturi=https://ca.example/acme/acct/1")],
            ),
            "example.com",
            false,
            "http-01",
            Ok(()),
        ),
        (
            "accounturi names another account",
            Zone::default().with(
                "example.com",
                &[(0, "issue", "mayfly.internal; accounturi=https://ca.example/acme/acct/2")],
            ),
            "example.com",
            false,
            "http-01",
            Err("CAA record at example.com \"0 issue \\\"mayfly.internal; accounturi=https://ca.example/acme/acct/2\\\"\" allows this CA only for the account https://ca.example/acme/acct/2, not https://ca.example/acme/acct/1 (RFC 8657 accounturi)"),
        ),
        (
            "a repeated accounturi must match every time",
            Zone::default().with(
                "example.com",
                &[(
                    0,
                    "issue",
                    "mayfly.internal; accounturi=https://ca.example/acme/acct/1; accounturi=https://ca.example/acme/acct/2",
                )],
            ),
            "example.com",
            false,
            "http-01",
            Err("CAA record at example.com \"0 issue \\\"mayfly.internal; accounturi=https://ca.example/acme/acct/1; accounturi=https://ca.example/acme/acct/2\\\"\" allows this CA only for the account https://ca.example/acme/acct/2, not https://ca.example/acme/acct/1 (RFC 8657 accounturi)"),
        ),
        (
            "validationmethods contains the method",
            Zone::default().with(
                "example.com",
                &[(0, "issue", "mayfly.internal; validationmethods=dns-01,http-01")],
            ),
            "example.com",
            false,
            "http-01",
            Ok(()),
        ),
        (
            "validationmethods lacks the method",
            Zone::default().with(
                "example.com",
                &[(0, "issue", "mayfly.internal; validationmethods=dns-01")],
            ),
            "example.com",
            false,
            "http-01",
            Err("CAA record at example.com \"0 issue \\\"mayfly.internal; validationmethods=dns-01\\\"\" allows this CA only with the validation methods dns-01, not http-01 (RFC 8657 validationmethods)"),
        ),
        (
            "a malformed validationmethods list authorizes nothing",
            Zone::default().with(
                "example.com",
                &[(0, "issue", "mayfly.internal; validationmethods=http-01,,dns_01")],
            ),
            "example.com",
            false,
            "http-01",
            Err("CAA record at example.com \"0 issue \\\"mayfly.internal; validationmethods=http-01,,dns_01\\\"\" allows this CA only with the validation methods http-01,,dns_01, not http-01 (RFC 8657 validationmethods)"),
        ),
        (
            "both parameters match",
            Zone::default().with(
                "example.com",
                &[(
                    0,
                    "issue",
                    "mayfly.internal; accounturi=https://ca.example/acme/acct/1; validationmethods=http-01",
                )],
            ),
            "example.com",
            false,
            "http-01",
            Ok(()),
        ),
        (
            "unknown parameters are ignored",
            Zone::default().with("example.com", &[(0, "issue", "mayfly.internal; policy=ev")]),
            "example.com",
            false,
            "http-01",
            Ok(()),
        ),
        (
            "a malformed value authorizes no one",
            Zone::default().with("example.com", &[(0, "issue", "mayfly.internal; accounturi")]),
            "example.com",
            false,
            "http-01",
            Err("CAA record at example.com \"0 issue \\\"mayfly.internal; accounturi\\\"\" is malformed (parameter \" accounturi\" is not tag=value), so it authorizes no CA"),
        ),
        (
            "an unknown critical tag forbids",
            Zone::default().with("example.com", &[(0, "issue", US), (128, "tbs", "unknown")]),
            "example.com",
            false,
            "http-01",
            Err("CAA record at example.com \"128 tbs \\\"unknown\\\"\" is marked critical and this CA does not understand its tag"),
        ),
        (
            "flag bit 1 is read as critical too",
            Zone::default().with("example.com", &[(0, "issue", US), (1, "tbs", "unknown")]),
            "example.com",
            false,
            "http-01",
            Err("CAA record at example.com \"1 tbs \\\"unknown\\\"\" is marked critical and this CA does not understand its tag"),
        ),
        (
            "an unknown non-critical tag is ignored",
            Zone::default().with("example.com", &[(0, "issue", US), (0, "tbs", "unknown")]),
            "example.com",
            false,
            "http-01",
            Ok(()),
        ),
        (
            "a critical iodef is understood",
            Zone::default().with(
                "example.com",
                &[(0, "issue", US), (128, "iodef", "mailto:security@example.com")],
            ),
            "example.com",
            false,
            "http-01",
            Ok(()),
        ),
        (
            "only iodef: no applicable record",
            Zone::default().with("example.com", &[(0, "iodef", "mailto:security@example.com")]),
            "example.com",
            false,
            "http-01",
            Ok(()),
        ),
        (
            "a record at the parent applies",
            Zone::default().with("example.com", &[(0, "issue", "other-ca.example")]),
            "a.b.example.com",
            false,
            "http-01",
            Err(forbidden_other),
        ),
        (
            "a record at the exact name wins over the parent",
            Zone::default()
                .with("example.com", &[(0, "issue", "other-ca.example")])
                .with("www.example.com", &[(0, "issue", US)]),
            "www.example.com",
            false,
            "http-01",
            Ok(()),
        ),
        (
            "NXDOMAIN on the way up continues the climb",
            Zone::default()
                .failing("gone.example.com", CaaLookupError::NxDomain)
                .with("example.com", &[(0, "issue", US)]),
            "gone.example.com",
            false,
            "http-01",
            Ok(()),
        ),
        (
            "a lookup failure refuses",
            Zone::default()
                .failing("example.com", CaaLookupError::Failed("SERVFAIL".into()))
                .with("com", &[(0, "issue", US)]),
            "www.example.com",
            false,
            "http-01",
            Err("CAA lookup for example.com failed (SERVFAIL); issuance needs a definite answer"),
        ),
    ];
    for (case, zone, name, wildcard, method, expected) in cases {
        let got = run(&zone, name, wildcard, method).await;
        assert_eq!(got, expected.map_err(str::to_owned), "{case}");
    }
}

#[tokio::test]
async fn the_climb_stops_at_the_first_rrset_and_before_the_root() {
    let zone = Zone::default();
    run(&zone, "a.b.example.com", false, "http-01")
        .await
        .unwrap();
    assert_eq!(
        zone.asked(),
        ["a.b.example.com", "b.example.com", "example.com", "com"]
    );

    let zone = Zone::default().with("b.example.com", &[(0, "issue", US)]);
    run(&zone, "*.a.b.example.com", false, "dns-01")
        .await
        .unwrap();
    assert_eq!(zone.asked(), ["a.b.example.com", "b.example.com"]);
}

#[tokio::test]
async fn ip_identifiers_are_not_subject_to_caa() {
    let zone =
        Zone::default().failing("1.0.0.127.in-addr.arpa", CaaLookupError::Failed("x".into()));
    let ip = Identifier::Ip("127.0.0.1".parse().unwrap());
    assert_eq!(
        check(&zone, &ip, false, &[US.to_owned()], ACCOUNT, "http-01").await,
        Ok(())
    );
    assert!(zone.asked().is_empty());
}

#[test]
fn issue_values_parse_per_the_rfc_grammar() {
    let ok = |issuer: Option<&str>, parameters: &[(&str, &str)]| {
        Ok(IssueValue {
            issuer: issuer.map(str::to_owned),
            parameters: parameters
                .iter()
                .map(|(t, v)| ((*t).to_owned(), (*v).to_owned()))
                .collect(),
        })
    };
    let cases = [
        ("ca.example", ok(Some("ca.example"), &[])),
        ("ca.example;", ok(Some("ca.example"), &[])),
        (";", ok(None, &[])),
        ("", ok(None, &[])),
        ("  ;  ", ok(None, &[])),
        (
            "ca.example; a=1; b-c=x=y",
            ok(Some("ca.example"), &[("a", "1"), ("b-c", "x=y")]),
        ),
        ("; a=1", ok(None, &[("a", "1")])),
        ("ca.example; a=", ok(Some("ca.example"), &[("a", "")])),
        (
            "ca.example; a=1;",
            Err("parameter \"\" is not tag=value".to_owned()),
        ),
        (
            "ca..example",
            Err("\"ca..example\" is not an issuer domain name".to_owned()),
        ),
        (
            "-ca.example",
            Err("\"-ca.example\" is not an issuer domain name".to_owned()),
        ),
        (
            "ca.example; _a=1",
            Err("\"_a\" is not a parameter tag".to_owned()),
        ),
        (
            "ca.example; a=1 2",
            Err("parameter a has a space or a control character in its value".to_owned()),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_issue_value(text.as_bytes()), expected, "{text:?}");
    }
    assert_eq!(
        parse_issue_value(&[0xff]),
        Err("the value is not ASCII".to_owned())
    );
}

#[test]
fn records_print_in_presentation_form() {
    let record = CaaRecord::new(128, "issue", &b"a\"b\\c\x01"[..]);
    assert_eq!(record.to_string(), "128 issue \"a\\\"b\\\\c\\001\"");
}
