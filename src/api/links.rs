//! Every URL Mayfly hands out is built here, from the configured base URL.

#[derive(Clone, Debug)]
pub struct Links {
    base: String,
}

impl Links {
    /// `base` without a trailing slash, e.g. `https://127.0.0.1:14000`.
    pub fn new(base: impl Into<String>) -> Self {
        Links { base: base.into() }
    }

    pub fn base(&self) -> &str {
        &self.base
    }
    pub fn directory(&self) -> String {
        format!("{}/directory", self.base)
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
        format!("{}/acme/new-nonce", self.base)
    }
    pub fn new_account(&self) -> String {
        format!("{}/acme/new-account", self.base)
    }
    pub fn new_order(&self) -> String {
        format!("{}/acme/new-order", self.base)
    }
    pub fn new_authz(&self) -> String {
        format!("{}/acme/new-authz", self.base)
    }
    pub fn account(&self, id: &str) -> String {
        format!("{}{}{id}", self.base, ACCOUNT_PATH)
    }
    pub fn account_orders(&self, id: &str) -> String {
        format!("{}{}{id}/orders", self.base, ACCOUNT_PATH)
    }
    pub fn key_change(&self) -> String {
        format!("{}/acme/key-change", self.base)
    }
    pub fn order(&self, id: &str) -> String {
        format!("{}/acme/order/{id}", self.base)
    }
    pub fn finalize(&self, id: &str) -> String {
        format!("{}/acme/order/{id}/finalize", self.base)
    }
    pub fn authorization(&self, id: &str) -> String {
        format!("{}/acme/authz/{id}", self.base)
    }
    pub fn challenge(&self, id: &str) -> String {
        format!("{}/acme/chall/{id}", self.base)
    }
    pub fn certificate(&self, id: &str) -> String {
        format!("{}/acme/cert/{id}", self.base)
    }
    pub fn revoke_cert(&self) -> String {
        format!("{}/acme/revoke-cert", self.base)
    }
    /// The renewalInfo base; a certificate's resource is this, `/` and its ARI id.
    pub fn renewal_info(&self) -> String {
        format!("{}/acme/renewal-info", self.base)
    }

    /// The account id in a `kid`, if the `kid` is one of our account URLs.
    pub fn account_id_from_kid<'a>(&self, kid: &'a str) -> Option<&'a str> {
        let id = kid
            .strip_prefix(self.base.as_str())?
            .strip_prefix(ACCOUNT_PATH)?;
        (!id.is_empty() && !id.contains('/')).then_some(id)
    }
}

const ACCOUNT_PATH: &str = "/acme/account/";
