use super::*;
use crate::policy::Profiles;
use crate::policy::validators::test_support::{csr, id, ids, params};
use figment::Figment;
use figment::providers::{Format, Toml};

#[derive(serde::Deserialize)]
struct Config {
    fixups: FixupList,
}

fn fixups(toml: &str) -> Result<FixupList, String> {
    Figment::from(Toml::string(toml))
        .extract::<Config>()
        .map(|c| c.fixups)
        .map_err(|e| e.to_string())
}

fn one(toml_entry: &str) -> FixupList {
    match fixups(&format!("[[fixups]]\n{toml_entry}\n")) {
        Ok(list) => list,
        Err(e) => panic!("{e}"),
    }
}

fn profile(name: &str) -> Profile {
    Profiles::builtin().profiles[name].clone()
}

fn template(common_name: Option<&str>, names: &[&str]) -> RequestTemplate {
    RequestTemplate {
        common_name: common_name.map(str::to_owned),
        names: ids(names),
        key_usage: vec![KeyUsageBit::DigitalSignature],
        extended_key_usage: vec![Purpose::ServerAuth],
        extensions: Vec::new(),
    }
}

/// Applies `list` to `before` and checks the result and the reported changes.
fn check(
    name: &str,
    list: &FixupList,
    mut before: RequestTemplate,
    after: RequestTemplate,
    changes: &[&str],
) {
    let applied = list.apply(&mut before, &profile("hours"));
    assert_eq!(before, after, "{name}");
    let got: Vec<String> = applied
        .iter()
        .map(|a| format!("{}: {}", a.fixup, a.change))
        .collect();
    assert_eq!(got, changes, "{name}");
}

#[test]
fn force_common_name() {
    let list = one("name = \"force_common_name\"");
    check(
        "no CN: the first name",
        &list,
        template(None, &["b.example.com", "a.example.com"]),
        template(Some("b.example.com"), &["b.example.com", "a.example.com"]),
        &["force_common_name: set the common name to b.example.com"],
    );
    check(
        "an IP address",
        &list,
        template(None, &["ip:10.0.0.1"]),
        template(Some("10.0.0.1"), &["ip:10.0.0.1"]),
        &["force_common_name: set the common name to 10.0.0.1"],
    );
    check(
        "a CN is kept",
        &list,
        template(Some("a.example.com"), &["b.example.com", "a.example.com"]),
        template(Some("a.example.com"), &["b.example.com", "a.example.com"]),
        &[],
    );
}

#[test]
fn drop_common_name() {
    let list = one("name = \"drop_common_name\"");
    check(
        "dropped",
        &list,
        template(Some("a.example.com"), &["a.example.com"]),
        template(None, &["a.example.com"]),
        &["drop_common_name: dropped the common name \"a.example.com\""],
    );
    check(
        "kept when it is the only name",
        &list,
        template(Some("a.example.com"), &[]),
        template(Some("a.example.com"), &[]),
        &[],
    );
    check(
        "nothing to drop",
        &list,
        template(None, &["a.example.com"]),
        template(None, &["a.example.com"]),
        &[],
    );
}

#[test]
fn strip_extensions() {
    let list = one("name = \"strip_extensions\"\nextensions = [\"nameConstraints\", \"1.2.3.4\"]");
    let extension = |oid: &str| RequestedExtension {
        oid: oid.to_owned(),
        critical: false,
    };
    let mut before = template(None, &["a.example.com"]);
    before.extensions = vec![
        extension("2.5.29.17"),
        extension("2.5.29.30"),
        extension("1.2.3.4"),
    ];
    let mut after = before.clone();
    after.extensions = vec![extension("2.5.29.17")];
    check(
        "listed ones go",
        &list,
        before,
        after.clone(),
        &["strip_extensions: stripped 2.5.29.30, 1.2.3.4"],
    );
    check("none listed present", &list, after.clone(), after, &[]);
}

