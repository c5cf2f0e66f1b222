//! The chain as a whole: configuration errors, order, stages and the problem documents.

use super::test_support::*;
use super::*;
use crate::policy::fixups::RequestTemplate;

#[test]
fn configuration_errors_name_the_entry() {
    let cases = [
        (
            "unknown validator",
            "[[validators]]\nname = \"max_names\"\nmax = 3\n[[validators]]\nname = \"comon_name\"\n",
            "validators[1] (comon_name): there is no such rule; the rules are common_name, alternative_names, alternative_names_ip, blacklist_names, server_group, extensions, key_usage, ca_status, source_cidrs, key_policy, identifier_policy, max_names",
        ),
        (
            "no name",
            "[[validators]]\nallowed_domains = [\".example.com\"]\n",
            "validators[0]: the entry has no `name`",
        ),
        (
            "a misspelt option",
            "[[validators]]\nname = \"common_name\"\nalowed_domains = [\".example.com\"]\n",
            "validators[0] (common_name): unknown field `alowed_domains`, expected `allowed_domains` or `allowed_networks`",
        ),
        (
            "a missing option",
            "[[validators]]\nname = \"blacklist_names\"\n",
            "validators[0] (blacklist_names): missing field `domains`",
        ),
        (
            "a bad CIDR",
            "[[validators]]\nname = \"source_cidrs\"\ncidrs = [\"10.0.0.0/33\"]\n",
            "validators[0] (source_cidrs): \"10.0.0.0/33\" is not a CIDR network: the prefix length must be 0 to 32",
        ),
        (
            "a CIDR with host bits",
            "[[validators]]\nname = \"alternative_names_ip\"\nallowed_networks = [\"10.1.0.0/8\"]\n",
            "validators[0] (alternative_names_ip): \"10.1.0.0/8\" has host bits set; did you mean 10.0.0.0/8?",
        ),
        (
            "a bad domain pattern",
            "[[validators]]\nname = \"alternative_names\"\nallowed_domains = [\"*.*.example.com\"]\n",
            "validators[0] (alternative_names): \"*.*.example.com\" is not a domain pattern",
        ),
        (
            "an unknown key usage",
            "[[validators]]\nname = \"key_usage\"\nallowed_usage = [\"Signing\"]\n",
            "validators[0] (key_usage): \"Signing\" is not a key usage",
        ),
        (
            "an unknown key type",
            "[[validators]]\nname = \"key_policy\"\nallowed_keys = [\"dsa\"]\n",
            "validators[0] (key_policy): unknown variant `dsa`",
        ),
        (
            "an option of the wrong type",
            "[[validators]]\nname = \"max_names\"\nmax = \"ten\"\n",
            "validators[0] (max_names): invalid type: string \"ten\", expected usize",
        ),
        (
            "an empty list",
            "[[validators]]\nname = \"source_cidrs\"\ncidrs = []\n",
            "validators[0] (source_cidrs): cidrs is empty, so every request would be refused",
        ),
        (
            "no domains and no networks",
            "[[validators]]\nname = \"common_name\"\n",
            "validators[0] (common_name): allowed_domains and allowed_networks are both empty, so every name would be refused",
        ),
        (
            "an unreserved TLD allowed",
            "[[validators]]\nname = \"identifier_policy\"\nallowed_reserved_tlds = [\"corp\"]\n",
            "validators[0] (identifier_policy): allowed_reserved_tlds: \"corp\" is not a reserved TLD; they are example, invalid, localhost, test, local, onion, alt, arpa, internal",
        ),
        (
            "RSA bounds the wrong way round",
            "[[validators]]\nname = \"key_policy\"\nrsa_min_bits = 4096\nrsa_max_bits = 2048\n",
            "validators[0] (key_policy): rsa_min_bits (4096) must be at least 1024 and at most rsa_max_bits (2048)",
        ),
        (
            "a bad fingerprint",
            "[[validators]]\nname = \"key_policy\"\nblocked_spki_sha256 = [\"ABC\"]\n",
            "validators[0] (key_policy): blocked_spki_sha256: \"ABC\" is not 64 lower-case hex digits",
        ),
        (
            "a bad group prefix",
            "[[validators]]\nname = \"server_group\"\ngroup_prefixes = { \"n-v\" = \"nova\" }\n",
            "validators[0] (server_group): group_prefixes: \"n-v\" is not a prefix (no '-', no '.', not empty)",
        ),
        (
            "max_names of zero",
            "[[validators]]\nname = \"max_names\"\nmax = 0\n",
            "validators[0] (max_names): max must be at least 1",
        ),
    ];
    for (name, toml, want) in cases {
        let err = try_chain(toml).unwrap_err();
        assert!(err.contains(want), "{name}: {err}");
    }
}

#[test]
fn an_empty_chain_accepts_everything() {
    let chain = try_chain("validators = []\n").unwrap();
    assert!(chain.names().is_empty());
    assert!(at_identifiers(&chain, &["a.test"], &Requester::default()).is_empty());
}

const TWO_RULES: &str = r#"
    [[validators]]
    name = "blacklist_names"
    domains = ["bad.example.com"]
    [[validators]]
    name = "alternative_names"
    allowed_domains = [".example.com"]
"#;

#[test]
fn every_refusal_in_chain_order() {
    let chain = chain(TWO_RULES);
    assert_eq!(chain.names(), ["blacklist_names", "alternative_names"]);
    assert_eq!(
        at_identifiers(
            &chain,
            &[
                "other.org",
                "bad.example.com",
                "x.bad.example.com",
                "ok.example.com"
            ],
            &Requester::default()
        ),
        [
            "rule blacklist_names refused dns:bad.example.com: it equals the listed domain bad.example.com",
            "rule blacklist_names refused dns:x.bad.example.com: it lies under the listed domain bad.example.com",
            "rule alternative_names refused dns:other.org: it matches none of the allowed domains (.example.com)",
        ]
    );
}

