//! `max_names`: at most `max` distinct names per request (identifiers at `newOrder`;
//! subjectAltNames plus a common name not among them at finalize).

use serde::{Deserialize, Serialize};

use super::{Finding, Input, Rule, Subject};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxNames {
    pub max: usize,
}

/// The finding when `input` has more than `max` names.
pub(crate) fn too_many(input: &Input<'_>, max: usize) -> Option<Finding> {
    let count = input.all_names().len();
    (count > max).then(|| {
        Finding::new(
            Subject::Request,
            format!("it has {count} names; at most {max} are allowed"),
        )
    })
}

impl Rule for MaxNames {
    fn check(&self, input: &Input<'_>) -> Vec<Finding> {
        too_many(input, self.max).into_iter().collect()
    }

    fn check_options(&self) -> Result<(), String> {
        if self.max == 0 {
            return Err("max must be at least 1".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Requester;
    use super::super::test_support::*;

    #[test]
    fn table() {
        let chain = chain("[[validators]]\nname = \"max_names\"\nmax = 2\n");
        let cases: [(&str, &[&str], &[&str]); 3] = [
            ("one", &["a.example.com"], &[]),
            ("at the limit", &["a.example.com", "ip:10.0.0.1"], &[]),
            (
                "over",
                &["a.example.com", "b.example.com", "c.example.com"],
                &["rule max_names refused the request: it has 3 names; at most 2 are allowed"],
            ),
        ];
        for (name, names, want) in cases {
            assert_eq!(
                at_identifiers(&chain, names, &Requester::default()),
                want,
                "{name}"
            );
        }
        let cases: [CsrCase; 2] = [
            (
                "CN among the SANs counts once",
                Some("a.example.com"),
                &["dns:a.example.com", "dns:b.example.com"],
                &[],
            ),
            (
                "a CN outside the SANs counts",
                Some("c.example.com"),
                &["dns:a.example.com", "dns:b.example.com"],
                &["rule max_names refused the request: it has 3 names; at most 2 are allowed"],
            ),
        ];
        for (name, cn, sans, want) in cases {
            let csr = csr(&params(cn, sans));
            assert_eq!(at_csr(&chain, &csr, &Requester::default()), want, "{name}");
        }
    }
}
