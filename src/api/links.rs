//! Every URL Mayfly hands out is built here, from the configured base URL.
//!
//! The default ACME provisioner's resources live under `<base>/acme/` with its directory at
//! `<base>/directory`; another ACME provisioner's live under `<base>/acme/<name>/`, with its
//! directory at `<base>/acme/<name>/directory`.

#[derive(Clone, Debug)]
pub struct Links {
    base: String,
    /// `<base>/acme` or `<base>/acme/<provisioner>`: every ACME resource is below it.
    root: String,
    directory: String,
}

impl Links {
    /// The default ACME provisioner's links. `base` without a trailing slash, e.g.
    /// `https://127.0.0.1:14000`.
    pub fn new(base: impl Into<String>) -> Self {
        let base = base.into();
        Links {
            root: format!("{base}/acme"),
            directory: format!("{base}/directory"),
            base,
        }
    }

    /// The links of the ACME provisioner called `name` (not the default one).
    pub fn for_provisioner(&self, name: &str) -> Self {
        let root = format!("{}/acme/{name}", self.base);
        Links {
            directory: format!("{root}/directory"),
            root,
            base: self.base.clone(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }
    pub fn directory(&self) -> String {
        self.directory.clone()
    }
    /// The direct (non-ACME) API: `POST /v1/sign`.
    pub fn v1_sign(&self) -> String {
        format!("{}/v1/sign", self.base)
    }
    /// `POST /v1/renew`.
    pub fn v1_renew(&self) -> String {
        format!("{}/v1/renew", self.base)
    }
    /// `POST /v1/revoke`.
    pub fn v1_revoke(&self) -> String {
        format!("{}/v1/revoke", self.base)
    }
    pub fn new_nonce(&self) -> String {
        format!("{}/new-nonce", self.root)
    }
    pub fn new_account(&self) -> String {
        format!("{}/new-account", self.root)
    }
    pub fn new_order(&self) -> String {
        format!("{}/new-order", self.root)
    }
    pub fn new_authz(&self) -> String {
        format!("{}/new-authz", self.root)
    }
    pub fn account(&self, id: &str) -> String {
        format!("{}{}{id}", self.root, ACCOUNT_PATH)
    }
    pub fn account_orders(&self, id: &str) -> String {
        format!("{}{}{id}/orders", self.root, ACCOUNT_PATH)
    }
    pub fn key_change(&self) -> String {
        format!("{}/key-change", self.root)
    }
    pub fn order(&self, id: &str) -> String {
        format!("{}/order/{id}", self.root)
    }
    pub fn finalize(&self, id: &str) -> String {
        format!("{}/order/{id}/finalize", self.root)
    }
    pub fn authorization(&self, id: &str) -> String {
        format!("{}/authz/{id}", self.root)
    }
    pub fn challenge(&self, id: &str) -> String {
        format!("{}/chall/{id}", self.root)
    }
    pub fn certificate(&self, id: &str) -> String {
        format!("{}/cert/{id}", self.root)
    }
    pub fn revoke_cert(&self) -> String {
        format!("{}/revoke-cert", self.root)
    }
    /// The renewalInfo base; a certificate's resource is this, `/` and its ARI id.
    pub fn renewal_info(&self) -> String {
        format!("{}/renewal-info", self.root)
    }

    /// The account id in a `kid`, if the `kid` is one of our account URLs.
    pub fn account_id_from_kid<'a>(&self, kid: &'a str) -> Option<&'a str> {
        let id = kid
            .strip_prefix(self.root.as_str())?
            .strip_prefix(ACCOUNT_PATH)?;
        (!id.is_empty() && !id.contains('/')).then_some(id)
    }
}

const ACCOUNT_PATH: &str = "/account/";