#[test]
fn refusals_become_problems() {
    let chain = chain(TWO_RULES);
    let refused = |names: &[&str]| {
        chain
            .check_identifiers(&ids(names), &Requester::default())
            .unwrap_err()
    };

    // One refusal: the problem itself, with its identifier.
    let one = refused(&["bad.example.com"]);
    assert_eq!(one.0[0].position, 0);
    assert_eq!(one.0[0].stage, Stage::Identifiers);
    let problem = one.to_problem();
    assert_eq!(
        serde_json::to_value(&problem).unwrap(),
        serde_json::json!({
            "type": "urn:ietf:params:acme:error:rejectedIdentifier",
            "detail": "rule blacklist_names refused dns:bad.example.com: it equals the listed domain bad.example.com",
            "status": 400,
            "identifier": {"type": "dns", "value": "bad.example.com"},
        })
    );

    // Several: one subproblem each (RFC 8555 §6.7.1), the detail lists them all.
    let problem = refused(&["bad.example.com", "other.org"]).to_problem();
    assert_eq!(
        serde_json::to_value(&problem).unwrap(),
        serde_json::json!({
            "type": "urn:ietf:params:acme:error:rejectedIdentifier",
            "detail": "2 refusals: rule blacklist_names refused dns:bad.example.com: it equals the listed domain bad.example.com; rule alternative_names refused dns:other.org: it matches none of the allowed domains (.example.com)",
            "status": 400,
            "subproblems": [
                {
                    "type": "urn:ietf:params:acme:error:rejectedIdentifier",
                    "detail": "rule blacklist_names refused dns:bad.example.com: it equals the listed domain bad.example.com",
                    "status": 400,
                    "identifier": {"type": "dns", "value": "bad.example.com"},
                },
                {
                    "type": "urn:ietf:params:acme:error:rejectedIdentifier",
                    "detail": "rule alternative_names refused dns:other.org: it matches none of the allowed domains (.example.com)",
                    "status": 400,
                    "identifier": {"type": "dns", "value": "other.org"},
                },
            ],
        })
    );
}

#[test]
fn mixed_problem_types_are_compound() {
    let chain = chain(
        r#"
        [[validators]]
        name = "source_cidrs"
        cidrs = ["10.0.0.0/8"]
        [[validators]]
        name = "identifier_policy"
        "#,
    );
    let requester = Requester {
        peer_address: Some("192.0.2.1".parse().unwrap()),
        ..Requester::default()
    };
    let refusals = chain
        .check_identifiers(&ids(&["intranet"]), &requester)
        .unwrap_err();
    let problem = refusals.to_problem();
    assert_eq!(problem.kind, crate::acme::ProblemType::Compound);
    let kinds: Vec<_> = problem.subproblems.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        [
            crate::acme::ProblemType::Unauthorized,
            crate::acme::ProblemType::RejectedIdentifier
        ]
    );
    assert_eq!(problem.subproblems[0].identifier, None);
    assert_eq!(problem.subproblems[1].identifier, Some(id("intranet")));
}

#[test]
fn csr_stage_refusals_are_bad_csr() {
    let chain = chain(TWO_RULES);
    let csr = csr(&params(Some("bad.example.com"), &["dns:ok.example.com"]));
    let refusals = chain.check_csr(&csr, &Requester::default()).unwrap_err();
    let problem = refusals.to_problem();
    assert_eq!(problem.kind, crate::acme::ProblemType::BadCsr);
    assert_eq!(
        problem.detail,
        "rule blacklist_names refused common name \"bad.example.com\": it equals the listed domain bad.example.com"
    );
    assert_eq!(problem.identifier, Some(id("bad.example.com")));
}

#[test]
fn template_stage_checks_the_names_after_fixups() {
    let chain = chain(TWO_RULES);
    let template = RequestTemplate {
        common_name: Some("bad.example.com".to_owned()),
        names: ids(&["ok.example.com"]),
        key_usage: Vec::new(),
        extended_key_usage: Vec::new(),
        extensions: Vec::new(),
    };
    let refusals = chain
        .check_template(&template, &Requester::default())
        .unwrap_err();
    assert_eq!(refusals.0[0].stage, Stage::Template);
    assert_eq!(refusals.0[0].kind, crate::acme::ProblemType::BadCsr);
    assert_eq!(
        refusals.to_string(),
        "rule blacklist_names refused common name \"bad.example.com\": it equals the listed domain bad.example.com"
    );
}

#[test]
fn the_list_serialises_back_to_its_configuration() {
    let chain_toml = r#"
        [[validators]]
        name = "common_name"
        allowed_domains = [".example.com", "*.corp.example.net"]
        allowed_networks = ["10.0.0.0/8"]
        [[validators]]
        name = "key_usage"
        allowed_usage = ["Digital Signature"]
    "#;
    #[derive(serde::Deserialize)]
    struct Config {
        validators: ValidatorList,
    }
    let list = figment::Figment::from(
        <figment::providers::Toml as figment::providers::Format>::string(chain_toml),
    )
    .extract::<Config>()
    .unwrap()
    .validators;
    let value = serde_json::to_value(&list).unwrap();
    assert_eq!(
        value,
        serde_json::json!([
            {"name": "common_name", "allowed_domains": [".example.com", "*.corp.example.net"], "allowed_networks": ["10.0.0.0/8"]},
            {"name": "key_usage", "allowed_usage": ["digitalSignature"]},
        ])
    );
    let values: Vec<serde_json::Value> = serde_json::from_value(value).unwrap();
    assert_eq!(ValidatorList::from_values(values).unwrap(), list);
}
