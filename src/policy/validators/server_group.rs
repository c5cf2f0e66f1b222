//! `server_group` (Anchor): a name whose first label starts with a listed group prefix
//! (`nv-compute1.example.com` has prefix `nv`) may be requested only by a member of the group
//! the prefix maps to. Names without a listed prefix pass, as in Anchor, unless
//! `require_prefix` is set.
//!
//! Anchor read only the CN; here every requested name is checked (identifiers at `newOrder`;
//! CN and SANs at finalize), since in ACME every name ends up in the certificate. The
//! requester's groups are its identity's groups plus its EAB key label.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::matching::list;
use super::{Finding, Input, Rule, Stage};
use crate::acme::{Identifier, ProblemType};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerGroup {
    /// Prefix → the group whose members may use it, e.g. `{ nv = "nova-team" }`.
    pub group_prefixes: BTreeMap<String, String>,
    /// Refuse names whose first label has none of the prefixes.
    #[serde(default)]
    pub require_prefix: bool,
}

impl ServerGroup {
    fn refusal(&self, name: &str, groups: &[&str]) -> Option<String> {
        let first_label = name.split('.').next().unwrap_or_default();
        let prefix = first_label.split_once('-').map(|(p, _)| p);
        match prefix.and_then(|p| Some((p, self.group_prefixes.get(p)?))) {
            Some((prefix, group)) => (!groups.contains(&group.as_str())).then(|| {
                format!(
                    "its prefix {prefix:?} is for members of group {group:?}, and the requester's groups are {}",
                    if groups.is_empty() { "none".to_owned() } else { list(groups) }
                )
            }),
            None => self.require_prefix.then(|| {
                format!(
                    "its first label starts with none of the group prefixes ({})",
                    list(&self.group_prefixes.keys().collect::<Vec<_>>())
                )
            }),
        }
    }
}

impl Rule for ServerGroup {
    fn check(&self, input: &Input<'_>) -> Vec<Finding> {
        let groups: Vec<&str> = input.requester.all_groups().collect();
        input
            .all_names()
            .into_iter()
            .filter_map(|(subject, id)| match id {
                Identifier::Dns(name) => Some(Finding::new(subject, self.refusal(&name, &groups)?)),
                Identifier::Ip(_) => None,
            })
            .collect()
    }

    /// The requester lacks a right: `unauthorized` (RFC 8555 §6.7).
    fn problem_type(&self, _stage: Stage) -> ProblemType {
        ProblemType::Unauthorized
    }

    fn check_options(&self) -> Result<(), String> {
        if self.group_prefixes.is_empty() {
            return Err("group_prefixes is empty".to_owned());
        }
        for prefix in self.group_prefixes.keys() {
            if prefix.is_empty() || prefix.contains(['-', '.']) {
                return Err(format!(
                    "group_prefixes: {prefix:?} is not a prefix (no '-', no '.', not empty)"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Requester;
    use super::super::test_support::*;

    const CHAIN: &str = r#"
        [[validators]]
        name = "server_group"
        group_prefixes = { nv = "nova-team", sw = "swift-team" }
    "#;

    fn member_of(groups: &[&str], eab: Option<&str>) -> Requester {
        Requester {
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            eab_key_label: eab.map(str::to_owned),
            ..Requester::default()
        }
    }

    #[test]
    fn table() {
        let chain = chain(CHAIN);
        let cases: [(&str, &[&str], Requester, &[&str]); 7] = [
            ("no prefix", &["web.example.com"], member_of(&[], None), &[]),
            (
                "unlisted prefix",
                &["db-1.example.com"],
                member_of(&[], None),
                &[],
            ),
            (
                "member by groups",
                &["nv-compute1.example.com"],
                member_of(&["nova-team"], None),
                &[],
            ),
            (
                "member by EAB key label",
                &["sw-store.example.com"],
                member_of(&[], Some("swift-team")),
                &[],
            ),
            (
                "a prefix in a lower label does not count",
                &["web.nv-x.example.com"],
                member_of(&[], None),
                &[],
            ),
            (
                "not a member",
                &["nv-compute1.example.com"],
                member_of(&["swift-team"], None),
                &[
                    "rule server_group refused dns:nv-compute1.example.com: its prefix \"nv\" is for members of group \"nova-team\", and the requester's groups are swift-team",
                ],
            ),
            (
                "no groups at all",
                &["sw-store.example.com"],
                member_of(&[], None),
                &[
                    "rule server_group refused dns:sw-store.example.com: its prefix \"sw\" is for members of group \"swift-team\", and the requester's groups are none",
                ],
            ),
        ];
        for (name, names, requester, want) in cases {
            assert_eq!(at_identifiers(&chain, names, &requester), want, "{name}");
        }
    }

    #[test]
    fn require_prefix_and_csr_common_name() {
        let chain = chain(
            r#"
            [[validators]]
            name = "server_group"
            group_prefixes = { nv = "nova-team" }
            require_prefix = true
            "#,
        );
        assert_eq!(
            at_identifiers(&chain, &["web.example.com"], &Requester::default()),
            [
                "rule server_group refused dns:web.example.com: its first label starts with none of the group prefixes (nv)"
            ]
        );
        let csr = csr(&params(Some("nv-a.example.com"), &["dns:nv-b.example.com"]));
        let requester = member_of(&["ops"], None);
        assert_eq!(
            at_csr(&chain, &csr, &requester),
            [
                "rule server_group refused dns:nv-b.example.com: its prefix \"nv\" is for members of group \"nova-team\", and the requester's groups are ops",
                "rule server_group refused common name \"nv-a.example.com\": its prefix \"nv\" is for members of group \"nova-team\", and the requester's groups are ops",
            ]
        );
    }
}