#[test]
fn set_key_usage() {
    let from_profile = one("name = \"set_key_usage\"");
    let mut asked = template(None, &["a.example.com"]);
    asked.key_usage = vec![KeyUsageBit::DigitalSignature, KeyUsageBit::KeyCertSign];
    asked.extended_key_usage = vec![Purpose::CodeSigning];
    check(
        "the profile's usages replace the CSR's",
        &from_profile,
        asked.clone(),
        template(None, &["a.example.com"]),
        &["set_key_usage: set keyUsage to digitalSignature and extendedKeyUsage to serverAuth"],
    );
    check(
        "already the profile's",
        &from_profile,
        template(None, &["a.example.com"]),
        template(None, &["a.example.com"]),
        &[],
    );
    let explicit = one(
        "name = \"set_key_usage\"\nkey_usage = [\"Digital Signature\", \"keyEncipherment\"]\nextended_key_usage = [\"clientAuth\"]",
    );
    let mut want = template(None, &["a.example.com"]);
    want.key_usage = vec![KeyUsageBit::DigitalSignature, KeyUsageBit::KeyEncipherment];
    want.extended_key_usage = vec![Purpose::ClientAuth];
    check(
        "options override the profile",
        &explicit,
        asked,
        want,
        &[
            "set_key_usage: set keyUsage to digitalSignature, keyEncipherment and extendedKeyUsage to clientAuth",
        ],
    );
}

#[test]
fn lowercase_names() {
    let list = one("name = \"lowercase_names\"");
    check(
        "CN lower-cased",
        &list,
        template(Some("WWW.Example.com"), &["www.example.com"]),
        template(Some("www.example.com"), &["www.example.com"]),
        &["lowercase_names: lower-cased the common name \"WWW.Example.com\""],
    );
    check(
        "already lower-case",
        &list,
        template(Some("www.example.com"), &["www.example.com"]),
        template(Some("www.example.com"), &["www.example.com"]),
        &[],
    );
}

#[test]
fn fixups_run_in_order() {
    let list = fixups(
        "[[fixups]]\nname = \"drop_common_name\"\n[[fixups]]\nname = \"force_common_name\"\n",
    )
    .unwrap();
    check(
        "drop, then force: the CN becomes the first name",
        &list,
        template(Some("b.example.com"), &["a.example.com", "b.example.com"]),
        template(Some("a.example.com"), &["a.example.com", "b.example.com"]),
        &[
            "drop_common_name: dropped the common name \"b.example.com\"",
            "force_common_name: set the common name to a.example.com",
        ],
    );
}

#[test]
fn template_from_a_csr() {
    let mut with_usage = params(Some("c.example.com"), &["dns:a.example.com"]);
    with_usage.key_usages = vec![rcgen::KeyUsagePurpose::KeyAgreement];
    let parsed = csr(&with_usage);
    let facts = CsrFacts::from_der(&parsed.der).unwrap();
    let template = RequestTemplate::new(&parsed, &facts, &profile("tlsclient"));
    assert_eq!(template.common_name.as_deref(), Some("c.example.com"));
    assert_eq!(
        template.names,
        vec![id("a.example.com"), id("c.example.com")]
    );
    assert_eq!(template.key_usage, vec![KeyUsageBit::KeyAgreement]);
    assert_eq!(template.extended_key_usage, vec![Purpose::ClientAuth]);
}

#[test]
fn configuration_errors() {
    let cases = [
        (
            "unknown fixup",
            "[[fixups]]\nname = \"force_cn\"\n",
            "fixups[0] (force_cn): there is no such rule; the rules are force_common_name, drop_common_name, strip_extensions, set_key_usage, lowercase_names",
        ),
        (
            "an option a fixup does not take",
            "[[fixups]]\nname = \"drop_common_name\"\n[[fixups]]\nname = \"force_common_name\"\nfirst = true\n",
            "fixups[1] (force_common_name): unknown field `first`, there are no fields",
        ),
        (
            "a bad extension",
            "[[fixups]]\nname = \"strip_extensions\"\nextensions = [\"mustStaple\"]\n",
            "fixups[0] (strip_extensions): \"mustStaple\" is neither an extension name",
        ),
    ];
    for (name, toml, want) in cases {
        let err = fixups(toml).unwrap_err();
        assert!(err.contains(want), "{name}: {err}");
    }
}
